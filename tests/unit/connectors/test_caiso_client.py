"""The live CAISO client against httpx.MockTransport: what it asks for, how it splits windows
and pages nodes, how it names responses, and how it treats OASIS's "no data" and errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.caiso.client import ALL_NODES, CaisoClient, from_credentials
from connectors.caiso.feeds import OASIS_SECONDS_PER_REQUEST, PRC_INTVL_LMP, TRADING_HUBS
from connectors.caiso.parse import PARSERS
from connectors.errors import FetchError, NoDataError
from connectors.http import HttpFetcher, RetryPolicy
from schemas.catalog import Dataset
from schemas.timeutil import to_micros
from tests.unit.connectors.cases_caiso import (
    OUTLOOK_DEMAND_DAILY,
    RT5_BARE,
    error_zip,
    zipped,
)

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2024, 7, 10, 18, tzinfo=UTC)  # 11:00 PDT on July 10
ONE_TRY = RetryPolicy(attempts=1)


def client(
    handler: Handler, nodes: Sequence[str] | str = TRADING_HUBS
) -> tuple[CaisoClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    transport = httpx.MockTransport(record)
    caiso = CaisoClient(
        nodes=nodes,
        oasis=HttpFetcher(policy=ONE_TRY, transport=transport),
        outlook=HttpFetcher(policy=ONE_TRY, transport=transport),
        clock=lambda: NOW,
    )
    return caiso, seen


RT5_ZIP_NAME = "20240703_20240703_PRC_INTVL_LMP_RTM_20240703_10_02_11_v3.zip"


def rt5_zip(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        content=zipped(("m.csv", RT5_BARE))(),
        headers={"Content-Disposition": f"inline; filename={RT5_ZIP_NAME};"},
    )


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def test_a_day_ahead_request_has_oasis_parameters_and_splits_at_31_days() -> None:
    caiso, seen = client(rt5_zip)
    start = datetime(2024, 3, 1, 8, tzinfo=UTC)
    list(caiso.fetch(Dataset.LMP_DA_HOURLY, start, start + timedelta(days=40)))
    assert [str(r.url.copy_with(query=None)) for r in seen] == [
        "http://oasis.caiso.com/oasisapi/SingleZip"
    ] * 2
    assert params(seen[0]) == {
        "queryname": "PRC_LMP",
        "market_run_id": "DAM",
        "startdatetime": "20240301T08:00-0000",
        "enddatetime": "20240401T08:00-0000",
        "version": "12",
        "resultformat": "6",
        "node": "TH_NP15_GEN-APND,TH_SP15_GEN-APND,TH_ZP26_GEN-APND",
    }
    assert (params(seen[1])["startdatetime"], params(seen[1])["enddatetime"]) == (
        "20240401T08:00-0000",
        "20240410T08:00-0000",
    )


def test_long_node_lists_are_paged() -> None:
    nodes = [f"NODE_{i:02d}" for i in range(23)]
    caiso, seen = client(rt5_zip, nodes=nodes)
    start = datetime(2024, 7, 3, 7, tzinfo=UTC)
    list(caiso.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(days=2)))
    pages = [params(r)["node"].split(",") for r in seen]
    assert [len(page) for page in pages] == [10, 10, 3, 10, 10, 3]  # two 1-day windows
    assert [node for page in pages[:3] for node in page] == nodes


def test_every_node_asks_with_grp_type_and_one_hour_windows() -> None:
    caiso, seen = client(rt5_zip, nodes=ALL_NODES)
    start = datetime(2024, 7, 3, 7, 2, tzinfo=UTC)
    list(caiso.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(hours=3)))
    assert all(params(r)["grp_type"] == "ALL" and "node" not in params(r) for r in seen)
    # widened to the 5-minute grid: 07:00 to 10:05, in hour-long requests
    assert [(params(r)["startdatetime"], params(r)["enddatetime"]) for r in seen] == [
        ("20240703T07:00-0000", "20240703T08:00-0000"),
        ("20240703T08:00-0000", "20240703T09:00-0000"),
        ("20240703T09:00-0000", "20240703T10:00-0000"),
        ("20240703T10:00-0000", "20240703T10:05-0000"),
    ]
    assert PRC_INTVL_LMP.window_all == timedelta(hours=1)


def test_responses_are_named_from_content_disposition_and_parse_as_fetched() -> None:
    caiso, _ = client(rt5_zip)
    start = datetime(2024, 7, 3, 16, 50, tzinfo=UTC)
    ((name, data),) = caiso.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(minutes=10))
    assert name == RT5_ZIP_NAME
    assert len(PARSERS[Dataset.LMP_RT_5MIN](data, name)) == 2


def test_a_response_without_content_disposition_gets_a_name_of_its_window() -> None:
    caiso, _ = client(lambda _: httpx.Response(200, content=zipped(("m.csv", RT5_BARE))()))
    start = datetime(2024, 7, 3, 16, 50, tzinfo=UTC)
    ((name, _),) = caiso.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(minutes=10))
    assert name == "caiso_PRC_INTVL_LMP_RTM_20240703T1650Z_20240703T1700Z.zip"


NO_DATA = error_zip("1000", "No data returned for the specified selection")


@pytest.mark.parametrize(
    ("error", "dataset", "days", "raised", "match"),
    [
        (
            NO_DATA,
            Dataset.LMP_RT_15MIN,
            2,
            NoDataError,
            r"CAISO lmp_rt_15min: no data for 2024-07-03T07:00Z",
        ),
        (
            error_zip("1015", "GroupZip DownLoad is in Processing"),
            Dataset.LMP_DA_HOURLY,
            1,
            FetchError,
            r"ERR_CODE 1015: GroupZip DownLoad is in Processing",
        ),
    ],
    ids=["no-data-for-the-whole-window-is-no-data", "another-error-code-is-a-fetch-error"],
)
def test_an_oasis_error_document_in_every_window_raises(
    error: Callable[[], bytes], dataset: Dataset, days: int, raised: type[Exception], match: str
) -> None:
    caiso, seen = client(lambda _: httpx.Response(200, content=error()))
    start = datetime(2024, 7, 3, 7, tzinfo=UTC)
    with pytest.raises(raised, match=match):
        list(caiso.fetch(dataset, start, start + timedelta(days=days)))
    assert len(seen) == days  # every (day-long) window was asked


def test_windows_without_data_are_skipped_when_others_have_data() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if params(request)["startdatetime"].startswith("20240703"):
            return rt5_zip(request)
        return httpx.Response(200, content=NO_DATA())

    caiso, _ = client(handler)
    start = datetime(2024, 7, 3, 7, tzinfo=UTC)
    responses = list(caiso.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(days=2)))
    assert len(responses) == 1


def test_as_prices_ask_for_both_markets_and_every_region() -> None:
    caiso, seen = client(rt5_zip)
    start = datetime(2024, 7, 3, 7, tzinfo=UTC)
    list(caiso.fetch(Dataset.AS_PRICES, start, start + timedelta(hours=2)))
    asked = [(params(r)["queryname"], params(r)["market_run_id"]) for r in seen]
    assert asked == [("PRC_AS", "DAM"), ("PRC_INTVL_AS", "RTM"), ("PRC_INTVL_AS", "RTM")]
    assert all(params(r)["anc_region"] == "ALL" and params(r)["anc_type"] == "ALL" for r in seen)


def test_load_asks_sld_fcst_for_every_market_then_the_outlook_days() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "www.caiso.com":
            return httpx.Response(
                200,
                content=OUTLOOK_DEMAND_DAILY,
                headers={"Last-Modified": "Wed, 10 Jul 2024 07:15:00 GMT"},
            )
        return rt5_zip(request)

    caiso, seen = client(handler)
    start = datetime(2024, 7, 9, 7, tzinfo=UTC)  # Pacific midnight, July 9
    responses = list(caiso.fetch(Dataset.LOAD, start, start + timedelta(days=3)))
    assert "market_run_id" not in params(seen[0])
    assert params(seen[0])["queryname"] == "SLD_FCST"
    # July 9 from the history, July 10 (today) from the current file, July 11 not yet published
    assert [str(r.url) for r in seen[1:]] == [
        "https://www.caiso.com/outlook/history/20240709/demand.csv",
        "https://www.caiso.com/outlook/current/demand.csv",
    ]
    name, data = responses[1]
    assert name == "caiso_outlook_20240709_demand_pub20240710T071500Z.csv"
    records = PARSERS[Dataset.LOAD](data, name)
    assert {r.revision for r in records} == {to_micros(datetime(2024, 7, 10, 7, 15, tzinfo=UTC))}


def test_fuel_mix_is_one_outlook_file_per_pacific_day() -> None:
    caiso, seen = client(lambda _: httpx.Response(200, content=b"Time,Solar\n"))
    start = datetime(2024, 3, 9, 12, tzinfo=UTC)  # 04:00 PST March 9
    list(caiso.fetch(Dataset.FUEL_MIX, start, datetime(2024, 3, 11, 7, tzinfo=UTC)))
    assert [r.url.path for r in seen] == [
        "/outlook/history/20240309/fuelsource.csv",
        "/outlook/history/20240310/fuelsource.csv",
    ]


def test_an_empty_window_asks_nothing() -> None:
    caiso, seen = client(rt5_zip)
    assert list(caiso.fetch(Dataset.LMP_RT_5MIN, NOW, NOW)) == []
    assert seen == []


def test_http_failures_come_from_the_shared_policy() -> None:
    caiso, seen = client(lambda _: httpx.Response(404, text="not here"))
    with pytest.raises(FetchError, match=r"HTTP 404"):
        list(caiso.fetch(Dataset.FUEL_MIX, NOW - timedelta(days=2), NOW - timedelta(days=1)))
    assert len(seen) == 1  # 404 is not retried


def test_the_default_client_keeps_to_oasis_rate_limit() -> None:
    live = from_credentials()
    try:
        assert live.oasis.limiter is not None
        assert live.oasis.limiter.min_interval_s == OASIS_SECONDS_PER_REQUEST == 5.0
    finally:
        live.close()
