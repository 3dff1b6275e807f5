"""Gap detection in event time, and coalescing gaps into backfill windows.

Per series the tracker knows its cadence, the latest interval received (its high water) and the
intervals still missing below it. Per (ISO, dataset) the watermark is the latest interval end
seen on any series. An interval is declared missing once the dataset's watermark has passed its
end by the allowed lateness, whether later intervals of its own series arrived (a hole) or not
(a series that stopped). Working in UTC event time makes 23- and 25-hour local days ordinary:
their intervals are evenly spaced in UTC, and a replay of old data behaves as it did live.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GAP_NAMESPACE = uuid.UUID("a3f0c9de-1c57-4d44-8f0e-4a7a1f0b8d31")
REQUEST_NAMESPACE = uuid.UUID("d6b2e1f4-7a9c-4c1e-9e3b-2f6a0c8d5b72")


@dataclass(frozen=True)
class Gap:
    gap_id: str
    iso: str
    dataset: str
    series_key: str
    start_utc: datetime  # first missing interval start
    end_utc: datetime  # exclusive end of the last missing interval
    interval_minutes: int

    @property
    def missing_intervals(self) -> int:
        return int((self.end_utc - self.start_utc) / timedelta(minutes=self.interval_minutes))


@dataclass(frozen=True)
class Window:
    """A backfill request: one window of one (ISO, dataset), covering gaps of many series."""

    request_id: str
    iso: str
    dataset: str
    start_utc: datetime
    end_utc: datetime
    gap_ids: tuple[str, ...]
    attempt: int


@dataclass
class Series:
    interval_minutes: int
    first: datetime
    high_water: datetime  # latest interval start received
    missing: set[datetime] = field(default_factory=set)  # below high water, not yet declared
    declared: dict[datetime, str] = field(default_factory=dict)  # interval -> gap id


def _ts(instant: datetime) -> int:
    return int(instant.timestamp())


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def dump_series(state: Series) -> dict[str, Any]:
    """A JSON-able snapshot of one series (what a Faust table stores)."""
    return {
        "m": state.interval_minutes,
        "f": _ts(state.first),
        "h": _ts(state.high_water),
        "x": sorted(_ts(t) for t in state.missing),
        "d": {str(_ts(t)): gap for t, gap in state.declared.items()},
    }


def load_series(snapshot: dict[str, Any]) -> Series:
    return Series(
        snapshot["m"],
        _dt(snapshot["f"]),
        _dt(snapshot["h"]),
        {_dt(t) for t in snapshot["x"]},
        {_dt(int(t)): gap for t, gap in snapshot["d"].items()},
    )


@dataclass
class GapTracker:
    """All series of one (ISO, dataset)."""

    iso: str
    dataset: str
    lateness: timedelta
    series: dict[str, Series] = field(default_factory=dict)
    watermark: datetime | None = None
    open_gaps: dict[str, Gap] = field(default_factory=dict)
    gap_intervals: dict[str, set[datetime]] = field(default_factory=dict)

    def restore(self, series_key: str, state: Series) -> None:
        """Adopt a series snapshot (after a restart): its open gaps and the watermark follow."""
        self.series[series_key] = state
        end = state.high_water + timedelta(minutes=state.interval_minutes)
        if self.watermark is None or end > self.watermark:
            self.watermark = end
        step = timedelta(minutes=state.interval_minutes)
        by_gap: dict[str, list[datetime]] = {}
        for interval, gap_id in state.declared.items():
            by_gap.setdefault(gap_id, []).append(interval)
        for gap_id, intervals in by_gap.items():
            if gap_id not in self.open_gaps:
                intervals.sort()
                self.open_gaps[gap_id] = Gap(
                    gap_id,
                    self.iso,
                    self.dataset,
                    series_key,
                    intervals[0],
                    intervals[-1] + step,
                    state.interval_minutes,
                )
            self.gap_intervals.setdefault(gap_id, set()).update(intervals)

    def observe(self, series_key: str, start: datetime, minutes: int) -> list[Gap]:
        """Record an arrival; returns the gaps this arrival completes (all intervals present)."""
        step = timedelta(minutes=minutes)
        state = self.series.get(series_key)
        if state is None:
            self.series[series_key] = Series(minutes, start, start)
        elif start > state.high_water:
            current = state.high_water + step
            while current < start:
                state.missing.add(current)
                current += step
            state.high_water = start
        else:
            state.missing.discard(start)
        end = start + step
        if self.watermark is None or end > self.watermark:
            self.watermark = end
        return self._fill(series_key, start)

    def _fill(self, series_key: str, start: datetime) -> list[Gap]:
        state = self.series[series_key]
        gap_id = state.declared.pop(start, None)
        if gap_id is None:
            return []
        remaining = self.gap_intervals[gap_id]
        remaining.discard(start)
        if remaining:
            return []
        del self.gap_intervals[gap_id]
        return [self.open_gaps.pop(gap_id)]

    def tick(self) -> list[Gap]:
        """Declare the intervals whose lateness has passed; contiguous ones form one gap."""
        if self.watermark is None:
            return []
        deadline = self.watermark - self.lateness
        gaps: list[Gap] = []
        for key, state in self.series.items():
            step = timedelta(minutes=state.interval_minutes)
            # a series that stopped: its intervals after the high water are missing too
            current = state.high_water + step
            while current + step <= deadline:
                state.missing.add(current)
                state.high_water = current
                current += step
            due = sorted(s for s in state.missing if s + step <= deadline)
            for run in _runs(due, step):
                gap = self._declare(key, state, run, step)
                gaps.append(gap)
        return gaps

    def _declare(self, key: str, state: Series, run: list[datetime], step: timedelta) -> Gap:
        start, end = run[0], run[-1] + step
        gap_id = str(
            uuid.uuid5(GAP_NAMESPACE, f"{self.iso}|{self.dataset}|{key}|{start.isoformat()}")
        )
        gap = Gap(gap_id, self.iso, self.dataset, key, start, end, state.interval_minutes)
        for interval in run:
            state.missing.discard(interval)
            state.declared[interval] = gap_id
        self.open_gaps[gap_id] = gap
        self.gap_intervals[gap_id] = set(run)
        return gap

    def abandon(self, gap_ids: Iterable[str]) -> list[Gap]:
        """Stop waiting for gaps the ISO cannot fill (unrecoverable)."""
        abandoned = []
        for gap_id in gap_ids:
            gap = self.open_gaps.pop(gap_id, None)
            if gap is None:
                continue
            for interval in self.gap_intervals.pop(gap_id, set()):
                self.series[gap.series_key].declared.pop(interval, None)
            abandoned.append(gap)
        return abandoned


def _runs(starts: list[datetime], step: timedelta) -> list[list[datetime]]:
    runs: list[list[datetime]] = []
    for start in starts:
        if runs and start - runs[-1][-1] == step:
            runs[-1].append(start)
        else:
            runs.append([start])
    return runs


def coalesce(
    gaps: Iterable[Gap],
    attempt: int = 1,
    max_window: timedelta = timedelta(days=1),
    join_within: timedelta = timedelta(hours=1),
) -> list[Window]:
    """One request per (ISO, dataset) and time range, whatever the number of series.

    Windows are unions of gap ranges less than `join_within` apart (one request for a few
    scattered holes is cheaper than many), split at `max_window` so one request stays a size
    the ISO serves.
    """
    by_dataset: dict[tuple[str, str], list[Gap]] = {}
    for gap in gaps:
        by_dataset.setdefault((gap.iso, gap.dataset), []).append(gap)
    windows: list[Window] = []
    for (iso, dataset), members in sorted(by_dataset.items()):
        members.sort(key=lambda g: (g.start_utc, g.end_utc))
        group: list[Gap] = []
        group_end: datetime | None = None
        for gap in members:
            if group and group_end is not None and gap.start_utc <= group_end + join_within:
                group.append(gap)
                group_end = max(group_end, gap.end_utc)
                continue
            if group and group_end is not None:
                windows += _split(iso, dataset, group, group_end, attempt, max_window)
            group, group_end = [gap], gap.end_utc
        if group and group_end is not None:
            windows += _split(iso, dataset, group, group_end, attempt, max_window)
    return windows


def _split(
    iso: str, dataset: str, group: list[Gap], end: datetime, attempt: int, max_window: timedelta
) -> list[Window]:
    start = group[0].start_utc
    out = []
    lo = start
    while lo < end:
        hi = min(lo + max_window, end)
        ids = tuple(sorted(g.gap_id for g in group if g.start_utc < hi and g.end_utc > lo))
        identity = f"{iso}|{dataset}|{lo.isoformat()}|{hi.isoformat()}|{attempt}"
        out.append(
            Window(str(uuid.uuid5(REQUEST_NAMESPACE, identity)), iso, dataset, lo, hi, ids, attempt)
        )
        lo = hi
    return out
