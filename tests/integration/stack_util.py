"""Helpers of the tests on the local stack: LMP records through the real broker, a port that is
taken, the connectors' backfill worker in a group of the test's own."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, Producer

from connectors.backfill import BackfillWorker
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.serde import AvroSerde

LMP = "energy.optibid.market.LmpPublished"
# publishes (key, LmpPublished record) pairs to a topic; returns that topic
PublishLmp = Callable[[list[tuple[bytes, dict[str, Any]]]], TopicSpec]


def lmp_record(location_id: str, minute: int, price: float) -> dict[str, Any]:
    start = datetime(2024, 11, 3, 5, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at_utc": start + timedelta(minutes=5),
        "recorded_at_utc": datetime(2024, 11, 3, 6, 0, 1, 123456, tzinfo=UTC),
        "source": "test",
        "schema_version": 1,
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": location_id,
        "location_name": None,
        "location_type": "HUB",
        "interval_start_utc": start,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": price - 1.25,
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.25,
        "revision": 1,
        "supersedes_revision": None,
        "run_id": "run-1",
        "source_dataset": "lmp_rt_5min",
    }


def produce(settings: Settings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True}
    )
    errors: list[Any] = []
    for key, value in values:
        producer.produce(
            topic, value, key, on_delivery=lambda err, _m: errors.append(err) if err else None
        )
    assert producer.flush(30) == 0
    assert errors == []


def consumer_config(settings: Settings, group: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }


def consume(
    settings: Settings, topic: str, group: str, count: int, deadline_s: float = 30
) -> list[bytes]:
    consumer = Consumer(consumer_config(settings, group))
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            value = None if msg is None or msg.error() else msg.value()
            if value is not None:
                values.append(value)
    finally:
        consumer.close()
    return values


@contextmanager
def listening_port() -> Iterator[int]:
    """A loopback port that a socket of the test's own listens on while the block runs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def backfill_worker(
    settings: Settings,
    serde: AvroSerde,
    catalog: TopicCatalog,
    source: SimulatedSource,
    test_id: str,
) -> BackfillWorker:
    """The connectors' backfill worker serving requests for `source`'s ISO from it, in a
    consumer group of the test's own."""
    return BackfillWorker(
        settings.bootstrap_servers,
        serde,
        catalog,
        {source.iso: source},
        group_id=f"{test_id}-bf",
    )
