"""The query API (FastAPI), versioned under /v1, reading the read models only: history from
PostgreSQL through `projections.reads`, latest values from Redis, live updates from Redis
pub/sub. Every error is problem+json; a dependency outage is a 503 with Retry-After, and the
latest values keep being served from Redis while PostgreSQL is down."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import psycopg
import structlog
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api import params
from api.deps import Dependencies
from api.live import LiveHub
from api.live import stream as live_stream
from api.problems import ProblemError, bad_parameter, install, respond
from projections import reads
from projections.errors import ProjectionError
from projections.query import latest_all
from projections.redis_sink import channel, values_key
from projections.tables import ENVELOPE, TABLES
from schemas.timeutil import zone

log = structlog.get_logger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
REQUESTS = Counter("optibid_api_requests_total", "API requests", ["route", "status"])
LATENCY = Histogram("optibid_api_request_seconds", "API request latency", ["route"])
ENVELOPE_COLUMNS = tuple(name for name, _ in ENVELOPE)


@dataclass(frozen=True)
class Dataset:
    """One history route: its read model, series columns, value column and filters."""

    table: str
    series: tuple[str, ...]  # the columns naming one series (the resampling groups)
    value: str  # the column resampling aggregates
    filters: tuple[str, ...]

    @property
    def time_column(self) -> str:
        column = TABLES[self.table].time_column
        assert column is not None
        return column

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in TABLES[self.table].column_names if c not in ENVELOPE_COLUMNS)

    @property
    def lineage_columns(self) -> tuple[str, ...]:
        return tuple(c for c in TABLES[self.table].column_names)


DATASETS = {
    "lmp": Dataset(
        "lmp",
        ("iso", "market", "location_id"),
        "lmp_usd_per_mwh",
        ("iso", "market", "location_id"),
    ),
    "load": Dataset(
        "load", ("iso", "area_id", "load_kind"), "load_mw", ("iso", "area_id", "load_kind")
    ),
    "fuel-mix": Dataset(
        "fuel_mix", ("iso", "fuel_type_native"), "generation_mw", ("iso", "fuel_type")
    ),
    "ancillary-prices": Dataset(
        "as_prices",
        ("iso", "market", "region_id", "product_native"),
        "price_usd_per_mw_hour",
        ("iso", "market", "region_id", "product"),
    ),
    "kpis": Dataset(
        "kpis",
        ("iso", "market", "location_id", "kpi", "window_kind"),
        "value",
        ("iso", "market", "location_id", "kpi", "window_kind"),
    ),
}
EXAMPLE_LMP = {
    "iso": "PJM",
    "market": "RT_5MIN",
    "location_id": "51288",
    "interval_start_utc": "2025-05-01T04:00:00Z",
    "interval_minutes": 5,
    "location_name": "WESTERN HUB",
    "location_type": "HUB",
    "lmp_usd_per_mwh": 31.42,
    "energy_usd_per_mwh": 30.98,
    "congestion_usd_per_mwh": 0.52,
    "loss_usd_per_mwh": -0.08,
    "revision": 1,
}


LATEST_PARAMETERS = [
    {"name": "iso", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "PJM, CAISO or ERCOT", "example": "PJM"},
    {"name": "market", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "DA_HOURLY, RT_5MIN, RT_15MIN or RT_HOURLY", "example": "RT_5MIN"},
    {"name": "location_id", "in": "query", "required": False,
     "schema": {"type": "array", "items": {"type": "string"}}, "style": "form",
     "explode": True, "description": "Repeatable.", "example": ["51288"]},
]  # fmt: skip


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def record(row: dict[str, Any], timezone: str | None, time_column: str) -> dict[str, Any]:
    """A row as answered: ISO-8601 UTC times, plus the market's local time on request."""
    out = {k: jsonable(v) for k, v in row.items()}
    if timezone == "market" and isinstance(row.get(time_column), datetime) and row.get("iso"):
        local = row[time_column].astimezone(zone(str(row["iso"])))
        out[time_column.replace("_utc", "_local")] = local.isoformat()
    return out


