"""Peak resident memory of the stream worker, the KPI worker and the projector against the time
span of their input, and of the worker's state path against the per-interval design it replaced.

Part one, on the local stack: for each span (1 day, 30 days, 1 year, 3 years) a run of its own
(topics under a fresh prefix, a PostgreSQL schema of its own) publishes one dense day (200 PJM
nodes x 288 five-minute intervals, yesterday) plus one sparse series with one interval at each
end of the span to raw.pjm.lmp_rt_5min, then runs `optibid worker`, `optibid kpis` and
`optibid project all` as processes of their own until each has taken all of its input, and
reads each one's peak resident memory (VmHWM). `ratio` is the smallest peak over the largest,
for the role where that is lowest: flat memory gives 1.0 (target >= 0.8).

Part two needs no servers: the worker's MarketProcessor in process, the range tracker against
the per-interval gap model of the test suite (the design it replaced), on the same arrivals,
with a gap tick every 2,000 records as the worker's timer does.

Run: `python bench/memory.py` (`--part stack` or `--part state` runs one part).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from bench.common import ROOT, delete_run_topics, emit, local_stack, peak_rss_mib, run_id
from connectors.records import LmpRecord
from connectors.runtime import ConnectorRuntime
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.migrate import migrate
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.gaps import GapTracker
from streams.processor import MarketProcessor
from tests.unit.streams.factories import lmp_record
from tests.unit.streams.naive_gaps import NaiveGapTracker

SPANS = {"1d": 1, "30d": 30, "1y": 365, "3y": 3 * 365}
LOCATIONS = 200
FIVE = timedelta(minutes=5)


def raw_record(location: str, start: datetime) -> dict[str, Any]:
    return {
        "event_id": f"e-{location}-{start.isoformat()}",
        "occurred_at_utc": start + FIVE,
        "recorded_at_utc": start + FIVE,
        "source": "bench",
        "schema_version": 1,
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "market": "RT_5MIN",
        "location_id": location,
        "location_name": None,
        "location_type": "NODE",
        "interval_start_utc": start,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": 31.5,
        "energy_usd_per_mwh": 30.0,
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.5,
        "revision": 1,
        "revision_kind": "VERSION",
        "source_file": "bench.csv",
        "source_row": 1,
        "run_id": "bench",
        "native_fields": {},
    }


def child(days: int, model: str) -> dict[str, Any]:
    catalog = TopicCatalog("")
    serde = AvroSerde(RegistryClient("http://127.0.0.1:1/apis/ccompat/v7"))
    for number, spec in enumerate(catalog, start=1):
        serde.preload(spec.subject, spec.value_schema, number)
    processor = MarketProcessor(catalog, serde)
    if model == "per-interval":

        def naive(tracker_key: str, iso: Iso, dataset: str) -> Any:
            tracker = processor.trackers.get(tracker_key)
            if tracker is None:
                lateness = processor.lateness[Dataset(dataset)]
                # the same observe/tick/open_gaps surface as the range tracker
                tracker = cast(GapTracker, NaiveGapTracker(iso.wire, dataset, lateness))
                processor.trackers[tracker_key] = tracker
            return tracker

        processor._tracker = naive  # type: ignore[method-assign]  # the replaced design
    spec = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN)
    encode = serde.encoder(spec.subject, spec.value_schema)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    arrivals = [("SPARSE", today - timedelta(days=days))]
    arrivals += [(f"N{n}", today + i * FIVE) for i in range(288) for n in range(LOCATIONS)]
    arrivals.append(("SPARSE", today + 287 * FIVE))
    latest: dict[str, Any] = {}
    locations: dict[str, Any] = {}
    gaps = 0
    for offset, (location, start) in enumerate(arrivals):
        value = encode(raw_record(location, start))
        processor.process(
            spec.name, 0, offset, f"PJM|RT_5MIN|{location}".encode(), value, latest, locations
        )
        if offset % 2_000 == 0:
            gaps += len(processor.due_gaps())
    gaps += len(processor.due_gaps())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": round(peak_kib / 1024, 1), "records": len(arrivals), "gaps": gaps}


ROLES = ("worker", "kpis", "projector")


def _records(days: int) -> list[LmpRecord]:
    """The dense day plus the sparse series, in arrival order (the sparse series' old interval
    first, its newest last)."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)

    def record(node: str, start: datetime, row: int) -> LmpRecord:
        return lmp_record(node, start, 21.5 + row % 37, row)

    out = [record("SPARSE", day + 287 * FIVE - timedelta(days=days), 0)]
    out += [record(f"N{n}", day + i * FIVE, i) for i in range(288) for n in range(LOCATIONS)]
    out.append(record("SPARSE", day + 287 * FIVE, 1))
    return out


def _topic_size(settings: Settings, topics: list[str]) -> int:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "sizer"})
    try:
        total = 0
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
        return total
    finally:
        consumer.close()


