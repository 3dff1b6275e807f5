"""CAISO payloads for the parser contract: the recorded responses in ../shared, and edge cases
written here in CAISO's own layouts (OASIS SingleZip CSV and XML, Today's Outlook CSV).

The DST cases cover 2024-03-10 (23 hours) and 2024-11-03 (25 hours) in Pacific time. OASIS
rows carry GMT times, so those days need nothing special there; the Outlook files label rows
with the wall clock, so they show the blank spring-forward rows and the repeated hour.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.catalog import Dataset, Iso
from schemas.timeutil import expected_intervals, local_midnight_utc
from tests.unit.connectors.contract import Expect, Feed, Shows, inline, shared_file

PACIFIC = ZoneInfo("America/Los_Angeles")
SPRING = date(2024, 3, 10)  # 23 hours
FALL = date(2024, 11, 3)  # 25 hours
DST_DAYS = (SPRING, FALL)

LMP_DAM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,NODE_ID_XML,NODE_ID,"
    "NODE,MARKET_RUN_ID,LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,MW,GROUP"
)
# PRC_RTPD_LMP names its value column PRC, PRC_INTVL_LMP names it VALUE.
LMP_RT_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,NODE_ID_XML,NODE_ID,NODE,"
    "MARKET_RUN_ID,LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,{value},OPR_INTERVAL,GROUP"
)
AS_DAM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,OPR_TYPE,ANC_TYPE,"
    "ANC_REGION,MARKET_RUN_ID,XML_DATA_ITEM,MW,GROUP"
)
AS_RTM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_TYPE,ANC_TYPE,XML_DATA_ITEM,"
    "MARKET_RUN_ID,MW,ANC_REGION,OPR_INTERVAL,GROUP"
)
SLD_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,LOAD_TYPE,OPR_DT,OPR_HR,OPR_INTERVAL,"
    "MARKET_RUN_ID,TAC_AREA_NAME,LABEL,XML_DATA_ITEM,POS,MW,EXECUTION_TYPE,GROUP"
)
FUELS = (
    "Solar,Wind,Geothermal,Biomass,Biogas,Small hydro,Coal,Nuclear,Natural Gas,Large Hydro,"
    "Batteries,Imports,Other"
)
COMPONENT_ITEMS = {
    "LMP": "LMP_PRC",
    "MCE": "LMP_ENE_PRC",
    "MCC": "LMP_CONG_PRC",
    "MCL": "LMP_LOSS_PRC",
    "MGHG": "LMP_GHG_PRC",
}


def zipped(*members: tuple[str, str]) -> Callable[[], bytes]:
    """A SingleZip-like zip of (member name, text), with fixed member times."""

    def build() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in members:
                archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text)
        return buffer.getvalue()

    return build


def csv_text(header: str, lines: Iterable[str]) -> str:
    return "\n".join([header, *lines]) + "\n"


def gmt(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S-00:00")


def operating_hour(day: date, start: datetime) -> int:
    """OPR_HR: real hours since Pacific midnight, 1..23 / 1..25 on DST days."""
    return int((start - local_midnight_utc("CAISO", day)) // timedelta(hours=1)) + 1


# LMP ---------------------------------------------------------------------------------------

LMP_DA = Feed(Iso.CAISO, Dataset.LMP_DA_HOURLY)
LMP_RT15 = Feed(Iso.CAISO, Dataset.LMP_RT_15MIN)
LMP_RT5 = Feed(Iso.CAISO, Dataset.LMP_RT_5MIN)


def lmp_lines(
    day: date, minutes: int, nodes: tuple[str, ...], *, rt: str | None = None, bump: float = 0.0
) -> list[str]:
    """Every component row of `nodes` over one Pacific day, in the PRC_LMP layout (or the
    real-time one with MARKET_RUN_ID `rt`). energy + congestion + loss = LMP, GHG 0."""
    lines = []
    for n, start in enumerate(expected_intervals("CAISO", day, minutes)):
        end = start + timedelta(minutes=minutes)
        hour = operating_hour(day, start)
        interval = 0 if minutes == 60 else start.minute // minutes + 1
        for node in nodes:
            energy = 25.0 + n % 10 + bump
            congestion = 1.25
            if node.startswith("DLAP_") and n % 11 == 3:
                congestion = -40.0  # a negative LMP: congestion relief beyond the energy price
            loss = 0.37
            values = {
                "LMP": round(energy + congestion + loss, 2),
                "MCE": energy,
                "MCC": congestion,
                "MCL": loss,
                "MGHG": 0.0,
            }
            for lmp_type, value in values.items():
                item = COMPONENT_ITEMS[lmp_type]
                times = f"{gmt(start)},{gmt(end)},{day},{hour}"
                if rt is None:
                    lines.append(
                        f"{times},{interval},{node},{node},{node},DAM,{lmp_type},{item},{node},"
                        f"ALL,1,{value:.5f},1"
                    )
                else:
                    lines.append(
                        f"{times},{node},{node},{node},{rt},{lmp_type},{item},{node},ALL,1,"
                        f"{value:.5f},{interval},1"
                    )
    return lines


def only(lines: list[str], start: str, *needles: str) -> list[str]:
    """The rows of the interval starting at `start` (UTC) that contain every needle."""
    return [
        line
        for line in lines
        if line.startswith(f"{start}-00:00,") and all(needle in line for needle in needles)
    ]


DAM_NODES = ("TH_NP15_GEN-APND", "DLAP_PGAE-APND", "CAPTJACK_5_N003")
# The repeated hour of the fall-back day, 01:00 PDT (08:00Z) and 01:00 PST (09:00Z).
REPEATED_HOUR = ("2024-11-03T08:00:00", "2024-11-03T09:00:00")


def lmp_dam_dst_zip() -> bytes:
    fall = lmp_lines(FALL, 60, DAM_NODES)
    revised = lmp_lines(FALL, 60, DAM_NODES, bump=5.0)
    return zipped(
        (
            "20240310_20240310_PRC_LMP_DAM_20240311_09_01_02_v12.csv",
            csv_text(LMP_DAM_HEADER, lmp_lines(SPRING, 60, DAM_NODES)),
        ),
        ("20241103_20241103_PRC_LMP_DAM_20241104_09_00_41_v12.csv", csv_text(LMP_DAM_HEADER, fall)),
        # Published again two days later: both repeated hours of TH_NP15 revised (+5 energy).
        (
            "20241103_20241103_PRC_LMP_DAM_20241106_10_12_00_v12.csv",
            csv_text(
                LMP_DAM_HEADER,
                only(revised, REPEATED_HOUR[0], "TH_NP15")
                + only(revised, REPEATED_HOUR[1], "TH_NP15"),
            ),
        ),
    )()


# grp_type=ALL answers with one member per component, named without a generation stamp, so
# their revision is 0.
GRP_ALL_VALUES = {
    "LMP": ("31.84", "30.11"),
    "MCE": ("31.02", "29.5"),
    "MCC": ("0", "0"),
    "MCL": ("0.82", "0.61"),
    "MGHG": ("0", "0"),
}
GRP_ALL_ROW = (
    "2024-07-05T{start}:00:00-00:00,2024-07-05T{end}:00:00-00:00,2024-07-05,{hour},0,"
    "TH_ZP26_GEN-APND,TH_ZP26_GEN-APND,TH_ZP26_GEN-APND,DAM,{lmp_type},{item},"
    "TH_ZP26_GEN-APND,ALL,1,{value},1"
)
GRP_ALL_MEMBERS = [
    (
        f"20240705_20240705_PRC_LMP_DAM_{lmp_type}_v12.csv",
        csv_text(
            LMP_DAM_HEADER,
            [
                GRP_ALL_ROW.format(
                    start=f"{7 + i:02d}",
                    end=f"{8 + i:02d}",
                    hour=i + 1,
                    lmp_type=lmp_type,
                    item=COMPONENT_ITEMS[lmp_type],
                    value=value,
                )
                for i, value in enumerate(values)
            ],
        ),
    )
    for lmp_type, values in GRP_ALL_VALUES.items()
]

RT15_NODES = ("TH_SP15_GEN-APND", "DLAP_SCE-APND")


def lmp_rt_dst_zip(
    report: str,
    minutes: int,
    nodes: tuple[str, ...],
    generated: tuple[str, str, str],
    revised: tuple[date, float, str, str],
) -> Callable[[], bytes]:
    """A SingleZip of `report` (PRC_RTPD_LMP_RTPD or PRC_INTVL_LMP_RTM, `minutes` apart) over
    both DST days, then a later member revising one interval. `generated`: when each of the
    three members was; `revised`: the day, price bump, interval start and a needle of the rows
    revised."""
    header = LMP_RT_HEADER.format(value="PRC" if minutes == 15 else "VALUE")
    market = report.rsplit("_", 1)[1]  # RTPD or RTM
    revised_day, bump, start, needle = revised

    def member(day: date, generated: str, lines: list[str]) -> tuple[str, str]:
        return f"{day:%Y%m%d}_{day:%Y%m%d}_{report}_{generated}_v3.csv", csv_text(header, lines)

    def lines(day: date, bump: float = 0.0) -> list[str]:
        return lmp_lines(day, minutes, nodes, rt=market, bump=bump)

    return zipped(
        member(SPRING, generated[0], lines(SPRING)),
        member(FALL, generated[1], lines(FALL)),
        member(revised_day, generated[2], only(lines(revised_day, bump), start, needle)),
    )


# A later file revises one 15-minute interval of the second 01:00 (PST).
lmp_rtpd_dst_zip = lmp_rt_dst_zip(
    "PRC_RTPD_LMP_RTPD",
    15,
    RT15_NODES,
    ("20240311_00_40_00", "20241104_00_40_00", "20241104_16_05_00"),
    (FALL, 2.5, "2024-11-03T09:15:00", "TH_SP15"),
)
# A later file revises the interval just after the spring-forward jump (03:00 PDT).
lmp_rtm_dst_zip = lmp_rt_dst_zip(
    "PRC_INTVL_LMP_RTM",
    5,
    ("DLAP_SDGE-APND",),
    ("20240311_00_10_00", "20241104_00_10_00", "20240312_08_00_00"),
    (SPRING, 1.0, "2024-03-10T10:00:00", ""),
)


RT5_HEADER = LMP_RT_HEADER.format(value="VALUE")
RT5_ROW = (
    "2024-07-03T{start}:00-00:00,2024-07-03T{end}:00-00:00,2024-07-03,10,TH_NP15_GEN-APND,"
    "TH_NP15_GEN-APND,TH_NP15_GEN-APND,RTM,{lmp_type},{item},TH_NP15_GEN-APND,ALL,1,{value},"
    "{interval},1"
)


def rt5(start: str, end: str, lmp_type: str, value: str, interval: int) -> str:
    item = COMPONENT_ITEMS[lmp_type]
    return RT5_ROW.format(
        start=start, end=end, lmp_type=lmp_type, item=item, value=value, interval=interval
    )


# A bare member as saved from a SingleZip, named with its generation stamp (the revision).
RT5_BARE = csv_text(
    RT5_HEADER,
    [
        rt5("16:50", "16:55", "LMP", "-12.5", 11),  # negative: midday solar glut
        rt5("16:50", "16:55", "MCE", "-13.1", 11),
        rt5("16:50", "16:55", "MCC", "0.25", 11),
        rt5("16:50", "16:55", "MCL", "0.35", 11),
        rt5("16:50", "16:55", "MGHG", "0", 11),
        rt5("16:55", "17:00", "LMP", "18.02", 12),
        rt5("16:55", "17:00", "MCE", "17.4", 12),
        rt5("16:55", "17:00", "MCE", "17.4", 12),  # the same row twice, verbatim: kept once
        rt5("16:55", "17:00", "MCC", "0.2", 12),
        rt5("16:55", "17:00", "MCL", "0.42", 12),
        rt5("16:55", "17:00", "MGHG", "0", 12),
    ],
)


# Ancillary services --------------------------------------------------------------------------

AS_PRICES = Feed(Iso.CAISO, Dataset.AS_PRICES)
AS_REGIONS = ("AS_CAISO_EXP", "AS_SP26_EXP")
AS_TYPES = {"RU": "RU_CLR_PRC", "RD": "RD_CLR_PRC", "SR": "SP_CLR_PRC", "NR": "NS_CLR_PRC"}
AS_TYPES |= {"RMU": "RMU_CLR_PRC", "RMD": "RMD_CLR_PRC"}


def as_dam_lines(day: date, bump: float = 0.0) -> list[str]:
    lines = []
    for n, start in enumerate(expected_intervals("CAISO", day, 60)):
        end = start + timedelta(hours=1)
        hour = operating_hour(day, start)
        for region in AS_REGIONS:
            for k, (anc_type, item) in enumerate(AS_TYPES.items()):
                price = round(2.0 + k + (n % 5) * 0.5 + bump, 2)
                if region == "AS_SP26_EXP" and anc_type == "RD" and n == 4:
                    price = -0.5  # CAISO's AS prices are >= 0 in practice; a negative is kept
                lines.append(
                    f"{gmt(start)},{gmt(end)},{day},{hour},0,PROC,{anc_type},{region},DAM,"
                    f"{item},{price},1"
                )
    return lines


def as_dam_dst_zip() -> bytes:
    revised = as_dam_lines(FALL, bump=1.0)
    return zipped(
        (
            "20240310_20240310_PRC_AS_DAM_20240309_13_05_12_v12.csv",
            csv_text(AS_DAM_HEADER, as_dam_lines(SPRING)),
        ),
        (
            "20241103_20241103_PRC_AS_DAM_20241102_13_04_55_v12.csv",
            csv_text(AS_DAM_HEADER, as_dam_lines(FALL)),
        ),
        # Regulation up in both repeated hours, published again (a price correction).
        (
            "20241103_20241103_PRC_AS_DAM_20241105_11_00_00_v12.csv",
            csv_text(
                AS_DAM_HEADER,
                only(revised, REPEATED_HOUR[0], ",RU,AS_CAISO_EXP")
                + only(revised, REPEATED_HOUR[1], ",RU,AS_CAISO_EXP"),
            ),
        ),
    )()


AS_RTM_ROW = (
    "2024-07-03T{start}:00-00:00,2024-07-03T{end}:00-00:00,2024-07-03,10,PROC,{anc_type},"
    "{item},RTM,{price},AS_CAISO_EXP,{interval},1"
)


def as_rtm(start: str, anc_type: str, price: str) -> str:
    """A PRC_INTVL_AS row of AS_CAISO_EXP for the 15 minutes from 2024-07-03T`start`Z."""
    begin = datetime.strptime(start, "%H:%M")
    end = begin + timedelta(minutes=15)
    return AS_RTM_ROW.format(
        start=start,
        end=f"{end:%H:%M}",
        anc_type=anc_type,
        item=AS_TYPES[anc_type],
        price=price,
        interval=begin.minute // 15 + 1,
    )


# PRC_INTVL_AS (15-minute RTM); its columns come in another order than PRC_AS.
AS_RTM_ZIP = zipped(
    (
        "20240703_20240703_PRC_INTVL_AS_RTM_20240703_10_05_00_v1.csv",
        csv_text(
            AS_RTM_HEADER,
            [
                as_rtm("17:00", "RU", "4.1"),
                as_rtm("17:00", "SR", "0.9"),
                as_rtm("17:15", "RU", "3.8"),
                as_rtm("17:15", "SR", "0.95"),
            ],
        ),
    ),
    (
        # Generated an hour later: the first RU price was corrected (a second revision).
        "20240703_20240703_PRC_INTVL_AS_RTM_20240703_11_05_00_v1.csv",
        csv_text(AS_RTM_HEADER, [as_rtm("17:00", "RU", "4.6")]),
    ),
)

AS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd">
<MessageHeader><TimeDate>2024-07-02T20:15:03-00:00</TimeDate><Source>OASIS</Source></MessageHeader>
<MessagePayload><RTO><name>CAISO</name>
<REPORT_ITEM>
<REPORT_HEADER><SYSTEM>OASIS</SYSTEM><TZ>PPT</TZ><REPORT>PRC_AS</REPORT><MKT_TYPE>DAM</MKT_TYPE>
<UOM>$/MW</UOM><INTERVAL>ENDING</INTERVAL><SEC_PER_INTERVAL>3600</SEC_PER_INTERVAL></REPORT_HEADER>
<REPORT_DATA><DATA_ITEM>RU_CLR_PRC</DATA_ITEM><RESOURCE_NAME>AS_CAISO_EXP</RESOURCE_NAME>
<OPR_DATE>2024-07-03</OPR_DATE><INTERVAL_NUM>1</INTERVAL_NUM>
<INTERVAL_START_GMT>2024-07-03T07:00:00-00:00</INTERVAL_START_GMT>
<INTERVAL_END_GMT>2024-07-03T08:00:00-00:00</INTERVAL_END_GMT><VALUE>5.2</VALUE></REPORT_DATA>
<REPORT_DATA><DATA_ITEM>RMU_CLR_PRC</DATA_ITEM><RESOURCE_NAME>AS_CAISO_EXP</RESOURCE_NAME>
<OPR_DATE>2024-07-03</OPR_DATE><INTERVAL_NUM>1</INTERVAL_NUM>
<INTERVAL_START_GMT>2024-07-03T07:00:00-00:00</INTERVAL_START_GMT>
<INTERVAL_END_GMT>2024-07-03T08:00:00-00:00</INTERVAL_END_GMT><VALUE>0.11</VALUE></REPORT_DATA>
<REPORT_DATA><DATA_ITEM>NS_CLR_PRC</DATA_ITEM><RESOURCE_NAME>AS_NP26</RESOURCE_NAME>
<OPR_DATE>2024-07-03</OPR_DATE><INTERVAL_NUM>2</INTERVAL_NUM>
<INTERVAL_START_GMT>2024-07-03T08:00:00-00:00</INTERVAL_START_GMT>
<INTERVAL_END_GMT>2024-07-03T09:00:00-00:00</INTERVAL_END_GMT><VALUE>0</VALUE></REPORT_DATA>
</REPORT_ITEM></RTO></MessagePayload></OASISReport>
"""


