"""The read models on TimescaleDB (the stack builds it from ../shared/vendor): rollups answer
resamples with the raw rows' figures and step aside while a change waits for their refresh;
a compressed chunk answers "as of" and takes a late revision through the projector's writer;
chunk intervals follow the data's volume; compression follows its setting."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from optibid.settings import Settings
from projections import hypertables, reads
from projections.hypertables import ROLLUPS, Options
from projections.migrate import migrate
from projections.pg import Batch, PgWriter
from projections.query import history
from projections.tables import LMP, LOAD
from tests.integration.projections_util import refresh_rollup

AT = datetime(2024, 3, 9, tzinfo=UTC)  # the weekend before PJM's spring-forward day
RECORDED = datetime(2024, 3, 12, tzinfo=UTC)
SERIES = ("iso", "market", "location_id")


def lmp_row(
    location: str, minute: int, revision: int, price: float, recorded: datetime = RECORDED
) -> tuple[Any, ...]:
    values = {
        "iso": "PJM", "market": "RT_5MIN", "location_id": location,
        "interval_start_utc": AT + timedelta(minutes=minute), "interval_minutes": 5,
        "location_name": None, "location_type": "NODE", "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": price - 1.25, "congestion_usd_per_mwh": None,
        "loss_usd_per_mwh": 0.5, "revision": revision, "supersedes_revision": None,
        "run_id": "r", "source_dataset": "lmp_rt_5min",
        "event_id": f"{location}-{minute}-{revision}", "occurred_at_utc": recorded,
        "recorded_at_utc": recorded, "source": "s",
    }  # fmt: skip
    return tuple(values[c] for c in LMP.column_names)


def load_row(area: str, minute: int, mw: float) -> tuple[Any, ...]:
    values = {
        "iso": "ERCOT", "area_id": area, "load_kind": "ACTUAL",
        "interval_start_utc": AT + timedelta(minutes=minute), "interval_minutes": 15,
        "area_type": "ZONE", "load_mw": mw, "forecast_made_at_utc": None, "revision": 1,
        "run_id": "r", "source_dataset": "load", "event_id": f"{area}-{minute}",
        "occurred_at_utc": RECORDED, "recorded_at_utc": RECORDED, "source": "s",
    }  # fmt: skip
    return tuple(values[c] for c in LOAD.column_names)


def price(location: int, minute: int) -> float:
    """Prices with fractions that do not add up exactly in floating point."""
    return 20.0 + location * 3.1 + (minute % 97) * 0.37 - (minute % 13) * 1.9


@pytest.fixture
def schema(timescale_settings: Settings, db_schema: str) -> str:
    """A migrated schema without a compression policy: the policy's first run comes as soon as
    it is added, and a test that compresses does so itself, when it means to."""
    with psycopg.connect(timescale_settings.postgres_dsn) as conn:
        migrate(conn, db_schema, Options(compress_after=None))
    return db_schema


def write(settings: Settings, schema: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    spec = {"lmp": LMP, "load": LOAD}[table]
    with psycopg.connect(settings.postgres_dsn) as conn:
        writer = PgWriter(schema, table, [spec])
        writer.attach(conn)
        batch = Batch(rows={table: rows}, events=len(rows))
        writer.write(conn, batch)


def same(a: list[dict[str, Any]], b: list[dict[str, Any]], column: str) -> None:
    """Equal rows, the value column up to floating-point rounding (sums in another order)."""
    assert len(a) == len(b)
    assert a, "nothing to compare"
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k != column} == {
            k: v for k, v in y.items() if k != column
        }
        assert math.isclose(x[column], y[column], rel_tol=1e-12, abs_tol=1e-9), (x, y)


def test_rollups_answer_like_the_rows_and_step_aside_while_a_revision_waits_for_a_refresh(
    timescale_settings: Settings, schema: str
) -> None:
    settings = timescale_settings
    two_days = 2 * 288
    write(settings, schema, "lmp", [
        lmp_row(str(n), 5 * i, 1, price(n, i)) for n in range(3) for i in range(two_days)
    ])  # fmt: skip
    write(settings, schema, "load", [
        load_row(area, 15 * i, 1000.0 + i * 0.3) for area in ("NORTH", "SOUTH") for i in range(192)
    ])  # fmt: skip
    for each in ROLLUPS:
        refresh_rollup(settings, schema, each.name)
    lmp = reads.Selection("lmp", AT, AT + timedelta(days=2), {"iso": "PJM"})
    load = reads.Selection("load", AT, AT + timedelta(days=2), {"area_id": ["NORTH", "SOUTH"]})
    asks = [
        (lmp, "lmp_usd_per_mwh", timedelta(hours=1), "mean", SERIES, "lmp_hourly"),
        (lmp, "energy_usd_per_mwh", timedelta(hours=6), "sum", SERIES, "lmp_hourly"),
        (lmp, "lmp_usd_per_mwh", timedelta(days=1), "max", ("iso",), "lmp_daily"),
        (lmp, "loss_usd_per_mwh", timedelta(days=1), "min", SERIES, "lmp_daily"),
        (lmp, "congestion_usd_per_mwh", timedelta(hours=1), "mean", SERIES, "lmp_hourly"),
        (lmp, "lmp_usd_per_mwh", None, "mean", ("market",), "lmp_daily"),
        (load, "load_mw", timedelta(hours=1), "sum", ("iso", "area_id"), "load_hourly"),
        (load, "load_mw", timedelta(days=1), "mean", ("load_kind",), "load_daily"),
    ]
    with psycopg.connect(settings.postgres_dsn) as conn:
        for sel, column, width, aggregate, group_by, view in asks:
            chosen = reads.rollup_for(sel, column, width, group_by)
            assert chosen is not None
            assert chosen.name == view
            assert reads.rollup_is_exact(conn, schema, chosen, sel.start, sel.end)
            from_rollup = reads.resampled(conn, schema, sel, column, width, aggregate, group_by)
            from_rows = reads.resampled(
                conn, schema, sel, column, width, aggregate, group_by, rollups=False
            )
            if column == "congestion_usd_per_mwh":  # all NULL: a NULL mean, like the rows'
                assert from_rollup == from_rows
                assert {r[column] for r in from_rollup} == {None}
            else:
                same(from_rollup, from_rows, column)

    # a correction to an hour the rollups hold: until their refresh the rows answer
    corrected = AT + timedelta(hours=5)
    write(settings, schema, "lmp", [lmp_row("1", 5 * 60, 2, 5000.0, RECORDED + timedelta(hours=1))])
    hourly = reads.Selection("lmp", AT, AT + timedelta(days=2), {})
    ask = ("lmp_usd_per_mwh", timedelta(hours=1), "max", SERIES)
    with psycopg.connect(settings.postgres_dsn) as conn:
        rollup = reads.rollup_for(hourly, "lmp_usd_per_mwh", timedelta(hours=1), SERIES)
        assert rollup is not None
        assert not reads.rollup_is_exact(conn, schema, rollup, hourly.start, hourly.end)
        # a range the change is not in still comes from the rollup
        day_two = AT + timedelta(days=1)
        assert reads.rollup_is_exact(conn, schema, rollup, day_two, hourly.end)
        stale = conn.execute(
            f'SELECT lmp_usd_per_mwh_max FROM "{schema}".lmp_hourly'
            " WHERE location_id = '1' AND bucket_start_utc = %s",
            (corrected,),
        ).fetchone()
        assert stale is not None
        assert stale[0] < 5000.0  # the rollup has not seen it yet ...
        answered = reads.resampled(conn, schema, hourly, *ask)
        bucket = [
            r for r in answered if r["location_id"] == "1" and r["bucket_start_utc"] == corrected
        ]
        assert [r["lmp_usd_per_mwh"] for r in bucket] == [5000.0]  # ... the answer has
    refresh_rollup(settings, schema, "lmp_hourly")
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert reads.rollup_is_exact(conn, schema, rollup, hourly.start, hourly.end)
        same(
            reads.resampled(conn, schema, hourly, *ask),
            reads.resampled(conn, schema, hourly, *ask, rollups=False),
            "lmp_usd_per_mwh",
        )


def compressed_chunks(conn: psycopg.Connection[Any], schema: str, table: str) -> list[bool]:
    rows = conn.execute(
        "SELECT is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_schema = %s AND hypertable_name = %s ORDER BY range_start",
        (schema, table),
    )
    return [bool(c) for (c,) in rows]


def test_a_compressed_chunk_answers_as_of_and_takes_a_late_revision(
    timescale_settings: Settings, schema: str
) -> None:
    settings = timescale_settings
    first = RECORDED
    write(
        settings, schema, "lmp", [lmp_row(n, 5 * i, 1, 30.0 + i) for n in "AB" for i in range(24)]
    )
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        for table in ("lmp", "lmp_superseded"):
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true)"
                " FROM show_chunks(%s::regclass) c",
                (f'"{schema}".{table}',),
            )
        assert compressed_chunks(conn, schema, "lmp") == [True]

    # the ISO corrects A's third interval, and an older revision of B's arrives late
    later = first + timedelta(hours=2)
    write(settings, schema, "lmp", [
        lmp_row("A", 10, 2, 99.5, later), lmp_row("B", 10, 0, 1.5, first - timedelta(hours=1)),
    ])  # fmt: skip
    at = AT + timedelta(minutes=10)
    span = (AT, AT + timedelta(hours=2))
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert compressed_chunks(conn, schema, "lmp")[0], "the chunk stays compressed"

        def prices(as_of: datetime | None) -> dict[str, tuple[int, float]]:
            rows = history(conn, schema, "lmp", *span, as_of=as_of, interval_start_utc=at)
            return {r["location_id"]: (r["revision"], r["lmp_usd_per_mwh"]) for r in rows}

        assert prices(None) == {"A": (2, 99.5), "B": (1, 32.0)}
        assert prices(later) == {"A": (2, 99.5), "B": (1, 32.0)}
        assert prices(first) == {"A": (1, 32.0), "B": (1, 32.0)}
        assert prices(first - timedelta(minutes=30)) == {"B": (0, 1.5)}
        assert prices(first - timedelta(hours=2)) == {}
        count = conn.execute(f'SELECT count(*) FROM "{schema}".lmp_revisions').fetchone()
        assert count == (50,)
    # the same batch delivered again changes nothing
    write(settings, schema, "lmp", [lmp_row("A", 10, 2, 99.5, later)])
    with psycopg.connect(settings.postgres_dsn) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".lmp_revisions').fetchone()
        assert count == (50,)


def test_chunk_intervals_follow_the_volume_written(
    timescale_settings: Settings, schema: str
) -> None:
    settings = timescale_settings
    nodes, per_day = 40, 288
    write(settings, schema, "lmp", [
        lmp_row(str(n), 5 * i, 1, price(n, i)) for n in range(nodes) for i in range(2 * per_day)
    ])  # fmt: skip
    with psycopg.connect(settings.postgres_dsn) as conn:
        volume = hypertables.measure(conn, schema, "lmp")
        assert volume is not None
        assert volume.rows_per_day == nodes * per_day
        assert 100 < volume.bytes_per_row < 2000
        # a chunk aimed at 1 MiB holds under a day of this volume (about 3 MB a day)
        target = 1024 * 1024
        wanted = hypertables.choose_chunk_interval(
            volume.rows_per_day, volume.bytes_per_row, target
        )
        assert timedelta(hours=1) <= wanted < timedelta(days=1)
        with conn.transaction():
            changed = hypertables.tune_chunks(conn, schema, target, {"lmp"})
        assert changed == {"lmp": wanted}
        assert hypertables.chunk_interval(conn, schema, "lmp") == wanted
        assert hypertables.chunk_interval(conn, schema, "load") == timedelta(days=30)  # no rows
        edge = conn.execute(
            "SELECT max(range_end) FROM timescaledb_information.chunks"
            " WHERE hypertable_schema = %s AND hypertable_name = 'lmp'",
            (schema,),
        ).fetchone()
    assert edge is not None
    # a day of rows past the chunks there are lands in chunks of the new interval
    first = (edge[0] - AT) // timedelta(minutes=5)
    write(settings, schema, "lmp", [lmp_row("0", 5 * (first + i), 1, 1.0) for i in range(per_day)])
    with psycopg.connect(settings.postgres_dsn) as conn:
        spans = conn.execute(
            "SELECT range_end - range_start FROM timescaledb_information.chunks"
            " WHERE hypertable_schema = %s AND hypertable_name = 'lmp' AND range_start >= %s",
            (schema, edge[0]),
        ).fetchall()
    assert spans
    assert {s for (s,) in spans} == {wanted}


def test_compression_follows_its_setting(timescale_settings: Settings, schema: str) -> None:
    def policies(conn: psycopg.Connection[Any]) -> dict[str, str]:
        rows = conn.execute(
            "SELECT hypertable_name, config->>'compress_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_compression' AND hypertable_schema = %s",
            (schema,),
        )
        return {str(t): str(after) for t, after in rows}

    with psycopg.connect(timescale_settings.postgres_dsn) as conn:
        tables = hypertables.hypertables(conn, schema)
        assert "lmp" in tables
        assert "lmp_superseded" in tables
        assert policies(conn) == {}  # the fixture's migrate: no compression
        migrate(conn, schema)
        assert policies(conn) == dict.fromkeys(tables, "7 days")  # the default
        migrate(conn, schema, Options(compress_after=timedelta(days=3)))
        assert policies(conn) == dict.fromkeys(tables, "3 days")
        migrate(conn, schema, Options(compress_after=None))
        assert policies(conn) == {}
        segments = conn.execute(
            "SELECT attname FROM timescaledb_information.compression_settings"
            " WHERE hypertable_schema = %s AND hypertable_name = 'lmp' AND segmentby_column_index"
            " IS NOT NULL ORDER BY segmentby_column_index",
            (schema,),
        ).fetchall()
        assert [s for (s,) in segments] == list(SERIES)


def test_the_rollups_refresh_as_often_as_the_setting_says(
    timescale_settings: Settings, schema: str
) -> None:
    def schedules(conn: psycopg.Connection[Any]) -> dict[str, timedelta]:
        rows = conn.execute(
            "SELECT hypertable_name, schedule_interval FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_schema = %s",
            (schema,),
        )
        return {str(name): every for name, every in rows}

    names = {r.name for r in ROLLUPS}
    with psycopg.connect(timescale_settings.postgres_dsn) as conn:
        assert schedules(conn) == dict.fromkeys(names, timedelta(minutes=1))
        migrate(conn, schema, Options(compress_after=None, refresh_every=timedelta(minutes=5)))
        assert schedules(conn) == dict.fromkeys(names, timedelta(minutes=5))
