"""Pure parsers for CAISO: bytes of one response in, typed records out; no I/O, no clock.
`PARSERS` maps every CAISO dataset to its parser.

- LMP (PRC_LMP, PRC_RTPD_LMP, PRC_INTVL_LMP) and AS prices (PRC_AS, PRC_INTVL_AS): prices.py.
- Load: OASIS SLD_FCST (actual and forecasts per area) or a Today's Outlook demand CSV.
- Fuel mix: a Today's Outlook fuel-source CSV, or a Daily Renewables Watch text report.

The format is recognised from the content (zip, CSV, XML; Outlook CSVs by their Time column).
Revisions are publish times (OASIS has no version number): see oasis.py and outlook.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from operator import itemgetter

from connectors.caiso import columns as columnar
from connectors.caiso.feeds import (
    DAILY_FORECAST_PUBLISHED_AT,
    DATA_ITEM,
    ISO,
    LOAD_AREA,
    LOAD_SERIES,
    OPR_DATE,
    OUTLOOK_DEMAND_COLUMNS,
    OUTLOOK_FUELS,
    OUTLOOK_MINUTES,
    OUTLOOK_TIME,
    RENEWABLES_WATCH_FUELS,
    RENEWABLES_WATCH_TOTALS,
    RUN_COLUMNS,
    SLD_FCST,
    XML_DATA_ITEM,
    XML_OPR_DATE,
    XML_RESOURCE,
    XML_RUN_COLUMNS,
    XML_VALUE,
    LoadSeries,
    area_type,
)
from connectors.caiso.oasis import (
    NativeRow,
    Report,
    Spans,
    csv_rows,
    number,
    published_in_name,
    read_reports,
)
from connectors.caiso.outlook import (
    demand_record,
    is_renewables_watch,
    outlook_intervals,
    renewables_watch_cells,
)
from connectors.caiso.prices import lmp_parser, parse_as_prices
from connectors.errors import ParseError
from connectors.parsing import Parser, collector_paused
from connectors.records import (
    PUBLISH_TIME,
    FuelMixRecord,
    LoadRecord,
    Record,
)
from connectors.tabular import reject_unexpected
from schemas.catalog import Dataset
from schemas.timeutil import wall_to_utc, zone

_TZ = zone(ISO)


# Load ----------------------------------------------------------------------------------------


def parse_load(data: bytes, source: str) -> Sequence[Record]:
    """CAISO load: OASIS SLD_FCST (actual and DAM/2DA/7DA/RTM forecasts per TAC or WEIM area,
    a zip of CSV or XML) or a Today's Outlook demand CSV (5-minute actual demand)."""
    found = reject_unexpected(data, source, ("zip", "csv", "xml"))
    if found == "csv" and _first_field(data) == OUTLOOK_TIME:
        return columnar.outlook_demand(data, source) or _outlook_demand(data, source)
    fast = columnar.sld_fcst(data, source, _SLD_CSV)
    if fast is not None:
        return fast
    out: list[Record] = []
    seen: dict[tuple[int, str, str, str], str] = {}
    for report in read_reports(data, source):
        _sld_fcst(report, source, seen, out)
    return out


def _first_field(data: bytes) -> str:
    head = data[:200].lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return head.split(b",", 1)[0].strip().decode("utf-8", "replace")


_SLD_CSV = (*RUN_COLUMNS, LOAD_AREA, DATA_ITEM, SLD_FCST.value_column, OPR_DATE)
_SLD_XML = (*XML_RUN_COLUMNS, XML_RESOURCE, XML_DATA_ITEM, XML_VALUE, XML_OPR_DATE)
# What the item, times, market run and operating day of an SLD_FCST row say, worked out once
# for the many rows (one per area) that share them: (kind, start, minutes, made_at).
_LoadContext = tuple[str, datetime, int, datetime | None]


def _sld_fcst(
    report: Report, source: str, seen: dict[tuple[int, str, str, str], str], out: list[Record]
) -> None:
    columns = report.columns(_SLD_XML if report.xml else _SLD_CSV, source)
    i_start, i_end, i_market, i_area, i_item, i_value, i_day = columns
    spans = Spans(report, source)
    revision, header, where = report.revision, report.header, report.where
    value_column = header[i_value]
    contexts: dict[tuple[str, ...], _LoadContext] = {}
    area_types: dict[str, str] = {}
    context_of = itemgetter(i_item, i_start, i_end, i_market, i_day)
    for row_number, row in enumerate(report.rows, start=1):
        context_key = context_of(row)
        context = contexts.get(context_key)
        if context is None:
            context = contexts[context_key] = _load_context(
                context_key, spans, report, source, row_number
            )
        area = row[i_area]
        text = row[i_value]
        key = (revision, area, context_key[0], context_key[1])
        earlier = seen.get(key)
        if earlier is not None:
            if earlier == text:
                continue  # the same row again, verbatim; kept once
            raise report.fail(source, f"two values for {area} {key[2]} at {key[3]}", row_number)
        seen[key] = text
        value = number(text, source, row_number, value_column, where)
        kind = area_types.get(area)
        if kind is None:
            kind = area_types[area] = area_type(area)
        out.append(
            LoadRecord(
                ISO,
                area,
                kind,
                context[1],
                context[2],
                value,
                context[0],
                context[3],
                revision,
                PUBLISH_TIME,
                source,
                row_number,
                NativeRow(header, row),
            )
        )


