"""The columnar path of the PJM parsers (see connectors.columnar): the regular case of every
Data Miner 2 format, checked a column at a time. Each function returns None for anything
irregular, and parse.py's row loops then read the payload (or name what is wrong with it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from connectors.columnar import (
    LABEL,
    NUMBER,
    Codes,
    Frame,
    RecordBatch,
    array,
    canonical,
    codes,
    csv_frame,
    distinct,
    encoded,
    floats,
    load_json,
    local_micros,
    pairs,
    texts,
    utc_datetimes,
    wall_micros,
)
from connectors.errors import ParseError
from connectors.pjm import feeds
from connectors.pjm.table import (
    VERIFIED_FLAGS,
    cell_text,
    json_table,
    same_instant,
    utc_instant,
)
from connectors.records import (
    PUBLISH_TIME,
    VERSION,
    LmpRecord,
    LoadRecord,
    Record,
)
from connectors.tabular import sniff
from schemas.timeutil import to_micros

ISO = "PJM"
_TIMES = {feeds.UTC_COLUMN: LABEL, feeds.EPT_COLUMN: LABEL}
EASTERN_ZONE = "America/New_York"  # connectors.pjm.table.EASTERN, by name for Arrow


# Below this size the row loop is the faster reader: the columnar path's fixed cost (about a
# millisecond of Arrow and NumPy calls) is what the row loop spends on a few hundred rows.
SMALL_PAYLOAD_BYTES = 32_768


def frame(data: bytes, kinds: Mapping[str, str]) -> Frame | None:
    """A CSV export, JSON page or JSON export as a Frame; None where irregular or small.
    `kinds`: the columns read, and how (see columnar.csv_frame)."""
    if len(data) < SMALL_PAYLOAD_BYTES:
        return None
    kind = sniff(data)
    if kind == "csv":
        return csv_frame(data, {**kinds, **_TIMES})
    if kind != "json":
        return None
    document = load_json(data)
    if document is None:
        return None
    try:  # the row path's own reading of a page; what it rejects, it is to name
        table = json_table(document, "")
    except (ParseError, KeyError, TypeError):
        return None
    if not table.cells:
        return None
    header, cells = table.header, table.cells
    width, at = table.width, table.index

    def column(name: str) -> Any:
        return array(cells[at[name] :: width])

    def natives() -> Callable[[int], Mapping[str, str]]:
        return lambda row: table.native(row * width)

    def cell_texts(name: str) -> list[str]:
        return texts(cells[at[name] :: width])

    return Frame(header, len(cells) // width, column, natives, cell_texts)


def starts(found: Frame, minutes: int) -> tuple[Codes, int, Codes] | None:
    """(per-row code, count, distinct UTC interval starts as epoch microseconds; see
    columnar.utc_datetimes) from the UTC label checked against
    the EPT label, once per distinct pair; None if a label does not convert, disagrees or is
    off the `minutes` grid (0: any time)."""
    utc = found.column(feeds.UTC_COLUMN)
    utc_codes = None if utc is None else encoded(utc)
    if utc_codes is None:
        return None
    if feeds.EPT_COLUMN not in found.header:
        row_pairs = utc_codes[0]
        utc_of_pair = np.arange(len(utc_codes[1]), dtype=np.int64)
        ept_codes, ept_of_pair = None, None
    else:
        ept = found.column(feeds.EPT_COLUMN)
        ept_codes = None if ept is None else encoded(ept)
        if ept_codes is None:
            return None
        row_pairs, distinct_pairs = pairs(
            utc_codes[0], len(utc_codes[1]), ept_codes[0], len(ept_codes[1])
        )
        utc_of_pair, ept_of_pair = distinct_pairs[:, 0], distinct_pairs[:, 1]
    micros = _vector_starts(utc_codes[1], ept_codes and ept_codes[1], utc_of_pair, ept_of_pair)
    if micros is None:  # labels in another form: converted one by one, as the row path does
        utc_labels = utc_codes[1].to_pylist()
        ept_labels = None if ept_codes is None else ept_codes[1].to_pylist()
        converted = _python_starts(utc_labels, ept_labels, utc_of_pair, ept_of_pair)
        if converted is None:
            return None
        micros = np.array([to_micros(start) for start in converted], np.int64)
    if minutes and (micros % (minutes * 60_000_000)).any():
        return None
    distinct_micros, inverse = np.unique(micros, return_inverse=True)
    return inverse[row_pairs], len(distinct_micros), distinct_micros


def _vector_starts(
    utc_labels: Any, ept_labels: Any, utc_of_pair: Codes, ept_of_pair: Codes | None
) -> Codes | None:
    """UTC microseconds of each distinct (UTC label, EPT label) pair, where both columns are
    in one strict form throughout and every EPT label is its UTC label in Eastern time."""
    for form in ("us12", "iso"):
        utc_micros = wall_micros(utc_labels, form)
        if utc_micros is not None:
            break
    else:
        return None
    starts_micros: Codes = utc_micros[utc_of_pair]
    if ept_labels is None or ept_of_pair is None:
        return starts_micros
    ept_micros = wall_micros(ept_labels, form)
    if ept_micros is None:
        return None
    if (local_micros(starts_micros, EASTERN_ZONE) != ept_micros[ept_of_pair]).any():
        return None
    return starts_micros


def _python_starts(
    utc_labels: list[Any],
    ept_labels: list[Any] | None,
    utc_of_pair: Codes,
    ept_of_pair: Codes | None,
) -> list[datetime] | None:
    converted: list[datetime] = []
    ept_codes = [None] * len(utc_of_pair) if ept_of_pair is None else ept_of_pair.tolist()
    for u, e in zip(utc_of_pair.tolist(), ept_codes, strict=True):
        try:
            start = utc_instant(cell_text(utc_labels[u]))
            if (
                e is not None
                and ept_labels is not None
                and not same_instant(cell_text(ept_labels[e]), start)
            ):
                return None
        except (ValueError, TypeError, OverflowError):
            return None
        converted.append(start)
    return converted


def _texts(
    found: Frame, name: str, *, non_empty: bool, strip: bool = False
) -> tuple[Codes, int, list[str]] | None:
    column = found.column(name)
    coded = None if column is None else codes(column)
    if coded is None:
        return None
    values = texts(coded[1])
    if strip:
        values = [value.strip() for value in values]
    if non_empty and "" in values:
        return None
    return canonical(values, coded[0])


def _versions(found: Frame) -> tuple[Codes, int, list[int]] | None:
    column = found.column("version_nbr")
    coded = None if column is None else codes(column)
    if coded is None:
        return None
    values: list[int] = []
    for label in coded[1]:
        try:
            values.append(int(cell_text(label).strip()))
        except ValueError:
            return None
    return canonical(values, coded[0])


def lmp(
    data: bytes, source: str, market: str, suffix: str, minutes: int, *, unverified: bool
) -> RecordBatch | None:
    """The columnar path of parse._parse_lmp."""
    names = ["pnode_id", "pnode_name", "type", f"total_lmp_{suffix}"]
    names += [f"congestion_price_{suffix}", f"marginal_loss_price_{suffix}"]
    names += [f"system_energy_price_{suffix}", "version_nbr"]
    # pnode_name is read when records are built (nothing checks it)
    kinds = [LABEL, None, LABEL, NUMBER, NUMBER, NUMBER, NUMBER, LABEL]
    read_as = {name: kind for name, kind in zip(names, kinds, strict=True) if kind}
    found = frame(data, read_as)
    if found is None:
        return None
    verified = not unverified or "version_nbr" in found.header
    names = ["pnode_id", "pnode_name", "type", f"total_lmp_{suffix}"]
    names += [f"congestion_price_{suffix}", f"marginal_loss_price_{suffix}"]
    if verified:
        names += [f"system_energy_price_{suffix}", "version_nbr"]
    if not found.has(feeds.UTC_COLUMN, *names):
        return None
    when = starts(found, minutes)
    pnodes = _texts(found, "pnode_id", non_empty=True)
    type_column = found.column("type")
    kind_codes = None if type_column is None else codes(type_column)
    location_types = (
        None if kind_codes is None else [feeds.LOCATION_TYPES.get(k) for k in kind_codes[1]]
    )
    total = found.column(f"total_lmp_{suffix}")
    congestion = found.column(f"congestion_price_{suffix}")
    loss = found.column(f"marginal_loss_price_{suffix}")
    energy = found.column(f"system_energy_price_{suffix}") if verified else None
    prices = [None if c is None else floats(c) for c in (total, congestion, loss, energy)]
    versions = _versions(found) if verified else (np.zeros(found.rows, np.int64), 1, [0])
    if (
        when is None
        or pnodes is None
        or kind_codes is None
        or location_types is None
        or None in location_types
        or versions is None
        or any(p is None for p in prices[:3])
        or (verified and prices[3] is None)
    ):
        return None
    if not distinct((pnodes[0], pnodes[1]), (when[0], when[1]), (versions[0], versions[1])):
        return None  # repeats: the row path keeps verbatim ones once, rejects conflicting ones
    revision_kind = VERSION if verified else PUBLISH_TIME
    total_values, congestion_values, loss_values, energy_values = prices

    def build() -> list[Record]:
        pnode_ids, revisions = pnodes[2], versions[2]
        interval_starts = utc_datetimes(when[2])
        types = location_types
        name_cells = found.texts("pnode_name")
        totals = total_values.tolist()  # type: ignore[union-attr]
        congestions = congestion_values.tolist()  # type: ignore[union-attr]
        losses = loss_values.tolist()  # type: ignore[union-attr]
        if energy_values is not None:
            energies = energy_values.tolist()
        else:  # the unverified feed omits energy: PJM's identity gives it, at its 6 decimals
            energies = [
                round(t - c - s, 6) for t, c, s in zip(totals, congestions, losses, strict=True)
            ]
        native = found.natives()
        return [
            LmpRecord(
                ISO,
                market,
                pnode_ids[p],
                name_cells[row] or None,
                types[k],
                interval_starts[s],
                minutes,
                totals[row],
                energies[row],
                congestions[row],
                losses[row],
                revisions[v],
                revision_kind,
                source,
                row + 1,
                native(row),
            )
            for row, (p, k, s, v) in _rows(pnodes[0], kind_codes[0], when[0], versions[0])
        ]

    return RecordBatch(found.rows, build)


def _rows(*codes: Codes) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row index, its code in each of `codes`) of every row, for building its record."""
    return enumerate(zip(*(row_codes.tolist() for row_codes in codes), strict=True))


