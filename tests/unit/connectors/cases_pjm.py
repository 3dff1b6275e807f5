# ruff: noqa: E501 - payload lines stay whole, one PJM row per source line
"""PJM payloads for the parser contract: the recorded Data Miner 2 exports in ../shared, and edge
cases written here in PJM's own formats (the CSV export and the API's JSON page).

The inline payloads cover both 2024 DST days in Eastern time (10 March: 23 hours, no 2 AM;
3 November: 25 hours, 1 AM twice). Their ordinary intervals are generated; every row that is
there for a reason is written out by hand with a comment saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.catalog import Dataset, Iso
from tests.unit.connectors.contract import (
    Expect,
    Feed,
    MalformedCase,
    Shows,
    edited,
    inline,
    shared_file,
)

EASTERN = ZoneInfo("America/New_York")
SPRING = date(2024, 3, 10)
FALL = date(2024, 11, 3)
DST_DAYS = (SPRING, FALL)
PJM = "pjm"


def us_time(instant: datetime) -> str:
    """The CSV export's clock: "3/10/2024 1:00:00 AM"."""
    hour = instant.hour % 12 or 12
    half = "AM" if instant.hour < 12 else "PM"
    return f"{instant.month}/{instant.day}/{instant.year} {hour}:{instant.minute:02d}:{instant.second:02d} {half}"


# The first two columns of every CSV export, and what both_clocks() writes in them.
CLOCKS = "datetime_beginning_utc,datetime_beginning_ept"


def both_clocks(instant_utc: datetime) -> str:
    """The CLOCKS of a CSV line."""
    return f"{us_time(instant_utc)},{us_time(instant_utc.astimezone(EASTERN))}"


def day_starts(day: date, minutes: int) -> list[datetime]:
    """Every interval start of the Eastern day `day`, in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=EASTERN).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=EASTERN).astimezone(UTC)
    count = int((end - start) / timedelta(minutes=minutes))
    return [start + i * timedelta(minutes=minutes) for i in range(count)]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ordinary(
    minutes: int, written: Iterable[datetime], *series: Callable[[datetime], str]
) -> list[str]:
    """Generated CSV lines for both DST days, leaving out the intervals written by hand: one
    line an interval for each of `series`, which gives the cells after the two clocks."""
    skip = set(written)
    return [
        f"{both_clocks(start)},{cells(start)}"
        for day in DST_DAYS
        for start in day_starts(day, minutes)
        if start not in skip
        for cells in series
    ]


def csv_payload(header: str, lines: Iterable[str]) -> bytes:
    """A Data Miner CSV export: CRLF line ends."""
    return "\r\n".join([header, *lines, ""]).encode()


def page(items: list[dict[str, object]], total: int | None = None) -> bytes:
    """A Data Miner 2 API page holding `items`."""
    document = {
        "links": [{"rel": "self", "href": "https://api.pjm.com/api/v1/feed?StartRow=1"}],
        "items": items,
        "searchSpecification": {"rowCount": 50000, "order": "Asc", "startRow": 1},
        "totalRows": len(items) if total is None else total,
    }
    return json.dumps(document).encode()


def iso_clock(instant: datetime, eastern: bool = False) -> str:
    """The JSON page's clock: "2024-03-10T01:00:00", UTC or Eastern, without an offset."""
    shown = instant.astimezone(EASTERN) if eastern else instant
    return shown.replace(tzinfo=None).isoformat()


# --------------------------------------------------------------------------- hourly LMPs
DA = Feed(Iso.PJM, Dataset.LMP_DA_HOURLY)
RT = Feed(Iso.PJM, Dataset.LMP_RT_HOURLY)
LMP_HEADER = (
    CLOCKS + ",pnode_id,pnode_name,voltage,equipment,type,zone,system_energy_price_{m},"
    "total_lmp_{m},congestion_price_{m},marginal_loss_price_{m},row_is_current,version_nbr"
)
DA_HEADER = LMP_HEADER.format(m="da")
RT_HEADER = LMP_HEADER.format(m="rt")
HOURLY_BY_HAND = (
    utc(2024, 3, 10, 6),
    utc(2024, 3, 10, 7),
    utc(2024, 11, 3, 5),
    utc(2024, 11, 3, 6),
)


EASTERN_HUB = "51217,EASTERN HUB,,,HUB,"  # pnode_id to zone
PJM_RTO_ZONE = "1,PJM-RTO,,,ZONE,"


