"""The catalog: `/v1/catalog/isos`, `/v1/catalog/datasets`, `/v1/catalog/locations`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import params
from api.deps import ReadModelsDep
from api.models.catalog import (
    DatasetCoverage,
    DatasetList,
    IsoList,
    IsoRow,
    LocationList,
    LocationRow,
)
from api.openapi import problems
from api.rows import record
from projections import reads
from schemas.timeutil import zone
from schemas.vocabulary import ISOS

router = APIRouter(tags=["catalog"], responses=problems(422, 500))


@router.get("/v1/catalog/isos", summary="ISOs and their time zones")
def isos() -> IsoList:
    rows = [IsoRow(iso=i, time_zone=str(zone(i))) for i in ISOS]
    return IsoList(data=rows, next_cursor=None)


@router.get("/v1/catalog/datasets", summary="The time range each covers", responses=problems(503))
def datasets(db: ReadModelsDep) -> DatasetList:
    rows = db.read(reads.coverage)
    data = [DatasetCoverage.model_validate(record(r)) for r in rows]
    return DatasetList(data=data, next_cursor=None)


@router.get("/v1/catalog/locations", summary="Locations with type", responses=problems(503))
def locations(
    db: ReadModelsDep,
    iso: str | None = None,
    location_type: Annotated[str | None, Query(description="HUB, ZONE, NODE, ...")] = None,
) -> LocationList:
    rows = db.read(reads.locations, params.iso(iso), location_type)
    return LocationList(
        data=[LocationRow.model_validate(record(r)) for r in rows], next_cursor=None
    )
