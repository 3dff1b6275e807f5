"""ERCOT payloads for the parser contract: the recorded ones in ../shared and edge cases written
here in ERCOT's own layouts (MIS CSVs, their zips, the fuel-mix dashboard JSON).

ERCOT's DST conventions, which the day-long cases spell out: on the spring-forward day hour
ending 03:00 is absent (02:00 is 01:00-02:00 CST, 04:00 is 03:00-04:00 CDT); on the fall-back day
hour ending 02:00 comes twice, DSTFlag N (CDT) then Y (CST). SCED timestamps carry
RepeatedHourFlag Y in the repeated hour; dashboard stamps carry their UTC offset.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.catalog import Dataset, Iso
from tests.unit.connectors.contract import MalformedCase, ParserCase, inline, shared_file

ERCOT = Iso.ERCOT
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
DST_DAYS = (SPRING, FALL)

# The hour labels of the two DST days, as ERCOT writes them: (date, hour ending, DSTFlag).
SPRING_HOURS = [("03/10/2024", h, "N") for h in (1, 2, *range(4, 25))]  # no hour ending 03:00
FALL_HOURS = [
    ("11/03/2024", 1, "N"),
    ("11/03/2024", 2, "N"),  # 01:00-02:00 CDT
    ("11/03/2024", 2, "Y"),  # 01:00-02:00 CST, the repeated hour
    *(("11/03/2024", h, "N") for h in range(3, 25)),
]
DST_HOURS = SPRING_HOURS + FALL_HOURS


def zipped(*members: tuple[str, bytes]) -> bytes:
    """A zip of named members, as MIS and the API archive deliver documents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def cdr(report_type_id: int, stamp: str, doc: str) -> str:
    """An MIS document name; `stamp` is the local posting time YYYYMMDD.HHMMSS."""
    return f"cdr.{report_type_id:08d}.0000000000000000.{stamp}.{doc}.csv"


def _lines(header: str, rows: list[str]) -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


# --- NP4-190-CD DAM Settlement Point Prices ---------------------------------------------------

DAM_HEADER = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag"


def dam_dst_days() -> bytes:
    """HB_NORTH and a resource node over both DST days; the node prices negative overnight."""
    rows = []
    for day, hour, flag in DST_HOURS:
        rows.append(f"{day},{hour:02d}:00,HB_NORTH, {20 + hour * 1.5:.2f},{flag}")
        node_price = -12.5 + hour if hour < 6 else 18.0 + hour  # wind pushes the node negative
        rows.append(f"{day},{hour:02d}:00,WNDTS2_RN,{node_price:.2f},{flag}")
    return _lines(DAM_HEADER, rows)


DAM_POSTED = cdr(12331, "20240714.133012", "DAMSPNP4190")
DAM_CORRECTED = cdr(12331, "20240716.091500", "DAMSPNP4190")
DAM_FIRST = (
    DAM_HEADER.encode() + b"\n"
    b"07/15/2024,17:00,HB_NORTH, 48.20,N\n"  # ERCOT pads prices with a space
    b"07/15/2024,17:00,HB_NORTH, 48.20,N\n"  # the same row verbatim: read once
    b"07/15/2024,17:00,LZ_HOUSTON, 51.75,N\n"  # a load zone
    b"07/15/2024,17:00,DC_E, -2.05,N\n"  # a DC tie (INTERFACE), negative
    b"07/15/2024,17:00,AMISTAD_ALL, 31.10,N\n"  # any other name is a resource node
)
DAM_SECOND = (
    DAM_HEADER.encode() + b"\n"
    b"07/15/2024,17:00,HB_NORTH, 47.95,N\n"  # the correction: a later posting, a new revision
)


def dam_reposted() -> bytes:
    """A bulk archive download: a zip holding the first posting's zip and the correction's."""
    return zipped(
        (DAM_POSTED.replace(".csv", "_csv.zip"), zipped((DAM_POSTED, DAM_FIRST))),
        (DAM_CORRECTED.replace(".csv", "_csv.zip"), zipped((DAM_CORRECTED, DAM_SECOND))),
    )


