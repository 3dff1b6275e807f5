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

CSV is read by one reader, csv_stack: one report, or several stacked (the reports of an OASIS
response, the documents of an ERCOT bulk archive), read in one Arrow read per header line, each
row keeping its report and its number there. Where the row paths split lines differently (a
lone CR, blank lines, the breaks of str.splitlines...), the format's CsvRules say how, and the
reader declines any report it might split otherwise.

A columnar answer is a `RecordBatch`: a sequence of records whose objects are built from the
checked columns the first time it is read (a publisher iterating it, `optibid parse` printing
it). Its length, and every check, are known before that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from typing import Any, overload

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.parsing import no_collection
from connectors.records import Record
from connectors.tabular import IndexedFields

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Codes = np.ndarray[Any, np.dtype[np.int64]]
Floats = np.ndarray[Any, np.dtype[np.float64]]


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


class ColumnRow(IndexedFields):
    """One row's fields read from whole columns (lists of text) instead of copied per row."""

    __slots__ = ("_columns", "_row")

    def __init__(self, index: dict[str, int], columns: list[list[str]], row: int) -> None:
        self._index = index
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> str:
        return self._columns[self._index[name]][self._row]


NUMBER, LABEL, TEXT = "number", "label", "text"
# Arrow's reader splits a payload into blocks read on its threads; below a few megabytes the
# hand-over costs more than it gains on two cores.
_THREADED_BYTES = 2 << 20
_ARROW_TYPES = {
    NUMBER: pa.float64(),
    LABEL: pa.dictionary(pa.int32(), pa.string()),
    TEXT: pa.string(),
}
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class CsvRules:
    """What the CSV reader must match of a format's row path, and how it reads.

    Arrow ends a line at LF, CRLF or a lone CR and reads every other byte as a cell's; where a
    row path splits a report into rows otherwise, a report it might read differently is
    declined. The defaults describe a row path that splits lines as str.splitlines does
    (connectors.tabular.read_csv)."""

    # A CR not followed by LF ends a line (as in Arrow). False: the row path splits at LF only
    # (dropping a CR before it), so a report holding a lone CR is declined.
    lone_cr: bool = True
    # A blank line is no row (skipped; rows are numbered without it). False: the row path
    # rejects one, or ignores it where it trails, so a report holding one is declined.
    blank_lines: bool = True
    # The row path also ends lines at VT, FF, FS, GS and RS, and in UTF-8 at NEL and the
    # Unicode line and paragraph separators, and reads a NUL otherwise: a report holding any
    # is declined. False: they are a cell's bytes, as in Arrow.
    splitlines: bool = True
    # A report stacked with others may end its lines in more than one way (LF, CRLF, a lone
    # CR). False: it ends all alike, or the stack is declined (an unterminated last line is
    # ended with an LF when stacked, and counts as that).
    mixed_ends: bool = True
    # A header may name a column "" (a header that is one blank line is always declined).
    blank_names: bool = False
    # Every report has the first one's header line, or the stack is declined. False: a report
    # whose header line differs from the one before it starts another table.
    one_header: bool = True
    # Arrow reads a table of _THREADED_BYTES or more on its threads. False: always on one.
    threads: bool = True


CSV = CsvRules()  # the defaults: a row path like tabular.read_csv


class CsvReport:
    """One report of a stack: its header (column names, stripped) and its number of rows."""

    __slots__ = ("header", "rows")

    def __init__(self, header: list[str], rows: int) -> None:
        self.header = header
        self.rows = rows


class _Run:
    """Consecutive reports with one header line, as the one buffer Arrow reads: the first
    report whole, then each other without its header line (and with its last line ended).
    `counts` are the reports' rows counted from their line ends, which Arrow's rows must equal
    (a blank line, which Arrow skips, makes them differ); None for a report read alone (its
    rows are Arrow's)."""

    __slots__ = ("buffer", "counts", "header")

    def __init__(self, buffer: bytes, header: list[str], counts: list[int] | None) -> None:
        self.buffer = buffer
        self.header = header
        self.counts = counts


