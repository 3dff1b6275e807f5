"""Simulated PJM Data Miner 2 responses: the API's JSON pages (or the web tool's CSV exports) of
any dataset, any window and any number of series, from the deterministic model of
connectors/simulate.py, with the faults a request asks for.

Rows are grouped into publications: one per Eastern operating day ("edition 1", published an
hour after the day ends, or the morning before it for day-ahead prices), and for rows that get
revised a later one ("edition 2", a day after the first). The revised rows carry a higher
`version_nbr` (LMPs), `is_verified` True (metered load) or, for feeds without a version, the
later publish time in the response's name (`pub<YYYYMMDDTHHMMSSZ>`, read by the parser). Every
row is a pure function of (seed, feed, series, interval, edition), so chunked windows give the
same rows as one window. Times are rendered from UTC, so DST days have 23 or 25 EPT hours.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

from connectors.pjm.feeds import (
    EPT_COLUMN,
    FEED_BY_NAME,
    FEEDS,
    PAGE_ROWS,
    RESERVE_FIVE_MINUTE_SINCE,
    UTC_COLUMN,
    Feed,
)
from connectors.simulate import Payload, SimRequest, chance, intervals, load_mw, price, unit
from schemas.timeutil import local_day, local_midnight_utc, zone

Cell = str | float | int | bool | datetime | None
Row = dict[str, Cell]
# (request, series index, interval start, edition, revised) -> one row in the feed's columns
RowMaker = Callable[[SimRequest, int, datetime, int, bool], Row]

EASTERN = zone("PJM")
HUBS = (
    (51217, "EASTERN HUB"),
    (51287, "WEST INT HUB"),
    (51288, "WESTERN HUB"),
    (4669664, "NEW JERSEY HUB"),
    (35010337, "DOMINION HUB"),
    (34497127, "AEP-DAYTON HUB"),
    (34497125, "AEP GEN HUB"),
    (34497151, "OHIO HUB"),
    (33092313, "CHICAGO HUB"),
    (33092311, "CHICAGO GEN HUB"),
    (33092315, "N ILLINOIS HUB"),
    (116013751, "ATSI GEN HUB"),
)
ZONES = (
    "AE", "AEP", "APS", "ATSI", "BC", "COMED", "DAYTON", "DEOK", "DOM", "DPL",
    "DUQ", "EKPC", "JC", "ME", "PE", "PEP", "PL", "PN", "PS", "RECO",
)  # fmt: skip
REGIONS = ("PJM MID ATLANTIC REGION", "PJM SOUTHERN REGION", "PJM WESTERN REGION")
NODE_TYPES = ("GEN", "LOAD", "EHV", "AGGREGATE", "ZONE", "INTERFACE")
FUELS = (
    ("Gas", 38_000.0, False),
    ("Nuclear", 32_000.0, False),
    ("Coal", 16_000.0, False),
    ("Wind", 3_500.0, True),
    ("Solar", 2_500.0, True),
    ("Hydro", 1_500.0, True),
    ("Multiple Fuels", 900.0, False),
    ("Other Renewables", 700.0, True),
    ("Oil", 300.0, False),
    ("Other", 120.0, False),
    ("Storage", 150.0, False),  # charging shows as negative generation
)
RESERVES = (
    ("PJM_RTO", "REG", 28.0),
    ("PJM_RTO", "SR", 9.0),
    ("PJM_RTO", "PR", 7.0),
    ("PJM_RTO", "30MIN", 1.5),
    ("MAD", "SR", 11.0),
    ("MAD", "PR", 8.0),
    ("MAD", "30MIN", 2.0),
)
SHORTAGE_PRICE = 850.0  # a reserve shortage sets the clearing price to the penalty factor


def pnode(index: int) -> tuple[int, str, str]:
    """(pnode_id, pnode_name, type) of LMP series `index` (da_hrl_lmps, rt_hrl_lmps and the
    5-minute feeds): PJM's twelve hubs first, then made-up buses."""
    if index < len(HUBS):
        pnode_id, name = HUBS[index]
        return pnode_id, name, "HUB"
    number = index - len(HUBS)
    return 90_000_000 + number, f"SIM BUS {number}", NODE_TYPES[number % len(NODE_TYPES)]


def load_area(index: int) -> str:
    """The hrl_load_metered load area of series `index`: PJM's zones, then made-up areas."""
    return ZONES[index] if index < len(ZONES) else f"SIM{index - len(ZONES)}"


