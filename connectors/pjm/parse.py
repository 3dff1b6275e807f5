"""Pure parsers of PJM Data Miner 2 responses: bytes in, typed records out, no I/O, no clock.

Each parser reads the API's JSON page, the web tool's JSON export and its CSV export of one
dataset's feeds (see feeds.py), recognised from the content. Interval starts come from
`datetime_beginning_utc`; `datetime_beginning_ept`, where present, must be the same instant in
Eastern time, so a file whose labels disagree is rejected rather than trusted.

A row repeated verbatim is one observation and is kept once; two rows with the same natural key
and revision but different values reject the file.

The loops are written for speed (payloads reach millions of rows): time labels are converted
once per distinct label, cells are read from one flat list, and records are built directly
(slotted dataclasses, cheap to construct).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from math import isfinite
from typing import Any

from connectors.errors import ParseError
from connectors.parsing import Parser, collector_paused
from connectors.pjm import columns as columnar
from connectors.pjm.feeds import (
    AS_PRODUCTS,
    EPT_COLUMN,
    FUEL_TYPES,
    LOCATION_TYPES,
    PUBLISHED_IN_NAME,
    RESERVE_FIVE_MINUTE_SINCE,
    UTC_COLUMN,
    inst_area,
    metered_area_type,
)
from connectors.pjm.table import (
    VERIFIED_FLAGS,
    Table,
    cell_text,
    nearest_five_minutes,
    read_table,
    same_instant,
    utc_instant,
)
from connectors.records import (
    PUBLISH_TIME,
    VERSION,
    AsPriceRecord,
    FuelMixRecord,
    LmpRecord,
    LoadRecord,
    Record,
)
from connectors.tabular import columns, to_float, to_int
from schemas.catalog import Dataset
from schemas.timeutil import to_micros

ISO = "PJM"
_PUBLISHED = re.compile(PUBLISHED_IN_NAME)


class _Rows:
    """One payload: its cells, the column offsets, the UTC start of each distinct time label
    (checked against its EPT label), and the observations seen (for repeats and conflicts)."""

    def __init__(self, table: Table, source: str, required: Sequence[str], minutes: int) -> None:
        self.table = table
        self.source = source
        self.minutes = minutes  # 0: no alignment required
        self.at = columns(table.header, [UTC_COLUMN, *required], source)
        self.utc_at = self.at[UTC_COLUMN]
        # without an EPT column the UTC label stands in for it (and is not checked twice)
        self.ept_at = self.at.get(EPT_COLUMN, self.utc_at)
        self.starts: dict[tuple[Any, Any], datetime] = {}
        self.seen: dict[tuple[object, ...], int] = {}

    def fail(self, problem: str, base: int) -> ParseError:
        """A ParseError at the row starting at cell `base`."""
        return ParseError(self.source, problem, base // self.table.width + 1)

    def start(self, base: int) -> datetime:
        """The UTC interval start of the row at `base`, converted and checked once per label."""
        cells = self.table.cells
        labels = (cells[base + self.utc_at], cells[base + self.ept_at])
        start = self.starts.get(labels)
        if start is None:
            start = self.starts[labels] = self._convert(labels, base)
        return start

    def _convert(self, labels: tuple[Any, Any], base: int) -> datetime:
        utc_text, ept_text = cell_text(labels[0]), cell_text(labels[1])
        try:
            start = utc_instant(utc_text)
        except ValueError:
            raise self.fail(f"{UTC_COLUMN} is not a timestamp: {utc_text!r}", base) from None
        if self.ept_at != self.utc_at:
            try:
                agrees = same_instant(ept_text, start)
            except ValueError:
                raise self.fail(f"{EPT_COLUMN} is not a timestamp: {ept_text!r}", base) from None
            if not agrees:
                raise self.fail(
                    f"{EPT_COLUMN} {ept_text!r} is not {UTC_COLUMN} {utc_text!r} in Eastern time",
                    base,
                )
        if self.minutes and (start.minute % self.minutes or start.second or start.microsecond):
            raise self.fail(f"{start.isoformat()} is not on a {self.minutes}-minute boundary", base)
        return start

    def number(self, base: int, name: str) -> float:
        """A cell as a finite float, or a ParseError naming the column and row."""
        cell = self.table.cells[base + self.at[name]]
        return to_float(cell_text(cell), self.source, base // self.table.width + 1, name)

    def value(self, base: int, name: str) -> float:
        """A cell as a finite float: float() reads the common case, `number` the rest."""
        try:
            value = float(self.table.cells[base + self.at[name]])
        except (TypeError, ValueError):
            return self.number(base, name)
        return value if isfinite(value) else self.number(base, name)

    def text(self, base: int, name: str) -> str:
        """A cell that must not be empty."""
        value = cell_text(self.table.cells[base + self.at[name]]).strip()
        if not value:
            raise self.fail(f"{name} is empty", base)
        return value

    def first_time(self, key: tuple[object, ...], base: int) -> bool:
        """False for a verbatim repeat of an earlier row; a ParseError for a conflicting one."""
        first = self.seen.setdefault(key, base)
        if first == base:
            return True
        cells, width = self.table.cells, self.table.width
        if cells[first : first + width] == cells[base : base + width]:
            return False
        raise self.fail(f"same observation as row {first // width + 1} with different values", base)

    def bases(self) -> range:
        """The first cell of every row."""
        return range(0, len(self.table.cells), self.table.width)

    def each(self) -> Iterator[tuple[int, int, datetime]]:
        """(row number, first cell, UTC interval start) of every row, in order."""
        cells, starts, utc_at, ept_at = self.table.cells, self.starts, self.utc_at, self.ept_at
        for number, base in enumerate(self.bases(), start=1):
            start = starts.get((cells[base + utc_at], cells[base + ept_at])) or self.start(base)
            yield number, base, start


def _published(source: str) -> int:
    """The publish time embedded in a response's name (epoch microseconds), else 0."""
    match = _PUBLISHED.search(source)
    if not match:
        return 0
    stamp = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return to_micros(stamp)


