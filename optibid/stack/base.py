"""What every local-stack server provides."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optibid.settings import Settings
from optibid.stack import process
from optibid.stack.errors import StackError


@dataclass
class ServerStatus:
    name: str
    host: str
    port: int
    state: str  # "running", "stopped", "unhealthy"
    pid: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The status without its name (the key it is listed under), details inlined."""
        return {key: getattr(self, key) for key in ("host", "port", "state", "pid")} | self.details


class Server(ABC):
    """One real server of the local stack.

    Contract: `check_installed` raises StackError naming the package when a binary is
    missing; `prepare` is idempotent first-start work (initdb, format, fetch jars);
    `argv` is the foreground command; `ready` is a real round trip, not a port probe;
    `up` reuses a running server and never starts a second one. Its ports are the Settings
    fields it names, so a port clash names the OPTIBID_ variable that moves it.
    """

    name: str
    stop_signal: signal.Signals = signal.SIGTERM
    port_field: str  # the Settings field of the port it serves on, e.g. "kafka_port"
    extra_port_fields: tuple[str, ...] = ()  # the Settings fields of other ports it binds

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.state_dir / self.name
        self.log_path = settings.state_dir / "logs" / f"{self.name}.log"
        self.pid_file = process.PidFile(settings.state_dir / "run" / f"{self.name}.pid")

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def port(self) -> int:
        return self._port(self.port_field)

    def _port(self, field_name: str) -> int:
        port: int = getattr(self.settings, field_name)
        return port

    @abstractmethod
    def check_installed(self) -> None: ...

    def prepare(self) -> None:  # noqa: B027 - optional hook, most servers need none
        """First-start work; must be safe to repeat."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    def env(self) -> dict[str, str]:
        return {}

    def run_as(self) -> str | None:
        return None

    def workdir(self) -> Path:
        """The server's working folder (its user must be able to enter it)."""
        return self.dir

    @abstractmethod
    def ready(self) -> bool: ...

    def after_ready(self) -> None:  # noqa: B027 - optional hook, most servers need none
        """Idempotent set-up once the server answers (databases, extensions)."""

    def details(self) -> dict[str, Any]:
        """Facts read from the running server."""
        return {}

    def static_details(self) -> dict[str, Any]:
        """Facts known without the server running (what is installed)."""
        return {}

    def pid(self) -> int | None:
        return self.pid_file.alive_pid()

    def up(self) -> str:
        """Start the server unless it runs; returns 'started' or 'reused'."""
        pid = self.pid()
        if pid is not None:
            self._until_ready(pid, self.name)
            return "reused"
        self.pid_file.remove()
        self.check_installed()
        fields = (self.port_field, *self.extra_port_fields)
        ports = {self._port(f): Settings.env_name(f) for f in fields}
        for port, setting in ports.items():
            process.require_port_free(self.host, port, self.name, setting)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        pid = process.start(
            self.argv(),
            self.log_path,
            self.pid_file,
            env=self.env(),
            cwd=self.workdir(),
            user=self.run_as(),
        )
        try:
            self._until_ready(pid, f"{self.name} on {self.host}:{self.port}")
        except BaseException:
            process.stop(pid, sig=self.stop_signal)
            self.pid_file.remove()
            raise
        return "started"

    def _until_ready(self, pid: int, what: str) -> None:
        """Wait until `ready` answers (or the process `pid` dies, or the deadline passes, each
        raising StackError about `what`), then do the set-up that needs the server."""
        process.wait_for(
            self.ready, self.settings.ready_timeout_s, what, pid=pid, log=self.log_path
        )
        self.after_ready()

    def down(self) -> bool:
        """Stop the server; returns whether one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.remove()
            return False
        process.stop(pid, sig=self.stop_signal)
        if process.is_alive(pid):
            raise StackError(f"{self.name} (pid {pid}) survived SIGKILL", f"inspect pid {pid}")
        self.pid_file.remove()
        return True

    def status(self) -> ServerStatus:
        pid = self.pid()
        if pid is None:
            return ServerStatus(
                self.name, self.host, self.port, "stopped", None, self.static_details()
            )
        try:
            healthy = self.ready()
        except Exception:
            healthy = False
        details = {**self.static_details(), **(self.details() if healthy else {})}
        state = "running" if healthy else "unhealthy"
        return ServerStatus(self.name, self.host, self.port, state, pid, details)

    def logs(self, lines: int) -> str:
        return process.tail(self.log_path, lines)
