"""The faust workers' lag per partition from what their consumer holds in memory."""

from __future__ import annotations

from faust.types import TP

from streams.runtime.lag import partition_lags

A0, A1, A2, A3 = (TP("raw.a", p) for p in range(4))


def test_lag_is_the_high_watermark_minus_the_last_commit() -> None:
    assert partition_lags({A0: 100, A1: 40}, {A0: 70, A1: 40}) == {
        ("raw.a", 0): 30,
        ("raw.a", 1): 0,
    }


def test_an_empty_partition_never_committed_has_no_lag() -> None:
    assert partition_lags({A0: 0}, {A0: None}) == {("raw.a", 0): 0}


def test_records_never_committed_count_from_offset_0() -> None:
    # faust holds a committed offset of 0 as None: both mean nothing read yet
    assert partition_lags({A0: 100, A1: 7}, {A1: None}) == {("raw.a", 0): 100, ("raw.a", 1): 7}


def test_a_commit_past_the_last_fetched_high_watermark_is_no_negative_lag() -> None:
    assert partition_lags({A2: 10}, {A2: 12}) == {("raw.a", 2): 0}


def test_only_partitions_with_a_high_watermark_are_shown() -> None:
    # A3 not fetched yet: no high watermark, no series (a commit alone says nothing of the end)
    assert partition_lags({A0: 3}, {A0: 3, A3: 9}) == {("raw.a", 0): 0}
