"""What the read models get from TimescaleDB where the database has it: chunk intervals chosen
from the data's volume, compression of chunks older than a setting, and continuous aggregates
(hourly and daily rollups of LMP and load) that `projections.reads.resampled` answers from
where they are exact. Without the extension every function here is a no-op and the read models
are plain monthly partitions (migration 0001); the query helpers give the same answers on both.

Everything is idempotent: `configure` runs at the end of every `migrate` (in its transaction)
and again when a projector starts, so a changed setting takes effect on the next start.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from projections.tables import TABLES, TableSpec

MIB = 1024 * 1024
# The steps a chosen chunk interval is rounded down to: whole hours up to a day, whole days
# above; between them every bound the planner can exclude chunks by stays aligned.
CHUNK_STEPS: tuple[timedelta, ...] = tuple(
    [timedelta(hours=h) for h in (1, 2, 3, 4, 6, 8, 12)]
    + [timedelta(days=d) for d in (1, 2, 4, 7, 14, 28)]
)


# a row costs more than its tuple: header, line pointer, page fill and its primary-key entry
ROW_OVERHEAD = 1.5
SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class Options:
    """The settings TimescaleDB's side of the read models follows (see optibid.settings)."""

    compress_after: timedelta | None = timedelta(days=7)  # None: no compression
    chunk_target_bytes: int = 256 * MIB
    refresh_every: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Rollup:
    """A continuous aggregate: per series (`groups`) and `width` bucket of `table`, for each of
    `values` its sum, non-null count, min and max, and the rows (`intervals`) in the bucket."""

    table: str
    width: timedelta
    groups: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.table}_{'hourly' if self.width == timedelta(hours=1) else 'daily'}"

    @property
    def time_column(self) -> str:
        column = TABLES[self.table].time_column
        assert column is not None
        return column

    def definition(self, schema: str) -> sql.Composed:
        parts: list[sql.Composable] = [sql.Identifier(g) for g in self.groups]
        parts.append(
            sql.SQL("time_bucket({w}, {t}) AS bucket_start_utc").format(
                w=sql.Literal(self.width), t=sql.Identifier(self.time_column)
            )
        )
        parts.append(sql.SQL("count(*) AS intervals"))
        for value in self.values:
            v = sql.Identifier(value)
            for function in ("sum", "count", "min", "max"):
                parts.append(
                    sql.SQL("{f}({v}) AS {a}").format(
                        f=sql.SQL(function), v=v, a=sql.Identifier(f"{value}_{function}")
                    )
                )
        return sql.SQL(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {view} WITH (timescaledb.continuous,"
            " timescaledb.materialized_only = false) AS SELECT {parts} FROM {table}"
            " GROUP BY {groups} WITH NO DATA"
        ).format(
            view=sql.Identifier(schema, self.name),
            parts=sql.SQL(", ").join(parts),
            table=sql.Identifier(schema, self.table),
            groups=sql.SQL(", ").join(sql.Literal(i) for i in range(1, len(self.groups) + 2)),
        )


_LMP_VALUES = (
    "lmp_usd_per_mwh",
    "energy_usd_per_mwh",
    "congestion_usd_per_mwh",
    "loss_usd_per_mwh",
)
ROLLUPS: tuple[Rollup, ...] = tuple(
    Rollup(table, width, groups, values)
    for table, groups, values in (
        ("lmp", ("iso", "market", "location_id"), _LMP_VALUES),
        ("load", ("iso", "area_id", "load_kind"), ("load_mw",)),
    )
    for width in (timedelta(hours=1), timedelta(days=1))
)


def has_timescale(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def hypertables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """The hypertables of `schema` (none without TimescaleDB)."""
    if not has_timescale(conn):
        return []
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = %s ORDER BY 1",
        (schema,),
    )
    return [str(name) for (name,) in rows]


def spec_of(table: str) -> TableSpec:
    """The read model a hypertable belongs to (`lmp` for `lmp_superseded` too)."""
    return TABLES[table.removesuffix("_superseded")]


def compression_columns(table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(segment by, order by) of a hypertable: its series key, and time then revision."""
    spec = spec_of(table)
    assert spec.time_column is not None
    order = [spec.time_column]
    if table.endswith("_superseded"):
        order.append("revision")
    segments = tuple(c for c in spec.key if c not in order)
    return segments, tuple(order)


def choose_chunk_interval(
    rows_per_day: float, bytes_per_row: float, target_bytes: int
) -> timedelta:
    """The chunk interval that keeps one chunk near `target_bytes` (TimescaleDB's advice: the
    recent chunks and their indexes fit in about a quarter of the server's memory), rounded
    down to a step of CHUNK_STEPS; an hour at least, four weeks at most."""
    if rows_per_day <= 0 or bytes_per_row <= 0:
        return CHUNK_STEPS[-1]
    days = target_bytes / (rows_per_day * bytes_per_row)
    fitting = [step for step in CHUNK_STEPS if step <= timedelta(days=days)]
    return fitting[-1] if fitting else CHUNK_STEPS[0]


@dataclass(frozen=True)
class Volume:
    """A hypertable's measured volume: rows in its latest day of data, bytes per row."""

    rows_per_day: int
    bytes_per_row: float


def measure(conn: psycopg.Connection[Any], schema: str, table: str) -> Volume | None:
    """The table's rows in its latest day of data (index range scans; under a day of data, its
    rate so far over an hour at least) and its bytes per row; None without rows."""
    spec = spec_of(table)
    assert spec.time_column is not None
    t = sql.Identifier(spec.time_column)
    relation = sql.Identifier(schema, table)
    row = conn.execute(sql.SQL("SELECT min({t}), max({t}) FROM {r}").format(t=t, r=relation))
    earliest, latest = row.fetchone() or (None, None)
    if latest is None:
        return None
    if latest - earliest >= timedelta(days=1):
        since, span, bound = latest - timedelta(days=1), timedelta(days=1), sql.SQL(">")
    else:  # under a day of data: its rate so far, over an hour at least
        since, span, bound = earliest, max(latest - earliest, timedelta(hours=1)), sql.SQL(">=")
    counted = conn.execute(
        sql.SQL("SELECT count(*) FROM {r} WHERE {t} {b} %s").format(t=t, r=relation, b=bound),
        (since,),
    ).fetchone()
    # bytes per row from the recent rows themselves: sizes over the whole table would mix in
    # compressed chunks (10x smaller) and row counts of chunks not analysed yet
    sampled = conn.execute(
        sql.SQL(
            "SELECT avg(pg_column_size(s.*)) FROM (SELECT * FROM {r} WHERE {t} >= %s"
            " ORDER BY {t} DESC LIMIT %s) AS s"
        ).format(t=t, r=relation),
        (since, SAMPLE_ROWS),
    ).fetchone()
    assert counted is not None
    assert sampled is not None
    rows = int(counted[0])
    tuple_bytes = float(sampled[0] or 0)
    return Volume(
        rows_per_day=round(rows * (timedelta(days=1) / span)),
        bytes_per_row=tuple_bytes * ROW_OVERHEAD,
    )


def tune_chunks(
    conn: psycopg.Connection[Any],
    schema: str,
    target_bytes: int,
    tables: Iterable[str] | None = None,
) -> dict[str, timedelta]:
    """Set each hypertable's interval (of `tables`, default all) for the chunks still to come
    from its measured volume; returns the intervals changed. Existing chunks keep theirs."""
    changed: dict[str, timedelta] = {}
    wanted = None if tables is None else set(tables)
    for table in hypertables(conn, schema):
        if wanted is not None and table not in wanted:
            continue
        volume = measure(conn, schema, table)
        if volume is None:
            continue
        chosen = choose_chunk_interval(volume.rows_per_day, volume.bytes_per_row, target_bytes)
        if chosen != chunk_interval(conn, schema, table):
            conn.execute(
                "SELECT set_chunk_time_interval(%s::regclass, %s::interval)",
                (f'"{schema}"."{table}"', chosen),
            )
            changed[table] = chosen
    return changed


def chunk_interval(conn: psycopg.Connection[Any], schema: str, table: str) -> timedelta | None:
    row = conn.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_schema = %s AND hypertable_name = %s AND dimension_number = 1",
        (schema, table),
    ).fetchone()
    return row[0] if row else None


def configure(conn: psycopg.Connection[Any], schema: str, options: Options | None = None) -> None:
    """Compression (with its policy), the rollups and their refresh policies, and chunk
    intervals, as `options` say; nothing without TimescaleDB."""
    options = options or Options()
    tables = hypertables(conn, schema)
    if not tables:
        return
    for table in tables:
        _compression(conn, schema, table, options.compress_after)
    for rollup in ROLLUPS:
        conn.execute(rollup.definition(schema))
        _refresh_policy(conn, schema, rollup, options.refresh_every)
    tune_chunks(conn, schema, options.chunk_target_bytes)


def _compression(
    conn: psycopg.Connection[Any], schema: str, table: str, after: timedelta | None
) -> None:
    relation = f'"{schema}"."{table}"'
    enabled = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = %s AND hypertable_name = %s",
        (schema, table),
    ).fetchone()
    if not (enabled and enabled[0]):
        segments, order = compression_columns(table)
        conn.execute(
            sql.SQL(
                "ALTER TABLE {t} SET (timescaledb.compress, timescaledb.compress_segmentby = {s},"
                " timescaledb.compress_orderby = {o})"
            ).format(
                t=sql.Identifier(schema, table),
                s=sql.Literal(", ".join(segments)),
                o=sql.Literal(", ".join(f"{c} DESC" for c in order)),
            )
        )
    current = _job_config(conn, "policy_compression", schema, table)
    wanted = None if after is None else after
    if current is not None and current.get("compress_after") == _interval_text(conn, wanted):
        return
    conn.execute("SELECT remove_compression_policy(%s::regclass, if_exists => true)", (relation,))
    if wanted is not None:
        conn.execute(
            "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval)",
            (relation, wanted),
        )


def _refresh_policy(
    conn: psycopg.Connection[Any], schema: str, rollup: Rollup, every: timedelta
) -> None:
    job = conn.execute(
        "SELECT job_id, schedule_interval FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        " AND hypertable_schema = %s AND hypertable_name = %s",
        (schema, rollup.name),
    ).fetchone()
    if job is not None:
        if job[1] != every:  # a changed setting: the same policy, run as often as it says
            conn.execute("SELECT alter_job(%s, schedule_interval => %s::interval)", (job[0], every))
        return
    # start_offset NULL: a late revision however old is folded in by the next run (only the
    # invalidated buckets are recomputed); end_offset one bucket: the open bucket stays raw
    conn.execute(
        "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => NULL,"
        " end_offset => %s::interval, schedule_interval => %s::interval)",
        (f'"{schema}"."{rollup.name}"', rollup.width, every),
    )


def _job_config(
    conn: psycopg.Connection[Any], proc: str, schema: str, table: str
) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT config FROM timescaledb_information.jobs WHERE proc_name = %s"
        " AND hypertable_schema = %s AND hypertable_name = %s",
        (proc, schema, table),
    ).fetchone()
    return dict(row[0]) if row and row[0] is not None else None


def _interval_text(conn: psycopg.Connection[Any], value: timedelta | None) -> str | None:
    """An interval as jobs' config spells it ('7 days')."""
    if value is None:
        return None
    row = conn.execute("SELECT %s::interval::text", (value,)).fetchone()
    assert row is not None
    return str(row[0])


def refresh(conn: psycopg.Connection[Any], schema: str, rollup: Rollup, wait_s: float = 60) -> None:
    """Refresh `rollup` over all history now (only invalidated buckets are recomputed); waits
    out a refresh its policy job runs at the same time. `conn` must be in autocommit."""
    deadline = time.monotonic() + wait_s
    statement = sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(
        sql.Literal(f'"{schema}"."{rollup.name}"')
    )
    while True:
        try:
            conn.execute(statement)
            return
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
