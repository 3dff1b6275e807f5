"""The ERCOT simulator: its responses parse back to the values it meant, its faults show, and it
is deterministic however a window is cut."""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.ercot.parse import PARSERS
from connectors.ercot.simulate import intended, settlement_points, simulate
from connectors.records import FuelMixRecord, LmpRecord, Record
from connectors.simulate import Faults, SimRequest, price
from schemas.catalog import ISO_DATASETS, Dataset, Iso
from schemas.timeutil import day_bounds_utc, expected_intervals, to_micros
from tests.unit.connectors.readings import reading, value

DATASETS = ISO_DATASETS[Iso.ERCOT]
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
FAULTY = Faults(
    missing_rate=0.05, revision_rate=0.05, duplicate_rate=0.05, negative_rate=0.1, spike_rate=0.02
)


def parsed(request: SimRequest) -> list[Record]:
    parser = PARSERS[request.dataset]
    return [record for name, data in simulate(request) for record in parser(data, name)]


def published(records: list[Record]) -> dict[tuple[str, datetime], tuple[float, ...]]:
    """(series, interval start) -> values, lowest revision first."""
    found: dict[tuple[str, datetime], list[tuple[int, float]]] = defaultdict(list)
    for r in records:
        name, number = reading(r)
        found[(name, r.interval_start_utc)].append((r.revision, number))
    return {key: tuple(v for _, v in sorted(values)) for key, values in found.items()}


def observations(records: list[Record]) -> set[tuple[object, ...]]:
    return {(r.natural_key, r.revision, value(r)) for r in records}


def window(day: date) -> tuple[datetime, datetime]:
    return day_bounds_utc("ERCOT", day)


@pytest.mark.parametrize("dataset", DATASETS, ids=str)
def test_round_trip_gives_the_intended_values_across_the_fall_back_day(dataset: Dataset) -> None:
    start, end = window(FALL)
    request = SimRequest(dataset, start - timedelta(hours=3), end, locations=6, faults=FAULTY)
    records = parsed(request)
    assert published(records) == intended(request)
    assert len({(r.natural_key, r.revision) for r in records}) == len(records)


@pytest.mark.parametrize("dataset", DATASETS, ids=str)
@pytest.mark.parametrize("day", [SPRING, FALL], ids=str)
def test_dst_days_come_out_complete(dataset: Dataset, day: date) -> None:
    start, end = window(day)
    records = parsed(SimRequest(dataset, start, end, locations=3))
    starts: dict[str, set[datetime]] = defaultdict(set)
    for r in records:
        starts[reading(r)[0]].add(r.interval_start_utc)
    (minutes,) = {r.interval_minutes for r in records}
    expected = expected_intervals("ERCOT", day, minutes)
    assert len(expected) * minutes == (23 if day == SPRING else 25) * 60
    assert all(sorted(got) == expected for got in starts.values())


def test_lmp_values_are_the_shared_price_model() -> None:
    start = datetime(2024, 7, 15, 22, tzinfo=UTC)
    request = SimRequest(Dataset.LMP_RT_15MIN, start, start + timedelta(minutes=15), locations=2)
    records = {r.location_id: r for r in parsed(request) if isinstance(r, LmpRecord)}
    assert list(records) == [name for name, _ in settlement_points(2)]
    expected = price(7, "ERCOT", 1, start, "RT_15MIN", faults=request.faults).lmp
    assert records["HB_HOUSTON"].lmp_usd_per_mwh == expected
    assert records["HB_HOUSTON"].energy_usd_per_mwh is None  # ERCOT publishes no components


