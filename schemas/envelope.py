"""The envelope every event carries, built in one place.

Its fields are the first five of every `.avsc` file (tests/unit/test_contracts.py checks both
against each other): `event_id` (deterministic where the content has a natural key),
`occurred_at_utc` (when the fact happened), `recorded_at_utc` (when OptiBid recorded it),
`source` (the producer, e.g. `worker:normalise`) and `schema_version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1  # the version every current .avsc declares as its default


def envelope(
    *,
    event_id: str,
    occurred_at_utc: datetime | None,
    recorded_at_utc: datetime,
    source: str,
    schema_version: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    """The envelope fields of one event, in schema order; the caller adds its body."""
    return {
        "event_id": event_id,
        "occurred_at_utc": occurred_at_utc,
        "recorded_at_utc": recorded_at_utc,
        "source": source,
        "schema_version": schema_version,
    }