def _raw_codes(found: Frame, name: str) -> tuple[Codes, list[Any]] | None:
    column = found.column(name)
    return None if column is None else codes(column)


_LOAD_KINDS = {
    "load_area": LABEL,
    "zone": LABEL,
    "mw": NUMBER,
    "is_verified": LABEL,
    "area": LABEL,
    "instantaneous_load": NUMBER,
}


def load(data: bytes, source: str) -> RecordBatch | None:
    """The columnar path of parse.parse_load: metered or instantaneous, told apart as there."""
    found = frame(data, _LOAD_KINDS)
    if found is None:
        return None
    if "instantaneous_load" in found.header or "area" in found.header:
        return _instantaneous_load(found, source)
    return _metered_load(found, source)


def _metered_load(found: Frame, source: str) -> RecordBatch | None:
    if not found.has(feeds.UTC_COLUMN, "load_area", "zone", "mw", "is_verified"):
        return None
    when = starts(found, 60)
    areas = _texts(found, "load_area", non_empty=True)
    zones = _texts(found, "zone", non_empty=False)
    flags = _raw_codes(found, "is_verified")
    mw = found.column("mw")
    load = None if mw is None else floats(mw)
    if when is None or areas is None or zones is None or flags is None or load is None:
        return None
    verified = [VERIFIED_FLAGS.get(flag) for flag in flags[1]]
    if None in verified:
        return None
    revisions = canonical([2 if flag else 1 for flag in verified], flags[0])  # as the row path
    if not distinct((areas[0], areas[1]), (when[0], when[1]), (revisions[0], revisions[1])):
        return None
    # the area's type depends on its zone cell: one type per distinct (area, zone)
    area_zone, distinct_pairs = pairs(areas[0], areas[1], zones[0], zones[1])
    area_types = [
        feeds.metered_area_type(areas[2][a], zones[2][z]) for a, z in distinct_pairs.tolist()
    ]

    def build() -> list[Record]:
        names, revision_of = areas[2], revisions[2]
        interval_starts = utc_datetimes(when[2])
        loads = load.tolist()
        native = found.natives()
        return [
            LoadRecord(
                ISO,
                names[a],
                area_types[t],
                interval_starts[s],
                60,
                loads[row],
                "ACTUAL",
                None,
                revision_of[v],
                VERSION,
                source,
                row + 1,
                native(row),
            )
            for row, (a, t, s, v) in _rows(areas[0], area_zone, when[0], revisions[0])
        ]

    return RecordBatch(found.rows, build)


