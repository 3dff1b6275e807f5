"""The CAISO simulator: its responses parse back to the model's values, faults show up as
intended, DST days come out whole, and chunked windows give the same records."""

from __future__ import annotations

import io
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from connectors.caiso.parse import PARSERS
from connectors.caiso.simulate import (
    area_load,
    area_name,
    as_price,
    fuel_mw,
    node_name,
    published_at,
    region_name,
    simulate,
)
from connectors.records import AsPriceRecord, FuelMixRecord, LmpRecord, LoadRecord, Record
from connectors.simulate import Faults, SimRequest, price
from schemas.catalog import Dataset
from schemas.timeutil import day_bounds_utc, expected_intervals, local_day, to_micros

FALL_DAY = day_bounds_utc("CAISO", datetime(2024, 11, 3).date())
SPRING_DAY = day_bounds_utc("CAISO", datetime(2024, 3, 10).date())
CLEAN = Faults(negative_rate=0.05, spike_rate=0.01)  # price faults only: every row present once
ALL_DATASETS = (
    Dataset.LMP_DA_HOURLY,
    Dataset.LMP_RT_15MIN,
    Dataset.LMP_RT_5MIN,
    Dataset.AS_PRICES,
    Dataset.LOAD,
    Dataset.FUEL_MIX,
)


def parsed(request: SimRequest) -> list[Record]:
    records: list[Record] = []
    for name, data in simulate(request):
        records += PARSERS[request.dataset](data, name)
    return records


def value(r: Record) -> object:
    if isinstance(r, LmpRecord):
        return (r.lmp_usd_per_mwh, r.energy_usd_per_mwh, r.congestion_usd_per_mwh)
    if isinstance(r, AsPriceRecord):
        return r.price_usd_per_mw_hour
    if isinstance(r, LoadRecord):
        return r.load_mw
    return r.generation_mw


def observations(records: list[Record]) -> set[tuple[object, ...]]:
    return {(r.natural_key, r.revision, value(r)) for r in records}


def intended_revision(start: datetime) -> int:
    """First publication: the report of the Pacific operating day holding the interval."""
    return to_micros(published_at(local_day("CAISO", start), 1))


@pytest.mark.parametrize(
    ("dataset", "market", "minutes"),
    [
        (Dataset.LMP_DA_HOURLY, "DA_HOURLY", 60),
        (Dataset.LMP_RT_15MIN, "RT_15MIN", 15),
        (Dataset.LMP_RT_5MIN, "RT_5MIN", 5),
    ],
)
def test_lmp_round_trip_equals_the_model(dataset: Dataset, market: str, minutes: int) -> None:
    request = SimRequest(dataset, *FALL_DAY, locations=4, seed=11, faults=CLEAN)
    records = [r for r in parsed(request) if isinstance(r, LmpRecord)]
    starts = expected_intervals("CAISO", FALL_DAY[0].date(), minutes)
    assert len(records) == 4 * len(starts)
    for r in records:
        index = [node_name(i) for i in range(4)].index(r.location_id)
        point = price(11, "CAISO", index, r.interval_start_utc, market, faults=CLEAN)
        assert r.market == market
        assert (r.lmp_usd_per_mwh, r.energy_usd_per_mwh) == (point.lmp, point.energy)
        assert (r.congestion_usd_per_mwh, r.loss_usd_per_mwh) == (point.congestion, point.loss)
    assert any(r.lmp_usd_per_mwh < 0 for r in records)
    assert {r.location_type for r in records} == {"HUB", "LOAD_ZONE"}


def test_as_prices_round_trip_for_both_markets() -> None:
    request = SimRequest(Dataset.AS_PRICES, *SPRING_DAY, locations=2, seed=3, faults=CLEAN)
    records = [r for r in parsed(request) if isinstance(r, AsPriceRecord)]
    assert Counter(r.market for r in records) == {"DA_HOURLY": 2 * 6 * 23, "RT_15MIN": 2 * 6 * 92}
    for r in records:
        region = [region_name(i) for i in range(2)].index(r.region_id)
        expected = as_price(3, region, r.product_native, r.interval_start_utc, r.market, 1, CLEAN)
        assert r.price_usd_per_mw_hour == expected


def test_load_round_trip_with_actuals_and_forecasts() -> None:
    request = SimRequest(Dataset.LOAD, *FALL_DAY, locations=3, seed=5, faults=CLEAN)
    records = [r for r in parsed(request) if isinstance(r, LoadRecord)]
    assert Counter((r.load_kind, r.interval_minutes) for r in records) == {
        ("ACTUAL", 60): 3 * 25,
        ("FORECAST", 60): 3 * 25,
        ("FORECAST", 5): 3 * 300,
    }
    items = {("ACTUAL", 60): "SYS_FCST_ACT_MW", ("FORECAST", 60): "SYS_FCST_DA_MW"}
    items[("FORECAST", 5)] = "SYS_FCST_5MIN_MW"
    for r in records:
        area = [area_name(i) for i in range(3)].index(r.area_id)
        item = items[(r.load_kind, r.interval_minutes)]
        assert r.load_mw == area_load(5, area, r.interval_start_utc, item, 1)
        assert r.revision == intended_revision(r.interval_start_utc)


