"""CAISO files that speak Pacific wall-clock time without an offset: Today's Outlook CSVs and
the Daily Renewables Watch. Here each row's label becomes a UTC interval.

Today's Outlook. A row labelled T is the 5-minute interval ENDING at T. Evidence: in the
recorded 7-day outlook (rtm_forecast_7day.csv) the hourly columns (day-ahead forecast, reserve
requirement) change value between the HH:00 and HH:05 rows, so HH:00 closes hour HH; and the
daily files hold 289 rows, 00:00 through the next day's 00:00, i.e. one day's 288 intervals
plus the previous day's last. Labels are "HH:MM" (the day then comes from the response name:
history/YYYYMMDD/) or "MM/DD/YYYY HH:MM".
- Spring forward: the files keep a fixed wall-clock grid, so 02:00-02:55 are present with every
  value blank. Blank rows at wall times that do not exist are skipped; one with values is
  rejected.
- Fall back: the labels 01:00-01:55 name two instants. A label seen twice is read in file
  order, first PDT then PST. A label seen once, in a file that goes on past the repeated hour,
  cannot be placed (CAISO's daily products have been seen to publish one set of values for the
  two hours: the recorded 2025-11-02 renewables report has 288 five-minute points and the
  2017-11-05 Renewables Watch 24 hours), so the file is rejected rather than guessed. A file
  that ends inside the repeated hour (today's file) reads its labels as the first pass.

Daily Renewables Watch. Hour-ending rows 1..24 of one Pacific day: hour ending 3 does not exist
on a spring-forward day (the recorded 2017-03-12 file has .NET "invalid time" text there) and
is skipped; hour ending 2 is ambiguous on a fall-back day and is read like an Outlook label.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from connectors.caiso.feeds import (
    DAY_IN_NAME,
    ISO,
    OUTLOOK_AREA,
    OUTLOOK_AREA_TYPE,
    OUTLOOK_MINUTES,
    OUTLOOK_TIME,
    RENEWABLES_WATCH_MARK,
)
from connectors.errors import ParseError
from connectors.records import PUBLISH_TIME, LoadRecord
from connectors.tabular import decode_text
from schemas.timeutil import zone

_TZ = zone(ISO)
_DAY_IN_NAME = re.compile(DAY_IN_NAME)
_STEP = timedelta(minutes=OUTLOOK_MINUTES)
_HALF_DAY = 12 * 60


@lru_cache(maxsize=65_536)
def wall_instants(day: date, minute: int) -> tuple[datetime, ...]:
    """Every UTC instant the Pacific wall time `minute` after midnight of `day` names: none in
    the spring-forward gap, two in the repeated hour of fall back, else one."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    offset = _steady_offset(day)
    if offset is not None:
        return ((wall - offset).replace(tzinfo=UTC),)
    candidates = {wall.replace(tzinfo=_TZ, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return tuple(sorted(c for c in candidates if c.astimezone(_TZ).replace(tzinfo=None) == wall))


@lru_cache(maxsize=4096)
def _steady_offset(day: date) -> timedelta | None:
    """Pacific time's UTC offset all through `day` (midnight to the next midnight), or None on a
    day the clocks change. US clocks change at most once a day, so a day that ends on the offset
    it starts with keeps it throughout."""
    start = datetime.combine(day, time(), tzinfo=_TZ)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=_TZ)
    offset = start.utcoffset()
    return offset if offset == end.utcoffset() else None


@lru_cache(maxsize=4096)
def _label(text: str) -> tuple[date | None, int]:
    """(day or None, minutes after midnight) of "HH:MM" or "MM/DD/YYYY HH:MM"; ValueError else."""
    day_text, _, clock = text.rpartition(" ")
    hours, _, minutes = clock.partition(":")
    minute = int(hours) * 60 + int(minutes)
    if not (0 <= int(minutes) < 60 and 0 <= minute <= 24 * 60) or len(minutes) != 2:
        raise ValueError(text)
    if not day_text:
        return None, minute
    month, day, year = day_text.strip().split("/")
    return date(int(year), int(month), int(day)), minute


@dataclass
class _Placement:
    """Turns wall-clock labels, in file order, into UTC instants."""

    source: str
    seen: dict[tuple[date, int], int]  # occurrences of each ambiguous wall time
    once: dict[tuple[date, int], tuple[int, str]]  # ambiguous times with data seen once
    last: datetime | None = None

    def place(self, day: date, minute: int, label: str, blank: bool, row: int) -> datetime | None:
        """The instant of a row, or None for a row to skip (blank, or in the spring gap)."""
        instants = wall_instants(day, minute)
        if not instants:
            if blank:
                return None
            raise ParseError(
                self.source,
                f"{label} does not exist on {day} (clocks jump forward) yet has values",
                row,
            )
        occurrence = 0
        if len(instants) == 2:
            occurrence = self.seen.get((day, minute), 0)
            if occurrence >= 2:
                raise ParseError(self.source, f"{label} appears more than twice on {day}", row)
            self.seen[(day, minute)] = occurrence + 1
            if not blank and occurrence == 0:
                self.once[(day, minute)] = (row, label)
            elif occurrence == 1:
                self.once.pop((day, minute), None)
        if blank:
            return None
        return instants[occurrence]

    def follows(
        self, instant: datetime, row: list[str], previous: list[str] | None, label: str, number: int
    ) -> bool:
        """True for a row after the one before; False for that row repeated verbatim;
        ParseError for a row that goes back in time (or repeats a time with other values)."""
        if self.last is not None and instant <= self.last:
            if instant == self.last and row == previous:
                return False
            raise ParseError(
                self.source, f"{label} is out of order (after {self.last:%Y-%m-%d %H:%MZ})", number
            )
        self.last = instant
        return True

    def check_repeated_hour(self) -> None:
        """Reject a label of the repeated hour seen once in a file that goes on past that hour."""
        for (day, minute), (row, label) in self.once.items():
            second = wall_instants(day, minute)[1]
            if self.last is not None and self.last >= second:
                raise ParseError(
                    self.source,
                    f"{label} appears once on {day}, a 25-hour day, where it names two times"
                    " (PDT and PST); cannot tell which",
                    row,
                )


def outlook_intervals(
    header: list[str], rows: list[list[str]], source: str
) -> list[tuple[int, list[str], datetime]]:
    """(row number, row, UTC interval start) of each Outlook row that carries values.

    A row whose values are all blank (not published yet, or a wall time that does not exist)
    is skipped; a single blank cell is the caller's to skip.
    """
    if not header or header[0] != OUTLOOK_TIME:
        raise ParseError(
            source, f"first column {header[0] if header else ''!r} where Time was expected"
        )
    placement = _Placement(source, {}, {})
    file_day: date | None = None
    day: date | None = None
    previous_minute = -1
    previous: list[str] | None = None
    out = []
    for number, row in enumerate(rows, start=1):
        label = row[0].strip()
        blank = not any(cell.strip() for cell in row[1:])
        if not label:
            if blank:
                continue
            raise ParseError(source, "a row with values but no Time", number)
        try:
            labelled_day, minute = _label(label)
        except ValueError:
            raise ParseError(
                source, f"Time is not HH:MM or MM/DD/YYYY HH:MM: {label!r}", number
            ) from None
        if minute % OUTLOOK_MINUTES:
            raise ParseError(source, f"Time {label!r} is not on the 5-minute grid", number)
        if labelled_day is None:
            if file_day is None:
                file_day = _day_of(source)
                day = file_day
            assert day is not None
            # The trailing 00:00 after 23:55 is the next day's midnight.
            if minute < previous_minute - _HALF_DAY:
                day += timedelta(days=1)
            previous_minute = minute
            labelled_day = day
        end = placement.place(labelled_day, minute, label, blank, number)
        if end is not None and placement.follows(end, row, previous, label, number):
            out.append((number, row, end - _STEP))
            previous = row
    placement.check_repeated_hour()
    return out


def demand_record(
    start: datetime, mw: float, revision: int, source: str, row: int, native: Mapping[str, str]
) -> LoadRecord:
    """The record of one Outlook demand interval (the row path's and the columnar path's):
    CAISO's 5-minute actual demand, under its own area id (see feeds.OUTLOOK_AREA)."""
    return LoadRecord(
        ISO,
        OUTLOOK_AREA,
        OUTLOOK_AREA_TYPE,
        start,
        OUTLOOK_MINUTES,
        mw,
        "ACTUAL",
        None,
        revision,
        PUBLISH_TIME,
        source,
        row,
        native,
    )


def _day_of(source: str) -> date:
    found = _DAY_IN_NAME.search(source)
    if found is None:
        raise ParseError(
            source, "times without a date need the day in the response name (YYYYMMDD)"
        )
    text = found.group(1)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ParseError(source, f"{text} in the name is not a day") from None


def is_renewables_watch(data: bytes) -> bool:
    return RENEWABLES_WATCH_MARK.encode() in data[:400]


@dataclass(frozen=True, slots=True)
class WatchCell:
    """One value of a Daily Renewables Watch table."""

    row: int
    label: str  # the column, e.g. "WIND TOTAL"
    text: str
    start_utc: datetime
    native: dict[str, str]  # the row's labelled values


def renewables_watch_cells(data: bytes, source: str) -> list[WatchCell]:
    """Every value of both hourly tables, placed in UTC (see the module doc for DST days)."""
    text = decode_text(data, source)
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    except csv.Error as exc:
        raise ParseError(source, f"unreadable tab-separated text: {exc}") from exc
    if not lines or not lines[0] or not lines[0][0].strip():
        raise ParseError(source, "no report date on the first line")
    try:
        day = datetime.strptime(lines[0][0].strip(), "%m/%d/%y").date()
    except ValueError:
        raise ParseError(
            source, f"first line starts {lines[0][0]!r}, not a date MM/DD/YY"
        ) from None
    cells: list[WatchCell] = []
    columns: list[str] | None = None
    placement = _Placement(source, {}, {})
    tables = 0
    for number, line in enumerate(lines, start=1):
        tokens = [token.strip() for token in line if token.strip()]
        if not tokens or RENEWABLES_WATCH_MARK in " ".join(tokens):
            continue
        if tokens[0] == "Hour":
            columns = tokens[1:]
            placement.check_repeated_hour()
            placement = _Placement(source, {}, {})
            tables += 1
            continue
        if columns is None:
            raise ParseError(source, f"a row before any table header: {tokens[0]!r}", number)
        cells += _watch_row(tokens, columns, day, placement, source, number)
    placement.check_repeated_hour()
    if tables != 2:
        raise ParseError(source, f"{tables} hourly tables where the report has 2; truncated?")
    return cells


def _watch_row(
    tokens: list[str],
    columns: list[str],
    day: date,
    placement: _Placement,
    source: str,
    number: int,
) -> list[WatchCell]:
    try:
        hour_ending = int(tokens[0])
    except ValueError:
        raise ParseError(source, f"Hour is not a number: {tokens[0]!r}", number) from None
    if not 1 <= hour_ending <= 24:
        raise ParseError(source, f"hour ending {hour_ending} is outside 1..24", number)
    minute = (hour_ending - 1) * 60
    if not wall_instants(day, minute):
        # An hour that does not exist (spring forward): whatever the report put there (the
        # recorded file has .NET "invalid time" text, 0 and #VALUE!) is not an observation.
        return []
    label = f"hour ending {hour_ending}"
    start = placement.place(day, minute, label, False, number)
    assert start is not None  # a row with values is never skipped
    placement.follows(start, tokens, None, label, number)
    if len(tokens) != len(columns) + 1:
        raise ParseError(
            source, f"{len(tokens) - 1} values where the table has {len(columns)} columns", number
        )
    native = dict(zip(("Hour", *columns), tokens, strict=True))
    return [
        WatchCell(number, label, value, start, native)
        for label, value in zip(columns, tokens[1:], strict=True)
    ]
