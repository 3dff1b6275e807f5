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

    def __init__(
        self,
        app: FastAPI,
        endpoints: Mapping[str, Endpoint],
        requirement: Callable[[Request], Awaitable[Any]],
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        self.requirement = requirement  # the routes' own dependency: same principal, same check

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
            await self.requirement(request)
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


DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """What a security review expects on every answer: no sniffing, no referrer, no framing;
    the dashboard's Content-Security-Policy; and `Cache-Control: no-store` on every answer to a
    request that carried credentials or asked for `/v1` (nothing authenticated is cached)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        names = {name for name, _ in scope.get("headers", ())}
        private = path.startswith("/v1/") or bool(names & {b"authorization", b"x-api-key"})
        dashboard = path.startswith("/dashboard")

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ())
                    if not (private and k.lower() == b"cache-control")
                ]  # fmt: skip
                headers.extend(_ALWAYS)
                if private:
                    headers.append((b"cache-control", b"no-store"))
                if dashboard:
                    headers.append((b"content-security-policy", DASHBOARD_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