def _parse_lmp(
    data: bytes, source: str, market: str, suffix: str, minutes: int, *, unverified: bool
) -> Sequence[Record]:
    batch = columnar.lmp(data, source, market, suffix, minutes, unverified=unverified)
    if batch is not None:
        return batch
    table = read_table(data, source)
    # The unverified 5-minute feed has no version and no energy component; a verified export
    # always has version_nbr, so a renamed energy column is reported, not taken for unverified.
    verified = not unverified or "version_nbr" in table.header
    total_name, congestion_name, loss_name, energy_name = (
        f"total_lmp_{suffix}",
        f"congestion_price_{suffix}",
        f"marginal_loss_price_{suffix}",
        f"system_energy_price_{suffix}",
    )
    required = ["pnode_id", "pnode_name", "type", total_name, congestion_name, loss_name]
    if verified:
        required += [energy_name, "version_nbr"]
    rows = _Rows(table, source, required, minutes)
    at = rows.at
    id_at, name_at, type_at = at["pnode_id"], at["pnode_name"], at["type"]
    total_at, congestion_at, loss_at = at[total_name], at[congestion_name], at[loss_name]
    energy_at, version_at = (at[energy_name], at["version_nbr"]) if verified else (0, 0)
    kind = VERSION if verified else PUBLISH_TIME
    cells, seen = table.cells, rows.seen
    versions: dict[object, int] = {}
    out: list[Record] = []
    for number, base, start in rows.each():
        pnode = cell_text(cells[base + id_at])
        if not pnode:
            raise rows.fail("pnode_id is empty", base)
        location_type = LOCATION_TYPES.get(cells[base + type_at])
        if location_type is None:
            raise rows.fail(f"unknown pnode type {cells[base + type_at]!r}", base)
        try:
            total = float(cells[base + total_at])
            congestion = float(cells[base + congestion_at])
            loss = float(cells[base + loss_at])
            # the unverified feed omits energy: PJM's identity gives it, at PJM's 6 decimals
            energy = (
                float(cells[base + energy_at]) if verified else round(total - congestion - loss, 6)
            )
            finite = isfinite(total + congestion + loss + energy)
        except (TypeError, ValueError):
            finite = False
        if not finite:  # the slow path names the bad cell (and allows thousands separators)
            total = rows.number(base, total_name)
            congestion = rows.number(base, congestion_name)
            loss = rows.number(base, loss_name)
            if verified:
                energy = rows.number(base, energy_name)
            else:
                energy = round(total - congestion - loss, 6)
        revision = 0  # the unverified feed has no version: 0 ranks it below every verified one
        if verified:
            label = cells[base + version_at]
            revision = versions.get(label, -1)
            if revision < 0:
                revision = versions[label] = to_int(cell_text(label), source, number, "version_nbr")
        first = seen.setdefault((pnode, start, revision), base)
        if first == base or rows.first_time((pnode, start, revision), base):
            out.append(
                LmpRecord(
                    ISO,
                    market,
                    pnode,
                    cell_text(cells[base + name_at]) or None,
                    location_type,
                    start,
                    minutes,
                    total,
                    energy,
                    congestion,
                    loss,
                    revision,
                    kind,
                    source,
                    number,
                    table.native(base),
                )
            )
    return out


