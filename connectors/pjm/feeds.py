"""PJM Data Miner 2: the feeds behind each dataset, their columns, cadences, request windows,
rate limits, and how PJM's codes map to the canonical vocabularies.

Every feed is served at `https://api.pjm.com/api/v1/<feed>` as JSON pages (`items`, `totalRows`,
`links` with rel `next`, `searchSpecification`), and the Data Miner 2 web tool exports the same
rows as CSV (CRLF, US 12-hour timestamps such as "3/10/2024 1:00:00 AM"). Both carry each time
twice: `datetime_beginning_utc` and `datetime_beginning_ept` (Eastern Prevailing Time, no offset
and no DST flag). The EPT label alone is ambiguous in the fall-back hour, so UTC is always read
from the UTC column and EPT is only checked against it.

Codes that are not in the maps below raise a ParseError. OTHER is used only where it is the
honest mapping, each one named here:
- fuel_type "Multiple Fuels" (dual-fuel units PJM does not split), "Other", "Waste" and
  "Other Renewables" (PJM's mix of landfill gas, biomass and waste); the native label is kept in
  `fuel_type_native`;
- reserve service "REG": PJM regulation is one symmetric product, the canonical vocabulary only
  has directional REG_UP / REG_DOWN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.catalog import Dataset

BASE_URL = "https://api.pjm.com/api/v1"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
PAGE_ROWS = 50_000  # the largest rowCount Data Miner 2 serves
# Data Miner 2 allows a non-member key 6 requests a minute and a member key 600.
NON_MEMBER_REQUESTS_PER_MINUTE = 6
MEMBER_REQUESTS_PER_MINUTE = 600

UTC_COLUMN = "datetime_beginning_utc"
EPT_COLUMN = "datetime_beginning_ept"

# A publish time that a response's name may carry, e.g. "gen_by_fuel_..._pub20240311T120000Z".
# Read by the feeds whose rows carry no version of their own (see Feed.revision_from).
PUBLISHED_IN_NAME = r"pub(\d{8}T\d{6}Z)"


@dataclass(frozen=True)
class Feed:
    """One Data Miner 2 feed as the client requests it and the parser reads it."""

    name: str
    dataset: Dataset
    fields: tuple[str, ...]  # requested with `fields=`; the parser reads these columns
    minutes: int  # cadence of the interval starts
    window: timedelta  # the longest span asked for in one request (pages follow within it)
    history: str  # how far back the feed reaches
    revision_from: str  # where a row's `revision` comes from
    lead: timedelta = timedelta(0)  # rows time-stamped this much before their interval
    time_filter: str = UTC_COLUMN  # filtered in UTC, so a DST day needs no special request

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.name}"


def _lmp_fields(market: str, *, verified: bool = True) -> tuple[str, ...]:
    common = (UTC_COLUMN, EPT_COLUMN, "pnode_id", "pnode_name", "type")
    prices = (f"total_lmp_{market}", f"congestion_price_{market}", f"marginal_loss_price_{market}")
    if not verified:
        return (*common, *prices, "occ_check", "ref_caseid_used_multi_interval")
    return (
        *common,
        "voltage",
        "equipment",
        "zone",
        f"system_energy_price_{market}",
        *prices,
        "row_is_current",
        "version_nbr",
    )


DA_HRL_LMPS = Feed(
    "da_hrl_lmps",
    Dataset.LMP_DA_HOURLY,
    _lmp_fields("da"),
    minutes=60,
    window=timedelta(days=1),
    history="since 2000-06-01; beyond about 2 years only unfiltered (archived) queries",
    revision_from="version_nbr (VERSION)",
)
RT_HRL_LMPS = Feed(
    "rt_hrl_lmps",
    Dataset.LMP_RT_HOURLY,
    _lmp_fields("rt"),
    minutes=60,
    window=timedelta(days=1),
    history="since 1998-04-01; beyond about 2 years only unfiltered (archived) queries",
    revision_from="version_nbr (VERSION)",
)
RT_FIVEMIN_HRL_LMPS = Feed(
    "rt_fivemin_hrl_lmps",
    Dataset.LMP_RT_5MIN,
    _lmp_fields("rt"),
    minutes=5,
    window=timedelta(hours=6),
    history="verified 5-minute LMPs, about 186 days with filters; older only unfiltered",
    revision_from="version_nbr (VERSION)",
)
# Published within minutes, before verification; has no energy component and no version. The
# energy component is derived as total - congestion - loss (PJM's own identity, rounded to
# PJM's 6 decimals) and the revision is 0, so that any verified version (1, 2, ...) replaces it.
RT_UNVERIFIED_FIVEMIN_LMPS = Feed(
    "rt_unverified_fivemin_lmps",
    Dataset.LMP_RT_5MIN,
    _lmp_fields("rt", verified=False),
    minutes=5,
    window=timedelta(hours=6),
    history="only the most recent days, until the verified feed has the intervals",
    revision_from="none: 0 (PUBLISH_TIME), below every verified version",
)
# Settlement-quality hourly load per load area, published the next day and corrected later;
# `is_verified` is its version: revision 1 while preliminary, 2 once verified.
HRL_LOAD_METERED = Feed(
    "hrl_load_metered",
    Dataset.LOAD,
    (UTC_COLUMN, EPT_COLUMN, "nerc_region", "mkt_region", "zone", "load_area", "mw", "is_verified"),
    minutes=60,
    window=timedelta(days=7),
    history="since 1993-01-01",
    revision_from="is_verified: 1 preliminary, 2 verified (VERSION)",
)
# Telemetered load snapshots about every 5 minutes, stamped a few seconds before the 5-minute
# mark. Each snapshot is the 5-minute interval whose start is nearest to its stamp; the exact
# stamp is its revision (PUBLISH_TIME), so two snapshots landing on one interval stay distinct
# and the later one wins. Its areas are a different measurement from the metered load areas of
# the same names, so their ids carry INST_AREA_PREFIX ("INST/PJM RTO", "INST/AE", ...).
INST_LOAD = Feed(
    "inst_load",
    Dataset.LOAD,
    (UTC_COLUMN, EPT_COLUMN, "area", "instantaneous_load"),
    minutes=5,
    window=timedelta(days=1),
    history="a rolling window of about 30 days",
    revision_from="the snapshot's own time stamp (PUBLISH_TIME)",
    lead=timedelta(minutes=2),
)
GEN_BY_FUEL = Feed(
    "gen_by_fuel",
    Dataset.FUEL_MIX,
    (UTC_COLUMN, EPT_COLUMN, "fuel_type", "mw", "fuel_percentage_of_total", "is_renewable"),
    minutes=60,
    window=timedelta(days=31),
    history="since 2016-01-01",
    revision_from="the publish time in the response's name, else 0 (PUBLISH_TIME)",
)
RESERVE_MARKET_RESULTS = Feed(
    "reserve_market_results",
    Dataset.AS_PRICES,
    (
        UTC_COLUMN,
        EPT_COLUMN,
        "locale",
        "service",
        "mcp",
        "mcp_capped",
        "reg_ccp",
        "reg_pcp",
        "as_req_mw",
        "total_mw",
        "as_mw",
        "ss_mw",
        "tier1_mw",
        "ircmwt2",
        "dsr_as_mw",
        "nsr_mw",
        "regd_mw",
    ),
    minutes=5,
    window=timedelta(days=2),
    history="since 2013-06-14: hourly until 2022-09-01 EPT, 5-minute intervals since",
    revision_from="the publish time in the response's name, else 0 (PUBLISH_TIME)",
)

# The feeds of each dataset, the preferred one first.
FEEDS: dict[Dataset, tuple[Feed, ...]] = {
    Dataset.LMP_DA_HOURLY: (DA_HRL_LMPS,),
    Dataset.LMP_RT_5MIN: (RT_FIVEMIN_HRL_LMPS, RT_UNVERIFIED_FIVEMIN_LMPS),
    Dataset.LMP_RT_HOURLY: (RT_HRL_LMPS,),
    Dataset.LOAD: (HRL_LOAD_METERED, INST_LOAD),
    Dataset.FUEL_MIX: (GEN_BY_FUEL,),
    Dataset.AS_PRICES: (RESERVE_MARKET_RESULTS,),
}
FEED_BY_NAME: dict[str, Feed] = {f.name: f for feeds in FEEDS.values() for f in feeds}

# LMP datasets: canonical market and the column suffix of their prices.
LMP_MARKETS: dict[Dataset, tuple[str, str]] = {
    Dataset.LMP_DA_HOURLY: ("DA_HOURLY", "da"),
    Dataset.LMP_RT_5MIN: ("RT_5MIN", "rt"),
    Dataset.LMP_RT_HOURLY: ("RT_HOURLY", "rt"),
}

# PJM pnode `type` -> canonical location type.
LOCATION_TYPES: dict[str, str] = {
    "HUB": "HUB",
    "ZONE": "ZONE",
    "AGGREGATE": "AGGREGATE",
    "INTERFACE": "INTERFACE",
    "TIE": "INTERFACE",  # tie-line pricing points with a neighbouring system
    "RESIDUAL_METERED_EDC": "LOAD_ZONE",  # the residual metered load of a distribution company
    "GEN": "RESOURCE_NODE",
    "LOAD": "NODE",
    "EHV": "NODE",  # extra-high-voltage buses
    "EXT": "NODE",  # buses of neighbouring systems in PJM's model
}

# PJM gen_by_fuel `fuel_type` -> canonical fuel type.
FUEL_TYPES: dict[str, str] = {
    "Coal": "COAL",
    "Gas": "GAS",
    "Nuclear": "NUCLEAR",
    "Oil": "OIL",
    "Hydro": "HYDRO",
    "Wind": "WIND",
    "Solar": "SOLAR",
    "Storage": "BATTERY",  # the nearest canonical type; the native label stays on the record
    "Multiple Fuels": "OTHER",
    "Other Renewables": "OTHER",
    "Other": "OTHER",
    "Waste": "OTHER",  # early years of the feed; municipal waste is not all biomass
}

# reserve_market_results `service` -> canonical ancillary service product.
AS_PRODUCTS: dict[str, str] = {
    "REG": "OTHER",
    "SR": "SYNC",  # synchronized (spinning) reserve, 10 minutes
    "PR": "PRIMARY",  # primary reserve: synchronized plus non-synchronized, 10 minutes
    "NSR": "NON_SPIN",  # non-synchronized reserve, before the 2022 reserve market reform
    "30MIN": "SUPPLEMENTAL",  # thirty-minute reserve
}
# reserve_market_results moved from hourly to 5-minute intervals at this instant (EPT midnight).
RESERVE_FIVE_MINUTE_SINCE = datetime(2022, 9, 1, 4, tzinfo=UTC)

INST_AREA_PREFIX = "INST/"
RTO_AREAS = frozenset({"PJM RTO", "RTO"})


def metered_area_type(area: str, zone: str) -> str:
    """The type of an hrl_load_metered load area, from its `zone` cell: the RTO, a zone (the area
    named as its zone), else a load area inside a zone (OTHER)."""
    return "RTO" if area in RTO_AREAS else "ZONE" if area == zone else "OTHER"


def inst_area(area: str) -> tuple[str, str]:
    """(area id, area type) of an inst_load area: the RTO, a region (OTHER), else a zone; the id
    carries INST_AREA_PREFIX (see INST_LOAD)."""
    kind = "RTO" if area in RTO_AREAS else "OTHER" if area.endswith("REGION") else "ZONE"
    return INST_AREA_PREFIX + area, kind
