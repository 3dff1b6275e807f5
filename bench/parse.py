"""Parse throughput (records/s) of every ISO format our parsers read, side by side in one run
with a straightforward pandas parse of the same bytes.

Payloads come from each ISO's simulator at a realistic scale (and from the recorded payloads in
../shared/fixtures/iso when that folder exists). For each format both contenders parse the same
payloads, interleaved repeat by repeat in this one process (the first to run alternates); a
rate is the format's records (rows for pandas) over the median of the repeats' wall times.

The pandas baseline does what gridstatus does for that file: read it (pd.read_csv, or
pd.DataFrame over the JSON items), turn its time columns into UTC (to_datetime with the
column's format; local labels localised with `ambiguous` from the DST flag and `nonexistent`
handling, then tz_convert("UTC")), reshape where one row holds several records (CAISO's LMP
components pivoted to one row per node and interval, ERCOT's wide load melted) and rename the
columns to the canonical names. It builds no record objects, validates nothing and does not
deduplicate; before timing, each format's baseline is checked to give as many rows as our
parser gives records, over the same interval starts, so both do the same work on time.

Our parsers answer like pandas does, with checked columns: a parser's result (a RecordBatch
where its columnar path reads the payload) holds every record's converted and validated values,
and builds the record objects from them when first read. `ours` times the parse; `ours built`
times the parse and the building of every record object (what a publisher iterating the result
adds), reported beside it as `ratio_built`.

Our parsers keep caches of converted time labels (lru_cache); they are cleared before each of
our timed runs, so that parsing the same bytes again is not helped by labels seen before (a
live stream sees new labels in every payload).

Needs no servers. Run: `uv run python bench/parse.py [--repeat 7] [--scale 1] [--only TEXT]`;
progress goes to stderr, and the last stdout line is the JSON of figures, where `ratio` is the
lowest per-format ours/pandas ratio (higher is better) and `ratio_built` the lowest with every
record object built.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import json
import re
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from bench.common import ROOT, emit, median
from connectors.parsing import parser_for
from connectors.records import Record
from connectors.simulate import Payload, SimRequest
from schemas.catalog import Dataset, Iso
from schemas.timeutil import local_midnight_utc, to_micros

SHARED_ISO = ROOT.parent / "shared" / "fixtures" / "iso"
DAY = date(2024, 6, 3)  # a Monday with no DST change at any ISO

Baseline = Callable[[bytes, str], pd.DataFrame]
START = "interval_start_utc"  # every baseline frame's UTC interval start column


@dataclass(frozen=True)
class Case:
    """One (ISO, dataset, format): its payloads and the pandas parse of one payload."""

    name: str  # iso/dataset/format
    iso: Iso
    dataset: Dataset
    payloads: list[Payload]
    baseline: Baseline
    detail: str  # what the payloads hold


# --- pandas baselines ---------------------------------------------------------------------------

EASTERN, CENTRAL, PACIFIC = "America/New_York", "America/Chicago", "America/Los_Angeles"


def _zip_csvs(data: bytes) -> list[bytes]:
    """The CSV members of a zip, of the zips inside it too (ERCOT's bulk archives)."""
    out: list[bytes] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            body = archive.read(info)
            out += _zip_csvs(body) if body[:2] == b"PK" else [body]
    return out


def _read_csvs(data: bytes) -> pd.DataFrame:
    """A bare CSV, or every CSV of a zip concatenated."""
    if data[:2] != b"PK":
        return pd.read_csv(io.BytesIO(data))
    frames = [pd.read_csv(io.BytesIO(body)) for body in _zip_csvs(data)]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _localised(wall: pd.Series, tz: str, ambiguous: Any) -> pd.Series:
    local = wall.dt.tz_localize(tz, ambiguous=ambiguous, nonexistent="shift_forward")
    utc: pd.Series = local.dt.tz_convert("UTC")
    return utc


# PJM: the UTC column parsed with its format; canonical names.
PJM_CSV_TIME, PJM_JSON_TIME = "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%dT%H:%M:%S"
PJM_RENAME = {
    "pnode_id": "location_id",
    "pnode_name": "location_name",
    "type": "location_type",
    "version_nbr": "revision",
    "load_area": "area_id",
    "area": "area_id",
    "mw": "load_mw",
    "instantaneous_load": "load_mw",
    "fuel_type": "fuel_type_native",
    "locale": "region_id",
    "service": "product_native",
    "mcp": "price_usd_per_mw_hour",
} | {
    f"{column}_{suffix}": name
    for suffix in ("da", "rt")
    for column, name in (
        ("total_lmp", "lmp_usd_per_mwh"),
        ("system_energy_price", "energy_usd_per_mwh"),
        ("congestion_price", "congestion_usd_per_mwh"),
        ("marginal_loss_price", "loss_usd_per_mwh"),
    )
}


def pjm_baseline(*, round_to: str | None = None) -> Baseline:
    """A Data Miner JSON page or CSV export; `round_to`: snapshots to their nearest mark."""

    def parse(data: bytes, source: str) -> pd.DataFrame:
        if data[:1] in (b"{", b"["):
            document = json.loads(data)
            items = document["items"] if isinstance(document, dict) else document
            frame, layout = pd.DataFrame(items), PJM_JSON_TIME
        else:
            frame, layout = pd.read_csv(io.BytesIO(data)), PJM_CSV_TIME
        start = pd.to_datetime(frame["datetime_beginning_utc"], format=layout, utc=True)
        frame[START] = start.dt.round(round_to) if round_to else start
        return frame.rename(columns=PJM_RENAME)

    return parse


# ERCOT: local delivery day + hour ending (+ interval), localised with DSTFlag.
def _ercot_hour_start(frame: pd.DataFrame, day: str, hour: str) -> tuple[pd.Series, Any]:
    """(local wall-clock start of each row's hour, `ambiguous` for tz_localize from DSTFlag)."""
    labels = frame[hour]
    if labels.dtype == object or pd.api.types.is_string_dtype(labels):
        labels = labels.str.split(":").str[0].astype(int)  # "01:00", "1:00", "24:00"
    wall = pd.to_datetime(frame[day], format="%m/%d/%Y") + pd.to_timedelta(labels - 1, unit="h")
    ambiguous = frame["DSTFlag"].eq("N").to_numpy() if "DSTFlag" in frame else "infer"
    return wall, ambiguous


def ercot_hourly(rename: dict[str, str]) -> Baseline:
    """NP4-190 / NP4-188: DeliveryDate, HourEnding, ..., DSTFlag."""

    def parse(data: bytes, source: str) -> pd.DataFrame:
        frame = _read_csvs(data)
        wall, ambiguous = _ercot_hour_start(frame, "DeliveryDate", "HourEnding")
        frame[START] = _localised(wall, CENTRAL, ambiguous)
        return frame.rename(columns=rename)

    return parse


def ercot_rt_spp(data: bytes, source: str) -> pd.DataFrame:
    """NP6-905: DeliveryDate, DeliveryHour, DeliveryInterval (1..4), ..., DSTFlag."""
    frame = _read_csvs(data)
    wall, ambiguous = _ercot_hour_start(frame, "DeliveryDate", "DeliveryHour")
    wall += pd.to_timedelta((frame["DeliveryInterval"] - 1) * 15, unit="min")
    frame[START] = _localised(wall, CENTRAL, ambiguous)
    return frame.rename(
        columns={"SettlementPointName": "location_id", "SettlementPointPrice": "lmp_usd_per_mwh"}
    )


def ercot_sced(data: bytes, source: str) -> pd.DataFrame:
    """NP6-788: SCEDTimestamp (local, RepeatedHourFlag) floored to its 5-minute interval."""
    frame = _read_csvs(data)
    wall = pd.to_datetime(frame["SCEDTimestamp"], format="%m/%d/%Y %H:%M:%S")
    instant = _localised(wall, CENTRAL, frame["RepeatedHourFlag"].eq("N").to_numpy())
    frame[START] = instant.dt.floor("5min")
    return frame.rename(columns={"SettlementPoint": "location_id", "LMP": "lmp_usd_per_mwh"})


def ercot_load(data: bytes, source: str) -> pd.DataFrame:
    """NP6-345 actual (OperDay) or NP3-561 forecast (DeliveryDate): one row per hour with a
    column per weather zone, melted to one row per zone and hour."""
    frame = _read_csvs(data)
    day = "OperDay" if "OperDay" in frame else "DeliveryDate"
    wall, ambiguous = _ercot_hour_start(frame, day, "HourEnding")
    frame[START] = _localised(wall, CENTRAL, ambiguous)
    zones = [c for c in frame.columns if c not in (day, "HourEnding", "DSTFlag", START)]
    return frame.melt(id_vars=[START], value_vars=zones, var_name="area_id", value_name="load_mw")


def ercot_fuel_mix(data: bytes, source: str) -> pd.DataFrame:
    """The dashboard JSON: per day an object of stamps, each an object of fuels {gen: MW}."""
    document = json.loads(data)
    frames = []
    for stamps in document["data"].values():
        cells = pd.DataFrame.from_dict(stamps, orient="index").stack()
        assert isinstance(cells, pd.Series)  # one value per (stamp, fuel)
        frame = pd.json_normalize(cells.tolist())
        frame["timestamp"] = cells.index.get_level_values(0)
        frame["fuel_type_native"] = cells.index.get_level_values(1)
        frames.append(frame)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    instant = pd.to_datetime(frame["timestamp"], format="%Y-%m-%d %H:%M:%S%z", utc=True)
    frame[START] = instant.dt.round("5min")
    return frame.rename(columns={"gen": "generation_mw"})


# CAISO: OASIS zips, GMT columns; LMP components pivoted; Outlook labels localised.
OASIS_TIME = "%Y-%m-%dT%H:%M:%S%z"
CAISO_RENAME = {
    "NODE_ID": "location_id",
    "NODE": "location_name",
    "LMP": "lmp_usd_per_mwh",
    "MCE": "energy_usd_per_mwh",
    "MCC": "congestion_usd_per_mwh",
    "MCL": "loss_usd_per_mwh",
    "ANC_REGION": "region_id",
    "ANC_TYPE": "product_native",
    "TAC_AREA_NAME": "area_id",
}


def caiso_lmp(value_column: str) -> Baseline:
    def parse(data: bytes, source: str) -> pd.DataFrame:
        frame = _read_csvs(data)
        frame[START] = pd.to_datetime(frame["INTERVALSTARTTIME_GMT"], format=OASIS_TIME, utc=True)
        wide = frame.pivot(
            index=["NODE_ID", "NODE", START], columns="LMP_TYPE", values=value_column
        )
        return wide.reset_index().rename(columns=CAISO_RENAME)

    return parse


def caiso_oasis(value_name: str) -> Baseline:
    """PRC_AS / PRC_INTVL_AS / SLD_FCST: one row per record already."""

    def parse(data: bytes, source: str) -> pd.DataFrame:
        frame = _read_csvs(data)
        frame[START] = pd.to_datetime(frame["INTERVALSTARTTIME_GMT"], format=OASIS_TIME, utc=True)
        return frame.rename(columns={**CAISO_RENAME, "MW": value_name})

    return parse


def _outlook_starts(frame: pd.DataFrame, source: str) -> pd.Series:
    """UTC starts of Outlook rows labelled with the end of their 5 minutes, Pacific wall clock:
    "MM/DD/YYYY HH:MM", or "HH:MM" with the day in the file name (the last 00:00 is the next
    day's midnight)."""
    labels = frame["Time"]
    if labels.str.contains("/").any():
        wall = pd.to_datetime(labels, format="%m/%d/%Y %H:%M")
    else:
        day = re.search(r"(?<!\d)(\d{8})(?![\dT])", source)
        assert day is not None
        wall = pd.to_datetime(day.group(1) + " " + labels, format="%Y%m%d %H:%M")
        wall += pd.to_timedelta((wall.diff() < pd.Timedelta(hours=-12)).cumsum(), unit="D")
    return _localised(wall, PACIFIC, "infer") - pd.Timedelta(minutes=5)


def caiso_outlook_fuel(data: bytes, source: str) -> pd.DataFrame:
    """fuelsource.csv: a column per fuel, melted to one row per published cell."""
    frame = pd.read_csv(io.BytesIO(data))
    fuels = list(frame.columns[1:])
    frame = frame.dropna(how="all", subset=fuels)
    frame[START] = _outlook_starts(frame, source)
    long = frame.melt(
        id_vars=[START], value_vars=fuels, var_name="fuel_type_native", value_name="generation_mw"
    )
    return long.dropna(subset=["generation_mw"])


def caiso_outlook_demand(data: bytes, source: str) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(data))
    column = "Current demand" if "Current demand" in frame else "Demand"
    frame = frame.dropna(subset=[column])
    frame[START] = _outlook_starts(frame, source)
    return frame.rename(columns={column: "load_mw"})


