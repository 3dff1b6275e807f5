"""The demo: the local stack, the contracts, every ISO dataset fed into the raw topics from the
simulator and (where ../shared is present) from recorded ISO responses; then the whole path as
processes of their own (stream worker, KPI worker, projectors, API), simulated live feeds on
each ISO's cadence, and the dashboard's address. It runs until interrupted (or `duration`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.backfill import backfill_window
from connectors.live import CADENCE, Poller
from connectors.replay import replay, replay_files
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid import demo_identity, stack
from optibid.broker_watch import observe_role
from optibid.settings import PROJECT_ROOT, Settings
from optibid.wiring import connector_runtime, prepare_contracts
from projections.migrate import migrate
from schemas.catalog import ISO_DATASETS, Dataset, Iso, TopicCatalog

SHARED_ISO = PROJECT_ROOT.parent / "shared" / "fixtures" / "iso"

# Recorded responses and the dataset each one is (files of other feeds are left out).
RECORDED: tuple[tuple[Iso, Dataset, str], ...] = (
    (Iso.PJM, Dataset.LMP_RT_HOURLY, "pjm_dataminer_csv_rt_hrl_lmps_*.csv"),
    (Iso.PJM, Dataset.LMP_DA_HOURLY, "pjm_dataminer_csv_da_hrl_lmps_*.csv"),
    (Iso.CAISO, Dataset.LOAD, "caiso_oasis_singlezip_*.zip"),
    (Iso.ERCOT, Dataset.LOAD, "ercot_mis_np6-345-cd_*.zip"),
    (Iso.ERCOT, Dataset.LMP_RT_5MIN, "ercot_mis_np6-788-cd_*.csv"),
)
DEMO_FAULTS = Faults(missing_rate=0.002, revision_rate=0.01, duplicate_rate=0.002)


@dataclass
class Fed:
    iso: Iso
    dataset: Dataset
    origin: str
    records: int
    problems: int


def run_demo(
    settings: Settings, console: Console, locations: int = 10, duration_s: float | None = None
) -> list[Fed]:
    """Feed the raw topics, then run the whole path until interrupted (or `duration_s`)."""
    fed = feed(settings, console, locations)
    with Services(settings, console) as services:
        services.start()
        services.sign_in()
        services.wait_for_data()
        services.live(locations)
        services.report()
        services.run_until(duration_s)
    return fed


def feed(settings: Settings, console: Console, locations: int = 10) -> list[Fed]:
    began = time.monotonic()
    console.rule("local stack")
    stack.up(settings, lambda n, o, s: console.print(f"  {n:<9} {o:<8} {s:6.1f} s"))
    catalog = prepare_contracts(settings)
    console.print(f"  {len(catalog)} topics and their schemas in place")

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = (now - timedelta(days=2)).replace(hour=0)
    fed: list[Fed] = []
    jobs = [(iso, ds) for iso, datasets in ISO_DATASETS.items() for ds in datasets]
    console.rule(f"simulated ISO responses, {start:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC")
    with _progress(console) as progress:
        task = progress.add_task("simulate", total=len(jobs))
        for iso, dataset in jobs:
            progress.update(task, description=f"simulate {iso.value} {dataset.value}")
            end = now + timedelta(days=1) if dataset is Dataset.LMP_DA_HOURLY else now
            source = SimulatedSource(iso, locations=locations, faults=DEMO_FAULTS)
            with connector_runtime(settings, iso, dataset) as runtime:
                outcome = backfill_window(runtime, source, start, end, chunk=timedelta(hours=6))
            fed.append(Fed(iso, dataset, "simulator", outcome.records, 0))
            progress.advance(task)

    if SHARED_ISO.is_dir():
        console.rule(f"recorded ISO responses from {SHARED_ISO}")
        for iso, dataset, pattern in RECORDED:
            folder = SHARED_ISO / iso.value
            if not replay_files(folder, pattern):
                continue
            with connector_runtime(settings, iso, dataset) as runtime:
                summary = replay(runtime, folder, pattern=pattern)
            problems = len(summary.rejected)
            fed.append(Fed(iso, dataset, f"recorded {pattern}", summary.rows, problems))
            for problem in summary.rejected:
                console.print(f"  rejected: {problem}", markup=False, highlight=False)
    else:
        console.print(f"(no recorded responses: {SHARED_ISO} is absent)")

    table = Table("raw topic", "from", "records published", "rejected files")
    for item in fed:
        topic = catalog.raw(item.iso, item.dataset).name
        table.add_row(topic, item.origin, str(item.records), str(item.problems))
    console.print(table)
    total = sum(f.records for f in fed)
    console.print(
        f"{total} records published to {len({(f.iso, f.dataset) for f in fed})} raw topics in"
        f" {time.monotonic() - began:.1f} s."
    )
    return fed


# The path's processes: (name, optibid arguments).
PROCESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("worker", ("worker",)),
    ("kpis", ("kpis",)),
    ("projectors", ("project", "all")),
    ("identity", ("identity",)),
    ("identity-projector", ("project-identity",)),
    ("meter", ("meter",)),
    ("usage-projector", ("project-usage",)),
    ("billing", ("billing",)),
    ("api", ("api",)),
)


@dataclass
class Services:
    """The path's processes and the live feeds, started and stopped together."""

    settings: Settings
    console: Console
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    credentials: Path = field(default_factory=demo_identity.credentials_path)
    api_key: str = ""
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                self.console.print(f"  {name} did not stop in 60 s: killed")
        for thread in self.threads:
            thread.join(10)
        self.console.print(
            "path stopped; the stack keeps running: `optibid stack status`, `optibid stack down`"
        )

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def start(self) -> None:
        self.console.rule("the path: stream worker, KPI worker, projectors, API")
        with psycopg.connect(self.settings.postgres_dsn, autocommit=False) as conn:
            applied = migrate(conn, self.settings.db_schema, self.settings.hypertable_options)
        self.console.print(f"  read models in schema {self.settings.db_schema}: "
                           f"{len(applied)} migrations applied")  # fmt: skip
        logs = self.settings.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, args in PROCESSES:
            log = (logs / f"demo-{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "optibid", *args],
                stdout=log,
                stderr=log,
                env={**os.environ},
                start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
            )
            self.console.print(f"  {name:<11} pid {self.procs[name].pid}, log {log.name}")

    def sign_in(self) -> None:
        """The demo organisation (one user and one API key per role), and the API key the
        demo's own requests use."""
        with self.console.status("the demo organisation: users and API keys per role"):
            entries = demo_identity.provision(
                self.settings, TopicCatalog(self.settings.topic_prefix), self.credentials
            )
        self.api_key = next(e["api_key"] for e in entries if e["role"] == "viewer")
        self.console.print(
            f"  demo organisation: {len(entries)} users and API keys, one per role, in"
            f" {self.credentials}"
        )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = self.settings.state_dir / "logs" / f"demo-{name}.log"
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n" + "\n".join(tail))

    def wait_for_data(self, deadline_s: float = 600) -> None:
        """Until the API serves latest prices of every ISO (raw -> worker -> projector ->
        Redis -> API)."""
        began = time.monotonic()
        wanted = {iso.wire for iso in ISO_DATASETS}
        served: set[str] = set()
        with self.console.status("waiting for prices to reach the API") as status:
            while time.monotonic() - began < deadline_s:
                self._check_alive()
                try:
                    answer = httpx.get(
                        f"{self.url}/v1/lmp/latest", timeout=5,
                        headers={"X-API-Key": self.api_key},
                    )  # fmt: skip
                    rows = answer.json().get("data", []) if answer.status_code == 200 else []
                    served |= {str(row.get("iso")) for row in rows} & wanted
                except (httpx.HTTPError, ValueError):
                    pass
                status.update(
                    "waiting for prices to reach the API"
                    f" ({', '.join(sorted(served)) or 'no ISO'} so far)"
                )
                if served == wanted:
                    self.console.print(
                        f"  latest prices of {', '.join(sorted(wanted))} served"
                        f" {time.monotonic() - began:.0f} s after the path started"
                    )
                    return
                time.sleep(2)
        missing = ", ".join(sorted(wanted - served))
        raise RuntimeError(f"no prices of {missing} reached the API in {deadline_s:.0f} s")

    def live(self, locations: int) -> None:
        """Simulated live feeds of the real-time datasets, polled on each ISO's cadence; their
        connector metrics on OPTIBID_DEMO_METRICS_PORT."""
        settings = self.settings
        observe_role(
            settings.bootstrap_servers,
            "connector",
            settings.metrics_host,
            settings.demo_metrics_port,
        )
        for iso, datasets in ISO_DATASETS.items():
            for dataset in datasets:
                if CADENCE[dataset][0] > timedelta(minutes=15):
                    continue
                thread = threading.Thread(
                    target=self._poll, args=(iso, dataset, locations), daemon=True
                )
                thread.start()
                self.threads.append(thread)

    def _poll(self, iso: Iso, dataset: Dataset, locations: int) -> None:
        source = SimulatedSource(iso, locations=locations, faults=DEMO_FAULTS)
        with connector_runtime(self.settings, iso, dataset) as runtime:
            Poller(runtime, source, initial_lookback=timedelta(hours=1)).run(self.stop)

    def report(self) -> None:
        table = Table("what", "where")
        table.add_row("dashboard", f"{self.url}/dashboard/")
        table.add_row("API (OpenAPI)", f"{self.url}/docs")
        table.add_row("latest prices", f"{self.url}/v1/lmp/latest")
        table.add_row("live updates (SSE)", f"{self.url}/v1/live")
        table.add_row("sign-in (one user and API key per role)", str(self.credentials))
        table.add_row("logs", str(self.settings.state_dir / "logs"))
        port = self.settings.demo_metrics_port
        if port:
            url = f"http://{self.settings.metrics_host}:{port}/metrics"
            table.add_row("live feeds' metrics", url)
        self.console.print(table)
        self.console.print(
            f"[bold]Dashboard: {self.url}/dashboard/[/]  (live feeds on each ISO's cadence;"
            " Ctrl-C stops the path)"
        )

    def run_until(self, duration_s: float | None) -> None:
        began = time.monotonic()
        try:
            while duration_s is None or time.monotonic() - began < duration_s:
                self._check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            self.console.print("interrupted")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


__all__ = ["RECORDED", "Services", "feed", "run_demo"]
