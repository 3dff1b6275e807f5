"""Read-model rows as the API answers them: times as ISO-8601 UTC strings (`Z`), the market's
local time on request, and no event envelope unless lineage is asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from projections.tables import ENVELOPE
from schemas.timeutil import zone

ENVELOPE_COLUMNS = tuple(name for name, _ in ENVELOPE)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def record(
    row: dict[str, Any], timezone: str | None = None, time_column: str = ""
) -> dict[str, Any]:
    """A row as answered: ISO-8601 UTC times, plus the market's local time on request."""
    out = {k: jsonable(v) for k, v in row.items()}
    if timezone == "market" and isinstance(row.get(time_column), datetime) and row.get("iso"):
        local = row[time_column].astimezone(zone(str(row["iso"])))
        out[time_column.replace("_utc", "_local")] = local.isoformat()
    return out


def without_envelope(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ENVELOPE_COLUMNS}