def _projected(settings: Settings, schema: str) -> int:
    """Events the projector has taken of lmp and kpis (its stored offsets, summed)."""
    try:
        with psycopg.connect(settings.postgres_dsn, connect_timeout=3) as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT coalesce(sum(next_offset), 0) FROM {}"
                    " WHERE read_model IN ('lmp', 'kpis')"
                ).format(sql.Identifier(schema, "projection_offsets"))
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _settled(measure: Callable[[], int], target: Callable[[], int], deadline: float) -> int:
    """Wait until `measure` reaches `target` and stays put for three seconds; its value."""
    previous, still = -1, 0
    while time.monotonic() < deadline:
        value = measure()
        still = still + 1 if value == previous and value >= target() else 0
        if still >= 6:
            return value
        previous = value
        time.sleep(0.5)
    raise RuntimeError("timed out waiting for a role to take its input")


def stack_run(settings: Settings, name: str, days: int) -> dict[str, float]:
    run = run_id()
    prefix = f"{run}."
    role_settings = Settings(topic_prefix=prefix, db_schema=run)
    catalog = prepare_contracts(role_settings)
    with psycopg.connect(settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, run)
    records = _records(days)
    with RegistryClient(settings.schema_registry_url) as registry:
        runtime = ConnectorRuntime(
            settings.bootstrap_servers, AvroSerde(registry), catalog, Iso.PJM, Dataset.LMP_RT_5MIN
        )
        try:
            runtime.publish(records, run)
        finally:
            runtime.close()
    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": prefix, "OPTIBID_DB_SCHEMA": run}
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = {
        "worker": ["worker", "--app-id", f"{run}-worker", "--web-port", str(_port()),
                   "--metrics-port", str(_port())],
        "kpis": ["kpis", "--app-id", f"{run}-kpis", "--web-port", str(_port()),
                 "--metrics-port", str(_port())],
        "projector": ["project", "all", "--metrics-port", str(_port())],
    }  # fmt: skip
    procs: dict[str, subprocess.Popen[bytes]] = {}
    lmp = catalog.core("lmp").name
    kpi_topics = [catalog.kpi("lmp_hourly").name, catalog.kpi("lmp_daily").name]
    try:
        for role, args in argv.items():
            with (logs / f"bench-memory-{role}.log").open("ab") as log:
                procs[role] = subprocess.Popen(
                    [sys.executable, "-m", "optibid", *args],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=log,
                )
        deadline = time.monotonic() + 900
        canonical = _settled(lambda: _topic_size(settings, [lmp]), lambda: len(records), deadline)
        kpis = _settled(lambda: _topic_size(settings, kpi_topics), lambda: 1, deadline)
        _settled(lambda: _projected(settings, run), lambda: canonical + kpis, deadline)
        for role, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{role} exited with {proc.returncode}; see {logs}")
        peaks = {role: peak_rss_mib(proc.pid) for role, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(run)))
        delete_run_topics(settings, run)
    print(
        f"span {name:>3}: {len(records)} raw records, {canonical} canonical, {kpis} KPI events; "
        + ", ".join(f"{role} peak {peaks[role]:6.1f} MiB" for role in ROLES),
        flush=True,
    )
    return peaks


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_part(figures: dict[str, Any]) -> float:
    settings = local_stack()
    peaks = {name: stack_run(settings, name, days) for name, days in SPANS.items()}
    ratios = []
    for role in ROLES:
        values = [peaks[name][role] for name in SPANS]
        for name in SPANS:
            figures[f"{role}_{name}_peak_mib"] = round(peaks[name][role], 1)
        ratio = round(min(values) / max(values), 3)
        figures[f"{role}_ratio"] = ratio
        ratios.append(ratio)
    return min(ratios)


def state_part(figures: dict[str, Any]) -> None:
    for model in ("ranges", "per-interval"):
        for name, days in SPANS.items():
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", str(days), model],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(out)
            figures[f"state_path_{model}_{name}_peak_mib"] = result["peak_mib"]
            print(
                f"state path, {model:>12}, sparse span {name:>3}: peak {result['peak_mib']:8.1f}"
                f" MiB, {result['records']} records, {result['gaps']} gaps",
                flush=True,
            )
    for model in ("ranges", "per-interval"):
        values = [figures[f"state_path_{model}_{n}_peak_mib"] for n in SPANS]
        figures[f"state_path_{model}_ratio"] = round(min(values) / max(values), 3)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("both", "stack", "state"), default="both")
    args = parser.parse_args()
    figures: dict[str, Any] = {"benchmark": "memory"}
    if args.part in ("both", "stack"):
        figures["ratio"] = stack_part(figures)
    if args.part in ("both", "state"):
        state_part(figures)
        if "ratio" not in figures:
            figures["ratio"] = figures["state_path_ranges_ratio"]
    emit(figures)


if __name__ == "__main__":
    main()
