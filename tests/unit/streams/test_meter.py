"""The usage meter's step: requests counted into the window of their time, windows closed after
their lateness, every request counted exactly once however often it is handed over, a late
request in a later window, dry runs apart, and a state the size of the open windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.meter import (
    STREAM_TIME,
    WALL_CLOCK,
    ClosedWindow,
    Counts,
    OrgMeter,
    PartitionClock,
    add,
    close,
    dump,
    load,
    next_close,
    sent,
    window_id,
    window_start,
)

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a window start (on the minute)
WINDOW_S, LATENESS_S = 60, 10


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(seconds: float, rows: int = 10, size: int = 100, **fields: Any) -> dict[str, Any]:
    """A decoded RequestServed of org o1 served `seconds` after T0 (the fields the meter
    reads; the others as the API sends them)."""
    return {
        "event_id": f"r-{seconds}", "occurred_at_utc": at(seconds),
        "recorded_at_utc": at(seconds), "source": "api", "schema_version": 1, "org_id": "o1",
        "principal_kind": "api_key", "principal_id": "k1", "method": "GET",
        "route": "latest_prices", "dataset": "lmp", "status": 200, "rows": rows,
        "bytes": size, "latency_seconds": 0.01, "tier": "starter", "dry_run": False, **fields,
    }  # fmt: skip


def count_all(records: list[tuple[int, dict[str, Any]]]) -> OrgMeter:
    state = OrgMeter("o1")
    for offset, record in records:
        state = add(state, record, offset, WINDOW_S)
    return state


def test_a_request_counts_in_the_window_of_its_time() -> None:
    state = count_all([
        (0, request(0)),  # the window's first instant
        (1, request(59.999999, rows=5)),  # its last
        (2, request(60, rows=7)),  # the next window's first
        (3, request(-0.000001, rows=3)),  # the previous window's last
    ])  # fmt: skip
    assert state.windows == {
        at(-60): Counts(1, 3, 100, 0),
        at(0): Counts(2, 15, 200, 0),
        at(60): Counts(1, 7, 100, 0),
    }
    assert state.offset == 3
    assert window_start(datetime(1970, 1, 1, 0, 1, 59, tzinfo=UTC), 60) == datetime(
        1970, 1, 1, 0, 1, tzinfo=UTC
    )
    assert window_start(at(3599), 3600) == T0  # 09:00 is on the hour too


def test_a_window_closes_once_its_end_plus_the_lateness_has_passed() -> None:
    state = count_all([(0, request(1)), (1, request(61))])
    assert next_close(state, WINDOW_S, LATENESS_S) == at(70)
    early, same = close(state, at(70) - timedelta(microseconds=1), WINDOW_S, LATENESS_S)
    assert early == []
    assert same is state

    records, after = close(state, at(70), WINDOW_S, LATENESS_S, recorded_at=at(71))
    assert records == [
        {
            "event_id": window_id("o1", T0), "occurred_at_utc": at(60), "recorded_at_utc": at(71),
            "source": "worker:meter", "schema_version": 1, "org_id": "o1",
            "window_start_utc": T0, "window_end_utc": at(60), "requests": 1, "rows": 10,
            "bytes": 100, "dry_runs": 0,
        }
    ]  # fmt: skip
    assert after.windows == {at(60): Counts(1, 10, 100, 0)}  # the next one stays open
    assert after.closed_until_utc == at(60)
    assert after.unsent == (ClosedWindow(T0, at(60), Counts(1, 10, 100, 0), at(71)),)
    assert sent(after).unsent == ()  # the outbox empties once the record is on the broker
    assert next_close(after, WINDOW_S, LATENESS_S) == at(130)

    # much later: every window due closes at once, in time order
    records, _ = close(count_all([(0, request(1)), (1, request(200)), (2, request(61))]),
                       at(10_000), WINDOW_S, LATENESS_S)  # fmt: skip
    assert [r["window_start_utc"] for r in records] == [T0, at(60), at(180)]


def test_a_window_id_is_its_organisation_and_start() -> None:
    assert window_id("o1", T0) == window_id("o1", T0)
    assert window_id("o1", T0) != window_id("o2", T0)
    assert window_id("o1", T0) != window_id("o1", at(60))


def test_a_request_handed_over_again_is_not_counted_again() -> None:
    records = [(10, request(1)), (11, request(2)), (12, request(3))]
    once = count_all(records)
    # at least once: after a crash the records from the last commit (11) come again
    again = count_all([*records, (11, request(2)), (12, request(3))])
    assert again == once
    assert once.windows == {T0: Counts(3, 30, 300, 0)}
    assert add(once, request(3), 12, WINDOW_S) is once  # counted before: the same state
    assert once.counted(12)
    assert not once.counted(13)


def test_a_late_request_counts_in_the_window_after_the_latest_closed() -> None:
    state = count_all([(0, request(1)), (1, request(65))])
    _, state = close(state, at(70), WINDOW_S, LATENESS_S)  # T0's window is closed
    # served in T0's window, arrived after it closed: counted in the one after, still open
    state = add(state, request(30, rows=4), 2, WINDOW_S)
    assert state.windows == {at(60): Counts(2, 14, 200, 0)}

    _, state = close(state, at(200), WINDOW_S, LATENESS_S)  # every window is closed
    # later than every closed window: a window opens where the latest closed one ended
    state = add(state, request(10, rows=2), 3, WINDOW_S)
    assert state.windows == {at(120): Counts(1, 2, 100, 0)}
    # a request in time for its own window (after the closed ones) counts there
    state = add(state, request(250, rows=1), 4, WINDOW_S)
    assert state.windows == {at(120): Counts(1, 2, 100, 0), at(240): Counts(1, 1, 100, 0)}


def test_a_dry_run_counts_as_a_dry_run_only() -> None:
    state = count_all([
        (0, request(1, rows=10, size=100)),
        (1, request(2, rows=0, size=40, dry_run=True)),  # a cost estimate: no rows read
        (2, request(3, rows=0, size=40, dry_run=True)),
    ])  # fmt: skip
    assert state.windows == {T0: Counts(requests=1, rows=10, bytes=100, dry_runs=2)}


def test_the_state_keeps_only_the_open_windows() -> None:
    """10,000 requests over 1,000 windows, windows closed by stream time as they go: the state
    holds the open ones only, whatever the log's length."""
    state, closed, largest = OrgMeter("o1"), 0, 0
    for n in range(10_000):
        state = add(state, request(n * 6, rows=1), n, WINDOW_S)
        records, state = close(state, at(n * 6), WINDOW_S, LATENESS_S)
        state = sent(state)
        closed += len(records)
        largest = max(largest, len(json.dumps(dump(state))))
    assert closed == 999  # all but the last (the one before it closed at its end + 10 s)
    assert sorted(state.windows) == [at(59_940)]
    assert state.unsent == ()
    assert largest < 1_000  # bytes of the table's value, at any point


