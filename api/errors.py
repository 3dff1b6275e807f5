"""Every exception a request can end with, as the problem it answers with. This is the one
place exceptions become problem+json: FastAPI calls `answer` as its exception handler, and the
hot path (`api.middleware.HotPath`) calls it too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import Dependencies
from api.problems import (
    ProblemError,
    bad_parameter,
    internal,
    postgres_unavailable,
    redis_unavailable,
    respond,
    unmigrated,
)

log = structlog.get_logger(__name__)

HTTP_TITLES = {404: "Not found", 405: "Method not allowed"}


def _invalid(exc: RequestValidationError, _: str) -> ProblemError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    return bad_parameter(".".join(location) or "request", str(first.get("msg", "invalid")))


def _http(exc: StarletteHTTPException, _: str) -> ProblemError:
    title = HTTP_TITLES.get(exc.status_code, "Error")
    return ProblemError(exc.status_code, title, str(exc.detail))


# Exception class -> its problem, given the schema of the read models; the first match wins.
PROBLEMS: tuple[tuple[type[Exception], Callable[[Any, str], ProblemError]], ...] = (
    (ProblemError, lambda exc, _: exc),
    (RequestValidationError, _invalid),
    (StarletteHTTPException, _http),
    (psycopg.OperationalError, lambda exc, _: postgres_unavailable(exc)),  # or the pool's timeout
    (psycopg.errors.UndefinedTable, lambda exc, schema: unmigrated(schema, exc)),
    # text PostgreSQL cannot hold (a NUL character) in a path or a body
    (
        psycopg.DataError,
        lambda exc, _: bad_parameter("request", f"a value cannot be stored: {exc}"),
    ),
    (redis.RedisError, lambda exc, _: redis_unavailable(exc)),
)


def problem_of(exc: Exception, schema: str) -> ProblemError:
    """The problem `exc` answers as: anything not in `PROBLEMS` is an internal error."""
    for kind, problem in PROBLEMS:
        if isinstance(exc, kind):
            return problem(exc, schema)
    return internal()


async def answer(request: Request, exc: Exception) -> JSONResponse:
    """The problem+json answer to a request that ended with `exc`; anything unexpected is
    logged, never described to the client."""
    problem = problem_of(exc, Dependencies.of(request).settings.schema)
    if problem.status == 500 and not isinstance(exc, ProblemError):
        log.error("api.unhandled", path=request.url.path, exc_info=exc)
    return respond(problem, request)


def install(app: FastAPI) -> None:
    """`answer` as the handler of every exception (Exception: whatever else is raised)."""
    for kind in (*(kind for kind, _ in PROBLEMS), Exception):
        app.add_exception_handler(kind, answer)