def _lmp_maker(market: str, suffix: str, *, verified: bool) -> RowMaker:
    def make(request: SimRequest, series: int, start: datetime, edition: int, revised: bool) -> Row:
        pnode_id, name, kind = pnode(series)
        point = price(
            request.seed, "PJM", series, start, market, revision=edition, faults=request.faults
        )
        row: Row = {
            UTC_COLUMN: start,
            EPT_COLUMN: start,
            "pnode_id": pnode_id,
            "pnode_name": name,
            "type": kind,
        }
        if not verified:
            row[f"total_lmp_{suffix}"] = point.lmp
            row[f"congestion_price_{suffix}"] = point.congestion
            row[f"marginal_loss_price_{suffix}"] = point.loss
            row["occ_check"] = None
            row["ref_caseid_used_multi_interval"] = None
            return row
        row |= {
            "voltage": None if kind == "HUB" else "500 KV",
            "equipment": None,
            "zone": None if kind == "HUB" else ZONES[series % len(ZONES)],
            f"system_energy_price_{suffix}": point.energy,
            f"total_lmp_{suffix}": point.lmp,
            f"congestion_price_{suffix}": point.congestion,
            f"marginal_loss_price_{suffix}": point.loss,
            "row_is_current": edition == 2 or not revised,
            "version_nbr": edition,
        }
        return row

    return make


def metered_load_mw(request: SimRequest, series: int, start: datetime, edition: int) -> float:
    """hrl_load_metered MW of area `series` (edition 2: the verified value correcting the
    preliminary one)."""
    mw = load_mw(request.seed, "PJM", series, start, 2_000.0 + 400 * (series % 7))
    return round(mw * 1.004, 2) if edition == 2 else mw


def _metered_load(
    request: SimRequest, series: int, start: datetime, edition: int, revised: bool
) -> Row:
    area = load_area(series)
    mw = metered_load_mw(request, series, start, edition)
    return {
        UTC_COLUMN: start,
        EPT_COLUMN: start,
        "nerc_region": "RFC",
        "mkt_region": "MIDATL" if series % 3 == 0 else "WEST" if series % 3 == 1 else "SOUTH",
        "zone": area,
        "load_area": area,
        "mw": mw,
        "is_verified": edition == 2 or not revised,
    }


def inst_load_area(series: int) -> str:
    """The inst_load area of series `series`: the RTO, its regions, then the zones."""
    named = ("PJM RTO", *REGIONS)
    return named[series] if series < len(named) else load_area(series - len(named))


def inst_load_stamp(request: SimRequest, series: int, start: datetime) -> datetime:
    """When an inst_load snapshot is stamped: up to 5 seconds before its 5-minute mark."""
    lead = int(unit(request.seed, "inst_load", series, start) * 6)
    return start - timedelta(seconds=lead)


def inst_load_mw(request: SimRequest, series: int, start: datetime) -> float:
    """The inst_load snapshot of area `series` for the 5 minutes starting at `start`."""
    base = 90_000.0 if series == 0 else 30_000.0 if series <= len(REGIONS) else 3_000.0
    return load_mw(request.seed, "PJM", 1000 + series, start, base)


def _inst_load(
    request: SimRequest, series: int, start: datetime, edition: int, revised: bool
) -> Row:
    stamp = inst_load_stamp(request, series, start)
    return {
        UTC_COLUMN: stamp,
        EPT_COLUMN: stamp,
        "area": inst_load_area(series),
        "instantaneous_load": inst_load_mw(request, series, start),
    }


def fuel_mw(request: SimRequest, series: int, start: datetime, edition: int) -> float:
    """gen_by_fuel MW of fuel `series` in the hour (edition 2 carries PJM's correction)."""
    name, base, _ = FUELS[series]
    mw = load_mw(request.seed, "PJM", 500 + series, start, base)
    if name == "Storage":
        mw = round(mw - base * 1.02, 2)
    if name == "Solar" and not 11 <= start.hour <= 23:  # UTC hours of daylight in the East
        mw = 0.0
    return round(mw + 25.0, 2) if edition == 2 else mw


@lru_cache(maxsize=4096)
def _fuel_total(request: SimRequest, start: datetime) -> float:
    return sum(fuel_mw(request, i, start, 1) for i in range(len(FUELS)))


