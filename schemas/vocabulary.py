"""One vocabulary, defined once: the ISOs and markets as the wire spells them, each ISO's time
zone, the dataset of each market, and the key of a price series.

Everything that checks, parses, folds or serves these names imports them from here, so a new
market or ISO is added in one place. The `Iso` and `Dataset` enums of `schemas.catalog` name
the topic-level codes (`raw.pjm.lmp_rt_5min`); records and events carry the wire values below.
"""

from __future__ import annotations

from enum import StrEnum


class Market(StrEnum):
    """The price markets, as records and events carry them."""

    DA_HOURLY = "DA_HOURLY"
    RT_5MIN = "RT_5MIN"
    RT_15MIN = "RT_15MIN"
    RT_HOURLY = "RT_HOURLY"


ISOS: tuple[str, ...] = ("PJM", "CAISO", "ERCOT")  # wire values, in display order
MARKETS: tuple[str, ...] = tuple(m.value for m in Market)
RT_MARKETS: tuple[str, ...] = (Market.RT_5MIN, Market.RT_15MIN, Market.RT_HOURLY)

# The OptiBid dataset code of each price market.
MARKET_DATASET: dict[str, str] = {
    Market.DA_HOURLY: "lmp_da_hourly",
    Market.RT_5MIN: "lmp_rt_5min",
    Market.RT_15MIN: "lmp_rt_15min",
    Market.RT_HOURLY: "lmp_rt_hourly",
}

# The zone each ISO's files, operating days and peak hours speak (prevailing local time).
TIME_ZONES: dict[str, str] = {
    "PJM": "America/New_York",
    "CAISO": "America/Los_Angeles",
    "ERCOT": "America/Chicago",
}

SERIES_KEY_FIELDS = ("iso", "market", "location_id")  # the topics' key, `iso|market|location_id`


def series_key(iso: str, market: str, location_id: str) -> str:
    """The key of one price series on every market-data topic (`PJM|RT_5MIN|51288`): every
    interval of a series lands on one partition, in order."""
    return f"{iso}|{market}|{location_id}"
