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
from fastapi import FastAPI

from api import errors
from api.deps import ApiSettings, Dependencies
from api.middleware import HotPath, RequestMetrics
from api.openapi import DocumentedApi
from api.routes import catalog, history, latest, live, meta, quality

log = structlog.get_logger(__name__)

# latest first: the most requested route is matched first
ROUTERS = (latest.router, history.router, catalog.router, quality.router, live.router, meta.router)


def create_app(
    postgres_dsn: str,
    redis_url: str,
    schema: str,
    *,
    max_range: timedelta = timedelta(days=92),
    heartbeat_s: float = 15.0,
) -> FastAPI:
    deps = Dependencies(ApiSettings(postgres_dsn, redis_url, schema, max_range, heartbeat_s))

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
    for router in ROUTERS:
        app.include_router(router)
    return app


def serve(app: FastAPI) -> Any:
    """The ASGI application to run: request metrics around the hot path around FastAPI."""
    return RequestMetrics(HotPath(app, latest.HOT_PATHS))
