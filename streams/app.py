"""The stream worker: a faust-streaming app whose agents are thin (decode, call the pure
processor, send). Started with `optibid worker`.

Agents
- `market`: every raw topic -> validate -> dlq.<iso>.<dataset> | core.market.* (+ locations);
  revision state in the `revisions` table, first sightings in the `locations` table.
- a timer declares gaps (ingest.gaps) and re-announces open ones, so a crash between state and
  send cannot lose a gap; gap ids are deterministic.
- `collect`: ingest.gaps -> the backfill planner, which cuts BackfillRequested windows lazily
  (newest first, within the feeds' reach, a few outstanding per (ISO, dataset)).
- `outcomes`: ingest.backfill_completed -> retry FAILED/EMPTY windows up to MAX_ATTEMPTS.
- `freshness`: ingest.connector_runs -> ingest.freshness.

Delivery is at least once; every step is idempotent (deterministic event ids, state keyed by
the offset that set it), so a worker killed with SIGKILL and restarted ends with the same
output topics, duplicates only of identical events.

Throughput: faust hands every record to its streams one at a time (a task per record raced
against a rebalance, a queue hop, sensors, a per-event ack) and sends every output and table
changelog record through its producer buffer, one message per event-loop turn: measured on a
2-CPU host, ~170 µs per consumed record and ~100-280 µs per sent one, several times the market
step itself (~70 µs). So the raw topics take a batch path: `BatchConsumer` hands each fetch's
raw records to `StreamWorker.process_market` in one call, which sends outputs and changelog
records as one producer batch per topic-partition and writes the RocksDB store one write batch
per partition; the records are acked only after all of that is with the producer, and every
commit flushes the producer first and checks the sends, so no source offset is committed past
an output or a state change that is not on the broker. An unexpected error in the batch path
stops the worker without acking the batch (faust's agents would log it and skip the record);
after a restart the batch is read again from the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from time import monotonic
from typing import Any, cast

import faust
import structlog
from faust.serializers.codecs import dumps
from faust.stores.base import SerializedStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message, RecordMetadata
from mode import Service, ServiceT
from prometheus_client import Counter, Gauge
from rocksdict import WriteBatch
from yarl import URL

from schemas.catalog import Dataset, TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.gaps import BackfillPlanner, Gap, SeriesChange, Window
from streams.processor import (
    DEFAULT_BACKFILL_REACH,
    DEFAULT_LATENESS,
    DEFAULT_RETIREMENT_AGE,
    DEFAULT_REVISION_RETENTION,
    MarketProcessor,
    Output,
    gap_event,
    series_status_event,
)
from streams.validate import ValidationConfig

log = structlog.get_logger(__name__)

GAPS = Counter("optibid_stream_gaps_detected_total", "Gaps declared", ["iso", "dataset"])
GAPS_OPEN = Gauge("optibid_stream_gaps_open", "Gaps declared and not yet filled")
REQUESTS = Counter(
    "optibid_stream_backfill_requests_total", "Backfill requests sent", ["iso", "dataset"]
)
MAX_ATTEMPTS = 3
SERIES_RETIRED = Gauge(
    "optibid_stream_series_retired",
    "Series silent past their dataset's retirement age (no longer gap-filled)",
    ["iso", "dataset"],
)
BEYOND_REACH = Counter(
    "optibid_stream_backfill_beyond_reach_intervals_total",
    "Missing intervals older than the ISO serves, given up without a request",
    ["iso", "dataset"],
)
REANNOUNCE_EVERY_TICKS = 15

# the records of one fetch, in runs of one topic-partition each, in offset order
BatchHandler = Callable[[list[list[Message]]], Awaitable[None]]


class ChangelogBatchTable(faust.Table[Any, Any]):
    """A faust Table that, between `defer_changelog()` and `take_changelog()`, keeps the
    changelog records of the keys it sets in memory instead of sending each one at once.

    Setting a key otherwise does what faust's Table does: the value goes to the local store
    under the current event's partition, which is also its changelog partition (a RocksDB
    store gets the values of a partition in one write batch, at `take_changelog`, before any
    of their changelog records is sent). faust sends each changelog record through the
    producer buffer, one message per event-loop turn (~100 µs a key here), and serializes it
    twice (store, topic); deferred, a record is serialized once, and the worker hands the
    records to the producer after the batch of source records that set them and before
    acking those, so the commit that may follow (which flushes the producer first) never
    commits a source offset whose state change is not on the broker, as with faust's own path.
    """

    _deferred: list[tuple[int, bytes, bytes | None]] | None = None
    _writes: dict[int, WriteBatch] | None = None

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._deferred is None:
            return super().__setitem__(key, value)
        self._defer(key, value, delete=False)
        self._sensor_on_set(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if self._deferred is None:
            return super().__delitem__(key)
        self._defer(key, None, delete=True)  # a tombstone, deferred like any other change
        self._sensor_on_del(self, key)

    def _defer(self, key: Any, value: Any, *, delete: bool) -> None:
        deferred = cast(list[tuple[int, bytes, bytes | None]], self._deferred)
        partition = self.partition_for_key(key)  # the current event's partition
        if partition is None:
            raise RuntimeError(f"table {self.name} needs the current event's partition")
        store = self.data
        value_bytes: bytes | None
        if isinstance(store, SerializedStore):  # RocksDB: it stores the changelog's bytes
            key_bytes = store._encode_key(key)
            value_bytes = None if delete else store._encode_value(value)
            self._store_bytes(store, partition, key_bytes, value_bytes)
        else:
            key_bytes = dumps(self.key_serializer, key)
            if delete:
                store.pop(key, None)
                value_bytes = None
            else:
                store[key] = value
                value_bytes = dumps(self.value_serializer, value)
        deferred.append((partition, key_bytes, value_bytes))
        if delete:
            self._maybe_del_key_ttl(key, partition)
        else:
            self._maybe_set_key_ttl(key, partition)

    def _store_bytes(
        self, store: SerializedStore[Any, Any], partition: int, key: bytes, value: bytes | None
    ) -> None:
        if self._writes is None:
            if value is None:
                store._del(key)
            else:
                store._set(key, value)
            return
        writes = self._writes.get(partition)
        if writes is None:
            writes = self._writes[partition] = WriteBatch(raw_mode=True)
        if value is None:
            writes.delete(key)
        else:
            writes.put(key, value)
        cast(RocksDBStore, store)._key_index[key] = partition

    def defer_changelog(self) -> None:
        if self._deferred is None:
            self._deferred = []
            store = self.data
            if isinstance(store, RocksDBStore) and store.use_rocksdict:
                self._writes = {}  # one write batch per partition, at take_changelog

    def discard_changelog(self) -> None:
        """Stop deferring and forget what was deferred (its source records are not acked,
        so they are processed, and set, again)."""
        self._deferred = self._writes = None

    def take_changelog(self) -> list[tuple[int, bytes, bytes | None]]:
        """Write the deferred values to the local store (one RocksDB write batch per
        partition) and return the deferred changelog records, (partition, key, value)
        serialized as faust serializes them for store and changelog topic; stops deferring.
        Values set while deferring reach a RocksDB store only here: the market step reads
        the tables once, at load, so nothing reads them in between."""
        deferred, writes = self._deferred or [], self._writes
        self._deferred = self._writes = None
        if writes:
            store = cast(RocksDBStore, self.data)
            for partition, batch in writes.items():
                store._db_for_partition(partition).write(batch)
        return deferred

    def changelog_delivered(self, count: int, future: asyncio.Future[RecordMetadata]) -> None:
        """Done-callback of a batch of `count` changelog records: its last offset is the one
        the local store holds (each value was stored before its send), which faust records
        per record."""
        if future.cancelled() or future.exception() is not None:
            return  # BatchConsumer._commit refuses to commit past it
        sent = future.result()
        tp = TP(sent.topic_partition.topic, sent.topic_partition.partition)
        offset = sent.offset + count - 1
        if self.app.in_transaction:
            self.app.tables.persist_offset_on_commit(self.data, tp, offset)
        else:
            self.data.set_persisted_offset(tp, offset)


class ProducerBatches:
    """Records for the producer, gathered as one aiokafka batch per topic-partition and
    submitted together: appending costs ~2 µs a record where `send()` costs ~20 µs, plus a
    future and a RecordMetadata per record on delivery. Keyed records land on the partition
    the producer's own partitioner picks, so exactly where `send()` would put them."""

    def __init__(self, producer: Any, partition_of: KeyPartitioner | None = None) -> None:
        self._producer = producer  # an aiokafka AIOKafkaProducer (untyped)
        self._partition_of = partition_of or KeyPartitioner()
        self._open: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[str, int, Any]] = []

    async def add_keyed(self, topic: str, key: bytes, value: bytes) -> None:
        """`add` on the partition the producer's partitioner picks for the key."""
        partition = self._partition_of.cached(topic, key)
        if partition is None:  # first sighting of this key: ask the producer
            partition = await self._partition_of(self._producer, topic, key)
        self.add(topic, partition, key, value)

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        builder = self._open.get((topic, partition))
        if builder is None:
            builder = self._open[(topic, partition)] = self._producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value) is None:  # full
            self._full.append((topic, partition, builder))
            builder = self._open[(topic, partition)] = self._producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value) is None:
                raise ValueError(f"a record for {topic} fits in no batch")

    async def send(self) -> list[tuple[str, int, asyncio.Future[RecordMetadata]]]:
        """Submit every batch, each closed so that nothing else joins it (and it need not
        linger): (topic, record count, delivery future) of each."""
        batches = [*self._full, *((t, p, b) for (t, p), b in self._open.items())]
        self._full, self._open = [], {}
        sent = []
        for topic, partition, builder in batches:
            builder.close()
            future = await self._producer.send_batch(builder, topic, partition=partition)
            sent.append((topic, builder.record_count(), future))
        return sent


