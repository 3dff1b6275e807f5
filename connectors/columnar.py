"""Columnar parsing: a payload read as whole columns (Arrow), checked column by column, and
records built from the columns only when somebody reads them.

Every parser has two paths over the same bytes:

- the columnar path (this module's helpers): the CSV is read by Arrow's C++ reader, JSON by
  orjson; prices are converted and checked for finiteness a column at a time; a time label is
  converted once per distinct label (dictionary encoding), and repeats of a natural key are
  found with one counting pass. It handles the regular case only: the moment anything is
  irregular (a non-numeric cell, an empty id, a repeated key, quotes, a label it cannot
  convert...) it gives up and returns None;
- the row path (the parser's own loop), which reads anything the format allows, keeps verbatim
  repeats once, and raises the ParseError that names the file, the row and the problem.

So the columnar path never decides an error and never decides what a row means on its own:
where it answers, the unit tests check it answers what the row path answers (record for record,
native fields included).

A columnar answer is a `RecordBatch`: a sequence of records whose objects are built from the
checked columns the first time it is read (a publisher iterating it, `optibid parse` printing
it). Its length, and every check, are known before that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.parsing import no_collection
from connectors.records import Record

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Codes = np.ndarray[Any, np.dtype[np.int64]]
Floats = np.ndarray[Any, np.dtype[np.float64]]

# Bytes that make a CSV irregular for the columnar reader: quotes (the csv module reads quoted
# cells), NUL, and the line breaks str.splitlines knows but Arrow does not (VT, FF, FS/GS/RS,
# and in UTF-8 NEL and the Unicode line and paragraph separators). Each is looked for on its
# own: `in` on bytes runs at memchr speed where a regex class runs a step per byte, and the
# multi-byte ones only in a payload that is not plain ASCII.
_IRREGULAR_BYTES = (b'"', b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_IRREGULAR_UTF8 = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")


_row_path_only = False


@contextmanager
def row_path_only() -> Iterator[None]:
    """Within it, every columnar reader declines, so parsers take their row paths: for
    checking that both paths read a payload alike, and for measuring one against the other."""
    global _row_path_only  # noqa: PLW0603  # one switch for the readers of this module
    before, _row_path_only = _row_path_only, True
    try:
        yield
    finally:
        _row_path_only = before


def row_path_forced() -> bool:
    """Whether row_path_only() is in force (for readers of their own, outside this module)."""
    return _row_path_only


class RecordBatch(Sequence[Record]):
    """Records of one payload, built from its checked columns when first read."""

    __slots__ = ("_build", "_length", "_records")

    def __init__(self, length: int, build: Callable[[], list[Record]]) -> None:
        self._length = length
        self._build: Callable[[], list[Record]] | None = build
        self._records: list[Record] | None = None

    def records(self) -> list[Record]:
        """The records as a list (built on the first call)."""
        if self._records is None:
            assert self._build is not None
            with no_collection():
                built = self._build()
            if len(built) != self._length:  # a broken builder must not pass unnoticed
                raise RuntimeError(f"built {len(built)} records of {self._length}")
            self._records, self._build = built, None
        return self._records

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        return self.records()[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordBatch):
            return self.records() == other.records()
        if isinstance(other, list):
            return self.records() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-ish, like the list it stands for

    def __repr__(self) -> str:
        state = "built" if self._records is not None else "not built"
        return f"RecordBatch({self._length} records, {state})"


# --- reading --------------------------------------------------------------------------------


class Frame:
    """One payload's table: its header, row count, `column(name)` (an Arrow array, or None
    where a JSON column mixes types), and each row's source fields (for records'
    native_fields) when asked for."""

    __slots__ = ("_natives", "_texts", "column", "header", "rows")

    def __init__(
        self,
        header: list[str],
        rows: int,
        column: Callable[[str], pa.Array | None],
        natives: Callable[[], Callable[[int], Mapping[str, str]]],
        texts: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.header = header
        self.rows = rows
        self.column = column
        self._natives = natives
        self._texts = texts

    def texts(self, name: str) -> list[str]:
        """A column's cells as the row path's text (for building records: a column only
        records need, and nothing checks, is read then, not by the parse)."""
        if self._texts is None:
            raise KeyError(f"this frame reads no text column {name!r}")
        return self._texts(name)

    def natives(self) -> Callable[[int], Mapping[str, str]]:
        """row index (0-based) -> that row's fields by column name, as text."""
        return self._natives()

    def has(self, *names: str) -> bool:
        return all(name in self.header for name in names)


class ColumnRow(Mapping[str, str]):
    """One row's fields read from whole columns (lists of text) instead of copied per row."""

    __slots__ = ("_columns", "_index", "_row")

    def __init__(self, index: dict[str, int], columns: list[list[str]], row: int) -> None:
        self._index = index
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> str:
        return self._columns[self._index[name]][self._row]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return repr(dict(self))


