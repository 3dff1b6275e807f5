"""The `optibid` command: one CLI starts every role."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from optibid import (
    cli_admin,
    cli_api,
    cli_backup,
    cli_billing,
    cli_connectors,
    cli_identity,
    cli_ops,
    cli_projections,
    cli_streams,
    cli_usage,
    stack,
)
from optibid.demo import run_demo
from optibid.logs import configure_logging
from optibid.settings import Settings
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.errors import ContractError
from schemas.registration import register_all, release, unreleased_changes
from schemas.registry import RegistryClient
from schemas.topics import ensure_topics

app = typer.Typer(
    help="OptiBid: streaming US wholesale electricity market data.", no_args_is_help=True
)
stack_app = typer.Typer(
    help="The local stack: Kafka, schema registry, PostgreSQL, Redis on loopback."
)
topics_app = typer.Typer(help="Topics of the catalog.")
schemas_app = typer.Typer(help="Avro contracts and the schema registry.")
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")

console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings)
    # every Kafka client of this process connects as the settings say (schemas.kafka_client)
    kafka_client.configure(settings.kafka_security, settings.topic_replication_factor)
    return settings


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
    return typer.Exit(code=1)


@stack_app.command("up")
def stack_up() -> None:
    """Start every server of the local stack (a no-op for those already running)."""
    settings = _settings()
    began = time.monotonic()

    def report(name: str, outcome: str, seconds: float) -> None:
        console.print(f"  {name:<9} {outcome:<8} {seconds:6.1f} s")

    try:
        stack.up(settings, report)
    except stack.StackError as exc:
        raise _fail(exc) from exc
    console.print(f"stack up in {time.monotonic() - began:.1f} s (state in {settings.state_dir})")


@stack_app.command("down")
def stack_down() -> None:
    """Stop every server of the local stack; no process is left behind."""
    settings = _settings()
    try:
        stopped = stack.down(settings)
    except stack.StackError as exc:
        raise _fail(exc) from exc
    for name, was_running in stopped.items():
        console.print(f"  {name:<9} {'stopped' if was_running else 'was not running'}")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Each server, its port and state, and whether TimescaleDB is present."""
    settings = _settings()
    statuses = stack.status(settings)
    if as_json:
        out.print_json(json.dumps({s.name: s.as_dict() for s in statuses}))
        return
    table = Table("server", "address", "state", "pid", "details")
    for s in statuses:
        details = ", ".join(f"{k}={v}" for k, v in s.details.items())
        table.add_row(s.name, f"{s.host}:{s.port}", s.state, str(s.pid or "-"), details)
    out.print(table)
    postgres = next(s for s in statuses if s.name == "postgres")
    # in full, whatever the table's width: root's stack keeps it outside the clone
    out.print(f"postgres data: {postgres.details['data_dir']}", highlight=False, soft_wrap=True)
    if postgres.state == "running":
        facts = postgres.details
        flavour = (
            f"TimescaleDB {facts.get('timescaledb_version')} hypertables"
            f" (license: {facts.get('timescaledb_license')})"
            if facts.get("timescaledb")
            else "no TimescaleDB: native range partitions with BRIN indexes"
        )
        out.print(f"time-series storage: {flavour}")
    reason = postgres.details.get("timescaledb_reason")
    if reason and not postgres.details.get("timescaledb"):
        out.print(f"timescaledb: {reason}", highlight=False, soft_wrap=True)


@stack_app.command("logs")
def stack_logs(
    server: Annotated[
        str | None, typer.Argument(help="kafka, registry, postgres or redis.")
    ] = None,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 40,
) -> None:
    """The last lines of each server's log."""
    settings = _settings()
    chosen = [s for s in stack.servers(settings) if server in (None, s.name)]
    if not chosen:
        names = ", ".join(s.name for s in stack.servers(settings))
        raise _fail(ValueError(f"no server {server!r}; choose one of {names}"))
    for s in chosen:
        out.rule(f"{s.name} ({s.log_path})")
        out.print(s.logs(lines), markup=False, highlight=False)


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic of the catalog that does not exist yet."""
    settings = _settings()
    catalog = TopicCatalog(settings.topic_prefix)
    try:
        created = ensure_topics(settings.bootstrap_servers, catalog)
    except ContractError as exc:
        raise _fail(exc) from exc
    console.print(f"{len(created)} topics created, {len(catalog) - len(created)} already there")


@topics_app.command("list")
def topics_list() -> None:
    """The catalog: name, key, partitions, retention, value schema."""
    table = Table("topic", "key", "partitions", "retention", "value schema")
    for t in TopicCatalog(Settings().topic_prefix):
        retention = "forever" if t.retention_ms < 0 else f"{t.retention_ms // 86_400_000} d"
        table.add_row(t.name, t.key, str(t.partitions), retention, t.value_schema)
    out.print(table)


@schemas_app.command("register")
def schemas_register() -> None:
    """Register every topic's value schema under BACKWARD compatibility."""
    settings = _settings()
    try:
        with RegistryClient(settings.schema_registry_url) as registry:
            done = register_all(registry, TopicCatalog(settings.topic_prefix), ContractSet())
    except ContractError as exc:
        raise _fail(exc) from exc
    ids = sorted({r.schema_id for r in done})
    console.print(f"{len(done)} subjects registered (BACKWARD), {len(ids)} distinct schema ids")


@schemas_app.command("release")
def schemas_release() -> None:
    """Record the current schemas as released versions (schemas/avro/released.json)."""
    changed = release(ContractSet())
    console.print(f"{len(changed)} schemas recorded: {', '.join(changed) or 'none changed'}")


@schemas_app.command("pending")
def schemas_pending() -> None:
    """Schemas changed since their last release."""
    pending = unreleased_changes(ContractSet())
    out.print("\n".join(pending) if pending else "no unreleased schema changes")


@app.command("demo")
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop the path after this many seconds (default: Ctrl-C).")
    ] = None,
) -> None:
    """The whole path on the local stack: simulated and recorded ISO data through the stream
    and KPI workers and the projectors to the API and its dashboard."""
    settings = _settings()
    try:
        run_demo(settings, console, duration_s=duration)
    except (stack.StackError, ContractError, RuntimeError) as exc:
        raise _fail(exc) from exc


cli_connectors.register(app, _settings)
cli_streams.register(app, _settings)
cli_projections.register(app, _settings)
cli_identity.register(app, _settings)
cli_usage.register(app, _settings)
cli_api.register(app, _settings)
cli_billing.register(app, _settings)
cli_admin.register(app, _settings)
cli_backup.register(app, _settings)
cli_ops.register(app, _settings)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
