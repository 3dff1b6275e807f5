"""Retry state survives a restart: a FAILED backfill outcome that the worker took (its offset
committed) but whose retry it never answered is retried again by the restarted worker, from
its `backfill_retries` table restored off the changelog, not from memory."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from schemas.envelope import envelope
from schemas.serde import AvroSerde
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.streams_util import WorkerProcess

WINDOW = datetime(2026, 11, 30, 5, tzinfo=UTC)
KEY = b"PJM|lmp_rt_5min"


def outcome(request_id: str, attempt: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        **envelope(
            event_id=f"done-{request_id}-{attempt}",
            occurred_at_utc=now,
            recorded_at_utc=now,
            source="connector:pjm:backfill",
        ),
        "request_id": request_id,
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "window_start_utc": WINDOW,
        "window_end_utc": WINDOW + timedelta(hours=2),
        "outcome": "FAILED",
        "records_published": 0,
        "reason": "HTTP 503",
        "attempt": attempt,
        "gap_ids": ["gap-a", "gap-b"],
    }


def publish(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, value: dict[str, Any]
) -> None:
    spec = catalog.ingest("backfill_completed")
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(spec.name, serde.encoder(spec.subject, spec.value_schema)(value), KEY)
    assert producer.flush(30) == 0


def attempts_requested(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, request_id: str
) -> list[int]:
    requests = read_topic(settings, catalog.ingest("backfill_requests").name, serde)
    return [v["attempt"] for _, v in requests if v["request_id"] == request_id]


def committed(settings: Settings, group: str, topic: str, partitions: int) -> int:
    """Records of `topic` the consumer group has committed past, over all partitions."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def test_a_retry_queued_before_a_restart_is_sent_after_it(
    worker: WorkerProcess, test_id: str, contracts_ready: TopicCatalog, serde: AvroSerde
) -> None:
    catalog, settings = contracts_ready, Settings()  # the stack's, as contracts_ready made it
    completed = catalog.ingest("backfill_completed")
    worker.start()
    publish(settings, serde, catalog, outcome("req-1", 1))
    wait_until(
        lambda: attempts_requested(settings, serde, catalog, "req-1") == [2],
        120,
        "the retry of the failed first attempt",
    )
    retry = next(
        v
        for _, v in read_topic(settings, catalog.ingest("backfill_requests").name, serde)
        if v["request_id"] == "req-1"
    )
    assert (retry["window_start_utc"], retry["gap_ids"]) == (WINDOW, ["gap-a", "gap-b"])
    # the outcome's offset is committed: a restarted worker does not read it again
    group = f"{test_id}-worker"
    wait_until(
        lambda: committed(settings, group, completed.name, completed.partitions) >= 1,
        60,
        "the outcome's offset committed",
    )
    worker.kill()
    # the local table store goes too: the restart restores the table from its changelog
    shutil.rmtree(settings.state_dir / "streams" / group, ignore_errors=True)

    worker.start()
    wait_until(
        lambda: attempts_requested(settings, serde, catalog, "req-1") == [2, 2],
        180,
        "the retry sent again by the restarted worker",
    )
    assert "backfill.retry_restored" in worker.logs()

    # the restarted worker goes on from the restored attempt: 2 failed -> 3, the last one
    publish(settings, serde, catalog, outcome("req-1", 2))
    wait_until(
        lambda: attempts_requested(settings, serde, catalog, "req-1") == [2, 2, 3],
        120,
        "the third attempt",
    )
