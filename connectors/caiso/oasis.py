"""Reading OASIS responses: a zip of CSV or XML reports (or one report on its own) as tables of
strings, the error documents OASIS sends in place of data, and when each report was generated.

A table keeps OASIS's own column names. XML reports are flattened to one row per REPORT_DATA,
with the REPORT_HEADER fields (MKT_TYPE, EXECUTION_TYPE, ...) copied onto each row, so that a
parser reads both formats by column name.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache

from connectors.caiso.feeds import (
    ISO,
    NO_DATA_CODE,
    OASIS_STAMP_IN_NAME,
    PUBLISHED_IN_NAME,
)
from connectors.errors import NoDataError, ParseError
from connectors.tabular import decode_text, finite_float, open_zip, reject_unexpected, sniff
from schemas.timeutil import to_micros, wall_to_utc, zone

_OASIS_STAMP = re.compile(OASIS_STAMP_IN_NAME)
_PUBLISHED = re.compile(PUBLISHED_IN_NAME)
_TZ = zone(ISO)


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    """One OASIS report: its rows as strings under OASIS's column names."""

    member: str  # zip member name; "" for a report that came on its own
    header: list[str]
    rows: list[list[str]]
    xml: bool
    revision: int  # generation time in epoch microseconds (PUBLISH_TIME), 0 when unknown

    @property
    def where(self) -> str:
        """The prefix naming the member in error messages ("" for a bare report)."""
        return f"{self.member}: " if self.member else ""

    def fail(self, source: str, problem: str, row: int | None = None) -> ParseError:
        """A ParseError naming the response, the member (when zipped) and the row."""
        return ParseError(source, f"{self.where}{problem}", row)

    def columns(self, names: tuple[str, ...], source: str) -> tuple[int, ...]:
        """Index of each named column, or a ParseError naming the missing ones."""
        index = {name: i for i, name in enumerate(self.header)}
        missing = [name for name in names if name not in index]
        if missing:
            found = ", ".join(self.header)[:400]
            raise self.fail(source, f"missing column(s) {', '.join(missing)}; found: {found}")
        return tuple(index[name] for name in names)


def read_reports(data: bytes, source: str) -> list[Report]:
    """Every report in an OASIS response, recognised from the content (zip, CSV or XML).

    Raises NoDataError for OASIS's "no data" answer (ERR_CODE 1000) and ParseError for any
    other error document, naming its code and description.
    """
    found = reject_unexpected(data, source, ("zip", "csv", "xml"))
    if found != "zip":
        return [_report(data, "", found, source)]
    members = open_zip(data, source)
    if not members:
        raise ParseError(source, "a zip without files")
    reports = []
    for name, body in members:
        kind = sniff(body)
        if kind not in ("csv", "xml"):
            raise ParseError(
                source, f"{name}: a {kind} member where a CSV or XML report was expected"
            )
        reports.append(_report(body, name, kind, source))
    return reports


def _report(data: bytes, member: str, kind: str, source: str) -> Report:
    if kind == "csv":
        header, rows = csv_rows(data, source, member)
        return Report(member, header, rows, False, _revision(member, source, None))
    return _xml_report(data, member, source)


def csv_rows(data: bytes, source: str, member: str = "") -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV report; every row must have the header's width.

    Rows are numbered from 1 after the header; an empty line inside the table is an error (a
    row would be lost or two files joined), trailing ones are not. OASIS never quotes its
    fields, so a file without quotes is split directly (several times faster than the csv
    module); one with quotes goes through the csv module.
    """
    text = decode_text(data, source)
    where = f"{member}: " if member else ""
    if '"' in text:
        try:
            lines = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise ParseError(source, f"{where}unreadable CSV: {exc}") from exc
    else:
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = [line.split(",") if line else [] for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ParseError(source, f"{where}an empty CSV")
    header = [name.strip() for name in lines[0]]
    width = len(header)
    for number in range(1, len(lines)):
        if len(lines[number]) != width:
            fields = len(lines[number])
            problem = f"{fields} fields where the header has {width}; truncated?"
            raise ParseError(source, f"{where}{problem if fields else 'an empty line'}", number)
    return header, lines[1:]


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_report(data: bytes, member: str, source: str) -> Report:
    where = f"{member}: " if member else ""
    try:
        # expat (>= 2.4.1, bundled with Python 3.11) limits entity expansion and never fetches
        # external entities, so a hostile document cannot blow up or reach out.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise ParseError(source, f"{where}not well-formed XML ({exc}); truncated?") from exc
    for element in root.iter():
        if _local_name(element.tag) == "ERROR":
            _raise_error(element, source, where)
    if _local_name(root.tag) != "OASISReport":
        raise ParseError(
            source, f"{where}an XML <{_local_name(root.tag)}> where an OASISReport was expected"
        )
    generated: str | None = None
    records: list[dict[str, str]] = []
    for element in root.iter():
        name = _local_name(element.tag)
        if name == "TimeDate" and generated is None:
            generated = (element.text or "").strip()
        elif name == "REPORT_ITEM":
            records += _report_item(element)
    header: list[str] = []
    for record in records:
        header += [key for key in record if key not in header]
    rows = [[record.get(key, "") for key in header] for record in records]
    return Report(member, header, rows, True, _revision(member, source, generated))


def _error_fields(element: ET.Element) -> tuple[str, str]:
    fields = {_local_name(child.tag): (child.text or "").strip() for child in element}
    return fields.get("ERR_CODE", "?"), fields.get("ERR_DESC", "")


def _raise_error(element: ET.Element, source: str, where: str) -> None:
    code, description = _error_fields(element)
    if code == NO_DATA_CODE:
        raise NoDataError(f"{source}: {where}OASIS ERR_CODE {code}: {description}")
    raise ParseError(
        source, f"{where}an OASIS error in place of data: ERR_CODE {code}: {description}"
    )


def error_document(data: bytes) -> tuple[str, str] | None:
    """(ERR_CODE, ERR_DESC) when an OASIS response is an error document, else None.

    For the client, which skips "no data" answers and fails on other errors before anything
    is published; anything else unreadable is left for the parser to name.
    """
    kind = sniff(data)
    if kind == "xml":
        bodies = [data]
    elif kind == "zip":
        try:
            bodies = [body for _, body in open_zip(data, "response") if sniff(body) == "xml"]
        except ParseError:
            return None
    else:
        return None
    for body in bodies:
        if b"ERR_CODE" not in body:
            continue
        try:
            root = ET.fromstring(body)  # noqa: S314 - see _xml_report
        except ET.ParseError:
            continue
        for element in root.iter():
            if _local_name(element.tag) == "ERROR":
                return _error_fields(element)
    return None


def _report_item(item: ET.Element) -> list[dict[str, str]]:
    header: dict[str, str] = {}
    out = []
    for part in item:
        name = _local_name(part.tag)
        fields = {_local_name(child.tag): (child.text or "").strip() for child in part}
        if name == "REPORT_HEADER":
            header = fields
        elif name == "REPORT_DATA":
            out.append({**header, **fields})
    return out


def _revision(member: str, source: str, generated: str | None) -> int:
    """When OASIS generated the report, in epoch microseconds: from the member name, else the
    XML's own TimeDate, else a stamp in the response name; 0 where none of them says."""
    if member and (stamp := _OASIS_STAMP.search(member)):
        return to_micros(pacific_stamp(*stamp.groups()))
    if generated:
        try:
            return to_micros(_utc_text(generated))
        except ValueError:
            where = f"{member}: " if member else ""
            raise ParseError(source, f"{where}TimeDate is not a time: {generated!r}") from None
    if (published := published_in_name(source)) is not None:
        return published
    # Neither the payload nor its name says when it was made (e.g. grp_type=ALL members such
    # as 20240310_20240310_PRC_LMP_DAM_LMP_v12.csv): revision 0, replaced by any dated file.
    return 0


