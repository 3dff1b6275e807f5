"""Every (ISO, dataset) parser against the same contract, on recorded and hand-written payloads."""

from __future__ import annotations

import importlib
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from connectors import records as rec
from connectors.errors import ParseError
from connectors.parsing import parser_for
from connectors.records import AsPriceRecord, FuelMixRecord, LmpRecord, LoadRecord, Record
from connectors.tabular import sniff
from schemas.catalog import ISO_DATASETS, Dataset
from schemas.timeutil import day_bounds_utc, expected_intervals
from tests.unit.connectors.contract import MalformedCase, ParserCase, Shows
from tests.unit.connectors.readings import value

CASE_MODULES = ("cases_pjm", "cases_caiso", "cases_ercot")
CASES: list[ParserCase] = []
MALFORMED: list[MalformedCase] = []
for _name in CASE_MODULES:
    try:
        _module = importlib.import_module(f"tests.unit.connectors.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"tests.unit.connectors.{_name}":
            raise
        continue  # test_every_iso_dataset_has_a_case reports what is missing
    CASES += _module.CASES
    MALFORMED += _module.MALFORMED

KIND = {
    Dataset.LMP_DA_HOURLY: LmpRecord,
    Dataset.LMP_RT_5MIN: LmpRecord,
    Dataset.LMP_RT_15MIN: LmpRecord,
    Dataset.LMP_RT_HOURLY: LmpRecord,
    Dataset.LOAD: LoadRecord,
    Dataset.FUEL_MIX: FuelMixRecord,
    Dataset.AS_PRICES: AsPriceRecord,
}
MARKET_OF = {
    Dataset.LMP_DA_HOURLY: ("DA_HOURLY", 60),
    Dataset.LMP_RT_5MIN: ("RT_5MIN", 5),
    Dataset.LMP_RT_15MIN: ("RT_15MIN", 15),
    Dataset.LMP_RT_HOURLY: ("RT_HOURLY", 60),
}

_parsed: dict[str, tuple[str, Sequence[Record]]] = {}


def parsed(case: ParserCase) -> tuple[str, Sequence[Record]]:
    if case.id not in _parsed:
        source, data = case.load()
        _parsed[case.id] = (source, parser_for(case.iso, case.dataset)(data, source))
    return _parsed[case.id]


def by_id(case: ParserCase | MalformedCase) -> str:
    return case.id


def series(record: Record) -> tuple[object, ...]:
    """The natural key without its time: one series of intervals."""
    if isinstance(record, LoadRecord):
        return (record.iso, record.area_id, record.load_kind, record.forecast_made_at_utc)
    return tuple(k for k in record.natural_key if not isinstance(k, datetime))


def test_every_iso_dataset_has_a_case() -> None:
    covered = {(c.iso, c.dataset) for c in CASES}
    expected = {(iso, ds) for iso, datasets in ISO_DATASETS.items() for ds in datasets}
    assert expected - covered == set()


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_records_are_typed_and_counted(case: ParserCase) -> None:
    source, records = parsed(case)
    assert records, f"{case.id}: no records"
    if case.expect.records is not None:
        assert len(records) == case.expect.records
    kind = KIND[case.dataset]
    assert {type(r) for r in records} == {kind}
    assert {r.iso for r in records} == {case.iso.value.upper()}
    assert all(r.source_file == source for r in records)
    assert all(r.source_row >= 1 for r in records)
    assert {r.revision_kind for r in records} <= {rec.VERSION, rec.PUBLISH_TIME}
    assert all(math.isfinite(value(r)) for r in records)


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_times_are_aligned_utc_interval_starts(case: ParserCase) -> None:
    _, records = parsed(case)
    for r in records:
        start = r.interval_start_utc
        assert start.tzinfo is not None, r
        assert start.utcoffset() == timedelta(0), r
        assert r.interval_minutes in (5, 15, 60), r
        seconds = (start - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()
        assert seconds % (r.interval_minutes * 60) == 0, (
            f"{start} not on a {r.interval_minutes}-min boundary"
        )
    if case.expect.minutes is not None:
        assert {r.interval_minutes for r in records} == {case.expect.minutes}
    if case.dataset in MARKET_OF:
        market, minutes = MARKET_OF[case.dataset]
        assert {r.market for r in records if isinstance(r, LmpRecord)} == {market}
        assert {r.interval_minutes for r in records} == {minutes}


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_vocabularies_are_canonical(case: ParserCase) -> None:
    _, records = parsed(case)
    for r in records:
        if isinstance(r, LmpRecord):
            assert r.market in rec.MARKETS, r
            assert r.location_type in rec.LOCATION_TYPES, r
        elif isinstance(r, FuelMixRecord):
            assert r.fuel_type in rec.FUEL_TYPES, r
        elif isinstance(r, AsPriceRecord):
            assert r.product in rec.AS_PRODUCTS, r
            assert r.market in rec.MARKETS, r
        else:
            assert r.load_kind in ("ACTUAL", "FORECAST"), r
            assert (r.forecast_made_at_utc is None) == (r.load_kind == "ACTUAL"), r


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_no_observation_appears_twice(case: ParserCase) -> None:
    _, records = parsed(case)
    seen = [(r.natural_key, r.revision) for r in records]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("case", [c for c in CASES if c.expect.days], ids=by_id)
def test_dst_and_ordinary_days_are_complete(case: ParserCase) -> None:
    """Every series has every interval of each listed local day exactly once (23/24/25 hours)."""
    _, records = parsed(case)
    latest: dict[tuple[object, ...], dict[datetime, int]] = defaultdict(dict)
    minutes: dict[tuple[object, ...], int] = {}
    for r in records:
        revisions = latest[series(r)]
        revisions[r.interval_start_utc] = max(revisions.get(r.interval_start_utc, -1), r.revision)
        minutes[series(r)] = r.interval_minutes
    for day in case.expect.days:
        start, end = day_bounds_utc(case.iso.value.upper(), day)
        for key, starts in latest.items():
            expected = expected_intervals(case.iso.value.upper(), day, minutes[key])
            got = sorted(s for s in starts if start <= s < end)
            assert got == expected, (
                f"{key} on {day}: {len(got)} intervals, {len(expected)} expected"
            )


@pytest.mark.parametrize("case", [c for c in CASES if c.dataset in MARKET_OF], ids=by_id)
def test_components_are_consistent_with_the_total(case: ParserCase) -> None:
    _, records = parsed(case)
    for r in records:
        assert isinstance(r, LmpRecord)
        components = (r.energy_usd_per_mwh, r.congestion_usd_per_mwh, r.loss_usd_per_mwh)
        if Shows.COMPONENTS not in case.expect.shows:
            assert components == (None, None, None), r
            continue
        assert None not in components, r
        total = sum(c for c in components if c is not None)
        assert abs(total - r.lmp_usd_per_mwh) <= case.expect.component_tolerance, r


@pytest.mark.parametrize("case", [c for c in CASES if Shows.NEGATIVE in c.expect.shows], ids=by_id)
def test_negative_prices_are_kept(case: ParserCase) -> None:
    _, records = parsed(case)
    assert any(value(r) < 0 for r in records)


@pytest.mark.parametrize("case", [c for c in CASES if Shows.REVISIONS in c.expect.shows], ids=by_id)
def test_revisions_are_kept(case: ParserCase) -> None:
    _, records = parsed(case)
    versions: dict[object, set[int]] = defaultdict(set)
    for r in records:
        versions[r.natural_key].add(r.revision)
    assert any(len(v) >= 2 for v in versions.values())


GENERIC_KINDS = sorted({(c.iso, c.dataset) for c in CASES}, key=str)


@pytest.mark.parametrize(("iso", "dataset"), GENERIC_KINDS, ids=lambda v: str(v.value))
def test_empty_and_html_payloads_are_rejected(iso: object, dataset: object) -> None:
    case = next(c for c in CASES if (c.iso, c.dataset) == (iso, dataset))
    parser = parser_for(case.iso, case.dataset)
    with pytest.raises(ParseError, match=r"^empty\.bin: "):
        parser(b"", "empty.bin")
    page = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head></html>"
    with pytest.raises(ParseError, match=r"^error\.html: .*503 Service Unavailable"):
        parser(page, "error.html")


@pytest.mark.parametrize(("iso", "dataset"), GENERIC_KINDS, ids=lambda v: str(v.value))
def test_a_truncated_payload_is_rejected(iso: object, dataset: object) -> None:
    case = next((c for c in CASES if (c.iso, c.dataset) == (iso, dataset) and _loadable(c)), None)
    if case is None:
        pytest.skip("no payload of this kind available here")
    source, data = case.load()
    if sniff(data) == "csv":
        # cut inside the first data row, so that row loses fields
        first_break = data.index(b"\n") + 1
        second_break = data.index(b"\n", first_break)
        cut = first_break + (second_break - first_break) // 2
    else:
        cut = len(data) // 2
    with pytest.raises(ParseError, match="^" + re.escape(source)):
        parser_for(case.iso, case.dataset)(data[:cut], source)


def _loadable(case: ParserCase) -> bool:
    try:
        case.load()
    except pytest.skip.Exception:
        return False
    return True


@pytest.mark.parametrize("case", MALFORMED, ids=by_id)
def test_malformed_payloads_are_rejected_with_a_clear_error(case: MalformedCase) -> None:
    source, data = case.load()
    with pytest.raises(ParseError, match=case.match) as info:
        parser_for(case.iso, case.dataset)(data, source)
    assert str(info.value).startswith(source)