def lmp_cells(pnode: str, energy: float, congestion: float, loss: float, decimals: int = 6) -> str:
    """The cells of a current version 1 at `pnode` from the energy price on, energy written
    with `decimals` decimals: energy + congestion + loss = total."""
    total = energy + congestion + loss
    return f"{pnode},{energy:.{decimals}f},{total:.6f},{congestion:.6f},{loss:.6f},True,1"


DA_DST = csv_payload(
    DA_HEADER,
    [
        # ordinary hours at EASTERN HUB
        *ordinary(
            60,
            HOURLY_BY_HAND,
            lambda start: lmp_cells(EASTERN_HUB, 20 + start.hour * 0.5, 0.25, 0.06, decimals=2),
        ),
        # spring forward: 1 AM EST (06:00 UTC) is followed by 3 AM EDT (07:00 UTC), no 2 AM
        "3/10/2024 6:00:00 AM,3/10/2024 1:00:00 AM,51217,EASTERN HUB,,,HUB,,18.50,18.810000,0.250000,0.060000,True,1",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,51217,EASTERN HUB,,,HUB,,19.00,19.310000,0.250000,0.060000,True,1",
        # fall back: 1 AM twice, EDT (05:00 UTC) then EST (06:00 UTC); only UTC tells them apart
        "11/3/2024 5:00:00 AM,11/3/2024 1:00:00 AM,51217,EASTERN HUB,,,HUB,,17.25,17.560000,0.250000,0.060000,True,1",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,51217,EASTERN HUB,,,HUB,,16.75,17.060000,0.250000,0.060000,False,1",
        # version 2 of the repeated hour: congestion takes the price negative; both versions kept
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,51217,EASTERN HUB,,,HUB,,16.75,-12.940000,-29.750000,0.060000,True,2",
    ],
)


def rt_hub_item(start: datetime) -> dict[str, object]:
    """An ordinary hour at WESTERN HUB as the API's JSON has it (numbers, booleans, nulls)."""
    energy = 22 + start.hour * 0.25
    return {
        "datetime_beginning_utc": iso_clock(start),
        "datetime_beginning_ept": iso_clock(start, eastern=True),
        "pnode_id": 51288,
        "pnode_name": "WESTERN HUB",
        "voltage": None,
        "equipment": None,
        "type": "HUB",
        "zone": None,
        "system_energy_price_rt": energy,
        "total_lmp_rt": round(energy - 0.12, 6),
        "congestion_price_rt": -0.1,
        "marginal_loss_price_rt": -0.02,
        "row_is_current": True,
        "version_nbr": 1,
    }


def _rt_hub(
    start: datetime, energy: float, congestion: float, **changes: object
) -> dict[str, object]:
    item = rt_hub_item(start)
    item |= {"system_energy_price_rt": energy, "congestion_price_rt": congestion}
    item["total_lmp_rt"] = round(energy + congestion - 0.02, 6)
    return item | changes


RT_DST_PAGE = page(
    [
        *(rt_hub_item(s) for d in DST_DAYS for s in day_starts(d, 60) if s not in HOURLY_BY_HAND),
        # spring forward: EPT jumps from 01:00 to 03:00 while UTC runs on
        _rt_hub(utc(2024, 3, 10, 6), 21.0, 0.5, datetime_beginning_ept="2024-03-10T01:00:00"),
        _rt_hub(utc(2024, 3, 10, 7), 21.5, 0.5, datetime_beginning_ept="2024-03-10T03:00:00"),
        # fall back: EPT 01:00 twice, 05:00 and 06:00 UTC
        _rt_hub(utc(2024, 11, 3, 5), 19.0, 0.5, datetime_beginning_ept="2024-11-03T01:00:00"),
        _rt_hub(utc(2024, 11, 3, 6), 18.0, -40.0, datetime_beginning_ept="2024-11-03T01:00:00"),
        # a correction of the negative hour published in the same page as version 2
        _rt_hub(utc(2024, 11, 3, 6), 18.0, -38.5, version_nbr=2),
    ]
)

# --------------------------------------------------------------------------- 5-minute LMPs
FIVE = Feed(Iso.PJM, Dataset.LMP_RT_5MIN)
FIVE_BY_HAND = (
    utc(2024, 3, 10, 6, 55),
    utc(2024, 3, 10, 7, 0),
    utc(2024, 11, 3, 5, 55),
    utc(2024, 11, 3, 6, 0),
)


