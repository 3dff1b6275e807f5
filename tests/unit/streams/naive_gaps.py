"""The per-interval gap model the range tracker must agree with: one datetime per missing
interval, every interval between a series' high water and the deadline filled in one by one.
Slow and unbounded by design; it is the reference of the property test, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streams.gaps import GAP_NAMESPACE, Gap


@dataclass
class NaiveSeries:
    interval_minutes: int
    first: datetime
    high_water: datetime  # latest interval start received
    missing: set[datetime] = field(default_factory=set)  # below high water, not yet declared
    declared: dict[datetime, str] = field(default_factory=dict)  # interval -> gap id
    last_seen: datetime | None = None  # latest interval start received
    retired: bool = False


@dataclass
class NaiveGapTracker:
    """All series of one (ISO, dataset)."""

    iso: str
    dataset: str
    lateness: timedelta
    series: dict[str, NaiveSeries] = field(default_factory=dict)
    watermark: datetime | None = None
    open_gaps: dict[str, Gap] = field(default_factory=dict)
    gap_intervals: dict[str, set[datetime]] = field(default_factory=dict)
    retire_after: timedelta | None = None
    changes: list[tuple[str, str, datetime]] = field(default_factory=list)  # key, status, last

    def _limit(self, state: NaiveSeries) -> datetime | None:
        """The first interval start past the retirement age, counted interval by interval."""
        if self.retire_after is None or state.last_seen is None:
            return None
        step = timedelta(minutes=state.interval_minutes)
        limit = state.last_seen + step
        silence = timedelta(0)
        while silence < self.retire_after:
            limit += step
            silence += step
        return limit

    def observe(self, series_key: str, start: datetime, minutes: int) -> list[Gap]:
        """Record an arrival; returns the gaps this arrival completes (all intervals present)."""
        step = timedelta(minutes=minutes)
        state = self.series.get(series_key)
        if state is None:
            self.series[series_key] = NaiveSeries(minutes, start, start, last_seen=start)
        else:
            assert state.last_seen is not None
            limit = self._limit(state)
            back = state.retired and start > state.last_seen
            if back:
                state.retired = False
                self.changes.append((series_key, "ACTIVE", state.last_seen))
            elif limit is not None and start > limit:
                self.changes.append((series_key, "RETIRED", state.last_seen))
                self.changes.append((series_key, "ACTIVE", state.last_seen))
            if start > state.high_water:
                current = state.high_water + step
                while not back and current < start and (limit is None or current < limit):
                    state.missing.add(current)
                    current += step
                state.high_water = start
            else:
                state.missing.discard(start)
            state.last_seen = max(state.last_seen, start)
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
            limit = self._limit(state)
            if limit is not None and not state.retired and deadline >= limit:
                state.retired = True
                assert state.last_seen is not None
                self.changes.append((key, "RETIRED", state.last_seen))
            # a series that stopped: its intervals after the high water are missing too
            current = state.high_water + step
            while current + step <= deadline and (limit is None or current < limit):
                state.missing.add(current)
                state.high_water = current
                current += step
            due = sorted(s for s in state.missing if s + step <= deadline)
            for run in _runs(due, step):
                gap = self._declare(key, state, run, step)
                gaps.append(gap)
        return gaps

    def _declare(self, key: str, state: NaiveSeries, run: list[datetime], step: timedelta) -> Gap:
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
