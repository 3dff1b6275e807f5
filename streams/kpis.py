"""Trading KPIs as pure functions over the latest value of each interval in a window.

A window is an hour or the ISO's local operating day (23, 24 or 25 hours). The input is always
the *set* of intervals with their latest revision (a mapping interval start -> price), never a
running sum, so a redelivered or revised price changes the result by replacement, not addition.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from schemas.timeutil import day_bounds_utc, zone


@dataclass(frozen=True)
class Interval:
    """The latest known value of one interval of one series."""

    start_utc: datetime
    minutes: int
    lmp: float
    congestion: float | None = None
    loss: float | None = None
    arrived_utc: datetime | None = None  # when the value reached OptiBid (for latency)

    @property
    def end_utc(self) -> datetime:
        return self.start_utc + timedelta(minutes=self.minutes)


@lru_cache(maxsize=64)
def nerc_holidays(year: int) -> frozenset[date]:
    """NERC off-peak holidays: New Year's Day, Memorial Day, Independence Day, Labor Day,
    Thanksgiving, Christmas; one falling on a Sunday is observed the Monday after."""

    def nth_weekday(month: int, weekday: int, n: int) -> date:
        first = date(year, month, 1)
        offset = (weekday - first.weekday()) % 7
        return first + timedelta(days=offset + 7 * (n - 1))

    def last_weekday(month: int, weekday: int) -> date:
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        last = nxt - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)

    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 12, 25)]
    observed = [d + timedelta(days=1) if d.weekday() == 6 else d for d in fixed]
    return frozenset(
        [
            *observed,
            last_weekday(5, 0),  # Memorial Day: last Monday of May
            nth_weekday(9, 0, 1),  # Labor Day: first Monday of September
            nth_weekday(11, 3, 4),  # Thanksgiving: fourth Thursday of November
        ]
    )


def is_on_peak(iso: str, start_utc: datetime) -> bool:
    """Hours ending 8..23 local prevailing time, Monday to Friday, NERC holidays excepted.

    The interval belongs to the hour that contains its start: hour ending 8 is 07:00-08:00.
    """
    local = start_utc.astimezone(zone(iso))
    if local.weekday() >= 5 or local.date() in nerc_holidays(local.year):
        return False
    hour_ending = local.hour + 1
    return 8 <= hour_ending <= 23


def twap(intervals: Iterable[Interval]) -> float | None:
    """Time-weighted average LMP."""
    total = weight = 0.0
    for i in intervals:
        total += i.lmp * i.minutes
        weight += i.minutes
    return total / weight if weight else None


def volatility(intervals: Sequence[Interval]) -> float | None:
    """Population standard deviation of the interval prices (0 for a single interval)."""
    if not intervals:
        return None
    return statistics.pstdev(i.lmp for i in intervals)


@dataclass(frozen=True)
class DayKpis:
    twap: float | None
    on_peak_avg: float | None
    off_peak_avg: float | None
    min_lmp: float | None
    max_lmp: float | None
    max_interval_start_utc: datetime | None
    volatility: float | None
    negative_intervals: int
    negative_share: float | None
    spike_intervals: int
    congestion_share: float | None
    mean_loss: float | None
    intervals_received: int
    intervals_expected: int
    completeness: float
    latency_p50_s: float | None
    latency_p95_s: float | None


def expected_count(iso: str, day: date, minutes: int) -> int:
    start, end = day_bounds_utc(iso, day)
    return int((end - start) / timedelta(minutes=minutes))


def percentile(values: Sequence[float], share: float) -> float | None:
    """Linear-interpolated percentile (share in 0..1) of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def day_kpis(
    iso: str,
    day: date,
    minutes: int,
    latest: Mapping[datetime, Interval],
    spike_threshold: float = 1000.0,
) -> DayKpis:
    """Every daily KPI of one series on the ISO's local `day` from its latest interval values."""
    start, end = day_bounds_utc(iso, day)
    values = sorted((i for s, i in latest.items() if start <= s < end), key=lambda i: i.start_utc)
    on = [i for i in values if is_on_peak(iso, i.start_utc)]
    off = [i for i in values if not is_on_peak(iso, i.start_utc)]
    highest = max(values, key=lambda i: (i.lmp, -i.start_utc.timestamp()), default=None)
    negatives = sum(1 for i in values if i.lmp < 0)
    with_components = [i for i in values if i.congestion is not None]
    mean_abs_lmp = statistics.fmean(abs(i.lmp) for i in with_components) if with_components else 0
    congestion_share = (
        statistics.fmean(abs(i.congestion) for i in with_components if i.congestion is not None)
        / mean_abs_lmp
        if with_components and mean_abs_lmp
        else None
    )
    losses = [i.loss for i in values if i.loss is not None]
    latencies = [
        (i.arrived_utc - i.end_utc).total_seconds() for i in values if i.arrived_utc is not None
    ]
    expected = expected_count(iso, day, minutes)
    return DayKpis(
        twap=twap(values),
        on_peak_avg=twap(on),
        off_peak_avg=twap(off),
        min_lmp=min((i.lmp for i in values), default=None),
        max_lmp=highest.lmp if highest else None,
        max_interval_start_utc=highest.start_utc if highest else None,
        volatility=volatility(values),
        negative_intervals=negatives,
        negative_share=negatives / len(values) if values else None,
        spike_intervals=sum(1 for i in values if i.lmp > spike_threshold),
        congestion_share=congestion_share,
        mean_loss=statistics.fmean(losses) if losses else None,
        intervals_received=len(values),
        intervals_expected=expected,
        completeness=len(values) / expected if expected else 0.0,
        latency_p50_s=percentile(latencies, 0.5),
        latency_p95_s=percentile(latencies, 0.95),
    )


def hourly_average(latest: Mapping[datetime, Interval]) -> dict[datetime, float]:
    """Time-weighted average per UTC hour (RT 5/15-minute prices to compare with hourly DA)."""
    hours: dict[datetime, list[Interval]] = {}
    for interval in latest.values():
        hour = interval.start_utc.replace(minute=0, second=0, microsecond=0)
        hours.setdefault(hour, []).append(interval)
    return {hour: value for hour, items in hours.items() if (value := twap(items)) is not None}


def da_rt_spread(
    day_ahead: Mapping[datetime, Interval], real_time: Mapping[datetime, Interval]
) -> dict[datetime, float]:
    """Hourly DA minus the hourly average of RT, for hours both markets have."""
    rt = hourly_average(real_time)
    return {hour: da.lmp - rt[hour] for hour, da in day_ahead.items() if hour in rt}


def mean_abs(values: Iterable[float]) -> float | None:
    items = [abs(v) for v in values]
    return statistics.fmean(items) if items else None


def basis(location_twap: float | None, hub_twap: float | None) -> float | None:
    """Location minus its ISO's reference hub, same window."""
    if location_twap is None or hub_twap is None:
        return None
    return location_twap - hub_twap


def percentile_rank(value: float, population: Sequence[float]) -> float:
    """Share (0..1) of the population at or below `value` (the location's standing)."""
    if not population:
        return 0.0
    return sum(1 for v in population if v <= value) / len(population)
