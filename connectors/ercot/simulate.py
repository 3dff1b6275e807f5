"""Simulated ERCOT responses: the shared simulator model rendered in ERCOT's own formats.

Each dataset comes out the way ERCOT posts it: MIS zips holding one CSV named
`cdr.<reportTypeId>.0000000000000000.<local posting stamp>.<DOC>.csv` (one per operating day for
the day-ahead reports and the actual load, one per 15-minute interval for NP6-905, one per SCED
run for NP6-788) and the fuel-mix dashboard JSON (one per operating day). Local labels are
derived from the UTC interval, so a 23- or 25-hour day comes out as ERCOT labels it.

Faults: a missing row is left out of the first posting; a revised row is posted again later
(a later posting time, or a later SCED run within the same 5-minute interval) with a changed
value; a duplicated row is written twice verbatim; negative prices and spikes come from the
shared price model. Posting times depend only on the interval or day posted, so a window
simulated whole or in chunks gives the same postings.

`request.locations` settlement points are simulated for the LMP datasets; the ancillary
products (5), the load areas (8 weather zones and the total) and the fuels (8) are fixed sets.
The seven-day load forecast (NP3-561) is not simulated.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from connectors.ercot import feeds
from connectors.ercot.timelabels import TZ, posting_stamp
from connectors.simulate import Payload, SimRequest, chance, intervals, load_mw, price, unit
from schemas.catalog import Dataset
from schemas.timeutil import local_midnight_utc, wall_to_utc

ISO = feeds.ISO

# The settlement points every simulation starts with, then resource nodes SIM00001_RN, ...
_NAMED_POINTS: tuple[tuple[str, str], ...] = (
    ("HB_BUSAVG", "SH"),
    ("HB_HOUSTON", "HU"),
    ("HB_HUBAVG", "AH"),
    ("HB_NORTH", "HU"),
    ("HB_PAN", "HU"),
    ("HB_SOUTH", "HU"),
    ("HB_WEST", "HU"),
    ("LZ_AEN", "LZ"),
    ("LZ_CPS", "LZ"),
    ("LZ_HOUSTON", "LZ"),
    ("LZ_LCRA", "LZ"),
    ("LZ_NORTH", "LZ"),
    ("LZ_RAYBN", "LZ"),
    ("LZ_SOUTH", "LZ"),
    ("LZ_WEST", "LZ"),
    ("DC_E", "LZ_DC"),
    ("DC_L", "LZ_DC"),
    ("DC_N", "LZ_DC"),
    ("DC_R", "LZ_DC"),
    ("DC_S", "LZ_DC"),
)
AS_TYPES = ("REGUP", "REGDN", "RRS", "NSPIN", "ECRS")
# Weather zones (NP6-345 column order) and a typical load of each, MW.
LOAD_ZONES: tuple[tuple[str, float], ...] = (
    ("COAST", 12_000.0),
    ("EAST", 1_500.0),
    ("FAR_WEST", 6_000.0),
    ("NORTH", 1_100.0),
    ("NORTH_C", 12_500.0),
    ("SOUTHERN", 3_300.0),
    ("SOUTH_C", 7_000.0),
    ("WEST", 1_300.0),
)
FUELS = tuple(feeds.FUEL_TYPES)


@dataclass(frozen=True)
class _Cell:
    """One value of one series at one interval, in one posting (1 = first, 2 = revision)."""

    series: int
    start: datetime
    posting: int
    value: float


def simulate(request: SimRequest) -> list[Payload]:
    """ERCOT responses for the request's dataset and window, oldest posting first."""
    render = _RENDERERS.get(request.dataset)
    if render is None:
        raise ValueError(f"ERCOT publishes no {request.dataset.value} dataset")
    return render(request)


def settlement_points(count: int) -> list[tuple[str, str]]:
    """(SettlementPoint name, NP6-905 SettlementPointType) of the first `count` points."""
    points = list(_NAMED_POINTS[:count])
    points += [(f"SIM{i:05d}_RN", "RN") for i in range(1, count - len(points) + 1)]
    return points


def intended(request: SimRequest) -> dict[tuple[str, datetime], tuple[float, ...]]:
    """What a parse of `simulate(request)` must give: (series, interval start) -> the values
    posted for it, first posting first. The series is the location id (LMP), the ancillary
    type (AS), the load area id (load) or the ERCOT fuel label (fuel mix)."""
    names, cells = _plan(request)
    posted: dict[tuple[str, datetime], list[tuple[int, float]]] = defaultdict(list)
    for cell in cells:
        posted[(names[cell.series], cell.start)].append((cell.posting, cell.value))
    return {key: tuple(v for _, v in sorted(values)) for key, values in posted.items()}


