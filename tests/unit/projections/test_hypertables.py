"""TimescaleDB's side of the read models, the parts that need no server: chunk intervals from
a volume, compression columns, rollup definitions and which requests a rollup answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projections import reads
from projections.hypertables import (
    CHUNK_STEPS,
    MIB,
    ROLLUPS,
    choose_chunk_interval,
    compression_columns,
)
from projections.tables import TABLES

AT = datetime(2024, 3, 9, tzinfo=UTC)
RECORDED = datetime(2024, 3, 12, tzinfo=UTC)
SERIES = ("iso", "market", "location_id")


@pytest.mark.parametrize(
    ("rows_per_day", "bytes_per_row", "target", "interval"),
    [
        # PJM's RT 5-minute LMP at ~11,000 nodes: 3.2 M rows a day, ~770 MB at 240 B a row
        (11_000 * 288, 240, 256 * MIB, timedelta(hours=8)),
        (11_000 * 288, 240, 1024 * MIB, timedelta(days=1)),
        # ERCOT's hourly day-ahead LMP at ~1,000 settlement points
        (1_000 * 24, 240, 256 * MIB, timedelta(days=28)),
        (1_000 * 24, 240, 32 * MIB, timedelta(days=4)),
        # a flood no chunk can hold a day of: an hour, the shortest step
        (10**9, 240, 256 * MIB, timedelta(hours=1)),
        (0, 240, 256 * MIB, timedelta(days=28)),
    ],
)
def test_the_chunk_interval_keeps_a_chunk_near_its_target(
    rows_per_day: int, bytes_per_row: float, target: int, interval: timedelta
) -> None:
    chosen = choose_chunk_interval(rows_per_day, bytes_per_row, target)
    assert chosen == interval
    assert chosen in CHUNK_STEPS
    if rows_per_day and chosen > CHUNK_STEPS[0]:
        chunk_bytes = rows_per_day * bytes_per_row * (chosen / timedelta(days=1))
        assert chunk_bytes <= target


def test_compression_segments_by_series_and_orders_by_time() -> None:
    assert compression_columns("lmp") == (SERIES, ("interval_start_utc",))
    assert compression_columns("lmp_superseded") == (SERIES, ("interval_start_utc", "revision"))
    assert compression_columns("load") == (("iso", "area_id", "load_kind"), ("interval_start_utc",))
    segments, order = compression_columns("kpis")
    assert TABLES["kpis"].time_column in order
    assert set(segments) | set(order) == set(TABLES["kpis"].key)


def test_rollups_are_hourly_and_daily_for_lmp_and_load() -> None:
    assert sorted(r.name for r in ROLLUPS) == [
        "lmp_daily", "lmp_hourly", "load_daily", "load_hourly",
    ]  # fmt: skip
    for rollup in ROLLUPS:
        spec = TABLES[rollup.table]
        assert set(rollup.groups) <= set(spec.key)
        assert set(rollup.values) <= set(spec.column_names)
        assert set(rollup.groups) | {rollup.time_column} == set(spec.key)


def test_requests_a_rollup_cannot_answer_go_to_the_rows() -> None:
    """As of a past time, a bucket that is not a whole number of the rollups' buckets, bounds
    inside a bucket, a column or filter the rollup does not keep: no rollup is chosen."""
    start, end = AT, AT + timedelta(days=1)
    sel = reads.Selection("lmp", start, end, {})
    assert reads.rollup_for(sel, "lmp_usd_per_mwh", timedelta(minutes=30), SERIES) is None
    assert reads.rollup_for(sel, "lmp_usd_per_mwh", timedelta(minutes=90), SERIES) is None
    assert reads.rollup_for(sel, "revision", timedelta(hours=1), SERIES) is None
    assert reads.rollup_for(sel, "lmp_usd_per_mwh", timedelta(hours=1), ("run_id",)) is None
    as_of = reads.Selection("lmp", start, end, {}, as_of=RECORDED)
    assert reads.rollup_for(as_of, "lmp_usd_per_mwh", timedelta(hours=1), SERIES) is None
    inside = reads.Selection("lmp", start + timedelta(minutes=5), end, {})
    assert reads.rollup_for(inside, "lmp_usd_per_mwh", timedelta(hours=1), SERIES) is None
    filtered = reads.Selection("lmp", start, end, {"location_type": "HUB"})
    assert reads.rollup_for(filtered, "lmp_usd_per_mwh", timedelta(hours=1), SERIES) is None
    whole_days = reads.Selection("lmp", start, end, {"location_id": ["1", "2"]})
    chosen = reads.rollup_for(whole_days, "lmp_usd_per_mwh", timedelta(days=2), SERIES)
    assert chosen is not None
    assert chosen.name == "lmp_daily"
