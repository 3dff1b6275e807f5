"""The read-model tables as the projectors see them: columns, natural key, revision guard.

The DDL lives in the SQL migrations (`projections/migrations/`); these specs say how rows are
staged and upserted, and a test holds the two together. Column names are the canonical field
names of the events, so the API serves them under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# PostgreSQL type of each column, as COPY's binary format needs it.
PgType = Literal["text", "text[]", "timestamptz", "int4", "int8", "float8"]

ENVELOPE: tuple[tuple[str, PgType], ...] = (
    ("event_id", "text"),
    ("occurred_at_utc", "timestamptz"),
    ("recorded_at_utc", "timestamptz"),
    ("source", "text"),
)


@dataclass(frozen=True)
class TableSpec:
    """One read-model table.

    `key` is the natural key (the primary key, which includes `time_column` when the table is
    a time series partitioned by it). `guard` names the column that orders versions of a key:
    an incoming row replaces the stored one only when its guard value is strictly greater
    (`guard_prefers="higher"`) or strictly smaller (`"lower"`); with no guard the first row
    of a key stays. `revisions` tables keep every (key, revision) with when it was recorded,
    for "as of" queries: the current one in the table, the others in `superseded_name`, and
    both together in the view `revisions_name`.
    """

    name: str
    columns: tuple[tuple[str, PgType], ...]
    key: tuple[str, ...]
    guard: str | None = None
    guard_prefers: Literal["higher", "lower"] = "higher"
    time_column: str | None = None
    revisions: bool = False
    # revisions tables: the column that orders two rows of one key at the same revision (the
    # higher stays, NULL lowest), so which one is current never depends on arrival order
    tiebreak: str | None = None

    def __post_init__(self) -> None:
        names = self.column_names
        wanted = (*self.key, self.guard, self.time_column, self.tiebreak)
        missing = [c for c in wanted if c and c not in names]
        if missing:
            raise ValueError(f"table {self.name}: {missing} are not among its columns")
        if self.time_column and self.time_column not in self.key:
            raise ValueError(f"table {self.name}: the partition key must be in the primary key")
        if self.revisions and self.guard != "revision":
            raise ValueError(f"table {self.name}: a revisions table needs the revision guard")
        if self.tiebreak and not self.revisions:
            raise ValueError(f"table {self.name}: a tiebreak orders revisions; it has none")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def types(self) -> tuple[PgType, ...]:
        return tuple(pg_type for _, pg_type in self.columns)

    @property
    def revisions_name(self) -> str:
        """The view of every revision: the table's current ones and the superseded ones."""
        return f"{self.name}_revisions"

    @property
    def superseded_name(self) -> str:
        """The table of every revision not current (replaced, or older when it arrived)."""
        return f"{self.name}_superseded"

    @property
    def revisions_key(self) -> tuple[str, ...]:
        return (*self.key, "revision")

    def index(self, column: str) -> int:
        return self.column_names.index(column)


def _market_data(
    name: str,
    series: tuple[tuple[str, PgType], ...],
    values: tuple[tuple[str, PgType], ...],
    *,
    supersedes: bool = False,
    tiebreak: str | None = None,
) -> TableSpec:
    """A market-data table: one row per series (`series`, the leading key columns) and
    interval at its current revision, every revision kept. `series` and `values` (the columns
    after the interval) are in column order; `supersedes` adds the revision a row replaces."""
    return TableSpec(
        name,
        (
            *series,
            ("interval_start_utc", "timestamptz"),
            ("interval_minutes", "int4"),
            *values,
            ("revision", "int8"),
            *((("supersedes_revision", "int8"),) if supersedes else ()),
            ("run_id", "text"),
            ("source_dataset", "text"),
            *ENVELOPE,
        ),
        key=(*(column for column, _ in series), "interval_start_utc"),
        guard="revision",
        time_column="interval_start_utc",
        revisions=True,
        tiebreak=tiebreak,
    )


LMP = _market_data(
    "lmp",
    (("iso", "text"), ("market", "text"), ("location_id", "text")),
    (
        ("location_name", "text"),
        ("location_type", "text"),
        ("lmp_usd_per_mwh", "float8"),
        ("energy_usd_per_mwh", "float8"),
        ("congestion_usd_per_mwh", "float8"),
        ("loss_usd_per_mwh", "float8"),
    ),
    supersedes=True,
)

LOAD = _market_data(
    "load",
    (("iso", "text"), ("area_id", "text"), ("load_kind", "text")),
    (("area_type", "text"), ("load_mw", "float8"), ("forecast_made_at_utc", "timestamptz")),
    # forecasts of one interval made at different times can carry the same revision (the
    # ISO's publication); the latest forecast is the current one
    tiebreak="forecast_made_at_utc",
)

FUEL_MIX = _market_data(
    "fuel_mix",
    (("iso", "text"), ("fuel_type_native", "text")),
    (("fuel_type", "text"), ("generation_mw", "float8")),
)

AS_PRICES = _market_data(
    "as_prices",
    (("iso", "text"), ("market", "text"), ("region_id", "text"), ("product_native", "text")),
    (("product", "text"), ("price_usd_per_mw_hour", "float8")),
)

