"""Rows/s projected into PostgreSQL for one million LMP events, side by side in one run with
- the ceiling: one bare psycopg binary COPY of the same rows into the same (empty) table;
- the projector: `Projector` for the `lmp` read model from offset zero to the topic's end
  (consume, decode, fold, write with the revision guard and the superseded revisions, offsets;
  no Redis), and its batch writer alone on the same rows already folded;
- a rebuild: `optibid replay lmp` as a process (start-up, truncate, Redis included), wall time.

Each of the three runs `--repeat` times, side by side in each attempt; medians are reported.
Both read-model paths are measured in the same run, attempt by attempt: TimescaleDB hypertables
(with their rollups' invalidation and compression settings, as `db migrate` leaves them) in the
stack's database where it has the extension, and plain monthly partitions in a database of the
same server without it. `ratio` is the projector's throughput over the bare COPY's on the first
path (TimescaleDB where loaded), `partitions_ratio` on the plain path.
Run on the local stack: `python bench/projections.py [--events N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from confluent_kafka import Producer
from psycopg import sql

from bench.common import ROOT, emit, local_stack, median, read_model_paths, run_id
from optibid.settings import Settings
from projections.folds import fold_lmp
from projections.migrate import drop_schema, migrate
from projections.models import read_model
from projections.pg import Batch, PgWriter
from projections.projector import Projector, ProjectorConfig
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import delete_topics, ensure_topics

START = datetime(2024, 6, 3, 4, tzinfo=UTC)
BATCH = 20_000


def lmp_events(count: int) -> list[dict[str, Any]]:
    """`count` canonical LMPs: 5-minute intervals of a day, across as many nodes as needed."""
    locations = max(1, count // 288)
    events = []
    recorded = START + timedelta(days=1)
    for i in range(count):
        interval, node = divmod(i, locations)
        start = START + timedelta(minutes=5 * interval)
        price = 20.0 + (i % 997) / 10
        events.append(
            {
                "event_id": str(uuid.UUID(int=i)),
                "occurred_at_utc": start,
                "recorded_at_utc": recorded,
                "source": "bench",
                "schema_version": 1,
                "iso": "PJM",
                "market": "RT_5MIN",
                "location_id": str(100_000 + node),
                "location_name": f"NODE {node}",
                "location_type": "NODE",
                "interval_start_utc": start,
                "interval_minutes": 5,
                "lmp_usd_per_mwh": price,
                "energy_usd_per_mwh": price - 1.0,
                "congestion_usd_per_mwh": 0.75,
                "loss_usd_per_mwh": 0.25,
                "revision": 1,
                "supersedes_revision": None,
                "run_id": "bench",
                "source_dataset": "lmp_rt_5min",
            }
        )
    return events


def produce(settings: Settings, serde: AvroSerde, topic: Any, events: list[dict[str, Any]]) -> None:
    encode = serde.encoder(topic.subject, topic.value_schema)
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 50,
            "compression.type": "lz4",
            "log_level": 3,
        }
    )
    for event in events:
        key = f"PJM|RT_5MIN|{event['location_id']}".encode()
        while True:
            try:
                producer.produce(topic.name, encode(event), key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("records left unsent")


def bare_copy(settings: Settings, schema: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds for one COPY of `rows` into the empty `lmp` table (partitions already there)."""
    spec = read_model("lmp").tables[0]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in spec.column_names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(schema, "lmp"), columns
    )
    with psycopg.connect(settings.postgres_dsn) as conn:
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(list(spec.types))
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - began


def writer_only(settings: Settings, schema: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds for the projector's batch writer alone over the rows, in batches of BATCH."""
    spec = read_model("lmp").tables[0]
    writer = PgWriter(schema, "lmp-bench", [spec])
    with psycopg.connect(settings.postgres_dsn) as conn:
        writer.attach(conn)
        began = time.perf_counter()
        for first in range(0, len(rows), BATCH):
            batch = Batch(rows={"lmp": rows[first : first + BATCH]}, events=BATCH)
            batch.offsets["bench", 0] = first + BATCH
            writer.write(conn, batch)
        return time.perf_counter() - began


def reset(settings: Settings, schema: str) -> None:
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        for table in ("lmp", "lmp_superseded", "projection_offsets"):
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema, table)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(schema, "lmp")))


@dataclass
class ReadPath:
    """One read-model path's settings, schema and timings."""

    name: str
    settings: Settings
    schema: str
    ceiling_s: list[float] = field(default_factory=list)
    writer_s: list[float] = field(default_factory=list)
    projector_s: list[float] = field(default_factory=list)
    rebuild_s: float = 0.0

    def figures(self, rows: int) -> dict[str, Any]:
        ceiling = rows / median(self.ceiling_s)
        projected = rows / median(self.projector_s)
        writer = rows / median(self.writer_s)
        return {
            "ceiling_copy_rows_per_s": round(ceiling),
            "projector_rows_per_s": round(projected),
            "ratio": round(projected / ceiling, 3),
            "writer_rows_per_s": round(writer),
            "writer_ratio": round(writer / ceiling, 3),
            "rebuild_s": round(self.rebuild_s, 1),
            "rebuild_events_per_s": round(rows / self.rebuild_s),
        }


