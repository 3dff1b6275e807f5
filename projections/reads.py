"""Read helpers for the query API: keyset-paged and streamed history (current or "as of" a
past time), resampling, the catalog of what the read models cover, and data-quality views.
All SQL the API needs lives here; it works the same on hypertables and native partitions,
and answers a resample from a continuous aggregate where one holds exactly the same figures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import dict_row

from projections.errors import ProjectionError
from projections.hypertables import ROLLUPS, Rollup, has_timescale
from projections.tables import TABLES, TableSpec

AGGREGATES = {"mean": "avg", "min": "min", "max": "max", "sum": "sum"}
BUCKET_ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
RESAMPLES = Counter(
    "optibid_resample_total",
    "Resamples answered, by read model and where from (a rollup, or the rows)",
    ["table", "source"],
)


def _rows(
    conn: psycopg.Connection[Any], query: sql.Composed, params: Params | None = None
) -> list[dict[str, Any]]:
    """Every row `query` answers, as dicts by column name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


@dataclass(frozen=True)
class Selection:
    """Which rows of a time-series read model: [start, end), column filters (a list means
    any of), and optionally the values as they were known at `as_of`."""

    table: str
    start: datetime
    end: datetime
    filters: Mapping[str, Any]
    as_of: datetime | None = None

    @property
    def spec(self) -> TableSpec:
        spec = TABLES.get(self.table)
        if spec is None or spec.time_column is None:
            names = ", ".join(n for n, t in TABLES.items() if t.time_column)
            raise ProjectionError(
                f"{self.table!r} is not a time-series read model; choose one of {names}"
            )
        return spec


def _conditions(sel: Selection) -> tuple[list[sql.Composable], list[Any]]:
    spec = sel.spec
    assert spec.time_column is not None
    unknown = sorted(set(sel.filters) - set(spec.column_names))
    if unknown:
        raise ProjectionError(f"{spec.name} has no column {', '.join(unknown)}")
    time_column = sql.Identifier(spec.time_column)
    conditions: list[sql.Composable] = [sql.SQL("{c} >= %s AND {c} < %s").format(c=time_column)]
    params: list[Any] = [sel.start, sel.end]
    _filter(sel.filters, conditions, params)
    return conditions, params


def _filter(
    filters: Mapping[str, Any], conditions: list[sql.Composable], params: list[Any]
) -> None:
    """Add one condition per filter: equal to a value, or any of a list."""
    for column, value in filters.items():
        if isinstance(value, (list, tuple)):
            conditions.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(list(value))
        else:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)


def _source(sel: Selection, conditions: list[sql.Composable], schema: str) -> sql.Composable:
    """The current table, or each key's latest revision recorded by `as_of`."""
    spec = sel.spec
    where = sql.SQL(" AND ").join(conditions)
    if sel.as_of is None:
        return sql.SQL("(SELECT * FROM {t} WHERE {w})").format(
            t=sql.Identifier(schema, spec.name), w=where
        )
    if not spec.revisions:
        raise ProjectionError(f"{spec.name} keeps no revisions to answer 'as of'")
    key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
    return sql.SQL(
        "(SELECT DISTINCT ON ({k}) * FROM {t} WHERE {w} AND recorded_at_utc <= %s"
        " ORDER BY {k}, revision DESC)"
    ).format(k=key, t=sql.Identifier(schema, spec.revisions_name), w=where)


def _query(
    sel: Selection, schema: str, columns: Sequence[str], after: Sequence[Any] | None, limit: int
) -> tuple[sql.Composed, list[Any]]:
    spec = sel.spec
    missing = [c for c in columns if c not in spec.column_names]
    if missing:
        raise ProjectionError(f"{spec.name} has no column {', '.join(missing)}")
    conditions, params = _conditions(sel)
    source = _source(sel, conditions, schema)
    if sel.as_of is not None:
        params.append(sel.as_of)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
    outer: list[sql.Composable] = []
    if after is not None:
        if len(after) != len(spec.key):
            raise ProjectionError("a cursor must name every key column")
        placeholders = sql.SQL(", ").join(sql.Placeholder() * len(after))
        outer.append(sql.SQL("({k}) > ({p})").format(k=key, p=placeholders))
        params.extend(after)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(outer) if outer else sql.SQL("")
    chosen = sql.SQL(", ").join(sql.Identifier(c) for c in dict.fromkeys([*spec.key, *columns]))
    query = sql.SQL("SELECT {c} FROM {s} AS r{w} ORDER BY {k}").format(
        c=chosen, s=source, w=where, k=key
    )
    if limit > 0:
        query = sql.SQL("{} LIMIT %s").format(query)
        params.append(limit)
    return query, params


