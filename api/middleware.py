"""Plain ASGI middleware around the FastAPI app (a BaseHTTPMiddleware would cost a task and a
queue per request): request metrics, and the hot path that serves the most requested route
ahead of FastAPI's routing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from api.errors import answer
from api.problems import bad_parameter, respond

REQUESTS = Counter("optibid_api_requests_total", "API requests", ["route", "status"])
LATENCY = Histogram("optibid_api_request_seconds", "API request latency", ["route"])

Endpoint = Callable[[Request], Awaitable[Response]]


class HotPath:
    """Serves the most requested GET routes straight from their endpoint functions, ahead of
    FastAPI's middleware and routing (the latest price is read at a high rate by pollers);
    errors answer through the same `api.errors.answer` as FastAPI's exception handlers.
    Everything else goes to FastAPI."""

    def __init__(self, app: FastAPI, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse it here, naming the parameter
            request = Request(scope, receive)
            items = request.query_params.multi_items()
            name = next((k for k, v in items if "\x00" in k + v), None)
            if name is not None:
                problem = bad_parameter(name, "contains a NUL character")
                await respond(problem, request)(scope, receive, send)
                return
        endpoint = self.endpoints.get(scope.get("path")) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["hot_path"] = scope["path"]
        scope["app"] = self.app  # as FastAPI would set it: endpoints find their dependencies
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await answer(request, exc)
        await response(scope, receive, send)


class RequestMetrics:
    """Requests and latency by route template and status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("hot_path") or getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(route).observe(time.perf_counter() - began)
            REQUESTS.labels(route, str(status)).inc()