# Load --------------------------------------------------------------------------------------

LOAD = Feed(Iso.CAISO, Dataset.LOAD)
LOAD_AREAS = ("CA ISO-TAC", "PGE-TAC", "PACE")
LOAD_LABELS = {
    "SYS_FCST_ACT_MW": ("ACTUAL", "ACTUAL", "0", "Total Actual Hourly Integrated Load"),
    "SYS_FCST_DA_MW": ("DAM", "DAM", "1", "Demand Forecast Day Ahead"),
    "SYS_FCST_2DA_MW": ("2DA", "2DA", "2", "Demand Forecast 2-Day Ahead"),
}


def sld_lines(day: date, item: str, areas: tuple[str, ...], bump: float = 0.0) -> list[str]:
    market, execution, load_type, label = LOAD_LABELS[item]
    lines = []
    for n, start in enumerate(expected_intervals("CAISO", day, 60)):
        end = start + timedelta(hours=1)
        for k, area in enumerate(areas):
            mw = round(20000.0 / (k + 1) + 37.5 * n + bump, 2)
            lines.append(
                f"{gmt(start)},{gmt(end)},{load_type},{day},{operating_hour(day, start)},0,"
                f"{market},{area},{label},{item},1.8,{mw},{execution},{k + 1}"
            )
    return lines


