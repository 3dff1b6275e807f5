"""Schema changes by migrations: plain SQL files `NNNN_name.sql`, applied in order, once.

Each schema records what it has applied (version, name, checksum) in `schema_migrations`, so a
second run is a no-op and a migration edited after it was applied is refused instead of being
silently skipped. Migrators of one schema take an advisory lock, so two starting at once apply
each file once. Nothing creates tables at start-up: `optibid db migrate` does, before projectors.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from projections import hypertables
from projections.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a badly named or duplicated version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also {found[version].path}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def migrate(
    conn: psycopg.Connection[Any], schema: str, options: hypertables.Options | None = None
) -> list[Migration]:
    """Apply the pending migrations to `schema` (created when missing); returns those applied.
    Then, where the database has TimescaleDB, compression, rollups and chunk intervals as
    `options` say (`projections.hypertables.configure`; idempotent, so a changed setting takes
    effect on the next migrate).

    Runs in the connection's own transactions (one for the whole run, so a failed migration
    leaves nothing half applied) and restores the connection's search_path afterwards.
    """
    applied: list[Migration] = []
    ident = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"optibid-migrate:{schema}",))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(ident))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at_utc timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            int(v): (str(n), str(c))
            for v, n, c in conn.execute("SELECT version, name, checksum FROM schema_migrations")
        }
        for migration in migrations():
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.path.name} changed after it was applied to schema"
                        f" {schema!r} (as {migration.version:04d}_{name}); add a new migration"
                        " instead of editing an applied one"
                    )
                continue
            try:
                conn.execute(migration.text.encode())
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.path.name} failed on schema {schema!r}: {exc}"
                ) from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied.append(migration)
        try:
            hypertables.configure(conn, schema, options)
        except psycopg.Error as exc:
            raise MigrationError(
                f"configuring TimescaleDB on schema {schema!r} failed: {exc}"
            ) from exc
    return applied


def applied_versions(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    """Versions applied to `schema` (empty when it was never migrated)."""
    exists = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s"
        " AND table_name = 'schema_migrations'",
        (schema,),
    ).fetchone()
    if not exists:
        return []
    query = sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version").format(
        sql.Identifier(schema)
    )
    return [int(v) for (v,) in conn.execute(query)]


# a TimescaleDB job running while its schema is dropped can fail the drop; it is tried again
_DROP_RACES = (
    psycopg.errors.InternalError,  # "tuple concurrently deleted"
    psycopg.errors.LockNotAvailable,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.ObjectInUse,
)


def drop_schema(dsn: str, schema: str, attempts: int = 20) -> None:
    """Drop `schema` with everything in it, TimescaleDB's jobs on it (compression, rollup
    refreshes) first; a job that runs meanwhile can still fail the drop, so it is tried again."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                if hypertables.has_timescale(conn):
                    conn.execute(
                        "SELECT delete_job(job_id) FROM timescaledb_information.jobs"
                        " WHERE hypertable_schema = %s",
                        (schema,),
                    )
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
            return
        except _DROP_RACES:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


def plain_database(dsn: str, name: str) -> str:
    """Database `name` on the server of `dsn`, without TimescaleDB (the plain-partition path
    of the read models): created when missing, made again when it has the extension. Returns
    its DSN."""
    target = make_conninfo(dsn, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            with psycopg.connect(target) as db:
                if not hypertables.has_timescale(db):
                    return target
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return target
