"""One error shape for every answer that is not a success: RFC 9457 problem details
(`application/problem+json`), naming the parameter at fault where there is one."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)
PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5


class ProblemError(Exception):
    """An answer that is a problem: raise it anywhere in a route."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.param = param
        self.headers = headers or {}


def bad_parameter(param: str, detail: str) -> ProblemError:
    return ProblemError(422, "Invalid parameter", f"{param}: {detail}", param=param)


def unavailable(dependency: str, detail: str) -> ProblemError:
    """A dependency outage: 503, with when to try again."""
    return ProblemError(
        503,
        f"{dependency} unavailable",
        detail,
        param=None,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def body(problem: ProblemError, instance: str) -> dict[str, Any]:
    content: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.param is not None:
        content["invalid_params"] = [{"name": problem.param, "reason": problem.detail}]
    return content


def respond(problem: ProblemError, request: Request) -> JSONResponse:
    return JSONResponse(
        body(problem, request.url.path),
        status_code=problem.status,
        media_type=PROBLEM,
        headers=problem.headers,
    )


def install(app: FastAPI) -> None:
    """ProblemError answers for our own problems, FastAPI's validation errors, HTTP errors and
    anything unexpected (logged, never leaked)."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return respond(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
        param = ".".join(location) or "request"
        problem = bad_parameter(param, str(first.get("msg", "invalid")))
        response = respond(problem, request)
        return response

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return respond(ProblemError(exc.status_code, title, str(exc.detail)), request)

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unhandled", path=request.url.path)
        return respond(
            ProblemError(500, "Internal error", "the server failed; see its log"), request
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