class BytesTopics:
    """faust topics carrying raw bytes (the serde does the Avro), one object per name."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, faust.TopicT] = {}

    def __call__(self, spec: TopicSpec) -> faust.TopicT:
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = self._app.topic(
                spec.name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
        return topic


class KeyPartitioner:
    """The partition the producer's partitioner picks for a key (as `send()` would), cached
    per (topic, key): keys are series, locations, ISOs, so the cache stays small."""

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._partition_ids: dict[str, list[int]] = {}

    def cached(self, topic: str, key: bytes) -> int | None:
        return self._partitions.get((topic, key))

    async def __call__(self, producer: Any, topic: str, key: bytes) -> int:
        partition = self._partitions.get((topic, key))
        if partition is not None:
            return partition
        partitions = self._partition_ids.get(topic)
        if partitions is None:
            partitions = self._partition_ids[topic] = sorted(await producer.partitions_for(topic))
        partition = producer._partitioner(key, partitions, partitions)
        if len(self._partitions) >= 100_000:
            self._partitions.clear()
        self._partitions[(topic, key)] = partition
        return int(partition)


class BatchConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer, handing the records of `batch_topics` to `batch_handler`
    one fetch at a time instead of one record at a time to the streams.

    Records of other topics take faust's per-record path unchanged. A batch counts as
    unacked while handled (a rebalance or a stop waits for it, as for a stream event) and its
    records are acked only after the handler returned; records fetched before a rebalance
    (older generation) or while flow is stopped are dropped unacked and read again from the
    committed offsets that faust seeks to after every rebalance. A send that failed blocks
    every later commit and crashes the worker, so its source offset is never committed.
    faust's per-record sensors (message counts of its monitor) skip batch records; the market
    step keeps Prometheus counters of its own.
    """

    batch_topics: frozenset[str] = frozenset()
    batch_handler: BatchHandler | None = None
    send_failure: BaseException | None = None
    _crashing: asyncio.Future[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sends: list[asyncio.Future[RecordMetadata]] = []

    def track_send(self, future: asyncio.Future[RecordMetadata]) -> None:
        """Remember a batch-path send; `_commit` checks it was delivered."""
        self._sends.append(future)
        if len(self._sends) >= 10_000:  # no commit for a while: forget the delivered ones
            self._check_sends()

    def _check_sends(self) -> BaseException | None:
        """The first failed send, forgetting the delivered ones (a callback per send would
        cost a loop turn per record)."""
        if self.send_failure is None:
            pending: list[asyncio.Future[RecordMetadata]] = []
            for future in self._sends:
                if not future.done():
                    pending.append(future)  # sent after the flush began: checked next time
                elif future.cancelled():
                    self.send_failure = asyncio.CancelledError("send cancelled")
                elif future.exception() is not None:
                    self.send_failure = future.exception()
                if self.send_failure is not None:
                    log.error("stream.send_failed", error=repr(self.send_failure))
                    self._crashing = asyncio.ensure_future(self.app.crash(self.send_failure))
                    break
            self._sends = pending
        return self.send_failure

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        # the producer was flushed just before, so every send of the acked records is done
        if self._check_sends() is not None:
            log.error("stream.commit_refused", error=repr(self.send_failure))
            return False
        return await super()._commit(offsets)

    async def _deliver(self, batch: list[Message]) -> None:
        handler = self.batch_handler
        assert handler is not None
        if not self.app.flow_control.is_active():
            return
        generation = self.app.consumer_generation_id
        runs: dict[TP, list[Message]] = {}
        for message in batch:
            if message.generation_id == generation:
                run = runs.get(message.tp)
                if run is None:
                    runs[message.tp] = [message]
                else:
                    run.append(message)
        if not runs:
            return
        # One record stands for the batch among the unacked ones: a rebalance or a stop waits
        # (Consumer.wait_empty) until the handler is done and the records acked.
        sentinel = batch[0]
        self._unacked_messages.add(sentinel)
        inbound = self.app.monitor.stream_inbound_time
        now = monotonic()
        for tp in runs:
            inbound[tp] = now
        try:
            await handler(list(runs.values()))
        finally:
            # acked if handled; otherwise left for a re-read from the committed offset
            self._unacked_messages.discard(sentinel)
        ack = self.ack
        for run in runs.values():
            for message in run:
                ack(message)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        """faust's fetch loop (Consumer._drain_messages), batching `batch_topics`."""
        if self.batch_handler is None or not self.batch_topics:
            return await super()._drain_messages(fetcher)
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch = await self._split_fetch(ait)
                self.diag.unset_flag(CONSUMER_FETCHING)
                if batch:
                    await self._deliver(batch)
                    await self._maybe_commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _split_fetch(self, fetched: AsyncIterator[tuple[TP, Message]]) -> list[Message]:
        """One fetch: the records of `batch_topics`, in order, are returned; the others go to
        faust's per-record path right away. Read offsets and gaps are kept as faust does."""
        batch_topics, batch = self.batch_topics, []
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        async for tp, message in fetched:
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is not None and offset < r_offset:
                continue  # faust drops these too
            if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if message.topic in batch_topics:
                batch.append(message)
            else:
                await self._maybe_commit()
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            read_offset[tp] = offset
        return batch

    async def _maybe_commit(self) -> None:
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()


class BatchTransport(aiokafka_driver.Transport):
    """The aiokafka transport with `BatchConsumer` as its consumer."""

    Consumer = BatchConsumer

    def __init__(self, url: list[URL], app: faust.App, handler: BatchHandler) -> None:
        super().__init__(url, app)
        self.batch_handler = handler
        self.batch_topics: frozenset[str] = frozenset()

    def create_consumer(self, callback: Any, **kwargs: Any) -> BatchConsumer:
        consumer = cast(BatchConsumer, super().create_consumer(callback, **kwargs))
        consumer.batch_handler = self.batch_handler
        consumer.batch_topics = self.batch_topics
        return consumer


def faust_app(
    app_id: str,
    broker: str,
    store: str,
    data_dir: str,
    web_host: str,
    web_port: int,
    max_poll_records: int,
) -> faust.App:
    """A Faust app as OptiBid's workers run them: changelogged tables that can batch their
    changelog (ChangelogBatchTable), acks from all replicas, outputs and changelog records
    batched (a few per event) instead of one request each."""
    for noisy in ("aiokafka", "faust", "mode"):
        # their debug records cost ~5 µs each even when no handler prints them
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return faust.App(
        app_id,
        Table=ChangelogBatchTable,
        broker=[f"kafka://{b}" for b in broker.split(",")],
        store=store,
        datadir=data_dir,
        topic_partitions=6,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_port=web_port,
        web_bind=web_host,
        web_enabled=True,
        producer_linger=0.05,
        producer_max_batch_size=1_048_576,
        producer_compression_type="lz4",
        broker_commit_every=5_000,
        broker_max_poll_records=max_poll_records,
        stream_buffer_maxsize=16_384,
    )


async def apply_runs(
    app: faust.App,
    tables: Sequence[ChangelogBatchTable],
    runs: list[list[Message]],
    step: Callable[[Message], Iterable[tuple[str, bytes, bytes]]],
    partition_of: KeyPartitioner,
) -> None:
    """The batch path of a BatchConsumer handler: `step` for each record, run by run (a run is
    one topic-partition's records, in order), under that run's partition as the current event
    (the tables' store and changelog partition); its outputs, (topic, key, value), and the
    tables' changelog records go to the producer as one batch per topic-partition. Returns
    once all of them are with the producer (delivery is checked by the next commit,
    BatchConsumer._commit); the caller acks the records only then."""
    producer = cast(aiokafka_driver.Producer, app.producer)._ensure_producer()
    consumer = cast(BatchConsumer, app.consumer)
    batches = ProducerBatches(producer, partition_of)
    for table in tables:
        table.defer_changelog()
    try:
        for run in runs:
            first = run[0]
            event = app.create_event(first.key, first.value, first.headers, first)
            token = _current_event.set(weakref.ref(event))
            try:
                for message in run:
                    for name, key, value in step(message):
                        await batches.add_keyed(name, key, value)
            finally:
                _current_event.reset(token)
        changelogs = {}
        for table in tables:
            name = table.changelog_topic.get_topic_name()
            changelogs[name] = table
            for partition, key_bytes, value_bytes in table.take_changelog():
                batches.add(name, partition, key_bytes, value_bytes)
    finally:
        for table in tables:
            table.discard_changelog()
    for topic, count, future in await batches.send():
        consumer.track_send(future)
        changelog = changelogs.get(topic)
        if changelog is not None:
            future.add_done_callback(partial(changelog.changelog_delivered, count))


@dataclass(frozen=True)
class WorkerConfig:
    broker: str  # bootstrap servers, "host:port,..."
    registry_url: str
    topic_prefix: str = ""
    app_id: str = "optibid-streams"
    store: str = "rocksdb://"
    data_dir: str = ".optibid/streams"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    tick_interval_s: float = 2.0
    batch: bool = True  # the raw topics take the batch path (BatchConsumer)
    batch_max_records: int = 2_000  # records per fetch, so per batch
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    lateness: Mapping[Dataset, timedelta] = field(default_factory=lambda: dict(DEFAULT_LATENESS))
    revision_retention: timedelta = DEFAULT_REVISION_RETENTION
    backfill_reach: Mapping[Dataset, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_BACKFILL_REACH)
    )
    retirement: Mapping[Dataset, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_RETIREMENT_AGE)
    )
    backfill_max_outstanding: int = 4  # backfill requests in flight per (ISO, dataset)