def attempt(
    path: ReadPath, rows: list[tuple[Any, ...]], catalog: TopicCatalog, serde: AvroSerde
) -> None:
    """One run of each contender on `path`, side by side."""
    settings, schema = path.settings, path.schema
    reset(settings, schema)
    path.ceiling_s.append(bare_copy(settings, schema, rows))
    reset(settings, schema)
    path.writer_s.append(writer_only(settings, schema, rows))
    reset(settings, schema)
    config = ProjectorConfig(
        bootstrap=settings.bootstrap_servers,
        postgres_dsn=settings.postgres_dsn,
        db_schema=schema,
        redis_url=None,
        batch_max_events=BATCH,
        batch_max_wait_s=1.0,
    )
    projector = Projector(read_model("lmp"), catalog, serde, config, use_redis=False)
    began = time.perf_counter()
    progress = projector.run(threading.Event(), until_end=True)
    path.projector_s.append(time.perf_counter() - began)
    if progress.rows != len(rows):
        raise RuntimeError(f"projector upserted {progress.rows} rows, expected {len(rows)}")
    print(
        f"  {path.name}: bare COPY {len(rows) / path.ceiling_s[-1]:,.0f} rows/s,"
        f" batch writer {len(rows) / path.writer_s[-1]:,.0f} rows/s,"
        f" projector {len(rows) / path.projector_s[-1]:,.0f} rows/s"
        f" (ratio {path.ceiling_s[-1] / path.projector_s[-1]:.3f})",
        flush=True,
    )


def rebuild(path: ReadPath, prefix: str, rows: int) -> None:
    """`optibid replay lmp` as a process on `path`, timed."""
    reset(path.settings, path.schema)
    env = {
        **os.environ,
        "OPTIBID_TOPIC_PREFIX": f"{prefix}.",
        "OPTIBID_DB_SCHEMA": path.schema,
        "OPTIBID_POSTGRES_DB": path.settings.postgres_db,
    }
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "optibid", "replay", "lmp"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path.rebuild_s = time.perf_counter() - began
    with psycopg.connect(path.settings.postgres_dsn) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(path.schema, "lmp"))
        ).fetchone()
    if count != (rows,):
        raise RuntimeError(f"{path.name}: rebuild left {count} rows, expected {rows}")
    print(f"  {path.name}: rebuild (optibid replay lmp) {path.rebuild_s:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="attempts of each contender")
    args = parser.parse_args()
    settings = local_stack()
    prefix = run_id()
    catalog = TopicCatalog(f"{prefix}.")
    topics = [catalog.core("lmp"), catalog.projection_dlq("lmp")]
    ensure_topics(settings.bootstrap_servers, topics)
    registry = RegistryClient(settings.schema_registry_url)
    register_all(registry, catalog, ContractSet())
    serde = AvroSerde(registry)
    paths = [ReadPath(name, s, prefix) for name, s in read_model_paths(settings).items()]
    try:
        for path in paths:
            with psycopg.connect(path.settings.postgres_dsn) as conn:
                migrate(conn, path.schema)
        print(f"producing {args.events:,} LMP events ...", flush=True)
        events = lmp_events(args.events)
        produce(settings, serde, topics[0], events)
        rows = [fold_lmp(e, topics[0].name) for e in events]
        del events
        # the benchmark's own million rows are no garbage for the contenders to scan
        gc.collect()
        gc.freeze()
        for path in paths:
            # partitions exist before any contender runs, so none pays for creating them
            writer_only(path.settings, path.schema, rows[:1])
        # each attempt runs every contender on every path side by side, so a busy spell of a
        # shared machine weighs on one attempt of each rather than on one; medians are reported
        for number in range(args.repeat):
            print(f"run {number + 1}:", flush=True)
            for path in paths:
                attempt(path, rows, catalog, serde)
        for path in paths:
            rebuild(path, prefix, len(rows))
        figures = {p.name: p.figures(len(rows)) for p in paths}
        first = figures[paths[0].name]
        emit(
            {
                "events": len(rows),
                "path": paths[0].name,
                **first,
                "partitions_ratio": figures["partitions"]["ratio"],
                "paths": figures,
                "repeat": args.repeat,
                "batch_events": BATCH,
            }
        )
    finally:
        delete_topics(settings.bootstrap_servers, [t.name for t in catalog])
        for subject in registry.subjects():
            if subject.startswith(f"{prefix}."):
                registry.delete_subject(subject)
        for path in paths:
            drop_schema(path.settings.postgres_dsn, path.schema)
        registry.close()


if __name__ == "__main__":
    main()
