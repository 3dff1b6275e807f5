"""A Data Miner 2 response as one table of cells, whatever its format, and PJM's timestamps.

Formats, recognised from the content:
- the API's JSON page: an object with `items` (row objects), `totalRows`, `links`;
- the web tool's JSON export: a bare list of row objects;
- the web tool's CSV export: a header row, then data rows (CRLF).
An error document (`{"errors": [...]}` from the API, or the gateway's
`{"statusCode": 401, "message": ...}`) is rejected as such, never read as an empty result.

The cells of all rows are kept in one flat list (row n, 1-based, is
`cells[(n - 1) * width : n * width]`): splitting a whole CSV export at once, or gathering a JSON
page with itemgetter, runs in C, where a list per row would not.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from connectors.errors import NoDataError, ParseError
from connectors.tabular import decode_text, load_json, reject_unexpected
from schemas.timeutil import zone

EASTERN = zone("PJM")


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    cells: list[Any]  # str from CSV; str, number, bool or None from JSON
    width: int
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {name: i for i, name in enumerate(self.header)})

    def row(self, number: int) -> list[Any]:
        """Row `number` (1-based)."""
        base = (number - 1) * self.width
        return self.cells[base : base + self.width]

    def native(self, base: int) -> NativeRow:
        """The source fields of the row starting at cell `base`."""
        view: NativeRow = _new(NativeRow)
        _set_table(view, self)
        _set_base(view, base)
        return view


class NativeRow(Mapping[str, str]):
    """One source row's own fields as str -> str (JSON values as the CSV export prints them),
    read from the payload when asked for instead of copied into a dict per row."""

    __slots__ = ("_base", "_table")
    _table: Table
    _base: int

    def __getitem__(self, name: str) -> str:
        return cell_text(self._table.cells[self._base + self._table.index[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.header)

    def __len__(self) -> int:
        return self._table.width

    def __repr__(self) -> str:
        return repr(dict(self))


_new = object.__new__
_set_table = NativeRow._table.__set__  # type: ignore[attr-defined]  # slot member descriptors
_set_base = NativeRow._base.__set__  # type: ignore[attr-defined]


# is_verified as Data Miner writes it (CSV text, JSON booleans)
VERIFIED_FLAGS: dict[object, bool] = {"True": True, "False": False, "true": True, "false": False}
VERIFIED_FLAGS |= {True: True, False: False}


def cell_text(value: Any) -> str:
    """A JSON cell as the CSV export prints it (true -> "True", null -> "")."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def read_table(data: bytes, source: str) -> Table:
    """The rows of a JSON page, JSON export or CSV export; NoDataError when it has none."""
    if reject_unexpected(data, source, ("json", "csv")) == "csv":
        table = _csv_table(decode_text(data, source), source)
    else:
        table = json_table(load_json(data, source), source)
    if not table.cells:
        raise NoDataError(f"{source}: PJM returned no rows")
    return table


def _csv_table(text: str, source: str) -> Table:
    if '"' in text:  # quoted cells (names with commas): let the csv module read them
        return _quoted_csv_table(text, source)
    lines = text.splitlines()
    if not lines:
        raise ParseError(source, "empty CSV")
    header = [name.strip() for name in lines[0].split(",")]
    body = lines[1:]
    if "" in body:
        body = [line for line in body if line]
    commas = len(header) - 1
    if set(map(str.count, body, repeat(","))) - {commas}:
        _raise_bad_width(lines[1:], len(header), source)
    return Table(header, ",".join(body).split(",") if body else [], len(header))


def _raise_bad_width(lines: list[str], width: int, source: str) -> None:
    for number, line in enumerate(lines, start=1):
        if line and line.count(",") != width - 1:
            found = line.count(",") + 1
            raise ParseError(
                source, f"{found} fields where the header has {width}; truncated?", number
            )


