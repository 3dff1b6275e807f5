"""Pure folds: one decoded event in, one read-model row out, no I/O.

Each fold checks what the database and the API rely on (a known ISO and market, a UTC time
within the horizon, finite numbers) and raises FoldError naming the field and value otherwise,
so a poison event is dead-lettered by the projector instead of failing a whole batch.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from projections.errors import FoldError
from projections.tables import (
    AS_PRICES,
    BACKFILL_OUTCOMES,
    BACKFILL_REQUESTS,
    CONNECTOR_RUNS,
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


def _getter(spec: TableSpec) -> Callable[[Event], Row]:
    get = itemgetter(*spec.column_names)

    def row(event: Event) -> Row:
        try:
            return tuple(get(event))
        except KeyError as exc:
            raise FoldError("MISSING_FIELD", f"{spec.name}: event has no field {exc}") from None

    return row


def _iso(value: Any) -> None:
    if value not in ISOS:
        raise FoldError("UNKNOWN_ISO", f"iso {value!r} is not one of {sorted(ISOS)}")


def _market(value: Any) -> None:
    if value not in MARKETS:
        raise FoldError("UNKNOWN_MARKET", f"market {value!r} is not one of {sorted(MARKETS)}")


def _minutes(value: Any) -> None:
    if value not in INTERVAL_MINUTES:
        raise FoldError(
            "BAD_INTERVAL", f"interval_minutes {value!r} is not one of {sorted(INTERVAL_MINUTES)}"
        )


def _time(name: str, value: Any) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise FoldError("BAD_TIME", f"{name} {value!r} is not a UTC timestamp")
    if not HORIZON_START <= value < HORIZON_END:
        raise FoldError("BAD_TIME", f"{name} {value.isoformat()} is outside 2000..2100")


def _finite(name: str, value: Any, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, float | int) or not math.isfinite(value):
        raise FoldError("NON_FINITE_VALUE", f"{name} {value!r} is not a finite number")


def _text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise FoldError("EMPTY_FIELD", f"{name} {value!r} is empty")


def _revision(value: Any) -> None:
    if not isinstance(value, int) or value < 0:
        raise FoldError("BAD_REVISION", f"revision {value!r} is not a non-negative integer")


_lmp_row = _getter(LMP)


def fold_lmp(event: Event, topic: str) -> Row:
    """LmpPublished -> a row of `lmp` (and of `lmp_revisions`)."""
    _iso(event.get("iso"))
    _market(event.get("market"))
    _text("location_id", event.get("location_id"))
    _time("interval_start_utc", event.get("interval_start_utc"))
    _minutes(event.get("interval_minutes"))
    _finite("lmp_usd_per_mwh", event.get("lmp_usd_per_mwh"))
    for component in ("energy_usd_per_mwh", "congestion_usd_per_mwh", "loss_usd_per_mwh"):
        _finite(component, event.get(component), nullable=True)
    _revision(event.get("revision"))
    return _lmp_row(event)


_ISO, _MARKET, _LOCATION, _START, _MINUTES, _PRICE, _ENERGY, _CONGESTION, _LOSS, _REVISION = (
    LMP.index(c)
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


_load_row = _getter(LOAD)


def fold_load(event: Event, topic: str) -> Row:
    """LoadPublished -> a row of `load` (and of `load_revisions`)."""
    _iso(event.get("iso"))
    _text("area_id", event.get("area_id"))
    if event.get("load_kind") not in ("ACTUAL", "FORECAST"):
        raise FoldError("BAD_LOAD_KIND", f"load_kind {event.get('load_kind')!r} is unknown")
    _time("interval_start_utc", event.get("interval_start_utc"))
    _minutes(event.get("interval_minutes"))
    _finite("load_mw", event.get("load_mw"))
    _revision(event.get("revision"))
    return _load_row(event)


_fuel_row = _getter(FUEL_MIX)


def fold_fuel_mix(event: Event, topic: str) -> Row:
    """FuelMixPublished -> a row of `fuel_mix` (and of `fuel_mix_revisions`)."""
    _iso(event.get("iso"))
    _text("fuel_type_native", event.get("fuel_type_native"))
    _time("interval_start_utc", event.get("interval_start_utc"))
    _minutes(event.get("interval_minutes"))
    _finite("generation_mw", event.get("generation_mw"))
    _revision(event.get("revision"))
    return _fuel_row(event)


_as_row = _getter(AS_PRICES)


def fold_as_price(event: Event, topic: str) -> Row:
    """AncillaryPricePublished -> a row of `as_prices` (and of `as_prices_revisions`)."""
    _iso(event.get("iso"))
    _market(event.get("market"))
    _text("region_id", event.get("region_id"))
    _text("product_native", event.get("product_native"))
    _time("interval_start_utc", event.get("interval_start_utc"))
    _minutes(event.get("interval_minutes"))
    _finite("price_usd_per_mw_hour", event.get("price_usd_per_mw_hour"))
    _revision(event.get("revision"))
    return _as_row(event)


_location_row = _getter(LOCATIONS)


def fold_location(event: Event, topic: str) -> Row:
    """LocationDiscovered -> a row of `locations` (the earliest sighting stays)."""
    _iso(event.get("iso"))
    _market(event.get("market"))
    _text("location_id", event.get("location_id"))
    _time("first_interval_start_utc", event.get("first_interval_start_utc"))
    return _location_row(event)


_kpi_row = _getter(KPIS)


def fold_kpi(event: Event, topic: str) -> Row:
    """KpiComputed -> a row of `kpis` (and of `kpis_revisions`)."""
    _iso(event.get("iso"))
    _market(event.get("market"))
    _text("location_id", event.get("location_id"))
    _text("kpi", event.get("kpi"))
    if event.get("window_kind") not in WINDOW_KINDS:
        raise FoldError("BAD_WINDOW", f"window_kind {event.get('window_kind')!r} is unknown")
    _time("window_start_utc", event.get("window_start_utc"))
    _time("window_end_utc", event.get("window_end_utc"))
    if event["window_end_utc"] <= event["window_start_utc"]:
        raise FoldError(
            "BAD_WINDOW",
            f"window_end_utc {event['window_end_utc'].isoformat()} is not after"
            f" window_start_utc {event['window_start_utc'].isoformat()}",
        )
    _finite("value", event.get("value"), nullable=True)
    _revision(event.get("revision"))
    return _kpi_row(event)


_gap_row = _getter(GAPS)


def fold_gap(event: Event, topic: str) -> Row:
    """GapDetected -> a row of `gaps` (a later announcement of a gap replaces the earlier)."""
    _iso(event.get("iso"))
    _text("gap_id", event.get("gap_id"))
    _time("missing_start_utc", event.get("missing_start_utc"))
    _time("missing_end_utc", event.get("missing_end_utc"))
    return _gap_row(event)


_series_status_row = _getter(SERIES_STATUS)


def fold_series_status(event: Event, topic: str) -> Row:
    """SeriesStatusChanged -> the row of `series_status` for its series (latest change wins)."""
    _iso(event.get("iso"))
    _text("series_key", event.get("series_key"))
    if event.get("status") not in ("RETIRED", "ACTIVE"):
        raise FoldError("BAD_STATUS", f"status {event.get('status')!r} is not RETIRED or ACTIVE")
    _time("last_interval_start_utc", event.get("last_interval_start_utc"))
    return _series_status_row(event)


_request_row = _getter(BACKFILL_REQUESTS)


def fold_backfill_request(event: Event, topic: str) -> Row:
    """BackfillRequested -> a row of `backfill_requests`."""
    _iso(event.get("iso"))
    _text("request_id", event.get("request_id"))
    _time("window_start_utc", event.get("window_start_utc"))
    _time("window_end_utc", event.get("window_end_utc"))
    return _request_row(event)


_outcome_row = _getter(BACKFILL_OUTCOMES)


def fold_backfill_outcome(event: Event, topic: str) -> Row:
    """BackfillCompleted -> a row of `backfill_outcomes`."""
    _iso(event.get("iso"))
    _text("request_id", event.get("request_id"))
    if event.get("outcome") not in ("FILLED", "EMPTY", "UNRECOVERABLE", "FAILED"):
        raise FoldError("BAD_OUTCOME", f"outcome {event.get('outcome')!r} is unknown")
    return _outcome_row(event)


def fold_dead_letter(event: Event, topic: str) -> Row:
    """RecordDeadLettered -> a row of `dead_letters` (the original bytes stay on the topic;
    the row keeps their size, the reasons and where the record came from)."""
    value = event.get("original_value")
    if not isinstance(value, bytes):
        raise FoldError("MISSING_FIELD", "original_value is not bytes")
    _text("original_topic", event.get("original_topic"))
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


_run_row = _getter(CONNECTOR_RUNS)


def fold_connector_run(event: Event, topic: str) -> Row:
    """ConnectorRunCompleted -> a row of `connector_runs`."""
    _iso(event.get("iso"))
    _text("run_id", event.get("run_id"))
    _finite("publish_latency_seconds", event.get("publish_latency_seconds"), nullable=True)
    return _run_row(event)


_freshness_row = _getter(FRESHNESS)


def fold_freshness(event: Event, topic: str) -> Row:
    """FreshnessUpdated -> the row of `freshness` for its ISO dataset (the latest run wins)."""
    _iso(event.get("iso"))
    _text("dataset", event.get("dataset"))
    _time("last_run_finished_utc", event.get("last_run_finished_utc"))
    _finite("arrival_latency_seconds", event.get("arrival_latency_seconds"), nullable=True)
    share = event.get("last_day_completeness_share")
    _finite("last_day_completeness_share", share, nullable=True)
    return _freshness_row(event)


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
