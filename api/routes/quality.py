"""Data quality: `/v1/quality/freshness`, `/v1/quality/gaps`, `/v1/quality/series`,
`/v1/quality/dead-letters`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import params
from api.deps import ReadModelsDep
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
from api.rows import record, without_envelope
from projections import reads

router = APIRouter(tags=["quality"], responses=problems(422, 500, 503))


@router.get("/v1/quality/freshness", summary="Freshness per ISO dataset")
def freshness(db: ReadModelsDep, iso: str | None = None) -> FreshnessList:
    rows = db.read(reads.table_rows, "freshness", params.iso(iso))
    data = [FreshnessRow.model_validate(record(without_envelope(r))) for r in rows]
    return FreshnessList(data=data, next_cursor=None)


@router.get("/v1/quality/gaps", summary="Gaps and whether backfill closed them")
def gap_list(
    db: ReadModelsDep,
    status: Annotated[str | None, Query(description="open, closed or unrecoverable")] = None,
    iso: str | None = None,
) -> GapList:
    params.choice(status, "status", "open", "closed", "unrecoverable")
    rows = db.read(reads.gaps, status, params.iso(iso))
    return GapList(data=[GapRow.model_validate(record(r)) for r in rows], next_cursor=None)


@router.get(
    "/v1/quality/series",
    summary="Series retired (silent past their dataset's retirement age) or active again",
)
def series_list(
    db: ReadModelsDep,
    status: Annotated[str | None, Query(description="retired or active")] = None,
    iso: str | None = None,
) -> SeriesStatusList:
    params.choice(status, "status", "retired", "active")
    code = params.iso(iso)
    rows = db.read(reads.series_status, None if status is None else status.upper(), code)
    data = [SeriesStatusRow.model_validate(record(r)) for r in rows]
    return SeriesStatusList(data=data, next_cursor=None)


@router.get("/v1/quality/dead-letters", summary="Dead letters by reason")
def dead_letters(db: ReadModelsDep, iso: str | None = None) -> DeadLetterList:
    rows = db.read(reads.dead_letter_counts, params.iso(iso))
    data = [DeadLetterCount.model_validate(record(r)) for r in rows]
    return DeadLetterList(data=data, next_cursor=None)