def stream(
    conn: psycopg.Connection[Any],
    schema: str,
    sel: Selection,
    columns: Sequence[str],
    after: Sequence[Any] | None = None,
    limit: int = 0,
) -> Iterator[dict[str, Any]]:
    """The rows in key order (after the key `after`, at most `limit` when given), streamed:
    memory stays flat however many there are."""
    query, params = _query(sel, schema, columns, after, limit)
    with conn.cursor(row_factory=dict_row) as cur:
        # rows as the server sends them (libpq single-row mode): one round trip, no
        # server-side cursor, and only the rows in flight held in memory
        yield from cur.stream(query, params)


def count(
    conn: psycopg.Connection[Any],
    schema: str,
    sel: Selection,
    after: Sequence[Any] | None = None,
    group_by: Sequence[str] | None = None,
) -> int:
    """How many rows `stream` would give (after the key `after`), counted by the server: no
    row leaves it. With `group_by`: how many distinct series of those columns."""
    spec = sel.spec
    conditions, params = _conditions(sel)
    source = _source(sel, conditions, schema)
    if sel.as_of is not None:
        params.append(sel.as_of)
    where: sql.Composable = sql.SQL("")
    if after is not None:
        if len(after) != len(spec.key):
            raise ProjectionError("a cursor must name every key column")
        key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
        placeholders = sql.SQL(", ").join(sql.Placeholder() * len(after))
        where = sql.SQL(" WHERE ({k}) > ({p})").format(k=key, p=placeholders)
        params.extend(after)
    counted: sql.Composable = sql.SQL("*")
    if group_by:
        missing = [c for c in group_by if c not in spec.column_names]
        if missing:
            raise ProjectionError(f"{spec.name} has no column {', '.join(missing)}")
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in group_by)
        counted = (
            sql.SQL("DISTINCT ({})").format(columns)
            if len(group_by) > 1
            else sql.SQL("DISTINCT {}").format(columns)
        )
    query = sql.SQL("SELECT count({c}) FROM {s} AS r{w}").format(c=counted, s=source, w=where)
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row is not None else 0


def resampled(
    conn: psycopg.Connection[Any],
    schema: str,
    sel: Selection,
    value_column: str,
    width: timedelta | None,
    aggregate: str,
    group_by: Sequence[str],
    *,
    rollups: bool = True,
) -> list[dict[str, Any]]:
    """`aggregate` of `value_column` per series (`group_by`) and time bucket: fixed `width`
    aligned on 2000-01-01 UTC, or calendar months (UTC) when `width` is None.

    Where a rollup (continuous aggregate) covers the request (same table, column, series and
    filters, a width that is a whole number of its buckets, bounds on its buckets, no as-of)
    and no change to the raw rows in the range waits for its refresh, the buckets are summed
    from it; otherwise (or with `rollups` off) from the rows. Both give the same figures
    (sums and means up to floating-point rounding)."""
    spec = sel.spec
    assert spec.time_column is not None
    if value_column not in spec.column_names:
        raise ProjectionError(f"{spec.name} has no column {value_column}")
    if aggregate not in AGGREGATES:
        raise ProjectionError(f"unknown aggregate {aggregate!r}")
    timescale = has_timescale(conn)  # asked once per request
    rollup = rollup_for(sel, value_column, width, group_by) if rollups and timescale else None
    if rollup is not None and _exact(conn, schema, rollup, sel.start, sel.end):
        RESAMPLES.labels(spec.name, "rollup").inc()
        return _rows(
            conn, *_from_rollup(schema, rollup, sel, value_column, width, aggregate, group_by)
        )
    RESAMPLES.labels(spec.name, "rows").inc()
    bucketing = "time_bucket" if timescale else "date_bin"  # the same buckets either way
    return _rows(
        conn, *_from_rows(bucketing, schema, sel, value_column, width, aggregate, group_by)
    )


