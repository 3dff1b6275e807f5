"""Query helpers over the read models: history by range or "as of" a past time (a list, over
`projections.reads`, which the API streams and pages), latest values from Redis, and a
checksum of a table for comparing a rebuild with a live run."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import psycopg
import redis
from psycopg import sql

from projections.errors import ProjectionError
from projections.reads import Selection, stream
from projections.redis_sink import values_key


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
    if end <= start:
        raise ProjectionError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    selection = Selection(table, start, end, filters, as_of)
    return list(stream(conn, schema, selection, selection.spec.column_names))


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
    """(rows, digest) of a read-model table or view, equal for equal contents in any physical
    order: each row's text (times in UTC) hashed with MD5, the hashes' two 60-bit halves summed
    as numerics (no sort, no text that grows with the table, so constant memory however many
    rows), the digest an MD5 of the count and both sums; "" for an empty table."""
    conn.execute("SET TIME ZONE 'UTC'")
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 15))::bit(60)::int8::numeric), 0),"
        " coalesce(sum(('x' || substr(h, 16, 15))::bit(60)::int8::numeric), 0)"
        " FROM (SELECT md5(t::text) AS h FROM {} AS t) AS rows"
    ).format(sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    assert row is not None
    rows, first, second = int(row[0]), row[1], row[2]
    digest = hashlib.md5(f"{rows}:{first}:{second}".encode(), usedforsecurity=False)
    return rows, digest.hexdigest() if rows else ""