# --- NP6-905-CD Settlement Point Prices at Resource Nodes, Hubs and Load Zones -----------------

RT_HEADER = (
    "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
    "SettlementPointPrice,DSTFlag"
)


def rt_dst_days() -> bytes:
    """A hub and an energy-weighted load zone for every quarter of both DST days."""
    rows = []
    for day, hour, flag in DST_HOURS:
        for quarter in (1, 2, 3, 4):
            rows.append(f"{day},{hour},{quarter},HB_WEST,HU,{hour - 8.25:.2f},{flag}")  # < 0 early
            rows.append(f"{day},{hour},{quarter},LZ_WEST,LZEW,{hour * 2 + quarter:.2f},{flag}")
    return _lines(RT_HEADER, rows)


RT_POSTED = cdr(12301, "20241103.011730", "SPPHLZNP6905_20241103_0115")
RT_REPEATED = cdr(12301, "20241103.011730", "SPPHLZNP6905_20241103_0115xhr")
RT_CORRECTED = cdr(12301, "20241103.093000", "SPPHLZNP6905_20241103_0115")
RT_FIRST = (
    RT_HEADER.encode() + b"\n"
    b"11/03/2024,2,1,HB_NORTH,HU,22.10,N\n"  # 01:00 CDT quarter of the fall-back day
    b"11/03/2024,2,1,HB_BUSAVG,SH,22.00,N\n"  # the 345 kV hub-bus average: a hub
    b"11/03/2024,2,1,HB_HUBAVG,AH,22.05,N\n"  # the hub average: a hub
    b"11/03/2024,2,1,LZ_NORTH,LZ,22.40,N\n"  # a load zone ...
    b"11/03/2024,2,1,LZ_NORTH,LZEW,22.43,N\n"  # ... and its energy-weighted price: LZ_NORTH_EW
    b"11/03/2024,2,1,DC_L,LZ_DC,-1.30,N\n"  # a DC-tie zone: INTERFACE, negative
    b"11/03/2024,2,1,CHE_CC1,PCCRN,21.80,N\n"  # a combined-cycle unit's node
    b"11/03/2024,2,1,CHE_ALL,LCCRN,21.80,N\n"  # the combined-cycle plant's logical node
    b"11/03/2024,2,1,EXN_PUN1,PUN,21.75,N\n"  # a private-use network node
    b"11/03/2024,2,1,AMISTAD_ALL,RN,21.60,N\n"  # a resource node
)
RT_SECOND_PASS = (
    RT_HEADER.encode() + b"\n"
    b"11/03/2024,2,1,HB_NORTH,HU,19.90,Y\n"  # the same label in the repeated hour (CST): another
)  # interval, posted an hour later at the same wall time, its name marked "xhr"
RT_CORRECTION = (
    RT_HEADER.encode() + b"\n"
    b"11/03/2024,2,1,HB_NORTH,HU,22.35,N\n"  # the CDT quarter corrected that morning: a revision
)


# --- NP6-788-CD LMPs by Resource Nodes, Load Zones and Trading Hubs ----------------------------

SCED_HEADER = "SCEDTimestamp,RepeatedHourFlag,SettlementPoint,LMP"


def sced_dst_days() -> bytes:
    """One SCED run per 5-minute interval of both DST days, at irregular seconds."""
    rows = []
    for day, hour, flag in DST_HOURS:
        for minute in range(0, 60, 5):
            stamp = f"{day} {hour - 1:02d}:{minute:02d}:{(hour * 7 + minute) % 50 + 5:02d}"
            rows.append(f"{stamp},{flag},HB_HOUSTON,{minute - 12.5:12.2f}")  # < 0 early on
            rows.append(f"{stamp},{flag},LZ_CPS,{30 + minute / 10:12.2f}")
    return _lines(SCED_HEADER, rows)


