"""PostgreSQL from the system's binaries: initdb into a data folder of the stack's own,
TimescaleDB when present.

Run by a normal user, the data lives in the state folder. Run as root, PostgreSQL runs as the
`postgres` user, who may not be able to enter the clone (root's home and `mktemp -d` folders
are 0700): its data then lives in a folder of its own under /var/lib/optibid, one per state
folder (named by a hash of its path), owned by `postgres` and mode 0700. `stack status` says
which.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from optibid.stack import process, timescale
from optibid.stack.base import Server
from optibid.stack.errors import StackError

_PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin/{name}",)
REPO_ROOT = Path(__file__).resolve().parents[2]


def timescale_cache() -> Path:
    """Where built TimescaleDB installs are kept: the user's cache folder, one per source hash
    and server version."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optibid" / "timescaledb"


def _say(line: str) -> None:
    print(f"postgres: {line}", file=sys.stderr, flush=True)


# Databases of the stack: the read models, and the schema registry's storage.
REGISTRY_DATABASE = "registry"
# Where PostgreSQL keeps its data when it runs as another user than the one running the stack.
SHARED_DATA_ROOT = Path("/var/lib/optibid")
SERVICE_USER = "postgres"


def can_search(mode: int, owner: int, group: int, uid: int, gid: int) -> bool:
    """Whether a process of `uid` with the one group `gid` may enter a folder (mode bits only;
    the owner's bits apply to the owner, the group's to the group, the others' to the rest)."""
    if uid == 0:
        return True
    if owner == uid:
        return bool(mode & stat.S_IXUSR)
    if group == gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def first_unreachable(path: Path, user: str) -> Path | None:
    """The first folder on the way from / to `path` (itself included) that `user`, with its
    own group only, cannot enter; None when it can reach `path`."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return path
    resolved = path.resolve()
    for folder in [*reversed(resolved.parents), resolved]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            return None  # what is missing will be made by whoever reached this far
        if not can_search(st.st_mode, st.st_uid, st.st_gid, entry.pw_uid, entry.pw_gid):
            return folder
    return None


def data_dir_for(state_dir: Path, user: str | None, shared_root: Path = SHARED_DATA_ROOT) -> Path:
    """PostgreSQL's data folder for a stack whose state is in `state_dir`.

    `user` is who runs the server when that is not the caller (root runs it as `postgres`).
    A server run by the caller keeps its data in the state folder; one run as another user
    keeps it in `shared_root`/<hash of the state folder's path>/data, unless a cluster made
    earlier in the state folder is there and that user can reach it.
    """
    in_state = state_dir / "postgres" / "data"
    if user is None:
        return in_state
    if (in_state / "PG_VERSION").exists() and first_unreachable(in_state, user) is None:
        return in_state
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return shared_root / key / "data"


class PostgresServer(Server):
    name = "postgres"
    port_field = "postgres_port"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit

    @property
    def data_dir(self) -> Path:
        user = SERVICE_USER if os.geteuid() == 0 else None
        return data_dir_for(self.settings.state_dir, user)

    def workdir(self) -> Path:
        # PostgreSQL's binaries return to their working folder when they resolve their own
        # path: it must be one the server's user can enter
        return self.data_dir.parent

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
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise StackError(
                "PostgreSQL will not run as root and there is no `postgres` user to run it as",
                "apt-get install postgresql (creates the user), or run the stack as a normal user",
            ) from None
        return SERVICE_USER

    def _timescale_available(self) -> bool:
        """TimescaleDB is installed in this server's library folder (and not switched off)."""
        if not self.settings.timescaledb:
            return False
        pg_config = timescale.pg_config_for(Path(self._bin("postgres")))  # through any symlink
        try:
            layout = timescale.server_layout(pg_config)
        except StackError:
            return False
        return bool(timescale.installed_libraries(layout.pkglibdir))

    def _make_home(self, user: str) -> None:
        """The data's parent, owned by `user` and private to it, under a root it can enter."""
        home = self.data_dir.parent
        if home.parent == self.dir:
            return  # a cluster made earlier in the state folder, already the user's
        root = home.parent
        if not root.exists():
            root.mkdir(parents=True)
            root.chmod(0o755)
        home.mkdir(exist_ok=True)
        entry = pwd.getpwnam(user)
        shutil.chown(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)
        # which state folder this data belongs to, for whoever cleans /var/lib/optibid
        (home / "state_dir").write_text(f"{self.settings.state_dir.resolve()}\n")
        blocked = first_unreachable(home, user)
        if blocked is not None:
            raise StackError(
                f"PostgreSQL's data folder {home} is out of reach of the `{user}` user: "
                f"it cannot enter {blocked}",
                f"give others search permission on {blocked} (chmod o+x {blocked})",
            )

    def prepare(self) -> None:
        user = self.run_as()
        if user:
            self._make_home(user)
        self._ensure_timescale()
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
            cwd=self.workdir(),
            **process.as_user(user),
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"initdb into {self.data_dir} failed: {result.stderr.strip()[-800:]}",
                self._initdb_fix(user, result.stderr),
            )

    def _ensure_timescale(self) -> None:
        """Build TimescaleDB from the vendored source when the server lacks it (once: the build
        is cached by source hash and server version). Where it cannot be built, the stack starts
        without it, saying why, and the read models use plain partitions."""
        if not self.settings.timescaledb:
            return
        pg_config = timescale.pg_config_for(Path(self.postgres))
        source = timescale.vendored_source(REPO_ROOT)
        try:
            status = timescale.ensure_timescaledb(pg_config, source, timescale_cache(), _say)
        except StackError as exc:
            _say(f"TimescaleDB not available: {exc.message} (fix: {exc.fix}); plain partitions")
            return
        except OSError as exc:  # a cache or server folder it may not write, a tool gone
            _say(f"TimescaleDB not available: {exc}; plain partitions")
            return
        if not status.available:
            _say(status.reason or "TimescaleDB not available: plain partitions")
        elif status.built or status.from_cache:
            how = "built" if status.built else "installed from the build cache"
            _say(f"TimescaleDB {status.version} {how}")

    def _initdb_fix(self, user: str | None, stderr: str) -> str:
        if user and "Permission denied" in stderr:
            blocked = first_unreachable(self.data_dir, user)
            if blocked is not None:
                return (
                    f"the `{user}` user cannot enter {blocked}: "
                    f"give others search permission on it (chmod o+x {blocked})"
                )
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            return f"remove {self.data_dir} (an unfinished initdb) and retry `optibid stack up`"
        return "read initdb's message above"

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
            # TimescaleDB's jobs (compression, rollup refreshes) each take a background worker:
            # 16 of them, its scheduler per database and parallel queries must all fit
            argv += [
                "-c", "shared_preload_libraries=timescaledb",
                "-c", "timescaledb.max_background_workers=16",
                "-c", "max_worker_processes=32",
            ]  # fmt: skip
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
            # only on a server started with it preloaded (one started before it was installed,
            # or with it switched off, keeps plain partitions until it is restarted)
            preloaded = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
                " AND 'timescaledb' = ANY(string_to_array("
                "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"
            ).fetchone()
            if preloaded and self.settings.timescaledb:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    def static_details(self) -> dict[str, Any]:
        where = {"data_dir": str(self.data_dir)}
        try:
            self.check_installed()
        except StackError:
            return {**where, "timescaledb_available": False}
        if not self.settings.timescaledb:
            off = "switched off (OPTIBID_TIMESCALEDB=false): plain partitions"
            return {**where, "timescaledb_available": False, "timescaledb_reason": off}
        pg_config = timescale.pg_config_for(Path(self.postgres))
        status = timescale.probe(pg_config, timescale.vendored_source(REPO_ROOT))
        return {
            **where,
            "timescaledb_available": status.available,
            "timescaledb_version": status.version,
            "timescaledb_reason": status.reason,
        }

    def details(self) -> dict[str, Any]:
        with self._connect(self.settings.postgres_db) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            ts = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
            license_ = timescale.license_of(conn) if ts is not None else None
        return {
            "version": version[0] if version else None,
            "database": self.settings.postgres_db,
            "timescaledb": ts is not None,
            "timescaledb_version": ts[0] if ts else None,
            "timescaledb_license": license_,
        }