def sld_actual_dst_zip() -> bytes:
    revised = sld_lines(SPRING, "SYS_FCST_ACT_MW", LOAD_AREAS, bump=120.0)
    return zipped(
        (
            "20240310_20240310_SLD_FCST_N_20240311_06_30_00_v1.csv",
            csv_text(SLD_HEADER, sld_lines(SPRING, "SYS_FCST_ACT_MW", LOAD_AREAS)),
        ),
        (
            "20241103_20241103_SLD_FCST_N_20241104_06_30_00_v1.csv",
            csv_text(SLD_HEADER, sld_lines(FALL, "SYS_FCST_ACT_MW", LOAD_AREAS)),
        ),
        # Settlement meter data revises the actual of 03:00 PDT (10:00Z) a week later.
        (
            "20240310_20240310_SLD_FCST_N_20240317_06_30_00_v1.csv",
            csv_text(SLD_HEADER, only(revised, "2024-03-10T10:00:00", "CA ISO-TAC")),
        ),
    )()


# Forecasts for the fall-back day: one vintage per horizon (made 1 and 2 days before).
SLD_FORECAST_ZIP = zipped(
    (
        "20241103_20241103_SLD_FCST_N_20241104_06_30_00_v1.csv",
        csv_text(
            SLD_HEADER,
            sld_lines(FALL, "SYS_FCST_DA_MW", ("CA ISO-TAC",))
            + sld_lines(FALL, "SYS_FCST_2DA_MW", ("CA ISO-TAC",), bump=-80.0),
        ),
    )
)


