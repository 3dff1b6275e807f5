"""CLI commands of the stream workers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import faust
import typer

from optibid.broker_watch import observe_role
from optibid.cli_common import DatasetArg, IsoArg, check_dataset, console, progress
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.app import StreamWorker, WorkerConfig
from streams.identity_app import IdentityWorker, IdentityWorkerConfig
from streams.kpi_app import KpiWorker, KpiWorkerConfig
from streams.kpi_state import KpiConfig
from streams.redrive import RedriveError, Redriver
from streams.runtime import ensure_changelogs
from streams.validate import DEFAULT_BOUNDS, PriceBounds, ValidationConfig

AppConfig = TypeVar("AppConfig", WorkerConfig, KpiWorkerConfig, IdentityWorkerConfig)


class _FaustWorker(Protocol):
    """A stream worker (StreamWorker, KpiWorker): its faust app, and `prepare`, the work it
    does before the app starts."""

    @property
    def app(self) -> faust.App: ...
    def prepare(self) -> None: ...


def app_config(
    kind: type[AppConfig],
    settings: Settings,
    folder: str,
    *,
    app_id: str,
    store: str,
    web_port: int,
    **options: Any,
) -> AppConfig:
    """A stream worker's config: its faust app's fields from settings and the command line (its
    state in <state dir>/<folder>/<app id>), and `options`, the fields of that worker's own."""
    return kind(
        broker=settings.bootstrap_servers,
        registry_url=settings.schema_registry_url,
        topic_prefix=settings.topic_prefix,
        app_id=app_id,
        store=store,
        data_dir=str(settings.state_dir / folder / app_id),
        web_port=web_port,
        web_host=settings.host,
        **options,
    )


def worker_config(
    settings: Settings,
    *,
    app_id: str,
    store: str,
    web_port: int,
    batch: bool = True,
    batch_records: int = WorkerConfig.batch_max_records,
) -> WorkerConfig:
    return app_config(
        WorkerConfig,
        settings,
        "streams",
        app_id=app_id,
        store=store,
        web_port=web_port,
        batch=batch,
        batch_max_records=batch_records,
        validation=validation_config(settings),
        revision_retention=timedelta(days=settings.revision_retention_days),
    )


def kpi_config(settings: Settings) -> KpiConfig:
    return KpiConfig(
        grace=timedelta(hours=settings.kpi_grace_hours),
        spike_threshold_usd_per_mwh=settings.kpi_spike_threshold_usd_per_mwh,
        hubs={**KpiConfig().hubs, **settings.kpi_reference_hubs},
    )


def validation_config(settings: Settings) -> ValidationConfig:
    """The validation rules with the settings' price bounds over the defaults."""
    bounds = dict(DEFAULT_BOUNDS)
    for iso, (floor, cap) in settings.price_bounds.items():
        bounds[iso] = PriceBounds(floor, cap)
    return ValidationConfig(bounds=bounds)


APP_ID_HELP = "Consumer group and table namespace (default: the topic prefix, then optibid-ROLE)."