@collector_paused
def parse_lmp_da_hourly(data: bytes, source: str) -> Sequence[Record]:
    """Day-ahead hourly LMPs with components from `da_hrl_lmps` (since 2000-06-01), every
    version_nbr kept as its own revision."""
    return _parse_lmp(data, source, "DA_HOURLY", "da", 60, unverified=False)


@collector_paused
def parse_lmp_rt_hourly(data: bytes, source: str) -> Sequence[Record]:
    """Real-time hourly LMPs with components from `rt_hrl_lmps` (since 1998-04-01), every
    version_nbr kept as its own revision."""
    return _parse_lmp(data, source, "RT_HOURLY", "rt", 60, unverified=False)


@collector_paused
def parse_lmp_rt_5min(data: bytes, source: str) -> Sequence[Record]:
    """Real-time 5-minute LMPs from `rt_fivemin_hrl_lmps` (verified, about 186 days with
    filters) or `rt_unverified_fivemin_lmps` (the most recent days; energy derived, revision 0)."""
    return _parse_lmp(data, source, "RT_5MIN", "rt", 5, unverified=True)


@collector_paused
def parse_load(data: bytes, source: str) -> Sequence[Record]:
    """Actual load from `hrl_load_metered` (hourly per load area, since 1993) or `inst_load`
    (5-minute snapshots per area, about the last 30 days), told apart by their columns."""
    batch = columnar.load(data, source)
    if batch is not None:
        return batch
    table = read_table(data, source)
    if "instantaneous_load" in table.header or "area" in table.header:
        return _instantaneous_load(table, source)
    return _metered_load(table, source)


def _metered_load(table: Table, source: str) -> Sequence[Record]:
    rows = _Rows(table, source, ["load_area", "zone", "mw", "is_verified"], 60)
    at = rows.at
    area_at, zone_at, verified_at = at["load_area"], at["zone"], at["is_verified"]
    cells, seen = table.cells, rows.seen
    out: list[Record] = []
    for number, base, start in rows.each():
        area = cell_text(cells[base + area_at])
        if not area:
            raise rows.fail("load_area is empty", base)
        area_type = metered_area_type(area, cell_text(cells[base + zone_at]))
        verified = VERIFIED_FLAGS.get(cells[base + verified_at])
        if verified is None:
            raise rows.fail(f"is_verified is not a flag: {cells[base + verified_at]!r}", base)
        revision = 2 if verified else 1  # preliminary, then verified
        load = rows.value(base, "mw")
        first = seen.setdefault((area, start, revision), base)
        if first == base or rows.first_time((area, start, revision), base):
            out.append(
                LoadRecord(
                    ISO,
                    area,
                    area_type,
                    start,
                    60,
                    load,
                    "ACTUAL",
                    None,
                    revision,
                    VERSION,
                    source,
                    number,
                    table.native(base),
                )
            )
    return out


def _instantaneous_load(table: Table, source: str) -> Sequence[Record]:
    rows = _Rows(table, source, ["area", "instantaneous_load"], 0)
    area_at = rows.at["area"]
    marks: dict[datetime, tuple[datetime, int]] = {}
    areas: dict[str, tuple[str, str]] = {}  # area -> (area id, area type)
    cells, seen = table.cells, rows.seen
    out: list[Record] = []
    for number, base, stamp in rows.each():
        mark = marks.get(stamp)
        if mark is None:
            # the snapshot's own time is its revision: the later one for an interval wins
            mark = marks[stamp] = (nearest_five_minutes(stamp), to_micros(stamp))
        start, revision = mark
        area = cell_text(cells[base + area_at])
        named = areas.get(area)
        if named is None:
            if not area:
                raise rows.fail("area is empty", base)
            named = areas[area] = inst_area(area)
        load = rows.value(base, "instantaneous_load")
        first = seen.setdefault((area, start, revision), base)
        if first == base or rows.first_time((area, start, revision), base):
            out.append(
                LoadRecord(
                    ISO,
                    named[0],  # area id
                    named[1],  # area type
                    start,
                    5,
                    load,
                    "ACTUAL",
                    None,
                    revision,
                    PUBLISH_TIME,
                    source,
                    number,
                    table.native(base),
                )
            )
    return out