class Stack:
    """CSV reports read by csv_stack: a table per run of reports with one header line, each
    column read across them as one array, and per report its header and rows."""

    __slots__ = (
        "_kinds",
        "_rules",
        "_runs",
        "_tables",
        "_text",
        "_types",
        "_which",
        "reports",
        "rows",
    )

    def __init__(
        self,
        runs: list[_Run],
        tables: list[tuple[pa.Table, dict[str, Any]]],
        kinds: Mapping[str, str] | None,
        rules: CsvRules,
    ) -> None:
        self._runs = runs
        self._tables = [table for table, _ in tables]
        self._types = [types for _, types in tables]  # the columns each table read
        self._kinds = kinds
        self._rules = rules
        self._text: Stack | None = None
        self._which: Codes | None = None
        self.reports = [
            CsvReport(run.header, count)
            for run, table in zip(runs, self._tables, strict=True)
            for count in ([table.num_rows] if run.counts is None else run.counts)
        ]
        self.rows = sum(table.num_rows for table in self._tables)

    @property
    def header(self) -> list[str]:
        """The first report's header (every report's, with CsvRules.one_header)."""
        return self._runs[0].header

    @property
    def counts(self) -> list[int]:
        """Each report's rows, in order."""
        return [report.rows for report in self.reports]

    def has(self, *names: str) -> bool:
        """Whether every table has read the named columns."""
        return all(name in types for types in self._types for name in names)

    def column(self, name: str) -> pa.Array | None:
        """A column across every report as one array; None where a table has not read it."""
        if not self.has(name):
            return None
        chunks = [chunk for table in self._tables for chunk in table.column(name).chunks]
        return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)

    def text(self) -> Stack:
        """The same reports with every column read as text (read again once, when asked for,
        where `kinds` named some)."""
        if self._kinds is None:
            return self
        if self._text is None:
            found = _read_runs(self._runs, None, self._rules)
            if found is None:  # the same bytes, already read once
                raise RuntimeError("a stack read once could not be read as text")
            self._text = found
        return self._text

    def which(self) -> Codes:
        """The report (its index) of each row."""
        if self._which is None:
            counts = self.counts
            self._which = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        return self._which

    def numbers(self) -> Codes:
        """Each row's number within its report, from 1 (as the row paths count)."""
        which = self.which()
        starts = np.cumsum([0, *self.counts[:-1]], dtype=np.int64)
        numbers: Codes = np.arange(len(which), dtype=np.int64) - starts[which] + 1
        return numbers

    def row_numbers(self) -> Iterator[int]:
        """numbers() as ints, made as they are read (for records built one by one)."""
        return chain.from_iterable(map(range, repeat(1), [count + 1 for count in self.counts]))

    def per_report(self, values: Sequence[Any]) -> tuple[Codes, int, list[Any]]:
        """A value per report (e.g. its revision) as canonical codes per row."""
        return canonical(list(values), self.which())

    def lines(self) -> list[str]:
        """Each row's source line (after its report's header line) as text: the lines as
        Arrow split them, blank ones left out."""
        out: list[str] = []
        for run, table in zip(self._runs, self._tables, strict=True):
            text = run.buffer.decode()
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            rows = table.num_rows
            if run.counts is None and self._rules.blank_lines and "\n\n" in text:
                # blank lines, which Arrow skipped
                out += [line for line in text.split("\n")[1:] if line]
            else:
                out += text.split("\n", rows + 1)[1 : rows + 1]
        return out


