"""Typed records: what every parser returns, in the canonical names of the Avro contracts.

Times are UTC interval starts (tz-aware) with an interval length in minutes. `revision` orders
versions of one natural key: the ISO's version number where it gives one (`VERSION`), else its
publish time in epoch microseconds (`PUBLISH_TIME`).

Records are slotted dataclasses, not frozen ones: parsers build millions of them and a frozen
dataclass costs about eight times as much to construct. Treat them as immutable all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from schemas.vocabulary import series_key

VERSION = "VERSION"
PUBLISH_TIME = "PUBLISH_TIME"


@dataclass(slots=True)
class LmpRecord:
    kind: ClassVar[str] = "lmp"
    iso: str  # PJM | CAISO | ERCOT
    market: str  # DA_HOURLY | RT_5MIN | RT_15MIN | RT_HOURLY
    location_id: str
    location_name: str | None
    location_type: str
    interval_start_utc: datetime
    interval_minutes: int
    lmp_usd_per_mwh: float
    energy_usd_per_mwh: float | None
    congestion_usd_per_mwh: float | None
    loss_usd_per_mwh: float | None
    revision: int
    revision_kind: str
    source_file: str
    source_row: int
    native_fields: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return series_key(self.iso, self.market, self.location_id)

    @property
    def natural_key(self) -> tuple[str, str, str, datetime]:
        return (self.iso, self.market, self.location_id, self.interval_start_utc)


@dataclass(slots=True)
class LoadRecord:
    kind: ClassVar[str] = "load"
    iso: str
    area_id: str
    area_type: str  # RTO | ZONE | WEATHER_ZONE | TAC | OTHER
    interval_start_utc: datetime
    interval_minutes: int
    load_mw: float
    load_kind: str  # ACTUAL | FORECAST
    forecast_made_at_utc: datetime | None
    revision: int
    revision_kind: str
    source_file: str
    source_row: int
    native_fields: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.iso}|{self.area_id}"

    @property
    def natural_key(self) -> tuple[str, str, str, datetime, datetime | None]:
        return (
            self.iso,
            self.area_id,
            self.load_kind,
            self.interval_start_utc,
            self.forecast_made_at_utc,
        )


@dataclass(slots=True)
class FuelMixRecord:
    kind: ClassVar[str] = "fuel_mix"
    iso: str
    interval_start_utc: datetime
    interval_minutes: int
    fuel_type: str  # canonical, see FUEL_TYPES
    fuel_type_native: str
    generation_mw: float
    revision: int
    revision_kind: str
    source_file: str
    source_row: int
    native_fields: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.iso}|{self.fuel_type_native}"

    @property
    def natural_key(self) -> tuple[str, str, datetime]:
        return (self.iso, self.fuel_type_native, self.interval_start_utc)


@dataclass(slots=True)
class AsPriceRecord:
    kind: ClassVar[str] = "as_prices"
    iso: str
    market: str
    interval_start_utc: datetime
    interval_minutes: int
    product: str  # canonical, see AS_PRODUCTS
    product_native: str
    region_id: str
    price_usd_per_mw_hour: float
    revision: int
    revision_kind: str
    source_file: str
    source_row: int
    native_fields: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.iso}|{self.market}|{self.region_id}|{self.product_native}"

    @property
    def natural_key(self) -> tuple[str, str, str, str, datetime]:
        return (self.iso, self.market, self.region_id, self.product_native, self.interval_start_utc)


Record = LmpRecord | LoadRecord | FuelMixRecord | AsPriceRecord

MARKETS = frozenset({"DA_HOURLY", "RT_5MIN", "RT_15MIN", "RT_HOURLY"})
LOCATION_TYPES = frozenset(
    {"HUB", "ZONE", "NODE", "LOAD_ZONE", "RESOURCE_NODE", "AGGREGATE", "INTERFACE", "OTHER"}
)
FUEL_TYPES = frozenset(
    {
        "COAL",
        "GAS",
        "NUCLEAR",
        "OIL",
        "HYDRO",
        "WIND",
        "SOLAR",
        "BATTERY",
        "BIOMASS",
        "GEOTHERMAL",
        "IMPORTS",
        "OTHER",
    }
)
AS_PRODUCTS = frozenset(
    {
        "REG_UP",
        "REG_DOWN",
        "REG",  # symmetric regulation, one price for both directions (PJM)
        "REG_MILEAGE_UP",
        "REG_MILEAGE_DOWN",
        "SPIN",
        "NON_SPIN",
        "SUPPLEMENTAL",
        "ECRS",
        "PRIMARY",
        "SYNC",
        "OTHER",
    }
)


def interval_end(record: Record) -> datetime:
    return record.interval_start_utc + timedelta(minutes=record.interval_minutes)
