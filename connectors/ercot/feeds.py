"""The ERCOT feeds OptiBid reads: reports, URLs, column names, posting windows, rate limits, and
how ERCOT's own codes map onto the canonical vocabularies.

Two doors lead to the same report documents (zips holding one CSV each):
- MIS: `IceDocListJsonWS?reportTypeId=N` lists the recent postings (PublishDate with an offset,
  ConstructedName `cdr.<id>.0000000000000000.<YYYYMMDD>.<HHMMSS>.<DOC>_csv.zip`, a `_csv` and an
  `_xml` variant of each); `mirDownload?doclookupId=<DocID>` downloads one. No credentials, but MIS
  only keeps days of postings (it trims older ones report by report).
- Public API: `/archive/<emil id>` lists postings by `postDatetimeFrom/To` (Central local time,
  no offset) in pages (`_meta.totalPages`); `?download=<docId>` downloads one. Needs an Azure B2C
  id token (username/password) and the `Ocp-Apim-Subscription-Key`; reaches back years.
The fuel mix comes from the public dashboard JSON, which holds the previous and current day only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas.catalog import Dataset

ISO = "ERCOT"

MIS_LIST_URL = "https://www.ercot.com/misapp/servlets/IceDocListJsonWS"
MIS_DOWNLOAD_URL = "https://www.ercot.com/misdownload/servlets/mirDownload"
API_BASE_URL = "https://api.ercot.com/api/public-reports"
# The token endpoint and the public client id of ERCOT's sign-in flow, as ERCOT documents them.
SIGN_IN_URL = "https://ercotb2c.b2clogin.com/ercotb2c.onmicrosoft.com/B2C_1_PUBAPI-ROPC-FLOW/oauth2/v2.0/token"
SIGN_IN_CLIENT_ID = "fec253ea-0d06-4272-a5e6-b478baeecd70"
FUEL_MIX_URL = "https://www.ercot.com/api/1/services/read/dashboards/fuel-mix.json"

# The public API admits 30 requests a minute per user; MIS states no limit, one a second is polite.
API_MIN_INTERVAL_S = 2.0
MIS_MIN_INTERVAL_S = 1.0
API_PAGE_SIZE = 1000  # the largest page the archive listing serves
ID_TOKEN_LIFETIME_S = 3600  # ERCOT's id tokens last an hour; renewed five minutes early


@dataclass(frozen=True)
class Report:
    """One ERCOT report (EMIL id) and what its documents look like."""

    emil_id: str
    report_type_id: int  # MIS reportTypeId
    title: str
    doc_name: str  # the token naming its documents, e.g. DAMSPNP4190
    columns: tuple[str, ...]  # the CSV header
    interval_minutes: int
    # Documents about a delivery window [start, end) are posted in
    # [start - posted_before, end + posted_after): how the listing is narrowed to the window.
    posted_before: timedelta
    posted_after: timedelta
    cadence: str  # how often ERCOT posts a document

    @property
    def archive_url(self) -> str:
        return f"{API_BASE_URL}/archive/{self.emil_id.lower()}"


DAM_SPP = Report(
    emil_id="NP4-190-CD",
    report_type_id=12331,
    title="DAM Settlement Point Prices",
    doc_name="DAMSPNP4190",
    columns=("DeliveryDate", "HourEnding", "SettlementPoint", "SettlementPointPrice", "DSTFlag"),
    interval_minutes=60,
    posted_before=timedelta(days=2),  # one document per operating day, posted the day before
    posted_after=timedelta(0),
    cadence="daily, after the day-ahead market clears (about 13:00 the day before)",
)
RT_SPP = Report(
    emil_id="NP6-905-CD",
    report_type_id=12301,
    title="Settlement Point Prices at Resource Nodes, Hubs and Load Zones",
    doc_name="SPPHLZNP6905",
    columns=(
        "DeliveryDate",
        "DeliveryHour",
        "DeliveryInterval",
        "SettlementPointName",
        "SettlementPointType",
        "SettlementPointPrice",
        "DSTFlag",
    ),
    interval_minutes=15,
    posted_before=timedelta(0),
    posted_after=timedelta(minutes=30),  # one document per 15 minutes, minutes after the interval
    cadence="every 15 minutes, one settlement interval per document",
)
SCED_LMP = Report(
    emil_id="NP6-788-CD",
    report_type_id=12300,
    title="LMPs by Resource Nodes, Load Zones and Trading Hubs",
    doc_name="LMPSROSNODENP6788",
    columns=("SCEDTimestamp", "RepeatedHourFlag", "SettlementPoint", "LMP"),
    interval_minutes=5,
    posted_before=timedelta(0),
    posted_after=timedelta(minutes=10),  # one document per SCED run, seconds after the run
    cadence="every SCED run (about every 5 minutes, more often when SCED re-runs)",
)
DAM_MCPC = Report(
    emil_id="NP4-188-CD",
    report_type_id=12329,
    title="DAM Clearing Prices for Capacity",
    doc_name="DAMCPCNP4188",
    columns=("DeliveryDate", "HourEnding", "AncillaryType", "MCPC", "DSTFlag"),
    interval_minutes=60,
    posted_before=timedelta(days=2),
    posted_after=timedelta(0),
    cadence="daily, after the day-ahead market clears",
)
ACTUAL_LOAD = Report(
    emil_id="NP6-345-CD",
    report_type_id=13101,
    title="Actual System Load by Weather Zone",
    doc_name="ACTUALSYSLOADWZNP6345",
    columns=(
        "OperDay",
        "HourEnding",
        "COAST",
        "EAST",
        "FAR_WEST",
        "NORTH",
        "NORTH_C",
        "SOUTHERN",
        "SOUTH_C",
        "WEST",
        "TOTAL",
        "DSTFlag",
    ),
    interval_minutes=60,
    posted_before=timedelta(0),
    posted_after=timedelta(days=2),  # the whole operating day, posted the next morning (05:50)
    cadence="daily, the morning after the operating day",
)
LOAD_FORECAST = Report(
    emil_id="NP3-561-CD",
    report_type_id=12312,
    title="Seven-Day Load Forecast by Weather Zone",
    doc_name="LFCWEATHERNP3561",
    columns=(
        "DeliveryDate",
        "HourEnding",
        "Coast",
        "East",
        "FarWest",
        "North",
        "NorthCentral",
        "SouthCentral",
        "Southern",
        "West",
        "SystemTotal",
        "DSTFlag",
    ),
    interval_minutes=60,
    # A forecast is fetched by when it was issued: the vintages posted inside the window.
    posted_before=timedelta(0),
    posted_after=timedelta(0),
    cadence="hourly, each document the current day and the next seven",
)

# The reports behind each dataset; the load forecast is fetched only when asked for.
REPORTS: dict[Dataset, Report] = {
    Dataset.LMP_DA_HOURLY: DAM_SPP,
    Dataset.LMP_RT_15MIN: RT_SPP,
    Dataset.LMP_RT_5MIN: SCED_LMP,
    Dataset.AS_PRICES: DAM_MCPC,
    Dataset.LOAD: ACTUAL_LOAD,
}

# Settlement point names, where a report gives no type column (NP4-190, NP6-788): ERCOT names
# hubs HB_*, load zones LZ_* and DC-tie zones DC_*; every other settlement point is a resource
# node (RN, combined-cycle and private-network nodes), so RESOURCE_NODE is the honest catch-all.
NAME_PREFIX_TYPES: tuple[tuple[str, str], ...] = (
    ("HB_", "HUB"),
    ("LZ_", "LOAD_ZONE"),
    ("DC_", "INTERFACE"),
)
DEFAULT_LOCATION_TYPE = "RESOURCE_NODE"

# NP6-905's SettlementPointType. Unknown codes are rejected.
SETTLEMENT_POINT_TYPES: dict[str, str] = {
    "HU": "HUB",  # trading hub
    "SH": "HUB",  # ERCOT 345 kV hub-bus average (HB_BUSAVG)
    "AH": "HUB",  # ERCOT hub average (HB_HUBAVG)
    "LZ": "LOAD_ZONE",
    "LZEW": "LOAD_ZONE",  # energy-weighted price of the same load zone
    "LZ_DC": "INTERFACE",  # DC-tie load zone
    "LZ_DCEW": "INTERFACE",
    "RN": "RESOURCE_NODE",
    "PCCRN": "RESOURCE_NODE",  # physical node of a combined-cycle unit
    "LCCRN": "RESOURCE_NODE",  # logical node of a combined-cycle plant
    "PUN": "RESOURCE_NODE",  # private-use network node
}
# A load zone is published twice per interval (plain and energy weighted, two prices); the
# energy-weighted one becomes its own location so that the natural key stays unique.
ENERGY_WEIGHTED_TYPES = frozenset({"LZEW", "LZ_DCEW"})
ENERGY_WEIGHTED_SUFFIX = "_EW"

# NP4-188's AncillaryType. Responsive Reserve is ERCOT's spinning reserve. Unknown codes raise.
AS_PRODUCTS: dict[str, str] = {
    "REGUP": "REG_UP",
    "REGDN": "REG_DOWN",
    "RRS": "SPIN",
    "NSPIN": "NON_SPIN",
    "ECRS": "ECRS",
}
AS_REGION = "ERCOT"  # DAM capacity prices are system-wide

# The fuel-mix dashboard's labels. ERCOT's own "Other" is the one catch-all; unknown labels raise.
FUEL_TYPES: dict[str, str] = {
    "Coal and Lignite": "COAL",
    "Natural Gas": "GAS",
    "Nuclear": "NUCLEAR",
    "Solar": "SOLAR",
    "Wind": "WIND",
    "Hydro": "HYDRO",
    "Power Storage": "BATTERY",  # net of charging: negative while batteries charge
    "Other": "OTHER",
}
FUEL_MIX_MINUTES = 5

# Load areas: the actual (NP6-345) and the forecast (NP3-561) spell the same weather zones
# differently; both map to NP6-345's names. The system total is the RTO-level area "ERCOT".
SYSTEM_AREA = "ERCOT"


def _load_areas(report: Report, zones: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """A load report's area columns (after HourEnding: its weather zones, then the system total,
    then DSTFlag) -> (area id, area type); `zones` are NP6-345's names of its zones, in order."""
    *zone_columns, total = report.columns[2:-1]
    areas = dict(zip(zone_columns, ((zone, "WEATHER_ZONE") for zone in zones), strict=True))
    return {**areas, total: (SYSTEM_AREA, "RTO")}


ACTUAL_LOAD_AREAS = _load_areas(ACTUAL_LOAD, ACTUAL_LOAD.columns[2:-2])  # columns named as zones
FORECAST_LOAD_AREAS = _load_areas(
    LOAD_FORECAST,
    ("COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTH_C", "SOUTHERN", "WEST"),
)


def location_type_of(name: str) -> str:
    """The canonical type of a settlement point from its name (see NAME_PREFIX_TYPES)."""
    for prefix, kind in NAME_PREFIX_TYPES:
        if name.startswith(prefix):
            return kind
    return DEFAULT_LOCATION_TYPE