# --- what is posted ---------------------------------------------------------------------------


def _plan(request: SimRequest) -> tuple[list[str], list[_Cell]]:
    """(series names, every value posted) of a request."""
    dataset = request.dataset
    if dataset in (Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_15MIN, Dataset.LMP_RT_5MIN):
        market, minutes = _LMP_MARKETS[dataset]
        names = [name for name, _ in settlement_points(request.locations)]
        return names, _cells(request, names, minutes, _lmp_value(request, market))
    if dataset is Dataset.AS_PRICES:
        return list(AS_TYPES), _cells(request, AS_TYPES, 60, _mcpc_value(request))
    if dataset is Dataset.LOAD:
        names = [zone for zone, _ in LOAD_ZONES] + [feeds.SYSTEM_AREA]
        return names, _load_cells(request)
    if dataset is Dataset.FUEL_MIX:
        return list(FUELS), _cells(request, FUELS, feeds.FUEL_MIX_MINUTES, _fuel_value(request))
    raise ValueError(f"ERCOT publishes no {dataset.value} dataset")


_LMP_MARKETS = {
    Dataset.LMP_DA_HOURLY: ("DA_HOURLY", 60),
    Dataset.LMP_RT_15MIN: ("RT_15MIN", 15),
    Dataset.LMP_RT_5MIN: ("RT_5MIN", 5),
}
_Value = Callable[[int, datetime, int], float]
K = TypeVar("K", tuple[date, int], tuple[datetime, int])


def _cells(request: SimRequest, names: Iterable[str], minutes: int, value: _Value) -> list[_Cell]:
    faults, seed, dataset = request.faults, request.seed, request.dataset.value
    cells = []
    series = list(names)
    for start in intervals(request.start_utc, request.end_utc, minutes):
        for i, name in enumerate(series):
            if not chance(faults.missing_rate, seed, ISO, dataset, "missing", name, start):
                cells.append(_Cell(i, start, 1, value(i, start, 1)))
            if chance(faults.revision_rate, seed, ISO, dataset, "revised", name, start):
                cells.append(_Cell(i, start, 2, value(i, start, 2)))
    return cells


def _load_cells(request: SimRequest) -> list[_Cell]:
    """A load row holds every zone and the total: rows go missing or are revised whole."""
    faults, seed = request.faults, request.seed
    cells = []
    for start in intervals(request.start_utc, request.end_utc, 60):
        postings = [1] * (not chance(faults.missing_rate, seed, ISO, "load", "missing", start))
        postings += [2] * chance(faults.revision_rate, seed, ISO, "load", "revised", start)
        for posting in postings:
            zones = [
                load_mw(seed, ISO, z, start, base) * (1.01 if posting == 2 else 1.0)
                for z, (_, base) in enumerate(LOAD_ZONES)
            ]
            zones = [round(mw, 2) for mw in zones]
            for z, mw in enumerate([*zones, round(sum(zones), 2)]):
                cells.append(_Cell(z, start, posting, mw))
    return cells


def _lmp_value(request: SimRequest, market: str) -> _Value:
    def value(i: int, start: datetime, posting: int) -> float:
        point = price(request.seed, ISO, i, start, market, revision=posting, faults=request.faults)
        return point.lmp

    return value


def _mcpc_value(request: SimRequest) -> _Value:
    """Capacity prices are never negative; they share the energy price's spikes."""

    def value(i: int, start: datetime, posting: int) -> float:
        point = price(
            request.seed, ISO, 900 + i, start, "AS", revision=posting, faults=request.faults
        )
        return round(abs(point.lmp) * (0.1 + 0.05 * i), 2)

    return value


def _fuel_value(request: SimRequest) -> _Value:
    """MW by fuel: solar by daylight, storage charging (negative) at night, gas the rest."""
    seed = request.seed

    def value(i: int, start: datetime, posting: int) -> float:
        local = start.astimezone(TZ)
        hour = local.hour + local.minute / 60
        fuel = FUELS[i]
        if fuel == "Solar":
            mw = max(0.0, math.sin((hour - 6.5) / 13 * math.pi)) * 18_000
        elif fuel == "Wind":
            mw = 6_000 + 14_000 * unit(seed, ISO, "wind", local.date(), local.hour)
        elif fuel == "Power Storage":
            mw = 3_000 * math.sin((hour - 13) / 24 * 2 * math.pi)
        elif fuel == "Nuclear":
            mw = 5_100 - 40 * unit(seed, ISO, "nuclear", local.date())
        elif fuel == "Coal and Lignite":
            mw = 9_000 + 2_000 * unit(seed, ISO, "coal", start)
        elif fuel == "Hydro":
            mw = 60 + 200 * unit(seed, ISO, "hydro", start)
        elif fuel == "Other":
            mw = 250 + 100 * unit(seed, ISO, "other", start)
        else:  # Natural Gas follows the load
            mw = load_mw(seed, ISO, 99, start, 24_000)
        return round(mw + 25.0 * (posting - 1), 2)

    return value


