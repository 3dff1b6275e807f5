"""CLI commands of usage metering: `optibid meter` (the meter worker) and
`optibid project-usage [--rebuild] [--once]` (the usage projector)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import faust
import psycopg
import typer

from optibid.broker_watch import observe_role
from optibid.cli_common import console
from optibid.cli_streams import APP_ID_HELP, default_app_id
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.errors import ProjectionError
from projections.usage_models import GROUP as USAGE_GROUP
from projections.usage_models import Progress as RunProgress
from projections.usage_models import UsageProjector
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.meter_app import MeterWorker, MeterWorkerConfig
from streams.runtime import ensure_changelogs

MIN_IDLE_S = 5.0  # a partition is idle (windows close by wall clock) after no record this long


def meter_config(
    settings: Settings, *, app_id: str, store: str, web_port: int
) -> MeterWorkerConfig:
    """The meter's config: its faust app from settings and the command line (its state in
    <state dir>/meter/<app id>), its windows from the metering settings."""
    return MeterWorkerConfig(
        broker=settings.bootstrap_servers,
        registry_url=settings.schema_registry_url,
        topic_prefix=settings.topic_prefix,
        app_id=app_id,
        store=store,
        data_dir=str(settings.state_dir / "meter" / app_id),
        web_port=web_port,
        web_host=settings.host,
        window_s=settings.meter_window_s,
        lateness_s=settings.meter_lateness_s,
        idle_after_s=max(float(settings.meter_lateness_s), MIN_IDLE_S),
    )


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("meter")
    def meter(
        app_id: Annotated[str | None, typer.Option(help=APP_ID_HELP)] = None,
        store: Annotated[str, typer.Option(help="Table store: rocksdb:// or memory://")] = (
            "rocksdb://"
        ),
        web_port: Annotated[int, typer.Option(help="Faust's web port (health, stats).")] = 6069,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9473,
        loglevel: Annotated[str, typer.Option()] = "warn",
    ) -> None:
        """Run the usage meter: usage.requests counted per organisation into windows of
        OPTIBID_METER_WINDOW_S seconds, each sent to usage.windows once closed."""
        settings = settings_of()
        app_id = app_id or default_app_id(settings, "optibid-meter")
        prepare_contracts(settings)
        # its lag is measured by its faust app (see cli_streams._prepared)
        observe_role(settings.bootstrap_servers, "meter", settings.metrics_host, metrics_port)
        config = meter_config(settings, app_id=app_id, store=store, web_port=web_port)
        Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        worker = MeterWorker(config)
        ensure_changelogs(worker.app, settings.bootstrap_servers)
        worker.prepare()
        faust.Worker(worker.app, loglevel=loglevel).execute_from_commandline()

    @app.command("project-usage")
    def project_usage(
        rebuild: Annotated[
            bool,
            typer.Option(
                "--rebuild",
                help="Empty the usage read model and replay usage.windows from its start first.",
            ),
        ] = False,
        once: Annotated[
            bool,
            typer.Option("--once", help="Stop once caught up instead of running until stopped."),
        ] = False,
        metrics_port: Annotated[
            int | None,
            typer.Option(
                help="Prometheus metrics port (default OPTIBID_USAGE_PROJECTOR_METRICS_PORT;"
                " 0: none)."
            ),
        ] = None,
    ) -> None:
        """Project usage.windows into the usage read model (usage_windows) until stopped."""
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            catalog = prepare_contracts(settings)
        except ContractError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        port = settings.usage_projector_metrics_port if metrics_port is None else metrics_port
        group = f"{catalog.prefix}{USAGE_GROUP}"
        observe_role(
            settings.bootstrap_servers, "usage-projector", settings.metrics_host, port, [group]
        )
        try:
            with RegistryClient(settings.schema_registry_url) as registry:
                projector = UsageProjector(
                    settings.bootstrap_servers,
                    AvroSerde(registry),
                    catalog,
                    settings.postgres_dsn,
                    settings.db_schema,
                )
                try:
                    if rebuild:
                        result = projector.rebuild(stop)
                        console.print(_summary("rebuilt usage", result))
                    if not stop.is_set() and not (rebuild and once):
                        console.print(
                            f"projecting usage into schema {settings.db_schema}"
                            + (" until caught up" if once else "")
                        )
                        result = projector.run(stop, until_caught_up=once)
                        console.print(_summary("usage", result))
                finally:
                    projector.close()
        except (ProjectionError, ContractError, psycopg.Error) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None


def _summary(what: str, result: RunProgress) -> str:
    return (
        f"{what}: {result.records:,} records, {result.written:,} windows written,"
        f" {result.skipped} skipped, {result.rate:,.0f} records/s"
    )
