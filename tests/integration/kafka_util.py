"""Reading topics to their end in tests (conditions with deadlines, never sleeps)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from optibid.settings import Settings
from schemas import offsets
from schemas.serde import AvroSerde


def watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of `topic`, waiting out a leader election."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: offsets.watermarks(consumer, TopicPartition(topic, p)) for p in partitions}


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


def count_records(settings: Settings, topic: str) -> int:
    """Records on `topic` (end minus start offsets)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "counter"})
    try:
        return sum(high - low for low, high in watermarks(consumer, topic).values())
    finally:
        consumer.close()


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
