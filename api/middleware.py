"""Plain ASGI middleware around the FastAPI app (a BaseHTTPMiddleware would cost a task and a
queue per request): the edge (request metrics, security headers, rate-limit fields and usage
records) and the hot path that serves the most requested route ahead of FastAPI's routing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from api.errors import answer
from api.metering import BEGAN_KEY, SCOPE_KEY, Metering
from api.problems import bad_parameter, respond

REQUESTS = Counter("optibid_api_requests_total", "API requests", ["route", "status"])
LATENCY = Histogram("optibid_api_request_seconds", "API request latency", ["route", "status"])

_METRICS: dict[tuple[str, int], tuple[Any, Any]] = {}  # route templates x statuses: bounded

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
        scope["optibid.defer_limit"] = True  # its endpoints read with the limit check at once
        scope["app"] = self.app  # as FastAPI would set it: endpoints find their dependencies
        request = Request(scope, receive)
        try:
            await self.requirement(request)
            response = await endpoint(request)
        except Exception as exc:
            response = await answer(request, exc)
        await response(scope, receive, send)


DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class Edge:
    """The outermost layer, one `send` wrapper for all it does (each layer of its own would
    wrap every message of every answer again):

    - request metrics: requests and latency by route template and status;
    - what a security review expects on every answer: no sniffing, no referrer, no framing;
      the dashboard's Content-Security-Policy; and `Cache-Control: no-store` on every answer
      to a request that carried credentials or asked for `/v1` (nothing authenticated is
      cached);
    - the rate-limit fields of an admitted market-data request, and its usage record handed
      to the publisher once the last byte is sent (2xx answers only: a refusal or an error
      served no data; `api.metering`).
    """

    def __init__(self, app: Any, metering: Callable[[], Metering]) -> None:
        self.app = app
        self.metering = metering

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[BEGAN_KEY] = began = time.perf_counter()
        path: str = scope.get("path", "")
        names = {name for name, _ in scope.get("headers", ())}
        private = path.startswith("/v1/") or bool(names & {b"authorization", b"x-api-key"})
        dashboard = path.startswith("/dashboard")
        status = 500
        size = 0

        async def sending(message: Any) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", ())
                    if not (private and k.lower() == b"cache-control")
                ]  # fmt: skip
                headers.extend(_ALWAYS)
                if private:
                    headers.append((b"cache-control", b"no-store"))
                if dashboard:
                    headers.append((b"content-security-policy", DASHBOARD_CSP.encode()))
                served = scope.get(SCOPE_KEY)
                if served is not None and served.headers:
                    headers.extend(served.headers)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - began
            route = scope.get("hot_path") or getattr(scope.get("route"), "path", "unmatched")
            children = _METRICS.get((route, status))
            if children is None:  # made once per route and status: labels() costs per call
                code = str(status)
                children = (LATENCY.labels(route, code), REQUESTS.labels(route, code))
                _METRICS[route, status] = children
            children[0].observe(seconds)
            children[1].inc()
        served = scope.get(SCOPE_KEY)
        if served is not None and 200 <= status < 300:
            publisher = self.metering().publisher
            if publisher is not None:
                publisher.put(served, status, size, seconds)
