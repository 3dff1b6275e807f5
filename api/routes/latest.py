"""Latest values from Redis: `/v1/lmp/latest`, `/v1/kpis/latest` (served while PostgreSQL is
down)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import params
from api.deps import Dependencies, RedisDep, SettingsDep
from api.metering import served_of
from api.middleware import Endpoint
from api.models.latest import EXAMPLE_LATEST, KpiLatestList, KpiLatestRow, LmpLatestList
from api.openapi import problems
from api.problems import bad_parameter
from api.rows import jsonable, without_envelope
from projections.query import latest_all
from projections.redis_sink import values_key

router = APIRouter(tags=["latest"], responses=problems(422, 500, 503))

LMP_LATEST = "/v1/lmp/latest"
LATEST_PARAMETERS = [
    {"name": "iso", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "PJM, CAISO or ERCOT", "example": "PJM"},
    {"name": "market", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "DA_HOURLY, RT_5MIN, RT_15MIN or RT_HOURLY", "example": "RT_5MIN"},
    {"name": "location_id", "in": "query", "required": False,
     "schema": {"type": "array", "items": {"type": "string"}}, "style": "form",
     "explode": True, "description": "Repeatable.", "example": ["51288"]},
]  # fmt: skip


@router.get(
    LMP_LATEST,
    summary="Latest LMP per series, with its age",
    # The hottest route: `HotPath` calls it outside FastAPI's request handling, where no
    # response model runs, and the body is serialised once here with json.dumps. The model
    # is declared for the document only (tests/unit/api check that answers conform to it).
    response_model=None,
    responses={
        200: {"model": LmpLatestList, "content": {"application/json": {"example": EXAMPLE_LATEST}}}
    },
    openapi_extra={"parameters": LATEST_PARAMETERS},
)
async def lmp_latest(request: Request) -> Response:
    # query parameters read directly (documented in openapi_extra), which spares the
    # per-request dependency solving; `api.middleware.HotPath` calls this with a bare request
    query = request.query_params
    unknown = set(query) - {"iso", "market", "location_id"}
    if unknown:
        raise bad_parameter(sorted(unknown)[0], "not a parameter of this route")
    code, mkt = params.iso(query.get("iso")), params.market(query.get("market"))
    location_id = query.getlist("location_id")
    deps = Dependencies.of(request)
    now = datetime.now(UTC)
    key = values_key(deps.settings.schema, "lmp")
    if code and mkt and location_id and len(location_id) == 1:
        # one series: one field of the hash
        (raw,) = await deps.metering.limited_read(
            served_of(request), ("HGET", key, f"{code}|{mkt}|{location_id[0]}")
        )
        rows = [json.loads(raw)] if raw is not None else []
        return _json({"data": [_latest_row(r, now) for r in rows], "next_cursor": None}, request)
    (flat,) = await deps.metering.limited_read(served_of(request), ("HGETALL", key))
    values = dict(zip(flat[::2], flat[1::2], strict=True))
    data = []
    for series in sorted(values):
        row = json.loads(values[series])
        if (code and row.get("iso") != code) or (mkt and row.get("market") != mkt):
            continue
        if location_id and row.get("location_id") not in location_id:
            continue
        data.append(_latest_row(row, now))
    return _json({"data": data, "next_cursor": None}, request)


# Served by `api.middleware.HotPath` ahead of FastAPI's routing; the decorated route above
# documents it in OpenAPI and serves it when the app runs unwrapped.
HOT_PATHS: dict[str, Endpoint] = {LMP_LATEST: lmp_latest}


def _json(body: dict[str, Any], request: Request) -> Response:
    served = served_of(request)
    if served is not None:
        served.rows = len(body["data"])
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _latest_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    start = datetime.fromisoformat(str(row["interval_start_utc"]))
    end = start + timedelta(minutes=int(row["interval_minutes"]))
    out = without_envelope(row)
    out["interval_start_utc"] = jsonable(start)
    out["age_seconds"] = round((now - end).total_seconds(), 1)
    return out


@router.get("/v1/kpis/latest", summary="Latest KPIs per location")
def kpis_latest(
    request: Request,
    client: RedisDep,
    settings: SettingsDep,
    iso: str | None = None,
    market: str | None = None,
    location_id: Annotated[list[str] | None, Query()] = None,
) -> KpiLatestList:
    code, mkt = params.iso(iso), params.market(market)
    series = latest_all(client, settings.schema, "lmp")
    data = []
    for name in sorted(series):
        s_iso, s_market, s_location = name.split("|", 2)
        if (code and s_iso != code) or (mkt and s_market != mkt):
            continue
        if location_id and s_location not in location_id:
            continue
        values = latest_all(client, settings.schema, name)
        for field in sorted(values):
            data.append(KpiLatestRow.model_validate(without_envelope(values[field])))
    served = served_of(request)
    if served is not None:
        served.rows = len(data)
    return KpiLatestList(data=data, next_cursor=None)
