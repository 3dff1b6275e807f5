"""ERCOT's local labels on DST days: hour endings with and without DSTFlag, SCED timestamps,
posting stamps in document names.

The conventions, and the evidence for them:
- DSTFlag / RepeatedHourFlag is Y on the second pass through the repeated hour (CST) and N on
  the first (CDT): gridstatus's ERCOT parser reads DSTFlag N as daylight time and Y as standard
  time ("DST Flag is Y during the repeated hour").
- Spring forward skips hour ending 03:00: ERCOT's yearly native-load files and the 2026 15-minute
  settlement point price archive go 01:00, 02:00, 04:00 on the short day.
- Files without a flag number the hours 1..25 on the long day: the recorded NP3-911 reports of
  11/03/2024 below (hour endings "1".."25" and "01".."25").
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.ercot.timelabels import (
    counted_hour_start_utc,
    hour_start_utc,
    interval_start_utc,
    parse_hour,
    posted_utc,
    sced_instant_utc,
)
from tests.unit.connectors.contract import shared_file

SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "hour"),
    [("01:00", 1), ("1:00", 1), ("01", 1), ("1", 1), (" 24:00", 24), ("25", 25)],
)
def test_hour_labels_in_every_spelling(text: str, hour: int) -> None:
    assert parse_hour(text) == hour


@pytest.mark.parametrize("text", ["1:30", "", "one", "100", "-1"])
def test_other_hour_labels_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an hour ending"):
        parse_hour(text)


def test_spring_forward_day_skips_hour_ending_03() -> None:
    # 00:00-01:00 CST, 01:00-02:00 CST, then 03:00-04:00 CDT: three hours in a row in UTC
    assert [hour_start_utc(SPRING, he, False) for he in (1, 2, 4)] == [
        utc(2024, 3, 10, 6),
        utc(2024, 3, 10, 7),
        utc(2024, 3, 10, 8),
    ]
    with pytest.raises(ValueError, match="hour ending 03:00 on 03/10/2024 does not exist"):
        hour_start_utc(SPRING, 3, False)


def test_fall_back_day_repeats_hour_ending_02_flagged_y_on_the_second_pass() -> None:
    assert hour_start_utc(FALL, 2, False) == utc(2024, 11, 3, 6)  # 01:00 CDT
    assert hour_start_utc(FALL, 2, True) == utc(2024, 11, 3, 7)  # 01:00 CST, the repeat
    assert hour_start_utc(FALL, 3, False) == utc(2024, 11, 3, 8)
    with pytest.raises(ValueError, match=r"hour ending 03:00 on 11/03/2024, which is not repeated"):
        hour_start_utc(FALL, 3, True)
    with pytest.raises(ValueError, match=r"no hour of that day repeats"):
        hour_start_utc(date(2024, 7, 15), 2, True)


def test_every_labelled_hour_of_both_days_is_one_real_hour() -> None:
    spring = [hour_start_utc(SPRING, he, False) for he in (1, 2, *range(4, 25))]
    fall = [hour_start_utc(FALL, 1, False), hour_start_utc(FALL, 2, False)]
    fall += [hour_start_utc(FALL, 2, True)] + [
        hour_start_utc(FALL, he, False) for he in range(3, 25)
    ]
    for hours, first in ((spring, utc(2024, 3, 10, 6)), (fall, utc(2024, 11, 3, 5))):
        assert hours == [first + timedelta(hours=i) for i in range(len(hours))]
    assert (len(spring), len(fall)) == (23, 25)


def test_files_without_a_flag_count_the_real_hours() -> None:
    assert counted_hour_start_utc(FALL, 25) == utc(2024, 11, 4, 5)  # hour 25 ends at midnight
    assert interval_start_utc("11/03/2024", "3", None) == utc(2024, 11, 3, 7)  # 01:00 CST
    assert interval_start_utc("03/10/2024", "23", None) == utc(2024, 3, 11, 4)
    with pytest.raises(ValueError, match=r"outside 1\.\.23"):
        interval_start_utc("03/10/2024", "24", None)


def test_hour_ending_24_ends_at_local_midnight() -> None:
    assert interval_start_utc("07/15/2024", "24:00", "N") == utc(2024, 7, 16, 4)  # 23:00 CDT
    assert interval_start_utc("01/15/2024", "24:00", "N") == utc(2024, 1, 16, 5)  # 23:00 CST


def test_a_flag_other_than_y_or_n_is_refused() -> None:
    with pytest.raises(ValueError, match="DSTFlag must be Y or N, not 'X'"):
        interval_start_utc("07/15/2024", "01:00", "X")


def test_sced_timestamps_in_the_repeated_hour_and_the_gap() -> None:
    assert sced_instant_utc("11/03/2024 01:30:18", False) == utc(2024, 11, 3, 6, 30, 18)
    assert sced_instant_utc("11/03/2024 01:30:18", True) == utc(2024, 11, 3, 7, 30, 18)
    assert sced_instant_utc("03/10/2024 03:00:09", False) == utc(2024, 3, 10, 8, 0, 9)
    with pytest.raises(ValueError, match="spring-forward gap"):
        sced_instant_utc("03/10/2024 02:00:09", False)
    with pytest.raises(ValueError, match="outside the repeated hour"):
        sced_instant_utc("11/03/2024 02:30:18", True)


def test_posting_stamps_in_document_names() -> None:
    name = "cdr.00013101.0000000000000000.20231118.055000.ACTUALSYSLOADWZNP6345.csv"
    assert posted_utc(name) == utc(2023, 11, 18, 11, 50)  # 05:50 CST
    first = "cdr.00012301.0000000000000000.20241103.011730.SPPHLZNP6905_20241103_0115.csv"
    second = "cdr.00012301.0000000000000000.20241103.011730.SPPHLZNP6905_20241103_0115xhr.csv"
    assert posted_utc(first) == utc(2024, 11, 3, 6, 17, 30)  # 01:17:30 CDT
    assert posted_utc(second) == utc(2024, 11, 3, 7, 17, 30)  # "xhr": 01:17:30 CST
    assert posted_utc("np6-905-cd.1045038225.20241018.031331.SPPHLZNP6905_csv.zip") == utc(
        2024, 10, 18, 8, 13, 31
    )
    assert posted_utc("ercot_mis_np6-788-cd_sced_2026-06-25_004018_EXCERPT.csv") is None
    with pytest.raises(ValueError, match="not a date and time"):
        posted_utc("cdr.00012301.0000000000000000.20241399.011730.X.csv")


# --- the recorded NP3-911 2-day AS reports: hour endings 1..25 without a flag ------------------

NP3_911_FALL = shared_file(
    "ercot", "ercot_pubapi_archive_np3-911-er_download_2024-11-05_deliv_2024-11-03_dst_end.zip"
)
NP3_911_CONTROL = shared_file(
    "ercot", "ercot_pubapi_archive_np3-911-er_download_2024-10-18_deliv_2024-10-16.zip"
)


def _hours_of(load: Callable[[], tuple[str, bytes]], member_prefix: str) -> list[datetime]:
    """The UTC hours a recorded NP3-911 report's (Delivery Date, Hour Ending) cells name."""
    _, data = load()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        name = next(n for n in archive.namelist() if n.startswith(member_prefix))
        rows = list(csv.DictReader(io.StringIO(archive.read(name).decode())))
    return sorted({interval_start_utc(r["Delivery Date"], r["Hour Ending"], None) for r in rows})


def test_recorded_fall_back_report_numbers_25_hours() -> None:
    hours = _hours_of(NP3_911_FALL, "2d_Cleared_DAM_AS_REGUP")  # hour endings "1".."25"
    assert hours == [utc(2024, 11, 3, 5) + timedelta(hours=i) for i in range(25)]


def test_recorded_zero_padded_hours_read_the_same() -> None:
    padded = _hours_of(NP3_911_FALL, "2d_Agg_AS_Offers_REGUP")  # hour endings "01".."25"
    assert padded == _hours_of(NP3_911_FALL, "2d_Cleared_DAM_AS_REGUP")


def test_recorded_ordinary_day_numbers_24_hours() -> None:
    hours = _hours_of(NP3_911_CONTROL, "2d_Cleared_DAM_AS_REGUP")
    assert hours == [utc(2024, 10, 16, 5) + timedelta(hours=i) for i in range(24)]
