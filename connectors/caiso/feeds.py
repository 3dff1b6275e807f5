"""CAISO: the feeds behind each dataset, their columns, request windows, rate limits, and how
CAISO's codes map to the canonical vocabularies.

Two services:
- OASIS `SingleZip` (http://oasis.caiso.com/oasisapi/SingleZip): a zip per query holding one
  CSV per query (`resultformat=6`; XML without it). Times come twice: `*_GMT` columns with a
  "-00:00" offset, and the Pacific operating day and hour (`OPR_DT`, `OPR_HR` 1..25). UTC is
  always read from the GMT columns, so DST days need no special handling. "No data" is an HTTP
  200 whose zip holds an XML `OASISReport` with `ERR_CODE` 1000. OASIS asks for about one
  request per 5 seconds and keeps about 39 months online.
- Today's Outlook (https://www.caiso.com/outlook/history/YYYYMMDD/<file>.csv): one CSV per
  Pacific day, 5-minute rows labelled with the Pacific wall clock and no offset (see
  outlook.py for how the labels are read on DST days). Daily files reach back to mid-2018.

Codes that are not in the maps below raise a ParseError. OTHER is used only where it is the
honest mapping, each one named here:
- fuel "Other" of the Outlook fuel-source file (CAISO's own catch-all);
- fuel "THERMAL" of the Daily Renewables Watch (gas, coal cogeneration and oil in one number);
- load areas of SLD_FCST that are not a CAISO transmission access charge area (the WEIM
  balancing authorities and their sub-areas, e.g. PACE, NEVP, BANCSMUD): area_type OTHER.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas.catalog import Dataset

ISO = "CAISO"
OASIS_URL = "http://oasis.caiso.com/oasisapi/SingleZip"
OUTLOOK_HISTORY_URL = "https://www.caiso.com/outlook/history/{day}/{file}.csv"
OUTLOOK_CURRENT_URL = "https://www.caiso.com/outlook/current/{file}.csv"
OASIS_TIME_FORMAT = "%Y%m%dT%H:%M-0000"  # startdatetime / enddatetime, always given in UTC
OASIS_RESULT_CSV = 6
OASIS_SECONDS_PER_REQUEST = 5.0  # OASIS throttles clients that ask more often
OUTLOOK_SECONDS_PER_REQUEST = 1.0  # a courtesy: caiso.com publishes no limit
OASIS_NODES_PER_REQUEST = 10  # longer `node=` lists are paged into several requests
OASIS_HISTORY = "about 39 months online (older data only through CAISO's archive requests)"
OUTLOOK_HISTORY = "daily files back to about mid-2018"

# OASIS CSV columns read by every parser.
START = "INTERVALSTARTTIME_GMT"
END = "INTERVALENDTIME_GMT"
MARKET_RUN = "MARKET_RUN_ID"
DATA_ITEM = "XML_DATA_ITEM"
OPR_DATE = "OPR_DT"
# The same quantities in the XML result format (REPORT_HEADER fields are copied onto each row).
XML_START = "INTERVAL_START_GMT"
XML_END = "INTERVAL_END_GMT"
XML_MARKET_RUN = "MKT_TYPE"
XML_DATA_ITEM = "DATA_ITEM"
XML_RESOURCE = "RESOURCE_NAME"
XML_OPR_DATE = "OPR_DATE"
XML_VALUE = "VALUE"
XML_EXECUTION = "EXECUTION_TYPE"
# What every OASIS parser reads first, in both formats: interval start and end, market run.
RUN_COLUMNS = (START, END, MARKET_RUN)
XML_RUN_COLUMNS = (XML_START, XML_END, XML_MARKET_RUN)

# The time OASIS generated a file, in its member name, in Pacific wall-clock time:
# 20230812_20230813_SLD_FCST_N_20231115_21_27_45_v1.csv -> 2023-11-15 21:27:45 Pacific. The
# recorded "no data" zip proves the zone: member ..._20231116_10_39_53_v1.xml carries
# <TimeDate>2023-11-16T18:39:53.815Z</TimeDate>, 8 hours later (PST).
OASIS_STAMP_IN_NAME = r"_(\d{8})_(\d{2})_(\d{2})_(\d{2})_v\d+\.\w+$"
# A publish time a response's name may carry in UTC, as the client names Outlook files:
# "caiso_outlook_20240310_fuelsource_pub20240311T081500Z.csv" (from Last-Modified).
PUBLISHED_IN_NAME = r"pub(\d{8}T\d{6}Z)"
# The Pacific day of an Outlook file whose rows hold only "HH:MM": the 8 digits in its name.
DAY_IN_NAME = r"(?<!\d)(\d{8})(?![\dT])"

# The OASIS "no data" answer; any other ERR_CODE is an error of the request.
NO_DATA_CODE = "1000"


@dataclass(frozen=True)
class OasisQuery:
    """One OASIS query as the client requests it and the parser reads it."""

    queryname: str
    dataset: Dataset
    version: int
    market_run_id: str | None  # request parameter; None asks for every market run
    minutes: int
    value_column: str  # the CSV column holding the number (CAISO names it per query)
    window: timedelta  # the longest span of one request for a node or region list
    window_all: timedelta  # ... for grp_type=ALL (every node)
    history: str = OASIS_HISTORY
    by_node: bool = False  # takes `node=` or `grp_type=`

    @property
    def name(self) -> str:
        return f"{self.queryname}_{self.market_run_id or 'ALL'}"


@dataclass(frozen=True)
class OutlookFile:
    """One Today's Outlook daily CSV."""

    file: str
    dataset: Dataset
    history: str = OUTLOOK_HISTORY

    @property
    def name(self) -> str:
        return f"outlook_{self.file}"