def csv_stack(
    reports: Sequence[bytes], kinds: Mapping[str, str] | None = None, rules: CsvRules = CSV
) -> Stack | None:
    """CSV reports (UTF-8, a header line each, no quotes, every row as wide as its header)
    read as columns, one Arrow read per run of reports with one header line; None for anything
    else (which the row path reads or rejects), or where a table has no rows.

    `kinds` names the columns to read and how: NUMBER (float64, converted by the reader; a
    cell that is not a number declines the reports), LABEL (dictionary-encoded text) or TEXT;
    the others are skipped (Stack.text() reads them all later). Without `kinds` every column
    is read, as text. `rules` are the format's (CsvRules).

    A report read alone has Arrow's rows. In a run of several, each report's rows are counted
    from its line ends (LF, CRLF, a lone CR), and a blank line (which Arrow skips) declines
    the reports whatever the rules."""
    if _row_path_only or not reports:
        return None
    lines: list[bytes] = []  # the header line of each run
    groups: list[list[bytes]] = []  # its reports, without byte order marks
    for report in reports:
        data = report[3:] if report[:3] == _BOM else report
        end = data.find(b"\n")
        if end <= 0 or b"\r" in data[:end].rstrip(b"\r"):
            return None  # (a CR inside the header line: Arrow would end the line there)
        if not rules.lone_cr and b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # a lone CR: Arrow ends a row there, the row path does not
        if lines and data[: end + 1] == lines[-1]:
            groups[-1].append(data)
        elif lines and rules.one_header:
            return None
        else:
            lines.append(data[: end + 1])
            groups.append([data])
    runs: list[_Run] = []
    for line, group in zip(lines, groups, strict=True):
        header = _header(line, rules)
        ends = [_line_ends(data) for data in group] if len(group) > 1 else []
        if header is None or (
            len(group) > 1 and not rules.mixed_ends and any(sum(map(bool, e)) > 1 for e in ends)
        ):
            return None  # (or a report mixing line ends: see mixed_ends)
        run = _Run(
            group[0] if len(group) == 1 else _joined(line, group),
            header,
            [sum(e) - 1 for e in ends] if ends else None,  # less the header line
        )
        if not _plain(run.buffer, rules):
            return None
        runs.append(run)
    return _read_runs(runs, kinds, rules)


def _header(line: bytes, rules: CsvRules) -> list[str] | None:
    """The column names of a header line; None where one repeats, or is blank (unless the
    rules allow that), or the line is not UTF-8."""
    try:
        header = [name.strip() for name in line.decode().split(",")]
    except UnicodeDecodeError:
        return None
    if len(set(header)) != len(header) or header == [""]:
        return None
    return header if rules.blank_names or "" not in header else None


def _line_breaks(data: bytes) -> int:
    """How many LFs `data` holds (numpy counts them several times faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")))


def _line_ends(data: bytes) -> tuple[int, int, int]:
    """How many lines of a report end in LF, in CRLF and in a lone CR, its last line ended with
    an LF where it is not (as when stacked: a last line ending in a lone CR then ends in CRLF)."""
    unended = data[-1:] != b"\n"
    ends = _line_breaks(data) + unended  # LF or CRLF
    if b"\r" not in data:
        return ends, 0, 0
    crlf = data.count(b"\r\n") + (unended and data[-1:] == b"\r")
    return ends - crlf, crlf, data.count(b"\r") - crlf


def _joined(line: bytes, group: list[bytes]) -> bytes:
    """The header line, then each report's lines after its own (its last line ended)."""
    parts: list[bytes | memoryview] = [line]
    for data in group:
        parts.append(memoryview(data)[len(line) :])
        if data[-1:] != b"\n":
            parts.append(b"\n")
    return b"".join(parts)


