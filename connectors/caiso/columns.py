"""The columnar path of the CAISO parsers (see connectors.columnar): the regular case of the
OASIS CSV reports (LMP, AS prices, SLD_FCST) and of the Today's Outlook demand CSV, checked a
column at a time. Each function returns None for anything irregular, and the row loops of
prices.py and parse.py then read the payload (or name what is wrong with it).

OASIS CSVs are read with Arrow (columnar.csv_stack: the reports of a response in one read), only
the columns a parser needs; a record's native fields are its source line split at commas, which
is what the row path's reader does for a file without quotes. So a report is read here only
where Arrow's rows are exactly the row path's lines (the rules in _LINES): no quotes, no
carriage return outside a CRLF, no empty line before the end, valid UTF-8, a header without
repeated names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import columnar as core
from connectors.caiso.feeds import (
    AS_MARKETS,
    AS_PRICE_ITEMS,
    AS_PRODUCTS,
    COMPONENT_NATIVE,
    DAILY_FORECAST_PUBLISHED_AT,
    ISO,
    LMP_COMPONENTS,
    LOAD_SERIES,
    OUTLOOK_DEMAND_COLUMNS,
    OUTLOOK_MINUTES,
    OUTLOOK_TIME,
    area_type,
    location_type,
)
from connectors.caiso.oasis import NativeRow, _revision, _utc_text, published_in_name
from connectors.caiso.outlook import _day_of, _label, _steady_offset, demand_record
from connectors.columnar import (
    Codes,
    Floats,
    RecordBatch,
    canonical,
    codes,
    distinct,
    floats,
    pairs,
)
from connectors.errors import ParseError
from connectors.records import PUBLISH_TIME, AsPriceRecord, LmpRecord, LoadRecord, Record
from connectors.tabular import open_zip, sniff
from schemas.timeutil import wall_to_utc, zone

_TZ = zone(ISO)
# A component's place in an LMP group: lmp, energy, congestion, loss, ghg.
_SLOTS = {"lmp": 0, "energy": 1, "congestion": 2, "loss": 3, "ghg": 4}


# --- reading --------------------------------------------------------------------------------


# How oasis.csv_rows splits a report: at LF only (a CR before it dropped), an empty line inside
# the table an error and trailing ones ignored, any other byte a cell's; a header may name a
# column "". The reports of a response with one header line are read as one table, and a
# report with another header line starts a table of its own.
_LINES = core.CsvRules(
    lone_cr=False,
    blank_lines=False,
    splitlines=False,
    blank_names=True,
    one_header=False,
    threads=False,  # the reader competes with other work for two cores: one thread is steadier
)


class _Oasis:
    """The CSV reports of an OASIS response and the columns a parser asked for, read together
    (a stack), with each report's revision."""

    def __init__(self, stack: core.Stack, revisions: list[int]) -> None:
        self.stack = stack
        self.revision_of = revisions  # per report

    def column(self, name: str) -> pa.Array:
        return _column(self.stack, name)

    def coded(self, name: str) -> tuple[Codes, list[str]] | None:
        return codes(self.column(name))

    def numbers(self, name: str) -> Floats | None:
        return floats(self.column(name))

    def values(self, name: str) -> tuple[Codes, list[str], list[float]] | None:
        """(code of each row's cell, the distinct cells, their numbers) of a column whose
        every cell is a finite number."""
        encoded = self.column(name).dictionary_encode()
        numbers = floats(encoded.dictionary)
        if numbers is None:
            return None
        return (
            encoded.indices.to_numpy().astype(np.int64, copy=False),
            encoded.dictionary.to_pylist(),
            numbers.tolist(),
        )

    def per_report(self) -> tuple[Codes, Codes]:
        """(report index of each row, row number within its report, from 1)."""
        return self.stack.which(), self.stack.numbers()

    def revisions(self) -> tuple[Codes, int, list[int]]:
        """Each row's revision (its report's), as canonical codes."""
        return canonical(self.revision_of, self.stack.which())

    def lines(self) -> list[str]:
        """Each row's data line, as the row path's reader splits the text."""
        return self.stack.lines()

    def headers(self) -> list[list[str]]:
        return [report.header for report in self.stack.reports]

    def provenance(self) -> Iterator[tuple[int, int, NativeRow]]:
        """What each row's record says of its source, row by row: (its report's revision, its
        number within its report, its fields: the line split at commas under the header)."""
        which, numbers = self.per_report()
        headers, revision_of = self.headers(), self.revision_of
        for line, at, number in zip(self.lines(), which.tolist(), numbers.tolist(), strict=True):
            yield revision_of[at], number, NativeRow(headers[at], line.split(","))