def _instantaneous_load(found: Frame, source: str) -> RecordBatch | None:
    if not found.has(feeds.UTC_COLUMN, "area", "instantaneous_load"):
        return None
    when = starts(found, 0)
    areas = _texts(found, "area", non_empty=True)
    column = found.column("instantaneous_load")
    load = None if column is None else floats(column)
    if when is None or areas is None or load is None:
        return None
    # a snapshot's own time is its revision, so (area, snapshot) is the natural key here
    if not distinct((areas[0], areas[1]), (when[0], when[1])):
        return None
    if (when[2] < 0).any():  # before 1970 the row path's rounding differs (it truncates)
        return None
    # the snapshot's nearest 5-minute mark (parse.nearest_five_minutes, vectorised)
    seconds = when[2] // 1_000_000 + (when[2] % 1_000_000 >= 500_000)
    marks_micros = (seconds + 150) // 300 * 300 * 1_000_000
    named = [feeds.inst_area(area) for area in areas[2]]

    def build() -> list[Record]:
        loads = load.tolist()
        native = found.natives()
        marks = list(zip(utc_datetimes(marks_micros), when[2].tolist(), strict=True))
        out: list[Record] = []
        for row, (a, s) in enumerate(zip(areas[0].tolist(), when[0].tolist(), strict=True)):
            start, revision = marks[s]
            area = named[a]
            out.append(
                LoadRecord(
                    ISO,
                    area[0],  # area id
                    area[1],  # area type
                    start,
                    5,
                    loads[row],
                    "ACTUAL",
                    None,
                    revision,
                    PUBLISH_TIME,
                    source,
                    row + 1,
                    native(row),
                )
            )
        return out

    return RecordBatch(found.rows, build)