def _quoted_csv_table(text: str, source: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
        rows = list(reader)
    except StopIteration:
        raise ParseError(source, "empty CSV") from None
    except csv.Error as exc:
        raise ParseError(source, f"unreadable CSV: {exc}") from exc
    width = len(header)
    for number, row in enumerate(rows, start=1):
        if row and len(row) != width:
            raise ParseError(
                source, f"{len(row)} fields where the header has {width}; truncated?", number
            )
    return Table(header, list(chain.from_iterable(row for row in rows if row)), width)


def json_table(document: Any, source: str) -> Table:
    """The rows of a decoded JSON page or export; a ParseError naming what is not one."""
    items = _items(document, source)
    if not items:
        return Table([], [], 0)
    if not isinstance(items[0], dict):
        raise ParseError(source, f"an item is not an object: {str(items[0])[:80]!r}", 1)
    header = [str(name) for name in items[0]]
    rows = map(itemgetter(*header), items)
    try:
        # itemgetter of one name gives the value itself, of several a tuple
        cells = list(rows) if len(header) == 1 else list(chain.from_iterable(rows))
    except (KeyError, TypeError):
        _raise_bad_item(items, header, source)
        raise
    if not set(map(type, cells)) <= SCALARS:  # a nested list or object is no cell
        _raise_nested(cells, header, source)
    return Table(header, cells, len(header))


SCALARS = frozenset({str, int, float, bool, type(None)})


def _raise_nested(cells: list[Any], header: list[str], source: str) -> None:
    for position, cell in enumerate(cells):
        if type(cell) not in SCALARS:
            row, column = divmod(position, len(header))
            raise ParseError(
                source, f"{header[column]} is a JSON {type(cell).__name__}, not a value", row + 1
            )


def _raise_bad_item(items: list[Any], header: list[str], source: str) -> None:
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ParseError(source, f"an item is not an object: {str(item)[:80]!r}", number)
        missing = [name for name in header if name not in item]
        if missing:
            raise ParseError(source, f"missing field(s) {', '.join(missing)}", number)


def _items(document: Any, source: str) -> list[Any]:
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise ParseError(source, f"JSON {type(document).__name__} where a page was expected")
    if "errors" in document:
        raise ParseError(source, f"an error document in place of data: {document['errors']!s:.300}")
    if "items" not in document:
        if "message" in document or "statusCode" in document:
            status = document.get("statusCode", "?")
            message = str(document.get("message", ""))[:300]
            raise ParseError(source, f"an error document in place of data: {status} {message}")
        raise ParseError(source, f"a JSON object without items: keys {', '.join(document)[:200]}")
    items = document["items"]
    if not isinstance(items, list):
        raise ParseError(source, f"items is a {type(items).__name__}, not a list")
    return items


@lru_cache(maxsize=131_072)
def wall_time(text: str) -> datetime:
    """A Data Miner timestamp: "3/10/2024 1:00:00 AM" (CSV export), "3/10/2024 13:00" or
    "2024-03-10T01:00:00" (JSON). Naive unless the text has an offset; ValueError otherwise."""
    value = text.strip()
    if "/" not in value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    parts = value.split(" ")
    if len(parts) not in (2, 3):
        raise ValueError(f"not a timestamp: {text!r}")
    month, day, year = parts[0].split("/")
    clock = parts[1].split(":")
    if len(clock) not in (2, 3):
        raise ValueError(f"not a timestamp: {text!r}")
    hour, minute = int(clock[0]), int(clock[1])
    seconds = float(clock[2]) if len(clock) == 3 else 0.0
    if len(parts) == 3:  # 12-hour clock
        half = parts[2].upper()
        if half not in ("AM", "PM") or not 1 <= hour <= 12:
            raise ValueError(f"not a 12-hour time: {text!r}")
        hour = hour % 12 + (12 if half == "PM" else 0)
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    return datetime(int(year), int(month), int(day), hour, minute, whole, micros)


@lru_cache(maxsize=131_072)
def utc_instant(text: str) -> datetime:
    """A `*_utc` column's value as an aware UTC datetime."""
    value = wall_time(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=131_072)
def eastern_label(instant_utc: datetime) -> datetime:
    """The naive EPT wall-clock label PJM prints for a UTC instant (1:00 AM twice on fall-back)."""
    return instant_utc.astimezone(EASTERN).replace(tzinfo=None)


def same_instant(ept_text: str, instant_utc: datetime) -> bool:
    """Whether an EPT label is the UTC instant's local time (the label cannot say which 1 AM)."""
    label = wall_time(ept_text)
    if label.tzinfo is not None:
        return label == instant_utc
    return label == eastern_label(instant_utc)


def nearest_five_minutes(instant: datetime) -> datetime:
    """The 5-minute mark nearest to `instant` (a snapshot stamped 00:04:57 counts for 00:05)."""
    seconds = int(instant.timestamp()) + (1 if instant.microsecond >= 500_000 else 0)
    return datetime.fromtimestamp((seconds + 150) // 300 * 300, tz=UTC)
