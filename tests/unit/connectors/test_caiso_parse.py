"""CAISO parsing beyond the contract: local-time labels on DST days, revisions, forecasts'
vintages, the GHG component, "no data", and recognising the format from the content."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest

from connectors.caiso.feeds import area_type, location_type
from connectors.caiso.oasis import pacific_stamp, published_in_name
from connectors.caiso.outlook import wall_instants
from connectors.caiso.parse import PARSERS
from connectors.errors import NoDataError, ParseError
from connectors.records import FuelMixRecord, LmpRecord, LoadRecord, Record
from schemas.catalog import Dataset
from schemas.timeutil import to_micros, zone
from tests.unit.connectors.cases_caiso import (
    AS_RTM_HEADER,
    FUELS,
    GRP_ALL_MEMBERS,
    LMP_RT_HEADER,
    OUTLOOK_DEMAND_DAILY,
    RT5_BARE,
    SLD_HEADER,
    as_rtm,
    csv_text,
    lmp_dam_dst_zip,
    sld_lines,
    zipped,
)
from tests.unit.connectors.contract import shared_file

FALL = datetime(2024, 11, 3, tzinfo=UTC).date()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(dataset: Dataset, name: str, data: bytes) -> Sequence[Record]:
    return PARSERS[dataset](data, name)


def loads(name: str, data: bytes) -> list[LoadRecord]:
    records = parse(Dataset.LOAD, name, data)
    assert all(isinstance(r, LoadRecord) for r in records)
    return [r for r in records if isinstance(r, LoadRecord)]


def fuels(name: str, data: bytes) -> list[FuelMixRecord]:
    records = parse(Dataset.FUEL_MIX, name, data)
    return [r for r in records if isinstance(r, FuelMixRecord)]


def fuel_file(*rows: str) -> bytes:
    return csv_text(f"Time,{FUELS}", rows).encode()


def fuel_row(label: str, solar: int) -> str:
    return f"{label},{solar},3100,910,310,205,280,4,2260,7400,2300,-40,6900,12"


def solar_starts(records: list[FuelMixRecord]) -> dict[datetime, float]:
    return {r.interval_start_utc: r.generation_mw for r in records if r.fuel_type_native == "Solar"}


# Today's Outlook: wall-clock labels --------------------------------------------------------------


def test_an_outlook_label_ends_its_interval_and_the_trailing_midnight_is_the_next_day() -> None:
    records = fuels(
        "caiso_outlook_20240704_fuelsource.csv",
        fuel_file(
            fuel_row("00:00", 1), fuel_row("00:05", 2), fuel_row("23:55", 3), fuel_row("00:00", 4)
        ),
    )
    # 00:00 PDT = 07:00Z closes [06:55Z, 07:00Z) of July 3; the last 00:00 closes July 4.
    assert solar_starts(records) == {
        utc("2024-07-04T06:55:00"): 1,
        utc("2024-07-04T07:00:00"): 2,
        utc("2024-07-05T06:50:00"): 3,
        utc("2024-07-05T06:55:00"): 4,
    }


def test_spring_forward_blank_rows_are_skipped_and_03_00_follows_01_55() -> None:
    blank = "," * 13
    records = fuels(
        "caiso_outlook_20240310_fuelsource.csv",
        fuel_file(
            fuel_row("01:55", 1),  # 01:55 PST = 09:55Z
            *(f"02:{m:02d}{blank}" for m in range(0, 60, 5)),  # the hour that does not exist
            fuel_row("03:00", 2),  # 03:00 PDT = 10:00Z, the very next instant
        ),
    )
    assert solar_starts(records) == {utc("2024-03-10T09:50:00"): 1, utc("2024-03-10T09:55:00"): 2}


def test_fall_back_labels_seen_twice_are_read_first_pdt_then_pst() -> None:
    records = fuels(
        "caiso_outlook_20241103_fuelsource.csv",
        fuel_file(
            fuel_row("00:55", 1),
            fuel_row("01:00", 2),  # 01:00 PDT = 08:00Z
            fuel_row("01:05", 3),  # 08:05Z ... (the rest of the first pass left out)
            fuel_row("01:00", 4),  # 01:00 PST = 09:00Z: the same label, an hour later
            fuel_row("01:05", 5),  # 09:05Z
            fuel_row("02:00", 6),  # 02:00 PST = 10:00Z
        ),
    )
    assert solar_starts(records) == {
        utc("2024-11-03T07:50:00"): 1,
        utc("2024-11-03T07:55:00"): 2,
        utc("2024-11-03T08:00:00"): 3,
        utc("2024-11-03T08:55:00"): 4,
        utc("2024-11-03T09:00:00"): 5,
        utc("2024-11-03T09:55:00"): 6,
    }


def test_a_file_ending_inside_the_repeated_hour_reads_it_as_the_first_pass() -> None:
    # Today's file at 01:10 PDT on the fall-back day: nothing says the hour will repeat yet.
    records = fuels(
        "caiso_outlook_20241103_fuelsource.csv",
        fuel_file(fuel_row("00:55", 1), fuel_row("01:00", 2), fuel_row("01:05", 3)),
    )
    assert max(solar_starts(records)) == utc("2024-11-03T08:00:00")


def test_a_repeated_hour_label_seen_once_before_later_rows_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"row 2: 01:05 appears once on 2024-11-03"):
        fuels(
            "caiso_outlook_20241103_fuelsource.csv",
            fuel_file(
                fuel_row("01:00", 1),
                fuel_row("01:05", 2),
                fuel_row("01:00", 3),
                fuel_row("02:00", 4),
            ),
        )


def test_a_row_going_back_in_time_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"row 2: 00:05 is out of order"):
        fuels(
            "caiso_outlook_20240704_fuelsource.csv",
            fuel_file(fuel_row("00:10", 1), fuel_row("00:05", 2)),
        )


def test_a_verbatim_repeated_outlook_row_is_kept_once() -> None:
    records = fuels(
        "caiso_outlook_20240704_fuelsource.csv",
        fuel_file(fuel_row("00:10", 1), fuel_row("00:10", 1), fuel_row("00:15", 2)),
    )
    assert len(records) == 2 * 13


def test_outlook_demand_is_actual_load_of_the_caiso_area_and_skips_unmeasured_rows() -> None:
    records = loads("caiso_outlook_20240704_demand.csv", OUTLOOK_DEMAND_DAILY)
    assert [(r.area_id, r.area_type, r.load_kind, r.load_mw) for r in records] == [
        ("CAISO", "RTO", "ACTUAL", 24941.0),
        ("CAISO", "RTO", "ACTUAL", 24877.0),
        ("CAISO", "RTO", "ACTUAL", 24802.0),
    ]
    assert records[2].native_fields["Demand response"] == "12"


# Daily Renewables Watch ------------------------------------------------------------------------

watch_spring = shared_file("caiso", "caiso_DailyRenewablesWatch_20170312_dst_spring.txt")


def test_renewables_watch_skips_the_hour_that_does_not_exist() -> None:
    name, data = watch_spring()
    records = fuels(name, data)
    wind = {
        r.interval_start_utc: r.generation_mw for r in records if r.fuel_type_native == "WIND TOTAL"
    }
    # Hour ending 2 is 01:00-02:00 PST (09:00Z); hour ending 4 is 03:00-04:00 PDT (10:00Z).
    assert wind[utc("2017-03-12T09:00:00")] == 1355
    assert wind[utc("2017-03-12T10:00:00")] == 1186
    assert len(wind) == 23
    # The totals row is not a fuel; thermal is OTHER, not guessed to be gas.
    assert {r.fuel_type_native for r in records if r.fuel_type == "OTHER"} == {"THERMAL"}
    assert "RENEWABLES" not in {r.fuel_type_native for r in records}


# OASIS: GMT columns, revisions, forecasts ------------------------------------------------------


def test_oasis_rows_of_the_repeated_hour_are_two_intervals_by_their_gmt_times() -> None:
    records = [
        r
        for r in parse(Dataset.LMP_DA_HOURLY, "dam.zip", lmp_dam_dst_zip())
        if isinstance(r, LmpRecord)
    ]
    fall = [
        r
        for r in records
        if r.location_id == "CAPTJACK_5_N003" and r.native_fields["OPR_DT"] == str(FALL)
    ]
    assert [r.native_fields["OPR_HR"] for r in fall[:4]] == ["1", "2", "3", "4"]
    assert [r.interval_start_utc for r in fall[:4]] == [
        utc("2024-11-03T07:00:00"),
        utc("2024-11-03T08:00:00"),  # 01:00 PDT
        utc("2024-11-03T09:00:00"),  # 01:00 PST
        utc("2024-11-03T10:00:00"),
    ]


def test_a_revision_is_the_later_generation_time_of_its_member() -> None:
    records = [
        r
        for r in parse(Dataset.LMP_DA_HOURLY, "dam.zip", lmp_dam_dst_zip())
        if isinstance(r, LmpRecord)
    ]
    at = utc("2024-11-03T09:00:00")
    versions = sorted(
        (r.revision, r.energy_usd_per_mwh)
        for r in records
        if r.location_id == "TH_NP15_GEN-APND" and r.interval_start_utc == at
    )
    # Members ..._20241104_09_00_41_v12.csv and ..._20241106_10_12_00_v12.csv, Pacific (PST).
    assert [v for v, _ in versions] == [
        to_micros(utc("2024-11-04T17:00:41")),
        to_micros(utc("2024-11-06T18:12:00")),
    ]
    assert [energy for _, energy in versions] == [27.0, 32.0]  # revised: energy + 5


def test_member_stamps_are_pacific_time_as_the_recorded_error_document_shows() -> None:
    # ..._SLD_FCST_N_20231116_10_39_53_v1.xml carries <TimeDate>2023-11-16T18:39:53.815Z.
    assert pacific_stamp("20231116", "10", "39", "53") == utc("2023-11-16T18:39:53")
    # In summer the stamp is PDT, seven hours behind.
    assert pacific_stamp("20240703", "10", "02", "11") == utc("2024-07-03T17:02:11")


sld_recorded = shared_file("caiso", "caiso_oasis_singlezip_SLD_FCST_v1_csv_2023-08-12_to_08-13.zip")


def test_recorded_sld_fcst_revision_areas_and_forecast_vintages() -> None:
    name, data = sld_recorded()
    records = loads(name, data)
    # member 20230812_20230813_SLD_FCST_N_20231115_21_27_45_v1.csv: 21:27:45 PST
    assert {r.revision for r in records} == {to_micros(utc("2023-11-16T05:27:45"))}
    assert area_type("CA ISO-TAC") == "RTO"
    assert {r.area_type for r in records if r.area_id == "PGE-TAC"} == {"TAC"}
    assert {r.area_type for r in records if r.area_id == "PACE"} == {"OTHER"}
    start = utc("2023-08-13T16:00:00")  # hour ending 10 of August 13
    made = {
        (r.interval_minutes, r.forecast_made_at_utc)
        for r in records
        if r.area_id == "CA ISO-TAC" and r.interval_start_utc == start
    }
    assert made == {
        (60, None),  # the actual
        (60, utc("2023-08-12T16:10:00")),  # DAM: 09:10 PDT the day before
        (60, utc("2023-08-11T16:10:00")),  # 2DA
        (60, utc("2023-08-06T16:10:00")),  # 7DA
        (15, start - timedelta(minutes=22.5)),  # RTPD
        (5, start - timedelta(minutes=2.5)),  # RTD
    }


def test_the_daily_forecast_vintage_follows_the_clock_across_a_dst_change() -> None:
    day_ahead = sld_lines(FALL, "SYS_FCST_DA_MW", ("CA ISO-TAC",))
    two_days = sld_lines(FALL, "SYS_FCST_2DA_MW", ("CA ISO-TAC",))
    records = loads("sld.csv", csv_text(SLD_HEADER, day_ahead[:1] + two_days[:1]).encode())
    # Both vintages were made before the change, in PDT (UTC-7).
    assert [r.forecast_made_at_utc for r in records] == [
        utc("2024-11-02T16:10:00"),
        utc("2024-11-01T16:10:00"),
    ]


recorded_xml = shared_file("caiso", "caiso_oasis_xml_SLD_FCST_RTM_2014-05-08_excerpt.xml")


def test_an_xml_report_takes_its_revision_from_its_timedate() -> None:
    name, data = recorded_xml()
    records = loads(name, data)
    assert {r.revision for r in records} == {to_micros(utc("2014-05-09T17:50:06"))}
    assert {(r.interval_minutes, r.area_id) for r in records} == {
        (15, "CA ISO-TAC"),
        (5, "CA ISO-TAC"),
        (5, "PGE-TAC"),
    }


def test_revision_falls_back_to_the_name_then_to_zero() -> None:
    assert published_in_name("caiso_outlook_20240310_fuelsource_pub20240311T081500Z.csv") == (
        to_micros(utc("2024-03-11T08:15:00"))
    )
    bare = parse(
        Dataset.LMP_RT_5MIN,
        "20240703_20240703_PRC_INTVL_LMP_RTM_20240703_10_02_11_v3.csv",
        RT5_BARE.encode(),
    )
    assert {r.revision for r in bare} == {to_micros(utc("2024-07-03T17:02:11"))}
    # grp_type=ALL members carry no stamp, nor does this response name: revision 0.
    unstamped = parse(Dataset.LMP_DA_HOURLY, "prc_lmp_all.zip", zipped(*GRP_ALL_MEMBERS)())
    assert {r.revision for r in unstamped} == {0}
    outlook = loads("caiso_outlook_20240704_demand.csv", OUTLOOK_DEMAND_DAILY)
    assert {r.revision for r in outlook} == {0}


def test_outlook_revisions_come_from_the_publish_time_in_the_name() -> None:
    early = loads("caiso_outlook_20240704_demand_pub20240704T071500Z.csv", OUTLOOK_DEMAND_DAILY)
    late = loads("caiso_outlook_20240704_demand_pub20240705T071500Z.csv", OUTLOOK_DEMAND_DAILY)
    assert early[0].natural_key == late[0].natural_key
    assert late[0].revision > early[0].revision > 0


# LMP components ------------------------------------------------------------------------------


def test_ghg_is_kept_as_published_beside_energy_congestion_and_loss() -> None:
    header = LMP_RT_HEADER.format(value="VALUE")
    row = (
        "2024-07-03T16:50:00-00:00,2024-07-03T16:55:00-00:00,2024-07-03,10,PACE_N001,PACE_N001,"
        "PACE_N001,RTM,{},{},PACE_N001,ALL,1,{},11,1"
    )
    lines = [
        row.format("LMP", "LMP_PRC", "41.5"),
        row.format("MCE", "LMP_ENE_PRC", "30.0"),
        row.format("MCC", "LMP_CONG_PRC", "1.5"),
        row.format("MCL", "LMP_LOSS_PRC", "0.75"),
        row.format("MGHG", "LMP_GHG_PRC", "9.25"),  # a WEIM transfer into California
    ]
    (record,) = parse(Dataset.LMP_RT_5MIN, "intvl.csv", csv_text(header, lines).encode())
    assert isinstance(record, LmpRecord)
    components = (
        record.energy_usd_per_mwh,
        record.congestion_usd_per_mwh,
        record.loss_usd_per_mwh,
    )
    assert (record.lmp_usd_per_mwh, components) == (41.5, (30.0, 1.5, 0.75))
    assert dict(record.native_fields) == {
        **dict(zip(header.split(","), lines[0].split(","), strict=True)),
        "LMP_ENE_PRC": "30.0",
        "LMP_CONG_PRC": "1.5",
        "LMP_LOSS_PRC": "0.75",
        "LMP_GHG_PRC": "9.25",
    }
    # energy + congestion + loss = LMP - GHG
    ghg = float(record.native_fields["LMP_GHG_PRC"])
    assert record.lmp_usd_per_mwh - ghg == sum(c for c in components if c is not None)
    assert record.location_type == "NODE"


def test_location_types_follow_caiso_names() -> None:
    assert location_type("TH_NP15_GEN-APND") == "HUB"
    assert location_type("DLAP_PGAE-APND") == "LOAD_ZONE"
    assert location_type("SLAP_PGEB-APND") == "LOAD_ZONE"
    assert location_type("ELAP_PACE-APND") == "AGGREGATE"
    assert location_type("CAPTJACK_5_N003") == "NODE"


def test_an_lmp_row_without_its_other_components_is_rejected() -> None:
    lines = RT5_BARE.splitlines()
    # the 16:55 interval loses its congestion row
    kept = [
        line for line in lines[1:] if not (line.startswith("2024-07-03T16:55") and ",MCC," in line)
    ]
    with pytest.raises(
        ParseError, match=r"TH_NP15_GEN-APND at 2024-07-03T16:55Z has no congestion"
    ):
        parse(Dataset.LMP_RT_5MIN, "intvl.csv", csv_text(lines[0], kept).encode())


# No data, errors, formats ----------------------------------------------------------------------

no_data_recorded = shared_file("caiso", "caiso_oasis_singlezip_error_1000_no_data.zip")


@pytest.mark.parametrize("dataset", [Dataset.LOAD, Dataset.LMP_DA_HOURLY, Dataset.AS_PRICES])
def test_the_recorded_no_data_answer_raises_no_data_error(dataset: Dataset) -> None:
    name, data = no_data_recorded()
    with pytest.raises(
        NoDataError, match=r"ERR_CODE 1000: No data returned for the specified selection"
    ):
        parse(dataset, name, data)


def test_no_data_is_not_a_parse_error() -> None:
    error = (
        '<?xml version="1.0" encoding="UTF-8"?><m:OASISReport xmlns:m="http://www.caiso.com/soa/'
        'OASISReport_v1.xsd"><m:MessagePayload><m:RTO><m:ERROR><m:ERR_CODE>1000</m:ERR_CODE>'
        "<m:ERR_DESC>No data returned for the specified selection</m:ERR_DESC></m:ERROR>"
        "</m:RTO></m:MessagePayload></m:OASISReport>"
    )
    data = zipped(("20240310_20240310_PRC_RTPD_LMP_RTPD_20240311_00_00_01_v3.xml", error))()
    with pytest.raises(NoDataError) as info:
        parse(Dataset.LMP_RT_15MIN, "rtpd.zip", data)
    assert not isinstance(info.value, ParseError)


def test_the_load_parser_recognises_each_format_from_its_content() -> None:
    line = sld_lines(FALL, "SYS_FCST_ACT_MW", ("CA ISO-TAC",))[0]
    member = csv_text(SLD_HEADER, [line])
    as_zip = loads("response.bin", zipped(("m.csv", member))())
    as_csv = loads("response.bin", member.encode())
    outlook = loads("caiso_outlook_20240704_demand.bin", OUTLOOK_DEMAND_DAILY)
    assert as_zip[0].area_id == as_csv[0].area_id == "CA ISO-TAC"
    assert as_zip[0].interval_minutes == 60
    assert outlook[0].area_id == "CAISO"
    assert outlook[0].interval_minutes == 5


def test_a_zip_is_not_a_fuel_mix_payload() -> None:
    with pytest.raises(ParseError, match=r"^fuel.zip: a zip payload where csv was expected"):
        parse(
            Dataset.FUEL_MIX,
            "fuel.zip",
            zipped(("fuelsource.csv", fuel_file(fuel_row("00:05", 1)).decode()))(),
        )


def test_a_zip_member_that_is_neither_csv_nor_xml_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"^r.zip: x.json: a json member"):
        parse(Dataset.LOAD, "r.zip", zipped(("x.json", '{"items": []}'))())


def test_a_verbatim_repeated_oasis_row_is_kept_once_even_with_a_one_character_value() -> None:
    line = sld_lines(FALL, "SYS_FCST_ACT_MW", ("AVRN",))[0]
    zero = ",".join([*line.split(",")[:11], "0", *line.split(",")[12:]])  # MW 0, as AVRN has
    records = loads("sld.csv", csv_text(SLD_HEADER, [zero, zero]).encode())
    assert [r.load_mw for r in records] == [0.0]


def test_two_prices_for_one_observation_are_rejected() -> None:
    first, second = as_rtm("17:00", "RU", "4.1"), as_rtm("17:00", "RU", "4.2")
    with pytest.raises(ParseError, match=r"row 2: two prices for AS_CAISO_EXP RU"):
        parse(Dataset.AS_PRICES, "as.csv", csv_text(AS_RTM_HEADER, [first, second]).encode())


def test_the_lmp_parser_reads_the_xml_result_format_too() -> None:
    def data(item: str, value: str) -> str:
        return (
            f"<REPORT_DATA><DATA_ITEM>{item}</DATA_ITEM><RESOURCE_NAME>TH_SP15_GEN-APND"
            "</RESOURCE_NAME><OPR_DATE>2024-07-03</OPR_DATE><INTERVAL_NUM>120</INTERVAL_NUM>"
            "<INTERVAL_START_GMT>2024-07-03T16:55:00-00:00</INTERVAL_START_GMT>"
            "<INTERVAL_END_GMT>2024-07-03T17:00:00-00:00</INTERVAL_END_GMT>"
            f"<VALUE>{value}</VALUE></REPORT_DATA>"
        )

    report = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd">'
        "<MessageHeader><TimeDate>2024-07-03T17:10:02-00:00</TimeDate></MessageHeader>"
        "<MessagePayload><RTO><REPORT_ITEM><REPORT_HEADER><REPORT>PRC_INTVL_LMP</REPORT>"
        "<MKT_TYPE>RTM</MKT_TYPE><SEC_PER_INTERVAL>300</SEC_PER_INTERVAL></REPORT_HEADER>"
        + data("LMP_PRC", "21.5")
        + data("LMP_ENE_PRC", "20.9")
        + data("LMP_CONG_PRC", "0.1")
        + data("LMP_LOSS_PRC", "0.5")
        + data("LMP_GHG_PRC", "0")
        + "</REPORT_ITEM></RTO></MessagePayload></OASISReport>"
    )
    as_zip = zipped(("20240703_20240703_PRC_INTVL_LMP_RTM_20240703_10_10_02_v3.xml", report))()
    for name, payload in (("lmp.zip", as_zip), ("lmp.xml", report.encode())):
        (record,) = parse(Dataset.LMP_RT_5MIN, name, payload)
        assert isinstance(record, LmpRecord)
        assert record.interval_start_utc == utc("2024-07-03T16:55:00")
        assert (record.lmp_usd_per_mwh, record.loss_usd_per_mwh) == (21.5, 0.5)
        assert record.revision == to_micros(utc("2024-07-03T17:10:02"))


def test_wall_instants_reads_every_day_as_both_folds_do() -> None:
    """The steady-offset shortcut gives what trying both folds gives, on DST days and others."""
    pacific = zone("CAISO")
    day = date(2023, 12, 25)
    while day < date(2025, 1, 5):
        for minute in range(0, 24 * 60 + 1, 5):
            wall = datetime.combine(day, time()) + timedelta(minutes=minute)
            both = {wall.replace(tzinfo=pacific, fold=fold).astimezone(UTC) for fold in (0, 1)}
            real = sorted(t for t in both if t.astimezone(pacific).replace(tzinfo=None) == wall)
            assert wall_instants(day, minute) == tuple(real), (day, minute)
        day += timedelta(days=1)
