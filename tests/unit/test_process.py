"""Process, port and folder helpers of the local stack, on real sockets and processes of the test
itself, and how `up` reacts to a server that fails."""

from __future__ import annotations

import os
import pwd
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from optibid import stack
from optibid.settings import Settings
from optibid.stack import process, timescale
from optibid.stack.errors import StackError
from optibid.stack.postgres_server import (
    PostgresServer,
    can_search,
    data_dir_for,
    first_unreachable,
)
from tests.integration.stack_util import listening_port


@pytest.fixture
def listener() -> Iterator[int]:
    with listening_port() as port:
        yield port


def test_a_taken_port_is_reported_with_its_owner(listener: int) -> None:
    assert not process.port_free("127.0.0.1", listener)
    with pytest.raises(StackError) as info:
        process.require_port_free("127.0.0.1", listener, "redis", "OPTIBID_REDIS_PORT")
    message = str(info.value)
    assert f"port {listener}" in message
    assert f"pid {os.getpid()}" in message
    assert "OPTIBID_REDIS_PORT" in message


def test_a_free_port_passes(listener: int) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    free = sock.getsockname()[1]
    sock.close()
    process.require_port_free("127.0.0.1", free, "redis", "OPTIBID_REDIS_PORT")


def test_a_missing_binary_names_the_package() -> None:
    with pytest.raises(StackError, match="apt-get install no-such-package"):
        process.require_binary("no-such-binary-xyz", "no-such-package")


def test_start_and_stop_leave_no_process(tmp_path: Path) -> None:
    pid_file = process.PidFile(tmp_path / "sleeper.pid")
    pid = process.start(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log", pid_file
    )
    assert pid_file.alive_pid() == pid
    process.stop(pid, timeout_s=5)
    assert not process.is_alive(pid)
    assert pid_file.alive_pid() is None


def test_a_recycled_pid_is_not_mistaken_for_the_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()} 1\n")  # our pid, but another start time
    assert process.PidFile(pid_file).alive_pid() is None


