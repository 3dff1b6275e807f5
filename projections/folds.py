"""Pure folds: one decoded event in, one read-model row out, no I/O.

Each fold checks what the database and the API rely on (a known ISO and market, a UTC time
within the horizon, finite numbers) and raises FoldError naming the field and value otherwise,
so a poison event is dead-lettered by the projector instead of failing a whole batch.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from projections import tables
from projections.errors import FoldError
from projections.tables import TableSpec
from schemas.envelope import envelope
from schemas.vocabulary import ISOS, MARKET_DATASET, MARKETS

Event = Mapping[str, Any]
Row = tuple[Any, ...]
Fold = Callable[[Event, str], Row]

INTERVAL_MINUTES = frozenset({5, 15, 60})
WINDOW_KINDS = frozenset({"HOUR", "DAY"})
# Market data outside this horizon is a corrupt timestamp, not history.
HORIZON_START = datetime(2000, 1, 1, tzinfo=UTC)
HORIZON_END = datetime(2100, 1, 1, tzinfo=UTC)
_DEAD_LETTER_IDS = uuid.UUID("6d1f8c3e-36a4-5c55-9a43-2b8f5f0c6e10")


Check = Callable[[Event], None]  # raises FoldError, naming the field, for an event it refuses


def _fold(spec: TableSpec, *checks: Check) -> Fold:
    """The fold of an event that carries each column of `spec` under the column's name: the
    checks in order, then the row in the table's column order."""
    get = itemgetter(*spec.column_names)

    def fold(event: Event, topic: str) -> Row:
        for check in checks:
            check(event)
        try:
            return tuple(get(event))
        except KeyError as exc:
            raise FoldError("MISSING_FIELD", f"{spec.name}: event has no field {exc}") from None

    return fold


def _member(name: str, allowed: Collection[Any], code: str, says: str = "is unknown") -> Check:
    """Field `name` is one of `allowed`; else FoldError `code`: "<name> <value> <says>"."""

    def check(event: Event) -> None:
        if event.get(name) not in allowed:
            raise FoldError(code, f"{name} {event.get(name)!r} {says}")

    return check


def _one_of(name: str, allowed: Collection[Any], code: str) -> Check:
    return _member(name, allowed, code, f"is not one of {sorted(allowed)}")


def _time(name: str) -> Check:
    def check(event: Event) -> None:
        value = event.get(name)
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise FoldError("BAD_TIME", f"{name} {value!r} is not a UTC timestamp")
        if not HORIZON_START <= value < HORIZON_END:
            raise FoldError("BAD_TIME", f"{name} {value.isoformat()} is outside 2000..2100")

    return check


def _finite(name: str, nullable: bool = False) -> Check:
    def check(event: Event) -> None:
        value = event.get(name)
        if value is None and nullable:
            return
        if not isinstance(value, float | int) or not math.isfinite(value):
            raise FoldError("NON_FINITE_VALUE", f"{name} {value!r} is not a finite number")

    return check


def _text(name: str) -> Check:
    def check(event: Event) -> None:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise FoldError("EMPTY_FIELD", f"{name} {value!r} is empty")

    return check


def _revision(event: Event) -> None:
    value = event.get("revision")
    if not isinstance(value, int) or value < 0:
        raise FoldError("BAD_REVISION", f"revision {value!r} is not a non-negative integer")


def _window_ends_after_start(event: Event) -> None:
    if event["window_end_utc"] <= event["window_start_utc"]:
        raise FoldError(
            "BAD_WINDOW",
            f"window_end_utc {event['window_end_utc'].isoformat()} is not after"
            f" window_start_utc {event['window_start_utc'].isoformat()}",
        )


_iso = _one_of("iso", ISOS, "UNKNOWN_ISO")
_market = _one_of("market", MARKETS, "UNKNOWN_MARKET")
# the interval of a market-data event
_interval = (
    _time("interval_start_utc"),
    _one_of("interval_minutes", INTERVAL_MINUTES, "BAD_INTERVAL"),
)

