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