# Bytes the row paths of CsvRules.splitlines read otherwise than Arrow: NUL, and the line
# breaks str.splitlines knows but Arrow does not (VT, FF, FS/GS/RS, and in UTF-8 NEL and the
# Unicode line and paragraph separators). Each is looked for on its own: `in` on bytes runs at
# memchr speed where a regex class runs a step per byte, and the multi-byte ones only in a
# payload that is not plain ASCII. A quote (the row paths read quoted cells) is always irregular.
_SPLITLINES_BYTES = (b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_SPLITLINES_UTF8 = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")


def _plain(data: bytes, rules: CsvRules) -> bool:
    """Whether Arrow reads the bytes' cells as the row path reads them: no quotes, no bytes
    the rules make irregular, valid UTF-8."""
    if b'"' in data or (rules.splitlines and any(byte in data for byte in _SPLITLINES_BYTES)):
        return False
    if not data.isascii():  # then valid UTF-8 (the row paths decode anything else otherwise)
        if rules.splitlines and any(irregular in data for irregular in _SPLITLINES_UTF8):
            return False
        try:
            data.decode()
        except UnicodeDecodeError:
            return False
    return True


def _read_runs(runs: list[_Run], kinds: Mapping[str, str] | None, rules: CsvRules) -> Stack | None:
    """The runs read by Arrow as a Stack; None where a table is irregular or has no rows."""
    tables: list[tuple[pa.Table, dict[str, Any]]] = []
    for run in runs:
        if kinds is None:
            types = dict.fromkeys(run.header, pa.string())
        else:
            types = {name: _ARROW_TYPES[kind] for name, kind in kinds.items() if name in run.header}
        # A report alone whose blank lines the rules decline is read with them kept, as rows
        # of empty cells, and looked for only where every column read has an empty cell.
        kept = run.counts is None and not rules.blank_lines
        table = _read(run.buffer, run.header, types, rules, skip_blank=not kept)
        if table is None or table.num_rows == 0:
            return None
        if run.counts is not None and sum(run.counts) != table.num_rows:
            return None  # a blank line, which Arrow skipped
        if kept and _blank_line(table, run.buffer):
            return None
        tables.append((table, types))
    return Stack(runs, tables, kinds, rules)


def _blank_line(table: pa.Table, data: bytes) -> bool:
    """Whether a report read with its blank lines kept (each a row of empty cells) holds one:
    not where a column has no empty cell (as any column of numbers: an empty cell is none);
    otherwise as its bytes say (a line end right after another)."""
    for column in table.columns:
        cells = column
        if pa.types.is_dictionary(column.type):  # the distinct cells
            cells = pa.chunked_array(
                [chunk.dictionary for chunk in column.chunks], cells.type.value_type
            )
        elif not pa.types.is_string(column.type):
            return False
        if (pc.min(pc.binary_length(cells)).as_py() or 0) > 0:
            return False
    return any(ends in data for ends in (b"\n\n", b"\n\r", b"\r\r"))


def _read(
    data: bytes, header: list[str], types: dict[str, Any], rules: CsvRules, *, skip_blank: bool
) -> Any:
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=header,
                skip_rows=1,
                use_threads=rules.threads and len(data) >= _THREADED_BYTES,
            ),
            parse_options=pacsv.ParseOptions(
                quote_char=False, double_quote=False, ignore_empty_lines=skip_blank
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(types),
                null_values=[],  # no cell is null: an empty number declines the reports
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # checked before, once for all columns
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a row of another width, a non-number...
        return None


def csv_frame(data: bytes, kinds: Mapping[str, str] | None = None) -> Frame | None:
    """One plain CSV payload (see csv_stack, with the default rules) as a Frame; None for
    anything else, which the row path reads or rejects.

    `kinds` as for csv_stack: the reader converts the columns named on its threads and skips
    the others. Records' native fields are read again, all as text, when the records are
    built."""
    found = csv_stack([data], kinds)
    if found is None:
        return None
    header = found.header

    def text(name: str) -> list[str]:
        column = found.text().column(name)
        if column is None:
            raise KeyError(f"no column {name!r}")
        cells: list[str] = column.to_pylist()
        return cells

    def natives() -> Callable[[int], Mapping[str, str]]:
        index = {name: i for i, name in enumerate(header)}
        cells = [text(name) for name in header]
        return lambda row: ColumnRow(index, cells, row)

    return Frame(header, found.rows, found.column, natives, text)


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
