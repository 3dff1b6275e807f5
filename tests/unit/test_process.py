"""Process and port helpers of the local stack, on real sockets and processes of the test itself."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from optibid.stack import process
from optibid.stack.errors import StackError


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


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
