"""Both read-model paths give the same answers: the same day of events replayed into a schema
of the TimescaleDB database (hypertables, rollups) and one of the plain-partition database on
the same server ends with the same checksum in every table, and the same resamples."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from optibid.settings import Settings
from projections import reads
from projections.hypertables import ROLLUPS, has_timescale
from projections.migrate import drop_schema
from schemas.catalog import TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.projections_util import (
    DAY_START,
    ProjectorProcess,
    checksums,
    full_day,
    produce_day,
    refresh_rollup,
)


@pytest.fixture
def partitions_schema(partitions_settings: Settings, test_id: str) -> Iterator[str]:
    yield test_id
    drop_schema(partitions_settings.postgres_dsn, test_id)


def resamples(settings: Settings, schema: str) -> list[list[dict[str, Any]]]:
    """Hourly, daily and monthly resamples of LMP and load, as the API asks them."""
    start = DAY_START.replace(hour=0)
    end = start + timedelta(days=2)
    lmp = reads.Selection("lmp", start, end, {"iso": "PJM"})
    load = reads.Selection("load", start, end, {"iso": "PJM"})
    with psycopg.connect(settings.postgres_dsn) as conn:
        return [
            reads.resampled(conn, schema, sel, column, width, aggregate, groups)
            for sel, column, width, aggregate, groups in (
                (lmp, "lmp_usd_per_mwh", timedelta(hours=1), "mean", ("location_id",)),
                (lmp, "lmp_usd_per_mwh", timedelta(days=1), "max", ("iso", "market")),
                (lmp, "energy_usd_per_mwh", None, "sum", ("location_id",)),
                (load, "load_mw", timedelta(hours=1), "mean", ("area_id", "load_kind")),
                (load, "load_mw", timedelta(days=1), "min", ("area_id",)),
            )
        ]


def test_the_same_day_on_both_paths_has_the_same_checksums_and_resamples(
    timescale_settings: Settings,
    partitions_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    db_schema: str,
    partitions_schema: str,
    test_id: str,
    tmp_path: Path,
) -> None:
    produce_day(timescale_settings, serde, contracts_ready, full_day())
    on_timescale = ProjectorProcess(test_id, db_schema, tmp_path)
    on_partitions = ProjectorProcess(test_id, partitions_schema, tmp_path / "partitions")
    on_partitions.env["OPTIBID_POSTGRES_DB"] = partitions_settings.postgres_db
    for projector in (on_timescale, on_partitions):
        projector.run("db", "migrate")
        projector.run("replay", "all", timeout_s=150)

    with psycopg.connect(timescale_settings.postgres_dsn) as conn:
        assert has_timescale(conn)
        hypertables = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = %s",
            (db_schema,),
        ).fetchone()
    assert hypertables is not None
    assert hypertables[0] >= 10
    with psycopg.connect(partitions_settings.postgres_dsn) as conn:
        assert not has_timescale(conn)
        partitioned = conn.execute(
            "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            (partitions_schema,),
        ).fetchone()
    assert partitioned is not None
    assert partitioned[0] >= 10

    timescale_sums = checksums(timescale_settings, db_schema)
    assert all(rows > 0 for rows, _ in timescale_sums.values()), timescale_sums
    assert timescale_sums == checksums(partitions_settings, partitions_schema)

    # the rollups answer once refreshed; the partitions path buckets the rows (date_bin)
    for rollup in ROLLUPS:
        refresh_rollup(timescale_settings, db_schema, rollup.name)
    with psycopg.connect(timescale_settings.postgres_dsn) as conn:
        hourly = next(r for r in ROLLUPS if r.name == "lmp_hourly")
        start = DAY_START.replace(hour=0)
        assert reads.rollup_is_exact(conn, db_schema, hourly, start, start + timedelta(days=2))
    from_rollups = resamples(timescale_settings, db_schema)
    from_partitions = resamples(partitions_settings, partitions_schema)
    for a, b in zip(from_rollups, from_partitions, strict=True):
        assert a, "an empty resample compares nothing"
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            value = next(k for k in x if k.endswith(("_mwh", "_mw")))
            assert {k: v for k, v in x.items() if k != value} == {
                k: v for k, v in y.items() if k != value
            }
            assert math.isclose(x[value], y[value], rel_tol=1e-12), (x, y)
