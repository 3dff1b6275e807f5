"""Consumer lag from committed, earliest and latest offsets."""

from __future__ import annotations

from schemas.consumer_lag import lags


def test_lag_is_latest_minus_committed() -> None:
    assert lags({("t", 0): 7, ("t", 1): 10}, {}, {("t", 0): 10, ("t", 1): 10}) == {
        ("t", 0): 3,
        ("t", 1): 0,
    }


def test_a_partition_without_a_commit_counts_from_its_earliest_offset() -> None:
    # -1001 is Kafka's "no committed offset"; the first 40 records were deleted by retention
    assert lags({("t", 0): -1001}, {("t", 0): 40}, {("t", 0): 100}) == {("t", 0): 60}


def test_a_commit_past_a_latest_read_a_moment_before_is_no_negative_lag() -> None:
    assert lags({("t", 0): 12}, {}, {("t", 0): 10}) == {("t", 0): 0}


def test_only_partitions_with_a_latest_offset_are_reported() -> None:
    assert lags({("t", 0): 1, ("gone", 0): 5}, {}, {("t", 0): 4}) == {("t", 0): 3}