# parse._reserve_price: (hourly, start, product, service, locale, price, revision, source, row,
# native fields) -> the record of a reserve_market_results row.
ReservePrice = Callable[
    [bool, datetime, str, str, str, float, int, str, int, Mapping[str, str]], Record
]


def as_prices(
    data: bytes, source: str, revision: int, reserve_price: ReservePrice
) -> RecordBatch | None:
    """The columnar path of parse.parse_as_prices (reserve_market_results); `reserve_price`
    builds a row's record as the row path does."""
    found = frame(data, {"locale": LABEL, "service": LABEL, "mcp": NUMBER})
    if found is None or not found.has(feeds.UTC_COLUMN, "locale", "service", "mcp"):
        return None
    when = starts(found, 5)
    locales = _texts(found, "locale", non_empty=True, strip=True)
    services = _raw_codes(found, "service")
    column = found.column("mcp")
    price = None if column is None else floats(column)
    if when is None or locales is None or services is None or price is None:
        return None
    if not all(type(service) is str for service in services[1]):
        return None
    products = [feeds.AS_PRODUCTS.get(service) for service in services[1]]
    if None in products:
        return None
    service_codes = canonical(services[1], services[0])
    hourly_marks = when[2] < to_micros(feeds.RESERVE_FIVE_MINUTE_SINCE)
    if (hourly_marks & (when[2] % 3_600_000_000 != 0)).any():
        return None
    if not distinct(
        (locales[0], locales[1]), (service_codes[0], service_codes[1]), (when[0], when[1])
    ):
        return None
    # canonical() kept the first of equal services; products follow the canonical order
    product_of = [feeds.AS_PRODUCTS[service] for service in service_codes[2]]

    def build() -> list[Record]:
        names, service_names = locales[2], service_codes[2]
        interval_starts = utc_datetimes(when[2])
        hourly = hourly_marks.tolist()
        prices = price.tolist()
        native = found.natives()
        return [
            reserve_price(
                hourly[s],
                interval_starts[s],
                product_of[v],
                service_names[v],
                names[a],
                prices[row],
                revision,
                source,
                row + 1,
                native(row),
            )
            for row, (a, v, s) in _rows(locales[0], service_codes[0], when[0])
        ]

    return RecordBatch(found.rows, build)