FIVE_DST = csv_payload(
    RT_HEADER,
    [
        # ordinary 5 minutes at PJM-RTO (pnode 1, a ZONE)
        *ordinary(
            5,
            FIVE_BY_HAND,
            lambda start: lmp_cells(PJM_RTO_ZONE, 25 + start.minute * 0.1, 0.002, 0.008),
        ),
        # spring forward: the last 5 minutes of 1 AM EST, then 3:00 AM EDT five minutes later
        "3/10/2024 6:55:00 AM,3/10/2024 1:55:00 AM,1,PJM-RTO,,,ZONE,,30.000000,30.010000,0.002000,0.008000,True,1",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,1,PJM-RTO,,,ZONE,,31.000000,31.010000,0.002000,0.008000,True,1",
        # fall back: 1:55 AM EDT, then 1:00 AM again (EST) five minutes later
        "11/3/2024 5:55:00 AM,11/3/2024 1:55:00 AM,1,PJM-RTO,,,ZONE,,14.000000,14.010000,0.002000,0.008000,True,1",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,1,PJM-RTO,,,ZONE,,-3.500000,-3.490000,0.002000,0.008000,False,1",
        # its verified correction, still negative: version 2 beside version 1
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,1,PJM-RTO,,,ZONE,,-3.250000,-3.240000,0.002000,0.008000,True,2",
    ],
)


def unverified_item(start: datetime) -> dict[str, object]:
    """rt_unverified_fivemin_lmps: no energy component, no version."""
    return {
        "datetime_beginning_utc": iso_clock(start),
        "datetime_beginning_ept": iso_clock(start, eastern=True),
        "pnode_id": 51217,
        "pnode_name": "EASTERN HUB",
        "type": "HUB",
        "total_lmp_rt": 27.5,
        "congestion_price_rt": 1.25,
        "marginal_loss_price_rt": 0.125,
        "occ_check": None,
        "ref_caseid_used_multi_interval": None,
    }


UNVERIFIED_DST_PAGE = page(
    [
        *(
            unverified_item(s)
            for d in DST_DAYS
            for s in day_starts(d, 5)
            if s not in FIVE_BY_HAND[2:]
        ),
        # fall back, JSON clock: 01:55 EDT then 01:00 EST; a negative total, energy derived
        unverified_item(utc(2024, 11, 3, 5, 55)) | {"total_lmp_rt": -15.875},
        unverified_item(utc(2024, 11, 3, 6, 0)) | {"datetime_beginning_ept": "2024-11-03T01:00:00"},
    ]
)

# --------------------------------------------------------------------------- load
LOAD = Feed(Iso.PJM, Dataset.LOAD)
METERED_HEADER = f"{CLOCKS},nerc_region,mkt_region,zone,load_area,mw,is_verified"

METERED_DST = csv_payload(
    METERED_HEADER,
    [
        # ordinary verified hours of load area AE (a zone of its own)
        *ordinary(
            60, HOURLY_BY_HAND, lambda start: f"RFC,MIDATL,AE,AE,{900 + start.hour * 10:.3f},True"
        ),
        # spring forward: no 2 AM EPT
        "3/10/2024 6:00:00 AM,3/10/2024 1:00:00 AM,RFC,MIDATL,AE,AE,845.125,True",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,RFC,MIDATL,AE,AE,838.500,True",
        # fall back: two 1 AM EPT hours of load
        "11/3/2024 5:00:00 AM,11/3/2024 1:00:00 AM,RFC,MIDATL,AE,AE,801.000,True",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,RFC,MIDATL,AE,AE,790.000,False",
        # the preliminary 06:00 UTC value verified later with a correction: revision 2 beside 1
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,RFC,MIDATL,AE,AE,792.250,True",
    ],
)


def inst_item(stamp: datetime, area: str = "PJM RTO", load: float = 85_000.0) -> dict[str, object]:
    return {
        "datetime_beginning_utc": iso_clock(stamp),
        "datetime_beginning_ept": iso_clock(stamp, eastern=True),
        "area": area,
        "instantaneous_load": load,
    }