def test_an_idle_organisation_gets_its_last_window_closed_by_the_wall_clock() -> None:
    clock = PartitionClock(idle_after_s=10)
    state = count_all([(0, request(1)), (1, request(30))])
    clock.observe(0, at(30), arrived_s=100.0)
    # records keep coming (the last one 5 s ago): the stream time alone, not past the window
    assert clock.now(0, at(600), at_s=105.0) == (at(30), STREAM_TIME)
    assert close(state, at(30), WINDOW_S, LATENESS_S)[0] == []
    # nothing for 10 s: the partition is idle, the wall clock closes the window
    assert clock.now(0, at(600), at_s=110.0) == (at(600), WALL_CLOCK)
    records, state = close(state, at(600), WINDOW_S, LATENESS_S)
    assert [(r["window_start_utc"], r["requests"]) for r in records] == [(T0, 2)]
    assert state.windows == {}


def test_a_partition_first_seen_waits_for_its_backlog_before_the_wall_clock() -> None:
    clock = PartitionClock(idle_after_s=10)
    assert clock.now(2, at(600), at_s=50.0) == (None, STREAM_TIME)  # just started
    assert clock.now(2, at(600), at_s=59.0) == (None, STREAM_TIME)
    assert clock.now(2, at(600), at_s=60.0) == (at(600), WALL_CLOCK)  # no backlog came
    clock.observe(2, at(900), arrived_s=61.0)  # a clock ahead of ours: stream time it is
    assert clock.now(2, at(600), at_s=80.0) == (at(900), STREAM_TIME)
    clock.keep([0, 1])  # partition 2 went to another worker
    assert clock.stream_time == {}
    assert clock.arrived_s == {}


def test_the_table_value_round_trips() -> None:
    state = count_all([(0, request(1)), (1, request(65)), (2, request(70, dry_run=True))])
    _, state = close(state, at(75), WINDOW_S, LATENESS_S, recorded_at=at(76))
    assert len(state.unsent) == 1  # T0's window, closed and not yet sent
    assert list(state.windows) == [at(60)]
    assert state.closed_until_utc == at(60)
    assert load(json.loads(json.dumps(dump(state)))) == state
    assert load(dump(OrgMeter("o2"))) == OrgMeter("o2")


# --- exactly once, whatever the order, the redeliveries and the closing --------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[float], list[tuple[str, int]]]:
    """Request times (seconds after T0, out of order within a few windows) and what happens:
    records delivered from an offset on (a redelivery starts before what was counted) and
    closes at some time."""
    times = draw(st.lists(st.floats(0, 600), min_size=1, max_size=60))
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("deliver"), st.integers(0, len(times) - 1)),
                st.tuples(st.just("close"), st.integers(0, 900)),
            ),
            max_size=20,
        )
    )
    return times, [*steps, ("deliver", 0)]  # in the end every record was delivered


@given(deliveries())
def test_every_request_is_counted_exactly_once(
    case: tuple[list[float], list[tuple[str, int]]],
) -> None:
    times, steps = case
    records = [(offset, request(t, rows=offset + 1)) for offset, t in enumerate(times)]
    state, emitted = OrgMeter("o1"), []
    for kind, value in steps:
        if kind == "deliver":
            # from an offset at or before the first one not counted (where the group's commit
            # was) to the end: again for those counted since
            for offset, record in records[min(value, state.offset + 1) :]:
                state = add(state, record, offset, WINDOW_S)
        else:
            closed, state = close(state, at(value), WINDOW_S, LATENESS_S)
            emitted += closed
            state = sent(state)
    closed, state = close(state, at(10_000), WINDOW_S, LATENESS_S)
    emitted += closed
    # each window emitted once, and the windows hold every request once
    assert len({r["event_id"] for r in emitted}) == len(emitted)
    assert sum(r["requests"] for r in emitted) == len(times)
    assert sum(r["rows"] for r in emitted) == sum(offset + 1 for offset, _ in records)
    # a request counts in its own window or a later one, never an earlier one
    assert min(r["window_start_utc"] for r in emitted) >= window_start(at(min(times)), WINDOW_S)
