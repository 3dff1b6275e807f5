"""The usage meter: one worker that counts `usage.requests` into per-organisation windows on the
streams runtime and sends each window, once closed, to `usage.windows`. Started with
`optibid meter`.

- The batch path counts: each RequestServed into its organisation's state (`streams.meter`)
  in the table `usage_meter` (keyed by org_id, co-partitioned with `usage.requests`, so one
  worker holds every record and the state of an organisation), whose changelog records go to
  the producer with the batch, before its records are acked. A restarted worker restores the
  table from its changelog first.
- A timer closes windows, every `tick_interval_s`: by each partition's stream time while its
  records keep coming, by the wall clock too once it is idle (`streams.meter.PartitionClock`).
  Closing never happens in the batch path, so a backlog read after a restart closes its windows
  as they closed live.

Exactly once, by offsets and an outbox:
- an organisation's state keeps the offset of its last record counted, and a record handed over
  again (at least once delivery) at or below it is skipped, so no request counts twice; the
  state and that offset reach the changelog together, in one producer batch per partition;
- a window is closed in three steps, each waited for: the state without it and with it in
  `unsent` to the changelog; its record to `usage.windows`; the state with `unsent` emptied to
  the changelog. A crash between any two sends the same record again (same id, same values)
  after the restart and never loses it; a request arriving after the first step is late and
  counts in a later window, so a window's record never changes once it could have been sent.
Batches and the timer take turns (one lock), so the timer never sees a state that a batch in
hand is changing.

A record that is not a decodable RequestServed, or is keyed by another organisation than its
own, is logged, counted, and passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
import structlog
from faust.types import TP, EventT, Message
from prometheus_client import Counter, Gauge

from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.errors import DeserializationError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.meter import (
    REQUEST_SCHEMA,
    STREAM_TIME,
    WALL_CLOCK,
    OrgMeter,
    PartitionClock,
    add,
    close,
    dump,
    load,
    next_close,
    sent,
    target_window,
    window_record,
    window_start,
)
from streams.runtime import (
    BytesTopics,
    ChangelogBatchTable,
    KeyPartitioner,
    ProducerBatches,
    apply_runs,
    await_writer_schemas,
    current_event,
    producer_of,
    worker_app,
)

log = structlog.get_logger(__name__)

REQUESTS = Counter(
    "optibid_meter_requests_total",
    "Request records taken by the meter, by what it did with them",
    ["outcome"],  # counted, late (counted in a later window than its own), duplicate
)
UNDECODABLE = Counter(
    "optibid_meter_undecodable_total",
    "Records on usage.requests that are no decodable RequestServed of their key (passed)",
)
WINDOWS = Counter(
    "optibid_meter_windows_closed_total",
    "Usage windows closed and sent, by the clock that closed them",
    ["clock"],  # stream_time, wall_clock
)
for _clock in (STREAM_TIME, WALL_CLOCK):  # series from the start, at 0
    WINDOWS.labels(_clock)
ORGS_OPEN = Gauge(
    "optibid_meter_organizations_open",
    "Organisations with an open usage window (or one to send) on this worker",
)


@dataclass(frozen=True)
class MeterWorkerConfig:
    broker: str
    registry_url: str
    topic_prefix: str = ""
    app_id: str = "optibid-meter"
    store: str = "rocksdb://"
    data_dir: str = ".optibid/meter"
    web_port: int = 6069
    web_host: str = "127.0.0.1"
    batch: bool = True  # requests take the batch path (BatchConsumer), else faust's streams
    batch_max_records: int = 2_000
    window_s: int = 60
    lateness_s: int = 10
    tick_interval_s: float = 1.0  # how often the timer closes windows
    idle_after_s: float = 10.0  # a partition without records this long closes by wall clock


@dataclass(frozen=True)
class _Due:
    """Where an organisation's state is and when the timer has work on it (None: at once, it
    has windows to send)."""

    partition: int
    at: datetime | None


class MeterWorker:
    """Builds the faust app of the usage meter for one MeterWorkerConfig."""

    def __init__(self, config: MeterWorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.serde = AvroSerde(RegistryClient(config.registry_url), ContractSet())
        self.app, self.transport = worker_app(config, self.apply)
        self.partition_of = KeyPartitioner()
        self.topic = BytesTopics(self.app)
        self.requests = self.catalog.usage("requests")
        self.windows = self.catalog.usage("windows")
        self.clock = PartitionClock(config.idle_after_s)
        self._encoder: Encoder | None = None
        self._turn = asyncio.Lock()  # batches and the timer take turns
        # the states set by the batch in hand (only while one is), read before the table
        self._batch: dict[str, dict[str, Any]] | None = None
        # per organisation of this worker with an open window: where, and when it closes;
        # read from the table again after a start or a rebalance
        self._due: dict[str, _Due] = {}
        self._due_loaded = False
        self._define()

    def prepare(self) -> None:
        """Resolve the schema id of `usage.windows`, at start."""
        self._encoder = self.serde.encoder(self.windows.subject, self.windows.value_schema)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        if self._encoder is None:
            self.prepare()
        assert self._encoder is not None
        return self._encoder(record)

    # --- counting ---------------------------------------------------------------------------

    def count(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, at_s: float
    ) -> None:
        """One record of `usage.requests` into its organisation's state (and the table); a
        record that is no RequestServed of its key is logged, counted and passed; a registry
        outage is raised (the batch is read again)."""
        try:
            request = self._request(key, value)
        except DeserializationError as exc:
            UNDECODABLE.inc()
            log.error(
                "meter.request_undecodable",
                topic=self.requests.name,
                partition=partition,
                offset=offset,
                error=str(exc),
            )
            return
        org_id = request["org_id"]
        self.clock.observe(partition, request["occurred_at_utc"], at_s)
        kept = self._batch.get(org_id) if self._batch is not None else None
        if kept is None:
            kept = self.meter.get(org_id)
        state = load(kept) if kept is not None else OrgMeter(org_id)
        if kept is not None and kept["partition"] != partition:
            # the organisation's records moved (partitions added to the topic, another
            # partitioner): offsets of its former partition say nothing of this one's
            log.warning(
                "meter.partition_changed", org_id=org_id, was=kept["partition"], now=partition
            )
            state = replace(state, offset=-1)
        if state.counted(offset):
            REQUESTS.labels("duplicate").inc()
            return
        window_s = self.config.window_s
        counted_in = target_window(state, request["occurred_at_utc"], window_s)
        if counted_in != window_start(request["occurred_at_utc"], window_s):
            REQUESTS.labels("late").inc()
            log.info(
                "meter.late_request",
                org_id=org_id,
                occurred_at_utc=request["occurred_at_utc"].isoformat(),
                counted_in=counted_in.isoformat(),
            )
        else:
            REQUESTS.labels("counted").inc()
        self._keep(partition, add(state, request, offset, window_s))

    def _request(self, key: bytes | None, value: bytes | None) -> dict[str, Any]:
        """The RequestServed a record holds; DeserializationError when it holds none, or is
        keyed by another organisation (its offset would be of another partition than the
        organisation's others)."""
        if key is None or value is None:
            raise DeserializationError("a usage record needs a key and a value")
        name, request = self.serde.decode(value)  # a registry outage is raised: no skip
        if name != REQUEST_SCHEMA:
            raise DeserializationError(f"a {name} record on {self.requests.name}")
        if key != request["org_id"].encode():
            raise DeserializationError(
                f"request {request['event_id']} of organisation {request['org_id']!r} keyed {key!r}"
            )
        return request

    def _keep(self, partition: int, state: OrgMeter) -> None:
        """`state` to the table (under the current event's partition) and the timer's list."""
        value = {"partition": partition, **dump(state)}
        self.meter[state.org_id] = value
        if self._batch is not None:
            self._batch[state.org_id] = value
        self._schedule(partition, state)

    def _schedule(self, partition: int, state: OrgMeter) -> None:
        when = (
            None
            if state.unsent
            else next_close(state, self.config.window_s, self.config.lateness_s)
        )
        if state.unsent or when is not None:
            self._due[state.org_id] = _Due(partition, when)
        else:
            self._due.pop(state.org_id, None)

    async def apply(self, runs: list[list[Message]]) -> None:
        """The batch path: each record counted in order; the table's changelog records to the
        producer as one batch per partition, then the acks."""
        await await_writer_schemas(self.serde, runs)
        async with self._turn:
            arrived_s = time.monotonic()

            def step(message: Message) -> list[tuple[str, bytes, bytes]]:
                self.count(message.key, message.value, message.partition, message.offset, arrived_s)
                return []

            # a batch's table writes reach a RocksDB store only when the batch is done, so
            # the states it sets are read from here meanwhile
            self._batch = {}
            try:
                await apply_runs(self.app, (self.meter,), runs, step, self.partition_of)
            finally:
                self._batch = None

    # --- closing ----------------------------------------------------------------------------

    async def close_due(self, wall: datetime, at_s: float) -> int:
        """Close and send the windows due now (see the module's docstring); returns how many
        windows were closed."""
        assigned = self._assigned()
        if not self._due_loaded:
            self._load_due(assigned)
        closing: dict[int, dict[str, OrgMeter]] = {}
        clocks: dict[str, str] = {}
        closed = 0
        for org_id, due in list(self._due.items()):
            if due.partition not in assigned:  # revoked meanwhile
                del self._due[org_id]
                continue
            now, clock = self.clock.now(due.partition, wall, at_s)
            if due.at is not None and (now is None or due.at > now):
                continue
            stored = self.meter.get(org_id)
            if stored is None:
                del self._due[org_id]
                continue
            state = load(stored)
            if now is not None:
                records, state = close(
                    state, now, self.config.window_s, self.config.lateness_s, recorded_at=wall
                )
                closed += len(records)
            clocks[org_id] = clock
            closing.setdefault(due.partition, {})[org_id] = state
        if closing:
            await self._write(closing)  # 1: out of the open windows, into the outbox
            await self._send(closing, clocks)  # 2: the outbox to usage.windows
            emptied = {p: {o: sent(s) for o, s in states.items()} for p, states in closing.items()}
            await self._write(emptied)  # 3: the outbox emptied
            for partition, states in emptied.items():
                for state in states.values():
                    self._schedule(partition, state)
        ORGS_OPEN.set(len(self._due))
        return closed

    def _assigned(self) -> set[int]:
        """The partitions of `usage.requests` this worker holds."""
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.requests.name
        }

    def _load_due(self, assigned: set[int]) -> None:
        """After a start or a rebalance: the organisations of the table with work for the
        timer (the table holds this worker's partitions, restored)."""
        self._due.clear()
        self.clock.keep(assigned)
        for value in self.meter.values():
            if value is not None and value["partition"] in assigned:
                self._schedule(value["partition"], load(value))
        self._due_loaded = True

    async def _write(self, changes: Mapping[int, Mapping[str, OrgMeter]]) -> None:
        """States set outside a batch (the timer's), each under its partition as the current
        event, their changelog records to the producer; returns once they are delivered."""
        table = self.meter
        table.defer_changelog()
        try:
            for partition, states in changes.items():
                with current_event(self._event(partition)):
                    for org_id, state in states.items():
                        table[org_id] = {"partition": partition, **dump(state)}
            records = table.take_changelog()
        finally:
            table.discard_changelog()
        batches = ProducerBatches(producer_of(self.app), self.partition_of)
        changelog = table.changelog_topic.get_topic_name()
        for partition, key, value in records:
            batches.add(changelog, partition, key, value)
        sent_batches = await batches.send()
        for _, count, future in sent_batches:
            future.add_done_callback(partial(table.changelog_delivered, count))
        await asyncio.gather(*(future for _, _, future in sent_batches))

    def _event(self, partition: int) -> EventT[Any]:
        """An event of `partition` of `usage.requests` holding no record: what the table keys
        a change by (store and changelog partition) when no record is in hand."""
        message = Message(
            self.requests.name, partition, -1, time.time(), 0, [], None, None, None,
            tp=TP(self.requests.name, partition),
        )  # fmt: skip
        return self.app.create_event(None, None, [], message)

    async def _send(
        self, closing: Mapping[int, Mapping[str, OrgMeter]], clocks: Mapping[str, str]
    ) -> None:
        """Every window in the outboxes to `usage.windows` (keyed by org_id); returns once
        they are delivered."""
        batches = ProducerBatches(producer_of(self.app), self.partition_of)
        fresh: list[tuple[str, dict[str, Any]]] = []
        for states in closing.values():
            for org_id, state in states.items():
                for window in state.unsent:
                    record = window_record(org_id, window)
                    await batches.add_keyed(self.windows.name, org_id.encode(), self.encode(record))
                    fresh.append((org_id, record))
        sent_batches = await batches.send()
        await asyncio.gather(*(future for _, _, future in sent_batches))
        for org_id, record in fresh:
            WINDOWS.labels(clocks[org_id]).inc()
            log.info(
                "meter.window_closed",
                org_id=org_id,
                window_start_utc=record["window_start_utc"].isoformat(),
                requests=record["requests"],
                rows=record["rows"],
                bytes=record["bytes"],
                dry_runs=record["dry_runs"],
                clock=clocks[org_id],
            )

    def _define(self) -> None:
        app = self.app
        self.meter = cast(
            ChangelogBatchTable,
            app.Table("usage_meter", default=None, partitions=self.requests.partitions),
        )

        @app.on_rebalance_complete.connect
        async def reload(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # other partitions, other organisations: the timer reads the table again
            self._due_loaded = False

        async def consume(stream: faust.StreamT[bytes]) -> None:
            # faust's per-event path: what runs with `batch` off
            async for event in stream.events():
                message = event.message
                await await_writer_schemas(self.serde, [[message]])  # waits out an outage
                async with self._turn:
                    self.count(
                        message.key, message.value, message.partition, message.offset,
                        time.monotonic(),
                    )  # fmt: skip

        async def tick() -> None:
            if not cast(Any, app.tables).recovery.completed.is_set():  # restored first
                return
            if app.rebalancing or app.in_recovery:
                return
            async with self._turn:
                await self.close_due(datetime.now(UTC), time.monotonic())

        self.agent = app.agent(self.topic(self.requests), name="usage-meter")(consume)
        if self.transport is not None:
            self.transport.batch_topics = frozenset({self.requests.name})
        # faust's timer decorator is untyped; registering by call keeps the function typed
        app.timer(self.config.tick_interval_s, name="meter-close")(tick)