INST_DST_PAGE = page(
    [
        # snapshots come a few seconds before each 5-minute mark and count for that interval
        *(
            inst_item(s - timedelta(seconds=3))
            for d in DST_DAYS
            for s in day_starts(d, 5)
            if s not in FIVE_BY_HAND
        ),
        # spring forward: 01:54:57 EST, then 01:59:57 EST, the snapshot of 3:00 AM EDT
        inst_item(utc(2024, 3, 10, 6, 54, 57)),
        inst_item(utc(2024, 3, 10, 6, 59, 57)) | {"datetime_beginning_ept": "2024-03-10T01:59:57"},
        # fall back: 01:54:57 EDT, then 01:59:57 EDT, the snapshot of the second 1:00 AM (EST)
        inst_item(utc(2024, 11, 3, 5, 54, 57)),
        inst_item(utc(2024, 11, 3, 5, 59, 57)) | {"datetime_beginning_ept": "2024-11-03T01:59:57"},
        # a second snapshot for the same interval, stamped after the mark: a later revision
        inst_item(utc(2024, 11, 3, 6, 0, 2), load=84_250.5),
    ]
)

# --------------------------------------------------------------------------- fuel mix
FUEL = Feed(Iso.PJM, Dataset.FUEL_MIX)
FUEL_HEADER = f"{CLOCKS},fuel_type,mw,fuel_percentage_of_total,is_renewable"

FUEL_DST = csv_payload(
    FUEL_HEADER,
    [
        # ordinary hours of the two fuels of this payload
        *ordinary(
            60,
            HOURLY_BY_HAND,
            lambda start: f"Gas,{40_000 + start.hour * 100:.3f},0.45,False",
            lambda start: f"Storage,{10 + start.hour:.3f},0.0001,False",
        ),
        # spring forward
        "3/10/2024 6:00:00 AM,3/10/2024 1:00:00 AM,Gas,35100.000,0.44,False",
        "3/10/2024 6:00:00 AM,3/10/2024 1:00:00 AM,Storage,-120.500,-0.0015,False",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,Gas,34800.000,0.44,False",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,Storage,-98.250,-0.0012,False",
        # fall back; storage charging at night is negative generation and is kept
        "11/3/2024 5:00:00 AM,11/3/2024 1:00:00 AM,Gas,33000.000,0.43,False",
        "11/3/2024 5:00:00 AM,11/3/2024 1:00:00 AM,Storage,-250.000,-0.0033,False",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,Gas,32500.000,0.43,False",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,Storage,-240.000,-0.0032,False",
        # the same Gas hour repeated verbatim: one observation, kept once
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,Gas,32500.000,0.43,False",
    ],
)

# --------------------------------------------------------------------------- reserve prices
RESERVES = Feed(Iso.PJM, Dataset.AS_PRICES)
RESERVE_HEADER = (
    f"{CLOCKS},locale,service,mcp,mcp_capped,reg_ccp,reg_pcp,as_req_mw,total_mw,as_mw,ss_mw,"
    "tier1_mw,ircmwt2,dsr_as_mw,nsr_mw,regd_mw"
)

RESERVE_DST = csv_payload(
    RESERVE_HEADER,
    [
        # ordinary 5 minutes of RTO regulation (one price all day) and Mid-Atlantic/Dominion
        # synchronized reserve
        *ordinary(
            5,
            FIVE_BY_HAND,
            lambda _: "PJM_RTO,REG,21.50,21.50,17.20,4.30,525,540,530,10,,,0,,160",
            lambda start: f"MAD,SR,{1 + start.minute / 100:.2f},1.05,,,1500,1620,1600,20,,,0,0,",
        ),
        # spring forward: 1:55 AM EST, then 3:00 AM EDT
        "3/10/2024 6:55:00 AM,3/10/2024 1:55:00 AM,PJM_RTO,REG,18.00,18.00,14.40,3.60,525,540,530,10,,,0,,160",
        "3/10/2024 6:55:00 AM,3/10/2024 1:55:00 AM,MAD,SR,0.00,0.00,,,1500,1620,1600,20,,,0,0,",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,PJM_RTO,REG,18.50,18.50,14.80,3.70,525,540,530,10,,,0,,160",
        "3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,MAD,SR,0.00,0.00,,,1500,1620,1600,20,,,0,0,",
        # fall back: 1:55 AM EDT, then 1:00 AM EST
        "11/3/2024 5:55:00 AM,11/3/2024 1:55:00 AM,PJM_RTO,REG,12.00,12.00,9.60,2.40,525,540,530,10,,,0,,160",
        "11/3/2024 5:55:00 AM,11/3/2024 1:55:00 AM,MAD,SR,0.00,0.00,,,1500,1620,1600,20,,,0,0,",
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,PJM_RTO,REG,12.25,12.25,9.80,2.45,525,540,530,10,,,0,,160",
        # a reserve shortage: the clearing price jumps to the penalty factor
        "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM,MAD,SR,850.00,850.00,,,1500,1380,1380,0,,,0,0,",
    ],
)
RESERVE_SPRING_2021, RESERVE_FALL_2021 = date(2021, 3, 14), date(2021, 11, 7)


