"""The catalog: ISOs, what each dataset covers, and the locations seen."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models.common import Listing, Time


class IsoRow(BaseModel):
    iso: str
    time_zone: str = Field(description="IANA time zone of the market, e.g. America/New_York.")


class IsoList(Listing[IsoRow]):
    """The ISOs served."""


class DatasetCoverage(BaseModel):
    """The range one dataset of one ISO covers, per series group."""

    dataset: Literal["lmp", "load", "fuel_mix", "as_prices"]
    iso: str
    series: str = Field(description="The market (lmp, as_prices), load kind (load), or ''.")
    start_utc: Time = Field(description="Start of the first interval held.")
    end_utc: Time = Field(description="End of the last interval held.")
    rows: int


class DatasetList(Listing[DatasetCoverage]):
    """The time range each dataset covers."""


class LocationRow(BaseModel):
    iso: str
    market: str
    location_id: str
    location_name: str | None
    location_type: str = Field(description="HUB, ZONE, NODE, ...")
    first_interval_start_utc: Time = Field(description="Start of the first interval seen.")


class LocationList(Listing[LocationRow]):
    """The locations seen, by ISO, location and market."""