def test_a_server_dying_on_start_shows_its_log(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    pid_file = process.PidFile(tmp_path / "bad.pid")
    pid = process.start(
        [sys.executable, "-c", "import sys; print('FATAL: bad config line 7'); sys.exit(3)"],
        log,
        pid_file,
    )
    with pytest.raises(StackError, match="FATAL: bad config line 7"):
        process.wait_for(lambda: False, 10, "bad", pid=pid, log=log)


def test_an_unready_server_times_out_naming_the_probe_error(tmp_path: Path) -> None:
    def probe() -> bool:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(StackError, match=r"not ready within 1 s.*connection refused"):
        process.wait_for(probe, 1, "thing")


# PostgreSQL's data folder: where a server run as another user can reach it.


def test_search_permission_follows_owner_group_and_other_bits() -> None:
    assert can_search(0o700, owner=0, group=0, uid=101, gid=104) is False
    assert can_search(0o701, owner=0, group=0, uid=101, gid=104) is True
    # a member of the folder's group is judged by the group's bits, not the others'
    assert can_search(0o701, owner=0, group=104, uid=101, gid=104) is False
    assert can_search(0o700, owner=101, group=0, uid=101, gid=104) is True
    assert can_search(0o000, owner=5, group=5, uid=0, gid=0) is True


def test_a_server_of_the_callers_own_keeps_its_data_in_the_state_folder(tmp_path: Path) -> None:
    assert data_dir_for(tmp_path, None, tmp_path / "shared") == tmp_path / "postgres" / "data"


def test_a_server_run_as_postgres_gets_a_data_folder_per_state_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    one = data_dir_for(tmp_path / "a" / ".optibid", "postgres", shared)
    assert one.parent.parent == shared
    assert one.name == "data"
    assert data_dir_for(tmp_path / "a" / ".optibid", "postgres", shared) == one  # found again
    assert data_dir_for(tmp_path / "b" / ".optibid", "postgres", shared) != one


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_a_cluster_already_in_a_reachable_state_folder_stays_there(tmp_path: Path) -> None:
    user = pwd.getpwuid(_other_uid()).pw_name
    data = tmp_path / "state" / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    # pytest's tmp_path sits in a 0700 folder of root's: out of the other user's reach
    assert first_unreachable(data, user) is not None
    assert data_dir_for(tmp_path / "state", user, tmp_path / "shared").parent.parent == (
        tmp_path / "shared"
    )
    opened = [f for f in [tmp_path, *tmp_path.parents] if not f.stat().st_mode & 0o001]
    try:
        for folder in opened:
            folder.chmod(folder.stat().st_mode | 0o001)
        assert first_unreachable(data, user) is None
        assert data_dir_for(tmp_path / "state", user, tmp_path / "shared") == data
    finally:
        for folder in opened:
            folder.chmod(folder.stat().st_mode & ~0o001)


def _other_uid() -> int:
    for entry in pwd.getpwall():
        if entry.pw_uid not in (0, os.getuid()) and entry.pw_uid < 65534:
            return entry.pw_uid
    pytest.skip("no other user on this machine")


# A failed `up` stops what it started, and nothing else.


class _FakeServer:
    def __init__(
        self, name: str, running: bool = False, fails: bool = False, missing: str = ""
    ) -> None:
        self.name, self.running, self.fails, self.missing = name, running, fails, missing
        self.events: list[str] = []

    def pid(self) -> int | None:
        return 1 if self.running else None

    def check_installed(self) -> None:
        if self.missing:
            raise StackError(f"`{self.missing}` was not found", packages=(self.missing,))

    def up(self) -> str:
        if self.running:
            return "reused"
        if self.fails:
            raise StackError(f"{self.name} cannot start: port in use", "pick another port")
        self.running = True
        self.events.append("up")
        return "started"

    def down(self) -> bool:
        was, self.running = self.running, False
        self.events.append("down")
        return was


def _up_with(monkeypatch: pytest.MonkeyPatch, fakes: list[_FakeServer]) -> dict[str, str]:
    monkeypatch.setattr(stack, "servers", lambda settings: fakes)
    return stack.up(Settings(state_dir=Path("/nonexistent")))


def test_a_failed_up_stops_the_servers_it_started_and_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres, redis, kafka = (
        _FakeServer("postgres"),
        _FakeServer("redis", running=True),
        _FakeServer("kafka", fails=True),
    )
    registry = _FakeServer("registry")
    with pytest.raises(StackError) as info:
        _up_with(monkeypatch, [postgres, redis, kafka, registry])
    message = str(info.value)
    assert "kafka cannot start: port in use" in message
    assert "stopped again, as this `up` had started them: postgres" in message
    assert "fix: pick another port" in message
    assert postgres.events == ["up", "down"]
    assert redis.running
    assert redis.events == []
    assert registry.events == []


def test_every_missing_binary_is_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = _FakeServer("postgres")
    fakes = [
        postgres,
        _FakeServer("redis", missing="redis-server"),
        _FakeServer("kafka", missing="java"),
        _FakeServer("registry", missing="java"),
    ]
    with pytest.raises(StackError) as info:
        _up_with(monkeypatch, fakes)
    assert str(info.value).count("`java` was not found") == 1
    assert "apt-get install redis-server java" in str(info.value)
    assert postgres.events == []


@pytest.mark.parametrize(
    "failure",
    [
        StackError("cmake is missing", "apt-get install cmake"),
        PermissionError(13, "Permission denied", "/usr/lib/postgresql/15/lib/timescaledb.so"),
    ],
)
def test_a_timescaledb_that_cannot_be_built_leaves_the_stack_on_plain_partitions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: Exception,
) -> None:
    def cannot(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(timescale, "ensure_timescaledb", cannot)
    server = PostgresServer(Settings(state_dir=tmp_path, timescaledb=True))
    server.postgres = str(tmp_path / "postgres")
    server._ensure_timescale()  # says why, and goes on
    said = capsys.readouterr().err
    assert "TimescaleDB not available" in said
    assert ("cmake is missing" in said) or ("Permission denied" in said)
    assert said.rstrip().endswith("plain partitions")


def test_timescaledb_switched_off_is_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("built although switched off")

    monkeypatch.setattr(timescale, "ensure_timescaledb", never)
    server = PostgresServer(Settings(state_dir=tmp_path, timescaledb=False))
    server._ensure_timescale()
    assert server._timescale_available() is False