def hourly_reserve_items() -> list[dict[str, object]]:
    """Hourly reserve results before 5-minute pricing (2022-09), on the 2021 DST days."""
    items: list[dict[str, object]] = []
    for day in (RESERVE_SPRING_2021, RESERVE_FALL_2021):
        for start in day_starts(day, 60):
            for service, price in (("SR", 3.25), ("NSR", 0.5)):
                items.append(
                    {
                        "datetime_beginning_utc": iso_clock(start),
                        "datetime_beginning_ept": iso_clock(start, eastern=True),
                        "locale": "PJM_RTO",
                        "service": service,  # NSR existed before the 2022 reserve reform
                        "mcp": price,
                        "mcp_capped": price,
                    }
                )
    return items


COMPONENTS, NEGATIVE, REVISIONS = Shows.COMPONENTS, Shows.NEGATIVE, Shows.REVISIONS
MAY_2025 = (date(2025, 5, 1), date(2025, 5, 2))


CASES = [
    # recorded Data Miner 2 CSV exports
    DA.parses(
        "pjm-da-12hubs",
        shared_file(PJM, "pjm_dataminer_csv_da_hrl_lmps_12hubs_2025-05-01_to_05-02.csv"),
        Expect(576, MAY_2025, COMPONENTS),
    ),
    RT.parses(
        "pjm-rt-12hubs-negative",
        shared_file(PJM, "pjm_dataminer_csv_rt_hrl_lmps_12hubs_2025-05-01_to_05-02.csv"),
        Expect(576, MAY_2025, COMPONENTS | NEGATIVE),
    ),
    RT.parses(
        "pjm-rt-rto-dst-spring",
        shared_file(PJM, "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-03-10_dst_spring.csv"),
        Expect(23, (SPRING,), COMPONENTS),
    ),
    RT.parses(
        "pjm-rt-rto-dst-fall",
        shared_file(PJM, "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-11-03_dst_fall.csv"),
        Expect(25, (FALL,), COMPONENTS),
    ),
    RT.parses(
        "pjm-rt-rto-revisions",
        shared_file(PJM, "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-03-05_revisions_v1_v2.csv"),
        Expect(48, (date(2024, 3, 5),), COMPONENTS | REVISIONS),
    ),
    RT.parses(
        "pjm-rt-rto-negative",
        shared_file(PJM, "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-06-16_negative.csv"),
        Expect(24, (date(2024, 6, 16),), COMPONENTS | NEGATIVE),
    ),
    # written here, in PJM's formats
    DA.parses(
        "pjm-da-dst-csv",
        inline("da_hrl_lmps_2024_dst.csv", DA_DST),
        Expect(23 + 25 + 1, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS),
    ),
    RT.parses(
        "pjm-rt-hourly-dst-json",
        inline("rt_hrl_lmps_2024_dst_p001.json", RT_DST_PAGE),
        Expect(23 + 25 + 1, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS),
    ),
    FIVE.parses(
        "pjm-5min-verified-dst-csv",
        inline("rt_fivemin_hrl_lmps_2024_dst.csv", FIVE_DST),
        Expect(276 + 300 + 1, DST_DAYS, COMPONENTS | NEGATIVE | REVISIONS),
    ),
    FIVE.parses(
        "pjm-5min-unverified-dst-json",
        inline("rt_unverified_fivemin_lmps_2024_dst_p001.json", UNVERIFIED_DST_PAGE),
        # energy derived: total - congestion - loss
        Expect(276 + 300, DST_DAYS, COMPONENTS | NEGATIVE),
    ),
    LOAD.parses(
        "pjm-load-metered-dst-csv",
        inline("hrl_load_metered_2024_dst.csv", METERED_DST),
        Expect(23 + 25 + 1, DST_DAYS, REVISIONS, minutes=60),
    ),
    LOAD.parses(
        "pjm-load-inst-dst-json",
        inline("inst_load_2024_dst_p001.json", INST_DST_PAGE),
        Expect(276 + 300 + 1, DST_DAYS, REVISIONS, minutes=5),
    ),
    FUEL.parses(
        "pjm-fuel-dst-csv",
        inline("gen_by_fuel_2024_dst_pub20241105T120000Z.csv", FUEL_DST),
        Expect(2 * (23 + 25), DST_DAYS, NEGATIVE, minutes=60),
    ),
    RESERVES.parses(
        "pjm-reserves-dst-csv",
        inline("reserve_market_results_2024_dst.csv", RESERVE_DST),
        Expect(2 * (276 + 300), DST_DAYS, minutes=5),
    ),
    RESERVES.parses(
        "pjm-reserves-hourly-2021-dst-json",
        inline("reserve_market_results_2021_dst_p001.json", lambda: page(hourly_reserve_items())),
        Expect(2 * (23 + 25), (RESERVE_SPRING_2021, RESERVE_FALL_2021), minutes=60),
    ),
]


