"""PJM parsers beyond the contract: DST time labels, revisions, format recognition, native
fields."""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from connectors import records as rec
from connectors.errors import NoDataError, ParseError
from connectors.pjm.parse import (
    parse_as_prices,
    parse_fuel_mix,
    parse_lmp_da_hourly,
    parse_lmp_rt_5min,
    parse_lmp_rt_hourly,
    parse_load,
)
from connectors.pjm.table import nearest_five_minutes, read_table, wall_time
from connectors.records import AsPriceRecord, FuelMixRecord, LmpRecord, LoadRecord, Record
from connectors.tabular import sniff
from tests.unit.connectors import cases_pjm as cases
from tests.unit.connectors.contract import shared_file

SPRING_FILE = shared_file("pjm", "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-03-10_dst_spring.csv")
FALL_FILE = shared_file("pjm", "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-11-03_dst_fall.csv")
REVISIONS_FILE = shared_file(
    "pjm", "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-03-05_revisions_v1_v2.csv"
)


def lmps(records: Sequence[Record]) -> list[LmpRecord]:
    assert all(isinstance(r, LmpRecord) for r in records)
    return [r for r in records if isinstance(r, LmpRecord)]


def loads(records: Sequence[Record]) -> list[LoadRecord]:
    return [r for r in records if isinstance(r, LoadRecord)]


# ----------------------------------------------------------------- time labels on DST days


def test_the_recorded_spring_day_skips_2_am_in_ept_but_not_in_utc() -> None:
    name, data = SPRING_FILE()
    records = lmps(parse_lmp_rt_hourly(data, name))
    starts = [r.interval_start_utc for r in records]
    assert starts[0] == datetime(2024, 3, 10, 5, tzinfo=UTC)  # midnight EST
    assert starts == [starts[0] + timedelta(hours=h) for h in range(23)]
    labels = [r.native_fields["datetime_beginning_ept"] for r in records[1:3]]
    assert labels == ["3/10/2024 1:00:00 AM", "3/10/2024 3:00:00 AM"]


def test_the_recorded_fall_day_has_two_1_am_hours_told_apart_by_utc() -> None:
    name, data = FALL_FILE()
    records = lmps(parse_lmp_rt_hourly(data, name))
    one_am = [
        r for r in records if r.native_fields["datetime_beginning_ept"].endswith(" 1:00:00 AM")
    ]
    assert [r.interval_start_utc for r in one_am] == [
        datetime(2024, 11, 3, 5, tzinfo=UTC),  # 1 AM EDT
        datetime(2024, 11, 3, 6, tzinfo=UTC),  # 1 AM EST
    ]
    assert [r.lmp_usd_per_mwh for r in one_am] == [10.283743, 12.441453]
    assert len(records) == 25


@pytest.mark.parametrize(
    ("text", "wall"),
    [
        ("3/10/2024 1:00:00 AM", datetime(2024, 3, 10, 1)),
        ("3/10/2024 12:00:00 AM", datetime(2024, 3, 10, 0)),  # midnight is 12 AM
        ("11/3/2024 12:05:00 PM", datetime(2024, 11, 3, 12, 5)),  # noon is 12 PM
        ("11/3/2024 11:59:57 PM", datetime(2024, 11, 3, 23, 59, 57)),
        ("11/3/2024 13:00", datetime(2024, 11, 3, 13)),  # 24-hour export
        ("2024-11-03T01:00:00", datetime(2024, 11, 3, 1)),  # the API's JSON
        ("2024-11-03T05:59:57.250", datetime(2024, 11, 3, 5, 59, 57, 250_000)),
    ],
)
def test_data_miner_timestamps(text: str, wall: datetime) -> None:
    assert wall_time(text) == wall


@pytest.mark.parametrize("text", ["3/10/2024 13:00:00 PM", "3/10/2024 1:00:00 XM", "yesterday"])
def test_unreadable_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)not a|invalid isoformat"):
        wall_time(text)


