"""History answers: the parameters every history route shares, and the rows of a time-series
read model (or their resampled buckets) streamed as JSON pages or CSV from
`projections.reads`, with a memory footprint that does not grow with the answer."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api import params
from api.deps import Dependencies, Pool, PostgresDep, SettingsDep
from api.metering import Served, check_history, served_of
from api.problems import bad_parameter
from api.rows import ENVELOPE_COLUMNS, jsonable, record
from projections import reads
from projections.errors import ProjectionError
from projections.tables import TABLES


@dataclass(frozen=True)
class HistoryResource:
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
    "lmp": HistoryResource(
        "lmp",
        ("iso", "market", "location_id"),
        "lmp_usd_per_mwh",
        ("iso", "market", "location_id"),
    ),
    "load": HistoryResource(
        "load", ("iso", "area_id", "load_kind"), "load_mw", ("iso", "area_id", "load_kind")
    ),
    "fuel-mix": HistoryResource(
        "fuel_mix", ("iso", "fuel_type_native"), "generation_mw", ("iso", "fuel_type")
    ),
    "ancillary-prices": HistoryResource(
        "as_prices",
        ("iso", "market", "region_id", "product_native"),
        "price_usd_per_mw_hour",
        ("iso", "market", "region_id", "product"),
    ),
    "kpis": HistoryResource(
        "kpis",
        ("iso", "market", "location_id", "kpi", "window_kind"),
        "value",
        ("iso", "market", "location_id", "kpi", "window_kind"),
    ),
}

# filters that name a code of the vocabulary, in any case
CODES = {"iso": params.iso, "market": params.market}


class HistoryQuery:
    """The parameters every history route shares, with the read models' pool and the settings
    that answer them."""

    def __init__(
        self,
        request: Request,
        pool: PostgresDep,
        settings: SettingsDep,
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
        dry_run: Annotated[
            bool,
            Query(
                description="Answer with the rows this request would return and the quota "
                "they would use, without reading them."
            ),
        ] = False,
    ) -> None:
        self.pool, self.settings = pool, settings
        self.request = request
        self.served: Served | None = served_of(request)
        self.dry_run = dry_run
        self.start, self.end, self.as_of_text = start, end, as_of
        self.resample_text, self.agg = resample, agg
        if timezone not in (None, "utc", "market"):
            raise bad_parameter("timezone", f"{timezone!r}; 'market' or 'utc'")
        self.timezone = timezone
        self.columns_text, self.lineage = columns, lineage
        self.limit = params.limit(limit)
        self.cursor = cursor
        params.choice(format, "format", "json", "csv")
        self.csv = (
            format == "csv"
            if format is not None
            else "text/csv" in request.headers.get("accept", "")
        )


HistoryQueryDep = Annotated[HistoryQuery, Depends()]


def answer(query: HistoryQuery, name: str, filters: dict[str, Any]) -> Response:
    """The rows of history route `name` as asked (`filters` by column, the `CODES` among them
    checked first): resampled buckets in one answer, else one page (JSON) or every row (CSV)
    streamed, holding a pooled connection until the last row."""
    pool, settings = query.pool, query.settings
    dataset = DATASETS[name]
    filters = {k: CODES[k](v) if k in CODES else v for k, v in filters.items()}
    window = params.time_range(query.start, query.end, settings.max_range)
    check_history(query.served, window.start, query.csv, datetime.now(UTC))
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
    if query.dry_run:
        return _dry_run(query, selection, dataset, resample, binding)
    served = query.served
    if resample is not None:
        width = params.RESAMPLE[resample[0]]
        with pool.connection() as conn:
            try:
                rows = reads.resampled(
                    conn, settings.schema, selection, dataset.value, width, resample[1],
                    dataset.series,
                )  # fmt: skip
            except ProjectionError as exc:
                raise bad_parameter("resample", str(exc)) from exc
        data = [record(r, query.timezone, "bucket_start_utc") for r in rows]
        if served is not None:
            served.rows = len(data)
        if query.csv:
            return StreamingResponse(_csv(iter(data)), media_type="text/csv")
        return JSONResponse({"data": data, "next_cursor": None})
    after = params.decode_cursor(query.cursor, binding)
    if after is not None:
        after = [_key_value(v) for v in after]
    limit = 0 if query.csv and query.cursor is None else query.limit
    conn = pool.getconn()
    try:
        streamed = reads.stream(
            conn, settings.schema, selection, columns, after, limit + 1 if limit else 0
        )
        first = next(streamed, None)
    except ProjectionError as exc:
        pool.putconn(conn)
        raise bad_parameter("columns", str(exc)) from exc
    except BaseException:
        pool.putconn(conn)
        raise
    rows_out = _counted(_released(_chain(first, streamed), pool, conn), served, limit)
    if query.csv:
        body = _csv(record(r, query.timezone, dataset.time_column) for r in rows_out)
        return StreamingResponse(body, media_type="text/csv")
    page = _json_page(rows_out, limit, key, binding, query.timezone, dataset.time_column)
    return StreamingResponse(page, media_type="application/json")


def _counted(
    rows: Iterator[dict[str, Any]], served: Served | None, limit: int
) -> Iterator[dict[str, Any]]:
    """`rows`, counted into the request's usage as they are sent (the one past a page's
    `limit`, read only to know there is more, is not sent and not counted)."""
    if served is None:
        yield from rows
        return
    for row in rows:
        if not limit or served.rows < limit:
            served.rows += 1
        yield row


def _dry_run(
    query: HistoryQuery,
    selection: reads.Selection,
    dataset: HistoryResource,
    resample: tuple[str, str] | None,
    binding: dict[str, Any],
) -> Response:
    """The rows a request would return and the quota they would use, counted by the server
    without reading them out (`reads.count`)."""
    after = params.decode_cursor(query.cursor, binding)
    if after is not None:
        after = [_key_value(v) for v in after]
    with query.pool.connection() as conn:
        try:
            if resample is None:
                matching = reads.count(conn, query.settings.schema, selection, after)
            else:
                series = reads.count(
                    conn, query.settings.schema, selection, group_by=dataset.series
                )
        except ProjectionError as exc:
            raise bad_parameter("dry_run", str(exc)) from exc
    if resample is None:
        page = query.limit if not query.csv else 0
        rows = min(matching, page) if page else matching
        detail = {"matching": matching, "page_limit": page or None}
    else:
        width = params.RESAMPLE[resample[0]]
        span = (selection.end - selection.start).total_seconds()
        if width is None:  # calendar months: every month the range touches
            start, end = selection.start, selection.end
            buckets = (end.year - start.year) * 12 + end.month - start.month + (end.day > 1)
        else:
            buckets = math.ceil(span / width.total_seconds())
        rows = series * max(buckets, 0)  # at most: a bucket without data gives no row
        detail = {"series": series, "buckets": buckets}
    served = query.served
    if served is not None:
        served.dry_run = True
    answer: dict[str, Any] = {"dry_run": True, "rows": rows, **detail}
    if served is not None:
        metering = Dependencies.of(query.request).metering
        now = datetime.now(UTC)
        org = served.principal.org_id
        used = metering.used_rows_now(org, now)
        quota = metering.quota(served.tier, used, now)
        remaining = quota["remaining"]
        quota["after"] = None if remaining is None else remaining - rows
        quota["within"] = remaining is None or rows <= remaining
        answer["tier"] = served.tier.name
        answer["quota"] = quota
    return JSONResponse(answer)


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
    rows: Iterator[dict[str, Any]], pool: Pool, conn: psycopg.Connection[Any]
) -> Iterator[dict[str, Any]]:
    try:
        yield from rows
    finally:
        pool.putconn(conn)


def _json_page(
    rows: Iterator[dict[str, Any]],
    limit: int,
    key: tuple[str, ...],
    binding: dict[str, Any],
    timezone: str | None,
    time_column: str,
) -> Iterator[bytes]:
    """`{"data": [...], "next_cursor": ...}` written row by row."""
    # chunks of ~64 KiB: each chunk of a sync body crosses a thread, so not one per row
    chunk = [b'{"data":[']
    size = 0
    last: dict[str, Any] | None = None
    more = False
    for count, row in enumerate(rows):
        if limit and count == limit:
            more = True
            break
        encoded = json.dumps(record(row, timezone, time_column)).encode()
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
