"""The worker's batch path without a broker: BatchConsumer delivering a fetch to
StreamWorker.process_market, outputs and changelog records gathered as producer batches, the
tables' deferred changelog, and the commit guard on failed sends.

The aiokafka producer is replaced by a recorder of the batches it is handed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP, Message

from schemas.catalog import Dataset, Iso
from streams.app import StreamWorker, WorkerConfig
from streams.runtime import BatchConsumer, ChangelogBatchTable, ProducerBatches, current_event
from tests.unit.streams.factories import T0, raw_lmp

PARTITIONS = 6


@dataclass
class FakeBuilder:
    """aiokafka's BatchBuilder, as far as the batch path uses it."""

    records: list[tuple[bytes | None, bytes | None]] = field(default_factory=list)
    closed: bool = False
    room: int = 1_000

    def append(self, *, timestamp: float | None, key: bytes | None, value: bytes | None) -> Any:
        if self.closed or len(self.records) >= self.room:
            self.closed = True
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    """aiokafka's AIOKafkaProducer, as far as the batch path uses it: keeps what it is sent."""

    def __init__(self, room: int = 1_000) -> None:
        self.room = room
        self.sent: list[tuple[str, int, FakeBuilder, asyncio.Future[Any]]] = []

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder(room=self.room)

    async def send_batch(self, batch: FakeBuilder, topic: str, *, partition: int) -> Any:
        assert batch.closed, "batches are closed before they are submitted"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, future))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    @staticmethod
    def _partitioner(key: bytes, all_partitions: list[int], available: list[int]) -> int:
        return all_partitions[sum(key) % len(all_partitions)]

    def records(self, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
        return [(p, k, v) for t, p, b, _ in self.sent if t == topic for k, v in b.records]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()


def make_worker(tmp_path: Path, store: str = "memory://") -> StreamWorker:
    config = WorkerConfig(
        broker="127.0.0.1:1",
        registry_url="http://127.0.0.1:1/apis/ccompat/v7",
        store=store,
        data_dir=str(tmp_path),
        app_id="batch-test",
    )
    sw = StreamWorker(config)
    for number, topic in enumerate(sw.catalog, start=1):
        sw.serde.preload(topic.subject, topic.value_schema, number)
    sw.app.finalize()
    return sw


@pytest.fixture
def worker(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> tuple[StreamWorker, FakeProducer]:
    sw = make_worker(tmp_path)
    producer = FakeProducer()
    sw.app.producer._ensure_producer = lambda: producer  # type: ignore[attr-defined]  # the fake
    return sw, producer


def message(topic: str, partition: int, offset: int, key: bytes, value: bytes) -> Message:
    return Message(
        topic,
        partition,
        offset,
        T0.timestamp(),
        0,
        None,
        key,
        value,
        None,
        tp=TP(topic, partition),
        generation_id=0,
    )


def encode(sw: StreamWorker, record: dict[str, Any], topic: str) -> bytes:
    spec = next(t for t in sw.catalog if t.name == topic)
    return sw.serde.encoder(spec.subject, spec.value_schema)(record)


def test_a_fetch_becomes_one_producer_batch_per_topic_partition(
    worker: tuple[StreamWorker, FakeProducer], loop: asyncio.AbstractEventLoop
) -> None:
    sw, producer = worker
    raw = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    runs = [
        [
            message(raw, 2, 0, b"PJM|RT_5MIN|51288", encode(sw, raw_lmp("51288", T0), raw)),
            message(raw, 2, 1, b"PJM|RT_5MIN|51288", encode(sw, raw_lmp("51288", T0), raw)),
            message(raw, 2, 2, b"PJM|RT_5MIN|51288", b"\x00\x00\x00\x00\x01garbage"),
        ],
        [
            message(
                raw,
                4,
                7,
                b"PJM|RT_5MIN|7",
                encode(sw, raw_lmp("7", T0 + timedelta(minutes=5)), raw),
            )
        ],
    ]
    loop.run_until_complete(sw.process_market(runs))

    lmp = producer.records(sw.catalog.core("lmp").name)
    assert len(lmp) == 2  # the redelivery of offset 0 (as offset 1) is a duplicate
    for partition, key, value in lmp:
        assert key is not None
        assert value is not None
        assert partition == FakeProducer._partitioner(key, [0, 1, 2, 3, 4, 5], [])
        _, event = sw.serde.decode(value)
        assert event["location_id"] in ("51288", "7")
    locations = producer.records(sw.catalog.core("locations").name)
    assert sorted(k or b"" for _, k, _ in locations) == [b"PJM|RT_5MIN|51288", b"PJM|RT_5MIN|7"]
    [(_, _, dead)] = producer.records(sw.catalog.dlq(Iso.PJM, Dataset.LMP_RT_5MIN).name)
    assert dead is not None
    assert sw.serde.decode(dead)[1]["reason_codes"] == ["UNDECODABLE"]

    # the state changes: in the tables, and one changelog record each, in the source partition
    changelog = sw.revisions.changelog_topic
    records = producer.records(changelog.get_topic_name())
    assert sorted(p for p, _, _ in records) == [2, 4]
    decoded = {
        sw.app.serializers.loads_key(None, k, serializer="json"): (
            p,
            sw.app.serializers.loads_value(None, v, serializer="json"),
        )
        for p, k, v in records
    }
    assert set(decoded) == set(sw.revisions)
    for key, (partition, state) in decoded.items():
        assert sw.revisions[key] == state
        assert state[2] == f"{raw}:{partition}:{0 if partition == 2 else 7}"
    # serialized exactly as faust's changelog topic serializes them
    for _, key_bytes, value_bytes in records:
        key = sw.app.serializers.loads_key(None, key_bytes, serializer="json")
        assert changelog.prepare_key(key, sw.revisions.key_serializer)[0] == key_bytes
        assert (
            changelog.prepare_value(sw.revisions[key], sw.revisions.value_serializer)[0]
            == value_bytes
        )
    assert len(producer.records(sw.locations.changelog_topic.get_topic_name())) == 2

    # every batch is tracked for the commit guard
    consumer = sw.app.consumer
    assert isinstance(consumer, BatchConsumer)
    assert len(consumer._sends) == len(producer.sent)


def test_delivered_changelog_batches_move_the_persisted_offset(
    worker: tuple[StreamWorker, FakeProducer],
    loop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sw, producer = worker
    persisted: list[tuple[TP, int]] = []
    monkeypatch.setattr(
        sw.revisions.data, "set_persisted_offset", lambda tp, o: persisted.append((tp, o))
    )
    raw = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    run = [
        message(
            raw,
            3,
            n,
            b"PJM|RT_5MIN|1",
            encode(sw, raw_lmp("1", T0 + timedelta(minutes=5 * n)), raw),
        )
        for n in range(5)
    ]
    loop.run_until_complete(sw.process_market([run]))
    name = sw.revisions.changelog_topic.get_topic_name()
    [(_, partition, batch, future)] = [s for s in producer.sent if s[0] == name]
    assert (partition, batch.record_count()) == (3, 5)

    async def deliver() -> None:
        metadata = SimpleNamespace(topic_partition=SimpleNamespace(topic=name, partition=3))
        future.set_result(SimpleNamespace(**vars(metadata), offset=40))  # the batch's base
        await asyncio.sleep(0)

    loop.run_until_complete(deliver())
    assert persisted == [(TP(name, 3), 44)]  # the batch's last record


def test_a_full_batch_is_followed_by_another_in_order(loop: asyncio.AbstractEventLoop) -> None:
    producer = FakeProducer(room=2)
    batches = ProducerBatches(producer)
    for n in range(5):
        batches.add("t", 1, b"k", str(n).encode())

    sent = loop.run_until_complete(batches.send())
    assert [count for _, count, _ in sent] == [2, 2, 1]
    assert [v for _, _, v in producer.records("t")] == [b"0", b"1", b"2", b"3", b"4"]


def test_rocksdb_values_reach_the_store_in_one_write_batch_per_partition(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    sw = make_worker(tmp_path, store="rocksdb://")
    producer = FakeProducer()
    sw.app.producer._ensure_producer = lambda: producer  # type: ignore[attr-defined]  # the fake
    raw = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    runs = [
        [message(raw, p, 0, f"PJM|RT_5MIN|{p}".encode(), encode(sw, raw_lmp(str(p)), raw))]
        for p in (0, 5)
    ]
    loop.run_until_complete(sw.process_market(runs))
    store = sw.revisions.data
    for p in (0, 5):
        db = store._db_for_partition(p)  # type: ignore[attr-defined]  # the RocksDB store's
        stored = list(db.keys())  # iterating a raw-mode Rdict itself raises
        keys = [k for k in stored if not k.startswith(b"__faust")]
        assert len(keys) == 1
        assert f"|{p}|".encode() in keys[0]
    name = sw.revisions.changelog_topic.get_topic_name()
    assert sorted(p for p, _, _ in producer.records(name)) == [0, 5]


def test_deferred_values_are_in_a_rocksdb_store_before_their_changelog_is_sent(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    sw = make_worker(tmp_path, store="rocksdb://")
    table: ChangelogBatchTable = sw.revisions
    raw = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    source = message(raw, 1, 0, b"k", b"v")

    async def set_and_take() -> tuple[
        list[bytes], list[tuple[int, bytes, bytes | None]], list[bytes]
    ]:
        event = sw.app.create_event(source.key, source.value, source.headers, source)
        with current_event(event):
            table.defer_changelog()
            table["a|key"] = [1, "d", f"{raw}:1:0", None, "s", 5]
            db = table.data._db_for_partition(1)  # type: ignore[attr-defined]  # RocksDB's
            before = [k for k in list(db.keys()) if not k.startswith(b"__faust")]
            records = table.take_changelog()
            after = [k for k in list(db.keys()) if not k.startswith(b"__faust")]
        return before, records, after

    before, records, after = loop.run_until_complete(set_and_take())
    assert (before, after) == ([], [b'"a|key"'])
    assert records == [(1, b'"a|key"', f'[1,"d","{raw}:1:0",null,"s",5]'.encode())]
    assert table["a|key"] == [1, "d", f"{raw}:1:0", None, "s", 5]


def flowing(sw: StreamWorker) -> tuple[BatchConsumer, str]:
    """The worker's batch consumer, its flow resumed, and the raw topic to fetch from."""
    consumer = sw.app.consumer
    assert isinstance(consumer, BatchConsumer)
    sw.app.flow_control.resume()
    return consumer, sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name


def test_a_batch_is_acked_only_after_its_handler_returned(
    worker: tuple[StreamWorker, FakeProducer], loop: asyncio.AbstractEventLoop
) -> None:
    sw, _ = worker
    consumer, raw = flowing(sw)
    fetched = [message(raw, p % 2, p, b"k", b"v") for p in range(4)]
    stale = message(raw, 0, 9, b"k", b"v")
    stale.generation_id = -1  # fetched before a rebalance
    seen: list[list[list[Message]]] = []

    async def handler(runs: list[list[Message]]) -> None:
        assert consumer._unacked_messages, "a rebalance waits for the batch in hand"
        assert not any(m.acked for run in runs for m in run)
        seen.append(runs)

    consumer.batch_handler = handler
    loop.run_until_complete(consumer._deliver([*fetched, stale]))
    [runs] = seen
    assert [[m.offset for m in run] for run in runs] == [[0, 2], [1, 3]]  # by partition
    assert all(m.acked for m in fetched)
    assert not stale.acked  # read again from the committed offset after the rebalance
    assert not consumer._unacked_messages


def test_a_failed_batch_is_not_acked(
    worker: tuple[StreamWorker, FakeProducer], loop: asyncio.AbstractEventLoop
) -> None:
    sw, _ = worker
    consumer, raw = flowing(sw)
    fetched = [message(raw, 0, n, b"k", b"v") for n in range(3)]

    async def handler(runs: list[list[Message]]) -> None:
        raise RuntimeError("bug")

    consumer.batch_handler = handler
    with pytest.raises(RuntimeError):
        loop.run_until_complete(consumer._deliver(fetched))
    assert not any(m.acked for m in fetched)
    assert not consumer._unacked_messages


def test_no_commit_after_a_failed_send(
    worker: tuple[StreamWorker, FakeProducer],
    loop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sw, _ = worker
    consumer = sw.app.consumer
    assert isinstance(consumer, BatchConsumer)
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    monkeypatch.setattr(sw.app, "crash", crash)

    async def scenario() -> tuple[bool, int]:
        running = asyncio.get_running_loop()
        delivered, pending = running.create_future(), running.create_future()
        delivered.set_result(None)
        for future in (delivered, pending):
            consumer.track_send(future)
        assert consumer._check_sends() is None
        kept = len(consumer._sends)  # the delivered one is forgotten, the pending one kept
        pending.set_exception(OSError("broker gone"))
        committed = await consumer._commit({TP("t", 0): 10})
        await asyncio.sleep(0)
        return committed, kept

    committed, kept = loop.run_until_complete(scenario())
    assert kept == 1
    assert committed is False
    assert isinstance(consumer.send_failure, OSError)
    assert [type(c) for c in crashes] == [OSError]
