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
from tests.unit.connectors.contract import Expect, Feed, Shows, inline, shared_file

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


def postings(report_type_id: int, doc: str, *documents: tuple[str, bytes]) -> bytes:
    """A zip of postings of one document: (local posting time, content) each."""
    return zipped(*((cdr(report_type_id, stamp, doc), data) for stamp, data in documents))


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
    first = cdr(12331, "20240714.133012", "DAMSPNP4190")
    correction = cdr(12331, "20240716.091500", "DAMSPNP4190")
    return zipped(
        (first.replace(".csv", "_csv.zip"), zipped((first, DAM_FIRST))),
        (correction.replace(".csv", "_csv.zip"), zipped((correction, DAM_SECOND))),
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


def rt_postings() -> bytes:
    """The 01:15 interval posted, posted again for the repeated hour, and corrected."""
    name = "SPPHLZNP6905_20241103_0115"
    return zipped(
        (cdr(12301, "20241103.011730", name), RT_FIRST),
        (cdr(12301, "20241103.011730", name + "xhr"), RT_SECOND_PASS),
        (cdr(12301, "20241103.093000", name), RT_CORRECTION),
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


MCPC_FIRST = (
    MCPC_HEADER.encode() + b"\n"
    b"07/15/2024,18:00,REGUP,12.50,N\n"
    b"07/15/2024,18:00,REGDN,0.89,N\n"
    b"07/15/2024,18:00,RRS,25.00,N\n"  # Responsive Reserve: SPIN
    b"07/15/2024,18:00,NSPIN,7.10,N\n"
    b"07/15/2024,18:00,ECRS,30.40,N\n"  # ERCOT Contingency Reserve (since June 2023)
)
MCPC_SECOND = MCPC_HEADER.encode() + b"\n07/15/2024,18:00,RRS,24.10,N\n"  # a correction
MCPC_POSTINGS = postings(
    12329, "DAMCPCNP4188", ("20240714.123221", MCPC_FIRST), ("20240715.101500", MCPC_SECOND)
)


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
LOAD_POSTINGS = postings(
    13101,
    "ACTUALSYSLOADWZNP6345",
    ("20240716.055000", LOAD_FIRST),
    ("20240717.055000", LOAD_SECOND),
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

NP4_190 = Feed(ERCOT, Dataset.LMP_DA_HOURLY)
NP6_905 = Feed(ERCOT, Dataset.LMP_RT_15MIN)
NP6_788 = Feed(ERCOT, Dataset.LMP_RT_5MIN)
NP4_188 = Feed(ERCOT, Dataset.AS_PRICES)
NP6_345 = Feed(ERCOT, Dataset.LOAD)  # and NP3-561-CD, the load forecasts
DASHBOARD = Feed(ERCOT, Dataset.FUEL_MIX)
NEGATIVE, REVISIONS = Shows.NEGATIVE, Shows.REVISIONS

# The MIS reports: feed, id, document name, and both DST days in the report's layout (payload
# builder, records, what the parse must show).
REPORTS = (
    (NP4_190, "np4-190", "DAMSPNP4190", dam_dst_days, 2 * 48, NEGATIVE),
    (NP6_905, "np6-905", "SPPHLZNP6905", rt_dst_days, 2 * 4 * 48, NEGATIVE),
    (NP6_788, "np6-788", "LMPSROSNODENP6788", sced_dst_days, 2 * 12 * 48, NEGATIVE),
    (NP4_188, "np4-188", "DAMCPCNP4188", mcpc_dst_days, 5 * 48 + 1, NEGATIVE),
    (NP6_345, "np6-345", "ACTUALSYSLOADWZNP6345", load_dst_days, 9 * 48, Shows.NOTHING),
)

CASES = [
    # recorded payloads
    NP6_345.parses(
        "ercot-np6-345-actual-load-recorded",
        shared_file("ercot", "ercot_mis_np6-345-cd_ACTUALSYSLOADWZNP6345_opday_2023-11-17.zip"),
        Expect(24 * 9, (date(2023, 11, 17),), minutes=60),
    ),
    NP6_345.parses(
        "ercot-np3-561-load-forecast-recorded",
        shared_file("ercot", "ercot_mis_np3-561-cd_LFCWEATHERNP3561_posted_2023-11-19_2330.zip"),
        Expect(8 * 24 * 9, tuple(date(2023, 11, d) for d in range(19, 27))),
    ),
    NP6_788.parses(
        "ercot-np6-788-sced-excerpt-recorded",
        shared_file(
            "ercot", "ercot_mis_np6-788-cd_LMPSROSNODENP6788_sced_2026-06-25_004018_EXCERPT.csv"
        ),
        Expect(28, shows=NEGATIVE),
    ),
    *(
        feed.parses(
            f"ercot-{report}-dst-days",
            inline(f"{document}_dst_days.csv", build),
            Expect(records, DST_DAYS, shows),
        )
        for feed, report, document, build, records, shows in REPORTS
    ),
    DASHBOARD.parses(
        "ercot-fuel-mix-dst-days",
        inline("fuel-mix_dst_days.json", fuel_mix_dst_days),
        Expect((276 + 300) * 8, DST_DAYS, NEGATIVE, minutes=5),
    ),
    # postings: corrections, re-runs, the repeated hour
    NP4_190.parses(
        "ercot-np4-190-bulk-zip-with-correction",
        inline("np4-190-cd_bulk.zip", dam_reposted),
        Expect(4 + 1, shows=NEGATIVE | REVISIONS),
    ),
    NP6_905.parses(
        "ercot-np6-905-types-and-repeated-hour",
        inline("np6-905-cd_three_postings.zip", rt_postings),
        Expect(10 + 1 + 1, shows=NEGATIVE | REVISIONS),
    ),
    NP6_788.parses(
        "ercot-np6-788-sced-rerun",
        inline(cdr(12300, "20240715.174020", "LMPSROSNODENP6788_20240715_174018"), SCED_RERUN),
        Expect(3, shows=NEGATIVE | REVISIONS),
    ),
    NP4_188.parses(
        "ercot-np4-188-correction",
        inline("np4-188-cd_two_postings.zip", MCPC_POSTINGS),
        Expect(5 + 1, shows=REVISIONS),
    ),
    NP6_345.parses(
        "ercot-np6-345-reposted",
        inline("np6-345-cd_two_postings.zip", LOAD_POSTINGS),
        Expect(2 * 9, shows=REVISIONS),
    ),
    DASHBOARD.parses(
        "ercot-fuel-mix-stamps-off-the-tick",
        inline("fuel-mix.json", FUEL_MIX_SMALL),
        Expect(6, shows=NEGATIVE),
    ),
]


def one_row(header: str, row: str) -> bytes:
    """A document of `header` and the one `row`."""
    return _lines(header, [row])


API_ERROR = b'{"statusCode": 401, "message": "Access denied due to invalid subscription key."}'
XML_VARIANT = zipped(
    ("cdr.00012331.0000000000000000.20240714.133012.DAMSPNP4190.xml", b'<?xml version="1.0"?><x/>')
)
# The public API answers a bad key with a JSON error document, whichever report is asked for.
API_ERROR_CASES = [
    feed.rejects(
        f"ercot-{report}-api-error-document",
        inline(f"{report}-cd.zip", API_ERROR),
        r"error document instead of data \(status 401\)",
    )
    for feed, report, *_ in REPORTS
]

MALFORMED = [
    *API_ERROR_CASES,
    *NP4_190.rejects_each(
        "dam.csv",
        (
            "ercot-np4-190-renamed-column",
            b"DeliveryDate,HourEnding,SettlementPointName,SettlementPointPrice,DSTFlag\n"
            b"07/15/2024,17:00,HB_NORTH,48.20,N\n",
            r"missing column\(s\) SettlementPoint;",
        ),
        (
            "ercot-np4-190-price-not-a-number",
            one_row(DAM_HEADER, "07/15/2024,17:00,HB_NORTH,N/A,N"),
            r"row 1: SettlementPointPrice is not a number",
        ),
        (
            "ercot-np4-190-spring-hour-ending-03",
            one_row(DAM_HEADER, "03/10/2024,03:00,HB_NORTH,20.00,N"),
            r"row 1: hour ending 03:00 on 03/10/2024 does not exist",
        ),
        (
            "ercot-np4-190-flag-on-an-ordinary-hour",
            one_row(DAM_HEADER, "11/03/2024,05:00,HB_NORTH,20.00,Y"),
            r"DSTFlag Y marks hour ending 05:00 on 11/03/2024, which is not repeated",
        ),
        (
            "ercot-np4-190-repeated-hour-without-flag",
            _lines(
                DAM_HEADER,
                ["11/03/2024,02:00,HB_NORTH,20.00,N", "11/03/2024,02:00,HB_NORTH,19.00,N"],
            ),
            r"row 2: two rows for HB_NORTH .* second pass needs DSTFlag Y",
        ),
    ),
    NP4_190.rejects(
        "ercot-np4-190-xml-variant", inline("DAMSPNP4190_xml.zip", XML_VARIANT), r"_xml variant"
    ),
    *NP6_905.rejects_each(
        "rt.csv",
        (
            "ercot-np6-905-missing-interval-column",
            b"DeliveryDate,DeliveryHour,SettlementPointName,SettlementPointType,"
            b"SettlementPointPrice,DSTFlag\n07/15/2024,17,HB_NORTH,HU,40.00,N\n",
            r"missing column\(s\) DeliveryInterval",
        ),
        (
            "ercot-np6-905-price-not-a-number",
            one_row(RT_HEADER, "07/15/2024,17,1,HB_NORTH,HU,--,N"),
            r"row 1: SettlementPointPrice is not a number",
        ),
        (
            "ercot-np6-905-unknown-point-type",
            one_row(RT_HEADER, "07/15/2024,17,1,HB_NORTH,HUB,40.00,N"),
            r"row 1: unknown SettlementPointType 'HUB'",
        ),
        (
            "ercot-np6-905-fifth-quarter",
            one_row(RT_HEADER, "07/15/2024,17,5,HB_NORTH,HU,40.00,N"),
            r"DeliveryInterval must be 1..4",
        ),
    ),
    *NP6_788.rejects_each(
        "sced.csv",
        (
            "ercot-np6-788-renamed-lmp",
            b"SCEDTimestamp,RepeatedHourFlag,SettlementPoint,Price\n"
            b"07/15/2024 17:40:18,N,HB_NORTH,41.20\n",
            r"missing column\(s\) LMP",
        ),
        (
            "ercot-np6-788-lmp-not-a-number",
            one_row(SCED_HEADER, "07/15/2024 17:40:18,N,HB_NORTH,    nan"),
            r"row 1: LMP is not a finite number",
        ),
        (
            "ercot-np6-788-run-in-the-spring-gap",
            one_row(SCED_HEADER, "03/10/2024 02:30:12,N,HB_NORTH,20.00"),
            r"03/10/2024 02:30:12 does not exist",
        ),
        (
            "ercot-np6-788-repeated-flag-outside-the-hour",
            one_row(SCED_HEADER, "11/03/2024 03:30:12,Y,HB_NORTH,20.00"),
            r"RepeatedHourFlag Y on 11/03/2024 03:30:12, outside the repeated hour",
        ),
    ),
    *NP4_188.rejects_each(
        "mcpc.csv",
        (
            "ercot-np4-188-renamed-column",
            b"DeliveryDate,HourEnding,AncillaryService,MCPC,DSTFlag\n07/15/2024,18:00,RRS,25,N\n",
            r"missing column\(s\) AncillaryType",
        ),
        (
            "ercot-np4-188-price-not-a-number",
            one_row(MCPC_HEADER, "07/15/2024,18:00,RRS,twenty,N"),
            r"row 1: MCPC is not a number",
        ),
        (
            "ercot-np4-188-unknown-type",
            one_row(MCPC_HEADER, "07/15/2024,18:00,SPIN,25,N"),
            r"row 1: unknown AncillaryType 'SPIN'",
        ),
    ),
    *NP6_345.rejects_each(
        "load.csv",
        (
            "ercot-np6-345-renamed-zone",
            LOAD_HEADER.replace("FAR_WEST", "FARWEST").encode()
            + LOAD_FIRST[LOAD_FIRST.index(b"\n") :],
            r"missing column\(s\) FAR_WEST",
        ),
        (
            "ercot-np6-345-load-not-a-number",
            LOAD_FIRST.replace(b"2100.10", b"21OO.1O"),  # letters O for zeros
            r"row 1: EAST is not a number",
        ),
        (
            "ercot-np6-345-hour-ending-25-with-a-flag",
            LOAD_FIRST.replace(b"07/15/2024,17:00", b"11/03/2024,25:00"),
            r"hour ending 25 is outside 01:00..24:00",
        ),
        (
            "ercot-load-unknown-layout",
            b"Date,Hour,Load\n07/15/2024,17,73000\n",
            r"neither an NP6-345 actual load .* nor an NP3-561 forecast",
        ),
    ),
    NP6_345.rejects(
        "ercot-np3-561-forecast-without-posting-time",
        inline(
            "forecast.csv",
            b"DeliveryDate,HourEnding,Coast,East,FarWest,North,NorthCentral,SouthCentral,Southern,"
            b"West,SystemTotal,DSTFlag\n11/19/2023,1:00,1,1,1,1,1,1,1,1,8,N\n",
        ),
        r"a load forecast without a posting time",
    ),
    *DASHBOARD.rejects_edits(
        "fuel-mix.json",
        FUEL_MIX_SMALL,
        ("ercot-fuel-mix-renamed-data", '"data"', '"series"', r"not the fuel-mix dashboard"),
        (
            "ercot-fuel-mix-gen-not-a-number",
            '{"gen": 6100.0}',
            '{"gen": "6100"}',
            r"row 2: Wind at 2024-07-15 17:00:02-0500: gen is not a number",
        ),
        ("ercot-fuel-mix-unknown-fuel", '"Wind"', '"Biomass"', r"unknown fuel 'Biomass'"),
        (
            "ercot-fuel-mix-stamp-off-the-tick",
            "17:04:58",
            "17:02:30",
            r"more than a minute off a 5-minute tick",
        ),
        (
            "ercot-fuel-mix-same-stamp-twice",
            "17:04:58",
            "17:00:02",
            r"given twice with different values",
        ),
    ),
    *DASHBOARD.rejects_each(
        "fuel-mix.json",
        (
            "ercot-fuel-mix-error-document",
            b'{"statusCode": 403, "message": "Request blocked"}',
            r"not the fuel-mix dashboard: an error document instead of data \(status 403\)",
        ),
        (
            "ercot-fuel-mix-csv-instead",
            DAM_HEADER.encode() + b"\n",
            r"a csv payload where json was expected",
        ),
    ),
]

# The datasets whose regular payloads the columnar path reads (tests/unit/connectors/
# test_columnar.py): the nodal prices, where rows are many. The other formats are small or
# already read far faster than a pandas parse by their row loops.
COLUMNAR = (Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_5MIN)