ERRORS_DOCUMENT = json.dumps(
    {"errors": [{"field": "datetime_beginning_ept", "message": "Invalid date range"}]}
).encode()
GATEWAY_DOCUMENT = json.dumps(
    {"statusCode": 401, "message": "Access denied due to missing subscription key."}
).encode()
RT_DST = DA_DST.replace(b"_da", b"_rt")  # the same export, of rt_hrl_lmps
# Each feed's CSV export, the column renamed in it, and a number as the cell's text, what
# replaces it and the message that names it.
CSV_OF = {
    DA: (DA_DST, "total_lmp_da", "18.810000", "n/a", "total_lmp_da is not a number"),
    RT: (RT_DST, "total_lmp_rt", "18.810000", "n/a", "total_lmp_rt is not a number"),
    FIVE: (FIVE_DST, "total_lmp_rt", "30.010000", "#VALUE!", "total_lmp_rt is not a number"),
    LOAD: (METERED_DST, "mw", "845.125", "--", "mw is not a number"),
    FUEL: (FUEL_DST, "mw", "35100.000", "NaN", "mw is not a finite number"),
    RESERVES: (
        RESERVE_DST,
        "mcp",
        "PJM_RTO,REG,18.00",
        "PJM_RTO,REG,eighteen",
        "mcp is not a number",
    ),
}


def _without_first_column(payload: bytes) -> bytes:
    lines = payload.split(b"\r\n")
    return b"\r\n".join(line.split(b",", 1)[-1] for line in lines)


def _per_dataset() -> list[MalformedCase]:
    cases: list[MalformedCase] = []
    for feed, (payload, column, number, bad_number, number_error) in CSV_OF.items():
        name = feed.dataset.value
        header_end = payload.index(b"\r\n")
        header = payload[:header_end].decode()
        renamed = header.replace(f",{column},", f",{column}_x,", 1)
        assert renamed != header
        cases += [
            feed.rejects(
                f"pjm-{name}-renamed-column",
                inline(f"{name}_renamed.csv", renamed.encode() + payload[header_end:]),
                rf"missing column\(s\) {column}\b",
                notes="a column renamed upstream is reported by name, not read as empty",
            ),
            feed.rejects(
                f"pjm-{name}-not-a-number",
                inline(f"{name}_bad_number.csv", edited(payload, number, bad_number)),
                r", row \d+: " + number_error,
            ),
            feed.rejects(
                f"pjm-{name}-errors-document",
                inline(f"{name}_p001.json", ERRORS_DOCUMENT),
                "an error document in place of data: .*Invalid date range",
                notes="Data Miner's error answer is not an empty result",
            ),
            feed.rejects(
                f"pjm-{name}-gateway-document",
                inline(f"{name}_p001.json", GATEWAY_DOCUMENT),
                "an error document in place of data: 401 Access denied",
            ),
            feed.rejects(
                f"pjm-{name}-ept-only",
                inline(f"{name}_ept_only.csv", _without_first_column(payload)),
                r"missing column\(s\) datetime_beginning_utc",
                notes="EPT alone cannot tell the two 1 AMs of a fall-back day apart",
            ),
        ]
    return cases


