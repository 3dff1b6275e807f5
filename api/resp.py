"""A small pipelined Redis client (RESP2 over asyncio streams, replies parsed by hiredis) for
the API's hot path: the rate limiter's script and the latest values' hash reads.

redis-py's asyncio client spends about 80-130 µs of CPU per command in its own machinery
(connection pool, command objects, response callbacks); this client spends about 20 µs, which
on the most requested route is the difference between meeting its throughput target and not
(`bench/api.py`). It does only what those callers need: send commands (several at once,
pipelined on one connection) and return their replies. Everything else keeps redis-py.

Failures are redis-py's exceptions, so callers handle one family: a connection that fails or
times out is closed and raises `redis.ConnectionError` (or `redis.TimeoutError`); an error
reply raises `redis.ResponseError` (`NoScriptError` for NOSCRIPT) after every reply of the
pipeline has been read, so the connection stays usable.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
import redis

Command = Sequence[bytes | str | int | float]
IDLE_CONNECTIONS = 256  # kept open: about the requests in flight at once


def pack(command: Command) -> bytes:
    """One command in RESP2's multi-bulk form."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        value = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(parts)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stream, self.writer = reader, writer
        self.parser = hiredis.Reader()

    def close(self) -> None:
        self.writer.close()


class RespClient:
    """Pipelined commands on a few pooled connections to one Redis server (see the module)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", ""):
            raise ValueError(f"only redis:// URLs: {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.password = unquote(parsed.password) if parsed.password else None
        self.username = unquote(parsed.username) if parsed.username else None
        path = parsed.path.strip("/")
        self.db = int(path) if path else 0
        self.timeout_s = timeout_s
        self._idle: collections.deque[_Connection] = collections.deque()

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(
                f"Redis at {self.host}:{self.port} does not answer: {exc}"
            ) from exc
        conn = _Connection(reader, writer)
        setup: list[Command] = []
        if self.password is not None:
            auth = (
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
            setup.append(auth)
        if self.db:
            setup.append(("SELECT", self.db))
        if setup:
            await self._exchange(conn, setup)
        return conn

    async def execute(self, *commands: Command) -> list[Any]:
        """The replies of `commands`, sent pipelined on one connection."""
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            replies = await self._exchange(conn, commands)
        except BaseException:
            conn.close()  # its state is unknown: never reused
            raise
        if len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append(conn)
        else:
            conn.close()
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                if message.startswith("NOSCRIPT"):
                    raise redis.exceptions.NoScriptError(message)
                raise redis.ResponseError(message)
        return replies

    async def _exchange(self, conn: _Connection, commands: Sequence[Command]) -> list[Any]:
        conn.writer.write(b"".join([pack(c) for c in commands]))
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                while len(replies) < len(commands):
                    reply = conn.parser.gets()
                    if reply is not False:
                        replies.append(reply)
                        continue
                    data = await conn.stream.read(65536)
                    if not data:
                        raise redis.ConnectionError(f"Redis at {self.host}:{self.port} closed")
                    conn.parser.feed(data)
        except TimeoutError as exc:
            raise redis.TimeoutError(
                f"Redis at {self.host}:{self.port} did not answer in {self.timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise redis.ConnectionError(f"Redis at {self.host}:{self.port}: {exc}") from exc
        return replies

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