class StreamWorker:
    """Builds the Faust app and its agents for one WorkerConfig."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.registry = RegistryClient(config.registry_url)
        self.serde = AvroSerde(self.registry, ContractSet())
        self.processor = MarketProcessor(
            self.catalog,
            self.serde,
            config.validation,
            config.lateness,
            retention=config.revision_retention,
            retirement=config.retirement,
        )
        self.app = faust_app(
            config.app_id,
            config.broker,
            config.store,
            config.data_dir,
            config.web_host,
            config.web_port,
            config.batch_max_records,
        )
        self.transport: BatchTransport | None = None
        if config.batch:
            self.transport = BatchTransport(
                self.app.conf.broker_consumer, self.app, self.process_market
            )
            self.app.transport = self.transport
        self._encoders: dict[str, Encoder] = {}
        self.topic = BytesTopics(self.app)
        self.partition_of = KeyPartitioner()
        self._ticks = 0
        self.planner = BackfillPlanner(
            {d.value: reach for d, reach in config.backfill_reach.items()},
            max_outstanding=config.backfill_max_outstanding,
            max_attempts=MAX_ATTEMPTS,
        )
        self._define()

    def encode(self, out: Output) -> bytes:
        encoder = self._encoders.get(out.topic.name)
        if encoder is None:
            encoder = self.serde.encoder(out.topic.subject, out.topic.value_schema)
            self._encoders[out.topic.name] = encoder
        return encoder(out.value)

    def send_soon(self, out: Output) -> None:
        self.topic(out.topic).send_soon(key=out.key.encode(), value=self.encode(out))

    async def send(self, out: Output) -> None:
        await self.topic(out.topic).send(key=out.key.encode(), value=self.encode(out))

    def process_one(self, message: Message) -> list[Output]:
        """The market step for one raw record (state in the tables, under the current
        event's partition)."""
        stamp = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
        return self.processor.process(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            cast(bytes, message.value),  # raw topics carry no tombstones
            self.revisions,
            self.locations,
            timestamp_utc=stamp,
        )

    async def process_market(self, runs: list[list[Message]]) -> None:
        """The batch path: the market step for each record (see `apply_runs`)."""

        def outputs(message: Message) -> list[tuple[str, bytes, bytes]]:
            return [
                (out.topic.name, out.key.encode(), self.encode(out))
                for out in self.process_one(message)
            ]

        await apply_runs(
            self.app, (self.revisions, self.locations), runs, outputs, self.partition_of
        )

    def _define(self) -> None:
        app, catalog, processor = self.app, self.catalog, self.processor

        @app.on_rebalance_complete.connect
        async def reload(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # the tables now hold the restored state of this worker's partitions (maybe other
            # ones than before): the in-memory mirrors are read again at the next record
            processor.unload()

        raw_specs = [catalog.raw(*pair) for pair in processor.raw_topics.values()]
        # ChangelogBatchTable (App(Table=...)); faust types app.Table as TableT
        self.revisions = cast(
            ChangelogBatchTable, app.Table("revisions", default=None, partitions=6)
        )
        self.locations = cast(
            ChangelogBatchTable, app.Table("locations", default=None, partitions=6)
        )
        gaps_topic = catalog.ingest("gaps")
        completed_topic = catalog.ingest("backfill_completed")
        requests_topic = catalog.ingest("backfill_requests")
        runs_topic = catalog.ingest("connector_runs")
        freshness_topic = catalog.ingest("freshness")

        async def market(stream: faust.StreamT[bytes]) -> None:
            # faust's per-event path: what runs with `batch` off (and in agent tests)
            async for event in stream.events():
                for out in self.process_one(event.message):
                    self.send_soon(out)  # flushed before the source offset is committed

        # one agent per raw topic: the same function, each on its own topic
        self.market_agents = {
            spec.name: app.agent(self.topic(spec), name=f"market:{spec.name}")(market)
            for spec in raw_specs
        }
        if self.transport is not None:
            # ...and the batch path takes their records before they reach the agents
            self.transport.batch_topics = frozenset(self.market_agents)

        async def declare_gaps() -> None:
            now = datetime.now(UTC)
            due = processor.due_gaps()
            self._ticks += 1
            if self._ticks % REANNOUNCE_EVERY_TICKS == 0:
                due = processor.open_gaps()  # again: a crash may have lost a send
            for gap in due:
                GAPS.labels(gap.iso, gap.dataset).inc()
                lateness = self.config.lateness[Dataset(gap.dataset)]
                out = Output(gaps_topic, f"{gap.iso}|{gap.dataset}", gap_event(gap, lateness, now))
                await self.send(out)
            GAPS_OPEN.set(len(processor.open_gaps()))
            await self._announce_series(catalog.ingest("series_status"), now)

        async def collect(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, gap = self.serde.decode(value)
                self.planner.add(
                    Gap(
                        gap["gap_id"],
                        gap["iso"],
                        gap["dataset"],
                        gap["series_key"] or "",
                        gap["missing_start_utc"],
                        gap["missing_end_utc"],
                        gap["interval_minutes"],
                    )
                )

        async def request_backfills() -> None:
            windows, beyond = self.planner.due(datetime.now(UTC))
            self._report_beyond_reach(beyond)
            for window in windows:
                await self._request(requests_topic, window)

        async def outcomes(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, done = self.serde.decode(value)
                self.planner.completed(done["request_id"], done["outcome"])
                if done["outcome"] == "UNRECOVERABLE":
                    log.warning(
                        "backfill.unrecoverable",
                        request_id=done["request_id"],
                        reason=done["reason"],
                    )

        async def freshness(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, run = self.serde.decode(value)
                event = self._freshness_event(run)
                await self.send(Output(freshness_topic, f"{run['iso']}|{run['dataset']}", event))

        self.collect_agent = app.agent(self.topic(gaps_topic), name="collect")(collect)
        self.outcomes_agent = app.agent(self.topic(completed_topic), name="outcomes")(outcomes)
        self.freshness_agent = app.agent(self.topic(runs_topic), name="freshness")(freshness)
        # faust's timer decorator is untyped; registering by call keeps the functions typed
        app.timer(interval=self.config.tick_interval_s)(declare_gaps)
        app.timer(interval=self.config.tick_interval_s)(request_backfills)
        self.request_backfills = request_backfills

    @staticmethod
    def _report_beyond_reach(gaps: list[Gap]) -> None:
        for gap in gaps:
            BEYOND_REACH.labels(gap.iso, gap.dataset).inc(gap.missing_intervals)
            log.warning(
                "backfill.beyond_reach",
                iso=gap.iso,
                dataset=gap.dataset,
                series=gap.series_key,
                gap_id=gap.gap_id,
                missing_start_utc=gap.start_utc.isoformat(),
                missing_end_utc=gap.end_utc.isoformat(),
            )

    async def _announce_series(self, topic: TopicSpec, now: datetime) -> None:
        """Retirements and returns to ingest.series_status. A worker that dies before sending
        one finds it again: its trackers are rebuilt from its tables after the restart and
        the next tick retires the silent series anew, under the same event ids."""
        changes = self.processor.series_changes()
        self._report_series_changes(changes)
        for change in changes:
            age = self.config.retirement[Dataset(change.dataset)]
            key = f"{change.iso}|{change.dataset}|{change.series_key}"
            await self.send(Output(topic, key, series_status_event(change, age, now)))

    def _report_series_changes(self, changes: list[SeriesChange]) -> None:
        for change in changes:
            log.info(
                "series.retired" if change.status == "RETIRED" else "series.active",
                iso=change.iso,
                dataset=change.dataset,
                series=change.series_key,
                last_interval_start_utc=change.last_interval_start_utc.isoformat(),
            )
        for (iso, dataset), count in self.processor.retired_series().items():
            SERIES_RETIRED.labels(iso, dataset).set(count)

    def _freshness_event(self, run: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "event_id": run["run_id"],
            "occurred_at_utc": run["finished_at_utc"],
            "recorded_at_utc": now,
            "source": "worker:freshness",
            "schema_version": 1,
            "iso": run["iso"],
            "dataset": run["dataset"],
            "latest_interval_end_utc": run["last_interval_end_utc"],
            "arrival_latency_seconds": run["publish_latency_seconds"],
            "last_run_id": run["run_id"],
            "last_run_finished_utc": run["finished_at_utc"],
            "rows_last_run": run["rows_published"],
            "errors_last_run": run["error_count"],
            "last_day_completeness_share": self._completeness(run["iso"], run["dataset"]),
        }

    def _completeness(self, iso: str, dataset: str) -> float | None:
        """Share of intervals received in the day before the dataset's watermark."""
        expected = missing = 0
        for tracker in self.processor.trackers.values():
            if (tracker.iso, tracker.dataset) != (iso, dataset) or tracker.watermark is None:
                continue
            day_start = tracker.watermark - timedelta(days=1)
            for state in tracker.series.values():
                step = timedelta(minutes=state.interval_minutes)
                begin = max(day_start, state.first)
                expected += max(0, int((tracker.watermark - begin) / step))
            for gap in tracker.open_gaps.values():
                overlap = min(gap.end_utc, tracker.watermark) - max(gap.start_utc, day_start)
                if overlap > timedelta(0):
                    missing += int(overlap / timedelta(minutes=gap.interval_minutes))
        return None if expected == 0 else max(0.0, 1 - missing / expected)

    async def _request(self, topic: TopicSpec, window: Window) -> None:
        now = datetime.now(UTC)
        first = window.attempt == 1
        event = {
            "event_id": window.request_id if first else f"{window.request_id}#{window.attempt}",
            "occurred_at_utc": now,
            "recorded_at_utc": now,
            "source": "worker:gaps",
            "schema_version": 1,
            "request_id": window.request_id,
            "iso": window.iso,
            "dataset": window.dataset,
            "window_start_utc": window.start_utc,
            "window_end_utc": window.end_utc,
            "gap_ids": list(window.gap_ids),
            "attempt": window.attempt,
            "reason": "gap" if first else f"retry after attempt {window.attempt - 1}",
        }
        REQUESTS.labels(window.iso, window.dataset).inc()
        await self.send(Output(topic, f"{window.iso}|{window.dataset}", event))
