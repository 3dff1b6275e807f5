"""Small raw records for stream tests, in the shape of the raw Avro schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.records import VERSION, LmpRecord

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


def lmp_record(node: str, start: datetime, lmp: float, row: int = 0) -> LmpRecord:
    """A PJM five-minute node price as a connector parses it (components summing to `lmp`)."""
    return LmpRecord(
        iso="PJM",
        market="RT_5MIN",
        location_id=node,
        location_name=None,
        location_type="NODE",
        interval_start_utc=start,
        interval_minutes=5,
        lmp_usd_per_mwh=lmp,
        energy_usd_per_mwh=lmp - 1.0,
        congestion_usd_per_mwh=0.5,
        loss_usd_per_mwh=0.5,
        revision=1,
        revision_kind=VERSION,
        source_file="test.csv",
        source_row=row,
    )
