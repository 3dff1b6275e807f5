"""CLI commands of the projectors: `optibid db migrate`, `optibid project`, `optibid replay`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import psycopg
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from optibid.broker_watch import observe_role
from optibid.cli_common import console, utc_time
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.errors import ProjectionError
from projections.migrate import migrate
from projections.models import READ_MODELS_BY_NAME, read_model
from projections.projector import Progress as RunProgress
from projections.projector import Projector, ProjectorConfig
from schemas.catalog import TopicCatalog
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

MODEL_HELP = f"Read model: {', '.join(READ_MODELS_BY_NAME)}"


def _models(name: str) -> list[str]:
    if name == "all":
        return list(READ_MODELS_BY_NAME)
    try:
        read_model(name)
    except KeyError as exc:
        console.print(f"[red]error:[/] {exc.args[0]} (or all)")
        raise typer.Exit(2) from None
    return [name]


def projector_config(settings: Settings, batch_events: int, batch_wait_s: float) -> ProjectorConfig:
    return ProjectorConfig(
        bootstrap=settings.bootstrap_servers,
        postgres_dsn=settings.postgres_dsn,
        db_schema=settings.db_schema,
        redis_url=settings.redis_dsn,
        batch_max_events=batch_events,
        batch_max_wait_s=batch_wait_s,
        chunk_target_bytes=settings.hypertable_options.chunk_target_bytes,
    )


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:  # noqa: PLR0915 - one place wires the projector commands
    db_app = typer.Typer(help="The read models' PostgreSQL schema.")
    app.add_typer(db_app, name="db")

    @db_app.command("migrate")
    def db_migrate() -> None:
        """Apply the pending migrations to OPTIBID_DB_SCHEMA (idempotent)."""
        settings = settings_of()
        try:
            with psycopg.connect(settings.postgres_dsn, connect_timeout=5) as conn:
                applied = migrate(conn, settings.db_schema, settings.hypertable_options)
        except (ProjectionError, psycopg.Error) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none pending"
        console.print(f"schema {settings.db_schema}: {len(applied)} migrations applied ({names})")

    @app.command("project")
    def project(
        model: Annotated[str, typer.Argument(help=f"{MODEL_HELP}, or all.")],
        batch_events: Annotated[int, typer.Option(help="Most events per batch.")] = 5000,
        batch_wait_s: Annotated[
            float, typer.Option(help="Longest a batch stays open, seconds.")
        ] = 0.5,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9467,
    ) -> None:
        """Project read models from their topics into PostgreSQL and Redis, until stopped."""
        names = _models(model)
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            catalog = prepare_contracts(settings)
            config = projector_config(settings, batch_events, batch_wait_s)
        except (ContractError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        observe_role(settings.bootstrap_servers, "projector", settings.metrics_host, metrics_port)
        failures: list[BaseException] = []

        def run(name: str) -> None:
            try:
                with RegistryClient(settings.schema_registry_url) as registry:
                    projector = Projector(read_model(name), catalog, AvroSerde(registry), config)
                    projector.run(stop)
            except BaseException as exc:
                failures.append(exc)
                stop.set()
                raise

        threads = [threading.Thread(target=run, args=(n,), name=f"project-{n}") for n in names]
        console.print(f"projecting {', '.join(names)} into schema {settings.db_schema}")
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(0.5)
        except KeyboardInterrupt:
            stop.set()
            for thread in threads:
                thread.join()
        if failures:
            console.print(f"[red]error:[/] {failures[0]}")
            raise typer.Exit(1)

    @app.command("replay")
    def replay(
        model: Annotated[str, typer.Argument(help=f"{MODEL_HELP}, or all.")],
        from_: Annotated[
            str | None,
            typer.Option(
                "--from",
                help="Rebuild only rows at or after this time (interval or window start),"
                " e.g. 2024-11-03 or 2024-11-03T05:00Z; time-series read models only.",
            ),
        ] = None,
        batch_events: Annotated[int, typer.Option(help="Most events per batch.")] = 20_000,
    ) -> None:
        """Empty a read model and rebuild it from its topics (from offset zero)."""
        names = _models(model)
        since = utc_time(from_, "from") if from_ else None
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            catalog = prepare_contracts(settings)
            config = projector_config(settings, batch_events, 1.0)
            for name in names:
                _replay_one(settings, catalog, config, name, since, stop)
        except (ProjectionError, ContractError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stop.set()
            raise


def _replay_one(
    settings: Settings,
    catalog: TopicCatalog,
    config: ProjectorConfig,
    name: str,
    since: datetime | None,
    stop: threading.Event,
) -> None:
    model = read_model(name)
    with RegistryClient(settings.schema_registry_url) as registry:
        projector = Projector(model, catalog, AvroSerde(registry), config, since=since)
        projector.reset(stop, since)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
            TextColumn("{task.fields[rate]:,.0f} events/s"),
            TextColumn("lag {task.fields[lag]:,}"),
            TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task: TaskID = bar.add_task(f"replay {name}", total=0, rate=0.0, lag=0, eta="?")

            def show(progress: RunProgress) -> None:
                total = progress.events + progress.lag
                eta = f"{progress.lag / progress.rate:,.0f} s" if progress.rate > 0 else "?"
                bar.update(
                    task,
                    completed=progress.events,
                    total=total,
                    rate=progress.rate,
                    lag=progress.lag,
                    eta=eta,
                )

            result = projector.run(stop, until_end=True, on_progress=show)
        console.print(
            f"{name}: {result.events:,} events, {result.rows:,} rows upserted,"
            f" {result.dead_letters} dead letters, {result.rate:,.0f} events/s"
        )
