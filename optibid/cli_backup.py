"""`optibid backup`, `optibid restore` and `optibid backup-key`: the event log to encrypted
Avro container files and back into an empty stack (optibid.backup)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from optibid.backup import Backup, Restore, RestoreResult, read_model_checksums
from optibid.backup_format import BackupError, MasterKey, new_key_file
from optibid.cli_common import console
from optibid.cli_projections import projector_config
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.errors import ProjectionError
from projections.identity_models import IdentityProjector
from projections.migrate import migrate
from projections.models import READ_MODELS_BY_NAME, read_model
from projections.projector import Projector
from projections.usage_models import UsageProjector
from schemas.catalog import TopicCatalog
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde


def master_key(settings: Settings) -> MasterKey:
    if settings.backup_key_file is not None:
        return MasterKey.from_file(settings.backup_key_file)
    if settings.backup_key is not None:
        return MasterKey.from_text(settings.backup_key.get_secret_value())
    raise BackupError(
        "no backup key: set OPTIBID_BACKUP_KEY_FILE (make one with `optibid backup-key FILE`)"
        " or OPTIBID_BACKUP_KEY"
    )


def _bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} records"),
        TimeElapsedColumn(),
        console=console,
    )


def rebuild_read_models(settings: Settings, catalog: TopicCatalog, stop: threading.Event) -> int:
    """Every read model of settings.db_schema rebuilt from the topics (market models in
    parallel threads, then identity and usage); returns the events folded."""
    with psycopg.connect(settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, settings.db_schema, settings.hypertable_options)
    config = projector_config(settings, batch_events=20_000, batch_wait_s=1.0)
    events = [0]
    failures: list[BaseException] = []
    lock = threading.Lock()

    def market(name: str) -> None:
        try:
            with RegistryClient(settings.schema_registry_url) as registry:
                projector = Projector(read_model(name), catalog, AvroSerde(registry), config)
                projector.reset(stop)
                result = projector.run(stop, until_end=True)
            with lock:
                events[0] += result.events
        except BaseException as exc:
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=market, args=(n,)) for n in READ_MODELS_BY_NAME]
    for thread in threads:
        thread.start()
    with RegistryClient(settings.schema_registry_url) as registry:
        serde = AvroSerde(registry)
        args = (settings.bootstrap_servers, serde, catalog, settings.postgres_dsn)
        identity = IdentityProjector(*args, settings.db_schema)
        events[0] += identity.rebuild(stop).records
        usage = UsageProjector(*args, settings.db_schema)
        events[0] += usage.rebuild(stop).records
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return events[0]


def restore_stack(
    settings: Settings,
    folder: Path,
    backup_id: str | None,
    stop: threading.Event,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RestoreResult:
    """Restore into the (empty) stack of `settings` and rebuild its read models."""
    began = time.monotonic()
    catalog = TopicCatalog(settings.topic_prefix)
    restore = Restore(
        settings.bootstrap_servers,
        settings.schema_registry_url,
        settings.postgres_dsn,
        catalog,
        master_key(settings),
        folder,
        backup_id,
    )
    restore.verify()
    restore.check_empty()
    ids = restore.prepare()
    prepare_contracts(settings)
    records = restore.republish(ids, on_progress)
    restore.restore_keys()
    republished = time.monotonic()
    rebuild_read_models(settings, catalog, stop)
    rebuilt = time.monotonic()
    checksums = read_model_checksums(settings.postgres_dsn, settings.db_schema)
    checked = time.monotonic()
    before = {k: tuple(v) for k, v in restore.latest["read_models"]["checksums"].items()}
    differing = sorted(t for t in set(before) | set(checksums) if before.get(t) != checksums.get(t))
    return RestoreResult(
        [m["backup_id"] for m in restore.chain],
        records,
        republished - began,
        rebuilt - republished,
        checked - began,
        checksums,
        differing,
    )


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:  # noqa: PLR0915 - the three commands
    @app.command("backup")
    def backup(
        folder: Annotated[Path, typer.Argument(help="Folder of the backups (made if missing).")],
        full: Annotated[
            bool,
            typer.Option("--full", help="Everything, not only what the last backup lacks."),
        ] = False,
    ) -> None:
        """Back the event log up into FOLDER: encrypted Avro container files and a manifest
        of offsets and checksums; incremental from the folder's last backup."""
        settings = settings_of()
        try:
            key = master_key(settings)
            job = Backup(
                settings.bootstrap_servers,
                settings.schema_registry_url,
                settings.postgres_dsn,
                settings.db_schema,
                TopicCatalog(settings.topic_prefix),
                key,
                folder,
            )
            with _bar() as bar:
                task: TaskID = bar.add_task("backup", total=0)

                def show(_: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = job.run(full=full, progress=show)
        except BackupError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        kind = "full" if result.parent is None else f"incremental after {result.parent}"
        console.print(
            f"backup {result.backup_id} ({kind}): {result.records:,} records of"
            f" {result.topics} topics in {result.segments} segments,"
            f" {result.bytes / 1e6:,.1f} MB, {result.seconds:.1f} s -> {result.folder}"
        )
        summary = {"backup_id": result.backup_id, "parent": result.parent,
                   "records": result.records, "segments": result.segments,
                   "bytes": result.bytes, "seconds": round(result.seconds, 2)}  # fmt: skip
        print(json.dumps(summary))

    @app.command("backup-key")
    def backup_key(
        path: Annotated[Path, typer.Argument(help="Key file to write (never overwritten).")],
    ) -> None:
        """Make a new backup master key file (mode 0600); point OPTIBID_BACKUP_KEY_FILE at it."""
        try:
            key = new_key_file(path)
        except BackupError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(f"key {key.key_id} written to {path}; keep a copy apart from the backups")

    @app.command("restore")
    def restore(
        folder: Annotated[Path, typer.Argument(help="Folder of the backups.")],
        backup_id: Annotated[
            str | None,
            typer.Option("--backup", help="Backup id to restore (default: the latest)."),
        ] = None,
        verify_only: Annotated[
            bool,
            typer.Option("--verify", help="Only check checksums and MACs; change nothing."),
        ] = False,
    ) -> None:
        """Restore a backup (with the backups it continues) into an empty stack: topics,
        schemas, records, consumer groups, keys; then rebuild every read model."""
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            if verify_only:
                job = Restore(
                    settings.bootstrap_servers,
                    settings.schema_registry_url,
                    settings.postgres_dsn,
                    TopicCatalog(settings.topic_prefix),
                    master_key(settings),
                    folder,
                    backup_id,
                )
                records = job.verify()
                ids = ", ".join(m["backup_id"] for m in job.chain)
                console.print(f"backups {ids}: {records:,} records, every checksum and MAC ok")
                return
            with _bar() as bar:
                task: TaskID = bar.add_task("republish", total=0)

                def show(_: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = restore_stack(settings, folder, backup_id, stop, show)
        except (BackupError, ContractError, ProjectionError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        table = Table("read model", "rows", "md5", "as at backup")
        for name, (rows, digest) in sorted(result.checksums.items()):
            table.add_row(
                name, f"{rows:,}", digest[:12], "differs" if name in result.differing else "equal"
            )
        console.print(table)
        console.print(
            f"restored {', '.join(result.backup_ids)}: {result.records:,} records republished in"
            f" {result.seconds_republish:.1f} s, read models rebuilt in"
            f" {result.seconds_rebuild:.1f} s; {result.seconds:.1f} s in all"
        )
        summary = {"backups": result.backup_ids, "records": result.records,
                   "seconds_republish": round(result.seconds_republish, 2),
                   "seconds_rebuild": round(result.seconds_rebuild, 2),
                   "seconds": round(result.seconds, 2), "differing": result.differing}  # fmt: skip
        print(json.dumps(summary))
        if result.differing:
            console.print(
                "[red]read models differ from those at backup time:[/]"
                f" {', '.join(result.differing)} (was a projector behind at backup time?)"
            )
            raise typer.Exit(3)