def outlook_lines(day: date, width: int, values: Callable[[int], str]) -> list[str]:
    """One Pacific day of Outlook rows, "MM/DD/YYYY HH:MM" labels ending each 5-minute interval:
    blank rows where the spring wall clock jumps, the fall-back hour's labels twice in order.
    `width` is the number of value columns, `values(n)` the cells of the n-th interval."""
    lines = []
    previous_wall: datetime | None = None
    for n, start in enumerate(expected_intervals("CAISO", day, 5)):
        wall = (start + timedelta(minutes=5)).astimezone(PACIFIC).replace(tzinfo=None)
        skipped = previous_wall + timedelta(minutes=5) if previous_wall else wall
        while skipped < wall:  # 02:00-02:55 on the spring day: kept by CAISO, blank
            lines.append(f"{skipped:%m/%d/%Y %H:%M}" + "," * width)
            skipped += timedelta(minutes=5)
        lines.append(f"{wall:%m/%d/%Y %H:%M},{values(n)}")
        previous_wall = wall
    return lines


OUTLOOK_DEMAND_HEADER = "Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response"


def outlook_demand_dst() -> bytes:
    def values(n: int) -> str:
        return f"{21000 + 3 * n},{20950 + 3 * n},{20990 + 3 * n},"

    lines = outlook_lines(SPRING, 4, values) + outlook_lines(FALL, 4, values)
    return csv_text(OUTLOOK_DEMAND_HEADER, lines).encode()


