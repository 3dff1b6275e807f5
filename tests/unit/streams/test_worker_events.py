"""The worker's pure event builders and the completeness share behind freshness."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from streams.gaps import BackfillWindow, GapTracker, completeness
from streams.processor import backfill_request_event, freshness_event

T0 = datetime(2024, 11, 3, 4, tzinfo=UTC)  # PJM's fall-back day: 25 local hours, 300 intervals
FIVE = timedelta(minutes=5)


def test_completeness_counts_the_open_gaps_of_the_last_day_against_every_series() -> None:
    tracker = GapTracker("PJM", "lmp_rt_5min", timedelta(0))
    for i in range(300):
        if not 100 <= i < 112:  # one hour missing in A
            tracker.observe("A", T0 + i * FIVE, 5)
        tracker.observe("B", T0 + i * FIVE, 5)
    [gap] = tracker.tick()
    assert gap.missing_intervals == 12
    # the day before the watermark (T0 + 25 h): 288 intervals a series, 12 of A's missing
    assert completeness([tracker], "PJM", "lmp_rt_5min") == 1 - 12 / 576
    assert completeness([tracker], "PJM", "load") is None  # nothing seen: no share
    tracker.observe("A", T0 + 100 * FIVE, 5)  # a backfilled interval counts again
    assert completeness([tracker], "PJM", "lmp_rt_5min") == 1 - 11 / 576


def test_a_retried_backfill_request_keeps_its_request_id_and_names_its_attempt() -> None:
    window = BackfillWindow("req-1", "PJM", "lmp_rt_5min", T0, T0 + timedelta(hours=1), ("g1",), 2)
    event = backfill_request_event(window, T0)
    assert (event["event_id"], event["request_id"], event["attempt"]) == ("req-1#2", "req-1", 2)
    assert event["reason"] == "retry after attempt 1"
    first = backfill_request_event(replace(window, attempt=1), T0)
    assert (first["event_id"], first["reason"]) == ("req-1", "gap")


def test_freshness_takes_the_run_and_the_share() -> None:
    run = {
        "run_id": "r1", "iso": "PJM", "dataset": "load", "finished_at_utc": T0,
        "last_interval_end_utc": T0 - FIVE, "publish_latency_seconds": 12.5,
        "rows_published": 10, "error_count": 0,
    }  # fmt: skip
    event = freshness_event(run, 0.75, T0 + FIVE)
    assert (event["event_id"], event["last_run_id"], event["source"]) == (
        "r1",
        "r1",
        "worker:freshness",
    )
    assert (event["last_day_completeness_share"], event["recorded_at_utc"]) == (0.75, T0 + FIVE)
