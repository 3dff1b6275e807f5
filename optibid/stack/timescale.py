"""TimescaleDB for the stack's PostgreSQL, built from the vendored source when it is missing.

The read models use hypertables, compression and continuous aggregates when TimescaleDB is
there, plain partitioned tables when it is not. The stack runs the system's PostgreSQL without
Docker, and Debian 12 packages no TimescaleDB for its PostgreSQL 15: this module builds the
release tarball kept in `../shared/vendor/` (next to the clone) against the installed server and
installs it into that server's folders.

Both halves of the source are built: the Apache 2.0 core, and `tsl/` under the Timescale
License, whose free Community edition brings compression, continuous aggregates and their
policies (`SHOW timescaledb.license` then says `timescale`; an Apache-only build says `apache`).

A build takes about 70 s on 2 cores, so its result is cached: `make install` goes into a staging
folder under `<cache_root>/<key>/stage/`, keyed by the tarball's sha256 and the server's
version, and a later call (another clone, a fresh CI machine with the cache restored) only
copies the staged files into place. A build runs in `<key>.partial/`, renamed to `<key>/` only
once it is complete, so an interrupted build never leaves a cache that looks whole. Nothing
here needs the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from optibid.stack import process
from optibid.stack.errors import StackError

TIMESCALEDB_VERSION = "2.28.3"
TARBALL_NAME = f"timescaledb-{TIMESCALEDB_VERSION}.tar.gz"
# the value ../shared/vendor/README.md gives for TARBALL_NAME
TARBALL_SHA256 = "1cae5006d5cd704accf03d59561ec3d57b0b54920fc22420bd9573228ae9c542"
# `bootstrap` flags besides -DPG_CONFIG: no test suites (they need a source tree of PostgreSQL),
# no telemetry, and a newer compiler's warnings do not fail the build
CONFIGURE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
    "-DSEND_TELEMETRY_DEFAULT=OFF",
)
BUILD_LOG = "build.log"
STAGE = "stage"
_LOADER = "timescaledb.so"  # the library shared_preload_libraries names; installed last
_LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class TimescaleStatus:
    """What `ensure_timescaledb` found or did.

    `available`: the server has TimescaleDB's libraries; `version`: the one its control file
    names; `built`: compiled by this call; `from_cache`: installed by this call from a build
    cached earlier; `reason`: why it is not available.
    """

    available: bool
    version: str | None = None
    built: bool = False
    from_cache: bool = False
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields under `timescaledb_` names, for `stack status`."""
        return {f"timescaledb_{key}": value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ServerLayout:
    """What `pg_config` says about the server TimescaleDB is built for."""

    pg_config: Path
    version: str  # `pg_config --version`, e.g. "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)"
    pkglibdir: Path  # the server's libraries: timescaledb*.so go here
    sharedir: Path  # extension/timescaledb.control and the SQL scripts go under here
    includedir_server: Path  # postgres.h: the headers an extension is compiled against

    @property
    def major(self) -> str:
        match = re.search(r"(\d+)", self.version)
        return match.group(1) if match else "<major>"

    @property
    def control_file(self) -> Path:
        return self.sharedir / "extension" / "timescaledb.control"


def vendored_source(repo_root: Path) -> Path | None:
    """The vendored TimescaleDB tarball, `../shared/vendor/` beside the clone, when present."""
    tarball = repo_root.parent / "shared" / "vendor" / TARBALL_NAME
    return tarball if tarball.is_file() else None


def pg_config_for(postgres: Path) -> Path:
    """`pg_config` beside the server binary `postgres`, through any symlink to it (Debian keeps
    both in /usr/lib/postgresql/<major>/bin; a /usr/local/bin/postgres link leads there)."""
    return postgres.resolve().with_name("pg_config")


def server_layout(pg_config: Path) -> ServerLayout:
    """Ask `pg_config` (one call, answers in the order asked) where the server keeps things."""
    options = ("--version", "--pkglibdir", "--sharedir", "--includedir-server")
    try:
        result = subprocess.run(
            [str(pg_config), *options], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise StackError(
            f"cannot run {pg_config}: {exc.strerror}",
            "install the server's client tools: apt-get install postgresql",
            packages=("postgresql",),
        ) from exc
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != len(options):
        raise StackError(
            f"`{pg_config} {' '.join(options)}` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-400:]}",
            "check that it is the pg_config of the installed PostgreSQL server",
        )
    version, pkglibdir, sharedir, includedir = (line.strip() for line in lines)
    return ServerLayout(pg_config, version, Path(pkglibdir), Path(sharedir), Path(includedir))


def installed_libraries(pkglibdir: Path) -> list[Path]:
    return sorted(pkglibdir.glob("timescaledb*.so"))


def control_version(control_file: Path) -> str | None:
    """`default_version` of an extension's control file, None when there is none."""
    try:
        text = control_file.read_text()
    except FileNotFoundError:
        return None
    match = re.search(r"^\s*default_version\s*=\s*'([^']+)'", text, re.MULTILINE)
    return match.group(1) if match else None


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def verify_source(source: Path, expected_sha256: str = TARBALL_SHA256) -> str:
    """The tarball's sha256, or a StackError naming both hashes when it is not the one
    expected (a truncated copy, another release under the same name)."""
    actual = sha256_of(source)
    if actual != expected_sha256:
        raise StackError(
            f"{source} is not the vendored TimescaleDB {TIMESCALEDB_VERSION}: its sha256 is "
            f"{actual}, expected {expected_sha256}",
            "restore the tarball of ../shared/vendor/README.md (a partial copy? another "
            "release under the same name?)",
        )
    return actual


def cache_key(tarball_sha256: str, server_version: str) -> str:
    """The cache folder's name for one tarball built against one server version, e.g.
    `1cae5006d5cd704a-postgresql-15.18-debian-15.18-0+deb12u1`."""
    server = re.sub(r"[^a-z0-9.+~]+", "-", server_version.lower()).strip("-")
    return f"{tarball_sha256[:16]}-{server}"


def server_headers_install(major: str) -> str:
    """The apt-get line that installs the server headers matching the installed server: an
    unpinned install upgrades the server too, and TimescaleDB built against other headers
    than the server's own fails at run time."""
    return (
        f"V=$(dpkg-query -W -f='${{Version}}' postgresql-{major}) && "
        f"apt-get install postgresql-server-dev-{major}=$V libpq-dev=$V libpq5=$V"
    )


def missing_build_tools(layout: ServerLayout) -> list[tuple[str, str]]:
    """(what is missing, the package that brings it) for every build dependency absent."""
    missing: list[tuple[str, str]] = []
    for tool, package in (("cmake", "cmake"), ("make", "build-essential")):
        if shutil.which(tool) is None:
            missing.append((f"`{tool}`", package))
    compiler = shutil.which("cc")
    if compiler is None:
        missing.append(("a C compiler (`cc`)", "build-essential"))
    if not (layout.includedir_server / "postgres.h").is_file():
        missing.append(
            (
                f"the PostgreSQL {layout.major} server headers "
                f"({layout.includedir_server}/postgres.h)",
                f"postgresql-server-dev-{layout.major}",
            )
        )
    if compiler is not None:
        # headers the server's own headers include (GSSAPI) or TimescaleDB uses (OpenSSL)
        for header, package in (
            ("openssl/ssl.h", "libssl-dev"),
            ("gssapi/gssapi.h", "libkrb5-dev"),
        ):
            if not _compiles(compiler, f"#include <{header}>\n"):
                missing.append((f"<{header}>", package))
    return missing


def _compiles(compiler: str, code: str) -> bool:
    result = subprocess.run(
        [compiler, "-E", "-x", "c", "-", "-o", os.devnull],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def require_build_tools(layout: ServerLayout) -> None:
    """One StackError naming every missing build dependency and the apt-get line for them."""
    missing = missing_build_tools(layout)
    if not missing:
        return
    packages = tuple(dict.fromkeys(package for _, package in missing))
    plain = [p for p in packages if not p.startswith("postgresql-server-dev-")]
    commands = [f"apt-get install {' '.join(plain)}"] if plain else []
    if len(plain) < len(packages):
        commands.append(server_headers_install(layout.major))
    raise StackError(
        "cannot build TimescaleDB: missing " + ", ".join(what for what, _ in missing),
        "install them: " + "; ".join(commands),
        packages=packages,
    )


def headers_version(includedir_server: Path) -> str | None:
    """PG_VERSION of the server headers' pg_config.h, e.g. "15.18 (Debian 15.18-0+deb12u1)"."""
    try:
        text = (includedir_server / "pg_config.h").read_text(errors="replace")
    except FileNotFoundError:
        return None
    match = re.search(r'^#define PG_VERSION "([^"]*)"', text, re.MULTILINE)
    return match.group(1) if match else None


def require_matching_headers(layout: ServerLayout) -> None:
    """A StackError when the server headers are another release than the server: TimescaleDB
    built against them loads, then its background jobs fail ("cannot drop portal ... while it
    is being set up")."""
    headers = headers_version(layout.includedir_server)
    server = layout.version.removeprefix("PostgreSQL ").strip()
    if headers is not None and headers != server:
        raise StackError(
            f"cannot build TimescaleDB: the server headers in {layout.includedir_server} are "
            f"for PostgreSQL {headers}, the server is PostgreSQL {server}",
            "install the headers of the installed server: " + server_headers_install(layout.major),
            packages=(f"postgresql-server-dev-{layout.major}",),
        )


def probe(pg_config: Path, source: Path | None) -> TimescaleStatus:
    """What `ensure_timescaledb` would start from, without building or installing anything
    (for `stack status`)."""
    layout = server_layout(pg_config)
    if installed_libraries(layout.pkglibdir):
        return TimescaleStatus(available=True, version=control_version(layout.control_file))
    if source is None:
        return TimescaleStatus(available=False, reason=_absent_reason())
    return TimescaleStatus(
        available=False,
        reason=f"TimescaleDB is not installed yet: `optibid stack up` builds it from {source}",
    )


def _absent_reason() -> str:
    return (
        f"TimescaleDB is not installed and ../shared/vendor/{TARBALL_NAME} is absent: "
        "read models use plain partitions"
    )


def ensure_timescaledb(
    pg_config: Path,
    source: Path | None,
    cache_root: Path,
    log: Callable[[str], None],
    *,
    expected_sha256: str = TARBALL_SHA256,
    jobs: int = 2,
) -> TimescaleStatus:
    """Make TimescaleDB available to the server of `pg_config`.

    Already installed: nothing is done. Not installed and no `source`: a status that says so
    (the read models then use plain partitions). Otherwise the staged install cached under
    `cache_root` for this tarball and server version is copied into the server's folders,
    after building it from `source` when there is none. Raises StackError for a tarball that
    is not the vendored one, a missing build tool, a failed build or a folder it cannot write.
    """
    layout = server_layout(pg_config)
    if installed_libraries(layout.pkglibdir):
        return TimescaleStatus(available=True, version=control_version(layout.control_file))
    if source is None:
        return TimescaleStatus(available=False, reason=_absent_reason())
    sha256 = verify_source(source, expected_sha256)
    cache_root.mkdir(parents=True, exist_ok=True)
    key = cache_key(sha256, layout.version)
    final = cache_root / key
    with _exclusive(cache_root / f"{key}.lock", log):
        built = False
        if not _is_staged(final, layout):
            if final.exists():
                log(f"TimescaleDB: {final} is incomplete; building it again")
                shutil.rmtree(final)
            _build(source, layout, cache_root / f"{key}.partial", final, log, jobs)
            built = True
        else:
            log(f"TimescaleDB: installing the build cached in {final}")
        began = time.monotonic()
        install_staged(final / STAGE)
        log(f"TimescaleDB: installed into {layout.pkglibdir} in {time.monotonic() - began:.1f} s")
    if not installed_libraries(layout.pkglibdir):
        raise StackError(
            f"TimescaleDB's libraries are not in {layout.pkglibdir} after installing {final}",
            f"remove {final} so that the next run builds it again",
        )
    return TimescaleStatus(
        available=True,
        version=control_version(layout.control_file),
        built=built,
        from_cache=not built,
    )


def _is_staged(folder: Path, layout: ServerLayout) -> bool:
    """Whether `folder` holds a complete staged install for `layout`'s server."""
    staged = folder / STAGE
    return (
        bool(installed_libraries(_under(staged, layout.pkglibdir)))
        and _under(staged, layout.control_file).is_file()
    )


def _under(root: Path, absolute: Path) -> Path:
    """`absolute` as staged under `root` (DESTDIR's layout)."""
    return root / absolute.relative_to(absolute.anchor)


@contextlib.contextmanager
def _exclusive(lock_path: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path`: two stacks starting at once build only once."""
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"TimescaleDB: waiting for another build or install (lock {lock_path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    source: Path,
    layout: ServerLayout,
    partial: Path,
    final: Path,
    log: Callable[[str], None],
    jobs: int,
) -> None:
    """Build `source` for `layout`'s server, `make install` it into `partial`/stage, then
    rename `partial` to `final` (atomic: `final` exists only once complete)."""
    require_build_tools(layout)
    require_matching_headers(layout)
    if partial.exists():
        shutil.rmtree(partial)  # what an interrupted or failed build left
    partial.mkdir(parents=True)
    build_log = partial / BUILD_LOG
    log(
        f"TimescaleDB: building {source.name} for {layout.version} "
        f"(a minute or two; output in {build_log})"
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="timescaledb-build-") as scratch:
        src = Path(scratch) / "src"
        build = Path(scratch) / "build"
        with tarfile.open(source) as archive:
            archive.extractall(src, filter="data")
        steps: list[tuple[list[str], Path, dict[str, str]]] = [
            (
                ["bash", "./bootstrap", *CONFIGURE_FLAGS, f"-DPG_CONFIG={layout.pg_config}"],
                src,
                # a fresh BUILD_DIR: bootstrap asks at the terminal before reusing one
                {"BUILD_DIR": str(build), "BUILD_FORCE_REMOVE": "true"},
            ),
            (["make", f"-j{jobs}"], build, {}),
            (["make", "install", f"DESTDIR={partial / STAGE}"], build, {}),
        ]
        for argv, cwd, env in steps:
            _run_logged(argv, cwd, env, build_log)
    if not _is_staged(partial, layout):
        raise StackError(
            f"building TimescaleDB installed no {_LOADER} or control file under "
            f"{partial / STAGE}; last lines of {build_log}:\n"
            + process.tail(build_log, _LOG_TAIL_LINES),
            f"read {build_log}",
        )
    partial.rename(final)
    log(f"TimescaleDB: built in {time.monotonic() - began:.0f} s, cached in {final}")


def _run_logged(argv: list[str], cwd: Path, env: dict[str, str], build_log: Path) -> None:
    with build_log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise StackError(
            f"building TimescaleDB failed at `{' '.join(argv)}` (exit {result.returncode}); "
            f"last lines of {build_log}:\n" + process.tail(build_log, _LOG_TAIL_LINES),
            f"read {build_log}; the next run starts the build again",
        )


def install_staged(stage: Path, root: Path = Path("/")) -> list[Path]:
    """Copy the files staged under `stage` (paths relative to `root`, as `make install
    DESTDIR=` lays them out) to their places; returns the paths written.

    Each file is written beside its destination and renamed over it, so a server that has a
    library mapped keeps its old copy intact. The libraries go last and the loader last of
    all: a loader in place means the rest of the install is too.
    """
    files = [path for path in stage.rglob("*") if path.is_file() or path.is_symlink()]
    files.sort(key=lambda path: (path.suffix == ".so", path.name == _LOADER, str(path)))
    written: list[Path] = []
    for staged in files:
        target = root / staged.relative_to(stage)
        try:
            _place(staged, target)
        except PermissionError as exc:
            raise StackError(
                f"cannot install TimescaleDB: no permission to write {target}",
                f"run `optibid stack up` as root once, or copy the staged build "
                f"yourself: sudo cp -a {stage}/. {root}",
            ) from exc
        written.append(target)
    return written


def _place(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        if staged.is_symlink():
            temporary.symlink_to(os.readlink(staged))
        else:
            shutil.copy2(staged, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def license_of(conn: psycopg.Connection[Any]) -> str | None:
    """The server's `timescaledb.license` ("timescale": the full build, "apache": the Apache
    2.0 part only), None when TimescaleDB is not loaded (the setting is then unknown)."""
    try:
        with conn.transaction():  # a savepoint: a failure leaves the caller's work intact
            row = conn.execute("SHOW timescaledb.license").fetchone()
    except psycopg.errors.UndefinedObject:
        return None
    return str(row[0]) if row else None