OUTLOOK_DEMAND_DAILY = (
    b"Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response\n"
    b"00:00,25010,24980,24941,\n"  # closes the previous day's last interval
    b"00:05,24850,24900,24877,\n"
    b"00:10,24850,24900,24802,12\n"  # demand response dispatched (native only)
    b"00:15,24850,24900,,\n"  # not measured yet: forecasts only, no record
    b"00:20,24850,24900,,\n"
)


# Fuel mix ----------------------------------------------------------------------------------

FUEL_MIX = Feed(Iso.CAISO, Dataset.FUEL_MIX)


def outlook_fuel_dst() -> bytes:
    def values(n: int) -> str:
        batteries = 1200 - 9 * (n % 300)  # negative while charging, midday
        return f"{n * 7 % 9000},3100,910,310,205,280,4,2260,7400,2300,{batteries},6900,12"

    lines = outlook_lines(SPRING, 13, values) + outlook_lines(FALL, 13, values)
    return csv_text(f"Time,{FUELS}", lines).encode()


# An older daily file: "HH:MM" labels (the day is in the name) and older spellings.
OUTLOOK_FUEL_DAILY = (
    b"Time,Solar,Wind,Geothermal,Biomass,Biogas,Small hydro,Coal,Nuclear,Natural gas,"
    b"Large hydro,Batteries,Imports,Other\n"
    b"23:50,0,4120,980,390,230,310,19,2240,9120,3010,-61,8010,0\n"  # batteries charging: < 0
    b"23:55,0,4105,981,388,229,309,19,2240,9033,2990,-58,8022,0\n"
    b"00:00,0,4098,981,387,229,309,19,2240,8970,2985,-55,8030,0\n"
)
# The last row, 00:00 after 23:55, is the next day's midnight: the day's last interval.


def _outlook_collapsed_fall(header: str, values: str) -> bytes:
    """A fall-back day written on a fixed 288-slot grid: 01:00-01:55 once (collapsed)."""
    lines = [f"{h:02d}:{m:02d},{values}" for h in range(24) for m in range(0, 60, 5)]
    return csv_text(header, lines).encode()


FUEL_VALUES = "5,3100,910,310,205,280,4,2260,7400,2300,-40,6900,12"

COMPONENTS, NEGATIVE, REVISIONS = Shows.COMPONENTS, Shows.NEGATIVE, Shows.REVISIONS