def test_an_ept_label_of_the_other_1_am_is_rejected() -> None:
    # 05:00 UTC is the first 1 AM (EDT); labelled as if it were midnight EST it is refused
    data = cases.csv_payload(
        cases.RT_HEADER,
        ["11/3/2024 5:00:00 AM,11/3/2024 12:00:00 AM,1,PJM-RTO,,,ZONE,,1.0,1.0,0,0,True,1"],
    )
    with pytest.raises(ParseError, match=r"^f\.csv, row 1: datetime_beginning_ept '11/3/2024"):
        parse_lmp_rt_hourly(data, "f.csv")


def test_without_an_ept_column_utc_alone_is_read() -> None:
    page = cases.page(
        [
            {
                "datetime_beginning_utc": "2024-11-03T06:00:00",
                "pnode_id": 1,
                "pnode_name": "PJM-RTO",
                "type": "ZONE",
                "system_energy_price_rt": 1.0,
                "total_lmp_rt": 1.5,
                "congestion_price_rt": 0.25,
                "marginal_loss_price_rt": 0.25,
                "version_nbr": 1,
            }
        ]
    )
    (record,) = lmps(parse_lmp_rt_hourly(page, "p.json"))
    assert record.interval_start_utc == datetime(2024, 11, 3, 6, tzinfo=UTC)


def test_instantaneous_snapshots_count_for_the_nearest_five_minutes() -> None:
    assert nearest_five_minutes(datetime(2024, 11, 3, 5, 59, 57, tzinfo=UTC)) == datetime(
        2024, 11, 3, 6, tzinfo=UTC
    )
    assert nearest_five_minutes(datetime(2024, 11, 3, 6, 2, 29, tzinfo=UTC)) == datetime(
        2024, 11, 3, 6, tzinfo=UTC
    )
    assert nearest_five_minutes(datetime(2024, 11, 3, 6, 2, 31, tzinfo=UTC)) == datetime(
        2024, 11, 3, 6, 5, tzinfo=UTC
    )


def test_instantaneous_load_on_the_fall_back_day() -> None:
    records = loads(parse_load(cases.INST_DST_PAGE, "inst.json"))
    second_one_am = [
        r for r in records if r.interval_start_utc == datetime(2024, 11, 3, 6, tzinfo=UTC)
    ]
    # two snapshots for the 1:00 AM EST interval: 05:59:57 and 06:00:02 UTC
    assert sorted(r.revision for r in second_one_am) == [
        int(datetime(2024, 11, 3, 5, 59, 57, tzinfo=UTC).timestamp()) * 1_000_000,
        int(datetime(2024, 11, 3, 6, 0, 2, tzinfo=UTC).timestamp()) * 1_000_000,
    ]
    assert {r.area_id for r in records} == {"INST/PJM RTO"}
    assert {(r.area_type, r.revision_kind, r.interval_minutes) for r in records} == {
        ("RTO", rec.PUBLISH_TIME, 5)
    }


# ----------------------------------------------------------------- revisions


def test_every_version_of_an_hour_is_its_own_record() -> None:
    name, data = REVISIONS_FILE()
    records = lmps(parse_lmp_rt_hourly(data, name))
    by_hour: dict[datetime, dict[int, float]] = {}
    for r in records:
        by_hour.setdefault(r.interval_start_utc, {})[r.revision] = r.lmp_usd_per_mwh
    assert len(by_hour) == 24
    assert all(set(v) == {1, 2} for v in by_hour.values())
    assert {r.revision_kind for r in records} == {rec.VERSION}
    # hour ending 23 was corrected from version 1 to version 2
    corrected = [v for v in by_hour.values() if v[1] != v[2]]
    assert corrected
    assert any(v == {1: 28.348916, 2: 40.164347} for v in corrected)


