"""Records as events: raw Avro values, event ids, and the JSON lines of `optibid parse`."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import datetime
from typing import Any

from connectors.records import (
    AsPriceRecord,
    FuelMixRecord,
    LmpRecord,
    LoadRecord,
    Record,
    interval_end,
)
from schemas.catalog import RAW_SCHEMA, Dataset
from schemas.envelope import envelope

EVENT_NAMESPACE = uuid.UUID("0b7c4a52-95f4-4f7e-9a3c-3d1c1f0e6a10")

# The raw schema (Avro full name, as the catalog names it) of each kind of record.
RAW_SCHEMA_OF_KIND = {
    record.kind: RAW_SCHEMA[dataset]
    for record, dataset in (
        (LmpRecord, Dataset.LMP_DA_HOURLY),
        (LoadRecord, Dataset.LOAD),
        (FuelMixRecord, Dataset.FUEL_MIX),
        (AsPriceRecord, Dataset.AS_PRICES),
    )
}


def event_id(record: Record) -> str:
    """Deterministic: the same observation (natural key and revision) always gets the same id."""
    parts = [str(p.isoformat() if isinstance(p, datetime) else p) for p in record.natural_key]
    return str(uuid.uuid5(EVENT_NAMESPACE, "|".join([record.kind, *parts, str(record.revision)])))


def _payload(record: Record) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def raw_event(
    record: Record, dataset: Dataset, run_id: str, recorded_at_utc: datetime, source: str
) -> dict[str, Any]:
    """The raw-topic value of a record (the fields of its `*Reported` schema)."""
    body = _payload(record)
    body["native_fields"] = dict(record.native_fields)
    return {
        **envelope(
            event_id=event_id(record),
            occurred_at_utc=interval_end(record),
            recorded_at_utc=recorded_at_utc,
            source=source,
        ),
        "dataset": dataset.value,
        "run_id": run_id,
        **body,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def to_json(record: Record, *, with_native: bool = False) -> dict[str, Any]:
    """Canonical field names, UTC times as ISO-8601 with Z; the same names as on the topics."""
    out = {k: _json_value(v) for k, v in _payload(record).items() if k != "native_fields"}
    if with_native:
        out["native_fields"] = dict(record.native_fields)
    return out


__all__ = [
    "RAW_SCHEMA_OF_KIND",
    "AsPriceRecord",
    "FuelMixRecord",
    "LmpRecord",
    "LoadRecord",
    "event_id",
    "raw_event",
    "to_json",
]
