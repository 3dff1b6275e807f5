"""The projector: consume a read model's topics, fold each event, write batches with their
offsets in one PostgreSQL transaction, then update Redis.

- Offsets live in PostgreSQL beside the rows (`projection_offsets`), never in Kafka: on start
  the projector assigns itself every partition of its topics at the stored offsets (the start
  for a partition never written), so a crash at any point resumes exactly after the last
  committed batch. One process projects a read model at a time (an advisory lock).
- Batches close on size or on time; a batch is written as a whole or not at all, in order, by a
  writer thread of its own while the consuming thread reads, decodes and folds the next one
  (PostgreSQL works while Python decodes: the driver releases the GIL while it waits). At most
  one closed batch waits for the writer, so memory stays bounded.
- PostgreSQL unavailable: the batch in hand is retried with exponential back-off (capped)
  and nothing more is consumed meanwhile (beyond the one batch read ahead); once it is written
  the projector goes on, having lost nothing. Logged and exported as
  `optibid_projector_postgres_up`.
- Values written with exactly the contract's schema are read by a reader specialised for it
  straight into rows (`projections.rowdecode`), gated by the source's `fits`; anything else
  (another schema, a value that does not read cleanly, an event the gate does not pass) takes
  the generic decode and the fold, which decide and name the fault.
- A poison event (undecodable, an unexpected schema, a fold error, or a row the database
  rejects) goes to `dlq.projections.<read_model>` with its reason and original bytes, before
  the offset that passes it is committed; the partition goes on.
- Redis is updated after the commit by a sink that survives Redis being down.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import Counter, Gauge, Histogram

from projections import hypertables
from projections.errors import FoldError, ProjectionError
from projections.folds import Row, dead_letter
from projections.models import ReadModel, TopicSource
from projections.pg import Batch, PgWriter, TopicPartitionKey
from projections.redis_sink import RedisSink
from projections.rowdecode import ROW_DECODE_ERRORS, RowDecoder, row_decoder
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.errors import DeserializationError, RegistryUnavailableError
from schemas.offsets import watermarks
from schemas.serde import AvroSerde, Encoder, schema_id_of

log = structlog.get_logger(__name__)

EVENTS = Counter("optibid_projector_events_total", "Events consumed", ["read_model"])
ROWS = Counter(
    "optibid_projector_rows_upserted_total", "Rows inserted or replaced", ["read_model", "table"]
)
DEAD = Counter(
    "optibid_projector_dead_letters_total", "Events sent to the DLQ", ["read_model", "reason"]
)
BATCH_SECONDS = Histogram(
    "optibid_projector_batch_seconds", "Seconds to write one batch", ["read_model"]
)
PG_UP = Gauge("optibid_projector_postgres_up", "Whether PostgreSQL takes writes", ["read_model"])
PG_RETRIES = Counter(
    "optibid_projector_postgres_retries_total", "Batch writes retried", ["read_model"]
)
LAG = Gauge("optibid_projector_lag_events", "Events behind the topics' ends", ["read_model"])
DEAD_LETTER_SCHEMA = "energy.optibid.ingest.RecordDeadLettered"


@dataclass(frozen=True)
class ProjectorConfig:
    bootstrap: str
    postgres_dsn: str
    db_schema: str
    redis_url: str | None
    batch_max_events: int = 5000
    batch_max_wait_s: float = 0.5
    retry_max_s: float = 5.0
    # TimescaleDB: the chunk size aimed at, and how often the interval is chosen again from
    # the volume written (a rebuild into empty tables learns it as it goes)
    chunk_target_bytes: int = hypertables.Options().chunk_target_bytes
    chunk_tune_every_s: float = 600.0

    def __post_init__(self) -> None:
        if self.batch_max_events < 1:
            raise ValueError(f"batch_max_events must be at least 1, not {self.batch_max_events}")
        if self.batch_max_wait_s <= 0:
            raise ValueError(f"batch_max_wait_s must be positive, not {self.batch_max_wait_s}")


@dataclass
class Progress:
    """Where a run stands: events read, and (for a run to the end) how many are left."""

    events: int = 0
    rows: int = 0
    dead_letters: int = 0
    lag: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


# Where an event came from: topic, partition, offset, key, value and timestamp (ms, None when
# the broker gave none), for dead-lettering it. Plain tuples of plain values, so the garbage
# collector stops tracking them; batches in flight would keep tens of thousands of Message
# objects alive for every collection to scan.
_Origin = tuple[str, int, int, bytes | None, bytes, int | None]
# Where a row came from (table, row, origin), for dead-lettering it should the database
# refuse it.
_Record = tuple[str, Row, _Origin]
_HEADER_SIZE = 5  # Confluent framing: magic byte, 4-byte schema id
# The consuming thread decodes in pure Python and seldom lets go of the GIL of its own accord;
# the writer thread lets go of it whenever PostgreSQL's socket is full, then waits out a whole
# switch interval (5 ms by default) to get it back, while PostgreSQL sits idle for want of the
# next rows. A shorter interval hands the GIL back sooner: on two cores the projector ran about
# 1.4 times as fast with 0.5 ms. It is process-wide, so it is only ever lowered.
_SWITCH_INTERVAL_S = 0.0005


class _BatchWriter:
    """Writes closed batches in order on a thread of its own, one at most waiting in the queue.

    `write` runs on the thread with an event that is set once the projector stops or the
    consuming side fails, so a write waiting out a PostgreSQL outage gives up then (the batch
    is read again on restart). The writer's first error stops it and is raised in the
    consuming thread at its next hand-over or at `close`.
    """

    def __init__(
        self,
        name: str,
        write: Callable[[Batch, list[_Record], threading.Event], None],
        stop: threading.Event,
    ) -> None:
        self._write = write
        self._stop = stop
        self._halt = threading.Event()
        self._queue: queue.Queue[tuple[Batch, list[_Record]] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)
        self._thread.start()

    def put(self, batch: Batch, records: list[_Record]) -> None:
        """Hand a closed batch over, waiting while one is already waiting."""
        self._put((batch, records))

    def close(self) -> None:
        """Wait for every batch handed over to be written; raise the writer's error if any."""
        self._put(None)
        self._thread.join()
        self._raise()

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Wait for the writes to end; on an error, abort them instead (the error goes on)."""
        if kind is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Stop after the batch being written (no waiting out an outage), dropping the rest."""
        self._halt.set()
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join()

    def _put(self, item: tuple[Batch, list[_Record]] | None) -> None:
        while True:
            self._raise()
            if self._stop.is_set():
                self._halt.set()
            if not self._thread.is_alive():
                return
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item, self._halt)
            except BaseException as exc:
                self._error = exc
                return