CASES = [
    # LMP, day-ahead
    LMP_DA.parses(
        "caiso-lmp-da-dst-days",
        inline("caiso_prc_lmp_dam_dst.zip", lmp_dam_dst_zip),
        Expect(3 * (23 + 25) + 2, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS, minutes=60),
    ),
    LMP_DA.parses(
        "caiso-lmp-da-grp-all-members",
        inline("caiso_prc_lmp_dam_all.zip", zipped(*GRP_ALL_MEMBERS)),
        Expect(2, shows=COMPONENTS),
    ),
    # LMP, 15-minute (RTPD)
    LMP_RT15.parses(
        "caiso-lmp-rt15-dst-days",
        inline("caiso_prc_rtpd_lmp_dst.zip", lmp_rtpd_dst_zip),
        Expect(2 * (92 + 100) + 1, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS),
    ),
    # LMP, 5-minute (RTD)
    LMP_RT5.parses(
        "caiso-lmp-rt5-dst-days",
        inline("caiso_prc_intvl_lmp_dst.zip", lmp_rtm_dst_zip),
        Expect(276 + 300 + 1, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS),
    ),
    LMP_RT5.parses(
        "caiso-lmp-rt5-bare-member",
        inline("20240703_20240703_PRC_INTVL_LMP_RTM_20240703_10_02_11_v3.csv", RT5_BARE.encode()),
        Expect(2, shows=COMPONENTS | NEGATIVE),
    ),
    # Ancillary services
    AS_PRICES.parses(
        "caiso-as-dam-dst-days",
        inline("caiso_prc_as_dam_dst.zip", as_dam_dst_zip),
        Expect(2 * 6 * (23 + 25) + 2, DST_DAYS, NEGATIVE | REVISIONS, minutes=60),
    ),
    AS_PRICES.parses(
        "caiso-as-rtm-15min",
        inline("caiso_prc_intvl_as_rtm.zip", AS_RTM_ZIP),
        Expect(5, shows=REVISIONS, minutes=15),
    ),
    AS_PRICES.parses("caiso-as-dam-xml", inline("caiso_prc_as_dam.xml", AS_XML), Expect(3)),
    # Load
    LOAD.parses(
        "caiso-load-sld-fcst-recorded",
        shared_file("caiso", "caiso_oasis_singlezip_SLD_FCST_v1_csv_2023-08-12_to_08-13.zip"),
        Expect(16_728),
    ),
    LOAD.parses(
        "caiso-load-sld-fcst-xml-recorded",
        shared_file("caiso", "caiso_oasis_xml_SLD_FCST_RTM_2014-05-08_excerpt.xml"),
        Expect(3),
    ),
    LOAD.parses(
        "caiso-load-outlook-7day-recorded",
        shared_file("caiso", "caiso_outlook_history_20260311_rtm_forecast_7day.csv"),
        Expect(289, (date(2026, 3, 11),), minutes=5),
    ),
    LOAD.parses(
        "caiso-load-actual-dst-days",
        inline("caiso_sld_fcst_actual_dst.zip", sld_actual_dst_zip),
        Expect(3 * (23 + 25) + 1, DST_DAYS, REVISIONS, minutes=60),
    ),
    LOAD.parses(
        "caiso-load-forecast-fall-day",
        inline("caiso_sld_fcst_forecast_fall.zip", SLD_FORECAST_ZIP),
        Expect(2 * 25, (FALL,)),
    ),
    LOAD.parses(
        "caiso-load-outlook-demand-dst-days",
        inline("caiso_outlook_demand_dst_pub20241105T120000Z.csv", outlook_demand_dst),
        Expect(276 + 300, DST_DAYS, minutes=5),
    ),
    LOAD.parses(
        "caiso-load-outlook-demand-daily",
        inline("caiso_outlook_20240704_demand.csv", OUTLOOK_DEMAND_DAILY),
        Expect(3),
    ),
    # Fuel mix
    FUEL_MIX.parses(
        "caiso-fuel-outlook-dst-days",
        inline("caiso_outlook_fuelsource_dst_pub20241105T120000Z.csv", outlook_fuel_dst),
        Expect(13 * (276 + 300), DST_DAYS, NEGATIVE, minutes=5),
    ),
    FUEL_MIX.parses(
        "caiso-fuel-outlook-daily-old-spelling",
        inline("caiso_outlook_20190615_fuelsource.csv", OUTLOOK_FUEL_DAILY),
        Expect(13 * 3, shows=NEGATIVE),
    ),
    FUEL_MIX.parses(
        "caiso-fuel-renewables-watch-spring-recorded",
        shared_file("caiso", "caiso_DailyRenewablesWatch_20170312_dst_spring.txt"),
        Expect(11 * 23, (date(2017, 3, 12),), minutes=60),
    ),
]


def with_fields(header: str, line: str, **changes: str) -> str:
    """A CSV row of `header` with some of its fields changed."""
    fields = dict(zip(header.split(","), line.split(","), strict=True)) | changes
    return ",".join(fields.values())


def one_row(header: str, line: str, **changes: str) -> bytes:
    """A CSV of `header` and the one row `line`, some of its fields changed."""
    return csv_text(header, [with_fields(header, line, **changes)]).encode()


DAM_ROW = lmp_lines(SPRING, 60, ("TH_NP15_GEN-APND",))[0]  # the LMP row of 00:00 PST


def dam_member(**changes: str) -> Callable[[], bytes]:
    """A zip of one PRC_LMP member with that single row, its fields changed as given."""
    return zipped(("prc_lmp.csv", one_row(LMP_DAM_HEADER, DAM_ROW, **changes).decode()))


