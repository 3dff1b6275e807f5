"""One error shape for every answer that is not a success: RFC 9457 problem details
(`application/problem+json`), naming the parameter at fault where there is one.

Raise a `ProblemError` anywhere a request is served; `api.errors` turns it, and every other
exception, into the answer."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

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
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.param = param
        self.headers = headers or {}
        self.code = code  # for programs: what to do next (e.g. "otp_required")
        self.extra = extra or {}  # further members of the problem (RFC 9457 extensions)


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


def postgres_unavailable(exc: BaseException) -> ProblemError:
    return unavailable("PostgreSQL", f"the history store does not answer: {exc}")


def redis_unavailable(exc: BaseException) -> ProblemError:
    return unavailable("Redis", f"the latest-value cache does not answer: {exc}")


def unmigrated(schema: str, exc: BaseException) -> ProblemError:
    return unavailable(
        "Read models",
        f"schema {schema!r} lacks a read-model table (run `optibid db migrate`): {exc}",
    )


def internal() -> ProblemError:
    """An unexpected failure: logged, never described to the client."""
    return ProblemError(500, "Internal error", "the server failed; see its log")


class InvalidParam(BaseModel):
    name: str = Field(description="The parameter at fault.")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every answer that is not a success."""

    type: Literal["about:blank"]
    title: str = Field(description="What went wrong, e.g. 'Invalid parameter'.")
    status: int = Field(description="The HTTP status code.")
    detail: str
    instance: str = Field(description="The path of the request.")
    invalid_params: list[InvalidParam] = Field(
        default_factory=list, description="Only when a parameter is at fault: that parameter."
    )
    code: str | None = Field(
        None,
        description="For programs, where the status alone does not say what to do next, e.g. "
        "'otp_required' (send the login again with the authenticator code) or 'step_up_required'.",
    )


def body(problem: ProblemError, instance: str) -> dict[str, Any]:
    """The `Problem` of an error, as sent."""
    content: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.param is not None:
        content["invalid_params"] = [{"name": problem.param, "reason": problem.detail}]
    if problem.code is not None:
        content["code"] = problem.code
    return {**problem.extra, **content}


def respond(problem: ProblemError, request: Request) -> JSONResponse:
    return JSONResponse(
        body(problem, request.url.path),
        status_code=problem.status,
        media_type=PROBLEM,
        headers=problem.headers,
    )


BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="optibid"'}


def unauthenticated(detail: str, code: str = "unauthenticated") -> ProblemError:
    """No principal: no credentials, or ones that do not verify (RFC 6750's challenge)."""
    return ProblemError(401, "Unauthorized", detail, headers=BEARER_CHALLENGE, code=code)


def forbidden(detail: str, code: str = "forbidden") -> ProblemError:
    return ProblemError(403, "Forbidden", detail, code=code)


def not_found(detail: str) -> ProblemError:
    return ProblemError(404, "Not found", detail, code="not_found")