def _bucket_of(
    column: str, width: timedelta | None, function: str
) -> tuple[sql.Composable, list[Any]]:
    """The bucket of `column`: `function` (time_bucket or date_bin, which take the width first
    and give the same buckets) of `width` aligned on 2000-01-01, or the UTC calendar month."""
    if width is None:
        month = sql.SQL("date_trunc('month', {c} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
        return month.format(c=sql.Identifier(column)), []
    bucket = sql.SQL("{f}(%s, {c}, %s)").format(
        f=sql.Identifier(function), c=sql.Identifier(column)
    )
    return bucket, [width, BUCKET_ORIGIN]


def _bucketed(
    group_by: Sequence[str],
    bucket: sql.Composable,
    value: sql.Composable,
    value_column: str,
    intervals: sql.Composable,
    source: sql.Composable,
) -> sql.Composed:
    """The resample query's one shape: per series and bucket, the value and the intervals."""
    groups = sql.SQL(", ").join(sql.Identifier(c) for c in group_by)
    return sql.SQL(
        "SELECT {g}, {b} AS bucket_start_utc, {f} AS {v}, {i} AS intervals"
        " FROM {s} GROUP BY {g}, {n} ORDER BY {g}, {n}"
    ).format(
        g=groups,
        n=sql.Literal(len(group_by) + 1),
        b=bucket,
        f=value,
        v=sql.Identifier(value_column),
        i=intervals,
        s=source,
    )


def _from_rows(
    bucketing: str,
    schema: str,
    sel: Selection,
    value_column: str,
    width: timedelta | None,
    aggregate: str,
    group_by: Sequence[str],
) -> tuple[sql.Composed, list[Any]]:
    spec = sel.spec
    assert spec.time_column is not None
    conditions, params = _conditions(sel)
    source = _source(sel, conditions, schema)
    if sel.as_of is not None:
        params.append(sel.as_of)
    bucket, bucket_params = _bucket_of(spec.time_column, width, bucketing)
    value = sql.SQL("{f}({v})").format(
        f=sql.SQL(AGGREGATES[aggregate]), v=sql.Identifier(value_column)
    )
    query = _bucketed(
        group_by,
        bucket,
        value,
        value_column,
        sql.SQL("count(*)"),
        sql.SQL("{} AS r").format(source),
    )
    return query, [*bucket_params, *params]


# how each aggregate is taken again over a rollup's per-bucket figures
_REAGGREGATE = {
    "mean": "sum({sum}) / nullif(sum({count}), 0)",
    "sum": "sum({sum})",
    "min": "min({min})",
    "max": "max({max})",
}


def rollup_for(
    sel: Selection, value_column: str, width: timedelta | None, group_by: Sequence[str]
) -> Rollup | None:
    """The coarsest rollup that can answer this resample, if any (see `resampled`)."""
    if sel.as_of is not None:
        return None
    fitting = [
        r
        for r in ROLLUPS
        if r.table == sel.table
        and value_column in r.values
        and set(group_by) <= set(r.groups)
        and set(sel.filters) <= set(r.groups)
        and _covers(r, width)
        and _aligned(sel.start, r.width)
        and _aligned(sel.end, r.width)
    ]
    return max(fitting, key=lambda r: r.width, default=None)


def _covers(rollup: Rollup, width: timedelta | None) -> bool:
    """Whether buckets of `width` (None: months) are unions of the rollup's buckets."""
    if width is None:
        return rollup.width == timedelta(days=1)
    return width % rollup.width == timedelta(0)


def _aligned(at: datetime, width: timedelta) -> bool:
    return (at - BUCKET_ORIGIN) % width == timedelta(0)


def _from_rollup(
    schema: str,
    rollup: Rollup,
    sel: Selection,
    value_column: str,
    width: timedelta | None,
    aggregate: str,
    group_by: Sequence[str],
) -> tuple[sql.Composed, list[Any]]:
    conditions: list[sql.Composable] = [sql.SQL("bucket_start_utc >= %s AND bucket_start_utc < %s")]
    params: list[Any] = [sel.start, sel.end]
    _filter(sel.filters, conditions, params)
    bucket, bucket_params = _bucket_of("bucket_start_utc", width, "date_bin")
    parts = ("sum", "count", "min", "max")
    value = sql.SQL(_REAGGREGATE[aggregate]).format(
        **{part: sql.Identifier(f"{value_column}_{part}") for part in parts}
    )
    source = sql.SQL("{view} WHERE {w}").format(
        view=sql.Identifier(schema, rollup.name), w=sql.SQL(" AND ").join(conditions)
    )
    query = _bucketed(
        group_by, bucket, value, value_column, sql.SQL("sum(intervals)::bigint"), source
    )
    return query, [*bucket_params, *params]


def rollup_is_exact(
    conn: psycopg.Connection[Any], schema: str, rollup: Rollup, start: datetime, end: datetime
) -> bool:
    """Whether `rollup` answers [start, end) exactly now: it exists, and no change to the raw
    rows in the range below its watermark waits for a refresh (above the watermark the rollup
    aggregates the raw rows as it is read)."""
    return has_timescale(conn) and _exact(conn, schema, rollup, start, end)


def _exact(
    conn: psycopg.Connection[Any], schema: str, rollup: Rollup, start: datetime, end: datetime
) -> bool:
    """rollup_is_exact on a database known to have TimescaleDB."""
    row = conn.execute(
        EXACT_SQL, {"schema": schema, "view": rollup.name, "start": start, "end": end}
    ).fetchone()
    return bool(row and row[0])


# TimescaleDB's own catalog of continuous aggregates and of the raw changes each has still to
# fold in (tests/integration/test_hypertables.py checks that 2.28 has them as used here)
EXACT_SQL = """
WITH cagg AS (
    SELECT mat_hypertable_id AS mat, raw_hypertable_id AS raw,
           _timescaledb_functions.cagg_watermark(mat_hypertable_id) AS watermark,
           _timescaledb_functions.to_unix_microseconds(%(start)s::timestamptz) AS low,
           _timescaledb_functions.to_unix_microseconds(%(end)s::timestamptz) AS high
    FROM _timescaledb_catalog.continuous_agg
    WHERE user_view_schema = %(schema)s AND user_view_name = %(view)s
)
SELECT NOT EXISTS (
    SELECT 1 FROM cagg, _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log i
    WHERE i.hypertable_id = cagg.raw AND i.lowest_modified_value < least(cagg.high, cagg.watermark)
      AND i.greatest_modified_value >= cagg.low
) AND NOT EXISTS (
    SELECT 1 FROM cagg, _timescaledb_catalog.continuous_aggs_materialization_invalidation_log i
    WHERE i.materialization_id = cagg.mat
      AND i.lowest_modified_value < least(cagg.high, cagg.watermark)
      AND i.greatest_modified_value >= cagg.low
) AND EXISTS (SELECT 1 FROM cagg)
"""


def coverage(conn: psycopg.Connection[Any], schema: str) -> list[dict[str, Any]]:
    """Per ISO and dataset: the time range and row count each time-series read model holds."""
    parts = []
    for name, group in (
        ("lmp", "market"),
        ("load", "load_kind"),
        ("fuel_mix", None),
        ("as_prices", "market"),
    ):
        spec = TABLES[name]
        assert spec.time_column is not None
        parts.append(
            sql.SQL(
                "SELECT {n} AS dataset, iso, {g} AS series, min({t}) AS start_utc,"
                " max({t} + make_interval(mins => interval_minutes)) AS end_utc,"
                " count(*) AS rows FROM {tab} GROUP BY iso, 3"
            ).format(
                n=sql.Literal(name),
                g=sql.Identifier(group) if group else sql.Literal(""),
                t=sql.Identifier(spec.time_column),
                tab=sql.Identifier(schema, name),
            )
        )
    query = sql.SQL(" UNION ALL ").join(parts) + sql.SQL(" ORDER BY 2, 1, 3")
    return _rows(conn, query)


def locations(
    conn: psycopg.Connection[Any], schema: str, iso: str | None, location_type: str | None
) -> list[dict[str, Any]]:
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    if iso:
        conditions.append(sql.SQL("iso = %s"))
        params.append(iso)
    if location_type:
        conditions.append(sql.SQL("location_type = %s"))
        params.append(location_type)
    query = sql.SQL(
        "SELECT iso, market, location_id, location_name, location_type,"
        " first_interval_start_utc FROM {t} WHERE {w} ORDER BY iso, location_id, market"
    ).format(t=sql.Identifier(schema, "locations"), w=sql.SQL(" AND ").join(conditions))
    return _rows(conn, query, params)


def table_rows(
    conn: psycopg.Connection[Any], schema: str, table: str, iso: str | None = None
) -> list[dict[str, Any]]:
    """Every row of a small read model (freshness), optionally of one ISO, in key order."""
    spec = TABLES[table]
    key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
    where = sql.SQL("WHERE iso = %s") if iso else sql.SQL("")
    query = sql.SQL("SELECT * FROM {t} {w} ORDER BY {k}").format(
        t=sql.Identifier(schema, table), w=where, k=key
    )
    return _rows(conn, query, [iso] if iso else [])


def gaps(
    conn: psycopg.Connection[Any], schema: str, status: str | None, iso: str | None
) -> list[dict[str, Any]]:
    """Gaps with their status: closed once a backfill covering them was FILLED (or EMPTY: the
    ISO has nothing to give), unrecoverable once one gave up, open otherwise."""
    query = sql.SQL(
        """
        WITH outcome AS (
            SELECT g.gap_id,
                   bool_or(o.outcome IN ('FILLED', 'EMPTY')) AS closed,
                   bool_or(o.outcome = 'UNRECOVERABLE') AS given_up,
                   max(o.reason) FILTER (WHERE o.outcome = 'UNRECOVERABLE') AS reason
            FROM {gaps} g
            JOIN {requests} r ON g.gap_id = ANY(r.gap_ids)
            JOIN {outcomes} o ON o.request_id = r.request_id
            GROUP BY g.gap_id
        )
        SELECT * FROM (
            SELECT g.gap_id, g.iso, g.dataset, g.series_key, g.missing_start_utc,
                   g.missing_end_utc, g.interval_minutes, g.missing_intervals,
                   CASE WHEN o.closed THEN 'closed'
                        WHEN o.given_up THEN 'unrecoverable'
                        ELSE 'open' END AS status,
                   o.reason
            FROM {gaps} g LEFT JOIN outcome o USING (gap_id)
        ) s
        WHERE (%(status)s::text IS NULL OR status = %(status)s)
          AND (%(iso)s::text IS NULL OR iso = %(iso)s)
        ORDER BY missing_start_utc, gap_id
        """
    ).format(
        gaps=sql.Identifier(schema, "gaps"),
        requests=sql.Identifier(schema, "backfill_requests"),
        outcomes=sql.Identifier(schema, "backfill_outcomes"),
    )
    return _rows(conn, query, {"status": status, "iso": iso})


def series_status(
    conn: psycopg.Connection[Any], schema: str, status: str | None, iso: str | None
) -> list[dict[str, Any]]:
    """The series the stream worker retired or saw come back, latest change per series."""
    query = sql.SQL(
        "SELECT iso, dataset, series_key, status, last_interval_start_utc, interval_minutes,"
        " retirement_age_seconds, occurred_at_utc AS changed_at_utc FROM {t}"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        "   AND (%(iso)s::text IS NULL OR iso = %(iso)s)"
        " ORDER BY iso, dataset, series_key"
    ).format(t=sql.Identifier(schema, "series_status"))
    return _rows(conn, query, {"status": status, "iso": iso})


def dead_letter_counts(
    conn: psycopg.Connection[Any], schema: str, iso: str | None
) -> list[dict[str, Any]]:
    """Dead letters by ISO, dataset and reason code."""
    query = sql.SQL(
        "SELECT iso, dataset, reason_code, count(*) AS count,"
        " max(occurred_at_utc) AS latest_utc"
        " FROM {t}, unnest(reason_codes) AS reason_code"
        " WHERE (%(iso)s::text IS NULL OR iso = %(iso)s)"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC"
    ).format(t=sql.Identifier(schema, "dead_letters"))
    return _rows(conn, query, {"iso": iso})