@collector_paused
def parse_fuel_mix(data: bytes, source: str) -> Sequence[Record]:
    """Hourly generation by fuel from `gen_by_fuel` (since 2016-01-01). The feed has no version:
    the revision is the publish time in the response's name (`pub<YYYYMMDDTHHMMSSZ>`), else 0."""
    table = read_table(data, source)
    rows = _Rows(table, source, ["fuel_type", "mw"], 60)
    fuel_at = rows.at["fuel_type"]
    revision = _published(source)
    cells, seen = table.cells, rows.seen
    out: list[Record] = []
    for number, base, start in rows.each():
        native = cells[base + fuel_at]
        fuel = FUEL_TYPES.get(native)
        if fuel is None:
            raise rows.fail(f"unknown fuel_type {native!r}", base)
        generation = rows.value(base, "mw")
        first = seen.setdefault((native, start), base)
        if first == base or rows.first_time((native, start), base):
            out.append(
                FuelMixRecord(
                    ISO,
                    start,
                    60,
                    fuel,
                    native,
                    generation,
                    revision,
                    PUBLISH_TIME,
                    source,
                    number,
                    table.native(base),
                )
            )
    return out


def _reserve_price(
    hourly: bool,
    start: datetime,
    product: str,
    service: str,
    locale: str,
    price: float,
    revision: int,
    source: str,
    row: int,
    native: Mapping[str, str],
) -> AsPriceRecord:
    """The record of a reserve_market_results row, for both paths (the columnar one is given
    it): an hourly price before RESERVE_FIVE_MINUTE_SINCE, a 5-minute one since."""
    market, minutes = ("RT_HOURLY", 60) if hourly else ("RT_5MIN", 5)
    return AsPriceRecord(
        ISO,
        market,
        start,
        minutes,
        product,
        service,
        locale,
        price,
        revision,
        PUBLISH_TIME,
        source,
        row,
        native,
    )


@collector_paused
def parse_as_prices(data: bytes, source: str) -> Sequence[Record]:
    """Real-time reserve and regulation clearing prices (`mcp`) per locale and service from
    `reserve_market_results` (since 2013-06-14; hourly until 2022-09-01 EPT, then 5-minute).
    The feed has no version: the revision is the publish time in the response's name, else 0."""
    batch = columnar.as_prices(data, source, _published(source), _reserve_price)
    if batch is not None:
        return batch
    table = read_table(data, source)
    rows = _Rows(table, source, ["locale", "service", "mcp"], 5)
    service_at, locale_at = rows.at["service"], rows.at["locale"]
    revision = _published(source)
    cells, seen = table.cells, rows.seen
    locales: dict[str, str] = {}  # a locale cell's text -> the locale, checked once
    out: list[Record] = []
    for number, base, start in rows.each():
        hourly = start < RESERVE_FIVE_MINUTE_SINCE
        if hourly and start.minute:
            raise rows.fail(f"{start.isoformat()} is not on an hour before 5-minute pricing", base)
        service = cells[base + service_at]
        product = AS_PRODUCTS.get(service)
        if product is None:
            raise rows.fail(f"unknown reserve service {service!r}", base)
        cell = cells[base + locale_at]
        locale = locales.get(cell) if type(cell) is str else None  # JSON 1 == True: text only
        if locale is None:
            locale = rows.text(base, "locale")
            if type(cell) is str:
                locales[cell] = locale
        price = rows.value(base, "mcp")
        first = seen.setdefault((locale, service, start), base)
        if first == base or rows.first_time((locale, service, start), base):
            native = table.native(base)
            out.append(
                _reserve_price(
                    hourly, start, product, service, locale, price, revision, source, number, native
                )
            )
    return out


PARSERS: dict[Dataset, Parser] = {
    Dataset.LMP_DA_HOURLY: parse_lmp_da_hourly,
    Dataset.LMP_RT_5MIN: parse_lmp_rt_5min,
    Dataset.LMP_RT_HOURLY: parse_lmp_rt_hourly,
    Dataset.LOAD: parse_load,
    Dataset.FUEL_MIX: parse_fuel_mix,
    Dataset.AS_PRICES: parse_as_prices,
}