SCED_RERUN = (
    SCED_HEADER.encode() + b"\n"
    b"07/15/2024 17:40:18,N,HB_NORTH,       41.20\n"  # the regular run: [17:40, 17:45)
    b"07/15/2024 17:40:18,N,HB_NORTH,       41.20\n"  # verbatim repeat: read once
    b"07/15/2024 17:40:18,N,RAB_G1-8,      -38.25\n"  # a name with a hyphen, negative
    b"07/15/2024 17:43:02,N,HB_NORTH,       44.75\n"  # a re-run in the same interval: a later
)  # timestamp, so a higher revision of [17:40, 17:45)


# --- NP4-188-CD DAM Clearing Prices for Capacity -----------------------------------------------

MCPC_HEADER = "DeliveryDate,HourEnding,AncillaryType,MCPC,DSTFlag"
AS_TYPES = ("REGUP", "REGDN", "RRS", "NSPIN", "ECRS")


def mcpc_dst_days() -> bytes:
    rows = []
    for day, hour, flag in DST_HOURS:
        for i, kind in enumerate(AS_TYPES):
            rows.append(f"{day},{hour:02d}:00,{kind},{1.5 * i + hour / 4:.2f},{flag}")
    # ERCOT's capacity prices have not gone negative; a parser must still keep the sign.
    rows.append("03/11/2024,01:00,REGDN,-0.01,N")
    return _lines(MCPC_HEADER, rows)


MCPC_POSTED = cdr(12329, "20240714.123221", "DAMCPCNP4188")
MCPC_CORRECTED = cdr(12329, "20240715.101500", "DAMCPCNP4188")
MCPC_FIRST = (
    MCPC_HEADER.encode() + b"\n"
    b"07/15/2024,18:00,REGUP,12.50,N\n"
    b"07/15/2024,18:00,REGDN,0.89,N\n"
    b"07/15/2024,18:00,RRS,25.00,N\n"  # Responsive Reserve: SPIN
    b"07/15/2024,18:00,NSPIN,7.10,N\n"
    b"07/15/2024,18:00,ECRS,30.40,N\n"  # ERCOT Contingency Reserve (since June 2023)
)
MCPC_SECOND = MCPC_HEADER.encode() + b"\n07/15/2024,18:00,RRS,24.10,N\n"  # a correction


# --- NP6-345-CD Actual System Load by Weather Zone (and NP3-561-CD forecasts) -----------------

LOAD_HEADER = (
    "OperDay,HourEnding,COAST,EAST,FAR_WEST,NORTH,NORTH_C,SOUTHERN,SOUTH_C,WEST,TOTAL,DSTFlag"
)


def load_dst_days() -> bytes:
    rows = []
    for day, hour, flag in DST_HOURS:
        zones = [10_000 + hour * 10, 1_300, 5_700, 990, 10_200, 2_900, 6_000, 1_200]
        total = sum(zones)
        rows.append(f"{day},{hour:02d}:00,{','.join(f'{z:.2f}' for z in zones)},{total:.2f},{flag}")
    return _lines(LOAD_HEADER, rows)


LOAD_POSTED = cdr(13101, "20240716.055000", "ACTUALSYSLOADWZNP6345")
LOAD_REPOSTED = cdr(13101, "20240717.055000", "ACTUALSYSLOADWZNP6345")
LOAD_FIRST = (
    LOAD_HEADER.encode() + b"\n"
    b"07/15/2024,17:00,21000.50,2100.10,6400.00,1600.25,24000.00,5100.00,11000.00,1800.75,"
    b"73202.60,N\n"  # a summer peak hour
)
LOAD_SECOND = (
    LOAD_HEADER.encode() + b"\n"
    b"07/15/2024,17:00,21010.50,2100.10,6400.00,1600.25,24000.00,5100.00,11000.00,1800.75,"
    b"73212.60,N\n"  # re-posted with COAST (and so TOTAL) settled 10 MW higher
)


