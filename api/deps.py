"""What the routes depend on: the API's settings, its connections to the read models (a
PostgreSQL pool and Redis clients, opened without waiting, so the API starts and serves what it
can while a dependency is down) and the live hub.

`create_app` puts one `Dependencies` on `app.state`; a route asks for what it needs with the
`...Dep` aliases below. Connections are taken inside the route, after its parameters are
checked: a bad parameter is a 422 even while PostgreSQL is down. A dependency that fails
raises its own exception (psycopg's, redis'), which `api.errors` answers as a 503."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import psycopg
import redis
import redis.asyncio as aioredis
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api.auth import Authenticator, Principal
from api.billing import BillingServices, BillingSettings
from api.identity import AuthSettings, IdentityServices, client_of
from api.live import LiveHub
from api.metering import Metering, UsagePublisher
from api.problems import postgres_unavailable, redis_unavailable
from api.resp import RespClient
from billing.ratelimit import RateLimiter
from projections.redis_sink import channel

CONNECT_TIMEOUT_S = 2.0
KEY_USE_AUDIT_S = 60.0
KEY_USE_ENTRIES = 10_000

Pool = ConnectionPool[psycopg.Connection[Any]]


@dataclass(frozen=True)
class ApiSettings:
    """How the API is configured, built by its caller at start-up."""

    postgres_dsn: str
    redis_url: str
    schema: str  # PostgreSQL schema of the read models, also the Redis namespace
    max_range: timedelta = timedelta(days=92)  # the longest history range one request serves
    heartbeat_s: float = 15.0  # between comment heartbeats of an idle live stream
    rate_limits: bool = True  # the tiers' rights, rate limits and quotas enforced
    metering: bool = True  # usage records to Kafka (where the API has a broker)
    billing: BillingSettings = field(default_factory=BillingSettings)


class Dependencies:
    """The settings, connections and live hub of one API process."""

    def __init__(self, settings: ApiSettings, auth: AuthSettings | None = None) -> None:
        self.settings = settings
        self.auth_settings = auth or AuthSettings()
        self.pool: Pool = ConnectionPool(
            settings.postgres_dsn,
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
            settings.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
        )
        self.aredis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
        )
        schema = settings.schema
        self.identity = IdentityServices(
            self.auth_settings, self.pool, schema, settings.postgres_dsn
        )
        self.auth = Authenticator(
            self.pool,
            schema,
            issuer=self.auth_settings.issuer,
            audience=self.auth_settings.audience,
            ring=self.auth_settings.ring,
            ring_ttl_s=self.auth_settings.ring_ttl_s,
            service_tokens=self.auth_settings.service_tokens,
            on_key_use=self._key_used,
        )
        self._key_uses: dict[str, float] = {}
        auth_conf = self.auth_settings
        publisher = None
        if settings.metering and auth_conf.bootstrap and auth_conf.registry_url:
            publisher = UsagePublisher(
                auth_conf.bootstrap, auth_conf.registry_url, auth_conf.topic_prefix
            )
        self.resp = RespClient(settings.redis_url, CONNECT_TIMEOUT_S)  # the hot path's
        self.billing = BillingServices(settings.billing, self.pool, schema)
        self.metering = Metering(
            self.pool,
            schema,
            RateLimiter(self.redis, self.aredis, namespace=schema),
            enabled=settings.rate_limits,
            publisher=publisher,
            resp=self.resp,
        )
        self.hub = LiveHub(
            settings.redis_url, {channel(schema, "lmp"): "lmp", channel(schema, "kpis"): "kpi"}
        )

    def _key_used(self, principal: Principal, request: Request) -> None:
        """Audit an API key's use: once per key per KEY_USE_AUDIT_S in this process (every
        request would flood the log with what the request metrics count already)."""
        now = time.monotonic()
        if now - self._key_uses.get(principal.subject, -KEY_USE_AUDIT_S) < KEY_USE_AUDIT_S:
            return
        if len(self._key_uses) > KEY_USE_ENTRIES:
            self._key_uses.clear()
        self._key_uses[principal.subject] = now
        ip, agent = client_of(request)
        threading.Thread(
            target=self.identity.record,
            kwargs={
                "action": "ApiKeyUsed", "outcome": "accepted", "org_id": principal.org_id,
                "actor_id": principal.subject, "actor_kind": "api_key", "ip": ip,
                "user_agent": agent, "target_type": "api_key",
                "target_id": principal.subject, "detail": request.url.path,
            },
            daemon=True,
        ).start()  # fmt: skip

    @staticmethod
    def of_app(app: Any) -> Dependencies:
        deps: Dependencies = app.state.deps
        return deps

    @staticmethod
    def of(request: Request) -> Dependencies:
        """The dependencies of the app serving `request`."""
        deps: Dependencies = request.app.state.deps
        return deps

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Connections opened (without waiting for them) and the live hub subscribed for as
        long as the app runs."""
        self.pool.open(wait=False)
        self.hub.start()
        if self.metering.publisher is not None:
            self.metering.publisher.start()
        try:
            yield
        finally:
            if self.metering.publisher is not None:
                self.metering.publisher.close()
            self.identity.close()
            await self.hub.stop()
            await self.aredis.aclose()
            self.resp.close()
            self.pool.close()
            self.redis.close()

    def status(self) -> dict[str, str]:
        """Each dependency: "up" or why it is down."""
        result: dict[str, str] = {}
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
            result["postgres"] = "up"
        except psycopg.OperationalError as exc:  # includes the pool's timeout
            result["postgres"] = postgres_unavailable(exc).detail
        try:
            self.redis.ping()
            result["redis"] = "up"
        except redis.RedisError as exc:
            result["redis"] = redis_unavailable(exc).detail
        return result


# Providers are coroutines so that FastAPI calls them on the event loop, not in a thread.


async def dependencies(request: Request) -> Dependencies:
    return Dependencies.of(request)


async def settings(request: Request) -> ApiSettings:
    return Dependencies.of(request).settings


async def postgres(request: Request) -> Pool:
    return Dependencies.of(request).pool


async def redis_client(request: Request) -> redis.Redis:
    return Dependencies.of(request).redis


async def live_hub(request: Request) -> LiveHub:
    return Dependencies.of(request).hub


DependenciesDep = Annotated[Dependencies, Depends(dependencies)]
SettingsDep = Annotated[ApiSettings, Depends(settings)]
# the pool of the read models' database: `with pool.connection() as conn` in the route
PostgresDep = Annotated[Pool, Depends(postgres)]
RedisDep = Annotated[redis.Redis, Depends(redis_client)]
LiveHubDep = Annotated[LiveHub, Depends(live_hub)]


_P = ParamSpec("_P")
_R = TypeVar("_R")


class ReadModels:
    """The read models, for a route that answers from one query of `projections.reads`."""

    def __init__(self, pool: PostgresDep, settings: SettingsDep) -> None:
        self.pool, self.schema = pool, settings.schema

    def read(
        self,
        query: Callable[Concatenate[psycopg.Connection[Any], str, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        """`query(conn, schema, *args, **kwargs)` on a pooled connection, taken only now (after
        the route checked its parameters)."""
        with self.pool.connection() as conn:
            return query(conn, self.schema, *args, **kwargs)


ReadModelsDep = Annotated[ReadModels, Depends()]
