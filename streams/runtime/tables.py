"""A faust Table whose changelog records are gathered per batch instead of sent one by one."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
from faust.serializers.codecs import dumps
from faust.stores.base import SerializedStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, RecordMetadata
from rocksdict import WriteBatch


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
