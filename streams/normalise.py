"""Normalisation: raw records (ISO-native provenance kept) into the canonical `core.market.*`
events, one schema per dataset for every ISO."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.envelope import envelope

CANONICAL_NAMESPACE = uuid.UUID("5c1b0a57-3f0e-4a8e-b7a9-6a8a0d0f4e21")

# Raw schema full name -> (core topic name, canonical schema full name, canonical fields)
LMP_FIELDS = (
    "iso",
    "market",
    "location_id",
    "location_name",
    "location_type",
    "interval_start_utc",
    "interval_minutes",
    "lmp_usd_per_mwh",
    "energy_usd_per_mwh",
    "congestion_usd_per_mwh",
    "loss_usd_per_mwh",
    "revision",
)
LOAD_FIELDS = (
    "iso",
    "area_id",
    "area_type",
    "interval_start_utc",
    "interval_minutes",
    "load_mw",
    "load_kind",
    "forecast_made_at_utc",
    "revision",
)
FUEL_FIELDS = (
    "iso",
    "interval_start_utc",
    "interval_minutes",
    "fuel_type",
    "fuel_type_native",
    "generation_mw",
    "revision",
)
AS_FIELDS = (
    "iso",
    "market",
    "interval_start_utc",
    "interval_minutes",
    "product",
    "product_native",
    "region_id",
    "price_usd_per_mw_hour",
    "revision",
)


class Kind:
    def __init__(
        self, core: str, schema: str, fields: tuple[str, ...], key: tuple[str, ...]
    ) -> None:
        self.core = core
        self.schema = schema
        self.fields = fields
        self.key = key  # natural key fields, time last


KINDS: dict[str, Kind] = {
    "energy.optibid.raw.LmpReported": Kind(
        "lmp",
        "energy.optibid.market.LmpPublished",
        LMP_FIELDS,
        ("iso", "market", "location_id", "interval_start_utc"),
    ),
    "energy.optibid.raw.LoadReported": Kind(
        "load",
        "energy.optibid.market.LoadPublished",
        LOAD_FIELDS,
        ("iso", "area_id", "load_kind", "forecast_made_at_utc", "interval_start_utc"),
    ),
    "energy.optibid.raw.FuelMixReported": Kind(
        "fuel_mix",
        "energy.optibid.market.FuelMixPublished",
        FUEL_FIELDS,
        ("iso", "fuel_type_native", "interval_start_utc"),
    ),
    "energy.optibid.raw.AncillaryPriceReported": Kind(
        "as_prices",
        "energy.optibid.market.AncillaryPricePublished",
        AS_FIELDS,
        ("iso", "market", "region_id", "product_native", "interval_start_utc"),
    ),
}


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def natural_key(kind: Kind, record: Mapping[str, Any]) -> str:
    return "|".join(_text(record[f]) for f in kind.key)


def series_key(kind: Kind, record: Mapping[str, Any]) -> str:
    """The natural key without its time: the Kafka key of the canonical topic."""
    return "|".join(_text(record[f]) for f in kind.key[:-1] if record[f] is not None)


def value_of(kind: Kind, record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a revision can change: every canonical field but the key and the revision."""
    return tuple(record[f] for f in kind.fields if f not in kind.key and f != "revision")


def normalise(
    kind: Kind,
    raw: Mapping[str, Any],
    recorded_at_utc: datetime,
    supersedes_revision: int | None = None,
) -> dict[str, Any]:
    """The canonical event of a valid raw record. Its id is deterministic in (key, revision)."""
    event = {f: raw[f] for f in kind.fields}
    identity = f"{kind.core}|{natural_key(kind, raw)}|{raw['revision']}"
    event.update(
        {
            **envelope(
                event_id=str(uuid.uuid5(CANONICAL_NAMESPACE, identity)),
                occurred_at_utc=raw["occurred_at_utc"],
                recorded_at_utc=recorded_at_utc,
                source="worker:normalise",
            ),
            "run_id": raw["run_id"],
            "source_dataset": raw["dataset"],
        }
    )
    if kind.core == "lmp":
        event["supersedes_revision"] = supersedes_revision
    return event
