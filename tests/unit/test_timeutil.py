"""Local time at the edges, on both 2024 DST transition days of every ISO zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from schemas.timeutil import (
    day_bounds_utc,
    day_hours,
    expected_intervals,
    floor_to,
    hour_ending_start_utc,
    local_day,
    nth_hour_start_utc,
    parse_utc,
    wall_to_utc,
    zone,
)

SPRING = date(2024, 3, 10)
FALL = date(2024, 11, 3)


@pytest.mark.parametrize("iso", ["PJM", "CAISO", "ERCOT"])
def test_transition_days_have_23_and_25_hours(iso: str) -> None:
    assert day_hours(iso, SPRING) == 23
    assert day_hours(iso, FALL) == 25
    assert day_hours(iso, date(2024, 7, 1)) == 24
    assert len(expected_intervals(iso, FALL, 5)) == 300
    assert len(expected_intervals(iso, SPRING, 15)) == 92


def test_the_repeated_hour_maps_to_two_instants() -> None:
    tz = zone("ERCOT")
    wall = datetime(2024, 11, 3, 1, 0)  # 01:00 happens twice in Chicago
    first = wall_to_utc(tz, wall)
    second = wall_to_utc(tz, wall, repeated=True)
    assert first == datetime(2024, 11, 3, 6, tzinfo=UTC)  # CDT, UTC-5
    assert second == datetime(2024, 11, 3, 7, tzinfo=UTC)  # CST, UTC-6


def test_a_wall_time_in_the_spring_gap_is_the_hour_after_the_change() -> None:
    # 02:00-03:00 does not exist in Chicago on 2024-03-10; a label there means 03:00 CDT
    assert wall_to_utc(zone("ERCOT"), datetime(2024, 3, 10, 2, 30)) == datetime(
        2024, 3, 10, 7, 30, tzinfo=UTC
    )


def test_hour_ending_labels_on_the_fall_day() -> None:
    # HE 1 is 00:00-01:00 CDT; HE 2 twice: 01:00 CDT, then (repeated) 01:00 CST
    assert hour_ending_start_utc("ERCOT", FALL, 1) == datetime(2024, 11, 3, 5, tzinfo=UTC)
    assert hour_ending_start_utc("ERCOT", FALL, 2) == datetime(2024, 11, 3, 6, tzinfo=UTC)
    assert hour_ending_start_utc("ERCOT", FALL, 2, repeated=True) == datetime(
        2024, 11, 3, 7, tzinfo=UTC
    )
    assert hour_ending_start_utc("ERCOT", FALL, 24) == datetime(2024, 11, 4, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"outside 1\.\.24"):
        hour_ending_start_utc("ERCOT", FALL, 25)


def test_sequential_hours_count_real_hours() -> None:
    starts = [nth_hour_start_utc("PJM", FALL, n) for n in range(1, 26)]
    assert starts[0] == datetime(2024, 11, 3, 4, tzinfo=UTC)
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
    with pytest.raises(ValueError, match=r"outside 1\.\.23"):
        nth_hour_start_utc("PJM", SPRING, 24)


def test_day_bounds_and_local_day() -> None:
    start, end = day_bounds_utc("CAISO", FALL)
    assert (start, end) == (
        datetime(2024, 11, 3, 7, tzinfo=UTC),
        datetime(2024, 11, 4, 8, tzinfo=UTC),
    )
    assert local_day("CAISO", datetime(2024, 11, 4, 7, 59, tzinfo=UTC)) == FALL


def test_parse_utc_and_floor() -> None:
    assert parse_utc("2024-11-03T01:00:00-05:00") == datetime(2024, 11, 3, 6, tzinfo=UTC)
    assert parse_utc("2024-11-03T06:00:00Z") == datetime(2024, 11, 3, 6, tzinfo=UTC)
    assert parse_utc("2024-11-03T06:00:00") == datetime(2024, 11, 3, 6, tzinfo=UTC)
    assert floor_to(datetime(2024, 6, 25, 5, 40, 18, tzinfo=UTC), 5) == datetime(
        2024, 6, 25, 5, 40, tzinfo=UTC
    )