Feed = OasisQuery | OutlookFile

PRC_LMP = OasisQuery(
    "PRC_LMP",
    Dataset.LMP_DA_HOURLY,
    version=12,
    market_run_id="DAM",
    minutes=60,
    value_column="MW",
    window=timedelta(days=31),
    window_all=timedelta(days=1),
    by_node=True,
)
PRC_RTPD_LMP = OasisQuery(
    "PRC_RTPD_LMP",
    Dataset.LMP_RT_15MIN,
    version=3,
    market_run_id="RTPD",
    minutes=15,
    value_column="PRC",
    window=timedelta(days=1),
    window_all=timedelta(hours=1),
    by_node=True,
)
PRC_INTVL_LMP = OasisQuery(
    "PRC_INTVL_LMP",
    Dataset.LMP_RT_5MIN,
    version=3,
    market_run_id="RTM",
    minutes=5,
    value_column="VALUE",
    window=timedelta(days=1),
    window_all=timedelta(hours=1),
    by_node=True,
)
# Ancillary service clearing prices per AS region and type; the price sits in a column named MW.
PRC_AS = OasisQuery(
    "PRC_AS",
    Dataset.AS_PRICES,
    version=12,
    market_run_id="DAM",
    minutes=60,
    value_column="MW",
    window=timedelta(days=31),
    window_all=timedelta(days=31),
)
PRC_INTVL_AS = OasisQuery(
    "PRC_INTVL_AS",
    Dataset.AS_PRICES,
    version=1,
    market_run_id="RTM",
    minutes=15,
    value_column="MW",
    window=timedelta(hours=1),
    window_all=timedelta(hours=1),
)
# Actual load (ACTUAL) and the DAM, 2DA, 7DA and RTM forecasts per TAC / WEIM area, all in one.
SLD_FCST = OasisQuery(
    "SLD_FCST",
    Dataset.LOAD,
    version=1,
    market_run_id=None,
    minutes=60,
    value_column="MW",
    window=timedelta(days=31),
    window_all=timedelta(days=31),
)
OUTLOOK_FUELSOURCE = OutlookFile("fuelsource", Dataset.FUEL_MIX)
OUTLOOK_DEMAND = OutlookFile("demand", Dataset.LOAD)

# The feeds of each dataset, in the order the client fetches them.
FEEDS: dict[Dataset, tuple[Feed, ...]] = {
    Dataset.LMP_DA_HOURLY: (PRC_LMP,),
    Dataset.LMP_RT_15MIN: (PRC_RTPD_LMP,),
    Dataset.LMP_RT_5MIN: (PRC_INTVL_LMP,),
    Dataset.AS_PRICES: (PRC_AS, PRC_INTVL_AS),
    Dataset.LOAD: (SLD_FCST, OUTLOOK_DEMAND),
    Dataset.FUEL_MIX: (OUTLOOK_FUELSOURCE,),
}

