"""The API's connections to its read models: a PostgreSQL pool and a Redis client, opened
without waiting, so the API starts (and serves what it can) while a dependency is down."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
import redis.asyncio as aioredis
from psycopg_pool import ConnectionPool, PoolTimeout

from api.problems import ProblemError, unavailable

CONNECT_TIMEOUT_S = 2.0


@dataclass
class Dependencies:
    postgres_dsn: str
    redis_url: str
    schema: str  # PostgreSQL schema of the read models, also the Redis namespace

    def __post_init__(self) -> None:
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.postgres_dsn,
            min_size=1,
            max_size=8,
            open=False,
            timeout=CONNECT_TIMEOUT_S,
            kwargs={
                "connect_timeout": int(CONNECT_TIMEOUT_S),
                "autocommit": True,
                "options": "-c timezone=UTC",
            },
            reconnect_timeout=0,  # keep trying forever in the background
        )
        self.redis = redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
        )
        self.aredis = aioredis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()
        self.redis.close()

    async def aclose(self) -> None:
        await self.aredis.aclose()

    @contextmanager
    def postgres(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; PostgreSQL down is a 503 with Retry-After."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise unavailable("PostgreSQL", f"the history store does not answer: {exc}") from exc
        except psycopg.errors.UndefinedTable as exc:
            raise self.unmigrated(exc) from exc

    def unmigrated(self, exc: BaseException) -> ProblemError:
        return unavailable(
            "Read models",
            f"schema {self.schema!r} lacks a read-model table (run `optibid db migrate`): {exc}",
        )

    def outage(self, exc: BaseException) -> ProblemError:
        return unavailable("PostgreSQL", f"the history store does not answer: {exc}")

    def acquire(self) -> psycopg.Connection[Any]:
        """A connection held beyond one call (a streamed answer); give it back with
        `release`. PostgreSQL down is a 503 with Retry-After."""
        try:
            return self.pool.getconn()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise self.outage(exc) from exc

    def release(self, conn: psycopg.Connection[Any]) -> None:
        self.pool.putconn(conn)

    async def aredis_call(self, call: Awaitable[Any]) -> Any:
        """An awaited Redis call; Redis down is a 503 with Retry-After."""
        try:
            return await call
        except redis.RedisError as exc:
            raise unavailable("Redis", f"the latest-value cache does not answer: {exc}") from exc

    def redis_call(self, fn: Any, *args: Any) -> Any:
        """A Redis call; Redis down is a 503 with Retry-After."""
        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise unavailable("Redis", f"the latest-value cache does not answer: {exc}") from exc

    def status(self) -> dict[str, str]:
        """Each dependency: "up" or why it is down."""
        result: dict[str, str] = {}
        try:
            with self.postgres() as conn:
                conn.execute("SELECT 1")
            result["postgres"] = "up"
        except ProblemError as problem:
            result["postgres"] = problem.detail
        try:
            self.redis.ping()
            result["redis"] = "up"
        except redis.RedisError as exc:
            result["redis"] = f"the latest-value cache does not answer: {exc}"
        return result