# --- the formats ----------------------------------------------------------------------------


def _window(iso: str, days: float) -> tuple[datetime, datetime]:
    """`days` of the ISO's operating days from DAY, local midnight to local midnight (UTC)."""
    start = local_midnight_utc(iso, DAY)
    whole = int(days)
    end = local_midnight_utc(iso, DAY + timedelta(days=whole)) if whole == days else None
    return start, end or start + timedelta(days=days)


def _request(iso: str, dataset: Dataset, days: float, locations: int) -> SimRequest:
    start, end = _window(iso, days)
    return SimRequest(dataset, start, end, locations=max(1, locations))


def _simulator(iso: Iso) -> Callable[..., list[Payload]]:
    """The ISO's simulate(); imported when asked for, so that an ISO whose connector does not
    import (yet) is reported and skipped rather than stopping the benchmark."""
    simulate: Callable[..., list[Payload]] = importlib.import_module(
        f"connectors.{iso.value}.simulate"
    ).simulate
    return simulate


def pjm_cases(scale: float) -> list[Case]:
    simulate = _simulator(Iso.PJM)
    nodes_da, nodes_rt = round(1000 * scale), round(300 * scale)
    plan: list[tuple[Dataset, str | None, str, float, int, Baseline, str]] = [
        (Dataset.LMP_DA_HOURLY, None, "", 1, nodes_da, pjm_baseline(), "da_hrl_lmps"),
        (Dataset.LMP_RT_HOURLY, None, "", 1, nodes_da, pjm_baseline(), "rt_hrl_lmps"),
        (Dataset.LMP_RT_5MIN, None, "", 1, nodes_rt, pjm_baseline(), "rt_fivemin_hrl_lmps"),
        (
            Dataset.LMP_RT_5MIN,
            "rt_unverified_fivemin_lmps",
            "-unverified",
            1,
            nodes_rt,
            pjm_baseline(),
            "rt_unverified_fivemin_lmps",
        ),
        (Dataset.LOAD, None, "", 30, 40, pjm_baseline(), "hrl_load_metered"),
        (
            Dataset.LOAD,
            "inst_load",
            "-inst",
            1,
            40,
            pjm_baseline(round_to="5min"),
            "inst_load",
        ),
        (Dataset.FUEL_MIX, None, "", 30, 11, pjm_baseline(), "gen_by_fuel"),
        (Dataset.AS_PRICES, None, "", 7, 7, pjm_baseline(), "reserve_market_results"),
    ]
    cases = []
    for dataset, feed, variant, days, series, baseline, feed_name in plan:
        request = _request("PJM", dataset, days, series)
        for fmt in ("csv", "json"):
            payloads = simulate(request, feed=feed, fmt=fmt)
            detail = f"{feed_name}, {days:g} day(s) x {series} series, {fmt}"
            name = f"pjm/{dataset.value}/{fmt}{variant}"
            cases.append(Case(name, Iso.PJM, dataset, payloads, baseline, detail))
    return cases


