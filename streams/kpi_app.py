"""The KPI worker: Faust agents and tables around `streams.kpi_state`.

- `series` consumes `core.market.lmp` (keyed by series, so one series stays on one partition)
  into the `kpi_inputs` table: the latest value of every interval of each open local day.
- a timer recomputes the windows that changed and sends their KPIs to `kpi.lmp_hourly` and
  `kpi.lmp_daily` (keyed by series), and the TWAPs and volatilities the benchmark stage needs to
  `kpi.benchmark_inputs` (keyed by ISO, so one worker sees a whole market);
- `benchmark` consumes `kpi.benchmark_inputs` into the `kpi_benchmark` table; the timer sends
  the spread, basis and percentile KPIs it derives to the same `kpi.*` topics.

Tables are changelogged (RocksDB in production). Emission happens on the timer, after the
inputs are in the tables; what a crash keeps from being sent is sent again after the restart,
since the restored state marks every window to be recomputed (same event ids: harmless).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
import structlog
from faust.types import Message
from prometheus_client import Counter, Gauge

from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from schemas.vocabulary import series_key
from streams.kpi_state import (
    DAY,
    BenchmarkKpis,
    KpiConfig,
    SeriesKpis,
    is_benchmark_input,
)
from streams.runtime import (
    BytesTopics,
    ChangelogBatchTable,
    KeyPartitioner,
    ProducerBatches,
    apply_runs,
    await_writer_schemas,
    producer_of,
    worker_app,
)

log = structlog.get_logger(__name__)

INPUTS = Counter(
    "optibid_kpi_inputs_total",
    "Events taken by a KPI stage, by what happened to them",
    ["stage", "outcome"],  # applied, duplicate, stale, late, ignored
)
EMITTED = Counter("optibid_kpi_events_total", "KPI events sent", ["stage", "window_kind"])
LATE = Counter(
    "optibid_kpi_late_events_total",
    "Events that arrived after their window's grace period (not applied)",
    ["stage", "iso"],
)
OPEN_WINDOWS = Gauge("optibid_kpi_open_days", "Series-days held by the series stage")


@dataclass(frozen=True)
class KpiWorkerConfig:
    broker: str
    registry_url: str
    topic_prefix: str = ""
    app_id: str = "optibid-kpis"
    store: str = "rocksdb://"
    data_dir: str = ".optibid/kpis"
    web_port: int = 6067
    web_host: str = "127.0.0.1"
    tick_interval_s: float = 1.0  # hourly KPIs are emitted every tick...
    day_every_ticks: int = 10  # ...daily and benchmark KPIs every this many ticks
    batch: bool = True  # inputs take the batch path (BatchConsumer), else faust's streams
    batch_max_records: int = 2_000
    kpi: KpiConfig = field(default_factory=KpiConfig)


class KpiWorker:
    """Builds the Faust app of the KPI stages for one KpiWorkerConfig."""

    def __init__(self, config: KpiWorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.serde = AvroSerde(RegistryClient(config.registry_url), ContractSet())
        self.series = SeriesKpis(config.kpi)
        self.benchmark = BenchmarkKpis(config.kpi)
        self.app, self.transport = worker_app(config, self.apply)
        self.partition_of = KeyPartitioner()
        self.topic = BytesTopics(self.app)
        self._encoder: Encoder | None = None
        self._ticks = 0
        self._define()

    def prepare(self) -> None:
        """Resolve the KPI topics' schema id at start, while the registry answers (see
        StreamWorker.prepare)."""
        self._encoder = self._kpi_encoder()

    def _kpi_encoder(self) -> Encoder:
        spec = self.catalog.kpi("lmp_hourly")
        return self.serde.encoder(spec.subject, spec.value_schema)

    def encode(self, event: dict[str, Any]) -> bytes:
        if self._encoder is None:
            self._encoder = self._kpi_encoder()
        return self._encoder(event)

    def outputs(
        self, events: list[dict[str, Any]], stage: str
    ) -> list[tuple[TopicSpec, bytes, bytes]]:
        """(topic, key, value) of each KPI event: its window's topic keyed by series, and the
        benchmark stage's inputs once more keyed by ISO."""
        hourly, daily = self.catalog.kpi("lmp_hourly"), self.catalog.kpi("lmp_daily")
        inputs = self.catalog.kpi("benchmark_inputs")
        out = []
        for event in events:
            data = self.encode(event)
            kind = event["window_kind"]
            series = series_key(event["iso"], event["market"], event["location_id"]).encode()
            out.append((daily if kind == DAY else hourly, series, data))
            if stage == "series" and is_benchmark_input(event):
                out.append((inputs, event["iso"].encode(), data))
            EMITTED.labels(stage, kind).inc()
        return out

    def flush(self, now: datetime, days: bool = True) -> list[tuple[TopicSpec, bytes, bytes]]:
        """The KPI records due now: hourly ones, and with `days` daily and benchmark ones."""
        out = self.outputs(self.series.flush(now, days), "series")
        if days:
            out += self.outputs(self.benchmark.flush(now), "benchmark")
        OPEN_WINDOWS.set(len(self.series.days))
        return out

    def _count(self, stage: str, outcome: str, iso: str) -> None:
        INPUTS.labels(stage, outcome).inc()
        if outcome == "late":
            LATE.labels(stage, iso).inc()

    def observe(self, topic: str, value: bytes) -> None:
        """One input event into its stage's state (and table)."""
        _, event = self.serde.decode(value)
        if topic == self._series_topic:
            self._count("series", self.series.observe(event, self.inputs), event["iso"])
        else:
            outcome = self.benchmark.observe(event, self.benchmark_table)
            self._count("benchmark", outcome, event["iso"])

    async def apply(self, runs: list[list[Message]]) -> None:
        """The batch path: inputs into the tables, whose changelog records go out as one
        producer batch per partition; the KPIs themselves go out on the timer."""

        def step(message: Message) -> list[tuple[str, bytes, bytes]]:
            self.observe(message.topic, cast(bytes, message.value))
            return []

        await await_writer_schemas(self.serde, runs)
        await apply_runs(self.app, self.tables, runs, step, self.partition_of)

    async def send(self, records: list[tuple[TopicSpec, bytes, bytes]]) -> None:
        """Records to the producer as one batch per topic-partition; waits for delivery."""
        producer = producer_of(self.app)
        batches = ProducerBatches(producer, self.partition_of)
        for spec, key, data in records:
            await batches.add_keyed(spec.name, key, data)
        sent = await batches.send()
        await asyncio.gather(*(future for _, _, future in sent))

    def _define(self) -> None:
        app, catalog = self.app, self.catalog

        @app.on_rebalance_complete.connect
        async def reload(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # other partitions, other table contents: both stages read them again (and emit
            # every window once more, under the same event ids)
            self.series.loaded = False
            self.benchmark.loaded = False

        self.inputs = cast(ChangelogBatchTable, app.Table("kpi_inputs", default=None, partitions=6))
        self.benchmark_table = cast(
            ChangelogBatchTable, app.Table("kpi_benchmark", default=None, partitions=6)
        )
        self.tables = (self.inputs, self.benchmark_table)
        self._series_topic = catalog.core("lmp").name

        async def consume(stream: faust.StreamT[bytes]) -> None:
            # faust's per-event path: what runs with `batch` off (and in agent tests)
            async for event in stream.events():
                self.observe(event.message.topic, cast(bytes, event.value))

        self.series_agent = app.agent(self.topic(catalog.core("lmp")), name="kpi-series")(consume)
        self.benchmark_agent = app.agent(
            self.topic(catalog.kpi("benchmark_inputs")), name="kpi-benchmark"
        )(consume)
        if self.transport is not None:
            self.transport.batch_topics = frozenset(
                {self._series_topic, catalog.kpi("benchmark_inputs").name}
            )

        async def emit() -> None:
            if not cast(Any, app.tables).recovery.completed.is_set():  # restored first
                return
            if not self.series.loaded:  # after a restart: every window again
                self.series.load(self.inputs)
            if not self.benchmark.loaded:
                self.benchmark.load(self.benchmark_table)
            self._ticks += 1
            days = self._ticks % self.config.day_every_ticks == 0
            await self.send(self.flush(datetime.now(UTC), days))

        app.timer(self.config.tick_interval_s, name="kpi-emit")(emit)
