"""Every private of faust-streaming and aiokafka the streams runtime relies on, named in one
place, with the exact versions it was written against.

The runtime subclasses faust's table and aiokafka consumer and drives aiokafka's producer
batches directly, which public APIs do not allow; those uses live in `streams/runtime/` alone
(tests/unit/test_layering.py refuses a private of another package anywhere else), behind the
helpers below where code outside a subclass needs them. `RELIED_ON` lists each attribute;
tests/unit/streams/runtime/test_internals.py fails, naming it, when an upgrade removes one,
and `PINNED` must match the installed versions (pyproject.toml pins them exactly).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

# (importable owner, attribute): module-level names, class attributes and methods, and the
# instance attributes the subclasses read (checked in the owner's source).
RELIED_ON: tuple[tuple[str, str], ...] = (
    ("faust.streams", "_current_event"),
    ("faust.tables.base:Collection", "_sensor_on_set"),
    ("faust.tables.base:Collection", "_sensor_on_del"),
    ("faust.tables.base:Collection", "_maybe_set_key_ttl"),
    ("faust.tables.base:Collection", "_maybe_del_key_ttl"),
    ("faust.stores.base:SerializedStore", "_encode_key"),
    ("faust.stores.base:SerializedStore", "_encode_value"),
    ("faust.stores.base:SerializedStore", "_set"),
    ("faust.stores.base:SerializedStore", "_del"),
    ("faust.stores.rocksdb:Store", "_db_for_partition"),
    ("faust.stores.rocksdb:Store", "_key_index"),
    ("faust.transport.drivers.aiokafka:Producer", "_ensure_producer"),
    ("aiokafka.producer.producer:AIOKafkaProducer", "_partitioner"),
    ("faust.transport.consumer:Consumer", "_commit"),
    ("faust.transport.consumer:Consumer", "_drain_messages"),
    ("faust.transport.consumer:Consumer", "_unacked_messages"),
    ("faust.transport.consumer:Consumer", "_read_offset"),
    ("faust.transport.consumer:Consumer", "_committed_offset"),
    ("faust.transport.consumer:Consumer", "_add_gap"),
    ("faust.transport.consumer:Consumer", "_n_acked"),
    ("faust.transport.consumer:Consumer", "_commit_every"),
    ("mode.services:Service", "_stopped"),
)


def producer_of(app: faust.App) -> Any:
    """The app's aiokafka producer (an AIOKafkaProducer, untyped), started if need be."""
    return cast(aiokafka_driver.Producer, app.producer)._ensure_producer()


def committed_offsets(consumer: Any) -> dict[TP, int | None]:
    """The offsets faust last committed (or found committed at assignment) per partition of
    `consumer` (a faust Consumer); None where the group has no commit."""
    return dict(cast(Mapping[TP, "int | None"], consumer._committed_offset))


def partition_for(producer: Any, key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's own partitioner picks for `key`, as `send()` would."""
    return int(producer._partitioner(key, partitions, partitions))


@contextmanager
def current_event(event: Any) -> Iterator[None]:
    """Make `event` faust's current event: tables keep a key in its partition (store and
    changelog), as for a record handed to an agent."""
    token: Token[Any] = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
