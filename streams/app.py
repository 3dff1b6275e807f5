"""The stream worker: a faust-streaming app whose agents are thin (decode, call the pure
processor, send). Started with `optibid worker`.

Agents
- `market`: every raw topic -> validate -> dlq.<iso>.<dataset> | core.market.* (+ locations);
  revision state in the `revisions` table, first sightings in the `locations` table.
- a timer declares gaps (ingest.gaps). A crash between declaring and sending loses nothing:
  the trackers are rebuilt from the tables after a restart and declare the same gaps again
  under the same deterministic ids; every open gap is also announced again once an hour.
- `collect`: ingest.gaps -> the backfill planner, which cuts BackfillRequested windows lazily
  (newest first, within the feeds' reach, a few outstanding per (ISO, dataset)).
- `outcomes`: ingest.backfill_completed -> retry FAILED/EMPTY windows up to MAX_ATTEMPTS. An
  outcome names its window and attempt, so the retry policy (`gaps.next_attempt`) needs nothing
  else; a queued retry is kept in the `backfill_retries` table until an outcome answers it, so
  a worker that dies before sending it finds it again after the restart (and sends it, under
  the same event id, once more at worst).
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

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import structlog
from faust.types import Message
from prometheus_client import Counter, Gauge

from schemas.catalog import Dataset, Iso, TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.gaps import (
    BackfillOutcome,
    BackfillPlanner,
    BackfillWindow,
    Gap,
    SeriesChange,
    completeness,
)
from streams.processor import (
    DEFAULT_BACKFILL_REACH,
    DEFAULT_LATENESS,
    DEFAULT_RETIREMENT_AGE,
    DEFAULT_REVISION_RETENTION,
    MarketProcessor,
    Output,
    backfill_request_event,
    freshness_event,
    gap_event,
    series_status_event,
)
from streams.runtime import (
    BytesTopics,
    ChangelogBatchTable,
    KeyPartitioner,
    apply_runs,
    await_writer_schemas,
    worker_app,
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


def _series_at_zero(datasets: Iterable[tuple[Iso, Dataset]]) -> None:
    """A gap and backfill-request series per ISO dataset from the start, at 0 (labelled, as
    the gaps are, with the ISO's wire name)."""
    for iso, dataset in datasets:
        GAPS.labels(iso.wire, dataset.value)
        REQUESTS.labels(iso.wire, dataset.value)


REANNOUNCE_EVERY = timedelta(hours=1)  # O(open gaps) sends: rare, not every few ticks


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


def market_processor(
    config: WorkerConfig, catalog: TopicCatalog, serde: AvroSerde
) -> MarketProcessor:
    """The market step's processor with a worker config's validation, lateness, revision
    retention and retirement ages."""
    return MarketProcessor(
        catalog,
        serde,
        config.validation,
        config.lateness,
        retention=config.revision_retention,
        retirement=config.retirement,
    )


def market_step(
    processor: MarketProcessor,
    message: Message,
    revisions: MutableMapping[str, Any],
    locations: MutableMapping[str, Any],
) -> list[Output]:
    """The market step of one raw record as a worker consumed it: its topic, partition, offset
    and broker timestamp go with it."""
    stamp = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
    return processor.process(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        cast(bytes, message.value),  # raw topics carry no tombstones
        revisions,
        locations,
        timestamp_utc=stamp,
    )


class StreamWorker:
    """Builds the Faust app and its agents for one WorkerConfig."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.registry = RegistryClient(config.registry_url)
        self.serde = AvroSerde(self.registry, ContractSet())
        self.processor = market_processor(config, self.catalog, self.serde)
        _series_at_zero(self.processor.raw_topics.values())
        self.app, self.transport = worker_app(config, self.process_market)
        self._encoders: dict[str, Encoder] = {}
        self.topic = BytesTopics(self.app)
        self.partition_of = KeyPartitioner()
        self._announced_at = datetime.now(UTC)  # the first tick after a start declares anew
        self._restore_retries = True  # the first tick after a rebalance reads backfill_retries
        self._recount_retired = True  # ...and counts the retired series again
        self.planner = BackfillPlanner(
            {d.value: reach for d, reach in config.backfill_reach.items()},
            max_outstanding=config.backfill_max_outstanding,
            max_attempts=MAX_ATTEMPTS,
        )
        self._define()

    def prepare(self) -> None:
        """Resolve the schema id of every topic the worker writes, at start (the registry
        answers then, or the contracts could not have been registered): a registry outage
        later delays the decoding of ids not seen yet, never an output."""
        for spec in self.catalog:
            layer = spec.name.removeprefix(self.catalog.prefix).split(".")[0]
            if layer in ("core", "dlq", "ingest"):
                self._encoder(spec)

    def _encoder(self, spec: TopicSpec) -> Encoder:
        encoder = self._encoders.get(spec.name)
        if encoder is None:
            encoder = self._encoders[spec.name] = self.serde.encoder(
                spec.subject, spec.value_schema
            )
        return encoder

    def encode(self, out: Output) -> bytes:
        return self._encoder(out.topic)(out.value)

    def send_soon(self, out: Output) -> None:
        self.topic(out.topic).send_soon(key=out.key.encode(), value=self.encode(out))

    async def send(self, out: Output) -> None:
        await self.topic(out.topic).send(key=out.key.encode(), value=self.encode(out))

    def process_one(self, message: Message) -> list[Output]:
        """The market step for one raw record (state in the tables, under the current
        event's partition)."""
        return market_step(self.processor, message, self.revisions, self.locations)

    async def process_market(self, runs: list[list[Message]]) -> None:
        """The batch path: the market step for each record (see `apply_runs`)."""
        await await_writer_schemas(self.serde, runs)

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
            self._restore_retries = self._recount_retired = True

        raw_specs = [catalog.raw(*pair) for pair in processor.raw_topics.values()]
        self._tables()
        gaps_topic = catalog.ingest("gaps")
        completed_topic = catalog.ingest("backfill_completed")
        requests_topic = catalog.ingest("backfill_requests")
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
            if now - self._announced_at >= REANNOUNCE_EVERY:
                self._announced_at = now
                due = processor.open_gaps()  # again, as a safety net
            for gap in due:
                GAPS.labels(gap.iso, gap.dataset).inc()
                lateness = self.config.lateness[Dataset(gap.dataset)]
                out = Output(gaps_topic, f"{gap.iso}|{gap.dataset}", gap_event(gap, lateness, now))
                await self.send(out)
            GAPS_OPEN.set(processor.open_gap_count())
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
            self._restore()
            windows, beyond = self.planner.due(datetime.now(UTC))
            self._report_beyond_reach(beyond)
            for window in windows:
                await self._request(requests_topic, window)

        async def outcomes(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, done = self.serde.decode(value)
                self._settle(done)
                if done["outcome"] == "UNRECOVERABLE":
                    log.warning(
                        "backfill.unrecoverable",
                        request_id=done["request_id"],
                        reason=done["reason"],
                    )

        async def freshness(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, run = self.serde.decode(value)
                event = self._freshness(run)
                await self.send(Output(freshness_topic, f"{run['iso']}|{run['dataset']}", event))

        self.collect_agent = app.agent(self.topic(gaps_topic), name="collect")(collect)
        self.outcomes_agent = app.agent(self.topic(completed_topic), name="outcomes")(outcomes)
        self.freshness_agent = app.agent(
            self.topic(catalog.ingest("connector_runs")), name="freshness"
        )(freshness)
        # faust's timer decorator is untyped; registering by call keeps the functions typed
        app.timer(interval=self.config.tick_interval_s)(declare_gaps)
        app.timer(interval=self.config.tick_interval_s)(request_backfills)
        self.request_backfills = request_backfills

    def _tables(self) -> None:
        def table(name: str, partitions: int) -> ChangelogBatchTable:
            # ChangelogBatchTable (App(Table=...)); faust types app.Table as TableT
            made = self.app.Table(name, default=None, partitions=partitions)
            return cast(ChangelogBatchTable, made)

        self.revisions = table("revisions", 6)
        self.locations = table("locations", 6)
        # written by the outcomes agent alone, so co-partitioned with the topic it reads
        self.retries = table(
            "backfill_retries", self.catalog.ingest("backfill_completed").partitions
        )

    def _settle(self, done: dict[str, Any]) -> None:
        """An outcome to the planner; the retry it queues is kept in `backfill_retries` (in the
        outcome's partition) until an outcome answers it for good."""
        settled = self.planner.settle(BackfillOutcome.of(done))
        request_id = done["request_id"]
        if settled.retry is not None:
            self.retries[request_id] = settled.retry.to_state()
        elif not settled.stale and request_id in self.retries:
            del self.retries[request_id]

    def _restore(self) -> None:
        """After a start or a rebalance (timers run once the tables are restored): the retries
        in `backfill_retries` that the planner does not hold go to its queue again."""
        if not self._restore_retries:
            return
        self._restore_retries = False
        stored = [BackfillWindow.from_state(v) for v in self.retries.values()]
        for window in self.planner.restore(stored):
            log.info(
                "backfill.retry_restored", request_id=window.request_id, attempt=window.attempt
            )

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
        if changes or self._recount_retired:  # O(series): only when the count can change
            self._recount_retired = False
            for (iso, dataset), count in self.processor.retired_series().items():
                SERIES_RETIRED.labels(iso, dataset).set(count)

    def _freshness(self, run: dict[str, Any]) -> dict[str, Any]:
        share = completeness(self.processor.trackers.values(), run["iso"], run["dataset"])
        return freshness_event(run, share, datetime.now(UTC))

    async def _request(self, topic: TopicSpec, window: BackfillWindow) -> None:
        REQUESTS.labels(window.iso, window.dataset).inc()
        event = backfill_request_event(window, datetime.now(UTC))
        await self.send(Output(topic, f"{window.iso}|{window.dataset}", event))