def _fuel(request: SimRequest, series: int, start: datetime, edition: int, revised: bool) -> Row:
    name, _, renewable = FUELS[series]
    mw = fuel_mw(request, series, start, edition)
    total = _fuel_total(request, start)
    return {
        UTC_COLUMN: start,
        EPT_COLUMN: start,
        "fuel_type": name,
        "mw": mw,
        "fuel_percentage_of_total": round(mw / total, 4) if total else 0.0,
        "is_renewable": renewable,
    }


def reserve_price(request: SimRequest, series: int, start: datetime, edition: int) -> float:
    """reserve_market_results `mcp` of series `series` (edition 2 carries PJM's correction)."""
    locale, service, base = RESERVES[series]
    value = base * (0.4 + 1.2 * unit(request.seed, "reserve", locale, service, start))
    if chance(request.faults.spike_rate, request.seed, "reserve", locale, start, "shortage"):
        value = SHORTAGE_PRICE
    return round(value + (0.5 if edition == 2 else 0.0), 2)


def _reserve(request: SimRequest, series: int, start: datetime, edition: int, revised: bool) -> Row:
    locale, service, _ = RESERVES[series]
    mcp = reserve_price(request, series, start, edition)
    capability = round(mcp * 0.8, 2) if service == "REG" else None
    required = 525.0 if service == "REG" else 1_500.0 if service in ("SR", "PR") else 3_000.0
    cleared = round(required * (1 + 0.1 * unit(request.seed, "cleared", series, start)), 1)
    return {
        UTC_COLUMN: start,
        EPT_COLUMN: start,
        "locale": locale,
        "service": service,
        "mcp": mcp,
        "mcp_capped": mcp,
        "reg_ccp": capability,
        "reg_pcp": round(mcp - capability, 2) if capability is not None else None,
        "as_req_mw": required,
        "total_mw": cleared,
        "as_mw": round(cleared * 0.9, 1),
        "ss_mw": round(cleared * 0.1, 1),
        "tier1_mw": None,
        "ircmwt2": None,
        "dsr_as_mw": 0.0,
        "nsr_mw": 0.0 if service == "SR" else round(cleared * 0.2, 1),
        "regd_mw": round(cleared * 0.3, 1) if service == "REG" else None,
    }


# feed name -> (row maker, number of series it offers at most, whether its rows get revised)
MAKERS: dict[str, tuple[RowMaker, int | None, bool]] = {
    "da_hrl_lmps": (_lmp_maker("DA_HOURLY", "da", verified=True), None, True),
    "rt_hrl_lmps": (_lmp_maker("RT_HOURLY", "rt", verified=True), None, True),
    "rt_fivemin_hrl_lmps": (_lmp_maker("RT_5MIN", "rt", verified=True), None, True),
    # unverified prices are replaced by the verified feed, never revised in place
    "rt_unverified_fivemin_lmps": (_lmp_maker("RT_5MIN", "rt", verified=False), None, False),
    "hrl_load_metered": (_metered_load, None, True),
    "inst_load": (_inst_load, None, False),  # snapshots are not revised
    "gen_by_fuel": (_fuel, len(FUELS), True),
    "reserve_market_results": (_reserve, len(RESERVES), True),
}


def interval_starts(feed: Feed, start_utc: datetime, end_utc: datetime) -> list[datetime]:
    """The feed's interval starts in [start_utc, end_utc) (reserves were hourly before 2022-09)."""
    if feed.name != "reserve_market_results":
        return intervals(start_utc, end_utc, feed.minutes)
    cutoff = RESERVE_FIVE_MINUTE_SINCE
    hourly = intervals(start_utc, min(end_utc, cutoff), 60) if start_utc < cutoff else []
    return hourly + intervals(max(start_utc, cutoff), end_utc, 5)


def published_at(feed: Feed, day: date, edition: int) -> datetime:
    """When the edition of a day's rows is published."""
    if feed.name == "da_hrl_lmps":  # day-ahead results post around 13:30 EPT the day before
        first = local_midnight_utc("PJM", day) - timedelta(hours=10, minutes=30)
    else:
        first = local_midnight_utc("PJM", day + timedelta(days=1)) + timedelta(hours=1)
    return first + timedelta(days=edition - 1)