def ercot_cases(scale: float) -> list[Case]:
    simulate = _simulator(Iso.ERCOT)
    points = round(1000 * scale)
    plan: list[tuple[Dataset, str, float, int, Baseline, str]] = [
        (
            Dataset.LMP_DA_HOURLY,
            "np4-190",
            1,
            points,
            ercot_hourly(
                {"SettlementPoint": "location_id", "SettlementPointPrice": "lmp_usd_per_mwh"}
            ),
            "NP4-190-CD DAM SPP, an MIS zip per day",
        ),
        (
            Dataset.LMP_RT_15MIN,
            "np6-905",
            1,
            round(300 * scale),
            ercot_rt_spp,
            "NP6-905-CD RT SPP, an MIS zip per 15 minutes",
        ),
        (
            Dataset.LMP_RT_5MIN,
            "np6-788",
            1,
            round(300 * scale),
            ercot_sced,
            "NP6-788-CD SCED LMPs, an MIS zip per SCED run",
        ),
        (
            Dataset.AS_PRICES,
            "np4-188",
            30,
            1,
            ercot_hourly({"AncillaryType": "product_native", "MCPC": "price_usd_per_mw_hour"}),
            "NP4-188-CD DAM MCPC, an MIS zip per day",
        ),
        (Dataset.LOAD, "np6-345", 30, 1, ercot_load, "NP6-345-CD actual load, a zip per day"),
        (Dataset.FUEL_MIX, "json", 2, 1, ercot_fuel_mix, "fuel-mix dashboard JSON, one per day"),
    ]
    cases = []
    for dataset, fmt, days, locations, baseline, detail in plan:
        payloads = simulate(_request("ERCOT", dataset, days, locations))
        name = f"ercot/{dataset.value}/{fmt}"
        cases.append(Case(name, Iso.ERCOT, dataset, payloads, baseline, f"{detail}, {days:g}d"))
        if fmt == "np6-788":  # the same day as one bulk archive: a zip of the MIS zips
            cases.append(
                Case(
                    f"{name}-bulk",
                    Iso.ERCOT,
                    dataset,
                    [_bulk("ercot_np6-788_bulk.zip", payloads)],
                    baseline,
                    f"{detail}, {days:g}d, bundled as one zip of zips",
                )
            )
    return cases


