"""Processes of the local stack: start detached, track by pid file, stop without leftovers."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optibid.stack.errors import StackError

_LISTEN = "0A"


@dataclass(frozen=True)
class PidFile:
    """`<pid> <start ticks>`: the start time guards against a recycled pid."""

    path: Path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {_start_ticks(pid)}\n")

    def alive_pid(self) -> int | None:
        """The recorded pid if that same process still runs (not a zombie), else None."""
        try:
            pid_text, ticks = self.path.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        pid = int(pid_text)
        if not is_alive(pid) or _start_ticks(pid) != ticks:
            return None
        return pid

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[19] if fields else "0"


def is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments that run a child as `user` with that user's own group and no other:
    `user=` alone keeps root's groups, and a folder's group bits (a 0700 root folder's `---`)
    then deny what its "other" bits would allow."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start(
    argv: list[str],
    log_path: Path,
    pid_file: PidFile,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start `argv` in its own session, output appended to `log_path`; returns its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            **as_user(user),
        )
    pid_file.write(proc.pid)
    return proc.pid


def stop(pid: int, *, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """Signal the process group of `pid`, wait for it, SIGKILL what outlives `timeout_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_alive(pid) and not _group_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (is_alive(pid) or _group_alive(pid)):
        _reap(pid)
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port (a bind attempt, the only reliable test)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str | None:
    """'pid N (command line)' of the process listening on `port`, when /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    return f"pid {entry.name} ({cmdline.strip()[:120]})"
    return "an unknown process"


def require_port_free(host: str, port: int, server: str, setting: str) -> None:
    if port_free(host, port):
        return
    owner = port_owner(port) or "another process"
    raise StackError(
        f"{server} cannot start: port {port} on {host} is already in use by {owner}",
        f"stop that process, or give {server} another port with {setting}=<port>",
    )


def require_binary(name: str, package: str, candidates: tuple[str, ...] = ()) -> str:
    """Path of a binary (PATH first, then `candidates`), or a StackError naming its package."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in candidates:
        for path in sorted(Path("/").glob(candidate.lstrip("/")), reverse=True):
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    where = " or in " + ", ".join(candidates) if candidates else ""
    raise StackError(
        f"`{name}` was not found on PATH{where}",
        f"install it: apt-get install {package} (`make demo` does it)",
        packages=(package,),
    )


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(
    predicate: Callable[[], bool],
    deadline_s: float,
    what: str,
    *,
    pid: int | None = None,
    log: Path | None = None,
) -> None:
    """Poll `predicate()` until true; fail early with the log's tail if `pid` dies meanwhile."""
    deadline = time.monotonic() + deadline_s
    delay = 0.1
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None:
            _reap(pid)
            if not is_alive(pid):
                raise StackError(
                    f"{what}: the process died on start; last lines of {log}:\n"
                    + (tail(log) if log else ""),
                    "read the log above; `optibid stack logs` shows more",
                )
        try:
            if predicate():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    detail = f" (last probe error: {last_error})" if last_error else ""
    raise StackError(
        f"{what}: not ready within {deadline_s:.0f} s{detail}; last lines of {log}:\n"
        + (tail(log) if log else ""),
        "raise OPTIBID_READY_TIMEOUT_S on a slow machine, or read `optibid stack logs`",
    )
