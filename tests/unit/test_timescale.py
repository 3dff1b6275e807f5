"""TimescaleDB's build-and-cache logic, on a fake `pg_config` and small fake source tarballs: a
`bootstrap` that writes a Makefile whose `install` lays out what the real one does."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from optibid.stack import timescale
from optibid.stack.errors import StackError

ROOT = Path(__file__).resolve().parents[2]

SERVER_VERSION = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)"

_MAKEFILE = """\
all:
\techo library > timescaledb.so
install:
\tmkdir -p $(DESTDIR){lib} $(DESTDIR){share}/extension
\tcp timescaledb.so $(DESTDIR){lib}/timescaledb.so
\tcp timescaledb.so $(DESTDIR){lib}/timescaledb-tsl-2.28.3.so
\techo "default_version = '2.28.3'" > $(DESTDIR){share}/extension/timescaledb.control
\techo "-- sql" > $(DESTDIR){share}/extension/timescaledb--2.28.3.sql
"""


@dataclass(frozen=True)
class FakeServer:
    pg_config: Path
    lib: Path
    share: Path
    include: Path

    @property
    def control(self) -> Path:
        return self.share / "extension" / "timescaledb.control"


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def server(tmp_path: Path) -> FakeServer:
    """A `pg_config` for a server whose folders are under tmp_path, headers installed."""
    root = tmp_path / "server"
    lib, share, include = root / "lib", root / "share", root / "include" / "server"
    for folder in (lib, share / "extension", include):
        folder.mkdir(parents=True)
    (include / "postgres.h").write_text("/* headers */\n")
    answers = {
        "--version": SERVER_VERSION,
        "--pkglibdir": lib,
        "--sharedir": share,
        "--includedir-server": include,
    }
    cases = "".join(f'    {opt}) echo "{value}" ;;\n' for opt, value in answers.items())
    script = f'#!/bin/sh\nfor a in "$@"; do\n  case $a in\n{cases}    *) exit 2 ;;\n  esac\ndone\n'
    return FakeServer(_executable(root / "bin" / "pg_config", script), lib, share, include)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with a fake `cmake` and `cc` (whose header probes all pass) before the real one."""
    bin_dir = tmp_path / "tools"
    for name in ("cmake", "cc"):
        _executable(bin_dir / name, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir


def _tarball(path: Path, files: dict[str, tuple[str, int]]) -> Path:
    """A source tarball laid out like the vendored one (files at the archive's root)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return path


def _fake_source(tmp_path: Path, server: FakeServer, *, fail: bool = False) -> Path:
    """A tarball whose `bootstrap` records its arguments in tmp_path/configured, one line per
    run, and (unless `fail`) puts a Makefile into $BUILD_DIR."""
    record = tmp_path / "configured"
    body = (
        'echo "configure failed: no such thing" >&2; exit 1'
        if fail
        else ('mkdir -p "$BUILD_DIR" && cp Makefile.in "$BUILD_DIR/Makefile"')
    )
    bootstrap = f'#!/usr/bin/env bash\nset -eu\necho "$*" >> {record}\n{body}\n'
    makefile = _MAKEFILE.format(lib=server.lib, share=server.share)
    return _tarball(
        tmp_path / timescale.TARBALL_NAME,
        {"bootstrap": (bootstrap, 0o755), "Makefile.in": (makefile, 0o644)},
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _uninstall(server: FakeServer) -> None:
    for path in [*server.lib.iterdir(), *(server.share / "extension").iterdir()]:
        path.unlink()


def test_the_cache_key_names_the_tarball_and_the_server_version() -> None:
    key = timescale.cache_key(timescale.TARBALL_SHA256, SERVER_VERSION)
    assert key == "1cae5006d5cd704a-postgresql-15.18-debian-15.18-0+deb12u1"
    assert key == timescale.cache_key(timescale.TARBALL_SHA256, SERVER_VERSION)
    other_server = timescale.cache_key(timescale.TARBALL_SHA256, "PostgreSQL 15.20 (Debian)")
    other_source = timescale.cache_key("0" * 64, SERVER_VERSION)
    assert len({key, other_server, other_source}) == 3
    assert "/" not in timescale.cache_key("ab" * 32, "PostgreSQL 15/x (a b)")


def test_the_vendored_source_is_found_beside_the_clone(tmp_path: Path) -> None:
    repo = tmp_path / "main"
    repo.mkdir()
    assert timescale.vendored_source(repo) is None
    vendor = tmp_path / "shared" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / timescale.TARBALL_NAME).write_bytes(b"x")
    assert timescale.vendored_source(repo) == vendor / timescale.TARBALL_NAME


def test_pg_config_is_found_through_a_symlink_to_the_server(tmp_path: Path) -> None:
    real = _executable(tmp_path / "lib" / "15" / "bin" / "postgres", "")
    link = tmp_path / "local" / "postgres"
    link.parent.mkdir()
    link.symlink_to(real)
    assert timescale.pg_config_for(link) == real.with_name("pg_config")


def test_pg_config_answers_are_read_in_the_order_asked(server: FakeServer) -> None:
    layout = timescale.server_layout(server.pg_config)
    assert layout.version == SERVER_VERSION
    assert (layout.pkglibdir, layout.sharedir) == (server.lib, server.share)
    assert layout.includedir_server == server.include
    assert layout.major == "15"


def test_a_tarball_with_another_hash_is_refused_naming_both(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / timescale.TARBALL_NAME, {"README": ("x", 0o644)})
    with pytest.raises(StackError) as info:
        timescale.verify_source(tarball)
    assert _sha(tarball) in info.value.message
    assert timescale.TARBALL_SHA256 in info.value.message
    assert timescale.verify_source(tarball, _sha(tarball)) == _sha(tarball)


def test_ensure_refuses_a_wrong_tarball_before_building(tmp_path: Path, server: FakeServer) -> None:
    source = _fake_source(tmp_path, server)
    with pytest.raises(StackError, match=timescale.TARBALL_SHA256):
        timescale.ensure_timescaledb(server.pg_config, source, tmp_path / "cache", print)
    assert not (tmp_path / "configured").exists()


def test_without_a_source_the_reason_is_given(tmp_path: Path, server: FakeServer) -> None:
    status = timescale.ensure_timescaledb(server.pg_config, None, tmp_path / "cache", print)
    assert not status.available
    assert not status.built
    assert status.reason == (
        "TimescaleDB is not installed and ../shared/vendor/timescaledb-2.28.3.tar.gz is "
        "absent: read models use plain partitions"
    )
    assert status.as_dict()["timescaledb_available"] is False


def test_probe_says_what_up_would_do_and_does_nothing(tmp_path: Path, server: FakeServer) -> None:
    source = _fake_source(tmp_path, server)
    pending = timescale.probe(server.pg_config, source)
    assert not pending.available
    assert pending.reason is not None
    assert str(source) in pending.reason
    assert "absent" in str(timescale.probe(server.pg_config, None).reason)
    assert not (tmp_path / "configured").exists()
    (server.lib / "timescaledb.so").write_text("installed")
    server.control.write_text("default_version = '2.28.3'\n")
    assert timescale.probe(server.pg_config, source).as_dict() == {
        "timescaledb_available": True,
        "timescaledb_version": "2.28.3",
        "timescaledb_built": False,
        "timescaledb_from_cache": False,
        "timescaledb_reason": None,
    }


def test_an_installed_timescaledb_is_left_alone(tmp_path: Path, server: FakeServer) -> None:
    (server.lib / "timescaledb.so").write_text("installed")
    server.control.write_text("comment = 'x'\ndefault_version = '2.17.0'\n")
    status = timescale.ensure_timescaledb(server.pg_config, None, tmp_path / "cache", print)
    assert status == timescale.TimescaleStatus(available=True, version="2.17.0")
    assert not (tmp_path / "cache").exists()


def _only_tools(names: tuple[str, ...], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH is `folder` alone, with fake tools `names` (a fake `cc` passes every probe)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        _executable(folder / name, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(folder))


def test_missing_server_headers_name_the_pinned_package(
    tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_tools(("cmake", "make", "cc"), tmp_path / "bin", monkeypatch)
    (server.include / "postgres.h").unlink()
    layout = timescale.server_layout(server.pg_config)
    with pytest.raises(StackError) as info:
        timescale.require_build_tools(layout)
    assert "postgres.h" in info.value.message
    assert info.value.packages == ("postgresql-server-dev-15",)
    assert "postgresql-server-dev-15=$V libpq-dev=$V libpq5=$V" in info.value.fix
    assert "dpkg-query -W -f='${Version}' postgresql-15" in info.value.fix


def test_server_headers_of_another_release_are_refused(server: FakeServer) -> None:
    layout = timescale.server_layout(server.pg_config)
    timescale.require_matching_headers(layout)  # no pg_config.h: nothing to compare
    header = server.include / "pg_config.h"
    header.write_text('#define PG_VERSION "15.18 (Debian 15.18-0+deb12u1)"\n')
    timescale.require_matching_headers(layout)
    header.write_text('#define PG_VERSION "15.20 (Debian 15.20-0+deb12u1)"\n')
    with pytest.raises(StackError) as info:
        timescale.require_matching_headers(layout)
    assert "15.20 (Debian 15.20-0+deb12u1)" in info.value.message
    assert "15.18 (Debian 15.18-0+deb12u1)" in info.value.message
    assert "postgresql-server-dev-15=$V" in info.value.fix


def test_missing_tools_are_named_with_their_packages_in_one_error(
    tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_tools(("make",), tmp_path / "bin", monkeypatch)  # no cmake, no cc
    layout = timescale.server_layout(server.pg_config)
    with pytest.raises(StackError) as info:
        timescale.require_build_tools(layout)
    assert "`cmake`" in info.value.message
    assert "C compiler" in info.value.message
    assert info.value.packages == ("cmake", "build-essential")
    assert "apt-get install cmake build-essential" in info.value.fix


def test_a_missing_tool_stops_ensure_before_any_build(
    tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_source(tmp_path, server)
    _only_tools((), tmp_path / "bin", monkeypatch)
    with pytest.raises(StackError, match="apt-get install cmake"):
        timescale.ensure_timescaledb(
            server.pg_config, source, tmp_path / "cache", print, expected_sha256=_sha(source)
        )
    assert not (tmp_path / "configured").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (build-essential)")
def test_a_build_is_cached_and_the_cache_is_installed_the_next_time(
    tmp_path: Path, server: FakeServer, tools: Path
) -> None:
    source = _fake_source(tmp_path, server)
    cache = tmp_path / "cache"
    lines: list[str] = []

    first = timescale.ensure_timescaledb(
        server.pg_config, source, cache, lines.append, expected_sha256=_sha(source)
    )
    assert first == timescale.TimescaleStatus(available=True, version="2.28.3", built=True)
    assert (server.lib / "timescaledb.so").read_text() == "library\n"
    key = timescale.cache_key(_sha(source), SERVER_VERSION)
    assert (cache / key / timescale.BUILD_LOG).is_file()
    assert not (cache / f"{key}.partial").exists()
    configured = (tmp_path / "configured").read_text().splitlines()
    assert configured == [" ".join([*timescale.CONFIGURE_FLAGS, f"-DPG_CONFIG={server.pg_config}"])]

    _uninstall(server)
    second = timescale.ensure_timescaledb(
        server.pg_config, source, cache, lines.append, expected_sha256=_sha(source)
    )
    assert second == timescale.TimescaleStatus(available=True, version="2.28.3", from_cache=True)
    assert len((tmp_path / "configured").read_text().splitlines()) == 1  # not configured again
    assert sorted(p.name for p in server.lib.iterdir()) == [
        "timescaledb-tsl-2.28.3.so",
        "timescaledb.so",
    ]
    assert any("cached" in line for line in lines)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (build-essential)")
def test_a_failed_build_names_its_log_and_leaves_no_cache(
    tmp_path: Path, server: FakeServer, tools: Path
) -> None:
    source = _fake_source(tmp_path, server, fail=True)
    cache = tmp_path / "cache"
    with pytest.raises(StackError) as info:
        timescale.ensure_timescaledb(
            server.pg_config, source, cache, print, expected_sha256=_sha(source)
        )
    key = timescale.cache_key(_sha(source), SERVER_VERSION)
    log = cache / f"{key}.partial" / timescale.BUILD_LOG
    assert str(log) in info.value.message
    assert "configure failed: no such thing" in info.value.message  # the log's last lines
    assert not (cache / key).exists()
    assert not list(server.lib.iterdir())


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (build-essential)")
def test_a_cache_folder_without_its_libraries_is_rebuilt(
    tmp_path: Path, server: FakeServer, tools: Path
) -> None:
    source = _fake_source(tmp_path, server)
    cache = tmp_path / "cache"
    key = timescale.cache_key(_sha(source), SERVER_VERSION)
    (cache / key / timescale.STAGE).mkdir(parents=True)  # e.g. emptied by hand
    status = timescale.ensure_timescaledb(
        server.pg_config, source, cache, print, expected_sha256=_sha(source)
    )
    assert status.built
    assert (server.lib / "timescaledb.so").is_file()


def test_staged_files_are_installed_with_the_loader_last(tmp_path: Path) -> None:
    stage, root = tmp_path / "stage", tmp_path / "root"
    files = [
        "usr/lib/postgresql/15/lib/timescaledb.so",
        "usr/lib/postgresql/15/lib/timescaledb-2.28.3.so",
        "usr/share/postgresql/15/extension/timescaledb.control",
        "usr/share/postgresql/15/extension/timescaledb--2.28.3.sql",
    ]
    for name in files:
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_text(name)
    existing = root / files[0]
    existing.parent.mkdir(parents=True)
    existing.write_text("old")
    inode = existing.stat().st_ino

    written = timescale.install_staged(stage, root)

    assert written[-1] == root / files[0]
    assert {p.suffix for p in written[:2]} == {".control", ".sql"}
    assert all((root / name).read_text() == name for name in files)
    assert existing.stat().st_ino != inode  # replaced, not rewritten in place
    assert not list(root.rglob(".*.tmp"))


def test_docker_compose_runs_the_release_the_stack_builds() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == f"timescale/timescaledb:{timescale.TIMESCALEDB_VERSION}-pg15"
    assert "shared_preload_libraries=timescaledb" in postgres["command"]