def _bulk(name: str, payloads: list[Payload]) -> Payload:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for member, data in payloads:
            archive.writestr(zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0)), data)
    return name, buffer.getvalue()


def caiso_cases(scale: float) -> list[Case]:
    simulate = _simulator(Iso.CAISO)
    plan: list[tuple[Dataset, str, float, int, Baseline, str]] = [
        (
            Dataset.LMP_DA_HOURLY,
            "prc_lmp",
            1,
            round(500 * scale),
            caiso_lmp("MW"),
            "PRC_LMP DAM zip",
        ),
        (
            Dataset.LMP_RT_15MIN,
            "prc_rtpd_lmp",
            1,
            round(150 * scale),
            caiso_lmp("PRC"),
            "PRC_RTPD_LMP zip",
        ),
        (
            Dataset.LMP_RT_5MIN,
            "prc_intvl_lmp",
            1,
            round(100 * scale),
            caiso_lmp("VALUE"),
            "PRC_INTVL_LMP zip",
        ),
        (
            Dataset.AS_PRICES,
            "prc_as",
            7,
            6,
            caiso_oasis("price_usd_per_mw_hour"),
            "PRC_AS (DAM) and PRC_INTVL_AS (RTM) zips",
        ),
        (Dataset.LOAD, "sld_fcst", 2, 35, caiso_oasis("load_mw"), "SLD_FCST zip"),
        (
            Dataset.FUEL_MIX,
            "outlook-csv",
            7,
            1,
            caiso_outlook_fuel,
            "Today's Outlook fuelsource.csv, one per day",
        ),
    ]
    cases = []
    for dataset, fmt, days, locations, baseline, what in plan:
        payloads = simulate(_request("CAISO", dataset, days, locations))
        detail = f"{what}, {days:g}d x {locations} series"
        cases.append(
            Case(f"caiso/{dataset.value}/{fmt}", Iso.CAISO, dataset, payloads, baseline, detail)
        )
    return cases


