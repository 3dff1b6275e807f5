"""The range tracker declares exactly the gaps of the per-interval model, and its state stays the
size of its ranges however long a hole is."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.gaps import GapTracker, dump_series, load_series
from tests.unit.streams.naive_gaps import NaiveGapTracker

# UTC midnights of local DST days: the spring-forward (23 h) and fall-back (25 h) days of
# PJM's and ERCOT's zones, and an ordinary day; the grid is UTC, so they are ordinary here
DAYS = [
    datetime(2024, 3, 10, 5, tzinfo=UTC),
    datetime(2024, 11, 3, 4, tzinfo=UTC),
    datetime(2024, 6, 16, 4, tzinfo=UTC),
]
SERIES = {"A": 5, "B": 5, "C": 60}  # series key -> cadence (minutes)


@dataclass(frozen=True)
class Observe:
    key: str
    index: int  # interval number on the series' grid from the day's start


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class Abandon:
    pick: int  # which open gap (by sorted id), modulo their number


operations = st.one_of(
    st.builds(Observe, st.sampled_from(sorted(SERIES)), st.integers(0, 400)),
    st.builds(Tick),
    st.builds(Abandon, st.integers(0, 50)),
)


def arrivals(draw: st.DrawFn) -> list[Observe | Tick | Abandon]:
    ops: list[Observe | Tick | Abandon] = draw(st.lists(operations, max_size=120))
    # duplicates and revisions: the same interval again, later in the stream
    repeats = draw(st.lists(st.integers(0, max(len(ops) - 1, 0)), max_size=10))
    return ops + [ops[i] for i in repeats if ops and isinstance(ops[i], Observe)]


Stream = tuple[datetime, timedelta, timedelta | None, list[Observe | Tick | Abandon]]


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    day = draw(st.sampled_from(DAYS))
    lateness = draw(st.sampled_from([timedelta(0), timedelta(minutes=10), timedelta(hours=2)]))
    retire = draw(st.sampled_from([None, timedelta(minutes=50), timedelta(hours=3)]))
    return day, lateness, retire, arrivals(draw)


@settings(max_examples=400, deadline=None)
@given(streams())
def test_the_range_tracker_declares_what_the_per_interval_model_declares(stream: Stream) -> None:
    day, lateness, retire, ops = stream
    ranges = GapTracker("PJM", "lmp_rt_5min", lateness, retire_after=retire)
    naive = NaiveGapTracker("PJM", "lmp_rt_5min", lateness, retire_after=retire)
    for op in [*ops, Tick()]:
        if isinstance(op, Observe):
            minutes = SERIES[op.key]
            start = day + op.index * timedelta(minutes=minutes)
            assert ranges.observe(op.key, start, minutes) == naive.observe(op.key, start, minutes)
        elif isinstance(op, Tick):
            assert ranges.tick() == naive.tick()
        else:
            ids = sorted(naive.open_gaps)
            chosen = [ids[op.pick % len(ids)]] if ids else []
            assert ranges.abandon(chosen) == naive.abandon(chosen)
        assert ranges.open_gaps == naive.open_gaps
        assert ranges.watermark == naive.watermark
        assert [
            (c.series_key, c.status, c.last_interval_start_utc) for c in ranges.drain_changes()
        ] == naive.changes
        naive.changes.clear()
    for key, state in ranges.series.items():
        # the same missing intervals, held as ranges
        step = state.step
        held = {a + i * step for a, b in state.missing for i in range((b - a) // step)}
        assert held == naive.series[key].missing
        declared = {
            a + i * step: gap for a, b, gap in state.declared for i in range((b - a) // step)
        }
        assert declared == naive.series[key].declared


@settings(max_examples=100, deadline=None)
@given(streams())
def test_a_snapshot_restores_the_same_open_gaps(stream: Stream) -> None:
    day, lateness, retire, ops = stream
    before = GapTracker("PJM", "lmp_rt_5min", lateness, retire_after=retire)
    for op in ops:
        if isinstance(op, Observe):
            minutes = SERIES[op.key]
            before.observe(op.key, day + op.index * timedelta(minutes=minutes), minutes)
        elif isinstance(op, Tick):
            before.tick()
    after = GapTracker("PJM", "lmp_rt_5min", lateness, retire_after=retire)
    for key, state in before.series.items():
        after.restore(key, load_series(dump_series(state)))
    assert after.watermark == before.watermark
    assert after.remaining == before.remaining
    assert {k: s.retired for k, s in after.series.items()} == {
        k: s.retired for k, s in before.series.items()
    }
    before.drain_changes()
    assert after.tick() == before.tick()
    assert after.drain_changes() == before.drain_changes()


def test_a_three_year_silence_is_one_gap_of_a_few_objects() -> None:
    five = timedelta(minutes=5)
    t0 = datetime(2023, 11, 5, 5, tzinfo=UTC)
    later = t0 + timedelta(days=3 * 365)
    tracker = GapTracker("PJM", "lmp_rt_5min", timedelta(minutes=20))
    tracker.observe("OLD", t0, 5)  # a series last seen three years ago...
    tracker.observe("NEW", later, 5)  # ...and one of today
    [gap] = tracker.tick()
    assert gap.series_key == "OLD"
    assert gap.start_utc == t0 + five
    assert gap.missing_intervals == (later + five - timedelta(minutes=20) - (t0 + five)) // five
    assert gap.missing_intervals > 300_000
    old = tracker.series["OLD"]
    assert old.missing == []
    assert len(old.declared) == 1  # one range, not 300,000 intervals
    assert len(repr(dump_series(old))) < 200
    # the same series coming back in the middle of the hole splits one range in two
    assert tracker.observe("OLD", t0 + 1000 * five, 5) == []
    assert len(old.declared) == 2
    assert tracker.remaining[gap.gap_id] == gap.missing_intervals - 1
    assert sys.getsizeof(old.declared) < 1_000


def test_a_silent_series_retires_after_its_age_and_comes_back_without_a_gap() -> None:
    five = timedelta(minutes=5)
    t0 = datetime(2024, 11, 3, 4, tzinfo=UTC)  # the fall-back day
    tracker = GapTracker("PJM", "lmp_rt_5min", timedelta(0), retire_after=timedelta(hours=1))
    tracker.observe("GONE", t0, 5)
    for i in range(12):  # "LIVE" keeps coming for the hour after GONE's last interval
        tracker.observe("LIVE", t0 + (i + 1) * five, 5)
    # watermark t0 + 65 min: GONE's silence (from t0 + 5 min) is exactly one hour -> retired
    [gap] = tracker.tick()
    assert (gap.series_key, gap.start_utc, gap.end_utc) == ("GONE", t0 + five, t0 + 13 * five)
    [retired] = tracker.drain_changes()
    assert (retired.series_key, retired.status, retired.last_interval_start_utc) == (
        "GONE",
        "RETIRED",
        t0,
    )
    assert retired.at_utc == t0 + 13 * five  # the end of its hour of silence, in event time
    for i in range(12, 300):  # a day more of LIVE: GONE is not gap-filled for ever
        tracker.observe("LIVE", t0 + (i + 1) * five, 5)
    assert tracker.tick() == []
    assert tracker.drain_changes() == []
    # GONE comes back: active again, and its time retired is no gap
    tracker.observe("GONE", t0 + 300 * five, 5)
    [back] = tracker.drain_changes()
    assert (back.status, back.last_interval_start_utc) == ("ACTIVE", t0)
    assert back.at_utc == t0 + 300 * five  # the interval that came back
    assert tracker.tick() == []
    assert list(tracker.open_gaps) == [gap.gap_id]


def test_a_series_one_interval_short_of_its_age_is_still_active() -> None:
    five = timedelta(minutes=5)
    t0 = datetime(2024, 3, 10, 5, tzinfo=UTC)
    tracker = GapTracker("PJM", "lmp_rt_5min", timedelta(0), retire_after=timedelta(hours=1))
    tracker.observe("QUIET", t0, 5)
    tracker.observe("LIVE", t0 + 11 * five, 5)  # watermark t0 + 60 min: 55 minutes of silence
    [gap] = tracker.tick()
    assert gap.missing_intervals == 11
    assert tracker.drain_changes() == []
