"""Pure parsers of ERCOT payloads: bytes in, typed records out (no I/O, no clock).

lmp_da_hourly  NP4-190-CD DAM Settlement Point Prices          revision: posting time
lmp_rt_15min   NP6-905-CD RT Settlement Point Prices           revision: posting time
lmp_rt_5min    NP6-788-CD LMPs of each SCED run                revision: SCED timestamp
as_prices      NP4-188-CD DAM Clearing Prices for Capacity     revision: posting time
load           NP6-345-CD actual, or NP3-561-CD seven-day      revision: posting time
               forecast (told apart by their columns)
fuel_mix       the fuel-mix dashboard JSON                     revision: lastUpdated

Every report arrives as a bare CSV, a zip holding one (an MIS or API download) or a zip of such
zips (a bulk archive download), recognised by content.

Posting times come from the document's name (see documents.py). Local labels are read by
timelabels.py. ERCOT publishes no LMP components: energy, congestion and loss stay null.

A SCED run maps to the 5-minute interval that contains its timestamp (the run at 00:40:18 prices
[00:40, 00:45)); when SCED runs twice within one interval, the later run is the higher revision,
because the revision is the SCED timestamp itself (epoch microseconds, PUBLISH_TIME).

A row repeated verbatim in one document is read once; two rows for one interval with different
values in one document reject the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NoReturn

from connectors.ercot import columns as columnar
from connectors.ercot import feeds
from connectors.ercot.documents import Document, csv_documents, error_document
from connectors.ercot.timelabels import interval_start_utc, parse_flag, sced_instant_utc
from connectors.errors import ParseError
from connectors.parsing import Parser, collector_paused
from connectors.records import (
    PUBLISH_TIME,
    AsPriceRecord,
    FuelMixRecord,
    LmpRecord,
    LoadRecord,
    Record,
)
from connectors.tabular import (
    RowFields,
    columns,
    header_index,
    read_csv,
    reject_unexpected,
    to_float,
)
from schemas.catalog import Dataset
from schemas.timeutil import to_micros

ISO = feeds.ISO
_FIVE_MINUTES_S = 300
_NOT_A_NUMBER = math.nan  # what a cell float() rejects stands for, so one test catches both

# Records are built with positional arguments in their dataclass field order: keywords cost
# about a fifth more per record, and a day of nodal prices is tens of thousands of records.


@lru_cache(maxsize=65_536)
def _settlement_point(cell: str) -> tuple[str, str]:
    """(name, canonical type) of a SettlementPoint cell; the same in every document naming it
    (a SCED run's document names every point again, every five minutes)."""
    name = cell.strip()
    return name, feeds.location_type_of(name)


def _hour_start(label: str, row: int, day: str, hour: str, flag: str | None) -> datetime:
    try:
        return interval_start_utc(day, hour, flag)
    except ValueError as exc:
        raise ParseError(label, str(exc), row) from None


def _first(
    seen: dict[Any, float], key: tuple[Any, ...], text: str, label: str, row: int, column: str
) -> float | None:
    """The number in a cell of `column`, or None where an earlier row of the payload gave the
    same number for the same `key` (a verbatim repeat, read once); a different number for it,
    or a cell that is no finite number, is a ParseError. The key ends with what the number is
    of and the interval start, which an error names."""
    try:
        value = float(text)  # the common case; spaces around the number are fine
    except ValueError:
        value = _NOT_A_NUMBER
    if value - value:  # not a number, or not finite: to_float names the cell
        value = to_float(text, label, row, column)  # (or reads thousands separators)
    earlier = seen.setdefault(key, value)
    if earlier is value:
        return value
    if earlier == value:
        return None
    raise ParseError(
        label,
        f"two rows for {key[-2]} at {key[-1]:%Y-%m-%d %H:%M} UTC with different values "
        f"({earlier} and {value}); on the fall-back day the second pass needs DSTFlag Y",
        row,
    )


def _table(
    doc: Document, required: tuple[str, ...]
) -> tuple[dict[str, int], list[list[str]], list[int], int]:
    """(position of each column by name, for RowFields; rows; index of each required column;
    index of DSTFlag or -1 without one)."""
    header, rows = read_csv(doc.data, doc.label)
    index = columns(header, required, doc.label)
    return header_index(header), rows, [index[name] for name in required], index.get("DSTFlag", -1)


@dataclass(frozen=True)
class _LmpReport:
    """How the row path reads an LMP report: its first `when` columns (with DSTFlag, where a
    document has one) place a row in time, `when_of(cells, document, row)` giving (interval
    start, revision); the next `where` columns name its location, `where_of(cells, document
    label, row)` giving (location id, settlement point name, canonical type); the column after
    them holds the price. Each conversion is made once per distinct tuple of cells (for one
    column, the cell itself)."""

    report: feeds.Report
    market: str
    when: int
    when_of: Callable[[tuple[str, ...], Document, int], tuple[datetime, int]]
    where: int
    where_of: Callable[[Any, str, int], tuple[str, str, str]]


def _lmp_rows(data: bytes, source: str, spec: _LmpReport) -> Iterator[Record]:
    """One LmpRecord per row of every document of an LMP report (see _LmpReport)."""
    seen: dict[tuple[int, str, datetime], float] = {}
    points: dict[Any, tuple[str, str, str]] = {}
    required = spec.report.columns[: spec.when + spec.where + 1]
    market, minutes, column = spec.market, spec.report.interval_minutes, required[-1]
    when_of, where_of = spec.when_of, spec.where_of
    for doc in csv_documents(data, source):
        fields, rows, at, i_flag = _table(doc, required)
        when_cells = itemgetter(*at[: spec.when], *([i_flag] if i_flag >= 0 else []))
        where_cells = itemgetter(*at[spec.when : -1])
        i_price, label = at[-1], doc.label
        whens: dict[tuple[str, ...], tuple[datetime, int]] = {}
        for number, row in enumerate(rows, start=1):
            cells = when_cells(row)
            when = whens.get(cells)
            if when is None:
                when = whens[cells] = when_of(cells, doc, number)
            start, revision = when
            cells = where_cells(row)
            point = points.get(cells)
            if point is None:
                point = points[cells] = where_of(cells, label, number)
            price = _first(seen, (revision, point[0], start), row[i_price], label, number, column)
            if price is not None:
                yield LmpRecord(
                    ISO,
                    market,
                    point[0],
                    point[1],
                    point[2],
                    start,
                    minutes,
                    price,
                    None,  # energy, congestion and loss: ERCOT publishes no components
                    None,
                    None,
                    revision,
                    PUBLISH_TIME,
                    source,
                    number,
                    RowFields(fields, row),
                )


def _posted_hour(cells: tuple[str, ...], doc: Document, row: int) -> tuple[datetime, int]:
    """(DeliveryDate, HourEnding[, DSTFlag]): the hour's start, and the document's revision."""
    flag = cells[2] if len(cells) > 2 else None
    return _hour_start(doc.label, row, cells[0], cells[1], flag), doc.revision


def _posted_quarter(cells: tuple[str, ...], doc: Document, row: int) -> tuple[datetime, int]:
    """(DeliveryDate, DeliveryHour, DeliveryInterval[, DSTFlag]): the quarter hour's start, and
    the document's revision."""
    flag = cells[3] if len(cells) > 3 else None
    hour = _hour_start(doc.label, row, cells[0], cells[1], flag)
    text = cells[2].strip()
    if text not in ("1", "2", "3", "4"):
        raise ParseError(doc.label, f"DeliveryInterval must be 1..4, not {cells[2]!r}", row)
    return hour + timedelta(minutes=15 * (int(text) - 1)), doc.revision


def _sced_when(cells: tuple[str, ...], doc: Document, row: int) -> tuple[datetime, int]:
    """(SCEDTimestamp, RepeatedHourFlag): see _sced_run (a DSTFlag cell is not read)."""
    return _sced_run(cells[0], cells[1], doc.label, row)


def _named_point(cell: str, label: str, row: int) -> tuple[str, str, str]:
    """A SettlementPoint cell: its name is its location id (see _settlement_point)."""
    name, kind = _settlement_point(cell)
    return name, name, kind


def _rt_point(cells: tuple[str, str], label: str, row: int) -> tuple[str, str, str]:
    """(SettlementPointName, SettlementPointType): (location id, settlement point name,
    canonical type)."""
    kind = cells[1]
    code = kind.strip()
    canonical = feeds.SETTLEMENT_POINT_TYPES.get(code)
    if canonical is None:
        known = ", ".join(feeds.SETTLEMENT_POINT_TYPES)
        raise ParseError(label, f"unknown SettlementPointType {kind!r} (known: {known})", row)
    point = cells[0].strip()
    if code in feeds.ENERGY_WEIGHTED_TYPES:
        return point + feeds.ENERGY_WEIGHTED_SUFFIX, point, canonical
    return point, point, canonical


_DAM_SPP = _LmpReport(feeds.DAM_SPP, "DA_HOURLY", 2, _posted_hour, 1, _named_point)
_RT_SPP = _LmpReport(feeds.RT_SPP, "RT_15MIN", 3, _posted_quarter, 2, _rt_point)
_SCED_LMP = _LmpReport(feeds.SCED_LMP, "RT_5MIN", 2, _sced_when, 1, _named_point)


@collector_paused
def parse_dam_spp(data: bytes, source: str) -> Sequence[Record]:
    """NP4-190-CD DAM Settlement Point Prices -> DA_HOURLY LmpRecords."""
    fast = columnar.dam_spp(data, source, _settlement_point)
    if fast is not None:
        return fast
    return list(_lmp_rows(data, source, _DAM_SPP))


@collector_paused
def parse_rt_spp(data: bytes, source: str) -> list[Record]:
    """NP6-905-CD Settlement Point Prices at Resource Nodes, Hubs and Load Zones -> RT_15MIN.

    The energy-weighted load-zone rows (LZEW, LZ_DCEW) become their own locations, `<name>_EW`.
    """
    return list(_lmp_rows(data, source, _RT_SPP))


@collector_paused
def parse_sced_lmp(data: bytes, source: str) -> Sequence[Record]:
    """NP6-788-CD LMPs by Resource Nodes, Load Zones and Trading Hubs (one SCED run per
    document) -> RT_5MIN LmpRecords; revision = the SCED timestamp in epoch microseconds."""
    fast = columnar.sced_lmp(data, source, _sced_run, _settlement_point)
    if fast is not None:
        return fast
    return list(_lmp_rows(data, source, _SCED_LMP))


def _sced_run(stamp: str, flag: str, label: str, row: int) -> tuple[datetime, int]:
    """(start of the 5-minute interval holding the run, the run's revision)."""
    try:
        instant = sced_instant_utc(stamp, parse_flag(flag, "RepeatedHourFlag"))
    except ValueError as exc:
        raise ParseError(label, str(exc), row) from None
    seconds = int(instant.timestamp())
    start = datetime.fromtimestamp(seconds - seconds % _FIVE_MINUTES_S, tz=UTC)
    return start, to_micros(instant)


@collector_paused
def parse_dam_mcpc(data: bytes, source: str) -> list[Record]:
    """NP4-188-CD DAM Clearing Prices for Capacity -> DA_HOURLY AsPriceRecords (system-wide)."""
    out: list[Record] = []
    seen: dict[tuple[int, str, datetime], float] = {}
    required = feeds.DAM_MCPC.columns[:4]
    for doc in csv_documents(data, source):
        fields, rows, at, i_flag = _table(doc, required)
        i_day, i_hour, i_product, i_price = at
        revision, label = doc.revision, doc.label
        starts: dict[tuple[str, str, str], datetime] = {}
        for number, row in enumerate(rows, start=1):
            flag = row[i_flag] if i_flag >= 0 else None
            key = (row[i_day], row[i_hour], flag or "")
            start = starts.get(key)
            if start is None:
                start = starts[key] = _hour_start(label, number, *key[:2], flag)
            native = row[i_product].strip()
            product = feeds.AS_PRODUCTS.get(native)
            if product is None:
                known = ", ".join(feeds.AS_PRODUCTS)
                raise ParseError(
                    label, f"unknown AncillaryType {native!r} (known: {known})", number
                )
            price = _first(seen, (revision, native, start), row[i_price], label, number, "MCPC")
            if price is None:
                continue
            out.append(
                AsPriceRecord(
                    ISO,
                    "DA_HOURLY",
                    start,
                    60,
                    product,
                    native,
                    feeds.AS_REGION,
                    price,
                    revision,
                    PUBLISH_TIME,
                    source,
                    number,
                    RowFields(fields, row),
                )
            )
    return out


@collector_paused
def parse_load(data: bytes, source: str) -> list[Record]:
    """NP6-345-CD Actual System Load by Weather Zone (ACTUAL) or NP3-561-CD Seven-Day Load
    Forecast by Weather Zone (FORECAST, made at its posting time), told apart by their columns.

    One row holds every weather zone and the system total: one record per zone and hour.
    """
    out: list[Record] = []
    seen: dict[tuple[int, str, str, datetime], float] = {}
    for doc in csv_documents(data, source):
        header, rows = read_csv(doc.data, doc.label)
        if "OperDay" in header:
            kind, day_column, areas, made_at = "ACTUAL", "OperDay", feeds.ACTUAL_LOAD_AREAS, None
        elif "SystemTotal" in header:
            kind, day_column, areas = "FORECAST", "DeliveryDate", feeds.FORECAST_LOAD_AREAS
            made_at = doc.posted
            if made_at is None:
                raise ParseError(doc.label, "a load forecast without a posting time in its name")
        else:
            raise ParseError(
                doc.label,
                "neither an NP6-345 actual load (OperDay ... TOTAL) nor an NP3-561 forecast "
                f"(DeliveryDate ... SystemTotal); found: {', '.join(header)[:300]}",
            )
        index = columns(header, (day_column, "HourEnding", *areas), doc.label)
        i_day, i_hour, i_flag = index[day_column], index["HourEnding"], index.get("DSTFlag", -1)
        cells = [(index[name], name, *area) for name, area in areas.items()]
        revision, label, fields = doc.revision, doc.label, header_index(header)
        for number, row in enumerate(rows, start=1):
            flag = row[i_flag] if i_flag >= 0 else None
            start = _hour_start(label, number, row[i_day], row[i_hour], flag)
            native = RowFields(fields, row)
            for i, name, area_id, area_type in cells:
                key = (revision, kind, area_id, start)
                load = _first(seen, key, row[i], label, number, name)
                if load is None:
                    continue
                out.append(
                    LoadRecord(
                        ISO,
                        area_id,
                        area_type,
                        start,
                        60,
                        load,
                        kind,
                        made_at,
                        revision,
                        PUBLISH_TIME,
                        source,
                        number,
                        native,
                    )
                )
    return out


class _RepeatedKeyError(ValueError):
    pass


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that refuses a key given twice with different values (json keeps the last
    silently); a key repeated with the same value is a verbatim duplicate and is read once."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise _RepeatedKeyError(f"{key!r} is given twice with different values")
        out[key] = value
    return out


def _dashboard_time(text: object, what: str, source: str) -> datetime:
    """A dashboard time, "2024-11-03 01:05:02-0600": local wall clock with its UTC offset."""
    if isinstance(text, str):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    raise ParseError(source, f"{what} is not a time like 2024-11-03 01:05:02-0600: {text!r}")


@collector_paused
def parse_fuel_mix(data: bytes, source: str) -> list[Record]:
    """The fuel-mix dashboard JSON -> FuelMixRecords, one per 5-minute stamp and fuel.

    `{"lastUpdated": ..., "monthlyCapacity": {...}, "data": {"<local day>": {"<stamp with
    offset>": {"<fuel>": {"gen": MW, ...}}}}}`. A stamp is a few seconds off its 5-minute tick;
    it stands for the interval starting at the nearest tick (one minute off at most). The
    revision is lastUpdated: a later publication of the same interval outranks an earlier one.
    """
    reject_unexpected(data, source, ("json",))
    try:
        body = json.loads(data, object_pairs_hook=_strict_object)
    except _RepeatedKeyError as exc:
        raise ParseError(source, f"not readable: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(source, f"invalid JSON ({exc}); truncated response?") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ParseError(source, f"not the fuel-mix dashboard: {error_document(data, source)}")
    revision = to_micros(_dashboard_time(body.get("lastUpdated"), "lastUpdated", source))
    out: list[Record] = []
    read: dict[datetime, tuple[str, object]] = {}  # tick -> (stamp, fuels) already read
    number = 0
    for day, stamps in body["data"].items():
        if not isinstance(stamps, dict):
            raise ParseError(source, f"data[{day!r}] is not an object of timestamps")
        for stamp, fuels in stamps.items():
            start = _tick(_dashboard_time(stamp, "a timestamp", source), stamp, source)
            earlier = read.setdefault(start, (stamp, fuels))
            if earlier[1] is not fuels:  # this tick was read before, under another day
                if earlier == (stamp, fuels):
                    continue
                raise ParseError(
                    source, f"{earlier[0]!r} and {stamp!r} fall on the same 5-minute tick"
                )
            if not isinstance(fuels, dict):
                raise ParseError(source, f"data[{day!r}][{stamp!r}] is not an object of fuels")
            for fuel, cell in fuels.items():
                number += 1
                fuel_type = feeds.FUEL_TYPES.get(fuel)
                gen = cell.get("gen") if type(cell) is dict else None
                if (
                    fuel_type is None
                    or isinstance(gen, bool)  # JSON true is no generation figure
                    or not isinstance(gen, (float, int))
                    or not math.isfinite(gen)
                ):
                    _bad_fuel(fuel, stamp, cell, source, number)
                out.append(
                    FuelMixRecord(
                        ISO,
                        start,
                        feeds.FUEL_MIX_MINUTES,
                        fuel_type,
                        fuel,
                        float(gen),
                        revision,
                        PUBLISH_TIME,
                        source,
                        number,
                        _DashboardFields(day, stamp, fuel, cell),
                    )
                )
    return out


class _DashboardFields(Mapping[str, str]):
    """A dashboard cell's native fields: day, timestamp and fuel, then the cell's own values as
    text (a key of the cell's replaces one of the first three). Built into a dict when first
    read, not for every record."""

    __slots__ = ("_cell", "_day", "_fields", "_fuel", "_stamp")

    def __init__(self, day: str, stamp: str, fuel: str, cell: dict[str, Any]) -> None:
        self._day, self._stamp, self._fuel, self._cell = day, stamp, fuel, cell
        self._fields: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        if self._fields is None:
            fields = {"day": self._day, "timestamp": self._stamp, "fuel": self._fuel}
            fields.update(zip(self._cell, map(str, self._cell.values()), strict=True))
            self._fields = fields
        return self._fields

    def __getitem__(self, name: str) -> str:
        return self._dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return repr(self._dict())


def _tick(instant: datetime, stamp: str, source: str) -> datetime:
    seconds = int(instant.timestamp())
    nearest = (seconds + _FIVE_MINUTES_S // 2) // _FIVE_MINUTES_S * _FIVE_MINUTES_S
    if abs(seconds - nearest) > 60:
        raise ParseError(source, f"timestamp {stamp!r} is more than a minute off a 5-minute tick")
    return datetime.fromtimestamp(nearest, tz=UTC)


def _bad_fuel(fuel: str, stamp: str, cell: object, source: str, number: int) -> NoReturn:
    if fuel not in feeds.FUEL_TYPES:
        known = ", ".join(feeds.FUEL_TYPES)
        raise ParseError(source, f"unknown fuel {fuel!r} at {stamp} (known: {known})", number)
    raise ParseError(source, f"{fuel} at {stamp}: gen is not a number: {cell!r}", number)


PARSERS: dict[Dataset, Parser] = {
    Dataset.LMP_DA_HOURLY: parse_dam_spp,
    Dataset.LMP_RT_15MIN: parse_rt_spp,
    Dataset.LMP_RT_5MIN: parse_sced_lmp,
    Dataset.AS_PRICES: parse_dam_mcpc,
    Dataset.LOAD: parse_load,
    Dataset.FUEL_MIX: parse_fuel_mix,
}
