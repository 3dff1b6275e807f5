"""Backfill windows cut lazily from open gaps: a few at a time, newest first, within reach."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from streams.gaps import (
    BackfillOutcome,
    BackfillPlanner,
    BackfillWindow,
    Gap,
    Settlement,
    next_attempt,
)

DAY = timedelta(days=1)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def gap(gap_id: str, start: datetime, end: datetime, dataset: str = "lmp_rt_5min") -> Gap:
    return Gap(gap_id, "PJM", dataset, f"PJM|RT_5MIN|{gap_id}", start, end, 5)


def test_a_three_year_gap_is_cut_a_few_windows_at_a_time_within_reach() -> None:
    planner = BackfillPlanner({"lmp_rt_5min": timedelta(days=186)}, max_outstanding=3)
    planner.add(gap("old", NOW - 3 * 365 * DAY, NOW))
    windows, beyond = planner.due(NOW)
    # newest first, one day each, three outstanding at most
    assert [(w.start_utc, w.end_utc) for w in windows] == [
        (NOW - DAY, NOW),
        (NOW - 2 * DAY, NOW - DAY),
        (NOW - 3 * DAY, NOW - 2 * DAY),
    ]
    assert all(w.gap_ids == ("old",) for w in windows)
    # the part older than the feed serves is given up at once, as one range
    [lost] = beyond
    assert (lost.start_utc, lost.end_utc) == (NOW - 3 * 365 * DAY, NOW - 186 * DAY)
    assert planner.due(NOW) == ([], [])  # nothing more while three are outstanding
    assert planner.settle(BackfillOutcome(windows[0], "FILLED")).retry is None
    [fourth], _ = planner.due(NOW)
    assert (fourth.start_utc, fourth.end_utc) == (NOW - 4 * DAY, NOW - 3 * DAY)
    # what is held: one pending gap and three outstanding requests, whatever the hole's length
    assert len(planner.outstanding) == 3
    assert [len(g) for g in planner.pending.values()] == [1]


def test_a_failed_window_is_retried_until_its_attempts_run_out() -> None:
    planner = BackfillPlanner({}, max_outstanding=1, max_attempts=2)
    planner.add(gap("g", NOW - timedelta(hours=2), NOW - timedelta(hours=1)))
    [first], _ = planner.due(NOW)
    retry = planner.settle(BackfillOutcome(first, "FAILED")).retry
    assert retry is not None
    assert (retry.request_id, retry.attempt) == (first.request_id, 2)
    assert planner.due(NOW)[0] == [retry]
    assert planner.settle(BackfillOutcome(retry, "EMPTY")).retry is None  # no attempt left
    assert planner.due(NOW) == ([], [])


def test_a_request_without_outcome_times_out_and_is_sent_again() -> None:
    planner = BackfillPlanner({}, max_outstanding=1, timeout=timedelta(minutes=15))
    planner.add(gap("g", NOW - timedelta(hours=2), NOW - timedelta(hours=1)))
    [first], _ = planner.due(NOW)
    assert planner.due(NOW + timedelta(minutes=5)) == ([], [])
    [again], _ = planner.due(NOW + timedelta(minutes=15))
    assert (again.request_id, again.attempt) == (first.request_id, 2)


def test_gaps_of_many_series_close_together_share_one_window_and_ids_are_stable() -> None:
    planner = BackfillPlanner({})
    hour = timedelta(hours=1)
    planner.add(gap("a", NOW - 3 * hour, NOW - 2 * hour))
    planner.add(gap("b", NOW - 2 * hour - timedelta(minutes=30), NOW - hour))
    planner.add(gap("a", NOW - 3 * hour, NOW - 2 * hour))  # announced again: absorbed
    [window], _ = planner.due(NOW)
    assert (window.start_utc, window.end_utc, window.gap_ids) == (
        NOW - 3 * hour,
        NOW - hour,
        ("a", "b"),
    )
    other = BackfillPlanner({})
    other.add(gap("b", NOW - 2 * hour - timedelta(minutes=30), NOW - hour))
    other.add(gap("a", NOW - 3 * hour, NOW - 2 * hour))
    assert other.due(NOW)[0][0].request_id == window.request_id


def test_remembered_gap_ids_are_bounded() -> None:
    planner = BackfillPlanner({}, remember=10)
    for i in range(100):
        planner.add(gap(f"g{i}", NOW - DAY, NOW))
    assert len(planner.seen) == 10


def outcome(window: BackfillWindow, result: str) -> BackfillOutcome:
    return BackfillOutcome(window, result)


def test_the_retry_policy_is_a_function_of_the_outcome_alone() -> None:
    window = BackfillWindow("r", "PJM", "lmp_rt_5min", NOW - DAY, NOW, ("g",), 1)
    assert next_attempt(outcome(window, "FAILED"), 3) == replace(window, attempt=2)
    assert next_attempt(outcome(window, "EMPTY"), 3) == replace(window, attempt=2)
    assert next_attempt(outcome(window, "FILLED"), 3) is None
    assert next_attempt(outcome(window, "UNRECOVERABLE"), 3) is None
    assert next_attempt(outcome(replace(window, attempt=3), "FAILED"), 3) is None


def test_an_outcome_from_before_the_fields_existed_reads_as_a_first_attempt() -> None:
    done = {
        "request_id": "r",
        "iso": "PJM",
        "dataset": "load",
        "window_start_utc": NOW - DAY,
        "window_end_utc": NOW,
        "outcome": "FAILED",
    }
    read = BackfillOutcome.of(done)
    assert (read.window.attempt, read.window.gap_ids, read.outcome) == (1, (), "FAILED")


def test_a_planner_after_a_restart_retries_an_outcome_it_never_sent() -> None:
    planner = BackfillPlanner({}, max_attempts=3)
    sent_before = BackfillWindow("r", "PJM", "lmp_rt_5min", NOW - DAY, NOW, ("g",), 1)
    settled = planner.settle(outcome(sent_before, "FAILED"))
    assert settled == Settlement(stale=False, retry=replace(sent_before, attempt=2))
    assert planner.due(NOW)[0] == [replace(sent_before, attempt=2)]
    # a late copy of the first attempt's outcome changes nothing while the second is out
    assert planner.settle(outcome(sent_before, "FAILED")) == Settlement(stale=True, retry=None)
    assert planner.due(NOW) == ([], [])


def test_restored_retries_are_queued_once() -> None:
    planner = BackfillPlanner({})
    window = BackfillWindow("r", "PJM", "lmp_rt_5min", NOW - DAY, NOW, ("g",), 2)
    assert planner.restore([window]) == [window]
    assert planner.restore([window, replace(window, attempt=1)]) == []  # already queued
    assert planner.due(NOW)[0] == [window]
    assert planner.restore([window]) == []  # already out