NUMBER, LABEL, TEXT = "number", "label", "text"
# Arrow's reader splits a payload into blocks read on its threads; below a few megabytes the
# hand-over costs more than it gains on two cores.
_THREADED_BYTES = 2 << 20
_ARROW_TYPES = {
    NUMBER: pa.float64(),
    LABEL: pa.dictionary(pa.int32(), pa.string()),
    TEXT: pa.string(),
}


def csv_frame(data: bytes, kinds: Mapping[str, str] | None = None) -> Frame | None:
    """A plain CSV (UTF-8, one header line, no quotes, every row as wide as the header) read
    as columns; None for anything else, which the row path reads or rejects.

    `kinds` names the columns the parse reads and how: NUMBER (float64, converted by the
    reader; a cell that is not a number declines the payload), LABEL (dictionary-encoded
    text) or TEXT; the reader converts them on its threads and skips the others. Without
    `kinds` every column is text. Records' native fields are read again, all as text, when
    the records are built."""
    if _row_path_only:
        return None
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    end = data.find(b"\n")
    if end <= 0 or any(irregular in data for irregular in _IRREGULAR_BYTES):
        return None
    if not data.isascii():  # then valid UTF-8 (the row path decodes anything else otherwise)
        if any(irregular in data for irregular in _IRREGULAR_UTF8):
            return None
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
    header = [name.strip() for name in data[:end].decode().rstrip("\r").split(",")]
    if len(set(header)) != len(header) or "" in header:
        return None
    if kinds is None:
        types = dict.fromkeys(header, pa.string())
    else:
        types = {name: _ARROW_TYPES[kind] for name, kind in kinds.items() if name in header}
    table = _read(data, header, types)
    if table is None or table.num_rows == 0:
        return None
    everything: list[Any] = [table if kinds is None else None]

    def column(name: str) -> pa.Array | None:
        if name not in types:
            return None
        return table.column(name).combine_chunks()

    def all_text() -> Any:
        if everything[0] is None:
            everything[0] = _read(data, header, dict.fromkeys(header, pa.string()))
        return everything[0]

    def natives() -> Callable[[int], Mapping[str, str]]:
        every = all_text()
        index = {name: i for i, name in enumerate(header)}
        cells = [every.column(i).to_pylist() for i in range(len(header))]
        return lambda row: ColumnRow(index, cells, row)

    def text(name: str) -> list[str]:
        cells: list[str] = all_text().column(name).to_pylist()
        return cells

    return Frame(header, table.num_rows, column, natives, text)