# --- the fuel-mix dashboard ---------------------------------------------------------------------

FUELS = ("Coal and Lignite", "Hydro", "Nuclear", "Other", "Power Storage", "Solar", "Wind")


def fuel_mix_dst_days() -> bytes:
    """Both DST days at 5 minutes, stamps a few seconds past the tick with their UTC offset
    (-0500 CDT, -0600 CST: the fall-back day's 01:xx stamps appear once with each)."""
    central = ZoneInfo("America/Chicago")
    data: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for day in DST_DAYS:
        start = datetime.combine(day, time(), tzinfo=central).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=central).astimezone(UTC)
        stamps: dict[str, dict[str, dict[str, float]]] = {}
        moment = start
        while moment < end:
            local = (moment + timedelta(seconds=3)).astimezone(central)
            mix = {fuel: {"gen": 100.0 + i} for i, fuel in enumerate(FUELS)}
            mix["Power Storage"] = {
                "gen": -850.5 if local.hour < 6 else 1200.0
            }  # charging at night
            mix["Natural Gas"] = {"gen": 21000.0, "hsl": 60000.0}
            stamps[local.strftime("%Y-%m-%d %H:%M:%S%z")] = mix
            moment += timedelta(minutes=5)
        data[day.isoformat()] = stamps
    body = {"lastUpdated": "2024-11-04 00:05:00-0600", "monthlyCapacity": {}, "data": data}
    return json.dumps(body).encode()


FUEL_MIX_SMALL = (
    b'{"lastUpdated": "2024-07-15 17:06:00-0500", "monthlyCapacity": {"Solar": 30000},'
    b' "data": {"2024-07-15": {'
    b'"2024-07-15 17:00:02-0500": {"Solar": {"gen": 18250.3}, "Wind": {"gen": 6100.0},'
    b' "Power Storage": {"gen": 2500.0}},'  # two seconds past 17:00
    b'"2024-07-15 17:04:58-0500": {"Solar": {"gen": 18100.1}, "Wind": {"gen": 6150.0},'
    b' "Power Storage": {"gen": -120.0}}'  # two seconds before 17:05: the 17:05 interval
    b"}}}"
)


# --- the cases ----------------------------------------------------------------------------------