def test_faults_show_up_as_intended() -> None:
    start, end = window(date(2024, 7, 15))
    faults = Faults(
        missing_rate=0.2, revision_rate=0.2, duplicate_rate=0.2, negative_rate=0.2, spike_rate=0.2
    )
    request = SimRequest(Dataset.LMP_DA_HOURLY, start, end, locations=20, faults=faults)
    payloads = simulate(request)
    records = [r for n, d in payloads for r in PARSERS[request.dataset](d, n)]
    values = published(records)
    first_posting = min(r.revision for r in records)
    assert sum(r.revision == first_posting for r in records) < 24 * 20  # rows left out
    assert any(len(v) == 2 and v[0] != v[1] for v in values.values())  # revised later
    assert any(v[0] < 0 for v in values.values())  # negative prices
    assert any(v[0] > 300 for v in values.values())  # scarcity spikes
    lines = sum(len(_csv_lines(data)) - 1 for _, data in payloads)
    assert lines > len(records)  # verbatim duplicates, read once


def test_a_revision_is_a_later_posting() -> None:
    start = datetime(2024, 7, 15, 22, tzinfo=UTC)
    request = SimRequest(
        Dataset.LMP_RT_5MIN, start, start + timedelta(hours=2), faults=Faults(revision_rate=0.3)
    )
    records = [r for r in parsed(request) if isinstance(r, LmpRecord)]
    by_key: dict[object, list[LmpRecord]] = defaultdict(list)
    for r in records:
        by_key[r.natural_key].append(r)
    revised = [sorted(rs, key=lambda r: r.revision) for rs in by_key.values() if len(rs) == 2]
    assert revised
    for first, second in revised:
        # a SCED re-run within the same 5-minute interval, not on its boundary
        assert first.revision < second.revision < to_micros(first.interval_start_utc) + 300_000_000
        assert second.revision % 60_000_000 != 0


def test_same_request_same_bytes() -> None:
    start, end = window(FALL)
    for dataset in DATASETS:
        request = SimRequest(dataset, start, end, locations=4, faults=FAULTY)
        assert simulate(request) == simulate(request)


@pytest.mark.parametrize("dataset", DATASETS, ids=str)
def test_chunked_windows_give_the_same_observations(dataset: Dataset) -> None:
    start, end = window(FALL)
    end += timedelta(hours=6)
    cut = start + timedelta(hours=7, minutes=37)  # not on any interval or day boundary
    whole = SimRequest(dataset, start, end, locations=5, faults=FAULTY)
    first = SimRequest(dataset, start, cut, locations=5, faults=FAULTY)
    second = SimRequest(dataset, cut, end, locations=5, faults=FAULTY)
    assert observations(parsed(whole)) == observations(parsed(first)) | observations(parsed(second))


def test_any_scale() -> None:
    start = datetime(2024, 7, 15, 5, tzinfo=UTC)
    request = SimRequest(Dataset.LMP_DA_HOURLY, start, start + timedelta(hours=2), locations=250)
    records = parsed(request)
    assert len({r.natural_key[2] for r in records}) == 250
    assert len(records) == 500


def test_the_fuel_mix_keeps_charging_storage_negative() -> None:
    start, end = window(FALL)
    records = [
        r for r in parsed(SimRequest(Dataset.FUEL_MIX, start, end)) if isinstance(r, FuelMixRecord)
    ]
    storage = [r.generation_mw for r in records if r.fuel_type == "BATTERY"]
    assert min(storage) < 0 < max(storage)
    assert {r.fuel_type_native for r in records} == {
        "Coal and Lignite", "Natural Gas", "Nuclear", "Solar", "Wind", "Hydro", "Power Storage",
        "Other",
    }  # fmt: skip


def test_names_carry_the_posting_time() -> None:
    start, end = window(date(2024, 7, 15))
    name, _ = simulate(SimRequest(Dataset.LMP_DA_HOURLY, start, end))[0]
    assert name == "cdr.00012331.0000000000000000.20240714.133000.DAMSPNP4190_csv.zip"


def test_a_dataset_ercot_does_not_publish_is_refused() -> None:
    start = datetime(2024, 7, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="ERCOT publishes no lmp_rt_hourly"):
        simulate(SimRequest(Dataset.LMP_RT_HOURLY, start, start + timedelta(hours=1)))


def _csv_lines(data: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(archive.namelist()[0]).splitlines()
