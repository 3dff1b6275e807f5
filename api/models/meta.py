"""Operations: liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]


class DependencyStatus(BaseModel):
    postgres: str = Field(description='"up", or why PostgreSQL is down.')
    redis: str = Field(description='"up", or why Redis is down.')


class Readiness(BaseModel):
    """Whether every dependency answers (200) or which do not (503)."""

    status: Literal["ready", "degraded"]
    dependencies: DependencyStatus


class Jwk(BaseModel):
    """A public signing key of the access tokens (RFC 7517; EC P-256, ES256)."""

    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str
    kid: str = Field(description="The key id access tokens name in their header.")
    use: Literal["sig"]
    alg: Literal["ES256"]


class Jwks(BaseModel):
    """The keys that verify access tokens now: the current one first, then those kept from
    before a rotation until the tokens they signed have expired."""

    keys: list[Jwk]
