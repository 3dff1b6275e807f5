"""Small raw records for stream tests, in the shape of the raw Avro schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)  # 00:00 EDT on the fall-back day in PJM


def raw_lmp(
    location_id: str = "51288",
    start: datetime = T0,
    lmp: float = 30.0,
    *,
    revision: int = 1,
    dataset: str = "lmp_rt_5min",
    market: str = "RT_5MIN",
    minutes: int = 5,
    iso: str = "PJM",
    components: tuple[float, float, float] | None = None,
) -> dict[str, Any]:
    energy, congestion, loss = components if components else (lmp - 1.5, 1.0, 0.5)
    return {
        "event_id": f"e-{location_id}-{start.isoformat()}-{revision}",
        "occurred_at_utc": start + timedelta(minutes=minutes),
        "recorded_at_utc": start + timedelta(minutes=minutes, seconds=30),
        "source": "connector:pjm",
        "schema_version": 1,
        "iso": iso,
        "dataset": dataset,
        "market": market,
        "location_id": location_id,
        "location_name": None,
        "location_type": "HUB",
        "interval_start_utc": start,
        "interval_minutes": minutes,
        "lmp_usd_per_mwh": lmp,
        "energy_usd_per_mwh": energy,
        "congestion_usd_per_mwh": congestion,
        "loss_usd_per_mwh": loss,
        "revision": revision,
        "revision_kind": "VERSION",
        "source_file": "f.csv",
        "source_row": 1,
        "run_id": "run-1",
        "native_fields": {},
    }
