"""Redis from the system's `redis-server` on loopback, its append-only file in the state folder."""

from __future__ import annotations

import signal
from typing import Any

import redis

from optibid.stack import process
from optibid.stack.base import Server


class RedisServer(Server):
    name = "redis"
    port_setting = "OPTIBID_REDIS_PORT"
    stop_signal = signal.SIGTERM

    @property
    def port(self) -> int:
        return self.settings.redis_port

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
