"""Data quality: `/v1/quality/freshness`, `/v1/quality/gaps`, `/v1/quality/series`,
`/v1/quality/dead-letters`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import params
from api.deps import PostgresDep, SettingsDep
from api.models.quality import (
    DeadLetterCount,
    DeadLetterList,
    FreshnessList,
    FreshnessRow,
    GapList,
    GapRow,
    SeriesStatusList,
    SeriesStatusRow,
)
from api.openapi import problems
from api.problems import bad_parameter
from api.rows import record, without_envelope
from projections import reads

router = APIRouter(tags=["quality"], responses=problems(422, 500, 503))


@router.get("/v1/quality/freshness", summary="Freshness per ISO dataset")
def freshness(pool: PostgresDep, settings: SettingsDep, iso: str | None = None) -> FreshnessList:
    code = params.iso(iso)
    with pool.connection() as conn:
        rows = reads.table_rows(conn, settings.schema, "freshness", code)
    data = [FreshnessRow.model_validate(record(without_envelope(r))) for r in rows]
    return FreshnessList(data=data, next_cursor=None)


@router.get("/v1/quality/gaps", summary="Gaps and whether backfill closed them")
def gap_list(
    pool: PostgresDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description="open, closed or unrecoverable")] = None,
    iso: str | None = None,
) -> GapList:
    if status not in (None, "open", "closed", "unrecoverable"):
        raise bad_parameter("status", f"{status!r}; open, closed or unrecoverable")
    code = params.iso(iso)
    with pool.connection() as conn:
        rows = reads.gaps(conn, settings.schema, status, code)
    return GapList(data=[GapRow.model_validate(record(r)) for r in rows], next_cursor=None)


@router.get(
    "/v1/quality/series",
    summary="Series retired (silent past their dataset's retirement age) or active again",
)
def series_list(
    pool: PostgresDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description="retired or active")] = None,
    iso: str | None = None,
) -> SeriesStatusList:
    if status not in (None, "retired", "active"):
        raise bad_parameter("status", f"{status!r}; retired or active")
    code = params.iso(iso)
    wire = None if status is None else status.upper()
    with pool.connection() as conn:
        rows = reads.series_status(conn, settings.schema, wire, code)
    data = [SeriesStatusRow.model_validate(record(r)) for r in rows]
    return SeriesStatusList(data=data, next_cursor=None)


@router.get("/v1/quality/dead-letters", summary="Dead letters by reason")
def dead_letters(
    pool: PostgresDep, settings: SettingsDep, iso: str | None = None
) -> DeadLetterList:
    code = params.iso(iso)
    with pool.connection() as conn:
        rows = reads.dead_letter_counts(conn, settings.schema, code)
    data = [DeadLetterCount.model_validate(record(r)) for r in rows]
    return DeadLetterList(data=data, next_cursor=None)