def _read(data: bytes, header: list[str], types: dict[str, Any]) -> Any:
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=header, skip_rows=1, use_threads=len(data) >= _THREADED_BYTES
            ),
            parse_options=pacsv.ParseOptions(quote_char=False, double_quote=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(types),
                null_values=[],  # no cell is null: an empty number declines the payload
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # checked above, once for all columns
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a row of another width, a non-number...
        return None


# Every digit to "0", every other byte to a space: 20 digits in a row are then one `in` away.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_TWENTY_DIGITS = b"0" * 20


def load_json(data: bytes) -> Any:
    """A JSON document, or None where orjson declines it or might read it otherwise than the
    json module (the row path's reader): NaN literals, numbers orjson rejects, and integers
    beyond 64 bits, which orjson turns into floats (any run of 20 digits declines)."""
    if _row_path_only:
        return None
    if _TWENTY_DIGITS in data.translate(_DIGITS_AS_ZEROS):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def array(values: list[Any]) -> pa.Array | None:
    """A column of JSON cells as one Arrow array, or None if its cells mix types."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None


# --- columns --------------------------------------------------------------------------------


def encoded(column: pa.Array) -> tuple[Codes, pa.Array] | None:
    """(per-row code, the distinct values as an Arrow array) of a column with no nulls."""
    if column.null_count:
        return None
    found = column.dictionary_encode()
    return found.indices.to_numpy().astype(np.int64, copy=False), found.dictionary


def codes(column: pa.Array) -> tuple[Codes, list[Any]] | None:
    """(per-row code, distinct values) of a column with no nulls; None where it has nulls."""
    found = encoded(column)
    return None if found is None else (found[0], found[1].to_pylist())


def floats(column: pa.Array) -> Floats | None:
    """A column as finite float64s: text in Python float() syntax without spaces, or JSON
    numbers (not booleans). None if any cell is anything else, empty, NaN or infinite."""
    kind = column.type
    if column.null_count or not (
        pa.types.is_string(kind) or pa.types.is_floating(kind) or pa.types.is_integer(kind)
    ):
        return None
    try:
        values: Floats = pc.cast(column, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not np.isfinite(values).all():
        return None
    return values


def distinct(*keys: tuple[Codes, int]) -> bool:
    """Whether the rows' combined key ((codes, number of distinct codes) per part) never
    repeats."""
    combined = np.zeros(len(keys[0][0]), dtype=np.int64)
    space = 1
    for values, size in keys:
        combined = combined * max(size, 1) + values
        space *= max(size, 1)
        if space > 1 << 62:
            return len(np.unique(combined)) == len(combined)
    if space <= 8 * len(combined) + 1024:
        return int(np.bincount(combined, minlength=1).max(initial=0)) <= 1
    return len(np.unique(combined)) == len(combined)


def pairs(first: Codes, n_first: int, second: Codes, n_second: int) -> tuple[Codes, Codes]:
    """(code of each row's (first, second) pair, the distinct pairs as an array of
    [first code, second code] rows): for converting two label columns together.

    Where every first code occurs and decides its second (an interval's UTC label its local
    one, a start its end), the pairs are numbered as the first codes are, with no counting."""
    decided = np.full(max(n_first, 1), -1, dtype=np.int64)
    decided[first] = second
    if (decided[first] == second).all() and (decided[:n_first] >= 0).all():
        return first, np.stack([np.arange(n_first, dtype=np.int64), decided[:n_first]], 1)
    combined = first * max(n_second, 1) + second
    space = max(n_first, 1) * max(n_second, 1)
    if space <= 8 * len(combined) + 1024:
        present = np.bincount(combined, minlength=space) > 0
        values = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        return lookup[combined], np.stack(
            [values // max(n_second, 1), values % max(n_second, 1)], 1
        )
    values, inverse = np.unique(combined, return_inverse=True)
    return inverse.astype(np.int64), np.stack(
        [values // max(n_second, 1), values % max(n_second, 1)], 1
    )


def canonical(values: list[Any], found: Codes) -> tuple[Codes, int, list[Any]]:
    """Codes renumbered so that equal converted values share one: (per-row code, number of
    distinct values, the distinct values). Two labels may name one thing ("4:00" and "04:00")."""
    numbering: dict[Any, int] = {}
    remap = np.fromiter(
        (numbering.setdefault(value, len(numbering)) for value in values), np.int64, len(values)
    )
    return remap[found] if len(values) else found, len(numbering), list(numbering)


# --- wall-clock labels, converted a column of distinct labels at a time ------------------------

# The strict forms converted here; a label in any other form (or out of range) makes the
# whole column go to the parser's own label conversion, which knows every form it accepts.
WALL_FORMS = {
    # "6/3/2024 4:00:07 AM" (12-hour clock)
    "us12": r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}) "
    r"(?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2}) (?P<p>AM|PM)$",
    # "2024-06-03T04:00:00"
    "iso": r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})$",
}
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
MICROS_PER_DAY = 86_400_000_000


def days_from_civil(year: Codes, month: Codes, day: Codes) -> Codes:
    """Days since 1970-01-01 of proleptic Gregorian dates (vectorised)."""
    year = year - (month <= 2)
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    of_eras = of_era * 365 + of_era // 4 - of_era // 100 + of_year
    days: Codes = era * 146_097 + of_eras - 719_468
    return days


def wall_micros(labels: pa.Array, form: str) -> Codes | None:
    """Naive wall-clock microseconds since the epoch of each label, if every label is in
    `form` (a WALL_FORMS key) and names a real date and time; None otherwise."""
    pattern = WALL_FORMS[form]
    if not pa.types.is_string(labels.type) or labels.null_count or len(labels) == 0:
        return None
    parts = pc.extract_regex(labels, pattern)
    if parts.null_count:  # a label not in the form
        return None
    names = [field.name for field in parts.type]
    fields = dict(zip(names, parts.flatten(), strict=True))

    def number(name: str) -> Codes:
        values: Codes = pc.cast(fields[name], pa.int64()).to_numpy()
        return values

    year, month, day = number("y"), number("m"), number("d")
    hour, minute, second = number("H"), number("M"), number("S")
    if form == "us12":
        if ((hour < 1) | (hour > 12)).any():
            return None
        afternoon = pc.equal(fields["p"], "PM").to_numpy(zero_copy_only=False)
        hour = hour % 12 + 12 * afternoon.astype(np.int64)
    if ((month < 1) | (month > 12) | (hour > 23) | (minute > 59) | (second > 59)).any():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[month - 1] + ((month == 2) & leap)
    if ((day < 1) | (day > last_day) | (year < 1)).any():
        return None
    days = days_from_civil(year, month, day)
    micros: Codes = days * MICROS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1_000_000
    return micros


def local_micros(utc_micros: Codes, zone_name: str) -> Codes:
    """The naive local wall clock (microseconds) of UTC instants in a time zone."""
    instants = pa.array(utc_micros, pa.timestamp("us", tz="UTC"))
    local = pc.local_timestamp(instants.cast(pa.timestamp("us", tz=zone_name)))
    values: Codes = local.cast(pa.int64()).to_numpy()
    return values


def utc_datetimes(micros: Codes) -> list[datetime]:
    """Aware UTC datetimes of microseconds since the epoch (exact, no float)."""
    return [EPOCH + timedelta(microseconds=value) for value in micros.tolist()]


def texts(values: Sequence[Any]) -> list[str]:
    """Cells as the row path's text: None -> "", everything else str()."""
    return [
        "" if value is None else value if isinstance(value, str) else str(value) for value in values
    ]