# LmpPublished -> a row of `lmp` (and of `lmp_revisions`)
fold_lmp = _fold(
    tables.LMP,
    _iso,
    _market,
    _text("location_id"),
    *_interval,
    _finite("lmp_usd_per_mwh"),
    _finite("energy_usd_per_mwh", nullable=True),
    _finite("congestion_usd_per_mwh", nullable=True),
    _finite("loss_usd_per_mwh", nullable=True),
    _revision,
)


_ISO, _MARKET, _LOCATION, _START, _MINUTES, _PRICE, _ENERGY, _CONGESTION, _LOSS, _REVISION = (
    tables.LMP.index(c)
    for c in (
        "iso",
        "market",
        "location_id",
        "interval_start_utc",
        "interval_minutes",
        "lmp_usd_per_mwh",
        "energy_usd_per_mwh",
        "congestion_usd_per_mwh",
        "loss_usd_per_mwh",
        "revision",
    )
)


def lmp_row_fits(row: Row) -> bool:
    """Whether `fold_lmp` would accept the event `row` was read from, unchanged; for a row read
    straight from the contract's bytes (`projections.rowdecode`), whose value types the schema
    already guarantees. False sends the event down the full decode and fold, which names the
    fault: this is only the fast path's gate, never the judge."""
    energy, congestion, loss = row[_ENERGY], row[_CONGESTION], row[_LOSS]
    return bool(
        row[_ISO] in ISOS
        and row[_MARKET] in MARKETS
        and row[_LOCATION]
        and HORIZON_START <= row[_START] < HORIZON_END
        and row[_MINUTES] in INTERVAL_MINUTES
        and math.isfinite(row[_PRICE])
        and (energy is None or math.isfinite(energy))
        and (congestion is None or math.isfinite(congestion))
        and (loss is None or math.isfinite(loss))
        and row[_REVISION] >= 0
    )


# LoadPublished -> a row of `load` (and of `load_revisions`)
fold_load = _fold(
    tables.LOAD,
    _iso,
    _text("area_id"),
    _member("load_kind", ("ACTUAL", "FORECAST"), "BAD_LOAD_KIND"),
    *_interval,
    _finite("load_mw"),
    _revision,
)

# FuelMixPublished -> a row of `fuel_mix` (and of `fuel_mix_revisions`)
fold_fuel_mix = _fold(
    tables.FUEL_MIX,
    _iso,
    _text("fuel_type_native"),
    *_interval,
    _finite("generation_mw"),
    _revision,
)

# AncillaryPricePublished -> a row of `as_prices` (and of `as_prices_revisions`)
fold_as_price = _fold(
    tables.AS_PRICES,
    _iso,
    _market,
    _text("region_id"),
    _text("product_native"),
    *_interval,
    _finite("price_usd_per_mw_hour"),
    _revision,
)

# LocationDiscovered -> a row of `locations` (the earliest sighting stays)
fold_location = _fold(
    tables.LOCATIONS, _iso, _market, _text("location_id"), _time("first_interval_start_utc")
)

# KpiComputed -> a row of `kpis` (and of `kpis_revisions`)
fold_kpi = _fold(
    tables.KPIS,
    _iso,
    _market,
    _text("location_id"),
    _text("kpi"),
    _member("window_kind", WINDOW_KINDS, "BAD_WINDOW"),
    _time("window_start_utc"),
    _time("window_end_utc"),
    _window_ends_after_start,
    _finite("value", nullable=True),
    _revision,
)

# GapDetected -> a row of `gaps` (a later announcement of a gap replaces the earlier)
fold_gap = _fold(
    tables.GAPS, _iso, _text("gap_id"), _time("missing_start_utc"), _time("missing_end_utc")
)

# SeriesStatusChanged -> the row of `series_status` for its series (latest change wins)
fold_series_status = _fold(
    tables.SERIES_STATUS,
    _iso,
    _text("series_key"),
    _member("status", ("RETIRED", "ACTIVE"), "BAD_STATUS", "is not RETIRED or ACTIVE"),
    _time("last_interval_start_utc"),
)

