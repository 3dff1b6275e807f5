"""Shared helpers for parsing ISO payloads: CSV tables, zips, numbers, clear errors."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from connectors.errors import ParseError

Format = Literal["zip", "json", "xml", "html", "csv", "empty"]


def sniff(data: bytes) -> Format:
    """The payload's format, from its content (never from a file name)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "empty"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip, or an empty one (no entries)
        return "zip"
    if head[:1] in (b"{", b"["):
        return "json"
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "html"
    if head[:1] == b"<":
        return "xml"
    return "csv"


def reject_unexpected(data: bytes, source: str, accepted: Iterable[Format]) -> Format:
    """The payload's format, or a ParseError naming what arrived instead."""
    found = sniff(data)
    accepted = tuple(accepted)
    if found in accepted:
        return found
    if found == "empty":
        raise ParseError(source, "empty response")
    if found == "html":
        title = _html_title(data)
        raise ParseError(source, f"an HTML page ({title!r}) instead of data; an error page?")
    raise ParseError(source, f"a {found} payload where {' or '.join(accepted)} was expected")


def _html_title(data: bytes) -> str:
    text = data[:4096].decode("utf-8", "replace")
    lower = text.lower()
    start = lower.find("<title>")
    end = lower.find("</title>")
    if start >= 0 and end > start:
        return text[start + 7 : end].strip()[:80]
    return text.strip()[:80]


def decode_text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise ParseError(source, f"not text: {exc}") from exc


# What makes the csv module read a text otherwise than splitting its lines at commas: quotes,
# NUL (an error) and the line breaks str.splitlines knows but the csv module does not.
_NOT_PLAIN = re.compile('["\x00\v\f\x1c\x1d\x1e\x85\u2028\u2029]')


def read_csv(data: bytes, source: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV payload; every row must have the header's width.

    Row numbers in errors are 1-based data rows (the header is row 0).

    A text the csv module would read as plain lines of comma-separated fields (no quotes, no
    field over its size limit) is split directly, several times faster; anything else, and
    any table with a row of the wrong width, is read by the csv module, which names the row.
    """
    text = decode_text(data, source)
    if _NOT_PLAIN.search(text) is None:
        lines = text.splitlines()
        if lines and lines[0] and max(map(len, lines)) <= csv.field_size_limit():
            header = [h.strip() for h in lines[0].split(",")]
            body = lines[1:]
            if "" in body:  # blank lines are no rows
                body = [line for line in body if line]
            rows = [line.split(",") for line in body]
            if not rows or set(map(len, rows)) == {len(header)}:
                return header, rows
    return _read_csv_module(text, source)


def _read_csv_module(text: str, source: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ParseError(source, "empty CSV") from None
    except csv.Error as exc:
        raise ParseError(source, f"unreadable CSV header: {exc}") from exc
    width = len(header)
    rows: list[list[str]] = []
    try:
        for number, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != width:
                raise ParseError(
                    source, f"{len(row)} fields where the header has {width}; truncated?", number
                )
            rows.append(row)
    except csv.Error as exc:
        raise ParseError(source, f"unreadable CSV: {exc}", len(rows) + 1) from exc
    return header, rows


class IndexedFields(Mapping[str, str]):
    """A row's fields by column name through the header's `_index` ({name: position}), read when
    asked for instead of copied into a dict per record. Contract: a subclass sets `_index` and
    reads the cell of a name in `__getitem__`; the names and their count are the index's."""

    __slots__ = ("_index",)
    _index: dict[str, int]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return repr(dict(self))


class RowFields(IndexedFields):
    """One CSV row's fields by column name. Built from the header's `index` ({name: position},
    the last position of a repeated name, as a dict of the row would keep it)."""

    __slots__ = ("_row",)

    def __init__(self, index: dict[str, int], row: list[str]) -> None:
        self._index = index
        self._row = row

    def __getitem__(self, name: str) -> str:
        return self._row[self._index[name]]


def header_index(header: Sequence[str]) -> dict[str, int]:
    """{name: position} of a header, for RowFields."""
    return {name: i for i, name in enumerate(header)}


def columns(header: Sequence[str], required: Iterable[str], source: str) -> dict[str, int]:
    """Index of each required column, or a ParseError naming the missing ones."""
    index = {name: i for i, name in enumerate(header)}
    missing = [name for name in required if name not in index]
    if missing:
        raise ParseError(
            source, f"missing column(s) {', '.join(missing)}; found: {', '.join(header)[:400]}"
        )
    return index


def to_float(text: str, source: str, row: int, column: str) -> float:
    """A number from an ISO cell: spaces and thousands separators allowed, nothing else."""
    return finite_float(text.strip().replace(",", ""), source, row, column, text)


def finite_float(text: str, source: str, row: int, column: str, cell: str | None = None) -> float:
    """float(text) where that is a finite number, else a ParseError naming the column, the row
    and the cell as published (`cell`, where `text` is a cleaned copy of it)."""
    try:
        value = float(text)
    except ValueError:
        shown = text if cell is None else cell
        raise ParseError(source, f"{column} is not a number: {shown!r}", row) from None
    if not math.isfinite(value):
        shown = text if cell is None else cell
        raise ParseError(source, f"{column} is not a finite number: {shown!r}", row)
    return value


def to_optional_float(text: str, source: str, row: int, column: str) -> float | None:
    return None if text.strip() == "" else to_float(text, source, row, column)


def to_int(text: str, source: str, row: int, column: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ParseError(source, f"{column} is not an integer: {text!r}", row) from None


def open_zip(data: bytes, source: str) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every file in a zip payload."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [
                (info.filename, archive.read(info))
                for info in archive.infolist()
                if not info.is_dir()
            ]
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ParseError(source, f"not a readable zip ({exc}); truncated download?") from exc


def load_json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(source, f"invalid JSON ({exc}); truncated response?") from exc