def test_the_unverified_feed_ranks_below_every_verified_version() -> None:
    records = lmps(parse_lmp_rt_5min(cases.UNVERIFIED_DST_PAGE, "u.json"))
    assert {(r.revision, r.revision_kind) for r in records} == {(0, rec.PUBLISH_TIME)}
    first = records[0]
    # energy is derived: total - congestion - loss, to PJM's 6 decimals
    assert first.energy_usd_per_mwh == 26.125
    assert (first.lmp_usd_per_mwh, first.congestion_usd_per_mwh, first.loss_usd_per_mwh) == (
        27.5,
        1.25,
        0.125,
    )


def test_metered_load_is_preliminary_then_verified() -> None:
    records = loads(parse_load(cases.METERED_DST, "m.csv"))
    hour = [r for r in records if r.interval_start_utc == datetime(2024, 11, 3, 6, tzinfo=UTC)]
    assert sorted((r.revision, r.load_mw) for r in hour) == [(1, 790.0), (2, 792.25)]
    assert {(r.area_id, r.area_type, r.revision_kind) for r in records} == {
        ("AE", "ZONE", rec.VERSION)
    }


def test_feeds_without_a_version_take_the_publish_time_from_the_name() -> None:
    first = parse_fuel_mix(cases.FUEL_DST, "gen_by_fuel_pub20241104T060000Z.csv")
    later = parse_fuel_mix(cases.FUEL_DST, "gen_by_fuel_pub20241105T060000Z.csv")
    unnamed = parse_fuel_mix(cases.FUEL_DST, "gen_by_fuel.csv")
    assert {r.revision for r in first} == {
        int(datetime(2024, 11, 4, 6, tzinfo=UTC).timestamp()) * 1_000_000
    }
    assert {r.revision for r in later} == {{r.revision for r in first}.pop() + 86_400_000_000}
    assert {(r.revision, r.revision_kind) for r in unnamed} == {(0, rec.PUBLISH_TIME)}
    reserves = parse_as_prices(cases.RESERVE_DST, "reserve_market_results_pub20241104T060000Z.csv")
    assert {r.revision for r in reserves} == {r.revision for r in first}


def test_a_verbatim_repeat_is_one_observation() -> None:
    records = [r for r in parse_fuel_mix(cases.FUEL_DST, "f.csv") if isinstance(r, FuelMixRecord)]
    gas = [
        r
        for r in records
        if r.fuel_type_native == "Gas"
        and r.interval_start_utc == datetime(2024, 11, 3, 6, tzinfo=UTC)
    ]
    assert len(gas) == 1
    assert gas[0].source_row == 95  # the first of the two rows (95 and 97) is kept


# ----------------------------------------------------------------- vocabularies


def test_codes_map_to_the_canonical_vocabularies() -> None:
    fuels = {
        (r.fuel_type_native, r.fuel_type)
        for r in parse_fuel_mix(cases.FUEL_DST, "f.csv")
        if isinstance(r, FuelMixRecord)
    }
    assert fuels == {("Gas", "GAS"), ("Storage", "BATTERY")}
    reserves = {
        (r.region_id, r.product_native, r.product, r.market)
        for r in parse_as_prices(cases.RESERVE_DST, "r.csv")
        if isinstance(r, AsPriceRecord)
    }
    assert reserves == {
        ("PJM_RTO", "REG", "OTHER", "RT_5MIN"),
        ("MAD", "SR", "SYNC", "RT_5MIN"),
    }
    hourly = {
        (r.product_native, r.product, r.market, r.interval_minutes)
        for r in parse_as_prices(cases.page(cases.hourly_reserve_items()), "r.json")
        if isinstance(r, AsPriceRecord)
    }
    assert hourly == {("SR", "SYNC", "RT_HOURLY", 60), ("NSR", "NON_SPIN", "RT_HOURLY", 60)}


# ----------------------------------------------------------------- formats