def _column(stack: core.Stack, name: str) -> pa.Array:
    """A column the stack has read (every table has: checked when it was read)."""
    found = stack.column(name)
    assert found is not None
    return found


def _members(data: bytes, source: str) -> list[tuple[str, bytes]] | None:
    """(member name, bytes) of each report of an OASIS response (a zip, or one CSV); None
    where the row path is to name what is wrong with it."""
    if core.row_path_forced():
        return None
    kind = sniff(data)
    if kind == "csv":
        return [("", data)]
    if kind != "zip":
        return None
    try:
        members = open_zip(data, source)
    except ParseError:
        return None
    return members or None


def _revision_of(member: str, source: str) -> int | None:
    try:
        return _revision(member, source, None)
    except (ValueError, ParseError):  # a stamp that is no time: the row path's to name
        return None


def _reports(data: bytes, source: str, names: Sequence[str]) -> _Oasis | None:
    """Every report of an OASIS response with the named columns; None where any is not a
    plain CSV (XML, an error document, quotes...) or has no rows."""
    members = _members(data, source)
    if members is None:
        return None
    revisions: list[int] = []
    for member, data_of in members:
        revision = _revision_of(member, source)
        if revision is None or sniff(data_of) != "csv":
            return None
        revisions.append(revision)
    stack = core.csv_stack(
        [data_of for _, data_of in members], dict.fromkeys(names, core.TEXT), _LINES
    )
    if stack is None or not stack.has(*names) or 0 in stack.counts:
        return None
    return _Oasis(stack, revisions)


def _instants(texts: list[str]) -> tuple[list[datetime], Codes] | None:
    """(UTC instant, epoch seconds) of each distinct time cell, as oasis._utc_text reads it;
    None where one is not a time, or not a whole second."""
    try:
        instants = [_utc_text(text) for text in texts]
    except (ValueError, TypeError, OverflowError):
        return None
    if any(value.microsecond for value in instants):
        return None
    seconds = np.array([value.timestamp() for value in instants]).astype(np.int64)
    return instants, seconds