RECORDED: list[tuple[str, Iso, Dataset, tuple[str, ...], Baseline]] = [
    (
        "pjm/lmp_da_hourly/csv-recorded",
        Iso.PJM,
        Dataset.LMP_DA_HOURLY,
        ("pjm/pjm_dataminer_csv_da_hrl_lmps_*.csv",),
        pjm_baseline(),
    ),
    (
        "pjm/lmp_rt_hourly/csv-recorded",
        Iso.PJM,
        Dataset.LMP_RT_HOURLY,
        ("pjm/pjm_dataminer_csv_rt_hrl_lmps_*.csv",),
        pjm_baseline(),
    ),
    (
        "ercot/load/np6-345-recorded",
        Iso.ERCOT,
        Dataset.LOAD,
        ("ercot/ercot_mis_np6-345-cd_*.zip",),
        ercot_load,
    ),
    (
        "ercot/load/np3-561-recorded",
        Iso.ERCOT,
        Dataset.LOAD,
        ("ercot/ercot_mis_np3-561-cd_*.zip",),
        ercot_load,
    ),
    (
        "ercot/lmp_rt_5min/np6-788-recorded",
        Iso.ERCOT,
        Dataset.LMP_RT_5MIN,
        ("ercot/ercot_mis_np6-788-cd_*.csv",),
        ercot_sced,
    ),
    (
        "caiso/load/sld_fcst-recorded",
        Iso.CAISO,
        Dataset.LOAD,
        ("caiso/caiso_oasis_singlezip_SLD_FCST_*.zip",),
        caiso_oasis("load_mw"),
    ),
    (
        "caiso/load/outlook-csv-recorded",
        Iso.CAISO,
        Dataset.LOAD,
        ("caiso/caiso_outlook_history_*_rtm_forecast_7day.csv",),
        caiso_outlook_demand,
    ),
]
NOT_COVERED = [
    "caiso OASIS XML (only recorded excerpts of 3 rows; the simulator writes CSV)",
    "caiso Daily Renewables Watch text (recorded 24-hour reports only)",
]


