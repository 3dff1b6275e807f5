"""Local time at the edges: ISO time zones and the conversions ISO files and local days need.

Everything inside OptiBid is UTC. ISO files that speak local time are converted here, and each
conversion is explicit about the repeated hour (fall back) and the missing one (spring forward).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.vocabulary import TIME_ZONES

ISO_ZONES: dict[str, ZoneInfo] = {iso: ZoneInfo(name) for iso, name in TIME_ZONES.items()}


def zone(iso: str) -> ZoneInfo:
    """The prevailing-time zone of an ISO, by its wire value (`PJM`)."""
    try:
        return ISO_ZONES[iso]
    except KeyError:
        raise ValueError(f"unknown ISO {iso!r}; expected one of {sorted(ISO_ZONES)}") from None


def wall_to_utc(tz: ZoneInfo, wall: datetime, repeated: bool = False) -> datetime:
    """UTC instant of a naive local wall-clock time.

    `repeated` picks the second occurrence of an ambiguous time (the hour after fall back,
    standard time). A wall time that does not exist (inside the spring-forward gap) is read with
    the offset after the change, so the hour labelled 02:00-03:00 on a spring day maps to the one
    real hour that follows 01:00-02:00.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    ambiguous = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    if ambiguous:
        return (second if repeated else first).astimezone(UTC)
    return second.astimezone(UTC)  # non-existent wall time: spring-forward gap


@lru_cache(maxsize=65_536)
def hour_ending_start_utc(
    iso: str, day: date, hour_ending: int, repeated: bool = False
) -> datetime:
    """UTC start of the hour labelled `hour_ending` (1..24, wall clock) on local `day`."""
    if not 1 <= hour_ending <= 24:
        raise ValueError(f"hour ending {hour_ending} is outside 1..24")
    start_wall = datetime.combine(day, time()) + timedelta(hours=hour_ending - 1)
    return wall_to_utc(zone(iso), start_wall, repeated)


@lru_cache(maxsize=65_536)
def nth_hour_start_utc(iso: str, day: date, n: int) -> datetime:
    """UTC start of the n-th hour (1-based) of local `day`, counting real hours from midnight.

    For files that number hours 1..23 / 1..25 on DST days without a flag.
    """
    hours = day_hours(iso, day)
    if not 1 <= n <= hours:
        raise ValueError(f"hour {n} is outside 1..{hours} of {day} in {zone(iso).key}")
    return local_midnight_utc(iso, day) + timedelta(hours=n - 1)


@lru_cache(maxsize=4096)
def local_midnight_utc(iso: str, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone(iso)).astimezone(UTC)


def day_bounds_utc(iso: str, day: date) -> tuple[datetime, datetime]:
    """[start, end) of the ISO's local operating day, in UTC."""
    return local_midnight_utc(iso, day), local_midnight_utc(iso, day + timedelta(days=1))


def day_hours(iso: str, day: date) -> int:
    """23, 24 or 25."""
    start, end = day_bounds_utc(iso, day)
    return int((end - start) / timedelta(hours=1))


def expected_intervals(iso: str, day: date, minutes: int) -> list[datetime]:
    """Every interval start of local `day` at a cadence of `minutes`, in UTC."""
    start, end = day_bounds_utc(iso, day)
    step = timedelta(minutes=minutes)
    count = int((end - start) / step)
    return [start + i * step for i in range(count)]


def local_day(iso: str, instant_utc: datetime) -> date:
    """The ISO's operating day an instant falls in."""
    return instant_utc.astimezone(zone(iso)).date()


def floor_to(instant: datetime, minutes: int) -> datetime:
    """The start of the `minutes`-long interval holding `instant` (UTC-aligned)."""
    step = minutes * 60
    seconds = int(instant.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, tz=UTC)


@lru_cache(maxsize=131_072)
def parse_utc(text: str) -> datetime:
    """An ISO-8601 timestamp with an offset or Z (or naive, read as UTC), as aware UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_micros(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000 + instant.microsecond