def _spans(
    start: tuple[Codes, list[str]], end: tuple[Codes, list[str]]
) -> tuple[Codes, list[tuple[datetime, int]]] | None:
    """(code of each row's (start, end) pair, (UTC start, minutes) of each distinct pair), read
    as oasis.Spans reads them; None where a pair is not a whole number of minutes or a cell not
    a time."""
    row, found = pairs(start[0], len(start[1]), end[0], len(end[1]))
    firsts, lasts = _instants(start[1]), _instants(end[1])
    if firsts is None or lasts is None:
        return None
    seconds = lasts[1][found[:, 1]] - firsts[1][found[:, 0]]
    if not ((seconds > 0) & (seconds % 60 == 0)).all():
        return None
    starts = firsts[0]
    return row, [
        (starts[s], m) for s, m in zip(found[:, 0].tolist(), (seconds // 60).tolist(), strict=True)
    ]


# --- LMP ------------------------------------------------------------------------------------


def _groups(group: Codes, n_groups: int, slot: Codes) -> Codes | None:
    """The row of each component (columns: _SLOTS) of each group, groups in the order they
    first appear (the row path's dict order), -1 where a group lacks a component; None where a
    group has a component twice or lacks what the row path requires (its LMP row; energy,
    congestion and loss all or none)."""
    if not distinct((group, n_groups), (slot, len(_SLOTS))):
        return None  # a component twice: verbatim (kept once) or conflicting, the row path's
    at = np.full((n_groups, len(_SLOTS)), -1, dtype=np.int64)
    at[group, slot] = np.arange(len(group), dtype=np.int64)
    has = at >= 0
    if not has[:, 0].all():
        return None  # components without an LMP row
    parts = has[:, 1:4]
    if not (parts.all(1) | ~parts.any(1)).all():
        return None  # some of energy, congestion and loss but not all
    order = np.argsort(np.where(has, at, len(group)).min(1), kind="stable")
    found: Codes = at[order]
    return found


def _extras(texts: list[list[str | None]]) -> list[dict[str, str]]:
    """Each record's component cells under their native names (energy, congestion and loss
    where present, then ghg where present), as the row path adds them to the LMP row's."""
    energy, congestion, loss, ghg = texts
    names = [COMPONENT_NATIVE[name] for name in ("energy", "congestion", "loss", "ghg")]
    if None not in energy and None not in ghg:  # every record has every component
        e, c, lo, g = names
        return [
            {e: ev, c: cv, lo: lv, g: gv}  # type: ignore[dict-item]
            for ev, cv, lv, gv in zip(energy, congestion, loss, ghg, strict=True)
        ]
    out = []
    for cells in zip(energy, congestion, loss, ghg, strict=True):
        extra: dict[str, str] = {}
        if cells[0] is not None:
            extra = dict(zip(names[:3], cells[:3], strict=True))  # type: ignore[arg-type]
        if cells[3] is not None:
            extra[names[3]] = cells[3]
        out.append(extra)
    return out


def lmp(
    data: bytes,
    source: str,
    names: tuple[str, ...],
    market_run: str,
    minutes: int,
    market: str,
) -> RecordBatch | None:
    """The columnar path of prices.lmp_parser's parse: `names` are its CSV columns (start,
    end, market run, node id, node name, component, value)."""
    reports = _reports(data, source, names)
    if reports is None:
        return None
    n_start, n_end, n_run, n_node, n_name, n_component, n_value = names
    runs, components = reports.coded(n_run), reports.coded(n_component)
    if runs is None or components is None or any(run != market_run for run in runs[1]):
        return None
    slots = [_SLOTS.get(LMP_COMPONENTS.get(code, ""), -1) for code in components[1]]
    start, end = reports.coded(n_start), reports.coded(n_end)
    spans = None if start is None or end is None else _spans(start, end)
    if -1 in slots or spans is None or any(length != minutes for _, length in spans[1]):
        return None
    when = canonical([first for first, _ in spans[1]], spans[0])
    nodes, labels = reports.coded(n_node), reports.coded(n_name)
    values = reports.values(n_value)
    if nodes is None or labels is None or values is None:
        return None
    which, local = reports.per_report()
    revisions = reports.revisions()
    # one group per (node, interval start, revision): the row path's pivot key
    group, found = pairs(nodes[0], len(nodes[1]), when[0], when[1])
    group, found = pairs(group, len(found), revisions[0], revisions[1])
    at = _groups(group, len(found), np.asarray(slots, dtype=np.int64)[components[0]])
    if at is None:
        return None
    rows = at[:, 0]  # each record's LMP row: its name, source row and native fields
    value_code, texts, numbers = values
    kinds = [location_type(node) for node in nodes[1]]
    header_of = reports.headers()

    def build() -> list[Record]:
        lines = reports.lines()
        cells: list[list[str | None]] = []
        parts: list[list[float | None]] = []
        for slot in (1, 2, 3, 4):
            picked = value_code[at[:, slot]].tolist()
            present = (at[:, slot] >= 0).tolist()
            cells.append([texts[c] if p else None for c, p in zip(picked, present, strict=True)])
            parts.append([numbers[c] if p else None for c, p in zip(picked, present, strict=True)])
        node_ids, node_names, starts, revision_values = nodes[1], labels[1], when[2], revisions[2]
        columns = zip(
            rows.tolist(),
            nodes[0][rows].tolist(),
            labels[0][rows].tolist(),
            when[0][rows].tolist(),
            revisions[0][rows].tolist(),
            value_code[rows].tolist(),
            which[rows].tolist(),
            local[rows].tolist(),
            *parts[:3],
            _extras(cells),
            strict=True,
        )
        return [
            LmpRecord(
                ISO,
                market,
                node_ids[node],
                node_names[name] or None,
                kinds[node],
                starts[first],
                minutes,
                numbers[total],
                energy,
                congestion,
                loss,
                revision_values[revision],
                PUBLISH_TIME,
                source,
                number,
                NativeRow(header_of[report], lines[row].split(","), extra),
            )
            for (
                row,
                node,
                name,
                first,
                revision,
                total,
                report,
                number,
                energy,
                congestion,
                loss,
                extra,
            ) in columns
        ]

    return RecordBatch(len(at), build)


# --- AS prices ------------------------------------------------------------------------------


def as_prices(data: bytes, source: str, names: tuple[str, ...]) -> RecordBatch | None:
    """The columnar path of prices.parse_as_prices (CSV reports): `names` are its columns
    (start, end, market run, ANC_TYPE, ANC_REGION, XML_DATA_ITEM, value)."""
    reports = _reports(data, source, names)
    if reports is None:
        return None
    n_start, n_end, n_run, n_type, n_region, n_item, n_value = names
    items, types = reports.coded(n_item), reports.coded(n_type)
    start, end = reports.coded(n_start), reports.coded(n_end)
    runs, regions = reports.coded(n_run), reports.coded(n_region)
    values = reports.numbers(n_value)
    if (
        items is None
        or types is None
        or start is None
        or end is None
        or runs is None
        or regions is None
        or values is None
    ):
        return None
    # the product: the item's ANC_TYPE, which the row's ANC_TYPE must be
    product_row, product_pairs = pairs(items[0], len(items[1]), types[0], len(types[1]))
    anc_types: list[str] = []
    for i, t in product_pairs.tolist():
        anc_type = types[1][t]
        if anc_type not in AS_PRODUCTS or AS_PRICE_ITEMS.get(items[1][i]) != anc_type:
            return None
        anc_types.append(anc_type)
    products = canonical(anc_types, product_row)
    spans = _spans(start, end)
    if spans is None:
        return None
    market_row, market_pairs = pairs(runs[0], len(runs[1]), spans[0], len(spans[1]))
    market_names: list[str] = []
    for r, s in market_pairs.tolist():
        market = AS_MARKETS.get((runs[1][r], spans[1][s][1]))
        if market is None:
            return None
        market_names.append(market)
    markets = canonical(market_names, market_row)
    when = canonical([first for first, _ in spans[1]], spans[0])
    revisions = reports.revisions()
    if not distinct(
        (markets[0], markets[1]),
        (regions[0], len(regions[1])),
        (products[0], products[1]),
        (when[0], when[1]),
        (revisions[0], revisions[1]),
    ):
        return None  # a repeated observation: verbatim (kept once) or conflicting
    minutes_of = [minutes for _, minutes in spans[1]]

    def build() -> list[Record]:
        market_values, product_values, start_values = markets[2], products[2], when[2]
        return [
            AsPriceRecord(
                ISO,
                market_values[m],
                start_values[s],
                minutes_of[span],
                AS_PRODUCTS[product_values[p]],
                product_values[p],
                regions[1][g],
                value,
                revision,
                PUBLISH_TIME,
                source,
                number,
                native,
            )
            for m, s, span, p, g, value, (revision, number, native) in zip(
                markets[0].tolist(),
                when[0].tolist(),
                spans[0].tolist(),
                products[0].tolist(),
                regions[0].tolist(),
                values.tolist(),
                reports.provenance(),
                strict=True,
            )
        ]

    return RecordBatch(len(revisions[0]), build)


# --- SLD_FCST -------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _published(day_text: str, days_ahead: int) -> datetime | None:
    """When a daily forecast of an operating day was published (parse._made_at)."""
    try:
        day = date.fromisoformat(day_text[:10])
    except ValueError:
        return None
    wall = datetime.combine(day - timedelta(days=days_ahead), time(*DAILY_FORECAST_PUBLISHED_AT))
    return wall_to_utc(_TZ, wall)


_LoadContext = tuple[str, datetime, int, datetime | None]  # parse._LoadContext


def _load_contexts(cells: list[list[str]]) -> list[_LoadContext] | None:
    """parse._load_context of each distinct (item, start, end, market run, operating day);
    None where the row path would reject one."""
    texts = list(dict.fromkeys(text for _, start, end, *_ in cells for text in (start, end)))
    found = _instants(texts)
    if found is None:
        return None
    instants = dict(zip(texts, zip(found[0], found[1].tolist(), strict=True), strict=True))
    out: list[_LoadContext] = []
    for item, start, end, run, day in cells:
        series = LOAD_SERIES.get(item)
        if series is None or run != series.market_run_id:
            return None
        first, seconds = instants[start]
        seconds = instants[end][1] - seconds
        if seconds <= 0 or seconds % 60 or seconds // 60 != series.minutes:
            return None
        made_at: datetime | None = None
        if series.lead is not None:
            made_at = first - series.lead
        elif series.days_ahead is not None:
            made_at = _published(day, series.days_ahead)
            if made_at is None:
                return None
        out.append((series.kind, first, series.minutes, made_at))
    return out


def sld_fcst(data: bytes, source: str, names: tuple[str, ...]) -> RecordBatch | None:
    """The columnar path of parse._sld_fcst over every report (CSV): `names` are its columns
    (start, end, market run, area, item, value, operating day)."""
    reports = _reports(data, source, names)
    if reports is None:
        return None
    n_start, n_end, n_run, n_area, n_item, n_value, n_day = names
    # What a row's item, times, market run and operating day say, once per distinct tuple (the
    # cells hold no commas: the file has no quotes).
    found = codes(
        pc.binary_join_element_wise(
            *(reports.column(name) for name in (n_item, n_start, n_end, n_run, n_day)), ","
        )
    )
    areas, values = reports.coded(n_area), reports.numbers(n_value)
    if found is None or areas is None or values is None:
        return None
    cells = [context.split(",") for context in found[1]]
    contexts = _load_contexts(cells)
    if contexts is None:
        return None
    revisions = reports.revisions()
    # the row path's key: (revision, area, item, start cell)
    keys = canonical([(item, start) for item, start, *_ in cells], found[0])
    if not distinct((revisions[0], revisions[1]), (areas[0], len(areas[1])), (keys[0], keys[1])):
        return None  # a repeated observation: verbatim (kept once) or conflicting
    context_row = found[0]
    area_types = [area_type(area) for area in areas[1]]

    def build() -> list[Record]:
        area_values = areas[1]
        return [
            LoadRecord(
                ISO,
                area_values[a],
                area_types[a],
                contexts[c][1],
                contexts[c][2],
                value,
                contexts[c][0],
                contexts[c][3],
                revision,
                PUBLISH_TIME,
                source,
                number,
                native,
            )
            for a, c, value, (revision, number, native) in zip(
                areas[0].tolist(),
                context_row.tolist(),
                values.tolist(),
                reports.provenance(),
                strict=True,
            )
        ]

    return RecordBatch(len(revisions[0]), build)


# --- Today's Outlook demand -----------------------------------------------------------------

_DATED = r"^\d\d/\d\d/\d\d\d\d \d\d:\d\d$"
_CLOCK = r"^\d\d:\d\d$"
# The ASCII characters besides space that str.strip() removes: a file with any is left to the
# row path (there a cell of them is blank).
_STRIPPED = (b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


def _lengths(column: pa.Array) -> Codes:
    """The length of each cell of a text column, from its offsets."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    return np.diff(offsets[column.offset : column.offset + len(column) + 1]).astype(np.int64)


def _outlook_ends(labels: pa.Array, dated: bool, source: str) -> Codes | None:
    """Each label's UTC instant (epoch microseconds), placed as outlook_intervals places the
    labels of days without a clock change; None where a label is off the grid or not a time, or
    a day changes its clocks."""
    clocks = codes(pc.utf8_slice_codeunits(labels, 11, 16) if dated else labels)
    if clocks is None:
        return None
    try:
        minute_of = [_label(clock)[1] for clock in clocks[1]]
    except ValueError:
        return None
    if any(minute % OUTLOOK_MINUTES for minute in minute_of):
        return None
    minutes = np.asarray(minute_of, dtype=np.int64)[clocks[0]]
    if dated:
        found = codes(pc.utf8_slice_codeunits(labels, 0, 10))
        if found is None:
            return None
        try:
            day_of = [_label(f"{day} 00:00")[0] for day in found[1]]
        except ValueError:
            return None
        day_codes = found[0]
    else:
        try:
            first = _day_of(source)
        except ParseError:
            return None
        # the row path's day count: a label more than half a day before the one above it is
        # on the next day (the trailing 00:00)
        later = np.zeros(len(minutes), dtype=np.int64)
        later[1:] = minutes[1:] < minutes[:-1] - 12 * 60
        day_codes = np.cumsum(later)
        day_of = [first + timedelta(days=k) for k in range(int(day_codes[-1]) + 1)]
    steps: list[int] = []
    for day in day_of:
        offset = None if day is None else _steady_offset(day)
        if offset is None or day is None:
            return None  # a day the clocks change: the row path places its labels
        midnight = datetime.combine(day, time(), tzinfo=UTC) - offset
        steps.append((midnight - core.EPOCH) // timedelta(microseconds=1))
    ends: Codes = np.asarray(steps, dtype=np.int64)[day_codes] + minutes * 60_000_000
    return ends


def outlook_demand(data: bytes, source: str) -> RecordBatch | None:
    """The columnar path of parse._outlook_demand, for files whose labels all fall on days
    without a clock change (the row path places the labels of those days)."""
    if core.row_path_forced() or not data.isascii() or any(c in data for c in _STRIPPED):
        return None
    found = core.csv_stack([data], None, _LINES)
    if found is None:
        return None
    header = found.header
    present = [name for name in OUTLOOK_DEMAND_COLUMNS if name in header]
    if header[0] != OUTLOOK_TIME or len(present) != 1:
        return None
    labels = _column(found, header[0])
    if pc.all(pc.match_substring_regex(labels, _DATED)).as_py():
        dated = True
    elif pc.all(pc.match_substring_regex(labels, _CLOCK)).as_py():
        dated = False
    else:
        return None
    # Then the only spaces in the data are the labels' (one each, or none): no cell is padded,
    # so a cell is blank exactly when it is empty.
    if data.count(b" ", data.find(b"\n")) != (found.rows if dated else 0):
        return None
    published = np.zeros(found.rows, dtype=bool)
    for name in header[1:]:
        published |= _lengths(_column(found, name)) > 0
    ends = _outlook_ends(labels, dated, source)
    if ends is None:
        return None
    shown = np.flatnonzero(published)
    if len(shown) > 1 and not (np.diff(ends[shown]) > 0).all():
        return None  # out of order or repeated: the row path keeps or rejects
    demand = _column(found, present[0])
    rows = np.flatnonzero(_lengths(demand) > 0)
    numbers = floats(demand.take(pa.array(rows))) if len(rows) else np.zeros(0)
    if numbers is None:
        return None
    step = OUTLOOK_MINUTES * 60_000_000
    starts = [
        start.replace(tzinfo=UTC) for start in (ends[rows] - step).astype("datetime64[us]").tolist()
    ]
    revision = published_in_name(source) or 0

    def build() -> list[Record]:
        lines = found.lines()
        return [
            demand_record(
                start, value, revision, source, row + 1, NativeRow(header, lines[row].split(","))
            )
            for row, start, value in zip(rows.tolist(), starts, numbers.tolist(), strict=True)
        ]

    return RecordBatch(len(rows), build)
