"""The columnar path of the ERCOT LMP parsers (see connectors.columnar): the regular case of the
DAM settlement point prices (NP4-190) and the SCED LMPs (NP6-788), checked a column at a time.

Each function returns None for anything irregular, and parse.py's row loops then read the
payload (or name what is wrong with it).

A payload holds one document or many (a bulk archive: a zip of zips, one SCED run each). The
documents' CSVs are read as one stack (columnar.csv_stack): one table under their common header
line, so that a thousand small documents cost one read, not a thousand; each row keeps its
document's revision and its row number within that document.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.columnar import (
    Codes,
    CsvRules,
    Floats,
    RecordBatch,
    Stack,
    canonical,
    codes,
    csv_stack,
    distinct,
    floats,
    pairs,
)
from connectors.ercot import feeds
from connectors.ercot.documents import Document, csv_documents
from connectors.ercot.timelabels import interval_start_utc
from connectors.errors import ParseError
from connectors.records import PUBLISH_TIME, LmpRecord, Record

ISO = feeds.ISO

# Labelled codes: (per-row code, number of distinct values, the distinct values).
Labelled = tuple[Codes, int, list[Any]]


# ERCOT's row path (tabular.read_csv) splits lines as str.splitlines does. A document of a bulk
# archive that ends some lines in LF and others in CRLF is left to it too.
_LINES = CsvRules(mixed_ends=False)


def documents(data: bytes, source: str) -> list[Document] | None:
    """The payload's CSV documents; None where the row path would reject the payload (it then
    names the problem)."""
    try:
        return csv_documents(data, source)
    except ParseError:
        return None


def stack(data: bytes, source: str) -> tuple[Stack, list[Document]] | None:
    """The payload's documents, all with one header line, read as one table (and the
    documents); None where any is irregular."""
    docs = documents(data, source)
    found = None if docs is None else csv_stack([doc.data for doc in docs], None, _LINES)
    return None if found is None or docs is None else (found, docs)


def _short_cells(found: Stack, docs: list[Document]) -> bool:
    """Whether every cell is within the csv module's field size limit (the row path reads a
    longer line with the csv module, which rejects a longer field)."""
    limit = csv.field_size_limit()
    if sum(len(doc.data) for doc in docs) <= limit:  # no cell is longer
        return True
    for name in found.header:
        column = found.column(name)
        if column is None:
            return False
        longest = pc.max(pc.binary_length(column)).as_py()
        if longest is not None and longest > limit:
            return False
    return True


def labelled(found: Stack, name: str) -> tuple[Codes, list[Any]] | None:
    column = found.column(name)
    return None if column is None else codes(column)


def combined(parts: list[tuple[Codes, list[Any]]]) -> tuple[Codes, list[tuple[Any, ...]]]:
    """(per-row code, distinct value tuples) of several labelled columns taken together."""
    row_codes, n = parts[0][0], len(parts[0][1])
    tuples: list[tuple[Any, ...]] = [(value,) for value in parts[0][1]]
    for found, values in parts[1:]:
        row_codes, found_pairs = pairs(row_codes, n, found, len(values))
        tuples = [(*tuples[a], values[b]) for a, b in found_pairs.tolist()]
        n = len(tuples)
    return row_codes, tuples


def prices(found: Stack, name: str) -> Floats | None:
    """A price column as finite floats; ERCOT pads numbers with spaces, which float() ignores."""
    column = found.column(name)
    if column is None or column.null_count or not pa.types.is_string(column.type):
        return None
    return floats(pc.utf8_trim(column, " "))


def points(
    found: Stack, name: str, settlement_point: Callable[[str], tuple[str, str]]
) -> tuple[Labelled, list[str]] | None:
    """Settlement points: (labelled codes of their names, the canonical type per name code)."""
    coded = labelled(found, name)
    if coded is None:
        return None
    named = list(map(settlement_point, coded[1]))
    names = [point[0] for point in named]
    if len(set(names)) == len(names):  # no two cells name one point ("X" and " X")
        return (coded[0], len(names), names), [point[1] for point in named]
    row_codes, count, values = canonical(named, coded[0])
    return (row_codes, count, [point[0] for point in values]), [point[1] for point in values]


class NativeRow(Mapping[str, str]):
    """One row's fields, read from the stacked table's text columns (made once, when the first
    record's fields are read)."""

    __slots__ = ("_row", "_table")

    def __init__(self, table: Texts, row: int) -> None:
        self._table = table
        self._row = row

    def __getitem__(self, name: str) -> str:
        return self._table.columns()[self._table.index[name]][self._row]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.index)

    def __len__(self) -> int:
        return len(self._table.index)

    def __repr__(self) -> str:
        return repr(dict(self))


class Texts:
    """A frame's columns as lists of text, made on first use."""

    __slots__ = ("_columns", "_frame", "index")

    def __init__(self, found: Stack) -> None:
        self._frame = found
        self.index = {name: i for i, name in enumerate(found.header)}
        self._columns: list[list[str]] | None = None

    def columns(self) -> list[list[str]]:
        if self._columns is None:
            self._columns = [_texts(self._frame, name) for name in self._frame.header]
        return self._columns


