"""ERCOT's local time labels, read into UTC.

ERCOT speaks Central Prevailing Time (America/Chicago) and labels an hour by its end:
- `HourEnding` 01:00..24:00 (also spelled "1:00", "01", "1") is the hour whose wall clock starts
  one hour earlier; 24:00 is the last hour of the operating day.
- Spring-forward day (23 hours): the label whose start falls in the skipped wall hour
  02:00-03:00 is absent, i.e. hour ending 03:00. Hour ending 02:00 is 01:00-02:00 CST and hour
  ending 04:00 is 03:00-04:00 CDT. A file that labels hour ending 03:00 on that day is rejected.
- Fall-back day (25 hours): hour ending 02:00 appears twice; `DSTFlag` (or `RepeatedHourFlag`)
  is N on the first (CDT) and Y on the repeated one (CST). A Y on any other hour is rejected, and
  so is an hour labelled twice with the same flag (caught where rows are keyed).
- Files without a DSTFlag column number the real hours of the day instead: 1..23, 1..24, 1..25.
- SCED timestamps are wall-clock instants; RepeatedHourFlag Y places one in the repeated hour.
- Document names carry their posting time in local time, `cdr.<id>.<16 digits>.<YYYYMMDD>.
  <HHMMSS>.<name>`; inside the repeated hour ERCOT adds "xhr" to the name.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache

from connectors.ercot.feeds import ISO
from schemas.timeutil import expected_intervals, nth_hour_start_utc, wall_to_utc, zone

TZ = zone(ISO)
FLAGS = {"N": False, "Y": True}

# One search per document name, never per row.
_POSTED = re.compile(r"\.(\d{8})\.(\d{6})(?:\d{3})?\.")


@lru_cache(maxsize=4096)
def parse_date(text: str) -> date:
    """An ERCOT delivery date, MM/DD/YYYY."""
    try:
        return datetime.strptime(text.strip(), "%m/%d/%Y").date()
    except ValueError:
        raise ValueError(f"not a date (MM/DD/YYYY): {text!r}") from None


@lru_cache(maxsize=1024)
def parse_hour(text: str) -> int:
    """An hour label as a number: "01:00", "1:00", "01" and "1" are all hour 1."""
    value = text.strip()
    if value.endswith(":00"):
        value = value[:-3]
    if not (0 < len(value) <= 2 and value.isascii() and value.isdigit()):
        raise ValueError(f"not an hour ending (01:00..24:00 or 1..25): {text!r}")
    return int(value)


def parse_flag(text: str, column: str) -> bool:
    """True for the repeated hour (Y), False otherwise (N)."""
    flag = FLAGS.get(text.strip().upper())
    if flag is None:
        raise ValueError(f"{column} must be Y or N, not {text!r}")
    return flag


@lru_cache(maxsize=4096)
def _labelled_hours(day: date) -> dict[tuple[int, bool], datetime]:
    """(hour ending, repeated) -> UTC start, for every real hour of the local day."""
    hours = {}
    for start in expected_intervals(ISO, day, 60):
        local = start.astimezone(TZ)  # fold is 1 on the second pass through the repeated hour
        hours[(local.hour + 1, local.fold == 1)] = start
    return hours


def hour_start_utc(day: date, hour_ending: int, repeated: bool) -> datetime:
    """UTC start of the hour ERCOT labels `hour_ending` (with its DSTFlag) on local `day`."""
    hours = _labelled_hours(day)
    found = hours.get((hour_ending, repeated))
    if found is not None:
        return found
    if not 1 <= hour_ending <= 24:
        raise ValueError(f"hour ending {hour_ending} is outside 01:00..24:00")
    label = f"hour ending {hour_ending:02d}:00 on {day:%m/%d/%Y}"
    if repeated:
        doubled = [he for he, again in hours if again]
        where = f"hour ending {doubled[0]:02d}:00" if doubled else "no hour of that day"
        raise ValueError(f"DSTFlag Y marks {label}, which is not repeated ({where} repeats)")
    raise ValueError(
        f"{label} does not exist: the clocks spring forward from 02:00 to 03:00, "
        "so that day skips hour ending 03:00"
    )


def counted_hour_start_utc(day: date, hour: int) -> datetime:
    """UTC start of the `hour`-th real hour (1-based) of local `day`, for files without a flag."""
    return nth_hour_start_utc(ISO, day, hour)


def interval_start_utc(day_text: str, hour_text: str, flag_text: str | None) -> datetime:
    """UTC start of an hour given as ERCOT's cells; `flag_text` None means the file has no flag.

    Raises ValueError naming what is wrong.
    """
    day = parse_date(day_text)
    hour = parse_hour(hour_text)
    if flag_text is None:
        return counted_hour_start_utc(day, hour)
    return hour_start_utc(day, hour, parse_flag(flag_text, "DSTFlag"))


@lru_cache(maxsize=4096)
def sced_instant_utc(text: str, repeated: bool) -> datetime:
    """A SCED timestamp ("MM/DD/YYYY HH:MM:SS", Central wall clock) with its RepeatedHourFlag."""
    try:
        wall = datetime.strptime(text.strip(), "%m/%d/%Y %H:%M:%S")
    except ValueError:
        raise ValueError(f"not a SCED timestamp (MM/DD/YYYY HH:MM:SS): {text!r}") from None
    first = wall.replace(tzinfo=TZ, fold=0)
    second = wall.replace(tzinfo=TZ, fold=1)
    if first.utcoffset() == second.utcoffset():
        if repeated:
            raise ValueError(f"RepeatedHourFlag Y on {text.strip()}, outside the repeated hour")
        return first.astimezone(UTC)
    if first.astimezone(UTC).astimezone(TZ).replace(tzinfo=None) != wall:
        raise ValueError(f"{text.strip()} does not exist in Central time (spring-forward gap)")
    return (second if repeated else first).astimezone(UTC)


def posted_utc(name: str) -> datetime | None:
    """The posting time a document name carries (cdr-style local stamp), or None."""
    match = _POSTED.search(name)
    if match is None:
        return None
    day, clock = match.group(1), match.group(2)  # 8 and 6 digits
    try:
        wall = datetime(
            int(day[:4]),
            int(day[4:6]),
            int(day[6:]),
            int(clock[:2]),
            int(clock[2:4]),
            int(clock[4:]),
        )
    except ValueError:
        raise ValueError(f"the posting stamp in {name!r} is not a date and time") from None
    repeated = "xhr" in name[match.end() :].lower()
    return wall_to_utc(TZ, wall, repeated)


def posting_stamp(posted: datetime) -> str:
    """The `YYYYMMDD.HHMMSS` local stamp ERCOT puts in a document name for a posting instant."""
    return f"{posted.astimezone(TZ):%Y%m%d.%H%M%S}"


def in_repeated_hour(instant: datetime) -> bool:
    """Whether an instant falls in the second pass through the fall-back hour (local fold 1)."""
    return instant.astimezone(TZ).fold == 1
