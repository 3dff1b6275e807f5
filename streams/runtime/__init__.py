"""The streams runtime: one narrow interface that every worker runs on.

A worker hands the runtime batches of records (one fetch, in runs of one topic-partition each,
in offset order) through `BatchTransport`; its step turns each record into outputs,
(topic, key, value), and table changes; `apply_runs` gives the producer the outputs and the
tables' changelog records as one batch per topic-partition, and only then are the records
acked. Every commit flushes the producer first and refuses to go past a send that failed
(which crashes the worker), so no source offset is ever committed past an output or a state
change that is not on the broker. After a crash the uncommitted records are read again; the
workers' steps are idempotent, so that changes nothing but duplicates of identical events.

Everything private of faust-streaming and aiokafka that this needs lives in this package
alone (`internals.RELIED_ON` names each, `internals.PINNED` the versions).
"""

from streams.runtime.app import (
    WorkerAppConfig,
    apply_runs,
    ensure_changelogs,
    worker_app,
)
from streams.runtime.consumer import BatchConsumer, BatchHandler, BatchTransport
from streams.runtime.internals import PINNED, current_event, producer_of
from streams.runtime.producer import KeyPartitioner, ProducerBatches
from streams.runtime.registry import await_writer_schemas
from streams.runtime.tables import ChangelogBatchTable
from streams.runtime.topics import BytesTopics

__all__ = [
    "PINNED",
    "BatchConsumer",
    "BatchHandler",
    "BatchTransport",
    "BytesTopics",
    "ChangelogBatchTable",
    "KeyPartitioner",
    "ProducerBatches",
    "WorkerAppConfig",
    "apply_runs",
    "await_writer_schemas",
    "current_event",
    "ensure_changelogs",
    "producer_of",
    "worker_app",
]