def _texts(found: Stack, name: str) -> list[str]:
    column = found.column(name)
    assert column is not None
    encoded = column.dictionary_encode()
    if len(encoded.dictionary) * 2 > len(column):  # mostly distinct: decoding is no saving
        out: list[str] = column.to_pylist()
        return out
    return _take(encoded.dictionary.to_pylist(), encoded.indices.to_numpy())


def _records(
    market: str,
    minutes: int,
    source: str,
    rows: int,
    point_names: list[str],
    point_types: list[str],
    starts: list[datetime],
    revisions: list[int],
    price_values: list[float],
    numbers: Iterator[int],
    natives: Texts,
) -> list[Record]:
    """LmpRecords from per-row columns (ERCOT publishes no components: they stay None)."""
    out: list[Record] = list(
        map(
            LmpRecord,
            repeat(ISO, rows),
            repeat(market, rows),
            point_names,
            point_names,
            point_types,
            starts,
            repeat(minutes, rows),
            price_values,
            repeat(None, rows),
            repeat(None, rows),
            repeat(None, rows),
            revisions,
            repeat(PUBLISH_TIME, rows),
            repeat(source, rows),
            numbers,
            map(NativeRow, repeat(natives, rows), range(rows)),
        )
    )
    return out


def _take(values: list[Any], row_codes: Codes) -> list[Any]:
    """values[code] for every row's code."""
    table = np.fromiter(values, dtype=object, count=len(values))  # each value one cell
    taken: list[Any] = table[row_codes].tolist()
    return taken


def dam_spp(
    data: bytes, source: str, settlement_point: Callable[[str], tuple[str, str]]
) -> RecordBatch | None:
    """The columnar path of parse.parse_dam_spp."""
    stacked = stack(data, source)
    if stacked is None:
        return None
    found, docs = stacked
    day, hour, point, price = feeds.DAM_SPP.columns[:4]
    if not found.has(day, hour, point, price) or not _short_cells(found, docs):
        return None
    flagged = "DSTFlag" in found.header
    label_columns = [labelled(found, name) for name in (day, hour)]
    if flagged:
        label_columns.append(labelled(found, "DSTFlag"))
    named = points(found, point, settlement_point)
    price_values = prices(found, price)
    if any(c is None for c in label_columns) or named is None or price_values is None:
        return None
    label_codes, labels = combined([c for c in label_columns if c is not None])
    converted: list[datetime] = []
    for label in labels:
        try:
            converted.append(interval_start_utc(label[0], label[1], label[2] if flagged else None))
        except ValueError:
            return None
    when = canonical(converted, label_codes)
    revisions = found.per_report([doc.revision for doc in docs])
    (point_codes, point_count, point_names), point_types = named
    if not distinct((point_codes, point_count), (when[0], when[1]), (revisions[0], revisions[1])):
        return None  # repeats: the row path keeps verbatim ones once, rejects conflicting ones

    def build() -> list[Record]:
        return _records(
            "DA_HOURLY",
            60,
            source,
            found.rows,
            _take(point_names, point_codes),
            _take(point_types, point_codes),
            _take(when[2], when[0]),
            _take(revisions[2], revisions[0]),
            price_values.tolist(),
            found.row_numbers(),
            Texts(found),
        )

    return RecordBatch(found.rows, build)


def sced_lmp(
    data: bytes,
    source: str,
    sced_run: Callable[[str, str, str, int], tuple[datetime, int]],
    settlement_point: Callable[[str], tuple[str, str]],
) -> RecordBatch | None:
    """The columnar path of parse.parse_sced_lmp; `sced_run` is the row path's conversion of a
    (SCEDTimestamp, RepeatedHourFlag) pair into (interval start, revision)."""
    stacked = stack(data, source)
    if stacked is None:
        return None
    found, docs = stacked
    stamp, flag, point, price = feeds.SCED_LMP.columns
    if not found.has(stamp, flag, point, price) or not _short_cells(found, docs):
        return None
    label_columns = [labelled(found, name) for name in (stamp, flag)]
    named = points(found, point, settlement_point)
    price_values = prices(found, price)
    if any(c is None for c in label_columns) or named is None or price_values is None:
        return None
    run_codes, labels = combined([c for c in label_columns if c is not None])
    converted: list[tuple[datetime, int]] = []
    for label in labels:
        try:
            converted.append(sced_run(label[0], label[1], source, 0))
        except ParseError:
            return None
    runs = canonical(converted, run_codes)
    (point_codes, point_count, point_names), point_types = named
    if not distinct((point_codes, point_count), (runs[0], runs[1])):
        return None  # repeats: the row path keeps verbatim ones once, rejects conflicting ones

    def build() -> list[Record]:
        run_values = runs[2]
        return _records(
            "RT_5MIN",
            5,
            source,
            found.rows,
            _take(point_names, point_codes),
            _take(point_types, point_codes),
            _take([run[0] for run in run_values], runs[0]),
            _take([run[1] for run in run_values], runs[0]),
            price_values.tolist(),
            found.row_numbers(),
            Texts(found),
        )

    return RecordBatch(found.rows, build)