CASES: list[ParserCase] = [
    # recorded payloads
    ParserCase(
        id="ercot-np6-345-actual-load-recorded",
        iso=ERCOT,
        dataset=Dataset.LOAD,
        load=shared_file(
            "ercot", "ercot_mis_np6-345-cd_ACTUALSYSLOADWZNP6345_opday_2023-11-17.zip"
        ),
        expected_records=24 * 9,
        complete_days=(date(2023, 11, 17),),
        expected_interval_minutes=60,
    ),
    ParserCase(
        id="ercot-np3-561-load-forecast-recorded",
        iso=ERCOT,
        dataset=Dataset.LOAD,
        load=shared_file(
            "ercot", "ercot_mis_np3-561-cd_LFCWEATHERNP3561_posted_2023-11-19_2330.zip"
        ),
        expected_records=8 * 24 * 9,
        complete_days=tuple(date(2023, 11, d) for d in range(19, 27)),
    ),
    ParserCase(
        id="ercot-np6-788-sced-excerpt-recorded",
        iso=ERCOT,
        dataset=Dataset.LMP_RT_5MIN,
        load=shared_file(
            "ercot", "ercot_mis_np6-788-cd_LMPSROSNODENP6788_sced_2026-06-25_004018_EXCERPT.csv"
        ),
        expected_records=28,
        expect_negative=True,
    ),
    # NP4-190-CD
    ParserCase(
        id="ercot-np4-190-dst-days",
        iso=ERCOT,
        dataset=Dataset.LMP_DA_HOURLY,
        load=inline("DAMSPNP4190_dst_days.csv", dam_dst_days),
        expected_records=2 * 48,
        complete_days=DST_DAYS,
        expect_negative=True,
    ),
    ParserCase(
        id="ercot-np4-190-bulk-zip-with-correction",
        iso=ERCOT,
        dataset=Dataset.LMP_DA_HOURLY,
        load=inline("np4-190-cd_bulk.zip", dam_reposted),
        expected_records=4 + 1,
        expect_negative=True,
        expect_revisions=True,
    ),
    # NP6-905-CD
    ParserCase(
        id="ercot-np6-905-dst-days",
        iso=ERCOT,
        dataset=Dataset.LMP_RT_15MIN,
        load=inline("SPPHLZNP6905_dst_days.csv", rt_dst_days),
        expected_records=2 * 4 * 48,
        complete_days=DST_DAYS,
        expect_negative=True,
    ),
    ParserCase(
        id="ercot-np6-905-types-and-repeated-hour",
        iso=ERCOT,
        dataset=Dataset.LMP_RT_15MIN,
        load=inline(
            "np6-905-cd_three_postings.zip",
            lambda: zipped(
                (RT_POSTED, RT_FIRST), (RT_REPEATED, RT_SECOND_PASS), (RT_CORRECTED, RT_CORRECTION)
            ),
        ),
        expected_records=10 + 1 + 1,
        expect_negative=True,
        expect_revisions=True,
    ),
    # NP6-788-CD
    ParserCase(
        id="ercot-np6-788-dst-days",
        iso=ERCOT,
        dataset=Dataset.LMP_RT_5MIN,
        load=inline("LMPSROSNODENP6788_dst_days.csv", sced_dst_days),
        expected_records=2 * 12 * 48,
        complete_days=DST_DAYS,
        expect_negative=True,
    ),
    ParserCase(
        id="ercot-np6-788-sced-rerun",
        iso=ERCOT,
        dataset=Dataset.LMP_RT_5MIN,
        load=inline(cdr(12300, "20240715.174020", "LMPSROSNODENP6788_20240715_174018"), SCED_RERUN),
        expected_records=3,
        expect_negative=True,
        expect_revisions=True,
    ),
    # NP4-188-CD
    ParserCase(
        id="ercot-np4-188-dst-days",
        iso=ERCOT,
        dataset=Dataset.AS_PRICES,
        load=inline("DAMCPCNP4188_dst_days.csv", mcpc_dst_days),
        expected_records=5 * 48 + 1,
        complete_days=DST_DAYS,
        expect_negative=True,
    ),
    ParserCase(
        id="ercot-np4-188-correction",
        iso=ERCOT,
        dataset=Dataset.AS_PRICES,
        load=inline(
            "np4-188-cd_two_postings.zip",
            lambda: zipped((MCPC_POSTED, MCPC_FIRST), (MCPC_CORRECTED, MCPC_SECOND)),
        ),
        expected_records=5 + 1,
        expect_revisions=True,
    ),
    # NP6-345-CD
    ParserCase(
        id="ercot-np6-345-dst-days",
        iso=ERCOT,
        dataset=Dataset.LOAD,
        load=inline("ACTUALSYSLOADWZNP6345_dst_days.csv", load_dst_days),
        expected_records=9 * 48,
        complete_days=DST_DAYS,
    ),
    ParserCase(
        id="ercot-np6-345-reposted",
        iso=ERCOT,
        dataset=Dataset.LOAD,
        load=inline(
            "np6-345-cd_two_postings.zip",
            lambda: zipped((LOAD_POSTED, LOAD_FIRST), (LOAD_REPOSTED, LOAD_SECOND)),
        ),
        expected_records=2 * 9,
        expect_revisions=True,
    ),
    # the fuel-mix dashboard
    ParserCase(
        id="ercot-fuel-mix-dst-days",
        iso=ERCOT,
        dataset=Dataset.FUEL_MIX,
        load=inline("fuel-mix_dst_days.json", fuel_mix_dst_days),
        expected_records=(276 + 300) * 8,
        complete_days=DST_DAYS,
        expect_negative=True,
        expected_interval_minutes=5,
    ),
    ParserCase(
        id="ercot-fuel-mix-stamps-off-the-tick",
        iso=ERCOT,
        dataset=Dataset.FUEL_MIX,
        load=inline("fuel-mix.json", FUEL_MIX_SMALL),
        expected_records=6,
        expect_negative=True,
    ),
]


