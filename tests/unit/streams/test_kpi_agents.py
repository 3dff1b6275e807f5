"""The KPI worker's agents, driven through faust's agent.test_context(); the timer's flush is
called directly. The serde is preloaded, so no registry is needed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.kpi_app import KpiWorker, KpiWorkerConfig
from streams.normalise import KINDS, normalise

NOW = datetime(2026, 1, 1, tzinfo=UTC)
START = datetime(2025, 5, 1, 4, tzinfo=UTC)  # PJM operating day 2025-05-01 (EDT)


@pytest.fixture
def worker(tmp_path: Any) -> KpiWorker:
    kw = KpiWorker(
        KpiWorkerConfig(
            broker="127.0.0.1:1",
            registry_url="http://127.0.0.1:1/apis/ccompat/v7",
            store="memory://",
            data_dir=str(tmp_path),
            app_id="kpi-agents-test",
        )
    )
    for number, topic in enumerate(kw.catalog, start=1):
        kw.serde.preload(topic.subject, topic.value_schema, number)
    kw.app.finalize()
    return kw


def canonical(worker: KpiWorker, location: str, market: str, hour: int, price: float) -> bytes:
    raw = {
        "iso": "PJM", "dataset": "lmp_da_hourly" if market == "DA_HOURLY" else "lmp_rt_hourly",
        "market": market, "location_id": location, "location_name": None,
        "location_type": "HUB", "interval_start_utc": START + timedelta(hours=hour),
        "interval_minutes": 60, "lmp_usd_per_mwh": price, "energy_usd_per_mwh": price - 1,
        "congestion_usd_per_mwh": 0.5, "loss_usd_per_mwh": 0.5, "revision": 1,
        "occurred_at_utc": START + timedelta(hours=hour + 1), "run_id": "r1",
    }  # fmt: skip
    kind = next(k for k in KINDS.values() if k.core == "lmp")
    event = normalise(kind, raw, START + timedelta(hours=hour + 1, minutes=3))
    spec = worker.catalog.core("lmp")
    return worker.serde.encoder(spec.subject, spec.value_schema)(event)


def run(coro: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coro)


def test_series_then_benchmark_agents_produce_spread_and_percentiles(worker: KpiWorker) -> None:
    prices = {"51288": (30.0, 28.0), "A": (40.0, 45.0)}  # location -> (DA, RT) in hour 0

    async def series() -> None:
        async with worker.series_agent.test_context() as ctx:
            for location, (da, rt) in prices.items():
                await ctx.put(canonical(worker, location, "DA_HOURLY", 0, da), key=b"k")
                await ctx.put(canonical(worker, location, "RT_HOURLY", 0, rt), key=b"k")
                # a redelivery changes nothing
                await ctx.put(canonical(worker, location, "RT_HOURLY", 0, rt), key=b"k")

    run(series())
    assert len(worker.inputs) == 4
    first = worker.flush(NOW)
    topics = {spec.name.rsplit(".", 1)[1] for spec, _, _ in first}
    assert topics == {"lmp_hourly", "lmp_daily", "benchmark_inputs"}
    bench_inputs = [(key, data) for spec, key, data in first if spec.name.endswith("inputs")]
    assert {key for key, _ in bench_inputs} == {b"PJM"}
    assert worker.flush(NOW) == []  # nothing changed since

    async def benchmark() -> None:
        async with worker.benchmark_agent.test_context() as ctx:
            for key, data in bench_inputs:
                await ctx.put(data, key=key)

    run(benchmark())
    decoded = [worker.serde.decode(data)[1] for _, _, data in worker.flush(NOW)]
    by_kpi = {
        (e["market"], e["location_id"], e["kpi"], e["window_kind"]): e["value"] for e in decoded
    }
    assert by_kpi[("RT_HOURLY", "A", "da_rt_spread_usd_per_mwh", "HOUR")] == pytest.approx(-5.0)
    assert by_kpi[("DA_HOURLY", "A", "basis_usd_per_mwh", "DAY")] == pytest.approx(10.0)
    assert by_kpi[("RT_HOURLY", "A", "basis_usd_per_mwh", "DAY")] == pytest.approx(17.0)
    assert by_kpi[("DA_HOURLY", "A", "twap_lmp_usd_per_mwh_percentile", "DAY")] == 1.0
    assert {e["source"] for e in decoded} == {"worker:kpi-benchmark"}
