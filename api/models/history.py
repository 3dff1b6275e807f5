"""History answers: pages of read-model rows, or of resampled buckets.

Which columns a row has depends on the request, so a row model names only the columns every
row has (those of its series) and allows the others: by default every column of the read model
but the event envelope; with `columns=` the key columns and those chosen; with `lineage=true`
also `event_id`, `source`, `occurred_at_utc` and `recorded_at_utc`; with `timezone=market` the
local time next to the UTC one (`interval_start_local`). A resampled row is its series columns,
`bucket_start_utc`, the aggregated value (under the value column's name) and `intervals`, the
number of rows in the bucket."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from api.models.common import Page


class HistoryRow(BaseModel):
    model_config = ConfigDict(extra="allow")


class LmpHistoryRow(HistoryRow):
    """One LMP interval: `interval_start_utc`, `interval_minutes`, `location_name`,
    `location_type`, `lmp_usd_per_mwh`, `energy_usd_per_mwh`, `congestion_usd_per_mwh`,
    `loss_usd_per_mwh`, `revision`, `supersedes_revision`, `run_id`, `source_dataset` as
    chosen; or a resampled bucket of `lmp_usd_per_mwh`."""

    iso: str
    market: str
    location_id: str


class LoadHistoryRow(HistoryRow):
    """One load interval: `interval_start_utc`, `interval_minutes`, `area_type`, `load_mw`,
    `forecast_made_at_utc`, `revision`, `run_id`, `source_dataset` as chosen; or a resampled
    bucket of `load_mw`."""

    iso: str
    area_id: str
    load_kind: str


class FuelMixHistoryRow(HistoryRow):
    """Generation of one fuel in one interval: `interval_start_utc`, `interval_minutes`,
    `fuel_type`, `generation_mw`, `revision`, `run_id`, `source_dataset` as chosen; or a
    resampled bucket of `generation_mw`."""

    iso: str
    fuel_type_native: str


class AncillaryPriceHistoryRow(HistoryRow):
    """One ancillary service price: `interval_start_utc`, `interval_minutes`, `product`,
    `price_usd_per_mw_hour`, `revision`, `run_id`, `source_dataset` as chosen; or a
    resampled bucket of `price_usd_per_mw_hour`."""

    iso: str
    market: str
    region_id: str
    product_native: str


class KpiHistoryRow(HistoryRow):
    """One KPI window: `window_start_utc`, `window_end_utc`, `value`, `unit`,
    `intervals_received`, `intervals_expected`, `revision` as chosen; or a resampled bucket of
    `value`."""

    iso: str
    market: str
    location_id: str
    kpi: str
    window_kind: str


class LmpPage(Page[LmpHistoryRow]):
    """A page of LMP history."""


class LoadPage(Page[LoadHistoryRow]):
    """A page of load history."""


class FuelMixPage(Page[FuelMixHistoryRow]):
    """A page of generation by fuel."""


class AncillaryPricePage(Page[AncillaryPriceHistoryRow]):
    """A page of ancillary service prices."""


class KpiPage(Page[KpiHistoryRow]):
    """A page of KPI history."""


EXAMPLE_LMP: dict[str, Any] = {
    "iso": "PJM",
    "market": "RT_5MIN",
    "location_id": "51288",
    "interval_start_utc": "2025-05-01T04:00:00Z",
    "interval_minutes": 5,
    "location_name": "WESTERN HUB",
    "location_type": "HUB",
    "lmp_usd_per_mwh": 31.42,
    "energy_usd_per_mwh": 30.98,
    "congestion_usd_per_mwh": 0.52,
    "loss_usd_per_mwh": -0.08,
    "revision": 1,
    "supersedes_revision": None,
    "run_id": "5f0c2a7e-8d1b-4c39-9a64-2b7e1f3d9c10",
    "source_dataset": "lmp_rt_5min",
}
