"""The local stack: real Kafka, schema registry, PostgreSQL and Redis servers on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable

from optibid.settings import Settings
from optibid.stack.base import Server, ServerStatus
from optibid.stack.errors import StackError
from optibid.stack.kafka_server import KafkaServer
from optibid.stack.postgres_server import PostgresServer
from optibid.stack.redis_server import RedisServer
from optibid.stack.registry_server import RegistryServer

__all__ = ["Server", "ServerStatus", "StackError", "down", "servers", "status", "up"]


def servers(settings: Settings) -> list[Server]:
    """The stack's servers in start order (the registry stores its schemas in PostgreSQL)."""
    return [
        PostgresServer(settings),
        RedisServer(settings),
        KafkaServer(settings),
        RegistryServer(settings),
    ]


def up(
    settings: Settings, on_server: Callable[[str, str, float], None] | None = None
) -> dict[str, str]:
    """Start every server not yet running; returns name -> 'started' | 'reused'.

    Every missing binary is reported before anything starts. When a server fails, the servers
    this call started are stopped again (last started first) and the error says so; servers
    that were running before the call keep running.
    """
    chosen = servers(settings)
    _check_installed([s for s in chosen if s.pid() is None])
    outcome: dict[str, str] = {}
    started: list[Server] = []
    for server in chosen:
        began = time.monotonic()
        try:
            outcome[server.name] = server.up()
        except BaseException as exc:
            stopped = _stop_started(started, on_server)
            if isinstance(exc, StackError) and stopped:
                raise StackError(
                    f"{exc.message}\n  stopped again, as this `up` had started them: "
                    + ", ".join(stopped),
                    exc.fix,
                ) from exc
            raise
        if outcome[server.name] == "started":
            started.append(server)
        if on_server:
            on_server(server.name, outcome[server.name], time.monotonic() - began)
    return outcome


def _check_installed(chosen: list[Server]) -> None:
    """One error naming every missing binary and the packages that bring them."""
    missing: dict[str, StackError] = {}  # by message: Kafka and the registry share Java
    for server in chosen:
        try:
            server.check_installed()
        except StackError as exc:
            missing.setdefault(exc.message, exc)
    if len(missing) == 1:
        raise next(iter(missing.values()))
    if missing:
        packages = " ".join(dict.fromkeys(p for exc in missing.values() for p in exc.packages))
        raise StackError(
            "; ".join(missing),
            f"install them: apt-get install {packages} (`make demo` does it)",
        )


def _stop_started(
    started: list[Server], on_server: Callable[[str, str, float], None] | None
) -> list[str]:
    """Stop what this `up` started, last first; returns their names."""
    names: list[str] = []
    for server in reversed(started):
        began = time.monotonic()
        try:
            server.down()
        except StackError as exc:  # the original failure stays the one raised
            names.append(f"{server.name} (could not be stopped: {exc.message})")
            continue
        names.append(server.name)
        if on_server:
            on_server(server.name, "stopped", time.monotonic() - began)
    return names


def down(settings: Settings) -> dict[str, bool]:
    """Stop every server, last started first; returns name -> whether it was running."""
    return {server.name: server.down() for server in reversed(servers(settings))}


def status(settings: Settings) -> list[ServerStatus]:
    return [server.status() for server in servers(settings)]
