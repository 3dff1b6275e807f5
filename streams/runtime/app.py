"""The faust app as OptiBid's workers run it, and the batch path's one step: records in,
outputs and table changes out, all with the producer before the records are acked."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Protocol, cast

import faust
from faust.types import Message

from schemas import kafka_client
from schemas.catalog import TopicSpec
from schemas.kafka_client import KafkaSecurity
from schemas.topics import ensure_topics
from streams.runtime.consumer import BatchConsumer, BatchHandler, BatchTransport
from streams.runtime.internals import current_event, producer_of
from streams.runtime.lag import watch_lag
from streams.runtime.producer import KeyPartitioner, ProducerBatches
from streams.runtime.tables import ChangelogBatchTable


def credentials(security: KafkaSecurity) -> faust.types.auth.CredentialsT | None:
    """The process's Kafka security as faust's (aiokafka's) credentials; None for plaintext."""
    context = None
    if security.tls:
        context = ssl.create_default_context(
            cafile=None if security.ca_location is None else str(security.ca_location)
        )
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=context,
            mechanism=security.mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


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
        topic_replication_factor=kafka_client.replication_factor(),
        broker_credentials=credentials(kafka_client.security()),
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
    producer = producer_of(app)
    consumer = cast(BatchConsumer, app.consumer)
    batches = ProducerBatches(producer, partition_of)
    for table in tables:
        table.defer_changelog()
    try:
        for run in runs:
            first = run[0]
            event = app.create_event(first.key, first.value, first.headers, first)
            with current_event(event):
                for message in run:
                    for name, key, value in step(message):
                        await batches.add_keyed(name, key, value)
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


class WorkerAppConfig(Protocol):
    """What a worker's config says about its faust app (WorkerConfig, KpiWorkerConfig)."""

    @property
    def app_id(self) -> str: ...
    @property
    def broker(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def web_host(self) -> str: ...
    @property
    def web_port(self) -> int: ...
    @property
    def batch(self) -> bool: ...
    @property
    def batch_max_records(self) -> int: ...


def worker_app(
    config: WorkerAppConfig, handler: BatchHandler
) -> tuple[faust.App, BatchTransport | None]:
    """A worker's faust app and, when its config says batch, the transport that hands whole
    fetches of its batch topics to `handler` (the worker then names those topics on it). The
    app measures its consumer group's lag (`streams.runtime.lag`)."""
    app = faust_app(
        config.app_id,
        config.broker,
        config.store,
        config.data_dir,
        config.web_host,
        config.web_port,
        config.batch_max_records,
    )
    transport = None
    if config.batch:
        transport = BatchTransport(app.conf.broker_consumer, app, handler)
        app.transport = transport
    watch_lag(app)
    return app, transport


def ensure_changelogs(app: faust.App, bootstrap: str) -> list[str]:
    """Create the changelog topic of every table of `app` (compacted, as many partitions as
    the table) and wait for their leaders; returns the names created. Run before the worker
    starts: faust creates them itself at start-up, but a batch that sets a table key before
    the new topic has reached the consumer's metadata stops the worker (PartitionsMismatch,
    "the changelog topic has 0 partitions"), as a first start of a new app id showed."""
    specs = [
        TopicSpec(
            table.changelog_topic.get_topic_name(),
            "the table's key",
            table.partitions or app.conf.topic_partitions,
            "faust table changelog (the table's own serialisation)",
            f"Changelog of the worker table {table.name}.",
            compact=True,
        )
        for table in app.tables.values()
    ]
    return ensure_topics(bootstrap, specs)
