"""Live updates: `/v1/live`, server-sent events from Redis pub/sub (see `api.live`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import Permission
from api.deps import Dependencies, LiveHubDep, RedisDep, SettingsDep
from api.live import stream
from api.openapi import LIVE_EVENTS, problems
from api.problems import bad_parameter
from projections.query import latest_all

router = APIRouter(tags=["live"], responses=problems(422, 500))


@router.get(
    "/v1/live",
    summary="Server-sent events: price and KPI updates",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A snapshot of the latest prices (or the events missed since "
            "`Last-Event-ID`), then each update as it comes, with comment heartbeats.",
            "content": LIVE_EVENTS,
        }
    },
)
async def live(
    request: Request,
    hub: LiveHubDep,
    client: RedisDep,
    settings: SettingsDep,
    topics: Annotated[str, Query(description="Comma-separated: lmp, kpis")] = "lmp,kpis",
    location_id: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    chosen = {t.strip() for t in topics.split(",") if t.strip()}
    unknown = chosen - {"lmp", "kpis"}
    if unknown or not chosen:
        raise bad_parameter("topics", f"{', '.join(sorted(unknown)) or 'none'}; lmp, kpis")
    wanted = {"kpi" if t == "kpis" else t for t in chosen}
    locations = set(location_id or [])

    def snapshot() -> list[tuple[str, dict[str, Any]]]:
        try:
            values = latest_all(client, settings.schema, "lmp")
        except Exception:  # Redis down: the stream starts empty and fills when it is back
            return []
        return [("lmp", values[k]) for k in sorted(values)]

    async def allowed() -> bool:
        return await Dependencies.of(request).auth.still_allowed(request, Permission.MARKET_READ)

    body = stream(
        hub, wanted, locations, last_event_id, snapshot, settings.heartbeat_s,
        request.is_disconnected, allowed,
    )  # fmt: skip
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