TRADING_HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")

# LMP datasets: the query and the canonical market.
LMP_QUERIES: dict[Dataset, tuple[OasisQuery, str]] = {
    Dataset.LMP_DA_HOURLY: (PRC_LMP, "DA_HOURLY"),
    Dataset.LMP_RT_15MIN: (PRC_RTPD_LMP, "RT_15MIN"),
    Dataset.LMP_RT_5MIN: (PRC_INTVL_LMP, "RT_5MIN"),
}
LMP_NODE_ID = "NODE_ID"
LMP_NODE_NAME = "NODE"
LMP_TYPE = "LMP_TYPE"
# One row per component: LMP_TYPE in the CSV, XML_DATA_ITEM (DATA_ITEM in XML) beside it.
LMP_COMPONENTS: dict[str, str] = {
    "LMP": "lmp",
    "MCE": "energy",
    "MCC": "congestion",
    "MCL": "loss",
    # CAISO's greenhouse-gas component: LMP = MCE + MCC + MCL + MGHG. Non-zero only where
    # WEIM transfers into California are priced; kept in native_fields, never folded into
    # energy, so lmp stays as published and energy + congestion + loss = lmp - ghg.
    "MGHG": "ghg",
    "LMP_PRC": "lmp",
    "LMP_ENE_PRC": "energy",
    "LMP_CONG_PRC": "congestion",
    "LMP_LOSS_PRC": "loss",
    "LMP_GHG_PRC": "ghg",
}
# The native name each component's value is kept under in a record's native_fields.
COMPONENT_NATIVE = {
    "energy": "LMP_ENE_PRC",
    "congestion": "LMP_CONG_PRC",
    "loss": "LMP_LOSS_PRC",
    "ghg": "LMP_GHG_PRC",
}


def location_type(node: str) -> str:
    """Canonical location type of an OASIS pricing node, from CAISO's naming.

    TH_* are the trading hubs; DLAP_* (default) and SLAP_* (sub) load aggregation points are
    load zones; other *-APND names are aggregated pricing nodes; everything else is a node.
    """
    if node.startswith("TH_"):
        return "HUB"
    if node.startswith(("DLAP_", "SLAP_")):
        return "LOAD_ZONE"
    if node.endswith("-APND"):
        return "AGGREGATE"
    return "NODE"


AS_TYPE = "ANC_TYPE"
AS_REGION = "ANC_REGION"
AS_PRODUCTS: dict[str, str] = {
    "RU": "REG_UP",
    "RD": "REG_DOWN",
    "SR": "SPIN",
    "NR": "NON_SPIN",
    "RMU": "REG_MILEAGE_UP",
    "RMD": "REG_MILEAGE_DOWN",
}
# XML_DATA_ITEM of each clearing price -> its ANC_TYPE (the XML format has only the item).
AS_PRICE_ITEMS: dict[str, str] = {
    "RU_CLR_PRC": "RU",
    "RD_CLR_PRC": "RD",
    "SP_CLR_PRC": "SR",
    "NS_CLR_PRC": "NR",
    "RMU_CLR_PRC": "RMU",
    "RMD_CLR_PRC": "RMD",
}
# (MARKET_RUN_ID, interval minutes) -> canonical market of an AS price.
AS_MARKETS: dict[tuple[str, int], str] = {
    ("DAM", 60): "DA_HOURLY",
    ("HASP", 60): "RT_HOURLY",
    ("HASP", 15): "RT_15MIN",
    ("RTM", 15): "RT_15MIN",
    ("RTM", 5): "RT_5MIN",
}

LOAD_AREA = "TAC_AREA_NAME"
LOAD_EXECUTION = "EXECUTION_TYPE"
RTO_AREA = "CA ISO-TAC"  # the whole CAISO balancing area in SLD_FCST


def area_type(area: str) -> str:
    """CA ISO-TAC is CAISO as a whole; other *-TAC names are its transmission access charge
    areas; the rest are WEIM balancing authorities and sub-areas (OTHER, see the module doc)."""
    if area == RTO_AREA:
        return "RTO"
    if area.endswith("-TAC"):
        return "TAC"
    return "OTHER"


