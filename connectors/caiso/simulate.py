"""CAISO's native responses, simulated: OASIS SingleZip zips of CSV reports (prices, ancillary
services, load) and Today's Outlook fuel-source CSVs, from the deterministic model of
connectors/simulate.py.

Every value is a pure function of (seed, series, interval, revision), and every report covers
one Pacific operating day with a publish time fixed by that day, so a window simulated whole
or in chunks parses to the same records. Times are generated in UTC and labelled in Pacific
time from there, so DST days have 23 and 25 hours like the real files.

Faults (request.faults):
- missing: a series' interval is left out (for LMP all its component rows; in an Outlook file
  its cell is blank, so rows keep their place);
- revision: the interval is published again in a later response, with a later publish time
  (revision 2) and a changed value;
- duplicate: a row is repeated verbatim within its report (not in the repeated hour of an
  Outlook file, where a repeated label means the second hour);
- negative, spike: passed to the price model.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from connectors.caiso.feeds import (
    AS_PRICE_ITEMS,
    ISO,
    LMP_QUERIES,
    PRC_AS,
    PRC_INTVL_AS,
    SLD_FCST,
    TRADING_HUBS,
    OasisQuery,
)
from connectors.simulate import Faults, Payload, SimRequest, chance, intervals, load_mw, price, unit
from schemas.catalog import Dataset
from schemas.timeutil import expected_intervals, local_day, local_midnight_utc, zone

_TZ = zone(ISO)
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed member timestamps: the same window, the same bytes

# Column layouts of the OASIS CSV reports, as OASIS writes them.
_LMP_DAM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,NODE_ID_XML,NODE_ID,"
    "NODE,MARKET_RUN_ID,LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,MW,GROUP"
)
_LMP_RT_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,NODE_ID_XML,NODE_ID,NODE,"
    "MARKET_RUN_ID,LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,{value},OPR_INTERVAL,GROUP"
)
_AS_DAM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,OPR_TYPE,ANC_TYPE,"
    "ANC_REGION,MARKET_RUN_ID,XML_DATA_ITEM,MW,GROUP"
)
_AS_RTM_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_TYPE,ANC_TYPE,XML_DATA_ITEM,"
    "MARKET_RUN_ID,MW,ANC_REGION,OPR_INTERVAL,GROUP"
)
_SLD_HEADER = (
    "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,LOAD_TYPE,OPR_DT,OPR_HR,OPR_INTERVAL,"
    "MARKET_RUN_ID,TAC_AREA_NAME,LABEL,XML_DATA_ITEM,POS,MW,EXECUTION_TYPE,GROUP"
)
_FUELS = (
    "Solar",
    "Wind",
    "Geothermal",
    "Biomass",
    "Biogas",
    "Small hydro",
    "Coal",
    "Nuclear",
    "Natural Gas",
    "Large Hydro",
    "Batteries",
    "Imports",
    "Other",
)
_FUEL_BASE_MW = (9000, 3500, 900, 300, 200, 300, 5, 2250, 8000, 2500, 1500, 7000, 50)
_LMP_TYPES = (
    ("LMP", "LMP_PRC"),
    ("MCC", "LMP_CONG_PRC"),
    ("MCE", "LMP_ENE_PRC"),
    ("MCL", "LMP_LOSS_PRC"),
    ("MGHG", "LMP_GHG_PRC"),
)
_AS_BASE_PRICES = {"RU": 8.0, "RD": 6.0, "SR": 5.0, "NR": 1.5, "RMU": 0.2, "RMD": 0.3}
# (ANC_TYPE, the XML_DATA_ITEM of its clearing price, base price) of each simulated AS product.
_AS_TYPES = tuple((anc, item, _AS_BASE_PRICES[anc]) for item, anc in AS_PRICE_ITEMS.items())
_AS_REGIONS = ("AS_CAISO", "AS_CAISO_EXP", "AS_NP26", "AS_NP26_EXP", "AS_SP26", "AS_SP26_EXP")
_DLAPS = ("DLAP_PGAE-APND", "DLAP_SCE-APND", "DLAP_SDGE-APND", "DLAP_VEA-APND")
_AREAS = ("CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC", "PACE", "NEVP", "AZPS")
_AREA_BASE_MW = (26000.0, 11000.0, 12000.0, 2500.0, 100.0, 6000.0, 5000.0, 4500.0)
# (XML_DATA_ITEM, MARKET_RUN_ID, EXECUTION_TYPE, LOAD_TYPE, LABEL, minutes) of simulated load.
_LOAD_SERIES = (
    ("SYS_FCST_ACT_MW", "ACTUAL", "ACTUAL", "0", "Total Actual Hourly Integrated Load", 60),
    ("SYS_FCST_DA_MW", "DAM", "DAM", "1", "Demand Forecast Day Ahead", 60),
    ("SYS_FCST_5MIN_MW", "RTM", "RTD", "0", "RTM 5Min Load Forecast", 5),
)


def node_name(index: int) -> str:
    """The pricing node of series `index`: the trading hubs, the DLAPs, then plain nodes."""
    named = (*TRADING_HUBS, *_DLAPS)
    return named[index] if index < len(named) else f"SIM{index:05d}_7_N001"


def region_name(index: int) -> str:
    return _AS_REGIONS[index] if index < len(_AS_REGIONS) else f"AS_SIM{index:03d}"


def area_name(index: int) -> str:
    return _AREAS[index] if index < len(_AREAS) else f"SIM{index:03d}-TAC"


def as_price(
    seed: int,
    region: int,
    anc_type: str,
    start: datetime,
    market: str,
    revision: int,
    faults: Faults,
) -> float:
    """An AS clearing price that follows the energy price (negative and spiking with it); a
    revision adds at least 5 cents, so that it changes even where rounding would hide it."""
    kind = [t for t, _, _ in _AS_TYPES].index(anc_type)
    lmp = price(seed, ISO, 100 + region, start, market, revision=revision, faults=faults).lmp
    base = _AS_TYPES[kind][2] * (0.5 + unit(seed, ISO, "as", region, anc_type, start))
    return round(base * lmp / 32.0 + 0.05 * (revision - 1), 2)


def area_load(seed: int, area: int, start: datetime, item: str, revision: int) -> float:
    """Actual load of an area, or a forecast of it a little off; revisions add 0.5%."""
    base = _AREA_BASE_MW[area] if area < len(_AREA_BASE_MW) else 1000.0 + 10 * area
    value = load_mw(seed, ISO, area, start.replace(minute=0), base)
    if item != "SYS_FCST_ACT_MW":
        value *= 0.98 + 0.04 * unit(seed, ISO, "forecast", item, area, start)
    return round(value * (1 + 0.005 * (revision - 1)), 2)


def fuel_mw(seed: int, fuel: str, start: datetime, revision: int) -> float:
    """Generation of one Outlook fuel column: solar by daylight, batteries charging by day;
    a revision adds 1% and 1 MW (so that a zero changes too)."""
    index = _FUELS.index(fuel)
    local = start.astimezone(_TZ)
    hour = local.hour + local.minute / 60
    daylight = max(0.0, math.sin((hour - 6) / 13 * math.pi))
    shape = 0.9 + 0.2 * unit(seed, ISO, "fuel", fuel, start)
    value = _FUEL_BASE_MW[index] * shape
    if fuel == "Solar":
        value *= daylight
    elif fuel == "Batteries":
        value *= (0.8 if hour >= 17 else 0.1) - daylight
    return round(value * (1 + 0.01 * (revision - 1)) + (revision - 1), 2)


def simulate(request: SimRequest) -> list[Payload]:
    """Responses covering [request.start_utc, request.end_utc) of request.dataset in CAISO's
    native format (see the module doc); request.locations series of nodes, AS regions or load
    areas (the fuel-source file has its fixed 13 columns)."""
    dataset = request.dataset
    if dataset in LMP_QUERIES:
        return _lmp(request, *LMP_QUERIES[dataset])
    if dataset is Dataset.AS_PRICES:
        return _as_prices(request, PRC_AS) + _as_prices(request, PRC_INTVL_AS)
    if dataset is Dataset.LOAD:
        return _load(request)
    if dataset is Dataset.FUEL_MIX:
        return _fuel_mix(request)
    raise ValueError(f"CAISO publishes no {dataset.value}")


# Publication -----------------------------------------------------------------------------


def published_at(day: date, revision: int) -> datetime:
    """When the report of operating day `day` comes out: 00:30 Pacific the next day, one more
    day for each revision (00:30 is never inside a DST change, so its stamp is unambiguous)."""
    wall = datetime.combine(day + timedelta(days=revision), time(0, 30))
    return wall.replace(tzinfo=_TZ).astimezone(UTC)


def _oasis_stamp(instant: datetime) -> str:
    return instant.astimezone(_TZ).strftime("%Y%m%d_%H_%M_%S")


@dataclass
class _Reports:
    """CSV lines per (revision, operating day), written out as one zip per revision."""

    query: OasisQuery
    header: str
    request: SimRequest
    lines: dict[tuple[int, date], list[str]]

    def add(self, revision: int, day: date, line: str, *parts: object) -> None:
        lines = self.lines.setdefault((revision, day), [])
        lines.append(line)
        if chance(self.request.faults.duplicate_rate, self.request.seed, "dup", *parts):
            lines.append(line)

    def payloads(self) -> list[Payload]:
        out = []
        market = self.query.market_run_id or "ALL"
        window = f"{self.request.start_utc:%Y%m%dT%H%M}Z_{self.request.end_utc:%Y%m%dT%H%M}Z"
        for revision in sorted({r for r, _ in self.lines}):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for (r, day), lines in sorted(self.lines.items()):
                    if r != revision:
                        continue
                    stamp = _oasis_stamp(published_at(day, revision))
                    member = (
                        f"{day:%Y%m%d}_{day:%Y%m%d}_{self.query.queryname}_{market}_{stamp}"
                        f"_v{self.query.version}.csv"
                    )
                    body = "\n".join([self.header, *lines]) + "\n"
                    archive.writestr(zipfile.ZipInfo(member, _ZIP_TIME), body)
            name = f"caiso_sim_{self.query.queryname}_{market}_{window}_r{revision}.zip"
            out.append((name, buffer.getvalue()))
        return out


def _gmt(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S-00:00")


def _operating(start: datetime, minutes: int) -> tuple[date, int, int]:
    """OPR_DT, OPR_HR (1..25, real hours since Pacific midnight) and OPR_INTERVAL."""
    day = local_day(ISO, start)
    elapsed = start - local_midnight_utc(ISO, day)
    hour = int(elapsed // timedelta(hours=1)) + 1
    interval = 0 if minutes == 60 else start.minute % 60 // minutes + 1
    return day, hour, interval


def _oasis_intervals(
    request: SimRequest, minutes: int
) -> Iterator[tuple[datetime, date, int, int, str]]:
    """Each interval of the window: (start, OPR_DT, OPR_HR, OPR_INTERVAL, the cells of its GMT
    start and end)."""
    step = timedelta(minutes=minutes)
    for start in intervals(request.start_utc, request.end_utc, minutes):
        day, hour, interval = _operating(start, minutes)
        yield start, day, hour, interval, f"{_gmt(start)},{_gmt(start + step)}"


def _revisions(request: SimRequest, *parts: object) -> Iterable[int]:
    """Revision 1, and 2 where the revision fault strikes; nothing where the row is missing."""
    faults = request.faults
    if chance(faults.missing_rate, request.seed, "missing", *parts):
        return ()
    if chance(faults.revision_rate, request.seed, "revision", *parts):
        return (1, 2)
    return (1,)


# LMP -------------------------------------------------------------------------------------


def _lmp(request: SimRequest, query: OasisQuery, market: str) -> list[Payload]:
    minutes = query.minutes
    is_dam = query.market_run_id == "DAM"
    header = _LMP_DAM_HEADER if is_dam else _LMP_RT_HEADER.format(value=query.value_column)
    reports = _Reports(query, header, request, {})
    for start, day, hour, interval, times in _oasis_intervals(request, minutes):
        for index in range(request.locations):
            node = node_name(index)
            for revision in _revisions(request, query.queryname, node, start):
                point = price(
                    request.seed,
                    ISO,
                    index,
                    start,
                    market,
                    revision=revision,
                    faults=request.faults,
                )
                values = (point.lmp, point.congestion, point.energy, point.loss, 0.0)
                for (lmp_type, item), value in zip(_LMP_TYPES, values, strict=True):
                    if is_dam:
                        line = (
                            f"{times},{day},{hour},{interval},{node},{node},{node},DAM,{lmp_type},"
                            f"{item},{node},ALL,1,{value!r},{index + 1}"
                        )
                    else:
                        line = (
                            f"{times},{day},{hour},{node},{node},{node},{query.market_run_id},"
                            f"{lmp_type},{item},{node},ALL,1,{value!r},{interval},{index + 1}"
                        )
                    reports.add(revision, day, line, query.queryname, node, start, lmp_type)
    return reports.payloads()


# Ancillary services ------------------------------------------------------------------------


def _as_prices(request: SimRequest, query: OasisQuery) -> list[Payload]:
    minutes = query.minutes
    market = "DA_HOURLY" if query.market_run_id == "DAM" else "RT_15MIN"
    is_dam = query.market_run_id == "DAM"
    reports = _Reports(query, _AS_DAM_HEADER if is_dam else _AS_RTM_HEADER, request, {})
    for start, day, hour, interval, times in _oasis_intervals(request, minutes):
        for index in range(request.locations):
            region = region_name(index)
            for anc_type, item, _ in _AS_TYPES:
                parts = (query.queryname, region, anc_type, start)
                for revision in _revisions(request, *parts):
                    value = as_price(
                        request.seed, index, anc_type, start, market, revision, request.faults
                    )
                    if is_dam:
                        line = (
                            f"{times},{day},{hour},{interval},PROC,{anc_type},{region},DAM,"
                            f"{item},{value!r},{index + 1}"
                        )
                    else:
                        line = (
                            f"{times},{day},{hour},PROC,{anc_type},{item},RTM,{value!r},"
                            f"{region},{interval},{index + 1}"
                        )
                    reports.add(revision, day, line, *parts)
    return reports.payloads()


# Load --------------------------------------------------------------------------------------


def _load(request: SimRequest) -> list[Payload]:
    reports = _Reports(SLD_FCST, _SLD_HEADER, request, {})
    for item, market_run, execution, load_type, label, minutes in _LOAD_SERIES:
        for start, day, hour, interval, times in _oasis_intervals(request, minutes):
            for index in range(request.locations):
                area = area_name(index)
                for revision in _revisions(request, item, area, start):
                    value = area_load(request.seed, index, start, item, revision)
                    line = (
                        f"{times},{load_type},{day},{hour},{interval},{market_run},{area},"
                        f"{label},{item},1,{value!r},{execution},{index + 1}"
                    )
                    reports.add(revision, day, line, item, area, start)
    return reports.payloads()


# Fuel mix (Today's Outlook) -------------------------------------------------------------------


def _fuel_mix(request: SimRequest) -> list[Payload]:
    """One fuelsource.csv per Pacific day (and revision), as CAISO lays it out: a row for every
    5-minute interval of the day, "HH:MM" labels ending each, blank where nothing is published
    (outside the window, not revised, the spring gap), the fall-back hour's labels twice in
    order. The full grid is what lets a file starting inside the repeated hour be placed."""
    window = set(intervals(request.start_utc, request.end_utc, 5))
    days = sorted({local_day(ISO, start) for start in window})
    header = ",".join(("Time", *_FUELS))
    step = timedelta(minutes=5)
    out = []
    for day in days:
        grid = expected_intervals(ISO, day, 5)
        cells = {start: _fuel_cells(request, start) if start in window else {} for start in grid}
        revised = any(2 in by_revision for by_revision in cells.values())
        for revision in (1, 2) if revised else (1,):
            lines = [header]
            for start in grid:
                row = cells[start].get(revision, [""] * len(_FUELS))
                lines += _outlook_lines(start + step, row, request)
            stamp = published_at(day, revision).strftime("%Y%m%dT%H%M%SZ")
            name = f"caiso_outlook_{day:%Y%m%d}_fuelsource_pub{stamp}.csv"
            out.append((name, ("\n".join(lines) + "\n").encode()))
    return out


def _fuel_cells(request: SimRequest, start: datetime) -> dict[int, list[str]]:
    """The fuel columns of one interval per revision; a missing value is a blank cell."""
    cells: dict[int, list[str]] = {}
    for column, fuel in enumerate(_FUELS):
        for revision in _revisions(request, "fuelsource", fuel, start):
            value = fuel_mw(request.seed, fuel, start, revision)
            cells.setdefault(revision, [""] * len(_FUELS))[column] = repr(value)
    return cells


def _outlook_lines(end: datetime, row: list[str], request: SimRequest) -> list[str]:
    local = end.astimezone(_TZ)
    label = f"{local:%H:%M}"
    lines = []
    if label == "03:00" and _spring_gap_before(end):
        lines += [f"02:{minute:02d}," + "," * (len(_FUELS) - 1) for minute in range(0, 60, 5)]
    line = ",".join((label, *row))
    lines.append(line)
    if (
        any(row)
        and not _is_ambiguous(local)
        and chance(request.faults.duplicate_rate, request.seed, "dup", "fuelsource", end)
    ):
        lines.append(line)
    return lines


def _spring_gap_before(end: datetime) -> bool:
    """True when the wall clock jumped an hour within the hour before `end`."""
    before = end - timedelta(hours=1)
    return end.astimezone(_TZ).utcoffset() != before.astimezone(_TZ).utcoffset()


def _is_ambiguous(local: datetime) -> bool:
    wall = local.replace(tzinfo=None)
    return (
        wall.replace(tzinfo=_TZ, fold=0).utcoffset() != wall.replace(tzinfo=_TZ, fold=1).utcoffset()
    )
