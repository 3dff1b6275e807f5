"""The columnar core's pieces against the plain Python they stand for: wall-clock labels
converted a column at a time equal the row path's conversion, label by label; local times
equal zoneinfo's; repeated keys are found; a RecordBatch builds its records once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.columnar import (
    EPOCH,
    RecordBatch,
    distinct,
    floats,
    local_micros,
    pairs,
    wall_micros,
)
from connectors.pjm.columns import EASTERN_ZONE
from connectors.pjm.table import wall_time
from connectors.records import Record
from schemas.timeutil import zone


def row_path(label: str) -> datetime | None:
    try:
        return wall_time(label)
    except ValueError:
        return None


def column_path(label: str, form: str) -> datetime | None:
    micros = wall_micros(pa.array([label]), form)
    if micros is None:
        return None
    return (EPOCH + timedelta(microseconds=int(micros[0]))).replace(tzinfo=None)


# labels near the two strict forms: every field sometimes out of range or unpadded
NEAR_US12 = st.builds(
    lambda m, d, y, h, mi, s, half, pad: (
        (f"{m:02d}/{d:02d}/{y:04d}" if pad else f"{m}/{d}/{y:04d}")
        + f" {h}:{mi:02d}:{s:02d} {half}"
    ),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from([1, 99, 1900, 2000, 2023, 2024, 2100, 9999]),
    st.integers(0, 13),
    st.integers(0, 60),
    st.integers(0, 61),
    st.sampled_from(["AM", "PM"]),
    st.booleans(),
)
NEAR_ISO = st.builds(
    lambda y, m, d, h, mi, s: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}",
    st.sampled_from([1, 1900, 2000, 2024, 2100, 9999]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
)


@settings(max_examples=3000, deadline=None)
@given(NEAR_US12)
@example("2/29/2024 12:00:00 AM")  # leap day, midnight
@example("2/29/2023 1:00:00 AM")  # no such day
@example("2/29/2100 1:00:00 AM")  # a century is no leap year...
@example("2/29/2000 1:00:00 PM")  # ... unless it divides by 400
@example("12/31/2024 12:59:59 PM")
@example("6/3/2024 0:00:00 AM")  # no hour 0 on a 12-hour clock
def test_us12_labels_convert_as_the_row_path_does(label: str) -> None:
    converted = column_path(label, "us12")
    if converted is not None:  # where the column path converts, it agrees
        assert converted == row_path(label)
    else:  # and it declines only what the row path also declines (in these forms)
        assert row_path(label) is None


@settings(max_examples=2000, deadline=None)
@given(NEAR_ISO)
@example("2024-11-03T01:00:00")
def test_iso_labels_convert_as_the_row_path_does(label: str) -> None:
    converted = column_path(label, "iso")
    if converted is not None:
        assert converted == row_path(label)
    else:
        assert row_path(label) is None


@pytest.mark.parametrize(
    "label",
    [
        "6/3/2024  4:00:00 AM",  # two spaces
        "6/3/2024 4:00:00 AM ",  # trailing space
        "6/3/2024 4:00 AM",  # no seconds
        "6/3/2024 4:00:00.5 AM",  # fractional seconds
        "2024-06-03T04:00:00Z",  # with an offset
        "",
    ],
)
def test_other_forms_are_left_to_the_row_path(label: str) -> None:
    assert wall_micros(pa.array([label]), "us12") is None
    assert wall_micros(pa.array([label]), "iso") is None


def test_a_column_converts_whole_or_not_at_all() -> None:
    labels = pa.array(["6/3/2024 4:00:00 AM", "6/3/2024 4:00 AM"])
    assert wall_micros(labels, "us12") is None


def test_local_times_are_zoneinfos_on_both_dst_days() -> None:
    assert zone("PJM") == ZoneInfo(EASTERN_ZONE)
    eastern = ZoneInfo(EASTERN_ZONE)
    instants = [
        datetime(2024, 3, 10, 6, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(24)
    ] + [datetime(2024, 11, 3, 4, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(48)]
    micros = np.array(
        [(instant - EPOCH) // timedelta(microseconds=1) for instant in instants], np.int64
    )
    local = local_micros(micros, EASTERN_ZONE)
    expected = [
        (instant.astimezone(eastern).replace(tzinfo=None) - EPOCH.replace(tzinfo=None))
        // timedelta(microseconds=1)
        for instant in instants
    ]
    assert local.tolist() == expected


def test_floats_decline_anything_not_a_plain_finite_number() -> None:
    values = floats(pa.array(["1.5", "-3", "1e3"]))
    assert values is not None
    assert values.tolist() == [1.5, -3.0, 1000.0]
    for bad in (["1.5", ""], ["nan"], ["inf"], [" 1.5"], ["1,5"], ["abc"]):
        assert floats(pa.array(bad)) is None, bad
    assert floats(pa.array([True, False])) is None  # JSON booleans are no prices


def test_distinct_finds_a_repeated_combined_key() -> None:
    a = np.array([0, 1, 0, 1], np.int64)
    b = np.array([0, 0, 1, 1], np.int64)
    assert distinct((a, 2), (b, 2))
    assert not distinct((a, 2), (np.array([0, 0, 0, 1], np.int64), 2))
    big = np.arange(10, dtype=np.int64) * 1_000_003  # a sparse key space: the sorting branch
    assert distinct((big, 10_000_030), (np.zeros(10, np.int64), 1))
    assert not distinct((np.append(big, big[:1]), 10_000_030), (np.zeros(11, np.int64), 1))


def test_pairs_number_each_distinct_pair_once() -> None:
    first = np.array([0, 1, 0, 2, 1], np.int64)
    second = np.array([1, 0, 1, 0, 0], np.int64)
    codes, found = pairs(first, 3, second, 2)
    seen = [tuple(found[c]) for c in codes.tolist()]
    assert seen == list(zip(first.tolist(), second.tolist(), strict=True))
    assert len(found) == 3


@pytest.mark.parametrize(
    ("first", "second", "n_first"),
    [
        ([0, 1, 0, 2, 1], [1, 0, 1, 0, 0], 3),  # the first decides the second
        ([0, 1, 0, 2, 1], [1, 0, 0, 0, 0], 3),  # it does not (0 goes with 1 and 0)
        ([0, 2, 0], [1, 0, 1], 3),  # a first code that never occurs
    ],
)
def test_pairs_are_the_rows_pairs_whichever_way_they_are_numbered(
    first: list[int], second: list[int], n_first: int
) -> None:
    codes, found = pairs(np.array(first, np.int64), n_first, np.array(second, np.int64), 2)
    assert [tuple(found[c]) for c in codes.tolist()] == list(zip(first, second, strict=True))
    assert len({tuple(pair) for pair in found.tolist()}) == len(found)  # each pair once
    assert {tuple(pair) for pair in found.tolist()} == set(zip(first, second, strict=True))


def test_a_record_batch_builds_once_and_reads_like_a_list() -> None:
    calls: list[int] = []
    records: list[Record] = []

    def build() -> list[Record]:
        calls.append(1)
        return records

    batch = RecordBatch(0, build)
    assert len(batch) == 0
    assert not calls  # the length is known before anything is built
    assert list(batch) == []
    assert batch == []
    assert calls == [1]
    assert list(batch) == []
    assert calls == [1]


def test_a_builder_that_loses_records_is_caught() -> None:
    batch = RecordBatch(2, list)
    with pytest.raises(RuntimeError, match="built 0 records of 2"):
        list(batch)
