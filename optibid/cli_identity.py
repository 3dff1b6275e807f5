"""CLI command of the identity projector: `optibid project-identity [--rebuild] [--once]`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Annotated

import psycopg
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from optibid.broker_watch import observe_role
from optibid.cli_common import console
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.errors import ProjectionError
from projections.identity_models import GROUP as IDENTITY_GROUP
from projections.identity_models import IdentityProjector
from projections.identity_models import Progress as RunProgress
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("project-identity")
    def project_identity(
        rebuild: Annotated[
            bool,
            typer.Option(
                "--rebuild",
                help="Empty the identity read models and replay identity.events and"
                " audit.events from their start first.",
            ),
        ] = False,
        once: Annotated[
            bool,
            typer.Option("--once", help="Stop once caught up instead of running until stopped."),
        ] = False,
        metrics_port: Annotated[
            int | None,
            typer.Option(
                help="Prometheus metrics port (default OPTIBID_IDENTITY_PROJECTOR_METRICS_PORT;"
                " 0: none)."
            ),
        ] = None,
    ) -> None:
        """Project identity.events and audit.events into the identity read models (users,
        organisations, members, invitations, API keys, sessions, audit log) until stopped."""
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            catalog = prepare_contracts(settings)
        except ContractError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        port = settings.identity_projector_metrics_port if metrics_port is None else metrics_port
        group = f"{catalog.prefix}{IDENTITY_GROUP}"
        observe_role(
            settings.bootstrap_servers, "identity-projector", settings.metrics_host, port, [group]
        )
        try:
            with RegistryClient(settings.schema_registry_url) as registry:
                projector = IdentityProjector(
                    settings.bootstrap_servers,
                    AvroSerde(registry),
                    catalog,
                    settings.postgres_dsn,
                    settings.db_schema,
                )
                try:
                    if rebuild:
                        _rebuild(projector, stop)
                    if not stop.is_set() and not (rebuild and once):
                        console.print(
                            f"projecting identity into schema {settings.db_schema}"
                            + (" until caught up" if once else "")
                        )
                        result = projector.run(stop, until_caught_up=once)
                        console.print(_summary("identity", result))
                finally:
                    projector.close()
        except (ProjectionError, ContractError, psycopg.Error) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None


def _rebuild(projector: IdentityProjector, stop: threading.Event) -> None:
    """Rebuild with a progress bar of records read against those to read."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} records"),
        TextColumn("{task.fields[applied]:,} applied"),
        TextColumn("{task.fields[rate]:,.0f} records/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("rebuild identity", total=0, applied=0, rate=0.0)

        def show(progress: RunProgress) -> None:
            bar.update(
                task,
                completed=progress.records,
                total=max(progress.total, progress.records),
                applied=progress.applied,
                rate=progress.rate,
            )

        result = projector.rebuild(stop, on_progress=show)
    console.print(_summary("rebuilt identity", result))


def _summary(what: str, result: RunProgress) -> str:
    return (
        f"{what}: {result.records:,} records, {result.applied:,} applied,"
        f" {result.duplicates:,} duplicates, {result.skipped} skipped,"
        f" {result.rate:,.0f} records/s"
    )
