"""History: `/v1/lmp`, `/v1/load`, `/v1/fuel-mix`, `/v1/ancillary-prices`, `/v1/kpis`.

Rows are streamed as they come from PostgreSQL (JSON or CSV), so there is no whole answer to
validate: each route names its page model for the document only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from api import history, params
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


def history_route(
    path: str, summary: str, page: type[BaseModel], example: dict[str, Any] | None = None
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """Registers a history route, its 200 answer documented as `page` (JSON) or CSV."""
    return router.get(path, summary=summary, response_model=None, responses=streamed(page, example))


@history_route("/v1/lmp", "LMP history", LmpPage, {"data": [EXAMPLE_LMP], "next_cursor": None})
def lmp(
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    location_id: Annotated[list[str] | None, Query(description="Repeatable.")] = None,
) -> Response:
    return history.answer(query, "lmp", {"iso": iso, "market": market, "location_id": location_id})


@history_route("/v1/load", "Load history (actual and forecast)", LoadPage)
def load(
    query: HistoryQueryDep,
    iso: str | None = None,
    area_id: Annotated[list[str] | None, Query()] = None,
    load_kind: str | None = None,
) -> Response:
    return history.answer(query, "load", {"iso": iso, "area_id": area_id, "load_kind": load_kind})


@history_route("/v1/fuel-mix", "Generation by fuel", FuelMixPage)
def fuel_mix(
    query: HistoryQueryDep, iso: str | None = None, fuel_type: str | None = None
) -> Response:
    return history.answer(query, "fuel-mix", {"iso": iso, "fuel_type": fuel_type})


@history_route("/v1/ancillary-prices", "Ancillary service prices", AncillaryPricePage)
def ancillary_prices(
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    region_id: str | None = None,
    product: str | None = None,
) -> Response:
    filters = {"iso": iso, "market": market, "region_id": region_id, "product": product}
    return history.answer(query, "ancillary-prices", filters)


@history_route("/v1/kpis", "KPI history (hourly and daily windows)", KpiPage)
def kpis(
    query: HistoryQueryDep,
    iso: str | None = None,
    market: str | None = None,
    location_id: Annotated[list[str] | None, Query()] = None,
    kpi: Annotated[list[str] | None, Query()] = None,
    window_kind: Annotated[str | None, Query(description="HOUR or DAY")] = None,
) -> Response:
    params.choice(window_kind, "window_kind", "HOUR", "DAY")
    filters = {
        "iso": iso,
        "market": market,
        "location_id": location_id,
        "kpi": kpi,
        "window_kind": window_kind,
    }
    return history.answer(query, "kpis", filters)
