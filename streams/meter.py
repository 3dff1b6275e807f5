"""The usage meter's state and step, pure (no I/O): each organisation's requests counted into
windows of `window_s` seconds, and the windows closed, as UsageWindowClosed records, once their
end plus the lateness has passed. `streams.meter_app` runs it on the streams runtime.

Per organisation the state holds
- its open windows, start -> counts (requests, rows, bytes, dry runs);
- the offset of the last record counted: one organisation's records all sit on one partition of
  `usage.requests` (keyed by org_id), in order, and the runtime delivers at least once, so a
  record at or below that offset was counted before and is skipped. A redelivery never counts a
  request twice, and the state needs no per-request memory;
- the end of the latest window closed, and the windows closed whose records are not yet known to
  be on the broker (`unsent`, the outbox: see `streams.meter_app`).
Its size follows the open windows, never the log: a closed window leaves the state.

Which window a request counts in: its own (`occurred_at_utc` floored to `window_s` since the
epoch, UTC) unless that window was closed already; a late request counts in the window that
starts where the latest closed window ended, the earliest one that can still be open (opened by
it where need be). So every request counts exactly once, in a window whose id was not emitted
yet, and a window's record never changes once emitted. With requests arriving in time, that is
the window open when the request arrived.

A dry run (`dry_run` true, a cost estimate that read nothing) counts in `dry_runs` only:
`requests`, `rows` and `bytes` are those of requests that read data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import envelope

REQUEST_SCHEMA = "energy.optibid.usage.RequestServed"
WINDOW_SCHEMA = "energy.optibid.usage.UsageWindowClosed"
SOURCE = "worker:meter"
# a window's event id is a UUIDv5 of (org_id, window start) in this namespace: a window
# emitted again (after a restart) carries the same id, which billing uses to count it once
WINDOW_NAMESPACE = uuid.UUID("9fd75002-773c-49bd-b325-e70b9deec3f4")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FORMAT = 1  # of the JSON that `dump` writes


@dataclass(frozen=True)
class Counts:
    """What one organisation was served in one window."""

    requests: int = 0
    rows: int = 0
    bytes: int = 0
    dry_runs: int = 0

    def plus(self, request: Mapping[str, Any]) -> Counts:
        """These counts with one RequestServed more."""
        if request["dry_run"]:
            return replace(self, dry_runs=self.dry_runs + 1)
        return Counts(
            self.requests + 1,
            self.rows + int(request["rows"]),
            self.bytes + int(request["bytes"]),
            self.dry_runs,
        )


@dataclass(frozen=True)
class ClosedWindow:
    """A window closed, as its UsageWindowClosed record says it (kept until it is sent, so a
    record sent again is the very same)."""

    start_utc: datetime
    end_utc: datetime
    counts: Counts
    recorded_at_utc: datetime


@dataclass(frozen=True)
class OrgMeter:
    """One organisation's meter (see the module's docstring)."""

    org_id: str
    windows: Mapping[datetime, Counts] = field(default_factory=dict)  # open, by start
    offset: int = -1  # of the last record counted; -1: none yet
    closed_until_utc: datetime | None = None  # end of the latest window closed
    unsent: tuple[ClosedWindow, ...] = ()  # closed, not yet known to be on the broker

    def counted(self, offset: int) -> bool:
        """Whether the record at `offset` (of this organisation's partition) was counted."""
        return offset <= self.offset


def window_start(at: datetime, window_s: int) -> datetime:
    """Start of the window holding `at`: floored to `window_s` seconds since the epoch, UTC."""
    width = timedelta(seconds=window_s)
    return EPOCH + (at - EPOCH) // width * width


def target_window(state: OrgMeter, at: datetime, window_s: int) -> datetime:
    """Start of the window a request of time `at` counts in: its own, or where the latest
    closed window ended when its own was closed already (a late request)."""
    own = window_start(at, window_s)
    if state.closed_until_utc is not None and own < state.closed_until_utc:
        return state.closed_until_utc
    return own


def add(state: OrgMeter, request: Mapping[str, Any], offset: int, window_s: int) -> OrgMeter:
    """`state` with one RequestServed (a decoded record of `state`'s organisation, at `offset`
    of its partition) counted; unchanged when that offset was counted before."""
    if request["org_id"] != state.org_id:
        raise ValueError(
            f"a request of organisation {request['org_id']!r} on the meter of {state.org_id!r}"
        )
    if state.counted(offset):
        return state
    start = target_window(state, request["occurred_at_utc"], window_s)
    counts = state.windows.get(start, Counts()).plus(request)
    return replace(state, windows={**state.windows, start: counts}, offset=offset)


def next_close(state: OrgMeter, window_s: int, lateness_s: int) -> datetime | None:
    """When `close` will close a window of `state` next (the earliest open window's end plus
    the lateness); None without open windows."""
    if not state.windows:
        return None
    return min(state.windows) + timedelta(seconds=window_s + lateness_s)


def close(
    state: OrgMeter,
    now: datetime,
    window_s: int,
    lateness_s: int,
    recorded_at: datetime | None = None,
) -> tuple[list[dict[str, Any]], OrgMeter]:
    """The windows of `state` whose end plus the lateness is at or before `now`, as
    UsageWindowClosed records in time order, and the state without them: they leave the open
    windows, move the end of the latest closed window on, and wait in `unsent` until `sent`."""
    width, lateness = timedelta(seconds=window_s), timedelta(seconds=lateness_s)
    due = sorted(start for start in state.windows if start + width + lateness <= now)
    if not due:
        return [], state
    stamp = recorded_at or now
    closed = [ClosedWindow(s, s + width, state.windows[s], stamp) for s in due]
    ends = [c.end_utc for c in closed]
    if state.closed_until_utc is not None:
        ends.append(state.closed_until_utc)
    gone = set(due)
    remaining = {s: c for s, c in state.windows.items() if s not in gone}
    after = replace(
        state,
        windows=remaining,
        closed_until_utc=max(ends),
        unsent=(*state.unsent, *closed),
    )
    return [window_record(state.org_id, window) for window in closed], after


def sent(state: OrgMeter) -> OrgMeter:
    """`state` once the records of its `unsent` windows are on the broker."""
    return replace(state, unsent=()) if state.unsent else state


def window_id(org_id: str, start_utc: datetime) -> str:
    return str(uuid.uuid5(WINDOW_NAMESPACE, f"{org_id}|{start_utc.isoformat()}"))


def window_record(org_id: str, window: ClosedWindow) -> dict[str, Any]:
    """The UsageWindowClosed record of one closed window of an organisation."""
    counts = window.counts
    return {
        **envelope(
            event_id=window_id(org_id, window.start_utc),
            occurred_at_utc=window.end_utc,
            recorded_at_utc=window.recorded_at_utc,
            source=SOURCE,
        ),
        "org_id": org_id,
        "window_start_utc": window.start_utc,
        "window_end_utc": window.end_utc,
        "requests": counts.requests,
        "rows": counts.rows,
        "bytes": counts.bytes,
        "dry_runs": counts.dry_runs,
    }


# --- the table's JSON -------------------------------------------------------------------------


def _counts(counts: Counts) -> dict[str, int]:
    return {
        "requests": counts.requests,
        "rows": counts.rows,
        "bytes": counts.bytes,
        "dry_runs": counts.dry_runs,
    }


def _counts_of(value: Mapping[str, Any]) -> Counts:
    return Counts(value["requests"], value["rows"], value["bytes"], value["dry_runs"])


def dump(state: OrgMeter) -> dict[str, Any]:
    """`state` as JSON-able values (datetimes as ISO-8601 text); `load(dump(s)) == s`."""
    return {
        "format": FORMAT,
        "org_id": state.org_id,
        "offset": state.offset,
        "closed_until_utc": (
            state.closed_until_utc.isoformat() if state.closed_until_utc is not None else None
        ),
        "windows": [
            {"start_utc": start.isoformat(), **_counts(counts)}
            for start, counts in sorted(state.windows.items())
        ],
        "unsent": [
            {
                "start_utc": w.start_utc.isoformat(),
                "end_utc": w.end_utc.isoformat(),
                "recorded_at_utc": w.recorded_at_utc.isoformat(),
                **_counts(w.counts),
            }
            for w in state.unsent
        ],
    }


def load(value: Mapping[str, Any]) -> OrgMeter:
    """The state `dump` wrote."""
    if value.get("format") != FORMAT:
        raise ValueError(f"meter state of format {value.get('format')!r}, not {FORMAT}")
    closed_until = value["closed_until_utc"]
    return OrgMeter(
        org_id=value["org_id"],
        windows={datetime.fromisoformat(w["start_utc"]): _counts_of(w) for w in value["windows"]},
        offset=int(value["offset"]),
        closed_until_utc=datetime.fromisoformat(closed_until) if closed_until else None,
        unsent=tuple(
            ClosedWindow(
                datetime.fromisoformat(w["start_utc"]),
                datetime.fromisoformat(w["end_utc"]),
                _counts_of(w),
                datetime.fromisoformat(w["recorded_at_utc"]),
            )
            for w in value["unsent"]
        ),
    )


# --- when windows close -----------------------------------------------------------------------

STREAM_TIME = "stream_time"
WALL_CLOCK = "wall_clock"


class PartitionClock:
    """The time a partition's windows close by.

    A partition's stream time is the latest `occurred_at_utc` among its records. While records
    keep arriving, windows close by it alone, so a backlog (a restart, a replay) closes them in
    the order of the requests' own times, as they were live. A partition that brought no record
    for `idle_after_s` (of the monotonic clock the caller passes) is idle: its windows close by
    the wall clock too, so an organisation that stopped sending still gets its last window
    closed. A partition first seen counts as having just had a record (after a start, the
    backlog gets `idle_after_s` to arrive before the wall clock applies).
    """

    def __init__(self, idle_after_s: float) -> None:
        self.idle_after_s = idle_after_s
        self.stream_time: dict[int, datetime] = {}
        self.arrived_s: dict[int, float] = {}

    def observe(self, partition: int, occurred_at: datetime, arrived_s: float) -> None:
        """A record of `partition`, of time `occurred_at`, arrived at `arrived_s`."""
        current = self.stream_time.get(partition)
        if current is None or occurred_at > current:
            self.stream_time[partition] = occurred_at
        self.arrived_s[partition] = arrived_s

    def now(self, partition: int, wall: datetime, at_s: float) -> tuple[datetime | None, str]:
        """(the time `partition`'s windows close by, which clock gave it); None while the
        partition brings records but none was seen yet."""
        stream = self.stream_time.get(partition)
        arrived = self.arrived_s.setdefault(partition, at_s)
        if at_s - arrived < self.idle_after_s:
            return stream, STREAM_TIME
        if stream is not None and stream > wall:
            return stream, STREAM_TIME
        return wall, WALL_CLOCK

    def keep(self, partitions: Iterable[int]) -> None:
        """Forget every partition but `partitions` (those assigned after a rebalance)."""
        kept = set(partitions)
        for known in (self.stream_time, self.arrived_s):
            for partition in [p for p in known if p not in kept]:
                del known[partition]