def recorded_cases() -> list[Case]:
    cases = []
    for name, iso, dataset, patterns, baseline in RECORDED:
        paths = sorted(p for pattern in patterns for p in SHARED_ISO.glob(pattern))
        if not paths:
            print(f"  {name}: no recorded payload found, skipped", file=sys.stderr)
            continue
        payloads = [(p.name, p.read_bytes()) for p in paths]
        detail = f"recorded: {', '.join(p.name for p in paths)}"
        cases.append(Case(name, iso, dataset, payloads, baseline, detail))
    return cases


# --- measuring ----------------------------------------------------------------------------------


def _clear_label_caches() -> None:
    """Forget every time label our parsers have converted (their lru_caches)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("connectors.") and module is not None:
            for value in vars(module).values():
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def _ours(case: Case) -> list[Sequence[Record]]:
    """Each payload's parse, as the parser returns it (records not built)."""
    parse = parser_for(case.iso, case.dataset)
    return [parse(data, name) for name, data in case.payloads]


def _ours_built(case: Case) -> list[list[Record]]:
    """Each payload's parse with every record object built."""
    parse = parser_for(case.iso, case.dataset)
    return [list(parse(data, name)) for name, data in case.payloads]


def _pandas(case: Case) -> list[pd.DataFrame]:
    return [case.baseline(data, name) for name, data in case.payloads]


def _check(case: Case, records: list[Record], frames: list[pd.DataFrame]) -> None:
    """The baseline gives as many rows as we give records, over the same interval starts."""
    rows = sum(len(frame) for frame in frames)
    assert rows == len(records), f"{case.name}: pandas {rows} rows, ours {len(records)} records"
    theirs: set[int] = set()
    for frame in frames:
        starts = frame[START].dt.tz_convert("UTC").dt.tz_localize(None)
        theirs |= {int(v) for v in starts.astype("datetime64[us]").astype("int64").unique()}
    ours = {to_micros(r.interval_start_utc) for r in records}
    assert theirs == ours, f"{case.name}: interval starts differ ({len(theirs)} vs {len(ours)})"


