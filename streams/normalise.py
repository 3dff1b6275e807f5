"""Normalisation: raw records (ISO-native provenance kept) into the canonical `core.market.*`
events, one schema per dataset for every ISO."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.contracts import ENVELOPE_FIELDS, ContractSet
from schemas.envelope import envelope

CANONICAL_NAMESPACE = uuid.UUID("5c1b0a57-3f0e-4a8e-b7a9-6a8a0d0f4e21")

# Fields of a canonical event that the worker sets itself (beside the envelope); every other
# field of the canonical schema is copied from the raw record. The `.avsc` files are the one
# source of these lists.
WORKER_FIELDS = frozenset({*ENVELOPE_FIELDS, "supersedes_revision", "run_id", "source_dataset"})
_CONTRACTS = ContractSet()


def canonical_fields(schema: str) -> tuple[str, ...]:
    """The fields a canonical event takes from its raw record, in schema order."""
    names = _CONTRACTS.get(schema).field_names
    return tuple(name for name in names if name not in WORKER_FIELDS)


class Kind:
    """One canonical dataset: its core topic, schema, the fields copied from the raw record
    (from the schema) and its natural key (time last)."""

    def __init__(self, core: str, schema: str, key: tuple[str, ...]) -> None:
        self.core = core
        self.schema = schema
        self.fields = canonical_fields(schema)
        self.key = key  # natural key fields, time last


KINDS: dict[str, Kind] = {
    "energy.optibid.raw.LmpReported": Kind(
        "lmp",
        "energy.optibid.market.LmpPublished",
        ("iso", "market", "location_id", "interval_start_utc"),
    ),
    "energy.optibid.raw.LoadReported": Kind(
        "load",
        "energy.optibid.market.LoadPublished",
        ("iso", "area_id", "load_kind", "forecast_made_at_utc", "interval_start_utc"),
    ),
    "energy.optibid.raw.FuelMixReported": Kind(
        "fuel_mix",
        "energy.optibid.market.FuelMixPublished",
        ("iso", "fuel_type_native", "interval_start_utc"),
    ),
    "energy.optibid.raw.AncillaryPriceReported": Kind(
        "as_prices",
        "energy.optibid.market.AncillaryPricePublished",
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
