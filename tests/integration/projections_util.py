"""A simulated day of canonical events for the projectors, produced with the real serde, and
helpers to run `optibid project` / `optibid replay` as real processes."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer

from optibid.settings import Settings
from projections import hypertables
from projections.hypertables import ROLLUPS
from projections.query import table_checksum
from projections.tables import TABLES
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.serde import AvroSerde
from tests.integration.kafka_util import watermarks
from tests.integration.streams_util import PROJECT, ChildProcess, free_port

READ_TABLES = sorted(
    {name for spec in TABLES.values() for name in (spec.name, spec.revisions_name) if name}
    - {f"{s.name}_revisions" for s in TABLES.values() if not s.revisions}
)
DAY_START = datetime(2024, 11, 3, 4, tzinfo=UTC)  # PJM's 25-hour fall-back day, local midnight
DAY_HOURS = 25
RECORDED = datetime(2024, 11, 4, 6, tzinfo=UTC)
LMP_KEY = tuple[str, str, str, datetime]


def _envelope(rng: random.Random, at: datetime, source: str = "worker:normalise") -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "occurred_at_utc": at,
        "recorded_at_utc": at,
        "source": source,
        "schema_version": 1,
    }


def lmp_event(
    rng: random.Random, location: str, start: datetime, revision: int, price: float
) -> dict[str, Any]:
    recorded = RECORDED + timedelta(minutes=revision)
    return {
        **_envelope(rng, recorded),
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": location,
        "location_name": f"NODE {location}",
        "location_type": "NODE",
        "interval_start_utc": start,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": round(price - 1.5, 4),
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.5,
        "revision": revision,
        "supersedes_revision": revision - 1 if revision > 1 else None,
        "run_id": "run-sim",
        "source_dataset": "lmp_rt_5min",
    }


@dataclass
class Day:
    """Events per topic (base name), in production order, and what the read models must hold."""

    events: dict[str, list[tuple[bytes, dict[str, Any]]]] = field(default_factory=dict)
    poison: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (topic, key, value)
    lmp_latest: dict[LMP_KEY, tuple[int, float]] = field(default_factory=dict)
    lmp_revisions: set[tuple[LMP_KEY, int]] = field(default_factory=set)
    revised: list[LMP_KEY] = field(default_factory=list)

    def add(self, topic: str, key: str, event: dict[str, Any]) -> None:
        self.events.setdefault(topic, []).append((key.encode(), event))

    def lmp(self, event: dict[str, Any]) -> None:
        key = (event["iso"], event["market"], event["location_id"], event["interval_start_utc"])
        self.add("core.market.lmp", "|".join(key[:3]), event)
        self.lmp_revisions.add((key, event["revision"]))
        held = self.lmp_latest.get(key)
        if held is None or event["revision"] > held[0]:
            self.lmp_latest[key] = (event["revision"], event["lmp_usd_per_mwh"])


def lmp_day(locations: int, intervals: int, seed: int = 7, first: int = 0) -> Day:
    """LMPs of `locations` PJM nodes over `intervals` 5-minute intervals from DAY_START (+
    `first` intervals): 3% revised (a second revision, sometimes followed by a stale copy of
    the first), 1% delivered twice."""
    rng = random.Random(seed)
    day = Day()
    for i in range(first, first + intervals):
        start = DAY_START + timedelta(minutes=5 * i)
        for n in range(locations):
            location = str(51000 + n)
            price = round(rng.uniform(-20, 120), 2)
            event = lmp_event(rng, location, start, 1, price)
            day.lmp(event)
            if rng.random() < 0.01:
                day.lmp(dict(event))  # a redelivery: the same event again
            if rng.random() < 0.03:
                day.lmp(lmp_event(rng, location, start, 2, round(price + 7.25, 2)))
                day.revised.append(("PJM", "RT_5MIN", location, start))
                if rng.random() < 0.3:
                    day.lmp(dict(event))  # the first revision again, after the second
    return day


def full_day(locations: int = 6, seed: int = 11) -> Day:
    """Every kind of event a projector reads, over one day, plus two poison LMP records."""
    day = lmp_day(locations, DAY_HOURS * 12, seed=seed)
    rng = random.Random(seed)
    for n in range(locations):
        location = str(51000 + n)
        day.add(
            "core.market.locations",
            f"PJM|RT_5MIN|{location}",
            {
                **_envelope(rng, DAY_START),
                "iso": "PJM",
                "market": "RT_5MIN",
                "location_id": location,
                "location_name": f"NODE {location}",
                "location_type": "NODE",
                "first_interval_start_utc": DAY_START,
                "source_dataset": "lmp_rt_5min",
            },
        )
    for h in range(DAY_HOURS):
        start = DAY_START + timedelta(hours=h)
        for area in ("RTO", "MIDATL"):
            for revision in (1, 2) if h % 7 == 0 else (1,):
                day.add(
                    "core.market.load",
                    f"PJM|{area}",
                    {
                        **_envelope(rng, start + timedelta(hours=1)),
                        "iso": "PJM",
                        "area_id": area,
                        "area_type": "RTO" if area == "RTO" else "ZONE",
                        "interval_start_utc": start,
                        "interval_minutes": 60,
                        "load_mw": round(rng.uniform(60_000, 90_000), 1),
                        "load_kind": "ACTUAL",
                        "forecast_made_at_utc": None,
                        "revision": revision,
                        "run_id": "run-sim",
                        "source_dataset": "load",
                    },
                )
        for fuel, canonical in (("Gas", "GAS"), ("Nuclear", "NUCLEAR"), ("Wind", "WIND")):
            day.add(
                "core.market.fuel_mix",
                f"PJM|{fuel}",
                {
                    **_envelope(rng, start + timedelta(hours=1)),
                    "iso": "PJM",
                    "interval_start_utc": start,
                    "interval_minutes": 60,
                    "fuel_type": canonical,
                    "fuel_type_native": fuel,
                    "generation_mw": round(rng.uniform(1_000, 30_000), 1),
                    "revision": 1,
                    "run_id": "run-sim",
                    "source_dataset": "fuel_mix",
                },
            )
        day.add(
            "core.market.as_prices",
            "PJM|DA_HOURLY|RTO|RegA",
            {
                **_envelope(rng, start),
                "iso": "PJM",
                "market": "DA_HOURLY",
                "interval_start_utc": start,
                "interval_minutes": 60,
                "product": "REG",
                "product_native": "RegA",
                "region_id": "RTO",
                "price_usd_per_mw_hour": round(rng.uniform(5, 40), 2),
                "revision": 1,
                "run_id": "run-sim",
                "source_dataset": "as_prices",
            },
        )
        for n in range(locations):
            location = str(51000 + n)
            for revision in (1, 2) if (h + n) % 5 == 0 else (1,):
                day.add(
                    "kpi.lmp_hourly",
                    f"PJM|RT_5MIN|{location}",
                    {
                        **_envelope(rng, start + timedelta(hours=1)),
                        "iso": "PJM",
                        "market": "RT_5MIN",
                        "location_id": location,
                        "kpi": "twap_lmp_usd_per_mwh",
                        "window_kind": "HOUR",
                        "window_start_utc": start,
                        "window_end_utc": start + timedelta(hours=1),
                        "value": round(rng.uniform(10, 90), 3),
                        "unit": "usd_per_mwh",
                        "intervals_received": 12,
                        "intervals_expected": 12,
                        "revision": revision,
                    },
                )
    gap_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "gap-1"))
    for announced in (DAY_START + timedelta(hours=2), DAY_START + timedelta(hours=3)):
        day.add(
            "ingest.gaps",
            "PJM|lmp_rt_5min",
            {
                **_envelope(rng, announced),
                "gap_id": gap_id,
                "iso": "PJM",
                "dataset": "lmp_rt_5min",
                "series_key": "PJM|RT_5MIN|51000",
                "missing_start_utc": DAY_START + timedelta(hours=1),
                "missing_end_utc": DAY_START + timedelta(hours=1, minutes=10),
                "interval_minutes": 5,
                "missing_intervals": 2,
                "lateness_seconds": 900,
            },
        )
    # the backfill request for the gap, and its outcome
    backfill = {
        "request_id": "req-1",
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "window_start_utc": DAY_START + timedelta(hours=1),
        "window_end_utc": DAY_START + timedelta(hours=2),
    }
    day.add(
        "ingest.backfill_requests",
        "PJM|lmp_rt_5min",
        {
            **_envelope(rng, DAY_START + timedelta(hours=2)),
            **backfill,
            "gap_ids": [gap_id],
            "attempt": 1,
            "reason": "gap",
        },
    )
    day.add(
        "ingest.backfill_completed",
        "PJM|lmp_rt_5min",
        {
            **_envelope(rng, DAY_START + timedelta(hours=3)),
            **backfill,
            "outcome": "FILLED",
            "records_published": 24,
            "reason": None,
        },
    )
    # 51004 retired and came back; its return is sent before its retirement (the later change
    # in event time must win). 51005 stays retired.
    for location, status, at in (
        ("51004", "ACTIVE", DAY_START + timedelta(hours=30)),
        ("51004", "RETIRED", DAY_START + timedelta(hours=25)),
        ("51005", "RETIRED", DAY_START + timedelta(hours=25)),
    ):
        day.add(
            "ingest.series_status",
            f"PJM|lmp_rt_5min|PJM|RT_5MIN|{location}",
            {
                **_envelope(rng, at, "worker:gaps"),
                "iso": "PJM",
                "dataset": "lmp_rt_5min",
                "series_key": f"PJM|RT_5MIN|{location}",
                "status": status,
                "last_interval_start_utc": DAY_START + timedelta(hours=1),
                "interval_minutes": 5,
                "retirement_age_seconds": 86_400,
            },
        )
    for hour in (20, 26):
        finished = DAY_START + timedelta(hours=hour)
        run_id = f"run-{hour}"
        day.add(
            "ingest.connector_runs",
            "PJM|lmp_rt_5min",
            {
                **_envelope(rng, finished),
                "run_id": run_id,
                "iso": "PJM",
                "dataset": "lmp_rt_5min",
                "mode": "SIMULATE",
                "started_at_utc": finished - timedelta(seconds=3),
                "finished_at_utc": finished,
                "rows_published": 1200,
                "first_interval_start_utc": DAY_START,
                "last_interval_end_utc": finished - timedelta(minutes=5),
                "publish_latency_seconds": 300.0,
                "error_count": 0,
                "errors": [],
            },
        )
        day.add(
            "ingest.freshness",
            "PJM|lmp_rt_5min",
            {
                **_envelope(rng, finished),
                "iso": "PJM",
                "dataset": "lmp_rt_5min",
                "latest_interval_end_utc": finished - timedelta(minutes=5),
                "arrival_latency_seconds": 300.0,
                "last_run_id": run_id,
                "last_run_finished_utc": finished,
                "rows_last_run": 1200,
                "errors_last_run": 0,
                "last_day_completeness_share": 0.99 if hour == 26 else None,
            },
        )
    day.add(
        "dlq.pjm.lmp_rt_5min",
        "PJM|RT_5MIN|51000",
        {
            **_envelope(rng, DAY_START, "worker:validate"),
            "iso": "PJM",
            "dataset": "lmp_rt_5min",
            "reason_codes": ["PRICE_OUT_OF_BOUNDS"],
            "reasons": ["lmp_usd_per_mwh 99999.0 is above 5000.0"],
            "original_topic": "raw.pjm.lmp_rt_5min",
            "original_partition": 0,
            "original_offset": 17,
            "original_key": b"PJM|RT_5MIN|51000",
            "original_value": b"\x00\x00\x00\x00\x01abc",
            "original_timestamp_utc": DAY_START,
        },
    )
    return day


def poison_lmp(serde: AvroSerde, topic: TopicSpec) -> list[tuple[bytes, bytes]]:
    """Two LMP records no projector can fold: bytes that are not Avro, and a NaN price."""
    encode = serde.encoder(topic.subject, topic.value_schema)
    nan_price = lmp_event(random.Random(3), "59999", DAY_START, 1, math.nan)
    key = b"PJM|RT_5MIN|59999"
    return [(key, b"\x00\x00\x00\x7f\xffnot avro"), (key, encode(nan_price))]


def produce_day(
    settings: Settings,
    serde: AvroSerde,
    catalog: TopicCatalog,
    day: Day,
    extra: dict[str, list[tuple[bytes, bytes]]] | None = None,
) -> None:
    """Every event of `day` on its topic under the catalog's prefix (and `extra` raw records)."""
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    specs = {t.name.removeprefix(catalog.prefix): t for t in catalog}
    for base, events in day.events.items():
        topic = specs[base]
        encode = serde.encoder(topic.subject, topic.value_schema)
        for key, event in events:
            producer.produce(topic.name, encode(event), key)
            producer.poll(0)
    for base, records in (extra or {}).items():
        for key, value in records:
            producer.produce(specs[base].name, value, key)
    assert producer.flush(30) == 0


