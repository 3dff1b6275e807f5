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

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
import structlog
from prometheus_client import Counter, Gauge

from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.kpi_state import (
    BENCHMARK_INPUTS,
    DAY,
    BenchmarkKpis,
    KpiConfig,
    SeriesKpis,
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
    tick_interval_s: float = 1.0
    kpi: KpiConfig = field(default_factory=KpiConfig)


class KpiWorker:
    """Builds the Faust app of the KPI stages for one KpiWorkerConfig."""

    def __init__(self, config: KpiWorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.serde = AvroSerde(RegistryClient(config.registry_url), ContractSet())
        self.series = SeriesKpis(config.kpi)
        self.benchmark = BenchmarkKpis(config.kpi)
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
            producer_linger=0.05,
            producer_max_batch_size=1_048_576,
            producer_compression_type="lz4",
            broker_commit_every=5_000,
            stream_buffer_maxsize=16_384,
        )
        for noisy in ("aiokafka", "faust", "mode"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._topics: dict[str, faust.TopicT] = {}
        self._encoder: Encoder | None = None
        self._define()

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = self.app.topic(
                spec.name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
        return topic

    def encode(self, event: dict[str, Any]) -> bytes:
        if self._encoder is None:
            spec = self.catalog.kpi("lmp_hourly")
            self._encoder = self.serde.encoder(spec.subject, spec.value_schema)
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
            series = f"{event['iso']}|{event['market']}|{event['location_id']}".encode()
            out.append((daily if kind == DAY else hourly, series, data))
            if stage == "series" and (kind, event["kpi"]) in BENCHMARK_INPUTS:
                out.append((inputs, event["iso"].encode(), data))
            EMITTED.labels(stage, kind).inc()
        return out

    def flush(self, now: datetime) -> list[tuple[TopicSpec, bytes, bytes]]:
        """The KPI records due now from both stages."""
        out = self.outputs(self.series.flush(now), "series")
        out += self.outputs(self.benchmark.flush(now), "benchmark")
        OPEN_WINDOWS.set(len(self.series.days))
        return out

    def _count(self, stage: str, outcome: str, iso: str) -> None:
        INPUTS.labels(stage, outcome).inc()
        if outcome == "late":
            LATE.labels(stage, iso).inc()

    def _define(self) -> None:
        app, catalog = self.app, self.catalog
        self.inputs = app.Table("kpi_inputs", default=None, partitions=6)
        self.benchmark_table = app.Table("kpi_benchmark", default=None, partitions=6)

        async def series(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, event = self.serde.decode(value)
                self._count("series", self.series.observe(event, self.inputs), event["iso"])

        async def benchmark(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                _, event = self.serde.decode(value)
                outcome = self.benchmark.observe(event, self.benchmark_table)
                self._count("benchmark", outcome, event["iso"])

        self.series_agent = app.agent(self.topic(catalog.core("lmp")), name="kpi-series")(series)
        self.benchmark_agent = app.agent(
            self.topic(catalog.kpi("benchmark_inputs")), name="kpi-benchmark"
        )(benchmark)

        async def emit() -> None:
            if not cast(Any, app.tables).recovery.completed.is_set():  # restored first
                return
            if not self.series.loaded:  # after a restart: every window again
                self.series.load(self.inputs)
            if not self.benchmark.loaded:
                self.benchmark.load(self.benchmark_table)
            for topic, key, data in self.flush(datetime.now(UTC)):
                await self.topic(topic).send(key=key, value=data)

        app.timer(self.config.tick_interval_s, name="kpi-emit")(emit)
