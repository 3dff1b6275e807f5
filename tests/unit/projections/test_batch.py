"""Reducing a batch to what one upsert statement takes: per key, the same winner the revision
guard picks in the database, every (key, revision) once; and the SQL the writer issues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import MigrationError
from projections.migrate import migrations
from projections.models import read_model
from projections.pg import month_starts, stage
from projections.redis_sink import order_token, updates_of
from projections.tables import FRESHNESS, LMP, LOCATIONS, TableSpec

AT = datetime(2024, 11, 3, 5, tzinfo=UTC)


def lmp_row(location: str, minute: int, revision: int, price: float) -> tuple[Any, ...]:
    values = {
        "iso": "PJM", "market": "RT_5MIN", "location_id": location,
        "interval_start_utc": AT + timedelta(minutes=minute), "interval_minutes": 5,
        "location_name": None, "location_type": "NODE", "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": None, "congestion_usd_per_mwh": None, "loss_usd_per_mwh": None,
        "revision": revision, "supersedes_revision": None, "run_id": "r", "source_dataset": "d",
        "event_id": f"{location}-{minute}-{revision}", "occurred_at_utc": AT,
        "recorded_at_utc": AT, "source": "s",
    }  # fmt: skip
    return tuple(values[c] for c in LMP.column_names)


def test_revisions_keep_each_once_and_flag_the_highest() -> None:
    rows = [
        lmp_row("A", 0, 1, 10.0),
        lmp_row("A", 0, 2, 12.0),  # a correction
        lmp_row("A", 0, 1, 10.0),  # the first revision redelivered after it
        lmp_row("B", 0, 1, 20.0),
        lmp_row("B", 0, 1, 20.0),  # a plain duplicate
    ]
    staged = stage(LMP, rows)
    assert staged.rows == [rows[0], rows[1], rows[3]]
    assert staged.latest == [False, True, True]


@given(st.lists(st.tuples(st.sampled_from("AB"), st.integers(0, 2), st.integers(1, 4))))
def test_staging_picks_what_applying_events_one_by_one_would(
    events: list[tuple[str, int, int]],
) -> None:
    rows = [lmp_row(loc, 5 * m, rev, float(rev)) for loc, m, rev in events]
    # one by one, as a stream of single-row upserts with the guard would
    table: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = row[:4]
        if key not in table or row[LMP.index("revision")] > table[key][LMP.index("revision")]:
            table[key] = row
    staged = stage(LMP, rows)
    assert sorted(r for r, latest in zip(staged.rows, staged.latest, strict=True) if latest) == (
        sorted(table.values())
    )
    assert len(staged.rows) == len({(r[:4], r[LMP.index("revision")]) for r in rows})


def test_locations_keep_the_earliest_sighting_and_ties_keep_the_first() -> None:
    def location(first: datetime, name: str) -> tuple[object, ...]:
        return ("PJM", "DA_HOURLY", "1", name, "NODE", first, "d", "e", AT, AT, "s")

    later, earlier, tie = (
        location(AT, "later"),
        location(AT - timedelta(days=1), "early"),
        (location(AT - timedelta(days=1), "tie")),
    )
    assert stage(LOCATIONS, [later, earlier, tie]).rows == [earlier]


def test_a_table_without_guard_keeps_the_first_row_of_a_key() -> None:
    spec = TableSpec("t", (("k", "text"), ("v", "int4")), key=("k",))
    assert stage(spec, [("a", 1), ("a", 2), ("b", 3)]).rows == [("a", 1), ("b", 3)]


def test_specs_reject_a_partition_key_outside_the_primary_key() -> None:
    with pytest.raises(ValueError, match="partition key must be in the primary key"):
        TableSpec("t", (("k", "text"), ("at", "timestamptz")), key=("k",), time_column="at")


def test_month_starts_cover_a_year_boundary() -> None:
    months = month_starts(datetime(2024, 11, 30, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert [m.strftime("%Y-%m") for m in months] == ["2024-11", "2024-12", "2025-01"]


def test_order_tokens_sort_as_their_tuples() -> None:
    pairs = [(1, 9), (1, 10), (2, 0), (10, 0)]
    assert sorted(pairs, key=order_token) == sorted(pairs)
    assert order_token((-5,)) == order_token((0,))


def test_redis_gets_the_newest_interval_of_each_series() -> None:
    model = read_model("lmp")
    assert model.latest is not None
    rows = [lmp_row("A", 5, 1, 1.0), lmp_row("A", 0, 3, 2.0), lmp_row("B", 0, 1, 3.0)]
    updates = updates_of(model.latest, rows)
    assert {where: row for where, (_, row) in updates.items()} == {
        ("lmp", "PJM|RT_5MIN|A"): rows[0],  # a later interval beats a higher revision
        ("lmp", "PJM|RT_5MIN|B"): rows[2],
    }


def test_freshness_is_one_hash_field_per_iso_dataset() -> None:
    model = read_model("freshness")
    assert model.latest is not None
    assert model.latest.table is FRESHNESS


def test_migration_files_are_numbered_and_named(tmp_path: Path) -> None:
    assert [m.version for m in migrations()] == [1, 2, 3, 4, 5, 6, 7]
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "1_bad.sql").write_text("")
    with pytest.raises(MigrationError, match=r"1_bad\.sql: migration files are named"):
        migrations(tmp_path)
    (tmp_path / "1_bad.sql").unlink()
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(MigrationError, match="version 1 is also"):
        migrations(tmp_path)


def test_unknown_read_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no read model 'prices'; choose one of lmp, load"):
        read_model("prices")