def error_zip(code: str, description: str) -> Callable[[], bytes]:
    return zipped(
        (
            "20240310_20240310_PRC_LMP_DAM_20240311_09_01_02_v12.xml",
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<m:OASISReport xmlns:m="http://www.caiso.com/soa/OASISReport_v1.xsd">'
            "<m:MessagePayload><m:RTO><m:name>CAISO</m:name><m:ERROR>"
            f"<m:ERR_CODE>{code}</m:ERR_CODE><m:ERR_DESC>{description}</m:ERR_DESC>"
            "</m:ERROR></m:RTO></m:MessagePayload></m:OASISReport>",
        )
    )


RT15_HEADER = LMP_RT_HEADER.format(value="PRC")
RT15_ROW = lmp_lines(SPRING, 15, ("TH_SP15_GEN-APND",), rt="RTPD")
RT5_ROWS = RT5_BARE.splitlines()
AS_ROW = as_dam_lines(SPRING)[0]
SLD_ROW = sld_lines(SPRING, "SYS_FCST_ACT_MW", ("CA ISO-TAC",))[0]

# OASIS answers with an error document in a zip, whichever report is asked for.
BUSY = ("1015", "GroupZip DownLoad is in Processing")
INVALID = ("1001", "Invalid Parameters")
OASIS_ERRORS = [
    feed.rejects(
        f"caiso-{kind}-oasis-error-document",
        inline(name, error_zip(code, description)),
        f"ERR_CODE {code}: {description}",
    )
    for feed, kind, name, (code, description) in (
        (LMP_DA, "lmp-da", "prc_lmp.zip", BUSY),
        (LMP_RT15, "lmp-rt15", "prc_rtpd_lmp.zip", INVALID),
        (LMP_RT5, "lmp-rt5", "prc_intvl_lmp.zip", BUSY),
        (AS_PRICES, "as", "prc_as.zip", INVALID),
        (LOAD, "load", "sld_fcst.zip", BUSY),
    )
]