def default_app_id(settings: Settings, name: str) -> str:
    """A worker's app id (its consumer group, and its tables' changelog topics) under the
    settings' topic prefix, so stacks sharing a broker under different prefixes never share
    a group."""
    return f"{settings.topic_prefix}{name}"


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("kpis")
    def kpis(
        app_id: Annotated[str | None, typer.Option(help=APP_ID_HELP)] = None,
        store: Annotated[str, typer.Option(help="Table store: rocksdb:// or memory://")] = (
            "rocksdb://"
        ),
        web_port: Annotated[int, typer.Option(help="Faust's web port (health, stats).")] = 6067,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9468,
        loglevel: Annotated[str, typer.Option()] = "warn",
    ) -> None:
        """Run the KPI workers: per-series hourly and daily KPIs, DA-RT spread, basis and
        benchmarks, to the kpi.* topics."""
        settings = settings_of()
        app_id = app_id or default_app_id(settings, "optibid-kpis")
        settings = _prepared(settings, "kpis", metrics_port)
        config = app_config(
            KpiWorkerConfig,
            settings,
            "kpis",
            app_id=app_id,
            store=store,
            web_port=web_port,
            kpi=kpi_config(settings),
        )
        _serve(settings, config, KpiWorker, loglevel)

    @app.command("identity")
    def identity(
        app_id: Annotated[str | None, typer.Option(help=APP_ID_HELP)] = None,
        store: Annotated[str, typer.Option(help="Table store: rocksdb:// or memory://")] = (
            "rocksdb://"
        ),
        web_port: Annotated[int, typer.Option(help="Faust's web port (health, stats).")] = 6068,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9469,
        loglevel: Annotated[str, typer.Option()] = "warn",
    ) -> None:
        """Run the identity command handler: identity.commands decided per organisation and
        user, to identity.events, identity.command_outcomes and audit.events."""
        settings = settings_of()
        app_id = app_id or default_app_id(settings, "optibid-identity")
        settings = _prepared(settings, "identity", metrics_port)
        config = app_config(
            IdentityWorkerConfig, settings, "identity", app_id=app_id, store=store,
            web_port=web_port,
        )  # fmt: skip
        _serve(settings, config, IdentityWorker, loglevel)

    dlq_app = typer.Typer(help="Dead-letter queues: what was rejected, and re-driving it.")
    app.add_typer(dlq_app, name="dlq")

    @dlq_app.command("show")
    def dlq_show(iso: IsoArg, dataset: DatasetArg) -> None:
        """Count the dead letters of an ISO dataset by reason code."""
        check_dataset(iso, dataset)
        settings = settings_of()
        catalog = prepare_contracts(settings)
        with RegistryClient(settings.schema_registry_url) as registry:
            redriver = Redriver(
                settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog
            )
            counts = redriver.summary(iso, dataset)
        print(
            json.dumps(
                {
                    "dlq_topic": catalog.dlq(iso, dataset).name,
                    "by_reason": dict(sorted(counts.items())),
                }
            )
        )

    @dlq_app.command("redrive")
    def dlq_redrive(
        iso: IsoArg,
        dataset: DatasetArg,
        reason: Annotated[
            list[str] | None,
            typer.Option(help="Only dead letters with this reason code (repeatable)."),
        ] = None,
        dry_run: Annotated[bool, typer.Option(help="Count what would be republished.")] = False,
        from_start: Annotated[
            bool, typer.Option(help="Read the whole DLQ again, not only what is new.")
        ] = False,
    ) -> None:
        """Republish dead letters to their raw topic after a fix; the worker takes them again
        (those that still fail come back to the DLQ)."""
        check_dataset(iso, dataset)
        settings = settings_of()
        catalog = prepare_contracts(settings)
        bar = progress("[bold]redrive {task.description}")
        with RegistryClient(settings.schema_registry_url) as registry, bar:
            task = bar.add_task(catalog.dlq(iso, dataset).name, total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            redriver = Redriver(
                settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog
            )
            try:
                report = redriver.redrive(
                    iso,
                    dataset,
                    reasons=reason,
                    dry_run=dry_run,
                    from_start=from_start,
                    progress=advance,
                )
            except RedriveError as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
        print(json.dumps(report.as_dict()))

    @app.command("worker")
    def worker(
        app_id: Annotated[str | None, typer.Option(help=APP_ID_HELP)] = None,
        store: Annotated[
            str, typer.Option(help="Table store: rocksdb:// or memory://")
        ] = "rocksdb://",
        web_port: Annotated[int, typer.Option(help="Faust's web port (health, stats).")] = 6066,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9466,
        loglevel: Annotated[str, typer.Option()] = "warn",
        batch: Annotated[
            bool, typer.Option(help="Raw topics in batches (else faust's per-event streams).")
        ] = True,
        batch_records: Annotated[
            int, typer.Option(help="Most raw records per batch (one fetch).")
        ] = WorkerConfig.batch_max_records,
    ) -> None:
        """Run the stream workers: validate, normalise, revisions, gaps, backfill requests,
        freshness."""
        settings = settings_of()
        app_id = app_id or default_app_id(settings, "optibid-streams")
        settings = _prepared(settings, "worker", metrics_port)
        config = worker_config(
            settings,
            app_id=app_id,
            store=store,
            web_port=web_port,
            batch=batch,
            batch_records=batch_records,
        )
        _serve(settings, config, StreamWorker, loglevel)


def _prepared(settings: Settings, role: str, metrics_port: int) -> Settings:
    """Settings of a stream role whose contracts are in place and whose metrics are served.
    Its consumer group's lag is measured by its faust app from its own consumer
    (`streams.runtime.lag`), not by a lag watch asking the broker: an admin client beside
    faust's consumer stalled the stream worker after a broker restart."""
    prepare_contracts(settings)
    observe_role(settings.bootstrap_servers, role, settings.metrics_host, metrics_port)
    return settings


def _serve(
    settings: Settings,
    config: AppConfig,
    worker_of: Callable[[AppConfig], _FaustWorker],
    loglevel: str,
) -> None:
    """Run a stream worker in the foreground until stopped: its state folder, its changelog
    topics and what it prepares first, then faust's worker."""
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    worker = worker_of(config)
    ensure_changelogs(worker.app, settings.bootstrap_servers)
    worker.prepare()
    faust.Worker(worker.app, loglevel=loglevel).execute_from_commandline()
