"""Publishing: parsed records to `raw.<iso>.<dataset>` as Avro through the registry, keyed per
series, with an idempotent producer; a checkpoint per (ISO, dataset, stream); a run event per run.

Order of effects, and why nothing is lost: records are produced and flushed (every delivery
acknowledged) before the checkpoint is written. A connector killed in between publishes the
same response again on restart; those records carry the same deterministic event ids, which the
idempotent downstream absorbs. A broker that goes away makes the flush fail: no checkpoint is
taken, and the run reports the error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from connectors.errors import ConnectorError, NoDataError, ParseError
from connectors.events import RAW_SCHEMA_OF_KIND, raw_event
from connectors.parsing import Parser, parser_for
from connectors.records import Record, interval_end
from connectors.simulate import Payload
from schemas import kafka_client
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.envelope import envelope
from schemas.offsets import watermarks
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

RECORDS = Counter(
    "optibid_connector_records_total", "Records published to raw topics", ["iso", "dataset"]
)
RESPONSES = Counter(
    "optibid_connector_responses_total",
    "Responses handled, by outcome (published, no_data, rejected)",
    ["iso", "dataset", "outcome"],
)
OUTCOMES = ("published", "no_data", "rejected")
LATENCY = Histogram(
    "optibid_connector_publish_latency_seconds",
    "Seconds from an interval's end to its publish (freshness)",
    ["iso", "dataset"],
    buckets=(30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 604800),
)
LAST_PUBLISH = Gauge(
    "optibid_connector_last_publish_timestamp_seconds",
    "When records were last published",
    ["iso", "dataset"],
)
MAX_ERRORS_KEPT = 100


class PublishError(ConnectorError):
    """The broker did not acknowledge every record; nothing was checkpointed."""


@dataclass
class RunStats:
    run_id: str
    mode: str
    started_at_utc: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows: int = 0
    responses: int = 0
    first_start_utc: datetime | None = None
    last_end_utc: datetime | None = None
    errors: list[str] = field(default_factory=list)
    no_data: int = 0

    def add(self, records: Sequence[Record]) -> None:
        self.rows += len(records)
        for record in records:
            start, end = record.interval_start_utc, interval_end(record)
            if self.first_start_utc is None or start < self.first_start_utc:
                self.first_start_utc = start
            if self.last_end_utc is None or end > self.last_end_utc:
                self.last_end_utc = end

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)
        else:
            self.errors[-1] = f"... and more; last: {message}"


@dataclass(frozen=True)
class Checkpoint:
    stream: str
    position_utc: datetime | None
    last_source: str | None


class ConnectorRuntime:
    """Publishes one (ISO, dataset): raw records, run events and checkpoints."""

    def __init__(
        self,
        bootstrap: str,
        serde: AvroSerde,
        catalog: TopicCatalog,
        iso: Iso,
        dataset: Dataset,
        *,
        flush_timeout_s: float = 60.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.iso = iso
        self.dataset = dataset
        self.source = f"connector:{iso.value}"
        for outcome in OUTCOMES:  # every outcome a series from the start, rejected files at 0
            RESPONSES.labels(iso.value, dataset.value, outcome)
        self.parser: Parser = parser_for(iso, dataset)
        self.flush_timeout_s = flush_timeout_s
        self.raw_topic = catalog.raw(iso, dataset)
        self.runs_topic = catalog.ingest("connector_runs")
        self.checkpoint_topic = catalog.ingest("connector_checkpoints")
        self.serde = serde
        self._encode_raw = serde.encoder(self.raw_topic.subject, self.raw_topic.value_schema)
        self._encode_run = serde.encoder(self.runs_topic.subject, self.runs_topic.value_schema)
        self._encode_checkpoint = serde.encoder(
            self.checkpoint_topic.subject, self.checkpoint_topic.value_schema
        )
        expected = RAW_SCHEMA_OF_KIND
        if self.raw_topic.value_schema not in expected.values():
            raise ConnectorError(f"{self.raw_topic.name} carries {self.raw_topic.value_schema}")
        self.producer = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
                "message.timeout.ms": int(flush_timeout_s * 1000),
                "log_level": 3,
            }
        )
        self._failures: list[str] = []
        # the checkpoints this runtime read or wrote: it is their only writer, so the topic
        # is read once per stream, not at every poll (it grows until compaction)
        self._checkpoints: dict[str, Checkpoint | None] = {}

    # -- publishing ---------------------------------------------------------------------

    def _on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self._failures.append(str(err))

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key.encode(), on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.5)  # the local queue is full: let deliveries drain

    def _flush(self, what: str) -> None:
        remaining = self.producer.flush(self.flush_timeout_s)
        failures, self._failures = self._failures, []
        if remaining or failures:
            detail = failures[0] if failures else f"{remaining} still queued"
            raise PublishError(
                f"{what}: the broker at {self.bootstrap} did not acknowledge every record"
                f" ({detail}); nothing was checkpointed, the next run publishes it again"
            )

    def emit(self, topic: str, key: str, value: bytes, what: str) -> None:
        """Produce one event and wait for its acknowledgement."""
        self._produce(topic, key, value)
        self._flush(what)

    def publish(self, records: Sequence[Record], run_id: str) -> int:
        """Produce `records` to the raw topic and wait until every one is acknowledged."""
        now = datetime.now(UTC)
        topic = self.raw_topic.name
        for record in records:
            value = self._encode_raw(raw_event(record, self.dataset, run_id, now, self.source))
            self._produce(topic, record.key, value)
        self._flush(f"{len(records)} records to {topic}")
        if records:
            labels = (self.iso.value, self.dataset.value)
            RECORDS.labels(*labels).inc(len(records))
            LAST_PUBLISH.labels(*labels).set(time.time())
            latest_end = max(interval_end(r) for r in records)
            LATENCY.labels(*labels).observe(max(0.0, (now - latest_end).total_seconds()))
        return len(records)

    def handle_payload(
        self,
        name: str,
        data: bytes,
        stats: RunStats,
        before_publish: Callable[[Sequence[Record]], None] | None = None,
    ) -> Sequence[Record]:
        """Parse one response and publish it whole; a response that does not parse publishes
        nothing and is reported in the run's errors."""
        labels = (self.iso.value, self.dataset.value)
        stats.responses += 1
        try:
            records = self.parser(data, name)
        except NoDataError as exc:
            stats.no_data += 1
            RESPONSES.labels(*labels, "no_data").inc()
            log.info("connector.no_data", source=name, detail=str(exc))
            return []
        except ParseError as exc:
            stats.error(str(exc))
            RESPONSES.labels(*labels, "rejected").inc()
            log.warning("connector.rejected", source=name, error=str(exc))
            return []
        if before_publish:
            before_publish(records)
        self.publish(records, stats.run_id)
        stats.add(records)
        RESPONSES.labels(*labels, "published").inc()
        return records

    def complete_run(self, stats: RunStats) -> dict[str, Any]:
        """Emit the ConnectorRunCompleted event of a run (rows, intervals, errors, latency)."""
        finished = datetime.now(UTC)
        latency = (finished - stats.last_end_utc).total_seconds() if stats.last_end_utc else None
        event = {
            **envelope(
                event_id=stats.run_id,
                occurred_at_utc=finished,
                recorded_at_utc=finished,
                source=self.source,
            ),
            "run_id": stats.run_id,
            "iso": self.iso.wire,
            "dataset": self.dataset.value,
            "mode": stats.mode,
            "started_at_utc": stats.started_at_utc,
            "finished_at_utc": finished,
            "rows_published": stats.rows,
            "first_interval_start_utc": stats.first_start_utc,
            "last_interval_end_utc": stats.last_end_utc,
            "publish_latency_seconds": latency,
            "error_count": len(stats.errors),
            "errors": stats.errors,
        }
        key = f"{self.iso.wire}|{self.dataset.value}"
        self.emit(self.runs_topic.name, key, self._encode_run(event), "run event")
        log.info(
            "connector.run_completed",
            iso=self.iso.value,
            dataset=self.dataset.value,
            mode=stats.mode,
            rows=stats.rows,
            responses=stats.responses,
            errors=len(stats.errors),
        )
        return event

    # -- checkpoints --------------------------------------------------------------------

    def _checkpoint_key(self, stream: str) -> str:
        return f"{self.iso.wire}|{self.dataset.value}|{stream}"

    def save_checkpoint(
        self,
        stream: str,
        run_id: str,
        *,
        position_utc: datetime | None = None,
        last_source: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        key = self._checkpoint_key(stream)
        value = {
            **envelope(
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|{position_utc}|{last_source}")),
                occurred_at_utc=now,
                recorded_at_utc=now,
                source=self.source,
            ),
            "iso": self.iso.wire,
            "dataset": self.dataset.value,
            "stream": stream,
            "position_utc": position_utc,
            "last_source": last_source,
            "run_id": run_id,
        }
        self.emit(
            self.checkpoint_topic.name, key, self._encode_checkpoint(value), f"checkpoint {key}"
        )
        self._checkpoints[stream] = Checkpoint(stream, position_utc, last_source)

    def load_checkpoint(self, stream: str, timeout_s: float = 30.0) -> Checkpoint | None:
        """The latest checkpoint of `stream`: read from the compacted checkpoint topic the
        first time, then the one this runtime saved last (one writer per (ISO, dataset,
        stream), so the topic cannot hold a newer one)."""
        if stream not in self._checkpoints:
            self._checkpoints[stream] = self._read_checkpoint(stream, timeout_s)
        return self._checkpoints[stream]

    def _read_checkpoint(self, stream: str, timeout_s: float) -> Checkpoint | None:
        key = self._checkpoint_key(stream).encode()
        consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": f"checkpoint-reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log_level": 3,
            }
        )
        topic = self.checkpoint_topic.name
        try:
            metadata = consumer.list_topics(topic, timeout=timeout_s)
            partitions = list(metadata.topics[topic].partitions)
            latest: dict[str, Any] | None = None
            for partition in partitions:
                low, high = watermarks(consumer, TopicPartition(topic, partition), timeout_s)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                deadline = time.monotonic() + timeout_s
                position = low
                while position < high and time.monotonic() < deadline:
                    msg = consumer.poll(1.0)
                    offset = None if msg is None or msg.error() else msg.offset()
                    if msg is None or offset is None:
                        continue
                    position = offset + 1
                    value = msg.value()
                    if msg.key() == key and value is not None:
                        latest = self.serde.decode(value)[1]
                if position < high:
                    raise ConnectorError(f"could not read {topic} to its end in {timeout_s:.0f} s")
        finally:
            consumer.close()
        if latest is None:
            return None
        return Checkpoint(stream, latest["position_utc"], latest["last_source"])

    def close(self) -> None:
        self.producer.flush(self.flush_timeout_s)


def new_run(mode: str) -> RunStats:
    return RunStats(run_id=str(uuid.uuid4()), mode=mode)


__all__ = ["Checkpoint", "ConnectorRuntime", "Payload", "PublishError", "RunStats", "new_run"]