def _watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """(low, high) offsets of a partition, waiting out a leader election (schemas.offsets)."""
    try:
        return watermarks(consumer, partition)
    except KafkaException as exc:
        raise ProjectionError(
            f"no offsets for {partition.topic}[{partition.partition}] from the broker: {exc}"
        ) from exc


class StoppedError(Exception):
    """The projector was asked to stop while waiting for a server."""


class Projector:
    """Projects one read model (see the module doc)."""

    def __init__(
        self,
        model: ReadModel,
        catalog: TopicCatalog,
        serde: AvroSerde,
        config: ProjectorConfig,
        *,
        since: datetime | None = None,
        use_redis: bool = True,
    ) -> None:
        if since is not None and not model.time_series:
            raise ProjectionError(
                f"read model {model.name!r} is not a time series; it is rebuilt whole (no --from)"
            )
        self.model = model
        self.catalog = catalog
        self.serde = serde
        self.config = config
        self.sources: dict[str, TopicSource] = {s.topic.name: s for s in model.sources(catalog)}
        self.writer = PgWriter(config.db_schema, model.name, model.tables, since=since)
        self.dlq_topic = catalog.projection_dlq(model.name)
        self._dlq_encode: Encoder | None = None
        self._producer = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": config.bootstrap,
                "enable.idempotence": True,
                "log_level": 3,
            }
        )
        self._conn: psycopg.Connection[Any] | None = None
        self.redis: RedisSink | None = None
        if use_redis and config.redis_url and model.latest is not None:
            self.redis = RedisSink(
                config.redis_url,
                config.db_schema,
                model.name,
                model.latest,
                self._connect,
                retry_max_s=config.retry_max_s,
            )
        self.progress = Progress()
        self._counts = threading.Lock()  # progress is counted from both threads
        self._events = EVENTS.labels(model.name)
        # per topic, the specialised reader of each Confluent header known to frame the contract
        self._fast: dict[str, dict[bytes, RowDecoder]] = {}
        self._fast_tried: set[tuple[str, bytes]] = set()
        self._log = log.bind(read_model=model.name, schema=config.db_schema)
        self._tuned_at: float | None = None

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.config.postgres_dsn, connect_timeout=5)

    def _connection(self, stop: threading.Event) -> psycopg.Connection[Any]:
        """The writer's connection, (re)connecting with back-off while PostgreSQL is away."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        delay = 0.1
        while True:
            try:
                conn = self._connect()
                self.writer.attach(conn)
                self._conn = conn
                PG_UP.labels(self.model.name).set(1)
                return conn
            except psycopg.OperationalError as exc:
                PG_UP.labels(self.model.name).set(0)
                self._log.warning("postgres unavailable; waiting", error=str(exc), retry_s=delay)
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.config.retry_max_s)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def reset(self, stop: threading.Event, since: datetime | None = None) -> None:
        """Empty the read model (from `since`) and its offsets, before a rebuild."""
        self.writer.reset(self._connection(stop), since)

    # --- the loop -----------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        until_end: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Project until `stop` is set or, with `until_end`, until every partition is read up
        to the end it had when the run began."""
        self.progress = Progress()
        try:
            conn = self._connection(stop)
        except StoppedError:
            return self.progress
        stored = self.writer.stored_offsets(conn)
        consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.config.bootstrap,
                "group.id": f"{self.catalog.prefix}optibid-projector-{self.model.name}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "queued.max.messages.kbytes": 32768,  # what is fetched ahead while PG is away
                "log_level": 3,
            }
        )
        if self.redis is not None:
            self.redis.start()
        try:
            # the ends first: once partitions are assigned, fetches hold the broker connection
            positions = self._partitions(consumer, stored)
            ends = self._ends(consumer, positions) if until_end else {}
            consumer.assign(
                [
                    TopicPartition(
                        topic, partition, stored.get((topic, partition), OFFSET_BEGINNING)
                    )
                    for topic, partition in positions
                ]
            )
            self._log.info(
                "projecting",
                topics=sorted(self.sources),
                resumed_partitions=len(stored),
                until_end=until_end,
            )
            self._loop(consumer, positions, ends, stop, until_end, on_progress)
        except StoppedError:
            self._log.info("stopped while waiting; the batch in hand is read again on restart")
        finally:
            consumer.close()
            self._producer.flush(10)
            if self.redis is not None:
                self.redis.stop()
            self._drop_connection()
        return self.progress

    def _partitions(
        self, consumer: Consumer, stored: dict[TopicPartitionKey, int]
    ) -> dict[TopicPartitionKey, int]:
        """Every partition of the read model's topics, at its stored offset (0 when none)."""
        positions: dict[TopicPartitionKey, int] = {}
        for topic in self.sources:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                raise ProjectionError(
                    f"topic {topic} does not exist; run `optibid topics create` first"
                )
            for partition in metadata.partitions:
                positions[topic, partition] = stored.get((topic, partition), 0)
        return positions

    @staticmethod
    def _ends(
        consumer: Consumer, positions: dict[TopicPartitionKey, int]
    ) -> dict[TopicPartitionKey, int]:
        ends = {}
        for (topic, partition), position in positions.items():
            low, high = _watermarks(consumer, TopicPartition(topic, partition))
            ends[topic, partition] = high
            positions[topic, partition] = max(position, low)
        return ends

    def _loop(
        self,
        consumer: Consumer,
        positions: dict[TopicPartitionKey, int],
        ends: dict[TopicPartitionKey, int],
        stop: threading.Event,
        until_end: bool,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
            sys.setswitchinterval(_SWITCH_INTERVAL_S)
        config = self.config
        batch = Batch()
        records: list[_Record] = []
        opened = time.monotonic()
        last_lag = 0.0

        def done() -> bool:
            return until_end and all(positions[tp] >= end for tp, end in ends.items())

        with _BatchWriter(self.model.name, self._flush, stop) as writer:
            while not stop.is_set() and not done():
                wait = (
                    config.batch_max_wait_s - (time.monotonic() - opened) if batch.events else 1.0
                )
                messages = consumer.consume(
                    min(1000, config.batch_max_events - batch.events), max(wait, 0.0)
                )
                take = self._take
                for message in messages:
                    take(message, batch, records, positions, stop)
                now = time.monotonic()
                full = batch.events >= config.batch_max_events
                due = batch.events and now - opened >= config.batch_max_wait_s
                if full or due or (batch.events and done()):
                    self._events.inc(batch.events)
                    writer.put(batch, records)
                    batch, records = Batch(), []
                if not batch.events:
                    opened = time.monotonic()
                if now - last_lag >= 1.0 or done():
                    last_lag = now
                    self.progress.lag = self._lag(consumer, positions, ends)
                    LAG.labels(self.model.name).set(self.progress.lag)
                    if on_progress is not None:
                        on_progress(self.progress)
            if batch.events:
                self._events.inc(batch.events)
                writer.put(batch, records)
        if on_progress is not None:
            self.progress.lag = self._lag(consumer, positions, ends)
            on_progress(self.progress)

    @staticmethod
    def _lag(
        consumer: Consumer,
        positions: dict[TopicPartitionKey, int],
        ends: dict[TopicPartitionKey, int],
    ) -> int:
        lag = 0
        for (topic, partition), position in positions.items():
            end = ends.get((topic, partition))
            if end is None:
                _, end = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            lag += max(end - position, 0) if end is not None and end >= 0 else 0
        return lag

    def _take(  # noqa: PLR0911 - one exit per kind of record
        self,
        message: Message,
        batch: Batch,
        records: list[_Record],
        positions: dict[TopicPartitionKey, int],
        stop: threading.Event,
    ) -> None:
        """Fold one message into the batch (or dead-letter it) and move its partition's
        position past it; a Kafka error or end-of-partition notice is no record."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.fatal():
                raise ProjectionError(f"kafka consumer failed: {error}")
            self._log.warning("kafka consumer error", error=str(error))
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        batch.offsets[topic, partition] = positions[topic, partition] = offset + 1
        batch.events += 1
        value = message.value()
        if value is None:
            return  # a tombstone on a compacted topic: nothing to fold
        stamp_type, stamp_ms = message.timestamp()
        origin = (topic, partition, offset, message.key(), value, stamp_ms if stamp_type else None)
        source = self.sources[topic]
        fast = self._read_fast(source, value)
        if fast is not None:
            batch.add(source.table.name, fast)
            records.append((source.table.name, fast, origin))
            return
        event: dict[str, Any] | None = None
        try:
            full_name, event = self._decode(value, stop)
            if full_name != source.full_name:
                raise FoldError(
                    "UNEXPECTED_SCHEMA",
                    f"{topic} carries {source.full_name}, this record is {full_name}",
                )
            row = source.fold(event, topic)
        except DeserializationError as exc:
            self._dead_letter(origin, None, FoldError("UNDECODABLE", str(exc)), stop)
            return
        except FoldError as exc:
            self._dead_letter(origin, event, exc, stop)
            return
        batch.add(source.table.name, row)
        records.append((source.table.name, row, origin))
        if source.fits is not None:
            self._learn(source, value)

    def _read_fast(self, source: TopicSource, value: bytes) -> Row | None:
        """The row of `value` by the specialised reader, when it applies and the source's gate
        passes it; None sends the value down the generic decode and the fold."""
        readers = self._fast.get(source.topic.name)
        if readers is None or source.fits is None:
            return None
        read = readers.get(value[:_HEADER_SIZE])
        if read is None:
            return None
        try:
            row = read(value)
        except ROW_DECODE_ERRORS:
            return None
        return row if source.fits(row) else None

    def _learn(self, source: TopicSource, value: bytes) -> None:
        """After the generic decode took `value`: when its header names exactly the contract
        (no resolution), read later values with that header by the specialised reader."""
        header = value[:_HEADER_SIZE]
        topic = source.topic.name
        if (topic, header) in self._fast_tried:
            return
        self._fast_tried.add((topic, header))
        if not self.serde.is_contract(schema_id_of(value)):  # known: the value just decoded
            return
        contract = self.serde.contracts.get(source.full_name)
        read = row_decoder(contract.text, source.table.column_names, header)
        if read is not None:
            self._fast.setdefault(topic, {})[header] = read

    def _decode(self, value: bytes, stop: threading.Event) -> tuple[str, dict[str, Any]]:
        delay = 0.1
        while True:
            try:
                return self.serde.decode(value)
            except RegistryUnavailableError as exc:  # an outage, not a poison event
                self._log.warning("schema registry unavailable; waiting", error=str(exc))
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.config.retry_max_s)

    def _dead_letter(
        self,
        origin: _Origin,
        event: dict[str, Any] | None,
        error: FoldError,
        stop: threading.Event,
    ) -> None:
        topic, partition, offset, key, value, stamp_ms = origin
        record = dead_letter(
            read_model=self.model.name,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            timestamp_utc=datetime.fromtimestamp(stamp_ms / 1000, UTC)
            if stamp_ms is not None
            else None,
            event=event,
            error=error,
            now=datetime.now(UTC),
        )
        delay = 0.1
        while self._dlq_encode is None:
            try:
                self._dlq_encode = self.serde.encoder(self.dlq_topic.subject, DEAD_LETTER_SCHEMA)
            except RegistryUnavailableError as exc:
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.config.retry_max_s)
        self._producer.produce(self.dlq_topic.name, self._dlq_encode(record), key)
        self._producer.poll(0)
        DEAD.labels(self.model.name, error.code).inc()
        with self._counts:
            self.progress.dead_letters += 1
        self._log.warning(
            "event dead-lettered",
            topic=topic,
            partition=partition,
            offset=offset,
            reason=error.code,
            detail=str(error),
        )

    # --- writing a batch ----------------------------------------------------------------------

    def _flush(self, batch: Batch, records: list[_Record], stop: threading.Event) -> None:
        """Write `batch` (DLQ records first, so no offset passes a dead letter not on the
        broker), retrying while PostgreSQL is away; then hand its rows to Redis."""
        while self._producer.flush(10) > 0:
            self._log.warning("dead letters not yet delivered; waiting for the broker")
            if stop.is_set():
                raise StoppedError
        began = time.monotonic()
        written = self._write(batch, records, stop)
        BATCH_SECONDS.labels(self.model.name).observe(time.monotonic() - began)
        for table, count in written.items():
            ROWS.labels(self.model.name, table).inc(count)
            self.progress.rows += count
        self.progress.events += batch.events
        if self.redis is not None:
            rows = batch.rows.get(self.redis.latest.table.name)
            if rows:
                self.redis.offer(rows)
        if written:
            self._tune_chunks()

    def _tune_chunks(self) -> None:
        """Choose the chunk interval of the model's hypertables again from the volume they
        hold: after the first batch written, then every `chunk_tune_every_s`."""
        now = time.monotonic()
        if self._tuned_at is not None and now - self._tuned_at < self.config.chunk_tune_every_s:
            return
        self._tuned_at = now
        conn = self._conn
        if conn is None or not self.model.time_series:
            return
        names = {n for t in self.model.tables for n in (t.name, t.superseded_name)}
        try:
            with conn.transaction():
                changed = hypertables.tune_chunks(
                    conn, self.config.db_schema, self.config.chunk_target_bytes, names
                )
        except psycopg.Error as exc:  # the next batch's write meets an outage and waits it out
            self._log.warning("chunks.tune_failed", error=str(exc))
            return
        for table, interval in changed.items():
            self._log.info("chunks.interval", table=table, interval=str(interval))

    def _write(
        self,
        batch: Batch,
        records: list[_Record],
        stop: threading.Event,
        *,
        row_by_row: bool = True,
    ) -> dict[str, int]:
        """Write `batch`, waiting out PostgreSQL outages; a batch the database refuses is
        written again row by row (`row_by_row`), else the refusal is raised."""
        delay = 0.1
        outage_began: float | None = None
        while True:
            conn = self._connection(stop)
            try:
                written = self.writer.write(conn, batch)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                PG_UP.labels(self.model.name).set(0)
                PG_RETRIES.labels(self.model.name).inc()
                if outage_began is None:
                    outage_began = time.monotonic()
                self._log.warning(
                    "postgres unavailable; consumption paused, batch kept for retry",
                    error=str(exc).strip(),
                    events=batch.events,
                    retry_s=delay,
                )
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                conn.rollback()
                if not row_by_row:
                    raise
                self._log.warning(
                    "database refused the batch; writing it row by row", error=str(exc)
                )
                return self._write_one_by_one(batch, records, stop)
            if outage_began is not None:
                self._log.info(
                    "postgres available again; batch written",
                    paused_s=round(time.monotonic() - outage_began, 1),
                )
            return written

    def _write_one_by_one(
        self, batch: Batch, records: list[_Record], stop: threading.Event
    ) -> dict[str, int]:
        """Find the rows the database refuses (dead-lettering each) by writing the batch's
        rows one per transaction, each with the offset just past it."""
        written: dict[str, int] = {}
        for table_name, row, origin in records:
            single = Batch(events=1)
            single.add(table_name, row)
            topic, partition, offset = origin[:3]
            single.offsets[topic, partition] = offset + 1
            try:
                for table, count in self._write(single, [], stop, row_by_row=False).items():
                    written[table] = written.get(table, 0) + count
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                refusal = FoldError("REJECTED_BY_DATABASE", str(exc).strip())
                self._dead_letter(origin, None, refusal, stop)
                while self._producer.flush(10) > 0:
                    if stop.is_set():
                        raise StoppedError from exc
        # then every offset of the batch (dead letters and tombstones included)
        self._write(Batch(offsets=dict(batch.offsets)), [], stop, row_by_row=False)
        return written
