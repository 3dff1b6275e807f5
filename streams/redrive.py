"""Re-driving dead letters: after a fix (a wider price bound, a corrected parser, a schema that
now exists), republish a DLQ's original records to their raw topic so the worker takes them again.

Each dead letter carries the original key and value bytes verbatim, so the raw topic gets exactly
what the connector had published, plus headers naming where the record came back from. The
worker treats a redriven record like any other: one that passes now is published (or, already
known, absorbed as a duplicate), one that still fails comes back to the DLQ with its reasons.

Progress is a consumer group per (DLQ topic, reason filter), committed after each flushed batch,
so an interrupted redrive resumes where it stopped and a finished one does not republish the same
dead letters again (`from_start` reads the whole DLQ once more). Republishing twice is harmless:
the worker's revision step absorbs a record it already knows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import Counter as MetricCounter

from schemas import kafka_client
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.errors import DeserializationError
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

REDRIVEN = MetricCounter(
    "optibid_dlq_redriven_total", "Dead letters republished to their raw topic", ["iso", "dataset"]
)
DLQ_SCHEMA = "energy.optibid.ingest.RecordDeadLettered"
HEADER_FROM = "optibid.redrive.from"  # dlq topic:partition:offset of the dead letter
HEADER_ORIGINAL = "optibid.redrive.original"  # where the record was first read
COMMIT_EVERY = 1_000


class RedriveError(RuntimeError):
    """A redrive could not complete; what was committed before it stays redriven."""


@dataclass
class RedriveReport:
    dlq_topic: str
    raw_topic: str
    read: int = 0
    republished: int = 0
    filtered_out: int = 0  # dead letters whose reasons the filter did not select
    unreadable: int = 0  # records of the DLQ topic that are not dead letters
    by_reason: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dlq_topic": self.dlq_topic,
            "raw_topic": self.raw_topic,
            "read": self.read,
            "republished": self.republished,
            "filtered_out": self.filtered_out,
            "unreadable": self.unreadable,
            "by_reason": dict(sorted(self.by_reason.items())),
            "dry_run": self.dry_run,
        }


Progress = Callable[[int, int], None]  # (read so far, total to read)


def redrive_group(dlq_topic: str, reasons: Iterable[str] | None) -> str:
    """The consumer group holding a redrive's progress: one per DLQ topic and reason filter."""
    selected = ",".join(sorted(set(reasons))) if reasons else "*"
    digest = hashlib.sha256(selected.encode()).hexdigest()[:10]
    return f"optibid-dlq-redrive.{dlq_topic}.{digest}"