def _as_csv_export(page: bytes) -> bytes:
    items = json.loads(page)["items"]
    header = list(items[0])
    lines = [",".join(header)]
    for item in items:
        cells = [item[h] for h in header]
        lines.append(",".join("" if c is None else str(c) for c in cells))
    return "\r\n".join([*lines, ""]).encode()


def _comparable(records: Sequence[Record]) -> list[tuple[object, ...]]:
    return [
        (r.natural_key, r.revision, r.revision_kind, getattr(r, "lmp_usd_per_mwh", None))
        for r in records
    ]


def test_a_page_an_export_list_and_a_csv_export_give_the_same_records() -> None:
    page = cases.RT_DST_PAGE
    export_list = json.dumps(json.loads(page)["items"]).encode()
    csv_export = _as_csv_export(page)
    assert (sniff(page), sniff(export_list), sniff(csv_export)) == ("json", "json", "csv")
    from_page = parse_lmp_rt_hourly(page, "p.json")
    assert _comparable(parse_lmp_rt_hourly(export_list, "l.json")) == _comparable(from_page)
    assert _comparable(parse_lmp_rt_hourly(csv_export, "e.csv")) == _comparable(from_page)


def test_the_format_is_read_from_the_content_not_the_name() -> None:
    records = parse_lmp_da_hourly(cases.DA_DST, "misleading_name.json")
    assert len(records) == 49


def test_quoted_csv_cells_are_read_with_the_csv_module() -> None:
    data = cases.csv_payload(
        cases.DA_HEADER,
        [
            "5/1/2025 4:00:00 AM,5/1/2025 12:00:00 AM,"
            '7,"BUS, 138 KV",138,,LOAD,AE,1,1.5,0.25,0.25,True,1'
        ],
    )
    (record,) = lmps(parse_lmp_da_hourly(data, "q.csv"))
    assert record.location_name == "BUS, 138 KV"
    assert record.location_type == "NODE"


def test_an_empty_page_is_no_data_not_an_error() -> None:
    with pytest.raises(NoDataError, match=r"^empty_p001\.json: PJM returned no rows"):
        parse_lmp_rt_hourly(cases.page([]), "empty_p001.json")
    with pytest.raises(NoDataError):
        parse_load(cases.METERED_HEADER.encode() + b"\r\n", "header_only.csv")


def test_json_cells_read_as_the_csv_export_prints_them() -> None:
    records = lmps(parse_lmp_rt_hourly(cases.RT_DST_PAGE, "p.json"))
    native = records[0].native_fields
    assert native["pnode_id"] == "51288"
    assert native["row_is_current"] == "True"
    assert native["zone"] == ""
    assert dict(native)["type"] == "HUB"
    assert list(native) == list(json.loads(cases.RT_DST_PAGE)["items"][0])
    assert records[0].location_id == "51288"


def test_the_native_fields_are_the_source_row() -> None:
    name, data = FALL_FILE()
    record = lmps(parse_lmp_rt_hourly(data, name))[2]
    assert dict(record.native_fields) == dict(
        zip(
            data.split(b"\r\n")[0].decode().split(","),
            data.split(b"\r\n")[3].decode().split(","),
            strict=True,
        )
    )
    assert record.source_row == 3


def test_a_table_keeps_its_rows_in_order() -> None:
    table = read_table(cases.DA_DST, "d.csv")
    assert table.row(1)[2:4] == ["51217", "EASTERN HUB"]
    assert len(table.cells) == 49 * table.width


# ----------------------------------------------------------------- speed helpers


def test_the_collector_is_running_again_after_a_parse() -> None:
    assert gc.isenabled()
    parse_lmp_da_hourly(cases.DA_DST, "d.csv")
    assert gc.isenabled()
    with pytest.raises(ParseError):
        parse_lmp_da_hourly(b"", "e.csv")
    assert gc.isenabled()


START = datetime(2024, 11, 3, 6, tzinfo=UTC)
