"""The stream worker: a faust-streaming app whose agents are thin (decode, call the pure
processor, send). Started with `optibid worker`.

Agents
- `market`: every raw topic -> validate -> dlq.<iso>.<dataset> | core.market.* (+ locations);
  revision state in the `revisions` table, first sightings in the `locations` table.
- a timer declares gaps (ingest.gaps) and re-announces open ones, so a crash between state and
  send cannot lose a gap; gap ids are deterministic.
- `coalesce`: ingest.gaps -> one BackfillRequested per (ISO, dataset) window.
- `outcomes`: ingest.backfill_completed -> retry FAILED/EMPTY windows up to MAX_ATTEMPTS.
- `freshness`: ingest.connector_runs -> ingest.freshness.

Delivery is at least once; every step is idempotent (deterministic event ids, state keyed by
the offset that set it), so a worker killed with SIGKILL and restarted ends with the same
output topics, duplicates only of identical events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import structlog
from prometheus_client import Counter, Gauge

from schemas.catalog import Dataset, TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.gaps import Gap, coalesce
from streams.processor import DEFAULT_LATENESS, MarketProcessor, Output, gap_event
from streams.validate import ValidationConfig

log = structlog.get_logger(__name__)

GAPS = Counter("optibid_stream_gaps_detected_total", "Gaps declared", ["iso", "dataset"])
GAPS_OPEN = Gauge("optibid_stream_gaps_open", "Gaps declared and not yet filled")
REQUESTS = Counter(
    "optibid_stream_backfill_requests_total", "Backfill requests sent", ["iso", "dataset"]
)
MAX_ATTEMPTS = 3
REANNOUNCE_EVERY_TICKS = 15


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
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    lateness: Mapping[Dataset, timedelta] = field(default_factory=lambda: dict(DEFAULT_LATENESS))


class StreamWorker:
    """Builds the Faust app and its agents for one WorkerConfig."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.registry = RegistryClient(config.registry_url)
        self.serde = AvroSerde(self.registry, ContractSet())
        self.processor = MarketProcessor(
            self.catalog, self.serde, config.validation, config.lateness
        )
        self.app = faust.App(
            config.app_id,
            broker=[f"kafka://{b}" for b in config.broker.split(",")],
            store=config.store,
            datadir=config.data_dir,
            topic_partitions=6,
            topic_replication_factor=1,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            web_port=config.web_port,
            web_bind=config.web_host,
            web_enabled=True,
            # batch the output and changelog records (three per event) instead of one request each
            producer_linger=0.05,
            producer_max_batch_size=1_048_576,
            producer_compression_type="lz4",
            broker_commit_every=5_000,
            stream_buffer_maxsize=16_384,
        )
        for noisy in ("aiokafka", "faust", "mode"):
            # their debug records cost ~5 µs each even when no handler prints them
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._encoders: dict[str, Encoder] = {}
        self._ticks = 0
        self._requested: set[str] = set()
        self._pending: dict[str, Gap] = {}
        self._requests: dict[str, dict[str, Any]] = {}
        self._define()

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        return self.app.topic(
            spec.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

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

    def _define(self) -> None:  # noqa: PLR0915 - the agents read best side by side
        app, catalog, processor = self.app, self.catalog, self.processor
        raw_specs = [catalog.raw(*pair) for pair in processor.raw_topics.values()]
        revisions = app.Table("revisions", default=None, partitions=6)
        locations = app.Table("locations", default=None, partitions=6)
        gaps_topic = catalog.ingest("gaps")
        completed_topic = catalog.ingest("backfill_completed")
        requests_topic = catalog.ingest("backfill_requests")
        runs_topic = catalog.ingest("connector_runs")
        freshness_topic = catalog.ingest("freshness")

        async def market(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                message = event.message
                stamp = (
                    datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
                )
                outputs = processor.process(
                    message.topic,
                    message.partition,
                    message.offset,
                    message.key,
                    message.value,
                    revisions,
                    locations,
                    timestamp_utc=stamp,
                )
                for out in outputs:
                    self.send_soon(out)  # flushed before the source offset is committed

        # one agent per raw topic: the same function, each on its own topic
        self.market_agents = {
            spec.name: app.agent(self.topic(spec), name=f"market:{spec.name}")(market)
            for spec in raw_specs
        }

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

        async def collect(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, gap = self.serde.decode(value)
                if gap["gap_id"] in self._requested:
                    continue
                self._pending[gap["gap_id"]] = Gap(
                    gap["gap_id"],
                    gap["iso"],
                    gap["dataset"],
                    gap["series_key"] or "",
                    gap["missing_start_utc"],
                    gap["missing_end_utc"],
                    gap["interval_minutes"],
                )

        async def request_backfills() -> None:
            if not self._pending:
                return
            pending, self._pending = list(self._pending.values()), {}
            for window in coalesce(pending):
                await self._request(requests_topic, window.__dict__)
                self._requested.update(window.gap_ids)

        async def outcomes(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, done = self.serde.decode(value)
                request = self._requests.get(done["request_id"])
                if (
                    done["outcome"] in ("FAILED", "EMPTY")
                    and request
                    and request["attempt"] < MAX_ATTEMPTS
                ):
                    retry = {**request, "attempt": request["attempt"] + 1}
                    await self._request(requests_topic, retry)
                elif done["outcome"] == "UNRECOVERABLE":
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

    async def _request(self, topic: TopicSpec, window: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        event = {
            "event_id": window["request_id"]
            if window["attempt"] == 1
            else f"{window['request_id']}#{window['attempt']}",
            "occurred_at_utc": now,
            "recorded_at_utc": now,
            "source": "worker:gaps",
            "schema_version": 1,
            "request_id": window["request_id"],
            "iso": window["iso"],
            "dataset": window["dataset"],
            "window_start_utc": window["start_utc"],
            "window_end_utc": window["end_utc"],
            "gap_ids": list(window["gap_ids"]),
            "attempt": window["attempt"],
            "reason": "gap"
            if window["attempt"] == 1
            else f"retry after attempt {window['attempt'] - 1}",
        }
        self._requests[window["request_id"]] = dict(window)
        REQUESTS.labels(window["iso"], window["dataset"]).inc()
        await self.send(Output(topic, f"{window['iso']}|{window['dataset']}", event))