class HistoryQuery:
    """The parameters every history route shares."""

    def __init__(
        self,
        start: Annotated[
            str | None, Query(description="Inclusive start, ISO-8601 (UTC or offset) or a date.")
        ] = None,
        end: Annotated[str | None, Query(description="Exclusive end, as start.")] = None,
        as_of: Annotated[
            str | None,
            Query(description="Answer with the values as known at this time (no later revisions)."),
        ] = None,
        resample: Annotated[
            str | None, Query(description="Bucket width: 5min, 15min, 1h, 1d, 1w or 1month.")
        ] = None,
        agg: Annotated[str, Query(description="Resampling aggregate: mean, min, max, sum.")] = (
            "mean"
        ),
        timezone: Annotated[
            str | None, Query(description="'market' adds local-time columns.")
        ] = None,
        columns: Annotated[
            str | None, Query(description="Comma-separated columns (key columns always come).")
        ] = None,
        lineage: Annotated[
            bool, Query(description="Add event id, source, recorded and occurred times.")
        ] = False,
        limit: Annotated[int, Query(description="Rows per page (JSON).")] = 10_000,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = (
            None
        ),
        format: Annotated[
            str | None, Query(description="json or csv (else the Accept header decides).")
        ] = None,
    ) -> None:
        self.start, self.end, self.as_of_text = start, end, as_of
        self.resample_text, self.agg = resample, agg
        if timezone not in (None, "utc", "market"):
            raise bad_parameter("timezone", f"{timezone!r}; 'market' or 'utc'")
        self.timezone = timezone
        self.columns_text, self.lineage = columns, lineage
        self.limit = params.limit(limit)
        self.cursor = cursor
        if format not in (None, "json", "csv"):
            raise bad_parameter("format", f"{format!r}; json or csv")
        self.format = format


@dataclass
class Api:
    deps: Dependencies
    hub: LiveHub
    max_range: timedelta
    heartbeat_s: float