def topic_ends(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "ends"})
    try:
        ends = {}
        for topic in topics:
            for partition, (_, high) in watermarks(consumer, topic).items():
                ends[topic, partition] = high
        return ends
    finally:
        consumer.close()


def stored_offsets(settings: Settings, schema: str, read_model: str) -> dict[tuple[str, int], int]:
    with psycopg.connect(settings.postgres_dsn, connect_timeout=3) as conn:
        rows = conn.execute(
            f'SELECT topic, partition, next_offset FROM "{schema}".projection_offsets'
            " WHERE read_model = %s",
            (read_model,),
        ).fetchall()
    return {(t, p): o for t, p, o in rows}


def caught_up(settings: Settings, schema: str, read_model: str, topics: list[str]) -> bool:
    """Whether the read model's stored offsets reach the current end of every partition."""
    try:
        stored = stored_offsets(settings, schema, read_model)
    except psycopg.OperationalError:
        return False
    return all(
        stored.get(tp, 0) >= end for tp, end in topic_ends(settings, topics).items() if end > 0
    )


class ProjectorProcess(ChildProcess):
    """`optibid project MODEL` (or `optibid replay`) under the test's topic prefix and schema."""

    def __init__(self, test_id: str, schema: str, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "OPTIBID_TOPIC_PREFIX": f"{test_id}.",
            "OPTIBID_DB_SCHEMA": schema,
            "OPTIBID_LOG_FORMAT": "json",
        }
        super().__init__(log_dir / f"{test_id}-projector.log")

    def run(self, *args: str, timeout_s: float = 120) -> str:
        """Run a command to its end; returns its output (stderr included)."""
        result = subprocess.run(
            [sys.executable, "-m", "optibid", *args],
            env=self.env,
            cwd=PROJECT,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        output = (result.stdout + result.stderr).decode()
        assert result.returncode == 0, f"optibid {' '.join(args)} failed:\n{output[-3000:]}"
        return output

    def start(self, model: str, *args: str) -> None:
        argv = [
            sys.executable, "-m", "optibid", "project", model,
            "--metrics-port", str(free_port()), *args,
        ]  # fmt: skip
        self.spawn(argv, self.env)


def checksums(settings: Settings, schema: str) -> dict[str, tuple[int, str]]:
    """(rows, md5) of every read-model table and revisions view of `schema`."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        return {table: table_checksum(conn, schema, table) for table in READ_TABLES}


def refresh_rollup(settings: Settings, schema: str, view: str) -> None:
    """Refresh a rollup whole now."""
    rollup = next(r for r in ROLLUPS if r.name == view)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        hypertables.refresh(conn, schema, rollup)


def lmp_rows(settings: Settings, schema: str) -> Iterator[tuple[LMP_KEY, int, float]]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = conn.execute(
            f"SELECT iso, market, location_id, interval_start_utc, revision, lmp_usd_per_mwh"
            f' FROM "{schema}".lmp'
        ).fetchall()
    for iso, market, location, start, revision, price in rows:
        yield (iso, market, location, start), revision, price
