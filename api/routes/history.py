"""History: `/v1/lmp`, `/v1/load`, `/v1/fuel-mix`, `/v1/ancillary-prices`, `/v1/kpis`.

Rows are streamed as they come from PostgreSQL (JSON or CSV), so there is no whole answer to
validate: each route names its page model for the document only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api import history, params
from api.deps import PostgresDep, SettingsDep
from api.history import HistoryQueryDep
from api.models.history import (
    EXAMPLE_LMP,
    AncillaryPricePage,
    FuelMixPage,
    KpiPage,
    LmpPage,
    LoadPage,
)
from api.openapi import problems
from api.problems import bad_parameter

router = APIRouter(tags=["history"], responses=problems(422, 500, 503))


def streamed(page: type[BaseModel], example: dict[str, Any] | None = None) -> dict[int | str, Any]:
    """The 200 answer of a history route: its page as JSON, or CSV."""
    json_content = {} if example is None else {"example": example}
    csv_content = {"schema": {"type": "string", "description": "A header, then one line a row."}}
    return {
        200: {
            "model": page,
            "content": {"application/json": json_content, "text/csv": csv_content},
        }
    }


@router.get(
    "/v1/lmp",
    summary="LMP history",
    response_model=None,
    responses=streamed(LmpPage, {"data": [EXAMPLE_LMP], "next_cursor": None}),
)
def lmp(
    pool: PostgresDep,
    settings: SettingsDep,
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    location_id: Annotated[list[str] | None, Query(description="Repeatable.")] = None,
) -> Response:
    filters = {
        "iso": params.iso(iso),
        "market": params.market(market),
        "location_id": location_id,
    }
    return history.answer(pool, settings, "lmp", query, filters)


@router.get(
    "/v1/load",
    summary="Load history (actual and forecast)",
    response_model=None,
    responses=streamed(LoadPage),
)
def load(
    pool: PostgresDep,
    settings: SettingsDep,
    query: HistoryQueryDep,
    iso: str | None = None,
    area_id: Annotated[list[str] | None, Query()] = None,
    load_kind: str | None = None,
) -> Response:
    filters = {"iso": params.iso(iso), "area_id": area_id, "load_kind": load_kind}
    return history.answer(pool, settings, "load", query, filters)


@router.get(
    "/v1/fuel-mix",
    summary="Generation by fuel",
    response_model=None,
    responses=streamed(FuelMixPage),
)
def fuel_mix(
    pool: PostgresDep,
    settings: SettingsDep,
    query: HistoryQueryDep,
    iso: str | None = None,
    fuel_type: str | None = None,
) -> Response:
    filters = {"iso": params.iso(iso), "fuel_type": fuel_type}
    return history.answer(pool, settings, "fuel-mix", query, filters)


@router.get(
    "/v1/ancillary-prices",
    summary="Ancillary service prices",
    response_model=None,
    responses=streamed(AncillaryPricePage),
)
def ancillary_prices(
    pool: PostgresDep,
    settings: SettingsDep,
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    region_id: str | None = None,
    product: str | None = None,
) -> Response:
    filters = {
        "iso": params.iso(iso),
        "market": params.market(market),
        "region_id": region_id,
        "product": product,
    }
    return history.answer(pool, settings, "ancillary-prices", query, filters)


@router.get(
    "/v1/kpis",
    summary="KPI history (hourly and daily windows)",
    response_model=None,
    responses=streamed(KpiPage),
)
def kpis(
    pool: PostgresDep,
    settings: SettingsDep,
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    location_id: Annotated[list[str] | None, Query()] = None,
    kpi: Annotated[list[str] | None, Query()] = None,
    window_kind: Annotated[str | None, Query(description="HOUR or DAY")] = None,
) -> Response:
    if window_kind not in (None, "HOUR", "DAY"):
        raise bad_parameter("window_kind", f"{window_kind!r}; HOUR or DAY")
    filters = {
        "iso": params.iso(iso),
        "market": params.market(market),
        "location_id": location_id,
        "kpi": kpi,
        "window_kind": window_kind,
    }
    return history.answer(pool, settings, "kpis", query, filters)