# BackfillRequested -> a row of `backfill_requests`
fold_backfill_request = _fold(
    tables.BACKFILL_REQUESTS,
    _iso,
    _text("request_id"),
    _time("window_start_utc"),
    _time("window_end_utc"),
)

# BackfillCompleted -> a row of `backfill_outcomes`
fold_backfill_outcome = _fold(
    tables.BACKFILL_OUTCOMES,
    _iso,
    _text("request_id"),
    _member("outcome", ("FILLED", "EMPTY", "UNRECOVERABLE", "FAILED"), "BAD_OUTCOME"),
)

# ConnectorRunCompleted -> a row of `connector_runs`
fold_connector_run = _fold(
    tables.CONNECTOR_RUNS, _iso, _text("run_id"), _finite("publish_latency_seconds", nullable=True)
)

# FreshnessUpdated -> the row of `freshness` for its ISO dataset (the latest run wins)
fold_freshness = _fold(
    tables.FRESHNESS,
    _iso,
    _text("dataset"),
    _time("last_run_finished_utc"),
    _finite("arrival_latency_seconds", nullable=True),
    _finite("last_day_completeness_share", nullable=True),
)

_original_topic = _text("original_topic")


def fold_dead_letter(event: Event, topic: str) -> Row:
    """RecordDeadLettered -> a row of `dead_letters` (the original bytes stay on the topic;
    the row keeps their size, the reasons and where the record came from)."""
    value = event.get("original_value")
    if not isinstance(value, bytes):
        raise FoldError("MISSING_FIELD", "original_value is not bytes")
    _original_topic(event)
    return (
        event["original_topic"],
        event["original_partition"],
        event["original_offset"],
        event["iso"],
        event["dataset"],
        list(event["reason_codes"]),
        list(event["reasons"]),
        len(value),
        event["original_timestamp_utc"],
        topic,
        event["event_id"],
        event["occurred_at_utc"],
        event["recorded_at_utc"],
        event["source"],
    )


def dataset_of(event: Event | None, key: bytes | None, fallback: str) -> str:
    """The OptiBid dataset code an event (or, undecoded, its key `iso|market|...`) belongs to."""
    if event is not None:
        for field in ("source_dataset", "dataset"):
            if isinstance(event.get(field), str):
                return str(event[field])
        if event.get("market") in MARKET_DATASET:
            return MARKET_DATASET[event["market"]]
    parts = (key or b"").decode("utf-8", "replace").split("|")
    if len(parts) > 1:
        return MARKET_DATASET.get(parts[1], parts[1] if parts[1] else fallback)
    return fallback


def iso_of(event: Event | None, key: bytes | None) -> str:
    """The ISO of an event, else the first part of its key; UNKNOWN when neither names one."""
    if event is not None and event.get("iso") in ISOS:
        return str(event["iso"])
    first = (key or b"").decode("utf-8", "replace").split("|")[0].upper()
    return first if first in ISOS else "UNKNOWN"


def dead_letter(
    *,
    read_model: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    timestamp_utc: datetime | None,
    event: Event | None,
    error: FoldError,
    now: datetime,
) -> dict[str, Any]:
    """The RecordDeadLettered for an event the projector of `read_model` could not fold; its
    id is deterministic in the record's position, so a second rejection is the same event."""
    return {
        **envelope(
            event_id=str(uuid.uuid5(_DEAD_LETTER_IDS, f"{topic}|{partition}|{offset}")),
            occurred_at_utc=now,
            recorded_at_utc=now,
            source=f"projector:{read_model}",
        ),
        "iso": iso_of(event, key),
        "dataset": dataset_of(event, key, read_model),
        "reason_codes": [error.code],
        "reasons": [str(error)],
        "original_topic": topic,
        "original_partition": partition,
        "original_offset": offset,
        "original_key": key,
        "original_value": value,
        "original_timestamp_utc": timestamp_utc,
    }