MALFORMED = [
    *OASIS_ERRORS,
    *LMP_DA.rejects_each(
        "prc_lmp.zip",
        (
            "caiso-lmp-da-value-column-renamed",
            zipped(("prc_lmp.csv", csv_text(LMP_DAM_HEADER.replace(",MW,", ",PRICE,"), [DAM_ROW]))),
            r"missing column\(s\) MW",
        ),
        (
            "caiso-lmp-da-price-not-a-number",
            dam_member(MW="n/a"),
            r"row 1: .*LMP is not a number: 'n/a'",
        ),
        ("caiso-lmp-da-unknown-lmp-type", dam_member(LMP_TYPE="MCX"), r"unknown LMP_TYPE 'MCX'"),
        (
            "caiso-lmp-da-other-market-run",
            dam_member(MARKET_RUN_ID="RUC"),
            r"MARKET_RUN_ID 'RUC' where DAM was expected",
        ),
        (
            "caiso-lmp-da-components-without-lmp",
            dam_member(LMP_TYPE="MCE", XML_DATA_ITEM="LMP_ENE_PRC"),
            r"has components but no LMP row",
        ),
    ),
    *LMP_RT15.rejects_each(
        "prc_rtpd_lmp.csv",
        (
            "caiso-lmp-rt15-value-column-renamed",
            csv_text(LMP_RT_HEADER.format(value="VALUE"), RT15_ROW[:5]).encode(),
            r"missing column\(s\) PRC",
        ),
        (
            "caiso-lmp-rt15-price-not-a-number",
            one_row(RT15_HEADER, RT15_ROW[0], PRC="#N/A"),
            r"is not a number",
        ),
        (
            "caiso-lmp-rt15-five-minute-interval",
            one_row(RT15_HEADER, RT15_ROW[0], INTERVALENDTIME_GMT="2024-03-10T08:05:00-00:00"),
            r"a 5-minute interval where 15 was expected",
        ),
    ),
    *LMP_RT5.rejects_each(
        "prc_intvl_lmp.csv",
        (
            "caiso-lmp-rt5-lmp-type-missing",
            RT5_BARE.replace(",LMP_TYPE,", ",TYPE,").encode(),
            r"missing column\(s\) LMP_TYPE",
        ),
        (
            "caiso-lmp-rt5-value-not-a-number",
            csv_text(RT5_ROWS[0], [RT5_ROWS[1].replace(",-12.5,", ",-12.5.1,")]).encode(),
            r"row 1: LMP is not a number: '-12.5.1'",
        ),
        (
            "caiso-lmp-rt5-two-values-for-one-row",
            csv_text(
                RT5_ROWS[0], [RT5_ROWS[1], RT5_ROWS[1].replace(",-12.5,", ",-11.5,")]
            ).encode(),
            r"row 2: two values of LMP_TYPE LMP for TH_NP15_GEN-APND at 2024-07-03T16:50",
        ),
    ),
    *AS_PRICES.rejects_each(
        "prc_as.csv",
        (
            "caiso-as-price-not-a-number",
            one_row(AS_DAM_HEADER, AS_ROW, MW="--"),
            r"row 1: MW is not a number: '--'",
        ),
        (
            "caiso-as-unknown-product",
            one_row(AS_DAM_HEADER, AS_ROW, ANC_TYPE="FRU", XML_DATA_ITEM="FRU_CLR_PRC"),
            r"unknown ANC_TYPE 'FRU'",
        ),
        (
            "caiso-as-item-of-another-type",
            one_row(AS_DAM_HEADER, AS_ROW, XML_DATA_ITEM="RD_CLR_PRC"),
            r"'RD_CLR_PRC' is not the clearing price of ANC_TYPE RU",
        ),
        (
            "caiso-as-type-column-renamed",
            csv_text(AS_DAM_HEADER.replace("ANC_TYPE", "ANC_TYP"), [AS_ROW]).encode(),
            r"missing column\(s\) ANC_TYPE",
        ),
    ),
    *LOAD.rejects_each(
        "sld_fcst.csv",
        (
            "caiso-load-area-column-renamed",
            csv_text(SLD_HEADER.replace("TAC_AREA_NAME", "TAC_ZONE_NAME"), [SLD_ROW]).encode(),
            r"missing column\(s\) TAC_AREA_NAME",
        ),
        (
            "caiso-load-unknown-data-item",
            one_row(SLD_HEADER, SLD_ROW, XML_DATA_ITEM="SYS_FCST_3DA_MW"),
            r"unknown data item 'SYS_FCST_3DA_MW'",
        ),
    ),
    LOAD.rejects(
        "caiso-load-value-not-a-number",
        inline(
            "sld_fcst.zip", zipped(("sld.csv", one_row(SLD_HEADER, SLD_ROW, MW="2O000").decode()))
        ),
        r"sld.csv: MW is not a number: '2O000'",
    ),
    LOAD.rejects(
        "caiso-load-xml-not-well-formed-recorded",
        shared_file("caiso", "caiso_oasis_xml_ENE_SLRS_DAM_2013-09-19_excerpt.xml"),
        r"not well-formed XML",
        notes="a recorded excerpt trimmed without its closing REPORT_ITEM",
    ),
    *LOAD.rejects_each(
        "caiso_outlook_20241103_demand.csv",
        (
            "caiso-load-outlook-collapsed-fall-back-hour",
            _outlook_collapsed_fall(OUTLOOK_DEMAND_HEADER, "21000,20950,20990,"),
            r"row 13: .*appears once on 2024-11-03, a 25-hour day",
        ),
    ),
    LOAD.rejects(
        "caiso-load-outlook-demand-column-missing",
        inline(
            "caiso_outlook_20240704_demand.csv",
            OUTLOOK_DEMAND_DAILY.replace(b"Current demand", b"Demand now"),
        ),
        r"missing column Current demand or Demand",
    ),
    *FUEL_MIX.rejects_each(
        "caiso_outlook_20190615_fuelsource.csv",
        (
            "caiso-fuel-unknown-fuel-column",
            OUTLOOK_FUEL_DAILY.replace(b"Other", b"Hydrogen"),
            r"unknown fuel column 'Hydrogen'",
        ),
        (
            "caiso-fuel-time-column-renamed",
            b"Hour" + OUTLOOK_FUEL_DAILY[4:],
            r"first column 'Hour' where Time was expected",
        ),
        (
            "caiso-fuel-value-not-a-number",
            OUTLOOK_FUEL_DAILY.replace(b",4105,", b",n.a.,"),
            r"row 2: Wind is not a number: 'n.a.'",
        ),
    ),
    FUEL_MIX.rejects(
        "caiso-fuel-outlook-collapsed-fall-back-hour",
        inline(
            "caiso_outlook_20241103_fuelsource.csv",
            _outlook_collapsed_fall(f"Time,{FUELS}", FUEL_VALUES),
        ),
        r"appears once on 2024-11-03, a 25-hour day",
    ),
    FUEL_MIX.rejects(
        "caiso-fuel-outlook-values-in-spring-gap",
        inline(
            "caiso_outlook_20240310_fuelsource.csv",
            csv_text(f"Time,{FUELS}", [f"01:55,{FUEL_VALUES}", f"02:00,{FUEL_VALUES}"]).encode(),
        ),
        r"row 2: 02:00 does not exist on 2024-03-10",
    ),
    FUEL_MIX.rejects(
        "caiso-fuel-outlook-day-unknown",
        inline("fuelsource.csv", OUTLOOK_FUEL_DAILY),
        r"times without a date need the day in the response name",
    ),
    FUEL_MIX.rejects(
        "caiso-fuel-renewables-watch-fall-recorded",
        shared_file("caiso", "caiso_DailyRenewablesWatch_20171105_dst_fall.txt"),
        r"hour ending 2 appears once on 2017-11-05, a 25-hour day",
        notes="24 hourly rows on a 25-hour day: the repeated hour cannot be placed",
    ),
    FUEL_MIX.rejects(
        "caiso-fuel-renewables-report-html-recorded",
        shared_file("caiso", "caiso_daily_renewables_report_20251102_dst_fall.html"),
        r"an HTML page \('Daily Renewable Report",
        notes="the renewables web page is not a fuel-mix payload",
    ),
]

# Datasets whose regular payloads the columnar path reads (tests/unit/connectors/test_columnar.py)
COLUMNAR = (
    Dataset.LMP_DA_HOURLY,
    Dataset.LMP_RT_15MIN,
    Dataset.LMP_RT_5MIN,
    Dataset.AS_PRICES,
    Dataset.LOAD,
)
