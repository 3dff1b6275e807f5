"""The query API (FastAPI), versioned under /v1, reading the read models only: history from
PostgreSQL through `projections.reads`, latest values from Redis, live updates from Redis
pub/sub. Every error is problem+json (`api.errors`); a dependency outage is a 503 with
Retry-After, and the latest values keep being served from Redis while PostgreSQL is down.

The routes live in `api.routes`, one router per resource; this module assembles them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors
from api.auth import Permission, require
from api.billing import BillingSettings
from api.deps import ApiSettings, Dependencies
from api.identity import AuthSettings
from api.middleware import Edge, HotPath
from api.openapi import DocumentedApi, problems
from api.routes import (
    auth,
    catalog,
    history,
    latest,
    live,
    me,
    meta,
    orgs,
    quality,
    sso,
)
from api.routes import (
    billing as billing_routes,
)

log = structlog.get_logger(__name__)

# market data, latest first (the most requested route is matched first): every route needs a
# principal whose role reads market data
MARKET_ROUTERS = (latest.router, history.router, catalog.router, quality.router, live.router)
# identity and operations: each route names its own requirement (or none: health, readiness,
# metrics, the JWKS, login and refresh, the dashboard's files)
OTHER_ROUTERS = (
    auth.router, sso.router, me.router, orgs.router, billing_routes.router, meta.router
)  # fmt: skip


def create_app(
    postgres_dsn: str,
    redis_url: str,
    schema: str,
    *,
    max_range: timedelta = timedelta(days=92),
    heartbeat_s: float = 15.0,
    auth_settings: AuthSettings | None = None,
    rate_limits: bool = True,
    metering: bool = True,
    billing: BillingSettings | None = None,
) -> FastAPI:
    settings = ApiSettings(
        postgres_dsn, redis_url, schema, max_range, heartbeat_s, rate_limits, metering,
        billing or BillingSettings(),
    )  # fmt: skip
    deps = Dependencies(settings, auth_settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with deps.running():
            log.info("api.started", schema=schema)
            yield

    app = DocumentedApi(
        title="OptiBid market data API",
        version="1.0.0",
        description=(
            "Wholesale electricity market data from PJM, CAISO and ERCOT in one shape: "
            "history, latest values, 'as of' queries with lineage, data quality and live "
            "updates. Times are UTC (ISO-8601); `start` is inclusive and `end` exclusive."
        ),
        lifespan=lifespan,
    )
    app.state.deps = deps
    errors.install(app)
    market = [Depends(require(Permission.MARKET_READ))]
    for router in MARKET_ROUTERS:
        app.include_router(router, dependencies=market, responses=problems(401, 403))
    for router in OTHER_ROUTERS:
        app.include_router(router)
    return app


def serve(app: FastAPI) -> Any:
    """The ASGI application to run: the edge (request metrics, security headers, rate-limit
    fields and usage records, `api.middleware.Edge`) around CORS (only for the origins
    configured) around the hot path (authenticated like the routes it serves) around
    FastAPI."""
    inner: Any = HotPath(app, latest.HOT_PATHS, require(Permission.MARKET_READ))
    origins = Dependencies.of_app(app).auth_settings.cors_origins
    if origins:  # closed unless configured: browsers refuse other origins' reads
        inner = CORSMiddleware(
            inner,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    deps = Dependencies.of_app(app)
    return Edge(inner, lambda: deps.metering)