def _bad(
    id: str, dataset: Dataset, name: str, data: bytes, match: str, notes: str = ""
) -> MalformedCase:
    return MalformedCase(
        id=id, iso=ERCOT, dataset=dataset, load=inline(name, data), match=match, notes=notes
    )


API_ERROR = b'{"statusCode": 401, "message": "Access denied due to invalid subscription key."}'
XML_VARIANT = zipped(
    ("cdr.00012331.0000000000000000.20240714.133012.DAMSPNP4190.xml", b'<?xml version="1.0"?><x/>')
)

MALFORMED: list[MalformedCase] = [
    # NP4-190-CD
    _bad(
        "ercot-np4-190-renamed-column",
        Dataset.LMP_DA_HOURLY,
        "dam.csv",
        b"DeliveryDate,HourEnding,SettlementPointName,SettlementPointPrice,DSTFlag\n"
        b"07/15/2024,17:00,HB_NORTH,48.20,N\n",
        r"missing column\(s\) SettlementPoint;",
    ),
    _bad(
        "ercot-np4-190-price-not-a-number",
        Dataset.LMP_DA_HOURLY,
        "dam.csv",
        DAM_HEADER.encode() + b"\n07/15/2024,17:00,HB_NORTH,N/A,N\n",
        r"row 1: SettlementPointPrice is not a number",
    ),
    _bad(
        "ercot-np4-190-spring-hour-ending-03",
        Dataset.LMP_DA_HOURLY,
        "dam.csv",
        DAM_HEADER.encode() + b"\n03/10/2024,03:00,HB_NORTH,20.00,N\n",
        r"row 1: hour ending 03:00 on 03/10/2024 does not exist",
    ),
    _bad(
        "ercot-np4-190-flag-on-an-ordinary-hour",
        Dataset.LMP_DA_HOURLY,
        "dam.csv",
        DAM_HEADER.encode() + b"\n11/03/2024,05:00,HB_NORTH,20.00,Y\n",
        r"DSTFlag Y marks hour ending 05:00 on 11/03/2024, which is not repeated",
    ),
    _bad(
        "ercot-np4-190-repeated-hour-without-flag",
        Dataset.LMP_DA_HOURLY,
        "dam.csv",
        DAM_HEADER.encode() + b"\n11/03/2024,02:00,HB_NORTH,20.00,N\n"
        b"11/03/2024,02:00,HB_NORTH,19.00,N\n",
        r"row 2: two rows for HB_NORTH .* second pass needs DSTFlag Y",
    ),
    _bad(
        "ercot-np4-190-api-error-document",
        Dataset.LMP_DA_HOURLY,
        "np4-190-cd.zip",
        API_ERROR,
        r"error document instead of data \(status 401\)",
    ),
    _bad(
        "ercot-np4-190-xml-variant",
        Dataset.LMP_DA_HOURLY,
        "DAMSPNP4190_xml.zip",
        XML_VARIANT,
        r"_xml variant",
    ),
    # NP6-905-CD
    _bad(
        "ercot-np6-905-missing-interval-column",
        Dataset.LMP_RT_15MIN,
        "rt.csv",
        b"DeliveryDate,DeliveryHour,SettlementPointName,SettlementPointType,"
        b"SettlementPointPrice,DSTFlag\n07/15/2024,17,HB_NORTH,HU,40.00,N\n",
        r"missing column\(s\) DeliveryInterval",
    ),
    _bad(
        "ercot-np6-905-price-not-a-number",
        Dataset.LMP_RT_15MIN,
        "rt.csv",
        RT_HEADER.encode() + b"\n07/15/2024,17,1,HB_NORTH,HU,--,N\n",
        r"row 1: SettlementPointPrice is not a number",
    ),
    _bad(
        "ercot-np6-905-unknown-point-type",
        Dataset.LMP_RT_15MIN,
        "rt.csv",
        RT_HEADER.encode() + b"\n07/15/2024,17,1,HB_NORTH,HUB,40.00,N\n",
        r"row 1: unknown SettlementPointType 'HUB'",
    ),
    _bad(
        "ercot-np6-905-fifth-quarter",
        Dataset.LMP_RT_15MIN,
        "rt.csv",
        RT_HEADER.encode() + b"\n07/15/2024,17,5,HB_NORTH,HU,40.00,N\n",
        r"DeliveryInterval must be 1..4",
    ),
    _bad(
        "ercot-np6-905-api-error-document",
        Dataset.LMP_RT_15MIN,
        "np6-905-cd.zip",
        API_ERROR,
        r"error document",
    ),
    # NP6-788-CD
    _bad(
        "ercot-np6-788-renamed-lmp",
        Dataset.LMP_RT_5MIN,
        "sced.csv",
        b"SCEDTimestamp,RepeatedHourFlag,SettlementPoint,Price\n"
        b"07/15/2024 17:40:18,N,HB_NORTH,41.20\n",
        r"missing column\(s\) LMP",
    ),
    _bad(
        "ercot-np6-788-lmp-not-a-number",
        Dataset.LMP_RT_5MIN,
        "sced.csv",
        SCED_HEADER.encode() + b"\n07/15/2024 17:40:18,N,HB_NORTH,    nan\n",
        r"row 1: LMP is not a finite number",
    ),
    _bad(
        "ercot-np6-788-run-in-the-spring-gap",
        Dataset.LMP_RT_5MIN,
        "sced.csv",
        SCED_HEADER.encode() + b"\n03/10/2024 02:30:12,N,HB_NORTH,20.00\n",
        r"03/10/2024 02:30:12 does not exist",
    ),
    _bad(
        "ercot-np6-788-repeated-flag-outside-the-hour",
        Dataset.LMP_RT_5MIN,
        "sced.csv",
        SCED_HEADER.encode() + b"\n11/03/2024 03:30:12,Y,HB_NORTH,20.00\n",
        r"RepeatedHourFlag Y on 11/03/2024 03:30:12, outside the repeated hour",
    ),
    _bad(
        "ercot-np6-788-api-error-document",
        Dataset.LMP_RT_5MIN,
        "np6-788-cd.zip",
        API_ERROR,
        r"error document",
    ),
    # NP4-188-CD
    _bad(
        "ercot-np4-188-renamed-column",
        Dataset.AS_PRICES,
        "mcpc.csv",
        b"DeliveryDate,HourEnding,AncillaryService,MCPC,DSTFlag\n07/15/2024,18:00,RRS,25,N\n",
        r"missing column\(s\) AncillaryType",
    ),
    _bad(
        "ercot-np4-188-price-not-a-number",
        Dataset.AS_PRICES,
        "mcpc.csv",
        MCPC_HEADER.encode() + b"\n07/15/2024,18:00,RRS,twenty,N\n",
        r"row 1: MCPC is not a number",
    ),
    _bad(
        "ercot-np4-188-unknown-type",
        Dataset.AS_PRICES,
        "mcpc.csv",
        MCPC_HEADER.encode() + b"\n07/15/2024,18:00,SPIN,25,N\n",
        r"row 1: unknown AncillaryType 'SPIN'",
    ),
    _bad(
        "ercot-np4-188-api-error-document",
        Dataset.AS_PRICES,
        "np4-188-cd.zip",
        API_ERROR,
        r"error document",
    ),
    # NP6-345-CD / NP3-561-CD
    _bad(
        "ercot-np6-345-renamed-zone",
        Dataset.LOAD,
        "load.csv",
        LOAD_HEADER.replace("FAR_WEST", "FARWEST").encode() + LOAD_FIRST[LOAD_FIRST.index(b"\n") :],
        r"missing column\(s\) FAR_WEST",
    ),
    _bad(
        "ercot-np6-345-load-not-a-number",
        Dataset.LOAD,
        "load.csv",
        LOAD_FIRST.replace(b"2100.10", b"21OO.1O"),  # letters O for zeros
        r"row 1: EAST is not a number",
    ),
    _bad(
        "ercot-np6-345-hour-ending-25-with-a-flag",
        Dataset.LOAD,
        "load.csv",
        LOAD_FIRST.replace(b"07/15/2024,17:00", b"11/03/2024,25:00"),
        r"hour ending 25 is outside 01:00..24:00",
    ),
    _bad(
        "ercot-load-unknown-layout",
        Dataset.LOAD,
        "load.csv",
        b"Date,Hour,Load\n07/15/2024,17,73000\n",
        r"neither an NP6-345 actual load .* nor an NP3-561 forecast",
    ),
    _bad(
        "ercot-np3-561-forecast-without-posting-time",
        Dataset.LOAD,
        "forecast.csv",
        b"DeliveryDate,HourEnding,Coast,East,FarWest,North,NorthCentral,SouthCentral,Southern,"
        b"West,SystemTotal,DSTFlag\n11/19/2023,1:00,1,1,1,1,1,1,1,1,8,N\n",
        r"a load forecast without a posting time",
    ),
    _bad(
        "ercot-np6-345-api-error-document",
        Dataset.LOAD,
        "np6-345-cd.zip",
        API_ERROR,
        r"error document",
    ),
    # the fuel-mix dashboard
    _bad(
        "ercot-fuel-mix-renamed-data",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        FUEL_MIX_SMALL.replace(b'"data"', b'"series"'),
        r"not the fuel-mix dashboard",
    ),
    _bad(
        "ercot-fuel-mix-gen-not-a-number",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        FUEL_MIX_SMALL.replace(b'{"gen": 6100.0}', b'{"gen": "6100"}'),
        r"row 2: Wind at 2024-07-15 17:00:02-0500: gen is not a number",
    ),
    _bad(
        "ercot-fuel-mix-unknown-fuel",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        FUEL_MIX_SMALL.replace(b'"Wind"', b'"Biomass"', 1),
        r"unknown fuel 'Biomass'",
    ),
    _bad(
        "ercot-fuel-mix-stamp-off-the-tick",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        FUEL_MIX_SMALL.replace(b"17:04:58", b"17:02:30"),
        r"more than a minute off a 5-minute tick",
    ),
    _bad(
        "ercot-fuel-mix-same-stamp-twice",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        FUEL_MIX_SMALL.replace(b"17:04:58", b"17:00:02"),
        r"given twice with different values",
    ),
    _bad(
        "ercot-fuel-mix-error-document",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        b'{"statusCode": 403, "message": "Request blocked"}',
        r"not the fuel-mix dashboard: an error document instead of data \(status 403\)",
    ),
    _bad(
        "ercot-fuel-mix-csv-instead",
        Dataset.FUEL_MIX,
        "fuel-mix.json",
        DAM_HEADER.encode() + b"\n",
        r"a csv payload where json was expected",
    ),
]

# The datasets whose regular payloads the columnar path reads (tests/unit/connectors/
# test_columnar.py): the nodal prices, where rows are many. The other formats are small or
# already read far faster than a pandas parse by their row loops.
COLUMNAR = (Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_5MIN)
