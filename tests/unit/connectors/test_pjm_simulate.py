"""The PJM simulator: its responses parse back to the model's values, in both formats, on DST
days, with the faults asked for, and the same rows whichever way a window is chunked."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pytest

from connectors import records as rec
from connectors.errors import NoDataError
from connectors.pjm.parse import PARSERS
from connectors.pjm.simulate import (
    FUELS,
    RESERVES,
    fuel_mw,
    inst_load_area,
    inst_load_mw,
    load_area,
    metered_load_mw,
    pnode,
    reserve_price,
    simulate,
)
from connectors.records import AsPriceRecord, FuelMixRecord, LmpRecord, LoadRecord, Record
from connectors.simulate import Faults, Payload, SimRequest, price
from schemas.catalog import Dataset
from schemas.timeutil import day_bounds_utc, expected_intervals

SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
CALM = Faults(negative_rate=0.0, spike_rate=0.0)


def parse_all(dataset: Dataset, payloads: list[Payload]) -> list[Record]:
    return [r for name, data in payloads for r in PARSERS[dataset](data, name)]


def observations(records: list[Record]) -> set[tuple[object, ...]]:
    """What a record says, without where it was read from."""
    out: set[tuple[object, ...]] = set()
    for r in records:
        if isinstance(r, LmpRecord):
            value: tuple[object, ...] = (r.lmp_usd_per_mwh, r.energy_usd_per_mwh)
        elif isinstance(r, LoadRecord):
            value = (r.load_mw,)
        elif isinstance(r, FuelMixRecord):
            value = (r.generation_mw,)
        else:
            value = (r.price_usd_per_mw_hour,)
        out.add((r.natural_key, r.revision, r.interval_minutes, *value))
    return out


def day(
    dataset: Dataset, local: date, locations: int = 10, faults: Faults | None = None
) -> SimRequest:
    """A request for the Eastern operating day `local`."""
    start, end = day_bounds_utc("PJM", local)
    return SimRequest(dataset, start, end, locations, faults=faults or Faults())


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    ("dataset", "market"),
    [
        (Dataset.LMP_DA_HOURLY, "DA_HOURLY"),
        (Dataset.LMP_RT_HOURLY, "RT_HOURLY"),
        (Dataset.LMP_RT_5MIN, "RT_5MIN"),
    ],
)
def test_lmps_parse_back_to_the_model_on_both_dst_days(
    dataset: Dataset, market: str, fmt: Literal["json", "csv"]
) -> None:
    ids = [str(pnode(i)[0]) for i in range(15)]
    for local in (SPRING, FALL):
        request = day(dataset, local, locations=15)
        records = parse_all(dataset, simulate(request, fmt=fmt))
        minutes = 5 if dataset is Dataset.LMP_RT_5MIN else 60
        assert len(records) == 15 * len(expected_intervals("PJM", local, minutes))
        for r in records:
            assert isinstance(r, LmpRecord)
            point = price(
                7,
                "PJM",
                ids.index(r.location_id),
                r.interval_start_utc,
                market,
                faults=request.faults,
            )
            assert (r.lmp_usd_per_mwh, r.energy_usd_per_mwh) == (point.lmp, point.energy)
            assert (r.congestion_usd_per_mwh, r.loss_usd_per_mwh) == (point.congestion, point.loss)
            assert (r.revision, r.revision_kind, r.market) == (1, rec.VERSION, market)


def test_the_fall_back_day_prints_1_am_twice_in_ept() -> None:
    records = parse_all(Dataset.LMP_RT_HOURLY, simulate(day(Dataset.LMP_RT_HOURLY, FALL)))
    labels = Counter(r.native_fields["datetime_beginning_ept"] for r in records)
    assert labels["2024-11-03T01:00:00"] == 2 * 10  # two hours, ten nodes
    spring = parse_all(Dataset.LMP_RT_HOURLY, simulate(day(Dataset.LMP_RT_HOURLY, SPRING)))
    assert not [
        r for r in spring if r.native_fields["datetime_beginning_ept"].startswith("2024-03-10T02")
    ]


def test_the_unverified_feed_has_no_energy_column_and_revision_0() -> None:
    request = day(Dataset.LMP_RT_5MIN, FALL, locations=2, faults=CALM)
    payloads = simulate(request, feed="rt_unverified_fivemin_lmps")
    assert "system_energy_price_rt" not in json.loads(payloads[0][1])["items"][0]
    records = parse_all(Dataset.LMP_RT_5MIN, payloads)
    assert len(records) == 2 * 300
    for r in records:
        assert isinstance(r, LmpRecord)
        point = price(
            7, "PJM", r.location_id != "51217", r.interval_start_utc, "RT_5MIN", faults=CALM
        )
        assert r.energy_usd_per_mwh == pytest.approx(point.energy, abs=1e-9)
        assert (r.revision, r.revision_kind) == (0, rec.PUBLISH_TIME)


def test_load_feeds_parse_back_to_the_model() -> None:
    request = day(Dataset.LOAD, FALL, locations=3)
    metered = parse_all(Dataset.LOAD, simulate(request))
    assert len(metered) == 3 * 25
    for r in metered:
        assert isinstance(r, LoadRecord)
        series = [load_area(i) for i in range(3)].index(r.area_id)
        assert r.load_mw == metered_load_mw(request, series, r.interval_start_utc, 1)
        assert (r.revision, r.area_type) == (2, "ZONE")  # verified, never revised here
    inst = parse_all(Dataset.LOAD, simulate(request, feed="inst_load", fmt="csv"))
    assert len(inst) == 3 * 300
    areas = [f"INST/{inst_load_area(i)}" for i in range(3)]
    for r in inst:
        assert isinstance(r, LoadRecord)
        assert r.load_mw == pytest.approx(
            inst_load_mw(request, areas.index(r.area_id), r.interval_start_utc)
        )
    assert {r.interval_start_utc for r in inst} == set(expected_intervals("PJM", FALL, 5))


def test_fuel_mix_and_reserves_parse_back_to_the_model() -> None:
    request = day(Dataset.FUEL_MIX, SPRING, locations=50)
    fuels = parse_all(Dataset.FUEL_MIX, simulate(request))
    assert len(fuels) == len(FUELS) * 23  # the series are PJM's fuels, however many are asked
    names = [f[0] for f in FUELS]
    for r in fuels:
        assert isinstance(r, FuelMixRecord)
        assert r.generation_mw == fuel_mw(
            request, names.index(r.fuel_type_native), r.interval_start_utc, 1
        )
    assert any(r.generation_mw < 0 for r in fuels if isinstance(r, FuelMixRecord))  # storage
    reserves_request = day(Dataset.AS_PRICES, SPRING, locations=50)
    reserves = parse_all(Dataset.AS_PRICES, simulate(reserves_request, fmt="csv"))
    assert len(reserves) == len(RESERVES) * 276
    keys = [(locale, service) for locale, service, _ in RESERVES]
    for r in reserves:
        assert isinstance(r, AsPriceRecord)
        series = keys.index((r.region_id, r.product_native))
        assert r.price_usd_per_mw_hour == reserve_price(
            reserves_request, series, r.interval_start_utc, 1
        )


def test_reserves_were_hourly_before_september_2022() -> None:
    request = SimRequest(
        Dataset.AS_PRICES,
        datetime(2022, 8, 31, 22, tzinfo=UTC),
        datetime(2022, 9, 1, 6, tzinfo=UTC),
        locations=1,
    )
    records = parse_all(Dataset.AS_PRICES, simulate(request))
    minutes = Counter(
        (r.interval_minutes, r.market) for r in records if isinstance(r, AsPriceRecord)
    )
    # 22:00 to 04:00 UTC hourly, then 5-minute from midnight EPT (04:00 UTC)
    assert minutes == {(60, "RT_HOURLY"): 6, (5, "RT_5MIN"): 24}


# ----------------------------------------------------------------- faults


def test_missing_rows_are_left_out_deterministically() -> None:
    request = day(Dataset.LMP_RT_HOURLY, FALL, locations=20, faults=Faults(missing_rate=0.2))
    records = parse_all(Dataset.LMP_RT_HOURLY, simulate(request))
    assert 0.7 * 500 < len(records) < 0.9 * 500
    again = parse_all(Dataset.LMP_RT_HOURLY, simulate(request))
    assert observations(again) == observations(records)


def test_duplicates_are_repeated_verbatim_and_read_once() -> None:
    request = day(Dataset.LMP_DA_HOURLY, FALL, locations=20, faults=Faults(duplicate_rate=0.1))
    payloads = simulate(request)
    items = [
        json.dumps(i, sort_keys=True) for _, data in payloads for i in json.loads(data)["items"]
    ]
    repeated = [text for text, count in Counter(items).items() if count == 2]
    assert len(items) == 500 + len(repeated)
    assert repeated
    assert len(parse_all(Dataset.LMP_DA_HOURLY, payloads)) == 500


def test_revisions_are_later_responses_with_a_higher_version() -> None:
    faults = Faults(revision_rate=0.1, negative_rate=0.0, spike_rate=0.0)
    request = day(Dataset.LMP_RT_HOURLY, FALL, locations=20, faults=faults)
    payloads = simulate(request)
    names = [name for name, _ in payloads]
    assert "_e2_" in names[-1]
    assert all("_e1_" in name for name in names[: names.index(names[-1])])
    records = parse_all(Dataset.LMP_RT_HOURLY, payloads)
    revised = [r for r in records if isinstance(r, LmpRecord) and r.revision == 2]
    assert revised
    ids = [str(pnode(i)[0]) for i in range(20)]
    for r in revised:
        point = price(
            7,
            "PJM",
            ids.index(r.location_id),
            r.interval_start_utc,
            "RT_HOURLY",
            revision=2,
            faults=faults,
        )
        assert r.lmp_usd_per_mwh == point.lmp
        assert r.native_fields["row_is_current"] == "True"
    originals = {(r.natural_key, r.revision) for r in records}
    assert all((r.natural_key, 1) in originals for r in revised)


def test_revisions_of_unversioned_feeds_carry_a_later_publish_time() -> None:
    faults = Faults(revision_rate=0.2)
    request = day(Dataset.FUEL_MIX, FALL, locations=11, faults=faults)
    records = [
        r for r in parse_all(Dataset.FUEL_MIX, simulate(request)) if isinstance(r, FuelMixRecord)
    ]
    by_key: dict[object, dict[int, float]] = {}
    for r in records:
        by_key.setdefault(r.natural_key, {})[r.revision] = r.generation_mw
    revised = [v for v in by_key.values() if len(v) == 2]
    assert revised
    for versions in revised:
        first, later = sorted(versions)
        assert later - first == 86_400_000_000  # published a day later
        assert versions[later] == pytest.approx(versions[first] + 25.0)


def test_metered_load_revisions_go_from_preliminary_to_verified() -> None:
    request = day(Dataset.LOAD, SPRING, locations=10, faults=Faults(revision_rate=0.2))
    records = [r for r in parse_all(Dataset.LOAD, simulate(request)) if isinstance(r, LoadRecord)]
    revisions = Counter(r.revision for r in records)
    assert revisions[2] == 10 * 23  # every hour ends verified
    assert 0 < revisions[1] < 10 * 23  # some were published as preliminary first


def test_negative_prices_and_spikes_appear_at_their_rates() -> None:
    faults = Faults(negative_rate=0.1, spike_rate=0.05)
    request = day(Dataset.LMP_RT_5MIN, FALL, locations=5, faults=faults)
    records = [
        r for r in parse_all(Dataset.LMP_RT_5MIN, simulate(request)) if isinstance(r, LmpRecord)
    ]
    negative = sum(r.lmp_usd_per_mwh < 0 for r in records) / len(records)
    spikes = sum(r.energy_usd_per_mwh is not None and r.energy_usd_per_mwh > 400 for r in records)
    assert 0.05 < negative < 0.15
    assert 0.02 < spikes / len(records) < 0.08


# ----------------------------------------------------------------- windows and pages


@pytest.mark.parametrize(
    "dataset",
    [Dataset.LMP_RT_5MIN, Dataset.LMP_DA_HOURLY, Dataset.LOAD, Dataset.FUEL_MIX, Dataset.AS_PRICES],
)
def test_chunked_windows_give_the_same_rows_as_one_window(dataset: Dataset) -> None:
    faults = Faults(missing_rate=0.05, revision_rate=0.05, duplicate_rate=0.05)
    start = datetime(2024, 11, 2, 18, tzinfo=UTC)
    end = start + timedelta(hours=30)
    whole = parse_all(dataset, simulate(SimRequest(dataset, start, end, 4, faults=faults)))
    pieces: list[Record] = []
    cut = start
    for hours in (7, 1, 13, 9):
        request = SimRequest(dataset, cut, cut + timedelta(hours=hours), 4, faults=faults)
        pieces += parse_all(dataset, simulate(request))
        cut += timedelta(hours=hours)
    assert observations(pieces) == observations(whole)
    assert len(pieces) == len(whole)


def test_large_publications_are_paged_like_data_miner() -> None:
    request = day(Dataset.LMP_RT_5MIN, SPRING, locations=3)
    payloads = simulate(request, page_rows=100)
    pages = [json.loads(data) for _, data in payloads]
    assert [p["searchSpecification"]["startRow"] for p in pages] == list(range(1, 829, 100))
    assert {p["totalRows"] for p in pages} == {3 * 276}
    assert all(any(link["rel"] == "next" for link in p["links"]) for p in pages[:-1])
    assert not any(link["rel"] == "next" for link in pages[-1]["links"])
    assert len(parse_all(Dataset.LMP_RT_5MIN, payloads)) == 3 * 276


def test_a_window_without_intervals_is_an_empty_page() -> None:
    moment = datetime(2024, 11, 3, 6, 1, tzinfo=UTC)
    ((name, data),) = simulate(
        SimRequest(Dataset.LMP_RT_5MIN, moment, moment + timedelta(minutes=2))
    )
    assert json.loads(data)["totalRows"] == 0
    with pytest.raises(NoDataError):
        PARSERS[Dataset.LMP_RT_5MIN](data, name)


def test_a_feed_of_another_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="inst_load is not a lmp_rt_5min feed"):
        simulate(day(Dataset.LMP_RT_5MIN, FALL), feed="inst_load")