# --- how it is posted -------------------------------------------------------------------------


def _local(instant: datetime) -> datetime:
    return instant.astimezone(TZ)


def _hour_label(start: datetime) -> tuple[str, int, str]:
    """(MM/DD/YYYY, hour ending, DSTFlag) of the hour or quarter starting at `start`."""
    local = _local(start)
    return f"{local:%m/%d/%Y}", local.hour + 1, "Y" if local.fold else "N"


def _at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return wall_to_utc(TZ, datetime.combine(day, time(hour, minute)))


def _cdr_name(report: feeds.Report, posted: datetime, detail: str = "") -> str:
    """The CSV name ERCOT gives a posting; "xhr" marks a posting in the repeated hour."""
    marker = "xhr" if _local(posted).fold else ""
    return (
        f"cdr.{report.report_type_id:08d}.0000000000000000.{posting_stamp(posted)}."
        f"{report.doc_name}{detail}{marker}.csv"
    )


def _zip(member: str, lines: list[str], posted: datetime) -> Payload:
    """An MIS download: a zip named like its CSV, stamped with the posting time (so the bytes
    never depend on when the simulation ran)."""
    info = zipfile.ZipInfo(member, date_time=_local(posted).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "\n".join(lines) + "\n")
    return member.removesuffix(".csv") + "_csv.zip", buffer.getvalue()


def _twice(request: SimRequest, *key: object) -> bool:
    return chance(request.faults.duplicate_rate, request.seed, ISO, "duplicate", *key)


def _group(cells: list[_Cell], key: Callable[[_Cell], K]) -> list[tuple[K, list[_Cell]]]:
    """Cells grouped by `key`, groups in key order (postings oldest first)."""
    groups: dict[K, list[_Cell]] = defaultdict(list)
    for cell in cells:
        groups[key(cell)].append(cell)
    return sorted(groups.items(), key=lambda item: item[0])


def _daily(
    request: SimRequest,
    report: feeds.Report,
    posted_of: Callable[[date, int], datetime],
    header: str,
    line: Callable[[_Cell, list[str]], str],
) -> list[Payload]:
    """One document per operating day and posting, for the day-ahead reports and the load."""
    names, cells = _plan(request)
    out = []
    for (day, posting), group in _group(cells, lambda c: (_local(c.start).date(), c.posting)):
        posted = posted_of(day, posting)
        lines = [header]
        for cell in group:
            text = line(cell, names)
            twice = _twice(request, report.emil_id, names[cell.series], cell.start, posting)
            lines += [text] * (1 + twice)
        out.append(_zip(_cdr_name(report, posted), lines, posted))
    return out


def _render_dam_spp(request: SimRequest) -> list[Payload]:
    def line(cell: _Cell, names: list[str]) -> str:
        day, hour, flag = _hour_label(cell.start)
        return f"{day},{hour:02d}:00,{names[cell.series]},{cell.value:.2f},{flag}"

    return _daily(request, feeds.DAM_SPP, _day_ahead_posted, ",".join(feeds.DAM_SPP.columns), line)


def _render_dam_mcpc(request: SimRequest) -> list[Payload]:
    def line(cell: _Cell, names: list[str]) -> str:
        day, hour, flag = _hour_label(cell.start)
        return f"{day},{hour:02d}:00,{names[cell.series]},{cell.value:.2f},{flag}"

    columns = ",".join(feeds.DAM_MCPC.columns)
    return _daily(request, feeds.DAM_MCPC, _day_ahead_posted, columns, line)


def _day_ahead_posted(day: date, posting: int) -> datetime:
    """The day before at 13:30; a revision the day after at 09:00."""
    if posting == 1:
        return _at_local(day - timedelta(days=1), 13, 30)
    return _at_local(day + timedelta(days=1), 9)


def _render_load(request: SimRequest) -> list[Payload]:
    """NP6-345: one row per hour with every zone and the total."""
    _, cells = _plan(request)
    out = []
    rows = dict(_group(cells, lambda c: (c.start, c.posting)))
    for (day, posting), group in _group(cells, lambda c: (_local(c.start).date(), c.posting)):
        posted = _at_local(day + timedelta(days=posting), 5, 50)
        lines = [",".join(feeds.ACTUAL_LOAD.columns)]
        for start in sorted({cell.start for cell in group}):
            values = ",".join(f"{cell.value:.2f}" for cell in rows[(start, posting)])
            label, hour, flag = _hour_label(start)
            text = f"{label},{hour:02d}:00,{values},{flag}"
            lines += [text] * (1 + _twice(request, "load", start, posting))
        out.append(_zip(_cdr_name(feeds.ACTUAL_LOAD, posted), lines, posted))
    return out


