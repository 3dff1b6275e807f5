"""Query helpers over the read models, for the API: history by range, "as of" a past time,
time buckets (one surface over TimescaleDB's time_bucket and PostgreSQL's date_bin), latest
values from Redis, and a checksum of a table for comparing a rebuild with a live run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
import redis
from psycopg import sql
from psycopg.rows import dict_row

from projections.errors import ProjectionError
from projections.redis_sink import values_key
from projections.tables import TABLES, TableSpec

BUCKET_ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


def _time_series(table: str) -> TableSpec:
    spec = TABLES.get(table)
    if spec is None or spec.time_column is None:
        names = ", ".join(n for n, t in TABLES.items() if t.time_column)
        raise ProjectionError(f"{table!r} is not a time-series read model; choose one of {names}")
    return spec


def _where(spec: TableSpec, filters: Mapping[str, Any]) -> list[sql.Composable]:
    unknown = sorted(set(filters) - set(spec.column_names))
    if unknown:
        raise ProjectionError(f"{spec.name} has no column {', '.join(unknown)}")
    return [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in filters]


def has_timescale(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def bucket_sql(conn: psycopg.Connection[Any], column: str) -> sql.Composed:
    """`time_bucket(%s, column, origin)` with TimescaleDB, else `date_bin(%s, column, origin)`;
    both take the width as the first parameter and give the same buckets."""
    name = "time_bucket" if has_timescale(conn) else "date_bin"
    return sql.SQL("{}(%s, {}, %s)").format(sql.Identifier(name), sql.Identifier(column))


def history(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Rows of a time-series read model with time in [start, end), filtered by column values,
    in key order. With `as_of`, each key's latest revision recorded at or before that time
    (keys with no revision by then are absent): what the table said at `as_of`."""
    spec = _time_series(table)
    if end <= start:
        raise ProjectionError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    assert spec.time_column is not None
    time_column = sql.Identifier(spec.time_column)
    conditions = [
        sql.SQL("{c} >= %s AND {c} < %s").format(c=time_column),
        *_where(spec, filters),
    ]
    params: list[Any] = [start, end, *filters.values()]
    key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
    if as_of is None:
        query = sql.SQL("SELECT * FROM {t} WHERE {w} ORDER BY {k}").format(
            t=sql.Identifier(schema, spec.name), w=sql.SQL(" AND ").join(conditions), k=key
        )
    else:
        if not spec.revisions:
            raise ProjectionError(f"{spec.name} keeps no revisions to answer 'as of'")
        conditions.append(sql.SQL("recorded_at_utc <= %s"))
        params.append(as_of)
        query = sql.SQL(
            "SELECT DISTINCT ON ({k}) * FROM {t} WHERE {w} ORDER BY {k}, revision DESC"
        ).format(
            t=sql.Identifier(schema, spec.revisions_name),
            w=sql.SQL(" AND ").join(conditions),
            k=key,
        )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def bucketed(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    value_column: str,
    start: datetime,
    end: datetime,
    width: timedelta,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Average, minimum, maximum and count of `value_column` per time bucket of `width`
    (buckets aligned on 2000-01-01 UTC), over the current rows in [start, end)."""
    spec = _time_series(table)
    if value_column not in spec.column_names:
        raise ProjectionError(f"{spec.name} has no column {value_column}")
    if width <= timedelta(0):
        raise ProjectionError(f"bucket width {width} is not positive")
    assert spec.time_column is not None
    time_column = sql.Identifier(spec.time_column)
    conditions = [
        sql.SQL("{c} >= %s AND {c} < %s").format(c=time_column),
        *_where(spec, filters),
    ]
    value = sql.Identifier(value_column)
    query = sql.SQL(
        "SELECT {b} AS bucket_start_utc, avg({v}) AS avg, min({v}) AS min, max({v}) AS max,"
        " count(*) AS rows FROM {t} WHERE {w} GROUP BY 1 ORDER BY 1"
    ).format(
        b=bucket_sql(conn, spec.time_column),
        v=value,
        t=sql.Identifier(schema, spec.name),
        w=sql.SQL(" AND ").join(conditions),
    )
    params = [width, BUCKET_ORIGIN, start, end, *filters.values()]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def latest(client: redis.Redis, schema: str, hash_name: str, field: str) -> dict[str, Any] | None:
    """A latest value from Redis: hash 'lmp' field 'PJM|RT_5MIN|51288'; hash
    'PJM|RT_5MIN|51288' field 'twap_lmp_usd_per_mwh|HOUR' (KPIs); hash 'freshness' field
    'PJM|lmp_rt_5min'. Times come back as ISO-8601 strings."""
    raw = client.hget(values_key(schema, hash_name), field)
    if raw is None:
        return None
    value: dict[str, Any] = json.loads(raw)
    return value


def latest_all(client: redis.Redis, schema: str, hash_name: str) -> dict[str, dict[str, Any]]:
    """Every latest value of one hash, by field."""
    raw = client.hgetall(values_key(schema, hash_name))
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def table_checksum(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[int, str]:
    """(rows, md5 of every row in primary-key order): equal for equal tables."""
    spec_name = table.removesuffix("_revisions")
    spec = TABLES.get(spec_name)
    if spec is None:
        raise ProjectionError(f"no read-model table {table!r}")
    key = spec.revisions_key if table.endswith("_revisions") else spec.key
    order = sql.SQL(", ").join(sql.Identifier(c) for c in key)
    conn.execute("SET TIME ZONE 'UTC'")
    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY {o})), '') FROM {t} AS t"
    ).format(o=order, t=sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
