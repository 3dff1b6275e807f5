"""CLI commands of the stream workers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import faust
import typer
from prometheus_client import start_http_server

from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from streams.app import StreamWorker, WorkerConfig
from streams.validate import DEFAULT_BOUNDS, PriceBounds, ValidationConfig


def worker_config(
    settings: Settings,
    *,
    app_id: str,
    store: str,
    web_port: int,
    batch: bool = True,
    batch_records: int = WorkerConfig.batch_max_records,
) -> WorkerConfig:
    return WorkerConfig(
        broker=settings.bootstrap_servers,
        registry_url=settings.schema_registry_url,
        topic_prefix=settings.topic_prefix,
        app_id=app_id,
        store=store,
        data_dir=str(settings.state_dir / "streams" / app_id),
        web_port=web_port,
        web_host=settings.host,
        batch=batch,
        batch_max_records=batch_records,
        validation=validation_config(settings),
        revision_retention=timedelta(days=settings.revision_retention_days),
    )


def validation_config(settings: Settings) -> ValidationConfig:
    """The validation rules with the settings' price bounds over the defaults."""
    bounds = dict(DEFAULT_BOUNDS)
    for iso, (floor, cap) in settings.price_bounds.items():
        bounds[iso] = PriceBounds(floor, cap)
    return ValidationConfig(bounds=bounds)


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("worker")
    def worker(
        app_id: Annotated[
            str, typer.Option(help="Consumer group and table namespace.")
        ] = "optibid-streams",
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
        prepare_contracts(settings)
        start_http_server(metrics_port, addr=settings.host)
        config = worker_config(
            settings,
            app_id=app_id,
            store=store,
            web_port=web_port,
            batch=batch,
            batch_records=batch_records,
        )
        Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        stream_worker = StreamWorker(config)
        faust.Worker(stream_worker.app, loglevel=loglevel).execute_from_commandline()
