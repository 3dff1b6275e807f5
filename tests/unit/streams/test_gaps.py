"""Gap arithmetic in event time, across DST days, and coalescing into backfill windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from schemas.timeutil import expected_intervals
from streams.gaps import BackfillPlanner, BackfillWindow, Gap, GapTracker, dump_series, load_series

FIVE = timedelta(minutes=5)


def coalesce(
    gaps: list[Gap],
    max_window: timedelta = timedelta(days=1),
    join_within: timedelta = timedelta(hours=1),
) -> list[BackfillWindow]:
    """Every window the planner cuts from `gaps`, oldest first (no limit on outstanding ones)."""
    planner = BackfillPlanner(
        {}, max_outstanding=10_000, max_window=max_window, join_within=join_within
    )
    for gap in gaps:
        planner.add(gap)
    windows, _ = planner.due(datetime(2030, 1, 1, tzinfo=UTC))
    return sorted(windows, key=lambda w: w.start_utc)


def feed(tracker: GapTracker, key: str, starts: list[datetime], minutes: int = 5) -> None:
    for start in starts:
        tracker.observe(key, start, minutes)


def test_a_complete_fall_back_day_has_no_gap() -> None:
    # 300 five-minute intervals on the 25-hour day: none may be flagged
    day = expected_intervals("PJM", date(2024, 11, 3), 5)
    tracker = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(minutes=30))
    feed(tracker, "PJM|RT_5MIN|1", day)
    assert len(day) == 300
    assert tracker.tick() == []


def test_a_hole_in_the_repeated_hour_is_found_after_the_lateness() -> None:
    day = expected_intervals("PJM", date(2024, 11, 3), 5)
    repeated_hour = [s for s in day if s.hour == 6][:3]  # 01:00-01:15 EST, the second 1 AM
    arrived = [s for s in day if s not in repeated_hour]
    tracker = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(minutes=30))
    feed(tracker, "PJM|RT_5MIN|1", arrived[: arrived.index(repeated_hour[-1] + FIVE) + 3])
    assert tracker.tick() == []  # only 15 minutes past: still within the lateness
    feed(tracker, "PJM|RT_5MIN|1", arrived[arrived.index(repeated_hour[-1] + FIVE) + 3 :])
    [gap] = tracker.tick()
    assert (gap.start_utc, gap.end_utc) == (repeated_hour[0], repeated_hour[-1] + FIVE)
    assert gap.missing_intervals == 3
    assert tracker.tick() == []  # declared once


def test_a_series_that_stops_is_missing_against_the_others() -> None:
    start = datetime(2024, 3, 10, 5, tzinfo=UTC)  # spring-forward day
    tracker = GapTracker("ERCOT", "lmp_rt_5min", lateness=timedelta(minutes=10))
    hours = [start + i * FIVE for i in range(24)]
    feed(tracker, "A", hours)
    feed(tracker, "B", hours[:12])  # B stops after an hour
    gaps = tracker.tick()
    assert [(g.series_key, g.start_utc) for g in gaps] == [("B", hours[12])]
    assert gaps[0].end_utc == hours[-1] + FIVE - timedelta(minutes=10)


def test_late_data_closes_its_gap() -> None:
    tracker = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(0))
    t = [datetime(2024, 6, 1, tzinfo=UTC) + i * FIVE for i in range(6)]
    feed(tracker, "A", [t[0], t[1], t[4], t[5]])
    [gap] = tracker.tick()
    assert tracker.observe("A", t[2], 5) == []  # half filled
    assert tracker.observe("A", t[3], 5) == [gap]  # closed
    assert tracker.open_gaps == {}


def test_a_thousand_series_missing_one_hour_make_one_request() -> None:
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    tracker = GapTracker("CAISO", "lmp_rt_5min", lateness=timedelta(0))
    hole = {t0 + timedelta(hours=1) + i * FIVE for i in range(12)}
    for node in range(1000):
        feed(tracker, f"N{node}", [t0 + i * FIVE for i in range(36) if t0 + i * FIVE not in hole])
    gaps = tracker.tick()
    assert len(gaps) == 1000
    [window] = coalesce(gaps)
    assert (window.start_utc, window.end_utc) == (min(hole), max(hole) + FIVE)
    assert len(window.gap_ids) == 1000


def test_windows_split_at_the_maximum_size_and_are_deterministic() -> None:
    tracker = GapTracker("PJM", "lmp_da_hourly", lateness=timedelta(0))
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    feed(tracker, "A", [t0, t0 + 60 * hour], minutes=60)
    gaps = tracker.tick()
    windows = coalesce(gaps, max_window=timedelta(days=1))
    # cut from the newest end: the recent past is fetched first
    assert [(w.start_utc, w.end_utc) for w in windows] == [
        (t0 + hour, t0 + 12 * hour),
        (t0 + 12 * hour, t0 + 36 * hour),
        (t0 + 36 * hour, t0 + 60 * hour),
    ]
    assert [w.request_id for w in coalesce(gaps, max_window=timedelta(days=1))] == [
        w.request_id for w in windows
    ]


def test_unrecoverable_gaps_are_abandoned() -> None:
    tracker = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(0))
    t = [datetime(2024, 6, 1, tzinfo=UTC) + i * FIVE for i in range(4)]
    feed(tracker, "A", [t[0], t[3]])
    [gap] = tracker.tick()
    assert tracker.abandon([gap.gap_id]) == [gap]
    assert tracker.observe("A", t[1], 5) == []  # arrives later: no longer tracked
    assert tracker.open_gaps == {}


def test_scattered_holes_close_together_share_one_request() -> None:
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    tracker = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(0))
    # series A misses 00:10, series B misses 00:40: 30 minutes apart -> one window
    feed(tracker, "A", [t0 + i * FIVE for i in range(24) if i != 2])
    feed(tracker, "B", [t0 + i * FIVE for i in range(24) if i != 8])
    [window] = coalesce(tracker.tick(), join_within=timedelta(hours=1))
    assert (window.start_utc, window.end_utc) == (t0 + 2 * FIVE, t0 + 9 * FIVE)
    assert len(coalesce(list(tracker.open_gaps.values()), join_within=timedelta(0))) == 2


def test_a_restored_tracker_keeps_its_open_gaps_and_watermark() -> None:
    t = [datetime(2024, 6, 1, tzinfo=UTC) + i * FIVE for i in range(8)]
    before = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(0))
    feed(before, "A", [t[0], t[1], t[5], t[7]])
    first, second = before.tick()  # t2..t4, and t6
    snapshot = dump_series(before.series["A"])

    after = GapTracker("PJM", "lmp_rt_5min", lateness=timedelta(0))
    after.restore("A", load_series(snapshot))
    assert after.watermark == before.watermark
    assert after.open_gaps == {first.gap_id: first, second.gap_id: second}
    assert after.tick() == []  # nothing declared twice
    assert after.observe("A", t[2], 5) == []
    assert after.observe("A", t[3], 5) == []
    assert after.observe("A", t[4], 5) == [first]
    assert after.observe("A", t[6], 5) == [second]
