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
from bisect import bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

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
class BackfillWindow:
    """A backfill request: one window of one (ISO, dataset), covering gaps of many series."""

    request_id: str
    iso: str
    dataset: str
    start_utc: datetime
    end_utc: datetime
    gap_ids: tuple[str, ...]
    attempt: int

    def to_state(self) -> dict[str, Any]:
        """The window as the worker's `backfill_retries` table stores it (JSON)."""
        return {
            "request_id": self.request_id,
            "iso": self.iso,
            "dataset": self.dataset,
            "start_utc": self.start_utc.isoformat(),
            "end_utc": self.end_utc.isoformat(),
            "gap_ids": list(self.gap_ids),
            "attempt": self.attempt,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BackfillWindow:
        return cls(
            state["request_id"],
            state["iso"],
            state["dataset"],
            datetime.fromisoformat(state["start_utc"]),
            datetime.fromisoformat(state["end_utc"]),
            tuple(state["gap_ids"]),
            int(state["attempt"]),
        )


RETRIED_OUTCOMES = frozenset({"FAILED", "EMPTY"})


@dataclass(frozen=True)
class BackfillOutcome:
    """A BackfillCompleted as the planner reads it: how one attempt of one window ended."""

    window: BackfillWindow
    outcome: str  # FILLED | EMPTY | FAILED | UNRECOVERABLE

    @classmethod
    def of(cls, done: Mapping[str, Any]) -> BackfillOutcome:
        """From a decoded BackfillCompleted (one written before `attempt` and `gap_ids` existed
        reads as attempt 1 with no gap ids)."""
        window = BackfillWindow(
            done["request_id"],
            done["iso"],
            done["dataset"],
            done["window_start_utc"],
            done["window_end_utc"],
            tuple(done.get("gap_ids") or ()),
            int(done.get("attempt") or 1),
        )
        return cls(window, done["outcome"])


def next_attempt(done: BackfillOutcome, max_attempts: int) -> BackfillWindow | None:
    """The retry policy: a FAILED or EMPTY window is requested again, the same window under the
    same request id, while it has attempts left."""
    window = done.window
    if done.outcome not in RETRIED_OUTCOMES or window.attempt >= max_attempts:
        return None
    return replace(window, attempt=window.attempt + 1)


class Settlement(NamedTuple):
    """What an outcome did to the planner: `stale` when a later attempt of its request is
    already out or queued (the outcome changes nothing), else the retry it queued, if any."""

    stale: bool
    retry: BackfillWindow | None


@dataclass(frozen=True)
class SeriesChange:
    """A series retired (silent past its dataset's retirement age) or back (data again)."""

    iso: str
    dataset: str
    series_key: str
    status: str  # RETIRED | ACTIVE
    last_interval_start_utc: datetime  # the latest interval received before the change
    interval_minutes: int
    at_utc: datetime  # event time of the change: the silence limit, or the interval back


@dataclass
class Series:
    """One series' gap state: a handful of ranges, never one entry per interval.

    `missing` holds the undeclared missing intervals below the high water as sorted, disjoint,
    maximally merged [start, end) ranges on the series' grid; `declared` holds the ranges of
    declared gaps not yet filled, each with its gap id. A hole of three years is one range.
    """

    interval_minutes: int
    first: datetime
    high_water: datetime  # latest interval start received (or declared missing)
    missing: list[tuple[datetime, datetime]] = field(default_factory=list)
    declared: list[tuple[datetime, datetime, str]] = field(default_factory=list)
    last_seen: datetime | None = None  # latest interval start received (high water at first)
    retired: bool = False  # silent for longer than the dataset's retirement age

    def __post_init__(self) -> None:
        if self.last_seen is None:
            self.last_seen = self.high_water

    def silence_limit(self, retire_after: timedelta | None) -> datetime | None:
        """The end of the silence after which the series retires: the last interval received,
        plus the retirement age on the series' grid. Nothing after it is ever a gap."""
        if retire_after is None or self.last_seen is None:
            return None
        return self.last_seen + self.step + -(-retire_after // self.step) * self.step

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    def add_missing(self, start: datetime, end: datetime) -> None:
        """Append [start, end), which lies above every range held (the series' new top)."""
        if start >= end:
            return
        if self.missing and self.missing[-1][1] == start:
            self.missing[-1] = (self.missing[-1][0], end)
        else:
            self.missing.append((start, end))

    def take_missing(self, start: datetime) -> bool:
        """Remove the interval at `start` from the missing ranges; whether it was there."""
        index = _find(self.missing, start, self.step)
        if index is None:
            return False
        lo, hi = self.missing[index]
        self.missing[index : index + 1] = _without(lo, hi, start, self.step)
        return True

    def take_declared(self, start: datetime) -> str | None:
        """Remove the interval at `start` from the declared ranges; the gap id it belonged to."""
        index = _find(self.declared, start, self.step)
        if index is None:
            return None
        lo, hi, gap_id = self.declared[index]
        self.declared[index : index + 1] = [
            (a, b, gap_id) for a, b in _without(lo, hi, start, self.step)
        ]
        return gap_id


def _find(ranges: Sequence[tuple[Any, ...]], start: datetime, step: timedelta) -> int | None:
    """The index of the range holding the grid interval at `start`, if any."""
    index = bisect_right(ranges, start, key=itemgetter(0)) - 1
    if index < 0:
        return None
    lo, hi = ranges[index][0], ranges[index][1]
    if start >= hi or (start - lo) % step:
        return None
    return index


def _without(
    lo: datetime, hi: datetime, start: datetime, step: timedelta
) -> list[tuple[datetime, datetime]]:
    return [(a, b) for a, b in ((lo, start), (start + step, hi)) if a < b]


def _intervals(start: datetime, end: datetime, step: timedelta) -> int:
    return (end - start) // step


def _ts(instant: datetime) -> int:
    return int(instant.timestamp())


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def dump_series(state: Series) -> dict[str, Any]:
    """A JSON-able snapshot of one series (what a Faust table stores): its size is that of
    its ranges, whatever the length of its holes."""
    return {
        "m": state.interval_minutes,
        "f": _ts(state.first),
        "h": _ts(state.high_water),
        "x": [[_ts(a), _ts(b)] for a, b in state.missing],
        "d": [[_ts(a), _ts(b), gap] for a, b, gap in state.declared],
        "l": _ts(state.last_seen or state.high_water),
        "r": state.retired,
    }


def load_series(snapshot: dict[str, Any]) -> Series:
    return Series(
        snapshot["m"],
        _dt(snapshot["f"]),
        _dt(snapshot["h"]),
        [(_dt(a), _dt(b)) for a, b in snapshot["x"]],
        [(_dt(a), _dt(b), gap) for a, b, gap in snapshot["d"]],
        _dt(snapshot.get("l", snapshot["h"])),
        bool(snapshot.get("r", False)),
    )


@dataclass
class GapTracker:
    """All series of one (ISO, dataset).

    Memory is proportional to the series and their open gaps (ranges), never to the length of
    a hole: an arrival or a tick touches a few ranges, whatever the span they cover.
    """

    iso: str
    dataset: str
    lateness: timedelta
    series: dict[str, Series] = field(default_factory=dict)
    watermark: datetime | None = None
    open_gaps: dict[str, Gap] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)  # gap id -> intervals still missing
    retire_after: timedelta | None = None  # silence after which a series retires
    changes: list[SeriesChange] = field(default_factory=list)  # retirements and returns, unsent

    def restore(self, series_key: str, state: Series) -> None:
        """Adopt a series snapshot (after a restart): its open gaps and the watermark follow."""
        self.series[series_key] = state
        end = state.high_water + state.step
        if self.watermark is None or end > self.watermark:
            self.watermark = end
        for lo, hi, gap_id in state.declared:
            count = _intervals(lo, hi, state.step)
            gap = self.open_gaps.get(gap_id)
            if gap is None:
                gap = Gap(
                    gap_id, self.iso, self.dataset, series_key, lo, hi, state.interval_minutes
                )
            else:
                start, stop = min(gap.start_utc, lo), max(gap.end_utc, hi)
                gap = Gap(
                    gap_id, self.iso, self.dataset, series_key, start, stop, gap.interval_minutes
                )
            self.open_gaps[gap_id] = gap
            self.remaining[gap_id] = self.remaining.get(gap_id, 0) + count

    def observe(self, series_key: str, start: datetime, minutes: int) -> list[Gap]:
        """Record an arrival; returns the gaps this arrival completes (all intervals present)."""
        step = timedelta(minutes=minutes)
        state = self.series.get(series_key)
        if state is None:
            self.series[series_key] = Series(minutes, start, start)
        else:
            last_seen = state.last_seen or state.high_water
            limit = state.silence_limit(self.retire_after)
            back = start > last_seen and state.retired
            if back:
                state.retired = False
                self._change(series_key, state, "ACTIVE", last_seen, start)
            elif limit is not None and start > limit:  # retired and back in one step
                self._change(series_key, state, "RETIRED", last_seen, limit)
                self._change(series_key, state, "ACTIVE", last_seen, start)
            if start > state.high_water:
                if not back:  # the time a series spent retired is no gap
                    top = start if limit is None else min(start, limit)
                    state.add_missing(state.high_water + step, top)
                state.high_water = start
            else:
                state.take_missing(start)
            if start > last_seen:
                state.last_seen = start
        end = start + step
        if self.watermark is None or end > self.watermark:
            self.watermark = end
        return self._fill(series_key, start)

    def _fill(self, series_key: str, start: datetime) -> list[Gap]:
        gap_id = self.series[series_key].take_declared(start)
        if gap_id is None or gap_id not in self.remaining:
            return []
        self.remaining[gap_id] -= 1
        if self.remaining[gap_id] > 0:
            return []
        del self.remaining[gap_id]
        return [self.open_gaps.pop(gap_id)]

    def tick(self) -> list[Gap]:
        """Declare the intervals whose lateness has passed; contiguous ones form one gap."""
        if self.watermark is None:
            return []
        deadline = self.watermark - self.lateness
        gaps: list[Gap] = []
        for key, state in self.series.items():
            if state.retired and not state.missing:
                continue  # declared up to its silence limit already: nothing can come due
            step = state.step
            # a series that stopped: its intervals after the high water up to the deadline are
            # missing too, as one range however long the silence
            last = deadline - step  # the latest interval start whose end is within the deadline
            limit = state.silence_limit(self.retire_after)
            if limit is not None and not state.retired and deadline >= limit:
                state.retired = True  # silent past its retirement age: no gap beyond the limit
                self._change(key, state, "RETIRED", state.last_seen or state.high_water, limit)
            if limit is not None:
                last = min(last, limit - step)
            if last > state.high_water:
                top = state.high_water + (last - state.high_water) // step * step
                state.add_missing(state.high_water + step, top + step)
                state.high_water = top
            kept: list[tuple[datetime, datetime]] = []
            for lo, hi in state.missing:
                if lo > last:
                    kept.append((lo, hi))
                    continue
                cut = min(hi, lo + ((last - lo) // step + 1) * step)
                gaps.append(self._declare(key, state, lo, cut))
                if cut < hi:
                    kept.append((cut, hi))
            state.missing = kept
        return gaps

    def _change(
        self, key: str, state: Series, status: str, last_seen: datetime, at: datetime
    ) -> None:
        self.changes.append(
            SeriesChange(self.iso, self.dataset, key, status, last_seen, state.interval_minutes, at)
        )

    def drain_changes(self) -> list[SeriesChange]:
        """Retirements and returns since the last call (the caller announces them)."""
        changes, self.changes = self.changes, []
        return changes

    def _declare(self, key: str, state: Series, start: datetime, end: datetime) -> Gap:
        gap_id = str(
            uuid.uuid5(GAP_NAMESPACE, f"{self.iso}|{self.dataset}|{key}|{start.isoformat()}")
        )
        gap = Gap(gap_id, self.iso, self.dataset, key, start, end, state.interval_minutes)
        insort(state.declared, (start, end, gap_id), key=itemgetter(0))
        self.open_gaps[gap_id] = gap
        self.remaining[gap_id] = _intervals(start, end, state.step)
        return gap

    def abandon(self, gap_ids: Iterable[str]) -> list[Gap]:
        """Stop waiting for gaps the ISO cannot fill (unrecoverable)."""
        abandoned = []
        for gap_id in gap_ids:
            gap = self.open_gaps.pop(gap_id, None)
            if gap is None:
                continue
            self.remaining.pop(gap_id, None)
            state = self.series[gap.series_key]
            state.declared = [r for r in state.declared if r[2] != gap_id]
            abandoned.append(gap)
        return abandoned


def completeness(trackers: Iterable[GapTracker], iso: str, dataset: str) -> float | None:
    """Share of the intervals of (ISO, dataset) received in the day before its watermark:
    expected intervals per series (since its first) against the intervals of its declared
    gaps still missing (a gap partly backfilled counts only what it still misses)."""
    expected = missing = 0
    for tracker in trackers:
        if (tracker.iso, tracker.dataset) != (iso, dataset) or tracker.watermark is None:
            continue
        day_start = tracker.watermark - timedelta(days=1)
        for state in tracker.series.values():
            begin = max(day_start, state.first)
            expected += max(0, int((tracker.watermark - begin) / state.step))
            for lo, hi, _ in state.declared:
                overlap = min(hi, tracker.watermark) - max(lo, day_start)
                if overlap > timedelta(0):
                    missing += int(overlap / state.step)
    return None if expected == 0 else max(0.0, 1 - missing / expected)


@dataclass
class BackfillPlanner:
    """Backfill windows cut lazily from the open gaps, a few at a time per (ISO, dataset).

    A gap of three years stays one pending gap: each call to `due` cuts at most the windows
    that fit under `max_outstanding` for its dataset, newest first (the recent past matters
    most), never reaching further back than the dataset's `reach` (what the ISO still serves)
    behind the newest gap of the dataset, in event time (older parts are returned as beyond
    reach). A request that gets no outcome within `timeout`
    counts as failed. State is bounded by the open gaps, `max_outstanding` per dataset and
    `remember` gap ids; it never grows with the length of a hole or the uptime.
    """

    reach: Mapping[str, timedelta]  # dataset -> how far back its feeds serve
    max_outstanding: int = 4
    max_window: timedelta = timedelta(days=1)
    join_within: timedelta = timedelta(hours=1)
    timeout: timedelta = timedelta(minutes=15)
    max_attempts: int = 3
    remember: int = 100_000
    pending: dict[tuple[str, str], dict[str, Gap]] = field(default_factory=dict)
    outstanding: dict[str, tuple[BackfillWindow, datetime]] = field(default_factory=dict)
    retries: dict[tuple[str, str], list[BackfillWindow]] = field(default_factory=dict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    latest: dict[tuple[str, str], datetime] = field(default_factory=dict)  # newest gap end
    clipped: dict[tuple[str, str], datetime] = field(default_factory=dict)  # floor last clipped

    def add(self, gap: Gap) -> None:
        """A declared gap (announced again after a restart: absorbed once seen)."""
        if gap.gap_id in self.seen:
            return
        self.seen[gap.gap_id] = None
        while len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        key = (gap.iso, gap.dataset)
        self.pending.setdefault(key, {})[gap.gap_id] = gap
        self.clipped.pop(key, None)  # a new gap may reach beyond the reach: clip again
        if key not in self.latest or gap.end_utc > self.latest[key]:
            self.latest[key] = gap.end_utc

    def settle(self, done: BackfillOutcome) -> Settlement:
        """An outcome arrived, of a request sent by this planner or by the worker before a
        restart (the outcome names its window and attempt): a FAILED or EMPTY window is queued
        again while it has attempts left (`next_attempt`). An outcome of an attempt older than
        one already out or queued is stale and changes nothing."""
        request_id, attempt = done.window.request_id, done.window.attempt
        if self._latest_attempt(request_id) > attempt:
            return Settlement(stale=True, retry=None)
        entry = self.outstanding.pop(request_id, None)
        if entry is not None and entry[0].attempt == attempt:
            # the window as sent (an outcome written before gap_ids existed has none)
            done = replace(done, window=entry[0])
        again = next_attempt(done, self.max_attempts)
        if again is not None:
            self._queue(again)
        return Settlement(stale=False, retry=again)

    def restore(self, windows: Iterable[BackfillWindow]) -> list[BackfillWindow]:
        """Queue the retries a restarted worker finds in its table; those already out or queued
        (the same or a later attempt) are skipped. Returns the windows queued."""
        queued = []
        for window in windows:
            if self._latest_attempt(window.request_id) < window.attempt:
                self._queue(window)
                queued.append(window)
        return queued

    def _latest_attempt(self, request_id: str) -> int:
        entry = self.outstanding.get(request_id)
        latest = entry[0].attempt if entry is not None else 0
        for queue in self.retries.values():
            for window in queue:
                if window.request_id == request_id:
                    latest = max(latest, window.attempt)
        return latest

    def _queue(self, window: BackfillWindow) -> None:
        self.retries.setdefault((window.iso, window.dataset), []).append(window)

    def _retry(self, window: BackfillWindow) -> BackfillWindow | None:
        again = next_attempt(BackfillOutcome(window, "FAILED"), self.max_attempts)
        if again is not None:
            self._queue(again)
        return again

    def due(self, now: datetime) -> tuple[list[BackfillWindow], list[Gap]]:
        """The windows to request now, and the gaps (or their parts) beyond the ISO's reach."""
        for request_id, (window, sent) in list(self.outstanding.items()):
            if now - sent >= self.timeout:
                del self.outstanding[request_id]
                self._retry(window)
        busy: dict[tuple[str, str], int] = {}
        for window, _ in self.outstanding.values():
            busy[(window.iso, window.dataset)] = busy.get((window.iso, window.dataset), 0) + 1
        windows: list[BackfillWindow] = []
        beyond: list[Gap] = []
        for key in sorted(set(self.pending) | set(self.retries)):
            retries = self.retries.get(key, [])
            gaps = self.pending.get(key, {})
            if key[1] in self.reach and key in self.latest:
                # in event time, like the trackers: a replay of old data reaches back as
                # far from its own newest gap as a live run does from today's
                floor = self.latest[key] - self.reach[key[1]]
                if self.clipped.get(key) != floor:  # else nothing changed since the last clip
                    beyond += self._clip(gaps, floor)
                    self.clipped[key] = floor
            while busy.get(key, 0) < self.max_outstanding and (retries or gaps):
                window = retries.pop(0) if retries else self._cut(key, gaps)
                self.outstanding[window.request_id] = (window, now)
                windows.append(window)
                busy[key] = busy.get(key, 0) + 1
            if not retries:
                self.retries.pop(key, None)
            if not gaps:
                self.pending.pop(key, None)
        return windows, beyond

    @staticmethod
    def _clip(gaps: dict[str, Gap], floor: datetime) -> list[Gap]:
        beyond = []
        for gap_id, gap in list(gaps.items()):
            if gap.end_utc <= floor:
                beyond.append(gaps.pop(gap_id))
            elif gap.start_utc < floor:
                step = timedelta(minutes=gap.interval_minutes)
                start = gap.start_utc + -(-(floor - gap.start_utc) // step) * step
                beyond.append(replace(gap, end_utc=start))
                gaps[gap_id] = replace(gap, start_utc=start)
        return beyond

    def _cut(self, key: tuple[str, str], gaps: dict[str, Gap]) -> BackfillWindow:
        """The newest window of the newest group of gaps less than `join_within` apart; the
        gaps it covers are trimmed or dropped."""
        ordered = sorted(gaps.values(), key=lambda g: g.end_utc, reverse=True)
        end = ordered[0].end_utc
        low = ordered[0].start_utc
        for gap in ordered[1:]:
            if gap.end_utc + self.join_within >= low:
                low = min(low, gap.start_utc)
        start = max(low, end - self.max_window)
        ids = []
        for gap in ordered:
            if gap.start_utc < end and gap.end_utc > start:
                ids.append(gap.gap_id)
                if gap.start_utc >= start:
                    del gaps[gap.gap_id]
                else:
                    gaps[gap.gap_id] = replace(gap, end_utc=start)
        iso, dataset = key
        identity = f"{iso}|{dataset}|{start.isoformat()}|{end.isoformat()}|1"
        request_id = str(uuid.uuid5(REQUEST_NAMESPACE, identity))
        return BackfillWindow(request_id, iso, dataset, start, end, tuple(sorted(ids)), 1)