def simulate(
    request: SimRequest,
    *,
    feed: str | None = None,
    fmt: Literal["json", "csv"] = "json",
    page_rows: int = PAGE_ROWS,
) -> list[Payload]:
    """Simulated responses of `feed` (by default the dataset's preferred feed, e.g. `da_hrl_lmps`)
    for [request.start_utc, request.end_utc), as the API's JSON pages or the CSV export, in
    publication order. Any window can be simulated: the model has no history limit."""
    chosen = FEED_BY_NAME[feed] if feed else FEEDS[request.dataset][0]
    if chosen.dataset is not request.dataset:
        raise ValueError(f"feed {chosen.name} is not a {request.dataset.value} feed")
    make, most, revisable = MAKERS[chosen.name]
    series = request.locations if most is None else min(request.locations, most)
    faults = request.faults
    editions: dict[tuple[date, int], list[Row]] = defaultdict(list)
    for start in interval_starts(chosen, request.start_utc, request.end_utc):
        day = local_day("PJM", start)
        for index in range(series):
            key = (request.seed, chosen.name, index, start)
            if chance(faults.missing_rate, *key, "missing"):
                continue
            revised = revisable and chance(faults.revision_rate, *key, "revised")
            row = make(request, index, start, 1, revised)
            editions[(day, 1)].append(row)
            if chance(faults.duplicate_rate, *key, "duplicate"):
                editions[(day, 1)].append(row)
            if revised:
                editions[(day, 2)].append(make(request, index, start, 2, revised))
    window = f"{request.start_utc:%Y%m%dT%H%MZ}-{request.end_utc:%Y%m%dT%H%MZ}"
    if not editions:
        return [(f"{chosen.name}_{window}_p001.json", _page(chosen, [], 0, 1, page_rows))]
    out: list[tuple[datetime, Payload]] = []
    for (day, edition), rows in editions.items():
        published = published_at(chosen, day, edition)
        stem = f"{chosen.name}_{day:%Y%m%d}_e{edition}_pub{published:%Y%m%dT%H%M%SZ}_{window}"
        if fmt == "csv":
            out.append((published, (f"{stem}.csv", _csv(chosen, rows))))
            continue
        for first in range(0, len(rows), page_rows):
            number = first // page_rows + 1
            page = _page(chosen, rows[first : first + page_rows], len(rows), first + 1, page_rows)
            out.append((published, (f"{stem}_p{number:03d}.json", page)))
    out.sort(key=lambda item: item[0])
    return [payload for _, payload in out]


def _json_cell(name: str, value: Cell) -> str | float | int | bool | None:
    if isinstance(value, datetime):
        shown = value.astimezone(EASTERN) if name == EPT_COLUMN else value.astimezone(UTC)
        return shown.replace(tzinfo=None).isoformat()
    return value


def _page(feed: Feed, rows: list[Row], total: int, start_row: int, page_rows: int) -> bytes:
    query = (
        f"{feed.url}?RowCount={page_rows}&Order=Asc&StartRow={{}}&Fields={','.join(feed.fields)}"
    )
    links = [{"rel": "self", "href": query.format(start_row)}]
    if start_row + len(rows) <= total:
        links.append({"rel": "next", "href": query.format(start_row + page_rows)})
    links.append({"rel": "metadata", "href": f"{feed.url}/metadata"})
    document = {
        "links": links,
        "items": [{k: _json_cell(k, v) for k, v in row.items()} for row in rows],
        "searchSpecification": {
            "rowCount": page_rows,
            "order": "Asc",
            "startRow": start_row,
            "isActiveMetadata": True,
            "fields": list(feed.fields),
            "filters": [],
        },
        "totalRows": total,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def us_timestamp(instant: datetime) -> str:
    """A CSV export's timestamp: "3/10/2024 1:00:00 AM" (no leading zeros, 12-hour clock)."""
    hour = instant.hour % 12 or 12
    half = "AM" if instant.hour < 12 else "PM"
    return (
        f"{instant.month}/{instant.day}/{instant.year} "
        f"{hour}:{instant.minute:02d}:{instant.second:02d} {half}"
    )


def _csv_cell(name: str, value: Cell) -> str:
    if isinstance(value, datetime):
        shown = value.astimezone(EASTERN) if name == EPT_COLUMN else value.astimezone(UTC)
        return us_timestamp(shown)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def _csv(feed: Feed, rows: list[Row]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(feed.fields)
    for row in rows:
        writer.writerow([_csv_cell(name, row[name]) for name in feed.fields])
    return buffer.getvalue().encode()
