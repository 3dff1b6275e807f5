"""Query parameters: each bad value is refused with the parameter's name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api import params
from api.problems import ProblemError

DAY = timedelta(days=1)


def refused(call: object, *args: object) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.status == 422
    return caught.value


def test_times_take_z_offsets_dates_and_a_plus_decoded_as_space() -> None:
    utc = datetime(2025, 5, 1, 4, tzinfo=UTC)
    assert params.instant("2025-05-01T04:00:00Z", "start") == utc
    assert params.instant("2025-05-01T00:00:00-04:00", "start") == utc
    assert params.instant("2025-05-01T06:00:00 02:00", "start") == utc  # '+' in a query string
    assert params.instant("2025-05-01", "start") == datetime(2025, 5, 1, tzinfo=UTC)
    assert params.instant("2025-05-01T04:00:00", "start") == utc  # naive: UTC
    assert refused(params.instant, "yesterday", "end").param == "end"


def test_ranges_must_be_ordered_present_and_small_enough() -> None:
    assert refused(params.time_range, "2025-05-02", "2025-05-01", 31 * DAY).param == "end"
    assert refused(params.time_range, None, "2025-05-01", 31 * DAY).param == "start"
    problem = refused(params.time_range, "2025-01-01", "2025-03-01", 31 * DAY)
    assert (problem.param, "59.0 days" in problem.detail) == ("end", True)
    window = params.time_range("2025-05-01", "2025-05-02", 31 * DAY)
    assert window.end - window.start == DAY


def test_isos_markets_resampling_and_columns() -> None:
    assert params.iso("pjm") == "PJM"
    assert refused(params.iso, "MISO").param == "iso"
    assert refused(params.market, "RT_1MIN").param == "market"
    assert params.resample("1h", "max") == ("1h", "max")
    assert refused(params.resample, "7min", "mean").param == "resample"
    assert refused(params.resample, "1h", "median").param == "agg"
    available = ("iso", "location_id", "interval_start_utc", "lmp_usd_per_mwh")
    always = ("iso", "location_id", "interval_start_utc")
    assert params.columns("lmp_usd_per_mwh", available, always) == [*always, "lmp_usd_per_mwh"]
    assert "bid_price" in refused(params.columns, "bid_price", available, always).detail
    assert refused(params.limit, 0).param == "limit"


def test_a_cursor_is_bound_to_its_query() -> None:
    query = {"iso": "PJM", "start": "2025-05-01"}
    cursor = params.encode_cursor(["PJM", "RT_5MIN", "51288", "2025-05-01T04:00:00+00:00"], query)
    assert params.decode_cursor(cursor, query) == [
        "PJM",
        "RT_5MIN",
        "51288",
        "2025-05-01T04:00:00+00:00",
    ]
    assert refused(params.decode_cursor, cursor, {**query, "iso": "CAISO"}).param == "cursor"
    assert refused(params.decode_cursor, "not-a-cursor", query).param == "cursor"