def _timed(run: Callable[[], object], before: Callable[[], None]) -> float:
    before()
    gc.collect()
    began = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - began
    del result
    return elapsed


def measure(case: Case, repeat: int) -> dict[str, Any]:
    records = [record for parsed in _ours(case) for record in parsed]
    frames = _pandas(case)
    _check(case, records, frames)
    count = len(records)
    del records, frames
    contenders: list[tuple[str, Callable[[], object], Callable[[], None]]] = [
        ("ours", lambda: _ours(case), _clear_label_caches),
        ("pandas", lambda: _pandas(case), lambda: None),
        ("ours_built", lambda: _ours_built(case), _clear_label_caches),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    for i in range(repeat):
        # each contender takes each place in the order in turn
        turn = i % len(contenders)
        for name, run, before in contenders[turn:] + contenders[:turn]:
            times[name].append(_timed(run, before))
    ours = count / median(times["ours"])
    built = count / median(times["ours_built"])
    theirs = count / median(times["pandas"])
    return {
        "records": count,
        "payloads": len(case.payloads),
        "bytes": sum(len(data) for _, data in case.payloads),
        "ours_records_per_s": round(ours),
        "pandas_rows_per_s": round(theirs),
        "ratio": round(ours / theirs, 3),
        "ours_built_records_per_s": round(built),
        "ratio_built": round(built / theirs, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each contender")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the series counts")
    parser.add_argument("--only", default="", help="formats whose name contains this")
    args = parser.parse_args()

    began = time.perf_counter()
    cases: list[Case] = []
    skipped: list[str] = list(NOT_COVERED)
    for iso, build in (("pjm", pjm_cases), ("ercot", ercot_cases), ("caiso", caiso_cases)):
        try:
            cases += build(args.scale)
        except Exception as exc:  # an ISO whose connector does not work yet is reported, not run
            print(f"{iso}: simulator or parser unavailable ({exc!r}); skipped", file=sys.stderr)
            skipped.append(f"{iso}: {exc!r}"[:200])
    if SHARED_ISO.is_dir():
        cases += recorded_cases()
    else:
        print(f"{SHARED_ISO} is absent: recorded payloads skipped", file=sys.stderr)
        skipped.append("recorded payloads (../shared/fixtures/iso absent)")
    cases = [case for case in cases if args.only in case.name]
    print(
        f"{len(cases)} formats simulated in {time.perf_counter() - began:.1f}s; "
        f"{args.repeat} timed runs of each contender, interleaved",
        file=sys.stderr,
    )

    figures: dict[str, dict[str, Any]] = {}
    for case in cases:
        try:
            figures[case.name] = measure(case, args.repeat)
        except Exception as exc:
            if case.iso is not Iso.CAISO:
                raise
            # CAISO's connector is still being finished: a format that fails is reported
            print(f"{case.name}: failed ({exc!r}); skipped", file=sys.stderr)
            skipped.append(f"{case.name}: {exc!r}"[:200])
            continue
        f = figures[case.name]
        print(
            f"{case.name:38} {f['records']:>8} rec  ours {f['ours_records_per_s']:>9} rec/s  "
            f"pandas {f['pandas_rows_per_s']:>9} rows/s  ratio {f['ratio']:6.2f}  "
            f"built {f['ours_built_records_per_s']:>9} rec/s  ratio {f['ratio_built']:5.2f}  "
            f"({case.detail})",
            file=sys.stderr,
        )
    lowest = min(figures, key=lambda name: figures[name]["ratio"]) if figures else None
    emit(
        {
            "benchmark": "parse",
            "repeat": args.repeat,
            "scale": args.scale,
            "pandas": pd.__version__,
            "formats": figures,
            "ratio": figures[lowest]["ratio"] if lowest else None,
            "lowest": lowest,
            "ratio_built": min((f["ratio_built"] for f in figures.values()), default=None),
            "skipped": skipped,
        }
    )


if __name__ == "__main__":
    main()
