"""Redis from the system's `redis-server` on loopback, its append-only file in the state folder."""

from __future__ import annotations

import signal
from typing import Any

import redis

from optibid.stack import process
from optibid.stack.base import Server


class RedisServer(Server):
    name = "redis"
    port_field = "redis_port"
    stop_signal = signal.SIGTERM

    def check_installed(self) -> None:
        self.binary = process.require_binary("redis-server", "redis-server")

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--bind", self.host,
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=2, socket_connect_timeout=2
        )

    def ready(self) -> bool:
        with self._client() as client:
            return bool(client.ping())

    def details(self) -> dict[str, Any]:
        with self._client() as client:
            info = client.info("server")
        return {"version": str(info.get("redis_version"))}
