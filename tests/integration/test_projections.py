"""Projectors on the real stack: a live day equals its rebuild row for row; a SIGKILL mid-batch,
a PostgreSQL restart and a Redis outage lose nothing and duplicate nothing; poison events go
to the dead-letter topic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis

from optibid import stack
from optibid.settings import Settings
from optibid.stack.postgres_server import PostgresServer
from optibid.stack.redis_server import RedisServer
from projections import hypertables
from projections.folds import Row
from projections.migrate import drop_schema, migrate, migrations
from projections.models import READ_MODEL_LIST, read_model
from projections.pg import Batch, PgWriter
from projections.query import history, latest_all
from projections.tables import LMP, LOAD, TABLES
from schemas.catalog import TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.projections_util import (
    DAY_START,
    Day,
    ProjectorProcess,
    caught_up,
    checksums,
    full_day,
    lmp_day,
    lmp_rows,
    poison_lmp,
    produce_day,
    stored_offsets,
)
from tests.unit.projections.test_batch import lmp_row


def migrate_uncompressed(conn: psycopg.Connection[Any], schema: str) -> None:
    """`schema` migrated without a compression policy: the tests below write rows of 2024,
    old enough for the policy to take their chunk the moment it runs, and its lock on the
    chunk deadlocks with the writes. The projector meets that by writing the batch again
    (`write_retrying` does the same); these tests check the writes alone."""
    migrate(conn, schema, hypertables.Options(compress_after=None))


@pytest.fixture
def migrated(stack_settings: Settings, db_schema: str) -> str:
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        migrate(conn, db_schema)
    return db_schema


@pytest.fixture
def uncompressed(stack_settings: Settings, db_schema: str) -> str:
    """A migrated schema without a compression policy (for writes checked alone)."""
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        migrate_uncompressed(conn, db_schema)
    return db_schema


def topics_of(catalog: TopicCatalog, model: str) -> list[str]:
    return [s.topic.name for s in read_model(model).sources(catalog)]


def assert_lmp_is(settings: Settings, schema: str, day: Day) -> None:
    """Exactly one row per natural key, each at its highest revision, and every revision kept."""
    got = {key: (revision, price) for key, revision, price in lmp_rows(settings, schema)}
    assert got == day.lmp_latest
    with psycopg.connect(settings.postgres_dsn) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".lmp_revisions').fetchone()
    assert count == (len(day.lmp_revisions),)


def location_revisions(
    conn: psycopg.Connection[Any], schema: str, table: str
) -> list[tuple[str, int]]:
    """(location_id, revision) of each row of an LMP table, in that order."""
    rows = conn.execute(f'SELECT location_id, revision FROM "{schema}".{table} ORDER BY 1, 2')
    return [(str(location), int(revision)) for location, revision in rows]


def test_migrations_are_idempotent_and_match_the_table_specs(
    stack_settings: Settings, db_schema: str
) -> None:
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        assert [m.version for m in migrate(conn, db_schema)] == [m.version for m in migrations()]
        assert migrate(conn, db_schema) == []
        for spec in TABLES.values():
            names = (spec.name, spec.superseded_name, spec.revisions_name)
            for name in names if spec.revisions else (spec.name,):
                columns = conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (db_schema, name),
                ).fetchall()
                assert tuple(c for (c,) in columns) == spec.column_names, name
        kind = conn.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = 'lmp'",
            (db_schema,),
        ).fetchone()
        timescale = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    # native monthly range partitions without TimescaleDB (a hypertable is a plain table)
    assert kind == (("r",) if timescale else ("p",))


def test_upgrading_a_schema_keeps_every_revision_and_only_the_superseded_ones_apart(
    stack_settings: Settings, db_schema: str
) -> None:
    """Migration 2 on a schema whose revisions tables held the current revisions too: they
    become the superseded tables (monthly partitions renamed with them), without the rows the
    tables hold, and the revisions view lists every revision as before."""
    first = migrations()[0]
    columns = ", ".join(LMP.column_names)
    values = ", ".join(["%s"] * len(LMP.column_names))
    current = [lmp_row("A", 0, 2, 11.0), lmp_row("B", 0, 1, 20.0)]
    every = [lmp_row("A", 0, 1, 10.0), *current]
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        with conn.transaction():
            conn.execute(f'SET LOCAL search_path TO "{db_schema}", public')
            conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, checksum text NOT NULL,"
                " applied_at_utc timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute(first.text.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (first.version, first.name, first.checksum),
            )
            native = conn.execute("SELECT to_regclass('lmp_revisions_default')").fetchone()
            if native and native[0] is not None:
                conn.execute(
                    "CREATE TABLE lmp_revisions_p202411 PARTITION OF lmp_revisions"
                    " FOR VALUES FROM ('2024-11-01 00:00Z') TO ('2024-12-01 00:00Z')"
                )
            for table, rows in (("lmp", current), ("lmp_revisions", every)):
                for row in rows:
                    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})", row)
        assert [m.version for m in migrate(conn, db_schema)] == [m.version for m in migrations()][
            1:
        ]

        def listed(table: str) -> list[tuple[str, int]]:
            return location_revisions(conn, db_schema, table)

        assert listed("lmp_superseded") == [("A", 1)]
        assert listed("lmp_revisions") == [("A", 1), ("A", 2), ("B", 1)]
        if native and native[0] is not None:
            renamed = conn.execute(
                "SELECT to_regclass(%s), to_regclass(%s)",
                (f'"{db_schema}".lmp_superseded_p202411', f'"{db_schema}".lmp_superseded_default'),
            ).fetchone()
            assert renamed is not None
            assert None not in renamed
        # the projector writes on: a correction moves the row it replaces apart
        writer = PgWriter(db_schema, "lmp", [LMP])
        writer.attach(conn)
        batch = Batch(rows={"lmp": [lmp_row("B", 0, 2, 21.0)]}, events=1)
        batch.offsets["t", 0] = 1
        writer.write(conn, batch)
        assert listed("lmp_superseded") == [("A", 1), ("B", 1)]
        assert listed("lmp") == [("A", 2), ("B", 2)]


def write_retrying(writer: PgWriter, conn: psycopg.Connection[Any], batch: Batch) -> None:
    """The batch written as the projector writes it: a transaction rolled back by the server
    (a deadlock with one of TimescaleDB's background jobs on the same chunk) is tried again,
    whole (it committed nothing)."""
    for attempt in range(10):
        try:
            writer.write(conn, batch)
            return
        except psycopg.errors.TransactionRollback:
            if attempt == 9:
                raise
            time.sleep(0.2 * (attempt + 1))


def test_batches_copied_straight_in_or_upserted_keep_the_guard_and_every_revision(
    stack_settings: Settings, uncompressed: str
) -> None:
    """New keys go in by COPY; a batch meeting a stored key, or bringing a key twice, falls
    back to the upsert (the revision guard), a redelivered batch changes nothing, and later
    clean batches COPY again. Every revision but the current one is kept once in the
    superseded table; the revisions view lists them all."""
    writer = PgWriter(uncompressed, "lmp", [LMP])
    batches = [
        [lmp_row("A", 0, 1, 10.0), lmp_row("B", 0, 1, 20.0)],
        # a correction, an older revision arriving late, a new key
        [lmp_row("A", 0, 2, 11.0), lmp_row("B", 0, 0, 19.0), lmp_row("C", 0, 1, 30.0)],
        [lmp_row("D", 0, 1, 40.0)],
        [lmp_row("A", 0, 1, 10.0), lmp_row("B", 0, 1, 20.0)],  # the first batch again
        [lmp_row("E", 0, 1, 50.0)],
        # new keys only, one of them twice over and once redelivered, after a clean batch
        [lmp_row("F", 0, 1, 60.0), lmp_row("F", 0, 3, 62.0), lmp_row("F", 0, 1, 60.0)],
        [lmp_row("G", 0, 1, 70.0)],
    ]
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        writer.attach(conn)
        for offset, rows in enumerate(batches, 1):
            batch = Batch(rows={"lmp": rows}, events=len(rows))
            batch.offsets["t", 0] = offset
            write_retrying(writer, conn, batch)
        current = conn.execute(
            f'SELECT location_id, revision, lmp_usd_per_mwh FROM "{uncompressed}".lmp ORDER BY 1'
        ).fetchall()
        revisions = location_revisions(conn, uncompressed, "lmp_revisions")
        superseded = location_revisions(conn, uncompressed, "lmp_superseded")
        offsets = writer.stored_offsets(conn)
    assert current == [
        ("A", 2, 11.0),
        ("B", 1, 20.0),
        ("C", 1, 30.0),
        ("D", 1, 40.0),
        ("E", 1, 50.0),
        ("F", 3, 62.0),
        ("G", 1, 70.0),
    ]
    assert revisions == [
        ("A", 1),
        ("A", 2),
        ("B", 0),
        ("B", 1),
        ("C", 1),
        ("D", 1),
        ("E", 1),
        ("F", 1),
        ("F", 3),
        ("G", 1),
    ]
    assert superseded == [("A", 1), ("B", 0), ("F", 1)]
    assert offsets == {("t", 0): 7}


def load_row(area: str, kind: str, made_hours_before: int | None, revision: int, mw: float) -> Row:
    """A load row of the hour at DAY_START: a forecast made some hours before, or an actual."""
    made = None if made_hours_before is None else DAY_START - timedelta(hours=made_hours_before)
    values = {
        "iso": "CAISO", "area_id": area, "load_kind": kind, "interval_start_utc": DAY_START,
        "interval_minutes": 60, "area_type": "TAC", "load_mw": mw,
        "forecast_made_at_utc": made, "revision": revision, "run_id": "r",
        "source_dataset": "load", "event_id": f"{area}-{kind}-{made_hours_before}-{revision}",
        "occurred_at_utc": DAY_START, "recorded_at_utc": DAY_START, "source": "test",
    }  # fmt: skip
    return tuple(values[c] for c in LOAD.column_names)


@pytest.mark.parametrize("split", [False, True], ids=["one batch", "batch per row"])
def test_forecasts_of_one_interval_at_one_revision_keep_the_latest_whatever_the_order(
    stack_settings: Settings, db_schema: str, split: bool
) -> None:
    """Two forecasts of an hour made at different times can carry the same revision (the
    ISO published both at once, on different partitions): the later forecast is current in
    every arrival order, in one batch or apart, so a rebuild equals the live projection.
    Actuals (no forecast time) keep the plain revision guard."""
    rows = [
        load_row("X", "FORECAST", 72, 5, 100.0),  # made three days before
        load_row("X", "FORECAST", 24, 5, 110.0),  # made a day before: current
        load_row("X", "FORECAST", 48, 5, 105.0),  # two days before: the one superseded kept
        load_row("Y", "ACTUAL", None, 1, 200.0),
        load_row("Y", "ACTUAL", None, 2, 201.0),  # a correction: current
    ]
    results = []
    for number, order in enumerate((rows, list(reversed(rows)))):
        schema = f"{db_schema}_{number}"  # a schema each: no TRUNCATE racing TimescaleDB's jobs
        with psycopg.connect(stack_settings.postgres_dsn) as conn:
            migrate_uncompressed(conn, schema)
            writer = PgWriter(schema, "load", [LOAD])
            writer.attach(conn)
            batches = [[r] for r in order] if split else [order]
            for offset, batch_rows in enumerate(batches, 1):
                batch = Batch(rows={"load": batch_rows}, events=len(batch_rows))
                batch.offsets["t", 0] = offset
                write_retrying(writer, conn, batch)
            current = conn.execute(
                f'SELECT area_id, revision, load_mw FROM "{schema}".load ORDER BY 1'
            ).fetchall()
            superseded = conn.execute(
                f'SELECT area_id, revision, load_mw FROM "{schema}".load_superseded ORDER BY 1'
            ).fetchall()
        drop_schema(stack_settings.postgres_dsn, schema)
        results.append((current, superseded))
    assert results[0][0] == [("X", 5, 110.0), ("Y", 2, 201.0)]
    assert results[0][1] == [("X", 5, 105.0), ("Y", 1, 200.0)]
    assert results[1] == results[0]


def test_live_day_equals_its_rebuild_and_poison_goes_to_the_dlq(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    db_schema: str,
    projector: ProjectorProcess,
) -> None:
    catalog = contracts_ready
    day = full_day()
    lmp_topic = catalog.core("lmp")
    produce_day(
        stack_settings, serde, catalog, day, {"core.market.lmp": poison_lmp(serde, lmp_topic)}
    )
    assert f"{len(migrations())} migrations applied" in projector.run("db", "migrate")
    assert "0 migrations applied" in projector.run("db", "migrate")

    projector.start("all", "--batch-events", "500")

    def projected(model: str) -> Callable[[], bool]:
        return lambda: caught_up(stack_settings, db_schema, model, topics_of(catalog, model))

    for model in READ_MODEL_LIST:
        wait_until(projected(model.name), 90, f"{model.name} projected")
    # the dead-letter projector also reads what the LMP projector dead-lettered
    wait_until(
        lambda: caught_up(
            stack_settings, db_schema, "dead_letters", topics_of(catalog, "dead_letters")
        ),
        30,
        "dead letters projected",
    )
    client = redis.Redis.from_url(stack_settings.redis_dsn)
    last = max(key[3] for key in day.lmp_latest)
    wait_until(
        lambda: len(latest_all(client, db_schema, "lmp")) == 6,
        30,
        "latest prices in redis",
    )
    projector.stop()
    live = checksums(stack_settings, db_schema)

    assert_lmp_is(stack_settings, db_schema, day)
    # the two poison records are dead-lettered with their reasons, the partition went on
    dlq = [v for _, v in read_topic(stack_settings, catalog.projection_dlq("lmp").name, serde)]
    assert sorted(v["reason_codes"][0] for v in dlq) == ["NON_FINITE_VALUE", "UNDECODABLE"]
    assert {v["original_topic"] for v in dlq} == {lmp_topic.name}
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        summary = conn.execute(
            f'SELECT reason_code, records FROM "{db_schema}".dead_letter_summary ORDER BY 1'
        ).fetchall()
        freshness = conn.execute(
            f'SELECT last_run_id, last_day_completeness_share FROM "{db_schema}".freshness'
        ).fetchall()
        gaps = conn.execute(f'SELECT missing_intervals FROM "{db_schema}".gaps').fetchall()
        kpi_revisions = conn.execute(f'SELECT max(revision) FROM "{db_schema}".kpis').fetchone()
        # "as of": before its correction was recorded, a revised interval had its first price
        revised = day.revised[0]
        before = history(
            conn,
            db_schema,
            "lmp",
            revised[3],
            revised[3] + timedelta(minutes=5),
            as_of=day.events["core.market.lmp"][0][1]["recorded_at_utc"],
            location_id=revised[2],
        )
        now = history(
            conn, db_schema, "lmp", revised[3], revised[3] + timedelta(minutes=5),
            location_id=revised[2],
        )  # fmt: skip
    assert summary == [("NON_FINITE_VALUE", 1), ("PRICE_OUT_OF_BOUNDS", 1), ("UNDECODABLE", 1)]
    assert freshness == [("run-26", 0.99)]  # the later run wins
    assert gaps == [(2,)]
    assert kpi_revisions == (2,)
    assert [r["revision"] for r in before] == [1]
    assert [r["revision"] for r in now] == [2]
    assert now[0]["lmp_usd_per_mwh"] == day.lmp_latest[revised][1]
    # Redis holds the latest interval of each series, as PostgreSQL does
    cached = latest_all(client, db_schema, "lmp")
    assert {v["interval_start_utc"] for v in cached.values()} == {last.isoformat()}
    for field, value in cached.items():
        iso, market, location = field.split("|")
        assert value["lmp_usd_per_mwh"] == day.lmp_latest[(iso, market, location, last)][1]
    kpis = latest_all(client, db_schema, "PJM|RT_5MIN|51000")
    assert set(kpis) == {"twap_lmp_usd_per_mwh|HOUR"}

    output = projector.run("replay", "all", timeout_s=150)
    assert "lmp: " in output
    assert checksums(stack_settings, db_schema) == live
    assert all(rows > 0 for rows, _ in live.values()), live


@dataclass(frozen=True)
class LmpProjection:
    """The LMP read model of a test: its topics (contracts registered) and migrated schema."""

    settings: Settings
    serde: AvroSerde
    catalog: TopicCatalog
    schema: str

    def produce(self, day: Day) -> None:
        produce_day(self.settings, self.serde, self.catalog, day)

    def caught_up(self) -> bool:
        return caught_up(self.settings, self.schema, "lmp", topics_of(self.catalog, "lmp"))

    def committed(self) -> int:
        """Events the projector committed, over every partition."""
        return sum(stored_offsets(self.settings, self.schema, "lmp").values())

    def checksums(self) -> dict[str, tuple[int, str]]:
        return checksums(self.settings, self.schema)

    def assert_lmp_is(self, day: Day) -> None:
        assert_lmp_is(self.settings, self.schema, day)


@pytest.fixture
def lmp(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, migrated: str
) -> LmpProjection:
    return LmpProjection(stack_settings, serde, contracts_ready, migrated)


def two_parts(locations: int, intervals: int) -> tuple[Day, Day]:
    """Two LMP days of `intervals` each, the second after the first."""
    first = lmp_day(locations=locations, intervals=intervals, seed=1)
    return first, lmp_day(locations=locations, intervals=intervals, seed=2, first=intervals)


def test_rebuild_from_a_time_keeps_earlier_rows_and_equals_the_live_run(
    lmp: LmpProjection, projector: ProjectorProcess
) -> None:
    day = lmp_day(locations=4, intervals=48)
    lmp.produce(day)
    projector.run("replay", "lmp")
    live = lmp.checksums()
    lmp.assert_lmp_is(day)
    since = DAY_START + timedelta(hours=2)
    projector.run("replay", "lmp", "--from", since.isoformat())
    assert lmp.checksums() == live
    # a rebuild from a time is for time series only, and says so
    with pytest.raises(AssertionError, match="not a time series"):
        projector.run("replay", "freshness", "--from", "2024-11-03")


def test_sigkill_mid_batch_then_restart_ends_with_the_same_rows(
    lmp: LmpProjection, projector: ProjectorProcess
) -> None:
    day = lmp_day(locations=40, intervals=600)  # ~25k events
    lmp.produce(day)
    total = len(day.events["core.market.lmp"])

    projector.start("lmp", "--batch-events", "1000", "--batch-wait-s", "5")
    wait_until(lambda: lmp.committed() > 0, 60, "a first batch committed")
    projector.kill()
    committed = lmp.committed()
    assert 0 < committed < total, "the kill should land mid-stream"

    projector.start("lmp", "--batch-events", "1000")
    wait_until(lmp.caught_up, 90, "lmp projected")
    projector.stop()
    lmp.assert_lmp_is(day)


def test_postgres_stopped_and_restarted_during_a_projection_loses_nothing(
    lmp: LmpProjection, projector: ProjectorProcess, server_settings: Settings
) -> None:
    first, second = two_parts(locations=10, intervals=60)
    lmp.produce(first)
    projector.start("lmp", "--batch-events", "200")
    wait_until(lmp.caught_up, 60, "first part")

    postgres = PostgresServer(server_settings)  # started on the stack's database
    postgres.down()
    try:
        lmp.produce(second)
        wait_until(
            lambda: "postgres unavailable" in projector.logs(), 30, "the projector to notice"
        )
        assert projector.alive()
    finally:
        postgres.up()
        stack.up(server_settings)  # the registry keeps its schemas in PostgreSQL
    wait_until(lmp.caught_up, 90, "second part")
    projector.stop()
    assert "postgres available again" in projector.logs()
    both = Day(
        lmp_latest={**first.lmp_latest, **second.lmp_latest},
        lmp_revisions=first.lmp_revisions | second.lmp_revisions,
    )
    lmp.assert_lmp_is(both)


def test_redis_stopped_during_a_projection_is_caught_up_after_it_returns(
    lmp: LmpProjection, projector: ProjectorProcess
) -> None:
    first, second = two_parts(locations=5, intervals=12)
    client = redis.Redis.from_url(lmp.settings.redis_dsn)

    def cached_starts() -> set[str]:
        return {v["interval_start_utc"] for v in latest_all(client, lmp.schema, "lmp").values()}

    lmp.produce(first)
    projector.start("lmp", "--batch-events", "100")
    first_last = max(k[3] for k in first.lmp_latest).isoformat()
    wait_until(lambda: cached_starts() == {first_last}, 60, "first part in redis")

    redis_server = RedisServer(lmp.settings)
    redis_server.down()
    try:
        lmp.produce(second)
        wait_until(lmp.caught_up, 60, "postgres")
        wait_until(lambda: "redis unavailable" in projector.logs(), 30, "the outage noticed")
    finally:
        redis_server.up()
    second_last = max(k[3] for k in second.lmp_latest)
    wait_until(lambda: cached_starts() == {second_last.isoformat()}, 60, "redis caught up")
    projector.stop()
    for field, value in latest_all(client, lmp.schema, "lmp").items():
        iso, market, location = field.split("|")
        assert (
            value["lmp_usd_per_mwh"] == second.lmp_latest[(iso, market, location, second_last)][1]
        )
    assert "redis available" in projector.logs()