MALFORMED = [
    *_per_dataset(),
    RT.rejects(
        "pjm-ept-disagrees-with-utc",
        # the fall-back 06:00 UTC hour labelled 2 AM: the EPT label is checked, never trusted
        inline(
            "rt_bad_ept.csv",
            edited(
                RT_DST,
                "11/3/2024 6:00:00 AM,11/3/2024 1:00:00 AM",
                "11/3/2024 6:00:00 AM,11/3/2024 2:00:00 AM",
            ),
        ),
        r", row 48: datetime_beginning_ept '11/3/2024 2:00:00 AM' is not",
    ),
    DA.rejects(
        "pjm-unknown-pnode-type",
        inline("da_bad_type.csv", edited(DA_DST, ",EASTERN HUB,,,HUB,", ",EASTERN HUB,,,HUBB,")),
        r", row 1: unknown pnode type 'HUBB'",
    ),
    FIVE.rejects(
        "pjm-5min-misaligned",
        inline(
            "rt_fivemin_misaligned.csv",
            edited(
                FIVE_DST,
                "3/10/2024 6:55:00 AM,3/10/2024 1:55:00 AM",
                "3/10/2024 6:57:00 AM,3/10/2024 1:57:00 AM",
            ),
        ),
        "is not on a 5-minute boundary",
    ),
    FIVE.rejects(
        "pjm-5min-renamed-energy",
        # a verified export (it has version_nbr) is never taken for the unverified feed
        inline(
            "rt_fivemin_no_energy.csv",
            edited(FIVE_DST, "system_energy_price_rt", "system_energy_rt"),
        ),
        r"missing column\(s\) system_energy_price_rt",
    ),
    FIVE.rejects(
        "pjm-5min-conflicting-duplicate",
        inline(
            "rt_fivemin_conflict.csv",
            FIVE_DST
            + b"3/10/2024 7:00:00 AM,3/10/2024 3:00:00 AM,1,PJM-RTO,,,ZONE,,31.500000,31.510000,0.002000,0.008000,True,1\r\n",
        ),
        r"same observation as row \d+ with different values",
    ),
    FUEL.rejects(
        "pjm-unknown-fuel",
        inline("gen_by_fuel_bad.csv", edited(FUEL_DST, ",Storage,", ",Fusion,")),
        "unknown fuel_type 'Fusion'",
    ),
    RESERVES.rejects(
        "pjm-unknown-reserve-service",
        inline("reserve_bad.csv", edited(RESERVE_DST, ",MAD,SR,", ",MAD,DASR,")),
        "unknown reserve service 'DASR'",
    ),
    RESERVES.rejects(
        "pjm-reserve-hourly-not-on-the-hour",
        inline(
            "reserve_2021_p001.json",
            lambda: edited(
                page(hourly_reserve_items()),
                '2021-03-14T05:00:00", "datetime_beginning_ept": "2021-03-14T00:00:00"',
                '2021-03-14T05:05:00", "datetime_beginning_ept": "2021-03-14T00:05:00"',
            ),
        ),
        "is not on an hour before 5-minute pricing",
    ),
    LOAD.rejects(
        "pjm-load-verified-not-a-flag",
        inline("hrl_load_metered_bad.csv", edited(METERED_DST, "845.125,True", "845.125,Maybe")),
        "is_verified is not a flag: 'Maybe'",
    ),
    LOAD.rejects(
        "pjm-json-item-missing-a-field",
        inline(
            "inst_load_p001.json",
            page([inst_item(utc(2024, 11, 3, 5, 59, 57)), {"area": "PJM RTO"}]),
        ),
        r", row 2: missing field\(s\) datetime_beginning_utc, ",
    ),
    DA.rejects(
        "pjm-json-without-items",
        inline("da_p001.json", b'{"links": [], "totalRows": 0}'),
        "a JSON object without items",
    ),
    RT.rejects(
        "pjm-zip-in-place-of-a-page",
        inline("rt_hrl_lmps.zip", b"PK\x03\x04" + b"\x00" * 40),
        "a zip payload where json or csv was expected",
    ),
]


# Datasets whose regular payloads the columnar path reads (tests/unit/connectors/test_columnar.py)
COLUMNAR = (
    Dataset.LMP_DA_HOURLY,
    Dataset.LMP_RT_HOURLY,
    Dataset.LMP_RT_5MIN,
    Dataset.LOAD,
    Dataset.AS_PRICES,
)
