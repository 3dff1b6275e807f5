"""Reading topics to their end in tests (conditions with deadlines, never sleeps)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from optibid.settings import Settings
from schemas.serde import AvroSerde

TRANSIENT = {"NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART"}


def watermarks(consumer: Consumer, topic: str, attempts: int = 5) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of `topic`, retrying a broker's retriable answers
    (a partition whose leader is moving or not elected yet, under load)."""
    for attempt in range(attempts):
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in partitions
            }
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = error is not None and (error.retriable() or error.name() in TRANSIENT)
            if not retriable or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def messages(
    settings: Settings, topic: str, timeout_s: float = 60
) -> Iterator[tuple[int, Message]]:
    """Every record on `topic` up to its current end, partition by partition, each in offset
    order: (partition, message)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        for partition, (low, high) in watermarks(consumer, topic).items():
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            position = low
            deadline = time.monotonic() + timeout_s
            while position < high:
                assert time.monotonic() < deadline, f"{topic}[{partition}] not read to {high}"
                msg = consumer.poll(0.5)
                offset = None if msg is None or msg.error() else msg.offset()
                if msg is None or offset is None:
                    continue
                position = offset + 1
                yield partition, msg
    finally:
        consumer.close()


def read_topic(
    settings: Settings, topic: str, serde: AvroSerde, timeout_s: float = 60
) -> list[tuple[str, dict[str, Any]]]:
    """Every (key, decoded value) on `topic` up to its current end, partition by partition."""
    out: list[tuple[str, dict[str, Any]]] = []
    for _, msg in messages(settings, topic, timeout_s):
        value = msg.value()
        assert value is not None
        out.append(((msg.key() or b"").decode(), serde.decode(value)[1]))
    return out


def count_records(settings: Settings, topic: str, attempts: int = 5) -> int:
    """Records on `topic` (end minus start offsets)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "counter"})
    try:
        return sum(high - low for low, high in watermarks(consumer, topic, attempts).values())
    finally:
        consumer.close()


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