class Redriver:
    def __init__(self, bootstrap: str, serde: AvroSerde, catalog: TopicCatalog) -> None:
        self.bootstrap = bootstrap
        self.serde = serde
        self.catalog = catalog

    def summary(self, iso: Iso, dataset: Dataset) -> Counter[str]:
        """Dead letters in the DLQ by reason code (all of them, from the start)."""
        counts: Counter[str] = Counter()
        topic = self.catalog.dlq(iso, dataset).name
        consumer = self._consumer(f"optibid-dlq-summary.{topic}")
        try:
            for message in self._read(consumer, topic, from_start=True, progress=None):
                letter = self._letter(message)
                for code in letter["reason_codes"] if letter else ["UNREADABLE"]:
                    counts[code] += 1
        finally:
            consumer.close()
        return counts

    def redrive(
        self,
        iso: Iso,
        dataset: Dataset,
        *,
        reasons: Iterable[str] | None = None,
        dry_run: bool = False,
        from_start: bool = False,
        progress: Progress | None = None,
    ) -> RedriveReport:
        """Republish the dead letters of (iso, dataset) not redriven yet (by this filter)."""
        dlq = self.catalog.dlq(iso, dataset).name
        raw = self.catalog.raw(iso, dataset).name
        selected = frozenset(reasons) if reasons else None
        report = RedriveReport(dlq, raw, dry_run=dry_run)
        consumer = self._consumer(redrive_group(dlq, selected))
        producer = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "compression.type": "lz4",
            }
        )
        failures: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(f"{msg.topic()}: {err.str()}")

        positions: dict[int, int] = {}
        metric = REDRIVEN.labels(iso.value, dataset.value)
        try:
            for message in self._read(consumer, dlq, from_start=from_start, progress=progress):
                report.read += 1
                positions[_partition(message)] = _offset(message) + 1
                letter = self._letter(message)
                if letter is None:
                    report.unreadable += 1
                    continue
                codes = list(letter["reason_codes"])
                if selected is not None and not selected.intersection(codes):
                    report.filtered_out += 1
                    continue
                report.by_reason.update(codes)
                if not dry_run:
                    producer.produce(
                        raw,
                        key=letter["original_key"],
                        value=letter["original_value"],
                        headers=[
                            (HEADER_FROM, f"{dlq}:{message.partition()}:{message.offset()}"),
                            (
                                HEADER_ORIGINAL,
                                f"{letter['original_topic']}:{letter['original_partition']}:"
                                f"{letter['original_offset']}",
                            ),
                        ],
                        on_delivery=delivered,
                    )
                    producer.poll(0)
                    metric.inc()
                report.republished += 1
                if not dry_run and report.read % COMMIT_EVERY == 0:
                    self._commit(consumer, producer, dlq, positions, failures)
            if not dry_run:
                self._commit(consumer, producer, dlq, positions, failures)
        finally:
            consumer.close()
            producer.flush(10)
        log.info("dlq.redriven", **report.as_dict())
        return report

    def _consumer(self, group: str) -> Consumer:
        return Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )

    def _read(
        self, consumer: Consumer, topic: str, *, from_start: bool, progress: Progress | None
    ) -> Iterable[Message]:
        """The records of `topic` from the group's committed offsets (or the start) up to the
        end offsets as they were when the read began (records dead-lettered meanwhile, the
        redriven ones among them, wait for the next redrive)."""
        metadata = consumer.list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise RedriveError(f"DLQ topic {topic} does not exist (run `optibid topics create`)")
        partitions = [TopicPartition(topic, p) for p in sorted(info.partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        start: dict[int, int] = {}
        end: dict[int, int] = {}
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            offset = committed.get(tp.partition, -1)
            start[tp.partition] = low if from_start or offset < 0 else max(offset, low)
            if start[tp.partition] < high:
                end[tp.partition] = high
        total = sum(end[p] - start[p] for p in end)
        if progress:
            progress(0, total)
        if not end:
            return
        consumer.assign(
            [TopicPartition(topic, p, start[p] if start[p] >= 0 else OFFSET_BEGINNING) for p in end]
        )
        done = 0
        while end:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is not None:
                    raise RedriveError(f"reading {topic}: {message.error()}")
                partition, offset = _partition(message), _offset(message)
                if partition not in end or offset >= end[partition]:
                    continue
                done += 1
                yield message
                if offset + 1 >= end[partition]:
                    del end[partition]
            if progress:
                progress(done, total)

    def _letter(self, message: Message) -> dict[str, Any] | None:
        value = message.value()
        if value is None:
            return None
        try:
            name, letter = self.serde.decode(value)
        except DeserializationError as exc:
            log.warning(
                "dlq.unreadable",
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                error=str(exc),
            )
            return None
        if name != DLQ_SCHEMA:
            log.warning("dlq.unexpected_schema", schema=name, offset=message.offset())
            return None
        return letter

    @staticmethod
    def _commit(
        consumer: Consumer,
        producer: Producer,
        topic: str,
        positions: dict[int, int],
        failures: list[str],
    ) -> None:
        """Commit the DLQ positions once everything republished before them is on the broker."""
        remaining = producer.flush(30)
        if remaining or failures:
            raise RedriveError(
                f"republishing to the raw topic failed ({remaining} undelivered"
                f"{', ' + failures[0] if failures else ''}); positions not committed, "
                "run the redrive again"
            )
        if positions:
            consumer.commit(
                offsets=[TopicPartition(topic, p, o) for p, o in positions.items()],
                asynchronous=False,
            )


def _partition(message: Message) -> int:
    partition = message.partition()
    assert partition is not None  # consumed messages always have one
    return partition


def _offset(message: Message) -> int:
    offset = message.offset()
    assert offset is not None
    return offset