LOCATIONS = TableSpec(
    "locations",
    (
        ("iso", "text"),
        ("market", "text"),
        ("location_id", "text"),
        ("location_name", "text"),
        ("location_type", "text"),
        ("first_interval_start_utc", "timestamptz"),
        ("source_dataset", "text"),
        *ENVELOPE,
    ),
    key=("iso", "market", "location_id"),
    guard="first_interval_start_utc",
    guard_prefers="lower",  # the earliest sighting is the first one
)

KPIS = TableSpec(
    "kpis",
    (
        ("iso", "text"),
        ("market", "text"),
        ("location_id", "text"),
        ("kpi", "text"),
        ("window_kind", "text"),
        ("window_start_utc", "timestamptz"),
        ("window_end_utc", "timestamptz"),
        ("value", "float8"),
        ("unit", "text"),
        ("intervals_received", "int4"),
        ("intervals_expected", "int4"),
        ("revision", "int8"),
        *ENVELOPE,
    ),
    key=("iso", "market", "location_id", "kpi", "window_kind", "window_start_utc"),
    guard="revision",
    time_column="window_start_utc",
    revisions=True,
)

GAPS = TableSpec(
    "gaps",
    (
        ("gap_id", "text"),
        ("iso", "text"),
        ("dataset", "text"),
        ("series_key", "text"),
        ("missing_start_utc", "timestamptz"),
        ("missing_end_utc", "timestamptz"),
        ("interval_minutes", "int4"),
        ("missing_intervals", "int4"),
        ("lateness_seconds", "int8"),
        *ENVELOPE,
    ),
    key=("gap_id",),
    guard="occurred_at_utc",  # a later announcement of the same gap replaces the earlier
)

SERIES_STATUS = TableSpec(
    "series_status",
    (
        ("iso", "text"),
        ("dataset", "text"),
        ("series_key", "text"),
        ("status", "text"),
        ("last_interval_start_utc", "timestamptz"),
        ("interval_minutes", "int4"),
        ("retirement_age_seconds", "int8"),
        *ENVELOPE,
    ),
    key=("iso", "dataset", "series_key"),
    guard="occurred_at_utc",  # the latest change of a series (in event time) wins
)

# what a backfill request and its outcome share: the request and the window it asks for
_BACKFILL: tuple[tuple[str, PgType], ...] = (
    ("request_id", "text"),
    ("iso", "text"),
    ("dataset", "text"),
    ("window_start_utc", "timestamptz"),
    ("window_end_utc", "timestamptz"),
)

BACKFILL_REQUESTS = TableSpec(
    "backfill_requests",
    (
        *_BACKFILL,
        ("gap_ids", "text[]"),
        ("attempt", "int4"),
        ("reason", "text"),
        *ENVELOPE,
    ),
    key=("request_id",),
)

BACKFILL_OUTCOMES = TableSpec(
    "backfill_outcomes",
    (
        *_BACKFILL,
        ("outcome", "text"),
        ("records_published", "int8"),
        ("reason", "text"),
        *ENVELOPE,
    ),
    key=("request_id",),
    guard="occurred_at_utc",
)

DEAD_LETTERS = TableSpec(
    "dead_letters",
    (
        ("original_topic", "text"),
        ("original_partition", "int4"),
        ("original_offset", "int8"),
        ("iso", "text"),
        ("dataset", "text"),
        ("reason_codes", "text[]"),
        ("reasons", "text[]"),
        ("original_value_bytes", "int4"),
        ("original_timestamp_utc", "timestamptz"),
        ("dead_letter_topic", "text"),
        *ENVELOPE,
    ),
    key=("original_topic", "original_partition", "original_offset"),
)

CONNECTOR_RUNS = TableSpec(
    "connector_runs",
    (
        ("run_id", "text"),
        ("iso", "text"),
        ("dataset", "text"),
        ("mode", "text"),
        ("started_at_utc", "timestamptz"),
        ("finished_at_utc", "timestamptz"),
        ("rows_published", "int8"),
        ("first_interval_start_utc", "timestamptz"),
        ("last_interval_end_utc", "timestamptz"),
        ("publish_latency_seconds", "float8"),
        ("error_count", "int4"),
        ("errors", "text[]"),
        *ENVELOPE,
    ),
    key=("run_id",),
)

FRESHNESS = TableSpec(
    "freshness",
    (
        ("iso", "text"),
        ("dataset", "text"),
        ("latest_interval_end_utc", "timestamptz"),
        ("arrival_latency_seconds", "float8"),
        ("last_run_id", "text"),
        ("last_run_finished_utc", "timestamptz"),
        ("rows_last_run", "int8"),
        ("errors_last_run", "int4"),
        ("last_day_completeness_share", "float8"),
        *ENVELOPE,
    ),
    key=("iso", "dataset"),
    guard="last_run_finished_utc",
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        LMP,
        LOAD,
        FUEL_MIX,
        AS_PRICES,
        LOCATIONS,
        KPIS,
        GAPS,
        SERIES_STATUS,
        BACKFILL_REQUESTS,
        BACKFILL_OUTCOMES,
        DEAD_LETTERS,
        CONNECTOR_RUNS,
        FRESHNESS,
    )
}
