"""The read models: which topics each projector reads, the fold of each, its tables, and the
latest values it keeps in Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from projections.folds import (
    Fold,
    Row,
    fold_as_price,
    fold_backfill_outcome,
    fold_backfill_request,
    fold_connector_run,
    fold_dead_letter,
    fold_freshness,
    fold_fuel_mix,
    fold_gap,
    fold_kpi,
    fold_lmp,
    fold_load,
    fold_location,
    fold_series_status,
    lmp_row_fits,
)
from projections.tables import (
    AS_PRICES,
    BACKFILL_OUTCOMES,
    BACKFILL_REQUESTS,
    CONNECTOR_RUNS,
    DEAD_LETTERS,
    FRESHNESS,
    FUEL_MIX,
    GAPS,
    KPIS,
    LMP,
    LOAD,
    LOCATIONS,
    SERIES_STATUS,
    TableSpec,
)
from schemas.catalog import READ_MODELS, TopicCatalog, TopicSpec


@dataclass(frozen=True)
class TopicSource:
    """One topic a projector reads: the event it carries, its fold and the table it feeds."""

    topic: TopicSpec
    table: TableSpec
    fold: Fold
    # a fast gate for rows read straight from the contract's bytes (see projections.rowdecode):
    # True only where `fold` would accept the event and return that very row
    fits: Callable[[Row], bool] | None = None
    full_name: str = field(init=False)  # the event's Avro full name: the topic's value schema

    def __post_init__(self) -> None:
        object.__setattr__(self, "full_name", self.topic.value_schema)


@dataclass(frozen=True)
class Latest:
    """How a read model keeps latest values in Redis: rows of `table` go to the hash
    `hash_of(row)` under `field_of(row)`; of two values for one field, the one with the
    greater `order_of(row)` (time, then revision) stays."""

    table: TableSpec
    hash_of: Callable[[Row], str]
    field_of: Callable[[Row], str]
    order_of: Callable[[Row], tuple[int, ...]]
    # PostgreSQL query of the latest row per field, to rebuild the cache from the read model
    rebuild_sql: str


@dataclass(frozen=True)
class ReadModel:
    name: str
    tables: tuple[TableSpec, ...]
    sources: Callable[[TopicCatalog], list[TopicSource]]
    latest: Latest | None = None
    doc: str = ""
    time_series: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_series", all(t.time_column is not None for t in self.tables))


def _micros(value: object) -> int:
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} is not a datetime")
    return (value - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(table: TableSpec, *columns: str) -> Callable[[Row], tuple[object, ...]]:
    indices = [table.index(c) for c in columns]
    return lambda row: tuple(row[i] for i in indices)


def _joined(table: TableSpec, *columns: str) -> Callable[[Row], str]:
    get = _at(table, *columns)
    return lambda row: "|".join(str(v) for v in get(row))


def _constant(value: str) -> Callable[[Row], str]:
    return lambda row: value


def _lmp_order(row: Row) -> tuple[int, ...]:
    return (_micros(row[LMP.index("interval_start_utc")]), int(row[LMP.index("revision")]))


def _kpi_order(row: Row) -> tuple[int, ...]:
    return (_micros(row[KPIS.index("window_start_utc")]), int(row[KPIS.index("revision")]))


def _freshness_order(row: Row) -> tuple[int, ...]:
    return (_micros(row[FRESHNESS.index("last_run_finished_utc")]),)


def _single(
    topic: Callable[[TopicCatalog, str], TopicSpec],
    table: TableSpec,
    fold: Fold,
    doc: str,
    *,
    fits: Callable[[Row], bool] | None = None,
    latest: Latest | None = None,
) -> ReadModel:
    """The read model of one table, fed by the topic of the same name (`TopicCatalog.core` or
    `.ingest`)."""

    def sources(catalog: TopicCatalog) -> list[TopicSource]:
        return [TopicSource(topic(catalog, table.name), table, fold, fits)]

    return ReadModel(table.name, (table,), sources, latest, doc)


def _kpi_sources(catalog: TopicCatalog) -> list[TopicSource]:
    return [TopicSource(catalog.kpi(name), KPIS, fold_kpi) for name in ("lmp_hourly", "lmp_daily")]


def _gap_sources(catalog: TopicCatalog) -> list[TopicSource]:
    pairs = (
        ("gaps", GAPS, fold_gap),
        ("series_status", SERIES_STATUS, fold_series_status),
        ("backfill_requests", BACKFILL_REQUESTS, fold_backfill_request),
        ("backfill_completed", BACKFILL_OUTCOMES, fold_backfill_outcome),
    )
    return [TopicSource(catalog.ingest(name), table, fold) for name, table, fold in pairs]


def _dead_letter_sources(catalog: TopicCatalog) -> list[TopicSource]:
    """Every dead-letter topic of the stream workers and of the other projectors."""
    own = catalog.projection_dlq("dead_letters").name
    return [
        TopicSource(t, DEAD_LETTERS, fold_dead_letter)
        for t in catalog
        if t.value_schema.endswith(".RecordDeadLettered") and t.name != own
    ]


READ_MODEL_LIST = (
    _single(
        TopicCatalog.core,
        LMP,
        fold_lmp,
        "Canonical LMP per (iso, market, location_id, interval_start_utc), revisions kept.",
        fits=lmp_row_fits,
        latest=Latest(
            LMP,
            _constant("lmp"),
            _joined(LMP, "iso", "market", "location_id"),
            _lmp_order,
            "SELECT DISTINCT ON (iso, market, location_id) * FROM {table}"
            " ORDER BY iso, market, location_id, interval_start_utc DESC",
        ),
    ),
    _single(
        TopicCatalog.core,
        LOAD,
        fold_load,
        "Canonical load per (iso, area_id, load_kind, interval_start_utc), revisions kept.",
    ),
    _single(
        TopicCatalog.core,
        FUEL_MIX,
        fold_fuel_mix,
        "Generation by fuel per (iso, fuel_type_native, interval_start_utc), revisions kept.",
    ),
    _single(
        TopicCatalog.core,
        AS_PRICES,
        fold_as_price,
        "Ancillary service prices per (iso, market, region_id, product_native, interval).",
    ),
    _single(TopicCatalog.core, LOCATIONS, fold_location, "Every location seen, first sighting."),
    ReadModel(
        "kpis",
        (KPIS,),
        _kpi_sources,
        Latest(
            KPIS,
            _joined(KPIS, "iso", "market", "location_id"),
            _joined(KPIS, "kpi", "window_kind"),
            _kpi_order,
            "SELECT DISTINCT ON (iso, market, location_id, kpi, window_kind) * FROM {table}"
            " ORDER BY iso, market, location_id, kpi, window_kind, window_start_utc DESC",
        ),
        doc="LMP KPIs per location, market, KPI and window, revisions kept.",
    ),
    ReadModel(
        "gaps",
        (GAPS, SERIES_STATUS, BACKFILL_REQUESTS, BACKFILL_OUTCOMES),
        _gap_sources,
        doc="Gaps, the backfill requests for them and their outcomes; retired series.",
    ),
    ReadModel(
        "dead_letters",
        (DEAD_LETTERS,),
        _dead_letter_sources,
        doc="Every dead-lettered record (and the dead_letter_summary view).",
    ),
    _single(TopicCatalog.ingest, CONNECTOR_RUNS, fold_connector_run, "One row per connector run."),
    _single(
        TopicCatalog.ingest,
        FRESHNESS,
        fold_freshness,
        "Freshness per ISO dataset (latest connector run).",
        latest=Latest(
            FRESHNESS,
            _constant("freshness"),
            _joined(FRESHNESS, "iso", "dataset"),
            _freshness_order,
            "SELECT * FROM {table}",
        ),
    ),
)

READ_MODELS_BY_NAME = {m.name: m for m in READ_MODEL_LIST}
if tuple(READ_MODELS_BY_NAME) != READ_MODELS:
    raise RuntimeError("schemas.catalog.READ_MODELS must list the read models, in order")


def read_model(name: str) -> ReadModel:
    """The read model called `name`; the error lists those that exist."""
    try:
        return READ_MODELS_BY_NAME[name]
    except KeyError:
        known = ", ".join(READ_MODELS_BY_NAME)
        raise KeyError(f"no read model {name!r}; choose one of {known}") from None
