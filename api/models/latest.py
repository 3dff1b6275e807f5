"""Latest values, as the projectors keep them in Redis: one row per series (LMP) or per
series, KPI and window kind (KPIs), without the event envelope."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.models.common import Listing, Time
from api.models.history import EXAMPLE_LMP


class LmpFields(BaseModel):
    """The columns of an LMP interval (the `lmp` read model's, without the envelope)."""

    iso: str
    market: str
    location_id: str
    interval_start_utc: Time
    interval_minutes: int
    location_name: str | None
    location_type: str
    lmp_usd_per_mwh: float
    energy_usd_per_mwh: float | None
    congestion_usd_per_mwh: float | None
    loss_usd_per_mwh: float | None
    revision: int
    supersedes_revision: int | None
    run_id: str
    source_dataset: str


class LmpLatestRow(LmpFields):
    """The latest LMP interval of a series, with how long ago it ended."""

    age_seconds: float = Field(description="Seconds since the interval ended (0.1 s).")


class LmpLatestList(Listing[LmpLatestRow]):
    """The latest LMP of each series, by series."""


class KpiLatestRow(BaseModel):
    """The latest window of a KPI (the `kpis` read model's columns, without the envelope)."""

    iso: str
    market: str
    location_id: str
    kpi: str
    window_kind: str = Field(description="HOUR or DAY.")
    window_start_utc: Time
    window_end_utc: Time
    value: float | None = Field(description="Null when the window had no input.")
    unit: str
    intervals_received: int
    intervals_expected: int
    revision: int


class KpiLatestList(Listing[KpiLatestRow]):
    """The latest window of each KPI, by series, KPI and window kind."""


EXAMPLE_LATEST: dict[str, Any] = {
    "data": [{**EXAMPLE_LMP, "age_seconds": 42.0}],
    "next_cursor": None,
}
