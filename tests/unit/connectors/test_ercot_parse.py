"""What the contract does not pin down for ERCOT: where revisions come from, how one report
reads the same as a CSV, a zip and a zip of zips, SCED runs in 5-minute intervals, the
energy-weighted load zones and the fuel-mix dashboard's stamps and publications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from connectors.ercot.parse import (
    parse_dam_spp,
    parse_fuel_mix,
    parse_load,
    parse_rt_spp,
    parse_sced_lmp,
)
from connectors.errors import ParseError
from connectors.records import PUBLISH_TIME, FuelMixRecord, LmpRecord, LoadRecord, Record
from connectors.tabular import sniff
from schemas.timeutil import to_micros
from tests.unit.connectors.cases_ercot import (
    DAM_FIRST,
    DAM_HEADER,
    FUEL_MIX_SMALL,
    RT_FIRST,
    SCED_RERUN,
    cdr,
    zipped,
)
from tests.unit.connectors.contract import shared_file


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def content(records: Sequence[Record]) -> list[tuple[object, ...]]:
    """Records without where they were read from."""
    return [(r.natural_key, r.revision, r.native_fields) for r in records]


# --- one report, three payloads -----------------------------------------------------------------

POSTED = cdr(12331, "20240714.133012", "DAMSPNP4190")


def test_a_csv_its_zip_and_a_zip_of_zips_read_the_same() -> None:
    bare = parse_dam_spp(DAM_FIRST, POSTED)
    single = parse_dam_spp(zipped((POSTED, DAM_FIRST)), "download.zip")
    bulk = parse_dam_spp(zipped(("a_csv.zip", zipped((POSTED, DAM_FIRST)))), "bulk.zip")
    assert [sniff(p) for p in (DAM_FIRST, zipped((POSTED, DAM_FIRST)))] == ["csv", "zip"]
    assert content(bare) == content(single) == content(bulk)
    assert {r.source_file for r in bulk} == {"bulk.zip"}  # the response, not the member


def test_format_is_read_from_content_not_from_the_name() -> None:
    misnamed = parse_dam_spp(zipped((POSTED, DAM_FIRST)), "looks_like.csv")
    assert content(misnamed) == content(parse_dam_spp(DAM_FIRST, POSTED))
    with pytest.raises(ParseError, match=r"^fuel\.zip: a csv payload where json was expected"):
        parse_fuel_mix(DAM_FIRST, "fuel.zip")
    with pytest.raises(ParseError, match=r"^dam\.csv: a JSON document where a zip or CSV"):
        parse_dam_spp(FUEL_MIX_SMALL, "dam.csv")


def test_errors_inside_a_zip_name_the_member() -> None:
    bad = DAM_HEADER.encode() + b"\n07/15/2024,17:00,HB_NORTH,oops,N\n"
    with pytest.raises(ParseError, match=rf"^bulk\.zip!a_csv\.zip!{POSTED}, row 1: "):
        parse_dam_spp(zipped(("a_csv.zip", zipped((POSTED, bad)))), "bulk.zip")
    with pytest.raises(ParseError, match=r"^empty\.zip: the zip holds no CSV document"):
        parse_dam_spp(zipped(), "empty.zip")


# --- revisions ----------------------------------------------------------------------------------


def test_revision_is_the_posting_time_in_the_member_name() -> None:
    records = parse_dam_spp(zipped((POSTED, DAM_FIRST)), "download.zip")
    assert {r.revision for r in records} == {to_micros(utc(2024, 7, 14, 18, 30, 12))}  # CDT
    assert {r.revision_kind for r in records} == {PUBLISH_TIME}


def test_revision_falls_back_to_the_response_name_then_to_zero() -> None:
    inner = zipped(("DAMSPNP4190.csv", DAM_FIRST))  # the member's name carries no stamp
    named = parse_dam_spp(inner, "np4-190-cd.1045038225.20240714.133012.DAMSPNP4190.zip")
    assert {r.revision for r in named} == {to_micros(utc(2024, 7, 14, 18, 30, 12))}
    # Neither the payload nor its name says when it was posted: revision 0, which any dated
    # posting of the same prices outranks.
    assert {r.revision for r in parse_dam_spp(DAM_FIRST, "dam.csv")} == {0}


def test_a_correction_outranks_the_first_posting() -> None:
    corrected = DAM_HEADER.encode() + b"\n07/15/2024,17:00,HB_NORTH, 47.95,N\n"
    later = cdr(12331, "20240716.091500", "DAMSPNP4190")
    records = parse_dam_spp(zipped((later, corrected), (POSTED, DAM_FIRST)), "bulk.zip")
    north = sorted(
        (r.revision, r.lmp_usd_per_mwh)
        for r in records
        if isinstance(r, LmpRecord) and r.location_id == "HB_NORTH"
    )
    assert [price for _, price in north] == [48.20, 47.95]


def test_recorded_actual_load_is_revised_by_its_posting_time() -> None:
    source, data = shared_file(
        "ercot", "ercot_mis_np6-345-cd_ACTUALSYSLOADWZNP6345_opday_2023-11-17.zip"
    )()
    records = parse_load(data, source)
    assert {r.revision for r in records} == {to_micros(utc(2023, 11, 18, 11, 50))}  # 05:50 CST
    assert {r.load_kind for r in records if isinstance(r, LoadRecord)} == {"ACTUAL"}
    total = [r for r in records if isinstance(r, LoadRecord) and r.area_id == "ERCOT"]
    assert (total[0].area_type, total[0].load_mw) == ("RTO", 38647.60)


def test_recorded_forecast_is_made_at_its_posting_time() -> None:
    source, data = shared_file(
        "ercot", "ercot_mis_np3-561-cd_LFCWEATHERNP3561_posted_2023-11-19_2330.zip"
    )()
    records = [r for r in parse_load(data, source) if isinstance(r, LoadRecord)]
    assert {r.forecast_made_at_utc for r in records} == {utc(2023, 11, 20, 5, 30)}  # 23:30 CST
    assert {r.area_id for r in records} == {
        "COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTH_C", "SOUTHERN", "WEST", "ERCOT"
    }  # fmt: skip
    first = next(r for r in records if r.area_id == "NORTH_C")
    assert (first.interval_start_utc, first.load_mw) == (utc(2023, 11, 19, 6), 9868.4404)


# --- SCED runs ----------------------------------------------------------------------------------


def test_a_sced_run_prices_the_5_minute_interval_holding_it() -> None:
    source, data = shared_file(
        "ercot", "ercot_mis_np6-788-cd_LMPSROSNODENP6788_sced_2026-06-25_004018_EXCERPT.csv"
    )()
    records = [r for r in parse_sced_lmp(data, source) if isinstance(r, LmpRecord)]
    run = utc(2026, 6, 25, 5, 40, 18)  # 00:40:18 CDT
    assert {r.interval_start_utc for r in records} == {utc(2026, 6, 25, 5, 40)}
    assert {r.revision for r in records} == {to_micros(run)}
    kinds = {r.location_id: r.location_type for r in records}
    assert (kinds["HB_NORTH"], kinds["LZ_WEST"], kinds["DC_E"]) == ("HUB", "LOAD_ZONE", "INTERFACE")
    assert (kinds["RAB_G1-8"], kinds["APPALOSA_ALL"]) == ("RESOURCE_NODE", "RESOURCE_NODE")
    assert next(r.lmp_usd_per_mwh for r in records if r.location_id == "APPALOSA_ALL") == -38.25


def test_a_rerun_in_the_same_interval_is_a_later_revision() -> None:
    records = [
        r
        for r in parse_sced_lmp(SCED_RERUN, "sced.csv")
        if isinstance(r, LmpRecord) and r.location_id == "HB_NORTH"
    ]
    assert len({r.interval_start_utc for r in records}) == 1
    latest = max(records, key=lambda r: r.revision)
    assert (latest.lmp_usd_per_mwh, latest.revision) == (
        44.75,
        to_micros(utc(2024, 7, 15, 22, 43, 2)),
    )


# --- NP6-905 settlement point types ------------------------------------------------------------


def test_energy_weighted_load_zones_are_their_own_locations() -> None:
    records = [r for r in parse_rt_spp(RT_FIRST, "rt.csv") if isinstance(r, LmpRecord)]
    north = {r.location_id: (r.location_name, r.lmp_usd_per_mwh) for r in records}
    assert north["LZ_NORTH"] == ("LZ_NORTH", 22.40)
    assert north["LZ_NORTH_EW"] == ("LZ_NORTH", 22.43)
    kinds = {r.location_id: r.location_type for r in records}
    assert kinds == {
        "HB_NORTH": "HUB", "HB_BUSAVG": "HUB", "HB_HUBAVG": "HUB", "LZ_NORTH": "LOAD_ZONE",
        "LZ_NORTH_EW": "LOAD_ZONE", "DC_L": "INTERFACE", "CHE_CC1": "RESOURCE_NODE",
        "CHE_ALL": "RESOURCE_NODE", "EXN_PUN1": "RESOURCE_NODE", "AMISTAD_ALL": "RESOURCE_NODE",
    }  # fmt: skip
    assert {r.interval_start_utc for r in records} == {utc(2024, 11, 3, 6)}  # 01:00 CDT


# --- the fuel-mix dashboard ----------------------------------------------------------------------


def test_dashboard_stamps_fall_on_the_nearest_tick() -> None:
    records = [r for r in parse_fuel_mix(FUEL_MIX_SMALL, "f.json") if isinstance(r, FuelMixRecord)]
    assert sorted({r.interval_start_utc for r in records}) == [
        utc(2024, 7, 15, 22, 0),  # 17:00:02 CDT
        utc(2024, 7, 15, 22, 5),  # 17:04:58 CDT
    ]
    storage = {r.interval_start_utc: r for r in records if r.fuel_type == "BATTERY"}
    assert storage[utc(2024, 7, 15, 22, 5)].generation_mw == -120.0  # charging, kept negative
    assert storage[utc(2024, 7, 15, 22, 5)].native_fields["timestamp"] == "2024-07-15 17:04:58-0500"


def test_a_later_publication_of_the_dashboard_outranks_an_earlier_one() -> None:
    later = FUEL_MIX_SMALL.replace(b"17:06:00-0500", b"17:11:00-0500").replace(
        b"18250.3", b"18260.0"
    )
    first = parse_fuel_mix(FUEL_MIX_SMALL, "a.json")
    second = parse_fuel_mix(later, "b.json")
    assert {r.revision for r in second} == {to_micros(utc(2024, 7, 15, 22, 11))}
    assert min(r.revision for r in second) > max(r.revision for r in first)
    assert {r.natural_key for r in first} == {r.natural_key for r in second}


def test_a_verbatim_duplicate_stamp_is_read_once() -> None:
    stamp = b'"2024-07-15 17:00:02-0500": {"Solar": {"gen": 1.0}}'
    body = b'{"lastUpdated": "2024-07-15 17:06:00-0500", "data": {"2024-07-15": {%s, %s}}}' % (
        stamp,
        stamp,
    )
    assert len(parse_fuel_mix(body, "f.json")) == 1


def test_a_stamp_under_two_days_is_read_once_or_refused() -> None:
    def dashboard(second_gen: bytes) -> bytes:
        stamp = b'"2024-07-15 23:55:01-0500"'
        return (
            b'{"lastUpdated": "2024-07-16 00:05:00-0500", "data": {'
            b'"2024-07-15": {%s: {"Solar": {"gen": 0.0}}}, '
            b'"2024-07-16": {%s: {"Solar": {"gen": %s}}}}}' % (stamp, stamp, second_gen)
        )

    assert len(parse_fuel_mix(dashboard(b"0.0"), "f.json")) == 1  # the same stamp, verbatim
    with pytest.raises(ParseError, match="fall on the same 5-minute tick"):
        parse_fuel_mix(dashboard(b"5.0"), "f.json")
