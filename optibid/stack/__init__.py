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
    """Start every server not yet running; returns name -> 'started' | 'reused'."""
    outcome: dict[str, str] = {}
    for server in servers(settings):
        began = time.monotonic()
        outcome[server.name] = server.up()
        if on_server:
            on_server(server.name, outcome[server.name], time.monotonic() - began)
    return outcome


def down(settings: Settings) -> dict[str, bool]:
    """Stop every server, last started first; returns name -> whether it was running."""
    return {server.name: server.down() for server in reversed(servers(settings))}


def status(settings: Settings) -> list[ServerStatus]:
    return [server.status() for server in servers(settings)]