def _render_rt_spp(request: SimRequest) -> list[Payload]:
    """NP6-905: one document per 15-minute interval, 2.5 minutes after it ends; a revision an
    hour later."""
    names, cells = _plan(request)
    kinds = dict(settlement_points(request.locations))
    out = []
    for (start, posting), group in _group(cells, lambda c: (c.start, c.posting)):
        end = start + timedelta(minutes=15)
        posted = end + timedelta(seconds=150) + timedelta(hours=posting - 1)
        day, hour, flag = _hour_label(start)
        interval = _local(start).minute // 15 + 1
        lines = [",".join(feeds.RT_SPP.columns)]
        for cell in group:
            name = names[cell.series]
            text = f"{day},{hour},{interval},{name},{kinds[name]},{cell.value:.2f},{flag}"
            lines += [text] * (1 + _twice(request, "rt", name, start, posting))
        detail = f"_{_local(end):%Y%m%d_%H%M}"
        out.append(_zip(_cdr_name(feeds.RT_SPP, posted, detail), lines, posted))
    return out


def _render_sced(request: SimRequest) -> list[Payload]:
    """NP6-788: one document per SCED run, seconds into its interval; a revision is a re-run
    later in the same interval (a later timestamp, so a higher revision)."""
    names, cells = _plan(request)
    out = []
    for (start, posting), group in _group(cells, lambda c: (c.start, c.posting)):
        offset = 10 + int(30 * unit(request.seed, ISO, "sced", start)) + 150 * (posting - 1)
        run = start + timedelta(seconds=offset)
        local = _local(run)
        stamp, flag = f"{local:%m/%d/%Y %H:%M:%S}", "Y" if local.fold else "N"
        lines = [",".join(feeds.SCED_LMP.columns)]
        for cell in group:
            name = names[cell.series]
            text = f"{stamp},{flag},{name},{cell.value:12.2f}"  # ERCOT pads LMP to 12
            lines += [text] * (1 + _twice(request, "sced", name, start, posting))
        posted = run + timedelta(seconds=2)
        detail = f"_{local:%Y%m%d_%H%M%S}"
        out.append(_zip(_cdr_name(feeds.SCED_LMP, posted, detail), lines, posted))
    return out


def _render_fuel_mix(request: SimRequest) -> list[Payload]:
    """The dashboard JSON, one per operating day and posting; stamps a few seconds past their
    5-minute tick, with their UTC offset, as the dashboard gives them."""
    names, cells = _plan(request)
    out = []
    for (day, posting), group in _group(cells, lambda c: (_local(c.start).date(), c.posting)):
        updated = local_midnight_utc(ISO, day + timedelta(days=posting)) + timedelta(minutes=5)
        stamps: dict[datetime, list[_Cell]] = defaultdict(list)
        for cell in group:
            stamps[cell.start].append(cell)
        entries = []
        for start, fuels in sorted(stamps.items()):
            jitter = 1 + int(8 * unit(request.seed, ISO, "stamp", start))
            stamp = _local(start + timedelta(seconds=jitter)).strftime("%Y-%m-%d %H:%M:%S%z")
            body = ", ".join(f'"{names[c.series]}": {{"gen": {c.value}}}' for c in fuels)
            entry = f'"{stamp}": {{{body}}}'
            # a verbatim duplicate is the same key twice in the day's object
            entries += [entry] * (1 + _twice(request, "fuel", start, posting))
        capacity = json.dumps(dict.fromkeys(FUELS, 10_000))
        text = (
            f'{{"lastUpdated": "{_local(updated):%Y-%m-%d %H:%M:%S%z}", '
            f'"monthlyCapacity": {capacity}, '
            f'"data": {{"{day:%Y-%m-%d}": {{{", ".join(entries)}}}}}}}'
        )
        name = f"fuel-mix_{day:%Y%m%d}_{posting_stamp(updated)}.json"
        out.append((name, text.encode()))
    return out


_RENDERERS: dict[Dataset, Callable[[SimRequest], list[Payload]]] = {
    Dataset.LMP_DA_HOURLY: _render_dam_spp,
    Dataset.LMP_RT_15MIN: _render_rt_spp,
    Dataset.LMP_RT_5MIN: _render_sced,
    Dataset.AS_PRICES: _render_dam_mcpc,
    Dataset.LOAD: _render_load,
    Dataset.FUEL_MIX: _render_fuel_mix,
}