def _load_context(
    key: tuple[str, ...], spans: Spans, report: Report, source: str, row: int
) -> _LoadContext:
    item, start_text, end_text, market_run, day_text = key
    series = LOAD_SERIES.get(item)
    if series is None:
        raise report.fail(source, f"unknown data item {item!r}", row)
    if market_run != series.market_run_id:
        raise report.fail(
            source,
            f"market run {market_run!r} for {item}, where {series.market_run_id} was expected",
            row,
        )
    start, minutes = spans(start_text, end_text, row)
    if minutes != series.minutes:
        raise report.fail(
            source, f"a {minutes}-minute interval for {item}, which has {series.minutes}", row
        )
    return series.kind, start, minutes, _made_at(series, start, day_text, report, source, row)


def _made_at(
    series: LoadSeries, start: datetime, day_text: str, report: Report, source: str, row: int
) -> datetime | None:
    """The nominal time a forecast was made (see feeds.LoadSeries); None for actual load."""
    if series.lead is not None:
        return start - series.lead
    if series.days_ahead is None:
        return None
    try:
        day = date.fromisoformat(day_text[:10])
    except ValueError:
        raise report.fail(source, f"operating day is not a date: {day_text!r}", row) from None
    wall = datetime.combine(
        day - timedelta(days=series.days_ahead), time(*DAILY_FORECAST_PUBLISHED_AT)
    )
    return wall_to_utc(_TZ, wall)


def _outlook_demand(data: bytes, source: str) -> list[Record]:
    header, rows = csv_rows(data, source)
    present = [name for name in OUTLOOK_DEMAND_COLUMNS if name in header]
    if len(present) != 1:
        found = ", ".join(header)[:400]
        wanted = " or ".join(OUTLOOK_DEMAND_COLUMNS)
        raise ParseError(source, f"missing column {wanted} (exactly one); found: {found}")
    column = present[0]
    index = header.index(column)
    # Outlook files carry no publish time; the client puts Last-Modified in the name. Without
    # it the revision is 0, so any later dated file replaces these values.
    revision = published_in_name(source) or 0
    out: list[Record] = []
    for row_number, row, start in outlook_intervals(header, rows, source):
        text = row[index].strip()
        if not text:
            continue  # not published yet
        value = number(text, source, row_number, column)
        out.append(
            demand_record(start, value, revision, source, row_number, NativeRow(header, row))
        )
    return out


# Fuel mix ------------------------------------------------------------------------------------


def parse_fuel_mix(data: bytes, source: str) -> list[Record]:
    """CAISO generation by fuel: Today's Outlook fuelsource.csv (5-minute, one column per fuel)
    or a Daily Renewables Watch report (hourly, two tables)."""
    reject_unexpected(data, source, ("csv",))
    if is_renewables_watch(data):
        return _renewables_watch(data, source)
    header, rows = csv_rows(data, source)
    fuels: list[tuple[int, str, str]] = []
    for index, name in enumerate(header[1:], start=1):
        known = OUTLOOK_FUELS.get(name.lower())
        if known is None:
            raise ParseError(source, f"unknown fuel column {name!r}")
        if any(label == known[0] for _, label, _ in fuels):
            raise ParseError(source, f"fuel column {name!r} appears twice")
        fuels.append((index, *known))
    if not fuels:
        raise ParseError(source, f"no fuel columns; found: {', '.join(header)[:400]}")
    revision = published_in_name(source) or 0  # as for Outlook demand
    out: list[Record] = []
    for row_number, row, start in outlook_intervals(header, rows, source):
        native = NativeRow(header, row)
        for index, label, fuel in fuels:
            text = row[index]
            if not text.strip():
                continue  # not published for this interval
            out.append(
                FuelMixRecord(
                    ISO,
                    start,
                    OUTLOOK_MINUTES,
                    fuel,
                    label,
                    number(text, source, row_number, header[index]),
                    revision,
                    PUBLISH_TIME,
                    source,
                    row_number,
                    native,
                )
            )
    return out


def _renewables_watch(data: bytes, source: str) -> list[Record]:
    # The report carries no publish time: revision from the name, else 0 (as for the Outlook).
    revision = published_in_name(source) or 0
    out: list[Record] = []
    for cell in renewables_watch_cells(data, source):
        if cell.label in RENEWABLES_WATCH_TOTALS:
            continue
        fuel = RENEWABLES_WATCH_FUELS.get(cell.label)
        if fuel is None:
            raise ParseError(source, f"unknown resource type {cell.label!r}", cell.row)
        out.append(
            FuelMixRecord(
                ISO,
                cell.start_utc,
                60,
                fuel,
                cell.label,
                number(cell.text, source, cell.row, cell.label),
                revision,
                PUBLISH_TIME,
                source,
                cell.row,
                cell.native,
            )
        )
    return out


PARSERS: dict[Dataset, Parser] = {
    dataset: collector_paused(parser)
    for dataset, parser in (
        (Dataset.LMP_DA_HOURLY, lmp_parser(Dataset.LMP_DA_HOURLY)),
        (Dataset.LMP_RT_15MIN, lmp_parser(Dataset.LMP_RT_15MIN)),
        (Dataset.LMP_RT_5MIN, lmp_parser(Dataset.LMP_RT_5MIN)),
        (Dataset.AS_PRICES, parse_as_prices),
        (Dataset.LOAD, parse_load),
        (Dataset.FUEL_MIX, parse_fuel_mix),
    )
}