def published_in_name(name: str) -> int | None:
    """A publish time carried by a response name, in epoch microseconds: an OASIS file stamp
    (Pacific) or a "pubYYYYMMDDTHHMMSSZ" stamp (UTC) as the client writes it; else None."""
    if stamp := _OASIS_STAMP.search(name):
        return to_micros(pacific_stamp(*stamp.groups()))
    if stamp := _PUBLISHED.search(name):
        return to_micros(datetime.strptime(stamp.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    return None


@lru_cache(maxsize=1024)
def pacific_stamp(day: str, hour: str, minute: str, second: str) -> datetime:
    """UTC of an OASIS file-name stamp (Pacific wall clock; the first of a repeated hour)."""
    wall = datetime.combine(
        date(int(day[:4]), int(day[4:6]), int(day[6:])), time(int(hour), int(minute), int(second))
    )
    return wall_to_utc(_TZ, wall)


def _utc_text(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Spans:
    """(UTC start, minutes) of an OASIS row's GMT start and end cells, each pair parsed once."""

    def __init__(self, report: Report, source: str) -> None:
        self._instants: dict[str, datetime] = {}
        self._cache: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._report = report
        self._source = source

    def _instant(self, text: str, row: int) -> datetime:
        value = self._instants.get(text)
        if value is None:
            try:
                value = self._instants[text] = _utc_text(text)
            except ValueError:
                raise self._report.fail(self._source, f"not a GMT time: {text!r}", row) from None
        return value

    def __call__(self, start_text: str, end_text: str, row: int) -> tuple[datetime, int]:
        key = (start_text, end_text)
        span = self._cache.get(key)
        if span is None:
            start = self._instant(start_text, row)
            seconds = (self._instant(end_text, row) - start).total_seconds()
            if seconds <= 0 or seconds % 60:
                raise self._report.fail(
                    self._source,
                    f"interval {start_text} to {end_text} is not a whole number of minutes",
                    row,
                )
            span = self._cache[key] = (start, int(seconds // 60))
        return span


class NativeRow(Mapping[str, str]):
    """A source row as str -> str, read through its header instead of copied into a dict;
    `extra` holds fields a record adds from other rows (an LMP's components)."""

    __slots__ = ("_extra", "_header", "_row")

    def __init__(
        self, header: list[str], row: list[str], extra: Mapping[str, str] | None = None
    ) -> None:
        self._header = header
        self._row = row
        self._extra = extra or {}

    def __getitem__(self, key: str) -> str:
        if key in self._extra:
            return self._extra[key]
        try:
            return self._row[self._header.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        yield from self._header
        yield from (key for key in self._extra if key not in self._header)

    def __len__(self) -> int:
        return len(self._header) + sum(key not in self._header for key in self._extra)

    def __repr__(self) -> str:
        return repr(dict(self))


NOT_A_NUMBER = float("nan")  # stands in for a cell float() rejects, so one test catches both


def number(text: str, source: str, row: int, column: str, where: str = "") -> float:
    """A finite number from a cell, or a ParseError naming the cell (`where`: "member: ")."""
    try:
        value = float(text)  # the common case, without a further call
    except ValueError:
        value = NOT_A_NUMBER
    if value - value:  # not a number, or infinite
        return finite_float(text, source, row, where + column)  # raises, naming the cell
    return value
