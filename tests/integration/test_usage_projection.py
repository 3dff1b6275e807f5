"""The usage projector on the real broker and database: usage.windows folded into
`usage_windows`, one row per organisation and window; the same windows handed over again change
nothing; a rebuild (in process and by `optibid project-usage --rebuild --once`) gives the very
same table; an undecodable record is skipped and counted; `usage_reads` sums the rows by range,
UTC day and organisation; a batch read while PostgreSQL is away is written once it is back."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from optibid.settings import Settings
from projections import usage_reads
from projections.migrate import migrate
from projections.usage_models import WINDOW_SCHEMA, UsageProjector
from projections.usage_reads import UsageTotals
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.serde import AvroSerde
from tests.integration.kafka_util import wait_until
from tests.integration.projections_util import ProjectorProcess
from tests.integration.stack_util import produce
from tests.integration.test_identity_projection import PostgresLink

DAY1 = datetime(2026, 11, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
FIELDS = ContractSet().get(WINDOW_SCHEMA).field_names


def window(
    org_id: str, start: datetime, requests: int, rows: int, size: int, dry_runs: int = 0
) -> dict[str, Any]:
    """A UsageWindowClosed of a one-minute window, as the meter sends it."""
    end = start + timedelta(minutes=1)
    values = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}|{start.isoformat()}")),
        "occurred_at_utc": end, "recorded_at_utc": end + timedelta(seconds=11),
        "source": "worker:meter", "schema_version": 1, "org_id": org_id,
        "window_start_utc": start, "window_end_utc": end, "requests": requests, "rows": rows,
        "bytes": size, "dry_runs": dry_runs,
    }  # fmt: skip
    return {name: values[name] for name in FIELDS}


WINDOWS = [
    window("o1", DAY1 + timedelta(hours=9), 3, 300, 3_000),
    window("o1", DAY1 + timedelta(hours=9, minutes=1), 1, 50, 800, dry_runs=2),
    window("o1", DAY1 + timedelta(hours=23, minutes=59), 2, 20, 400),  # counted on day 1
    window("o1", DAY2, 5, 500, 5_000),  # day 2's first window
    window("o2", DAY1 + timedelta(hours=12), 7, 70, 700),
    window("o3", DAY2 + timedelta(hours=1), 0, 0, 0, dry_runs=4),  # dry runs only
]
NOT_A_RECORD = b"\x01not avro at all"


def publish(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, records: list[dict[str, Any]],
    raw: bytes | None = None,
) -> None:  # fmt: skip
    """Windows on usage.windows, keyed by organisation (and, with `raw`, a value that is no
    record)."""
    topic = catalog.usage("windows")
    encode = serde.encoder(topic.subject, topic.value_schema)
    values = [(r["org_id"].encode(), encode(r)) for r in records]
    if raw is not None:
        values.insert(len(values) // 2, (b"o1", raw))
    produce(settings, topic.name, values)


def table(settings: Settings, schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return conn.execute(
            "SELECT org_id, window_start_utc, window_end_utc, requests, rows, bytes, dry_runs,"
            f' event_id, recorded_at_utc FROM "{schema}".usage_windows'
            " ORDER BY org_id, window_start_utc"
        ).fetchall()


def skipped() -> float:
    return REGISTRY.get_sample_value("optibid_usage_projector_skipped_total") or 0.0


@pytest.fixture
def migrated(stack_settings: Settings, db_schema: str) -> str:
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        migrate(conn, db_schema)
    return db_schema


def projector_of(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, schema: str, dsn: str = ""
) -> UsageProjector:
    return UsageProjector(
        settings.bootstrap_servers, serde, catalog, dsn or settings.postgres_dsn, schema
    )


def test_usage_windows_are_projected_once_read_back_and_rebuilt_the_same(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    migrated: str,
    test_id: str,
    tmp_path: Path,
) -> None:
    settings, catalog, schema = stack_settings, contracts_ready, migrated
    skipped_before = skipped()
    # o2's window sent twice (a meter restarted between sending it and recording that)
    publish(settings, serde, catalog, [*WINDOWS, WINDOWS[4]], raw=NOT_A_RECORD)
    projector = projector_of(settings, serde, catalog, schema)
    stop = threading.Event()

    first = projector.run(stop, until_caught_up=True)
    assert (first.records, first.written, first.skipped) == (len(WINDOWS) + 2, len(WINDOWS) + 1, 1)
    assert skipped() - skipped_before == 1
    projected = table(settings, schema)
    assert projected == [
        (w["org_id"], w["window_start_utc"], w["window_end_utc"], w["requests"], w["rows"],
         w["bytes"], w["dry_runs"], w["event_id"], w["recorded_at_utc"])
        for w in sorted(WINDOWS, key=lambda w: (w["org_id"], w["window_start_utc"]))
    ]  # fmt: skip

    with psycopg.connect(settings.postgres_dsn) as conn:
        # o1 over both days; over day 1 only (23:59's window is day 1's, wholly)
        assert usage_reads.totals(conn, schema, "o1", DAY1, DAY2 + timedelta(days=1)) == (
            UsageTotals(requests=11, rows=870, bytes=9_200, dry_runs=2)
        )
        assert usage_reads.totals(conn, schema, "o1", DAY1, DAY2) == UsageTotals(6, 370, 4_200, 2)
        # windows starting in [start, end): 09:01's window starts at the end, so is left out
        nine = DAY1 + timedelta(hours=9)
        assert usage_reads.totals(conn, schema, "o1", nine, nine + timedelta(minutes=1)) == (
            UsageTotals(3, 300, 3_000, 0)
        )
        assert usage_reads.totals(conn, schema, "o9", DAY1, DAY2) == UsageTotals()  # no usage
        assert usage_reads.daily(conn, schema, "o1", DAY1, DAY2 + timedelta(days=1)) == [
            (date(2026, 11, 30), UsageTotals(6, 370, 4_200, 2)),
            (date(2026, 12, 1), UsageTotals(5, 500, 5_000, 0)),
        ]
        assert usage_reads.daily(conn, schema, "o2", DAY2, DAY2 + timedelta(days=1)) == []
        assert usage_reads.by_org(conn, schema, DAY1, DAY2 + timedelta(days=1)) == [
            ("o1", UsageTotals(11, 870, 9_200, 2)),
            ("o2", UsageTotals(7, 70, 700, 0)),
            ("o3", UsageTotals(0, 0, 0, 4)),
        ]
        assert usage_reads.by_org(conn, schema, DAY2, DAY2 + timedelta(days=1)) == [
            ("o1", UsageTotals(5, 500, 5_000, 0)),
            ("o3", UsageTotals(0, 0, 0, 4)),
        ]
        assert usage_reads.metered_through(conn, schema, "o1") == DAY2 + timedelta(minutes=1)
        assert usage_reads.metered_through(conn, schema, "o9") is None

    # handed over again (a producer's retry, a restore): the table does not change
    publish(settings, serde, catalog, WINDOWS)
    again = projector.run(stop, until_caught_up=True)
    assert (again.records, again.written) == (len(WINDOWS), len(WINDOWS))
    assert table(settings, schema) == projected

    # rebuilt from the start: the same table
    rebuilt = projector.rebuild(stop)
    assert (rebuilt.written, rebuilt.skipped) == (2 * len(WINDOWS) + 1, 1)
    assert table(settings, schema) == projected
    projector.close()

    # and by the command: emptied, replayed, stopped once caught up
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".usage_windows WHERE org_id = %s', ("o2",))
    command = ProjectorProcess(test_id, schema, tmp_path)
    output = command.run("project-usage", "--rebuild", "--once", "--metrics-port", "0")
    assert "rebuilt usage:" in output
    assert table(settings, schema) == projected


def test_a_batch_read_while_postgres_is_away_is_written_once_it_is_back(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, migrated: str
) -> None:
    settings, catalog, schema = stack_settings, contracts_ready, migrated
    info = conninfo_to_dict(settings.postgres_dsn)
    link = PostgresLink(str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432))))
    dsn = make_conninfo(settings.postgres_dsn, host="127.0.0.1", port=str(link.port))
    projector = projector_of(settings, serde, catalog, schema, dsn)
    projector.retry_max_s = 0.5

    def retries() -> float:
        return REGISTRY.get_sample_value("optibid_usage_projector_postgres_retries_total") or 0

    before = retries()
    stop = threading.Event()
    live = threading.Thread(target=projector.run, args=(stop,))
    live.start()
    try:
        wait_until(lambda: projector._conn is not None, 30, "the projector's connection")
        link.cut()
        publish(settings, serde, catalog, WINDOWS)
        wait_until(lambda: retries() > before, 30, "the batch write retried")
        link.restore()
        wait_until(lambda: len(table(settings, schema)) == len(WINDOWS), 30, "the windows written")
    finally:
        stop.set()
        live.join(30)
        projector.close()
        link.close()
    assert not live.is_alive()
    assert projector.progress.written == len(WINDOWS)  # each written once, after the outage
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert usage_reads.by_org(conn, schema, DAY1, DAY2 + timedelta(days=1)) == [
            ("o1", UsageTotals(11, 870, 9_200, 2)),
            ("o2", UsageTotals(7, 70, 700, 0)),
            ("o3", UsageTotals(0, 0, 0, 4)),
        ]