def create_app(
    postgres_dsn: str,
    redis_url: str,
    schema: str,
    *,
    max_range: timedelta = timedelta(days=92),
    heartbeat_s: float = 15.0,
) -> FastAPI:
    deps = Dependencies(postgres_dsn, redis_url, schema)
    hub = LiveHub(redis_url, {channel(schema, "lmp"): "lmp", channel(schema, "kpis"): "kpi"})
    state = Api(deps, hub, max_range, heartbeat_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        deps.open()
        hub.start()
        log.info("api.started", schema=schema)
        yield
        await hub.stop()
        await deps.aclose()
        deps.close()

    app = FastAPI(
        title="OptiBid market data API",
        version="1.0.0",
        description=(
            "Wholesale electricity market data from PJM, CAISO and ERCOT in one shape: "
            "history, latest values, 'as of' queries with lineage, data quality and live "
            "updates. Times are UTC (ISO-8601); `start` is inclusive and `end` exclusive."
        ),
        lifespan=lifespan,
    )
    app.state.api = state
    install(app)

    _routes(app, state)
    if STATIC.is_dir():
        app.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")
    return app


def serve(app: FastAPI) -> Any:
    """The ASGI application to run: request metrics around the hot paths around FastAPI."""
    return RequestMetrics(HotPath(app, app.state.hot_paths))


class HotPath:
    """Serves the most requested GET routes straight from their endpoint functions, ahead of
    FastAPI's middleware and routing (the latest price is read at a high rate by pollers);
    problems still answer as problem+json. Everything else goes to FastAPI."""

    def __init__(self, app: FastAPI, endpoints: dict[str, Any]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse it here, naming the parameter
            request = Request(scope, receive)
            items = request.query_params.multi_items()
            name = next((k for k, v in items if "\x00" in k + v), None)
            if name is not None:
                problem = bad_parameter(name, "contains a NUL character")
                await respond(problem, request)(scope, receive, send)
                return
        endpoint = self.endpoints.get(scope.get("path")) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["hot_path"] = scope["path"]
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except ProblemError as problem:
            response = respond(problem, request)
        except Exception:
            log.exception("api.unhandled", path=scope["path"])
            response = respond(
                ProblemError(500, "Internal error", "the server failed; see its log"), request
            )
        await response(scope, receive, send)


class RequestMetrics:
    """Requests and latency by route template and status, as a plain ASGI middleware (a
    BaseHTTPMiddleware would cost a task and a queue per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("hot_path") or getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(route).observe(time.perf_counter() - began)
            REQUESTS.labels(route, str(status)).inc()


def _json(body: dict[str, Any]) -> Response:
    """A JSON answer serialised once (no response model to validate against)."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _latest_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    start = datetime.fromisoformat(str(row["interval_start_utc"]))
    end = start + timedelta(minutes=int(row["interval_minutes"]))
    out = {k: v for k, v in row.items() if k not in ENVELOPE_COLUMNS}
    out["interval_start_utc"] = jsonable(start)
    out["age_seconds"] = round((now - end).total_seconds(), 1)
    return out


def _wants_csv(request: Request, query: HistoryQuery) -> bool:
    if query.format is not None:
        return query.format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _history(
    state: Api, request: Request, name: str, query: HistoryQuery, filters: dict[str, Any]
) -> Response:
    dataset = DATASETS[name]
    window = params.time_range(query.start, query.end, state.max_range)
    as_of = params.instant(query.as_of_text, "as_of")
    chosen = {k: v for k, v in filters.items() if v not in (None, [])}
    available = dataset.lineage_columns if query.lineage else dataset.columns
    key = TABLES[dataset.table].key
    columns = params.columns(query.columns_text, available, key)
    selection = reads.Selection(dataset.table, window.start, window.end, chosen, as_of)
    resample = params.resample(query.resample_text, query.agg)
    binding = {
        "route": name,
        "filters": chosen,
        "start": window.start,
        "end": window.end,
        "as_of": as_of,
        "columns": columns,
        "tz": query.timezone,
    }
    csv_out = _wants_csv(request, query)
    if resample is not None:
        width = params.RESAMPLE[resample[0]]
        with state.deps.postgres() as conn:
            try:
                rows = reads.resampled(
                    conn, state.deps.schema, selection, dataset.value, width, resample[1],
                    dataset.series,
                )  # fmt: skip
            except ProjectionError as exc:
                raise bad_parameter("resample", str(exc)) from exc
        data = [record(r, query.timezone, "bucket_start_utc") for r in rows]
        if csv_out:
            return StreamingResponse(_csv(iter(data)), media_type="text/csv")
        return JSONResponse({"data": data, "next_cursor": None})
    after = params.decode_cursor(query.cursor, binding)
    if after is not None:
        after = [_key_value(v) for v in after]
    conn = state.deps.acquire()
    limit = 0 if csv_out and query.cursor is None else query.limit
    try:
        streamed = reads.stream(
            conn, state.deps.schema, selection, columns, after, limit + 1 if limit else 0
        )
        first = next(streamed, None)
    except ProjectionError as exc:
        state.deps.release(conn)
        raise bad_parameter("columns", str(exc)) from exc
    except psycopg.OperationalError as exc:
        state.deps.release(conn)
        raise state.deps.outage(exc) from exc
    except psycopg.errors.UndefinedTable as exc:
        state.deps.release(conn)
        raise state.deps.unmigrated(exc) from exc
    chained = _chain(first, streamed)
    if csv_out:
        body = _csv(
            record(r, query.timezone, dataset.time_column)
            for r in _released(chained, state.deps, conn)
        )
        return StreamingResponse(body, media_type="text/csv")
    return StreamingResponse(
        _json_page(chained, state, conn, limit, key, binding, query, dataset),
        media_type="application/json",
    )


def _key_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _chain(
    first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    if first is None:
        return
    yield first
    yield from rest


def _released(
    rows: Iterator[dict[str, Any]], deps: Dependencies, conn: psycopg.Connection[Any]
) -> Iterator[dict[str, Any]]:
    try:
        yield from rows
    finally:
        deps.release(conn)


def _json_page(
    rows: Iterator[dict[str, Any]],
    state: Api,
    conn: psycopg.Connection[Any],
    limit: int,
    key: tuple[str, ...],
    binding: dict[str, Any],
    query: HistoryQuery,
    dataset: Dataset,
) -> Iterator[bytes]:
    """`{"data": [...], "next_cursor": ...}` written row by row."""
    # chunks of ~64 KiB: each chunk of a sync body crosses a thread, so not one per row
    chunk = [b'{"data":[']
    size = 0
    last: dict[str, Any] | None = None
    more = False
    for count, row in enumerate(_released(rows, state.deps, conn)):
        if limit and count == limit:
            more = True
            break
        encoded = json.dumps(record(row, query.timezone, dataset.time_column)).encode()
        chunk.append(b"," + encoded if count else encoded)
        size += len(encoded)
        last = row
        if size >= 65_536:
            yield b"".join(chunk)
            chunk, size = [], 0
    yield b"".join(chunk)
    cursor = None
    if more and last is not None:
        cursor = params.encode_cursor([jsonable(last[c]) for c in key], binding)
    yield b'],"next_cursor":' + json.dumps(cursor).encode() + b"}"


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer: Any = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
        if buffer.tell() >= 65_536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _routes(app: FastAPI, state: Api) -> None:  # noqa: PLR0915 - the routes read best together
    deps = state.deps

    # -- latest (Redis): first, as the most requested route is matched first
    @app.get(
        "/v1/lmp/latest",
        tags=["latest"],
        summary="Latest LMP per series, with its age",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "example": {
                            "data": [{**EXAMPLE_LMP, "age_seconds": 42.0}],
                            "next_cursor": None,
                        }
                    }
                }
            }
        },
        openapi_extra={"parameters": LATEST_PARAMETERS},
    )
    async def lmp_latest(request: Request) -> Response:
        # the hottest route: query parameters read directly (documented in openapi_extra),
        # which spares the per-request dependency solving
        query = request.query_params
        unknown = set(query) - {"iso", "market", "location_id"}
        if unknown:
            raise bad_parameter(sorted(unknown)[0], "not a parameter of this route")
        code, mkt = params.iso(query.get("iso")), params.market(query.get("market"))
        location_id = query.getlist("location_id")
        now = datetime.now(UTC)
        key = values_key(deps.schema, "lmp")
        if code and mkt and location_id and len(location_id) == 1:
            # one series: one field of the hash
            raw = await deps.aredis_call(deps.aredis.hget(key, f"{code}|{mkt}|{location_id[0]}"))
            rows = [json.loads(raw)] if raw is not None else []
            return _json({"data": [_latest_row(r, now) for r in rows], "next_cursor": None})
        values = await deps.aredis_call(deps.aredis.hgetall(key))
        data = []
        for series in sorted(values):
            row = json.loads(values[series])
            if (code and row.get("iso") != code) or (mkt and row.get("market") != mkt):
                continue
            if location_id and row.get("location_id") not in location_id:
                continue
            data.append(_latest_row(row, now))
        return _json({"data": data, "next_cursor": None})

    # The same endpoint without FastAPI's per-request machinery (see `HotPath`); the decorated
    # route above documents it in OpenAPI and serves it when the app runs unwrapped.
    app.state.hot_paths = {"/v1/lmp/latest": lmp_latest}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/health", tags=["operations"], summary="The process is up")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], summary="Which dependencies answer")
    def ready() -> JSONResponse:
        status = deps.status()
        down = [name for name, value in status.items() if value != "up"]
        body = {"status": "ready" if not down else "degraded", "dependencies": status}
        return JSONResponse(body, status_code=503 if down else 200)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # -- catalog
    @app.get("/v1/catalog/isos", tags=["catalog"], summary="ISOs and their time zones")
    def isos() -> dict[str, Any]:
        return {
            "data": [{"iso": i, "time_zone": str(zone(i))} for i in params.ISOS],
            "next_cursor": None,
        }

    @app.get("/v1/catalog/datasets", tags=["catalog"], summary="The time range each covers")
    def datasets() -> dict[str, Any]:
        with deps.postgres() as conn:
            rows = reads.coverage(conn, deps.schema)
        return {"data": [record(r, None, "") for r in rows], "next_cursor": None}

    @app.get("/v1/catalog/locations", tags=["catalog"], summary="Locations with type")
    def locations(
        iso: str | None = None,
        location_type: Annotated[str | None, Query(description="HUB, ZONE, NODE, ...")] = None,
    ) -> dict[str, Any]:
        code = params.iso(iso)
        with deps.postgres() as conn:
            rows = reads.locations(conn, deps.schema, code, location_type)
        return {"data": [record(r, None, "") for r in rows], "next_cursor": None}

    # -- history
    @app.get(
        "/v1/lmp",
        tags=["history"],
        summary="LMP history",
        responses={200: {"content": {"application/json": {"example": {
            "data": [EXAMPLE_LMP], "next_cursor": None}}, "text/csv": {}}}},
    )  # fmt: skip
    def lmp(
        request: Request,
        query: Annotated[HistoryQuery, Depends()],
        iso: str | None = None,
        market: str | None = None,
        location_id: Annotated[list[str] | None, Query(description="Repeatable.")] = None,
    ) -> Response:
        filters = {
            "iso": params.iso(iso),
            "market": params.market(market),
            "location_id": location_id,
        }
        return _history(state, request, "lmp", query, filters)

    @app.get("/v1/load", tags=["history"], summary="Load history (actual and forecast)")
    def load(
        request: Request,
        query: Annotated[HistoryQuery, Depends()],
        iso: str | None = None,
        area_id: Annotated[list[str] | None, Query()] = None,
        load_kind: str | None = None,
    ) -> Response:
        filters = {"iso": params.iso(iso), "area_id": area_id, "load_kind": load_kind}
        return _history(state, request, "load", query, filters)

    @app.get("/v1/fuel-mix", tags=["history"], summary="Generation by fuel")
    def fuel_mix(
        request: Request,
        query: Annotated[HistoryQuery, Depends()],
        iso: str | None = None,
        fuel_type: str | None = None,
    ) -> Response:
        filters = {"iso": params.iso(iso), "fuel_type": fuel_type}
        return _history(state, request, "fuel-mix", query, filters)

    @app.get("/v1/ancillary-prices", tags=["history"], summary="Ancillary service prices")
    def ancillary_prices(
        request: Request,
        query: Annotated[HistoryQuery, Depends()],
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
        return _history(state, request, "ancillary-prices", query, filters)

    @app.get("/v1/kpis", tags=["history"], summary="KPI history (hourly and daily windows)")
    def kpis(
        request: Request,
        query: Annotated[HistoryQuery, Depends()],
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
        return _history(state, request, "kpis", query, filters)

    @app.get("/v1/kpis/latest", tags=["latest"], summary="Latest KPIs per location")
    def kpis_latest(
        iso: str | None = None,
        market: str | None = None,
        location_id: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        code, mkt = params.iso(iso), params.market(market)
        series = deps.redis_call(latest_all, deps.redis, deps.schema, "lmp")
        data = []
        for name in sorted(series):
            s_iso, s_market, s_location = name.split("|", 2)
            if (code and s_iso != code) or (mkt and s_market != mkt):
                continue
            if location_id and s_location not in location_id:
                continue
            values = deps.redis_call(latest_all, deps.redis, deps.schema, name)
            for field in sorted(values):
                row = values[field]
                data.append({k: v for k, v in row.items() if k not in ENVELOPE_COLUMNS})
        return {"data": data, "next_cursor": None}

    # -- data quality
    @app.get("/v1/quality/freshness", tags=["quality"], summary="Freshness per ISO dataset")
    def freshness(iso: str | None = None) -> dict[str, Any]:
        code = params.iso(iso)
        with deps.postgres() as conn:
            rows = reads.table_rows(conn, deps.schema, "freshness", code)
        data = [{k: jsonable(v) for k, v in r.items() if k not in ENVELOPE_COLUMNS} for r in rows]
        return {"data": data, "next_cursor": None}

    @app.get("/v1/quality/gaps", tags=["quality"], summary="Gaps and whether backfill closed them")
    def gap_list(
        status: Annotated[str | None, Query(description="open, closed or unrecoverable")] = None,
        iso: str | None = None,
    ) -> dict[str, Any]:
        if status not in (None, "open", "closed", "unrecoverable"):
            raise bad_parameter("status", f"{status!r}; open, closed or unrecoverable")
        code = params.iso(iso)
        with deps.postgres() as conn:
            rows = reads.gaps(conn, deps.schema, status, code)
        return {"data": [record(r, None, "") for r in rows], "next_cursor": None}

    @app.get(
        "/v1/quality/series",
        tags=["quality"],
        summary="Series retired (silent past their dataset's retirement age) or active again",
    )
    def series_list(
        status: Annotated[str | None, Query(description="retired or active")] = None,
        iso: str | None = None,
    ) -> dict[str, Any]:
        if status not in (None, "retired", "active"):
            raise bad_parameter("status", f"{status!r}; retired or active")
        code = params.iso(iso)
        wire = None if status is None else status.upper()
        with deps.postgres() as conn:
            rows = reads.series_status(conn, deps.schema, wire, code)
        return {"data": [record(r, None, "") for r in rows], "next_cursor": None}

    @app.get("/v1/quality/dead-letters", tags=["quality"], summary="Dead letters by reason")
    def dead_letters(iso: str | None = None) -> dict[str, Any]:
        code = params.iso(iso)
        with deps.postgres() as conn:
            rows = reads.dead_letter_counts(conn, deps.schema, code)
        return {"data": [record(r, None, "") for r in rows], "next_cursor": None}

    # -- live
    @app.get(
        "/v1/live",
        tags=["live"],
        summary="Server-sent events: price and KPI updates",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def live(
        request: Request,
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
                values = latest_all(deps.redis, deps.schema, "lmp")
            except Exception:  # Redis down: the stream starts empty and fills when it is back
                return []
            return [("lmp", values[k]) for k in sorted(values)]

        body = live_stream(
            state.hub, wanted, locations, last_event_id, snapshot, state.heartbeat_s,
            request.is_disconnected,
        )  # fmt: skip
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
