"""PostgreSQL from the system's binaries: initdb into the state folder, TimescaleDB when present."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from optibid.stack import process
from optibid.stack.base import Server, chown_tree, ensure_traversable
from optibid.stack.errors import StackError

_PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin/{name}",)
# Databases of the stack: the read models, and the schema registry's storage.
REGISTRY_DATABASE = "registry"


class PostgresServer(Server):
    name = "postgres"
    port_setting = "OPTIBID_POSTGRES_PORT"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def _bin(self, name: str) -> str:
        return process.require_binary(
            name, "postgresql", tuple(g.format(name=name) for g in _PG_BIN_GLOBS)
        )

    def check_installed(self) -> None:
        # Debian keeps postgres and initdb off PATH, under /usr/lib/postgresql/<major>/bin.
        self.postgres = self._bin("postgres")
        self.initdb = str(Path(self.postgres).with_name("initdb"))
        if not Path(self.initdb).exists():
            self.initdb = self._bin("initdb")

    def run_as(self) -> str | None:
        """PostgreSQL refuses to run as root; as root, the stack runs it as `postgres`."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise StackError(
                "PostgreSQL will not run as root and there is no `postgres` user to run it as",
                "apt-get install postgresql (creates the user), or run the stack as a normal user",
            ) from None
        return "postgres"

    def _timescale_available(self) -> bool:
        try:
            libdir = subprocess.run(
                [str(Path(self.postgres).with_name("pg_config")), "--pkglibdir"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return False
        return any(Path(libdir).glob("timescaledb*.so"))

    def prepare(self) -> None:
        user = self.run_as()
        if user:
            ensure_traversable(self.dir)
            chown_tree(self.dir, user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                self.initdb,
                "-D",
                str(self.data_dir),
                "-U",
                self.settings.postgres_user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            cwd=self.dir,
            **process.as_user(user),
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"initdb into {self.data_dir} failed: {result.stderr.strip()[-800:]}",
                f"remove {self.data_dir} and retry `optibid stack up`",
            )

    def argv(self) -> list[str]:
        argv = [
            self.postgres,
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "shared_buffers=256MB",
            "-c", "fsync=on",
        ]  # fmt: skip
        if self._timescale_available():
            argv += ["-c", "shared_preload_libraries=timescaledb"]
        return argv

    def _connect(self, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.settings.postgres_user,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def ready(self) -> bool:
        with self._connect("postgres") as conn:
            row = conn.execute("SELECT 1").fetchone()
        return row == (1,)

    def after_ready(self) -> None:
        with self._connect("postgres") as conn:
            for db in (self.settings.postgres_db, REGISTRY_DATABASE):
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (db,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{db}"')
        with self._connect(self.settings.postgres_db) as conn:
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
            if available and self._timescale_available():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    def static_details(self) -> dict[str, Any]:
        try:
            self.check_installed()
        except StackError:
            return {"timescaledb_available": False}
        return {"timescaledb_available": self._timescale_available()}

    def details(self) -> dict[str, Any]:
        with self._connect(self.settings.postgres_db) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            ts = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
        return {
            "version": version[0] if version else None,
            "database": self.settings.postgres_db,
            "timescaledb": ts is not None,
            "timescaledb_version": ts[0] if ts else None,
        }