def test_fuel_mix_round_trip_through_the_outlook_files_of_both_dst_days() -> None:
    for day in (SPRING_DAY, FALL_DAY):
        request = SimRequest(Dataset.FUEL_MIX, *day, seed=9, faults=CLEAN)
        payloads = simulate(request)
        assert [name.split("_pub")[0] for name, _ in payloads] == [
            f"caiso_outlook_{local_day('CAISO', day[0]):%Y%m%d}_fuelsource"
        ]
        records = [r for r in parsed(request) if isinstance(r, FuelMixRecord)]
        intervals = expected_intervals("CAISO", day[0].date(), 5)
        by_fuel = defaultdict(list)
        for r in records:
            by_fuel[r.fuel_type_native].append(r.interval_start_utc)
            assert r.generation_mw == fuel_mw(9, r.fuel_type_native, r.interval_start_utc, 1)
        assert len(by_fuel) == 13
        assert all(sorted(starts) == intervals for starts in by_fuel.values())
        assert any(r.generation_mw < 0 for r in records if r.fuel_type == "BATTERY")


def test_the_spring_file_keeps_the_blank_hour_and_the_fall_file_repeats_01_00() -> None:
    ((_, spring),) = simulate(SimRequest(Dataset.FUEL_MIX, *SPRING_DAY, faults=CLEAN))
    ((_, fall),) = simulate(SimRequest(Dataset.FUEL_MIX, *FALL_DAY, faults=CLEAN))
    spring_labels = [line.split(",")[0] for line in spring.decode().splitlines()[1:]]
    fall_labels = [line.split(",")[0] for line in fall.decode().splitlines()[1:]]
    assert spring_labels[spring_labels.index("01:55") + 1 : spring_labels.index("03:00")] == [
        f"02:{m:02d}" for m in range(0, 60, 5)
    ]
    assert fall_labels.count("01:30") == 2
    assert fall_labels.count("02:30") == 1


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_missing_rows_are_left_out_and_the_rest_is_unchanged(dataset: Dataset) -> None:
    full = observations(parsed(SimRequest(dataset, *FALL_DAY, locations=3, faults=CLEAN)))
    faults = Faults(missing_rate=0.2, negative_rate=0.05, spike_rate=0.01)
    holed = observations(parsed(SimRequest(dataset, *FALL_DAY, locations=3, faults=faults)))
    assert holed < full
    assert 0.65 < len(holed) / len(full) < 0.95


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_revisions_come_later_with_another_value(dataset: Dataset) -> None:
    faults = Faults(revision_rate=0.1, negative_rate=0.05, spike_rate=0.01)
    records = parsed(SimRequest(dataset, *FALL_DAY, locations=2, faults=faults))
    by_key: dict[object, list[Record]] = defaultdict(list)
    for r in records:
        by_key[r.natural_key].append(r)
    revised = [sorted(rs, key=lambda r: r.revision) for rs in by_key.values() if len(rs) > 1]
    assert revised
    for first, second in revised:
        assert second.revision > first.revision
        assert value(second) != value(first)


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_duplicate_rows_are_in_the_bytes_but_parse_once(dataset: Dataset) -> None:
    clean = parsed(SimRequest(dataset, *FALL_DAY, locations=2, faults=CLEAN))
    faults = Faults(duplicate_rate=0.1, negative_rate=0.05, spike_rate=0.01)
    request = SimRequest(dataset, *FALL_DAY, locations=2, faults=faults)
    lines = [
        line for _, data in simulate(request) for line in _texts(data) if line and line[0].isdigit()
    ]
    assert len(lines) > len(set(lines))
    assert observations(parsed(request)) == observations(clean)


def _texts(data: bytes) -> list[str]:
    if data[:2] != b"PK":
        return data.decode().splitlines()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [
            line for name in archive.namelist() for line in archive.read(name).decode().splitlines()
        ]


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_chunked_windows_give_the_same_records(dataset: Dataset) -> None:
    start, end = FALL_DAY[0] - timedelta(hours=3), FALL_DAY[1]
    faults = Faults(missing_rate=0.05, revision_rate=0.05, duplicate_rate=0.05)
    whole = observations(parsed(SimRequest(dataset, start, end, locations=2, faults=faults)))
    middle = datetime(2024, 11, 3, 9, 15, tzinfo=UTC)  # inside the repeated hour
    chunks = observations(parsed(SimRequest(dataset, start, middle, locations=2, faults=faults)))
    chunks |= observations(parsed(SimRequest(dataset, middle, end, locations=2, faults=faults)))
    assert whole == chunks
    assert simulate(SimRequest(dataset, start, end, locations=2, faults=faults)) == simulate(
        SimRequest(dataset, start, end, locations=2, faults=faults)
    )


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_any_scale(dataset: Dataset) -> None:
    hour = (datetime(2024, 7, 1, 19, tzinfo=UTC), datetime(2024, 7, 1, 20, tzinfo=UTC))
    small = parsed(SimRequest(dataset, *hour, locations=1, faults=CLEAN))
    large = parsed(SimRequest(dataset, *hour, locations=25, faults=CLEAN))
    if dataset is Dataset.FUEL_MIX:  # the fuel-source file has a fixed set of columns
        assert len(large) == len(small)
    else:
        assert len(large) == 25 * len(small)
