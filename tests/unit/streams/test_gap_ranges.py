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


@st.composite
def streams(draw: st.DrawFn) -> tuple[datetime, timedelta, list[Observe | Tick | Abandon]]:
    day = draw(st.sampled_from(DAYS))
    lateness = draw(st.sampled_from([timedelta(0), timedelta(minutes=10), timedelta(hours=2)]))
    return day, lateness, arrivals(draw)


@settings(max_examples=400, deadline=None)
@given(streams())
def test_the_range_tracker_declares_what_the_per_interval_model_declares(
    stream: tuple[datetime, timedelta, list[Observe | Tick | Abandon]],
) -> None:
    day, lateness, ops = stream
    ranges = GapTracker("PJM", "lmp_rt_5min", lateness)
    naive = NaiveGapTracker("PJM", "lmp_rt_5min", lateness)
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
def test_a_snapshot_restores_the_same_open_gaps(
    stream: tuple[datetime, timedelta, list[Observe | Tick | Abandon]],
) -> None:
    day, lateness, ops = stream
    before = GapTracker("PJM", "lmp_rt_5min", lateness)
    for op in ops:
        if isinstance(op, Observe):
            minutes = SERIES[op.key]
            before.observe(op.key, day + op.index * timedelta(minutes=minutes), minutes)
        elif isinstance(op, Tick):
            before.tick()
    after = GapTracker("PJM", "lmp_rt_5min", lateness)
    for key, state in before.series.items():
        after.restore(key, load_series(dump_series(state)))
    assert after.watermark == before.watermark
    assert after.remaining == before.remaining
    assert after.tick() == before.tick()


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
