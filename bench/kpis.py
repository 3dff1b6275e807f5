"""KPI throughput on one worker for a simulated market of 1,000 locations at 5-minute cadence,
and the worker's peak memory.

One PJM operating day of canonical 5-minute LMPs (1,000 locations x 288 intervals by default)
is put on `core.market.lmp`; then, side by side in one run:
- the ceiling: a plain confluent-kafka loop consuming and decoding the same events (no KPI work);
- `optibid kpis`: the series and benchmark stages, as a process of its own.
The worker's input rate is events over the span from its first to its last taken event (its
Prometheus counter, polled), so start-up is left out; the KPI output is counted once it stops
growing. Peak memory is the worker's VmHWM. `ratio` = worker input rate / ceiling rate.
Run on the local stack: `python bench/kpis.py [--locations N] [--hours H]`.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.common import ROOT, arguments, delete_run_topics, emit, local_stack, peak_rss_mib, run_id
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.timeutil import day_bounds_utc
from streams.normalise import KINDS, normalise

DAY = datetime(2025, 5, 1).date()


def produce(settings: Settings, catalog: TopicCatalog, locations: int, hours: int) -> int:
    """Canonical 5-minute LMPs, interval by interval across all locations (as live)."""
    spec = catalog.core("lmp")
    kind = next(k for k in KINDS.values() if k.core == "lmp")
    rng = random.Random(7)
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 50, "log_level": 3}
    )
    start, _ = day_bounds_utc("PJM", DAY)
    sent = 0
    with RegistryClient(settings.schema_registry_url) as registry:
        encode = AvroSerde(registry, ContractSet()).encoder(spec.subject, spec.value_schema)
        for step in range(hours * 12):
            t = start + timedelta(minutes=5 * step)
            for n in range(locations):
                price = round(rng.gauss(35, 15), 2)
                location = "51288" if n == 0 else str(1_000_000 + n)
                raw = {
                    "iso": "PJM", "dataset": "lmp_rt_5min", "market": "RT_5MIN",
                    "location_id": location, "location_name": None, "location_type": "NODE",
                    "interval_start_utc": t, "interval_minutes": 5, "lmp_usd_per_mwh": price,
                    "energy_usd_per_mwh": 30.0, "congestion_usd_per_mwh": price - 30.5,
                    "loss_usd_per_mwh": 0.5, "revision": 1,
                    "occurred_at_utc": t + timedelta(minutes=5), "run_id": "bench",
                }  # fmt: skip
                event = normalise(kind, raw, t + timedelta(minutes=6))
                producer.produce(spec.name, encode(event), f"PJM|RT_5MIN|{location}".encode())
                sent += 1
                if sent % 10_000 == 0:
                    producer.poll(0)
    producer.flush(120)
    return sent


def ceiling(settings: Settings, topic: str, events: int) -> float:
    """Events/s of a plain consume-and-decode loop over the same topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": run_id(),
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    with RegistryClient(settings.schema_registry_url) as registry:
        serde = AvroSerde(registry, ContractSet())
        consumer.subscribe([topic])
        seen, first = 0, 0.0
        while seen < events:
            for msg in consumer.consume(1000, 1.0):
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                if not first:
                    first = time.perf_counter()
                serde.decode(value)
                seen += 1
        elapsed = time.perf_counter() - first
    consumer.close()
    return seen / elapsed


def counter(port: int, name: str, label: str) -> float:
    """Sum of a Prometheus counter's samples whose labels contain `label`."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def topic_size(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": run_id()})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            high - low
            for low, high in (
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in partitions
            )
        )
    finally:
        consumer.close()


def main() -> None:
    args = arguments(__doc__, locations=1_000, hours=24)
    settings = local_stack()
    prefix = f"{run_id()}."
    catalog = prepare_contracts(Settings(topic_prefix=prefix))
    began = time.perf_counter()
    events = produce(settings, catalog, args.locations, args.hours)
    lmp = catalog.core("lmp").name
    print(
        f"{events} canonical events on {lmp} in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )

    ceiling_rate = ceiling(settings, lmp, events)
    print(f"ceiling (consume + decode): {ceiling_rate:.0f} events/s", file=sys.stderr)

    metrics_port = 19_567
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optibid",
            "kpis",
            "--app-id",
            f"{prefix}kpis",
            "--store",
            "rocksdb://",
            "--web-port",
            "16167",
            "--metrics-port",
            str(metrics_port),
        ],
        env={**os.environ, "OPTIBID_TOPIC_PREFIX": prefix},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    outputs = [catalog.kpi("lmp_hourly").name, catalog.kpi("lmp_daily").name]
    try:
        first = last = 0.0
        deadline = time.monotonic() + 1_800
        while time.monotonic() < deadline:
            taken = counter(metrics_port, "optibid_kpi_inputs_total", 'stage="series"')
            now = time.perf_counter()
            if taken and not first:
                first = now
            if taken >= events:
                last = now
                break
            time.sleep(0.2)
        rate = events / (last - first) if last > first else float("nan")
        print(f"optibid kpis: {events} inputs at {rate:.0f} events/s", file=sys.stderr)
        # the KPI output settles once the timer has flushed everything (benchmark stage too)
        settled, previous = 0, -1
        while settled < 5 and time.monotonic() < deadline:
            size = sum(topic_size(settings, t) for t in outputs)
            settled = settled + 1 if size == previous else 0
            previous = size
            time.sleep(1.0)
        done = time.perf_counter()
        kpi_events = previous
        peak = peak_rss_mib(worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)
    total_span = done - first - 5.0  # the settling wait is not work
    print(
        f"{kpi_events} KPI events; {kpi_events / total_span:.0f} KPI events/s "
        f"end to end; peak RSS {peak:.0f} MiB",
        file=sys.stderr,
    )
    delete_run_topics(settings, prefix.rstrip("."))
    emit(
        {
            "benchmark": "kpis",
            "locations": args.locations,
            "input_events": events,
            "ceiling_events_per_s": round(ceiling_rate),
            # None when every event was taken between two polls of the counter (tiny runs)
            "optibid_input_events_per_s": round(rate) if math.isfinite(rate) else None,
            "kpi_events": kpi_events,
            "kpi_events_per_s": round(kpi_events / total_span),
            "worker_peak_rss_mib": round(peak),
            "ratio": round(rate / ceiling_rate, 3) if math.isfinite(rate) else None,
        }
    )


if __name__ == "__main__":
    main()
