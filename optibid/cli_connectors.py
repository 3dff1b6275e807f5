"""CLI commands of the connectors: parse, connect (live or replay), simulate, backfill."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import start_http_server
from rich.progress import Progress, TextColumn

from connectors.backfill import BackfillWorker, backfill_window
from connectors.errors import ConnectorError
from connectors.events import to_json
from connectors.live import Poller
from connectors.parsing import parser_for
from connectors.replay import replay, replay_files
from connectors.runtime import RunStats
from connectors.simulate import Faults
from connectors.sources import SimulatedSource, Source
from optibid.broker_watch import BrokerWatch
from optibid.cli_common import DatasetArg, IsoArg, check_dataset, console, progress, utc_time
from optibid.settings import Settings
from optibid.wiring import connector_runtime, live_source, prepare_contracts
from schemas.catalog import Dataset, Iso
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

WindowStart = Annotated[str, typer.Option(help="Window start (date or ISO time, UTC).")]
WindowEnd = Annotated[str, typer.Option(help="Window end, exclusive.")]
MetricsPort = Annotated[int | None, typer.Option(help="Serve Prometheus metrics.")]


def _progress() -> Progress:
    return progress("[bold]{task.description}", TextColumn("{task.fields[rows]} rows"))


def register(app: typer.Typer, settings_factory: Callable[[], Settings]) -> None:  # noqa: PLR0915 - one place wires all connector commands
    settings_of = settings_factory

    @app.command("parse")
    def parse(
        iso: IsoArg,
        dataset: DatasetArg,
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
        native: Annotated[bool, typer.Option(help="Include the ISO's own fields.")] = False,
    ) -> None:
        """Print the records parsed from one ISO file as JSON lines (canonical field names)."""
        check_dataset(iso, dataset)
        try:
            records = parser_for(iso, dataset)(file.read_bytes(), file.name)
        except ConnectorError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
            raise typer.Exit(1) from exc
        out = sys.stdout
        for record in records:
            out.write(json.dumps(to_json(record, with_native=native)) + "\n")
        console.print(f"{len(records)} records from {file.name}")

    @app.command("connect")
    def connect(
        iso: IsoArg,
        dataset: DatasetArg,
        live: Annotated[bool, typer.Option("--live", help="Poll the ISO on its cadence.")] = False,
        replay_dir: Annotated[
            Path | None, typer.Option("--replay", help="Publish the recorded responses in DIR.")
        ] = None,
        pattern: Annotated[str, typer.Option(help="Glob of the files to replay.")] = "*",
        speed: Annotated[
            float | None, typer.Option(help="Replay at N times the data's pace (default: at once).")
        ] = None,
        metrics_port: MetricsPort = None,
    ) -> None:
        """Publish an ISO dataset to its raw topic, live or from recorded responses."""
        check_dataset(iso, dataset)
        if live == (replay_dir is not None):
            console.print("[red]error:[/] give exactly one of --live or --replay DIR")
            raise typer.Exit(2)
        settings = settings_of()
        if metrics_port:
            start_http_server(metrics_port, addr=settings.metrics_host)
        BrokerWatch(settings.bootstrap_servers, "connector")
        try:
            with connector_runtime(settings, iso, dataset) as runtime:
                if replay_dir is not None:
                    files = replay_files(replay_dir, pattern)
                    with _progress() as progress:
                        task = progress.add_task(
                            f"replay {iso.value} {dataset.value}", total=len(files), rows=0
                        )

                        def advanced(_path: Path, stats: RunStats) -> None:
                            rows = progress.tasks[task].fields["rows"] + stats.rows
                            progress.update(task, advance=1, rows=rows)

                        summary = replay(
                            runtime, replay_dir, pattern=pattern, speed=speed, on_file=advanced
                        )
                    console.print(
                        f"{summary.files} files, {summary.rows} records published;"
                        f" {summary.skipped_by_checkpoint} already done before;"
                        f" {len(summary.rejected)} rejected"
                    )
                    for problem in summary.rejected:
                        console.print(f"  rejected: {problem}", highlight=False, markup=False)
                    return
                poller = Poller(runtime, live_source(settings, iso))
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                console.print(f"polling {iso.value} {dataset.value}; Ctrl-C to stop")
                try:
                    poller.run(stop)
                except KeyboardInterrupt:
                    stop.set()
        except (ConnectorError, ContractError, FileNotFoundError) as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
            raise typer.Exit(1) from exc

    @app.command("simulate")
    def simulate(
        iso: IsoArg,
        dataset: DatasetArg,
        start: WindowStart,
        end: WindowEnd,
        locations: Annotated[int, typer.Option(help="Series to simulate.")] = 10,
        seed: Annotated[int, typer.Option()] = 7,
        missing: Annotated[float, typer.Option(help="Share of rows left out.")] = 0.0,
        revisions: Annotated[float, typer.Option(help="Share of rows revised later.")] = 0.0,
        duplicates: Annotated[float, typer.Option(help="Share of rows repeated.")] = 0.0,
        out: Annotated[
            Path | None, typer.Option(help="Write the responses here instead of publishing them.")
        ] = None,
        chunk_hours: Annotated[int, typer.Option(help="Hours per simulated response.")] = 24,
    ) -> None:
        """Generate responses in the ISO's native format; publish them (through the parser) or
        write them to a folder for replay and benchmarks."""
        check_dataset(iso, dataset)
        faults = Faults(missing_rate=missing, revision_rate=revisions, duplicate_rate=duplicates)
        lo, hi = utc_time(start, "start"), utc_time(end, "end")
        source = SimulatedSource(iso, locations, seed, faults)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            written = 0
            for name, data in _simulated(source, dataset, lo, hi, chunk_hours):
                (out / name).write_bytes(data)
                written += 1
            console.print(f"{written} responses written to {out}")
            return
        _backfill_by_hand(settings_of(), iso, dataset, lo, hi, source, chunk_hours, "simulate")

    @app.command("backfill")
    def backfill(
        iso: IsoArg,
        dataset: DatasetArg,
        start: WindowStart,
        end: WindowEnd,
        source: Annotated[str, typer.Option(help="live (the ISO's API) or simulate.")] = "live",
        chunk_hours: Annotated[int, typer.Option(help="Hours fetched per request.")] = 24,
    ) -> None:
        """Fetch a window again and publish it (what the backfill worker does for a request)."""
        check_dataset(iso, dataset)
        settings = settings_of()
        chosen: Source = (
            SimulatedSource(iso) if source == "simulate" else live_source(settings, iso)
        )
        _backfill_by_hand(
            settings,
            iso,
            dataset,
            utc_time(start, "start"),
            utc_time(end, "end"),
            chosen,
            chunk_hours,
            "backfill",
        )

    @app.command("backfill-worker")
    def backfill_worker(
        source: Annotated[str, typer.Option(help="live (the ISOs' APIs) or simulate.")] = "live",
        metrics_port: MetricsPort = None,
    ) -> None:
        """Serve BackfillRequested events from ingest.backfill_requests until stopped."""
        settings = settings_of()
        if metrics_port:
            start_http_server(metrics_port, addr=settings.metrics_host)
        BrokerWatch(settings.bootstrap_servers, "backfill")
        catalog = prepare_contracts(settings)
        sources: dict[Iso, Source] = {}
        for iso in Iso:
            try:
                sources[iso] = (
                    SimulatedSource(iso) if source == "simulate" else live_source(settings, iso)
                )
            except ConnectorError as exc:
                # requests for this ISO are answered FAILED, naming the missing source
                console.print(f"[yellow]no {iso.value} source:[/] {exc}", highlight=False)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with RegistryClient(settings.schema_registry_url) as registry:
            worker = BackfillWorker(
                settings.bootstrap_servers, AvroSerde(registry), catalog, sources
            )
            console.print("serving backfill requests; Ctrl-C to stop")
            try:
                while not stop.is_set():
                    worker.poll_once(1.0)
            except KeyboardInterrupt:
                pass
            finally:
                worker.close()


def _simulated(
    source: SimulatedSource, dataset: Dataset, lo: datetime, hi: datetime, chunk_hours: int
) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    step = timedelta(hours=chunk_hours)
    current = lo
    while current < hi:
        out += source.fetch(dataset, current, min(current + step, hi))
        current += step
    return out


def _backfill_by_hand(
    settings: Settings,
    iso: Iso,
    dataset: Dataset,
    lo: datetime,
    hi: datetime,
    source: Source,
    chunk_hours: int,
    what: str,
) -> None:
    step = timedelta(hours=chunk_hours)
    chunks = max(1, int((hi - lo) / step + 0.999))
    try:
        with connector_runtime(settings, iso, dataset) as runtime, _progress() as progress:
            task = progress.add_task(f"{what} {iso.value} {dataset.value}", total=chunks, rows=0)

            def advanced(_lo: datetime, _hi: datetime, stats: RunStats) -> None:
                rows = progress.tasks[task].fields["rows"] + stats.rows
                progress.update(task, advance=1, rows=rows)

            outcome = backfill_window(runtime, source, lo, hi, chunk=step, on_chunk=advanced)
    except (ConnectorError, ContractError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from exc
    console.print(
        f"{outcome.outcome}: {outcome.records} records published"
        + (f" ({outcome.reason})" if outcome.reason else "")
    )
    if outcome.outcome in ("FAILED", "UNRECOVERABLE"):
        raise typer.Exit(1)