@dataclass(frozen=True)
class LoadSeries:
    """What one SLD_FCST XML_DATA_ITEM is.

    OASIS does not say when a forecast was made. Its publications schedule does: the DAM, 2DA
    and 7DA forecasts are published daily at 09:10 Pacific, 1, 2 and 7 days before the
    operating day; the RTM forecasts are made for each interval, 22.5 minutes (15-minute RTPD)
    and 2.5 minutes (5-minute RTD) before it starts. forecast_made_at_utc is that nominal time.
    """

    kind: str  # ACTUAL | FORECAST
    market_run_id: str
    minutes: int
    days_ahead: int | None = None  # daily forecasts: published this many days before OPR_DT
    lead: timedelta | None = None  # interval forecasts: made this long before the interval


DAILY_FORECAST_PUBLISHED_AT = (9, 10)  # 09:10 Pacific
LOAD_SERIES: dict[str, LoadSeries] = {
    "SYS_FCST_ACT_MW": LoadSeries("ACTUAL", "ACTUAL", 60),
    "SYS_FCST_DA_MW": LoadSeries("FORECAST", "DAM", 60, days_ahead=1),
    "SYS_FCST_2DA_MW": LoadSeries("FORECAST", "2DA", 60, days_ahead=2),
    "SYS_FCST_7DA_MW": LoadSeries("FORECAST", "7DA", 60, days_ahead=7),
    "SYS_FCST_15MIN_MW": LoadSeries("FORECAST", "RTM", 15, lead=timedelta(minutes=22.5)),
    "SYS_FCST_5MIN_MW": LoadSeries("FORECAST", "RTM", 5, lead=timedelta(minutes=2.5)),
}

# Today's Outlook. Rows are 5-minute intervals labelled with their END (see outlook.py).
OUTLOOK_TIME = "Time"
OUTLOOK_MINUTES = 5
# Outlook demand is the CAISO balancing area's telemetered demand. It is a different
# measurement (5-minute) from SLD_FCST's hourly CA ISO-TAC actual, so it keeps its own area id:
# one natural key never holds both.
OUTLOOK_AREA = "CAISO"
OUTLOOK_AREA_TYPE = "RTO"
# The column holding actual demand: demand.csv ("Current demand") and the 7-day resource
# adequacy outlook rtm_forecast_7day.csv ("Demand"). Forecast columns are kept in native_fields.
OUTLOOK_DEMAND_COLUMNS = ("Current demand", "Demand")
# fuelsource.csv columns -> (fuel_type_native in today's spelling, canonical fuel type).
# Matched without regard to case: older files spell "Natural gas", "Large hydro".
OUTLOOK_FUELS: dict[str, tuple[str, str]] = {
    label.lower(): (label, fuel)
    for label, fuel in (
        ("Solar", "SOLAR"),
        ("Wind", "WIND"),
        ("Geothermal", "GEOTHERMAL"),
        ("Biomass", "BIOMASS"),
        ("Biogas", "BIOMASS"),
        ("Small hydro", "HYDRO"),
        ("Coal", "COAL"),
        ("Nuclear", "NUCLEAR"),
        ("Natural Gas", "GAS"),
        ("Large Hydro", "HYDRO"),
        ("Batteries", "BATTERY"),  # negative while charging
        ("Imports", "IMPORTS"),
        ("Other", "OTHER"),
    )
}

# Daily Renewables Watch (content.caiso.com/green/renewrpt/YYYYMMDD_DailyRenewablesWatch.txt):
# two tab-separated hourly tables, hour ending 1..24 in Pacific wall-clock time.
RENEWABLES_WATCH_MARK = "Hourly Breakdown of"
RENEWABLES_WATCH_FUELS: dict[str, str] = {
    "GEOTHERMAL": "GEOTHERMAL",
    "BIOMASS": "BIOMASS",
    "BIOGAS": "BIOMASS",
    "SMALL HYDRO": "HYDRO",
    "WIND TOTAL": "WIND",
    "SOLAR": "SOLAR",
    "SOLAR PV": "SOLAR",
    "SOLAR THERMAL": "SOLAR",
    "NUCLEAR": "NUCLEAR",
    "THERMAL": "OTHER",
    "IMPORTS": "IMPORTS",
    "HYDRO": "HYDRO",
}
# The second table's RENEWABLES is the sum of the first table: kept in native_fields only.
RENEWABLES_WATCH_TOTALS = frozenset({"RENEWABLES"})
