"""Operations and the dashboard: `/health`, `/ready`, `/metrics`, `/` (to the dashboard) and
the dashboard's static files under `/dashboard/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import DependenciesDep, PostgresDep
from api.models.meta import Health, Jwks, Readiness
from api.openapi import problems
from identity import signing

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["operations"], responses=problems(422, 500))


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/health", summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    summary="Which dependencies answer",
    responses={503: {"model": Readiness, "description": "A dependency does not answer."}},
)
def ready(deps: DependenciesDep, response: Response) -> Readiness:
    status = deps.status()
    down = [name for name, value in status.items() if value != "up"]
    if down:
        response.status_code = 503
    return Readiness.model_validate(
        {"status": "ready" if not down else "degraded", "dependencies": status}
    )


@router.get(
    "/.well-known/jwks.json",
    summary="The public keys that verify access tokens",
    tags=["auth"],
    responses=problems(503),
)
def jwks(pool: PostgresDep, response: Response) -> Jwks:
    with pool.connection() as conn:
        ring = signing.load(conn)
    # keys change at a rotation, and a token's previous key stays published long enough
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks.model_validate(ring.jwks() if ring is not None else {"keys": []})


@router.get("/metrics", include_in_schema=False)
def prometheus() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


if STATIC.is_dir():
    router.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")
