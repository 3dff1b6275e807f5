"""The live ERCOT client against canned answers (httpx.MockTransport): how it builds requests,
pages through the API archive, signs in, narrows listings to a window and says "no data"."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from connectors.ercot import feeds
from connectors.ercot.client import ErcotClient, from_credentials
from connectors.ercot.parse import PARSERS
from connectors.ercot.simulate import simulate
from connectors.errors import FetchError, NoDataError
from connectors.http import RetryPolicy
from connectors.simulate import SimRequest
from schemas.catalog import Dataset
from schemas.timeutil import to_micros
from tests.unit.connectors.contract import shared_file

FAST = RetryPolicy(attempts=2, base_delay_s=0.0)
NOW = datetime(2024, 7, 16, 15, tzinfo=UTC)
DAY = (datetime(2024, 7, 15, 5, tzinfo=UTC), datetime(2024, 7, 16, 5, tzinfo=UTC))  # 07/15 CDT
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **options: Any) -> ErcotClient:
    """A client answered by `handler`, without pauses, at NOW unless a clock is given."""
    options.setdefault("clock", lambda: NOW)
    return ErcotClient(
        transport=httpx.MockTransport(handler),
        policy=FAST,
        mis_min_interval_s=0,
        api_min_interval_s=0,
        **options,
    )


def api_client(handler: Handler, **options: Any) -> ErcotClient:
    return client(
        handler,
        username="trader@example.com",
        password=SecretStr("s3cret-pass"),
        subscription_key=SecretStr("sub-key-123"),
        **options,
    )


def simulated_dam() -> tuple[str, bytes]:
    """A real-looking NP4-190 download: 07/15/2024 posted 07/14 13:30 CDT."""
    (name, data), *_ = simulate(SimRequest(Dataset.LMP_DA_HOURLY, *DAY, locations=2))
    return name, data


def mis_document(name: str, published: str, doc_id: str) -> dict[str, object]:
    return {
        "Document": {
            "DocID": doc_id,
            "ConstructedName": name,
            "FriendlyName": name.split(".")[-2],
            "PublishDate": published,
            "ReportTypeID": 12331,
            "Extension": "zip",
        }
    }


# --- MIS ------------------------------------------------------------------------------------------


def test_mis_lists_the_report_and_downloads_the_csv_variant_posted_in_the_window() -> None:
    name, data = simulated_dam()
    listing = {
        "ListDocsByRptTypeRes": {
            "DocumentList": [
                mis_document(name, "2024-07-14T13:30:00-05:00", "111"),  # the one we want
                mis_document(name.replace("_csv", "_xml"), "2024-07-14T13:30:00-05:00", "112"),
                mis_document(name, "2024-07-01T13:30:00-05:00", "99"),  # posted long before
            ]
        }
    }
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/misapp/servlets/IceDocListJsonWS":
            assert request.url.params["reportTypeId"] == "12331"
            return httpx.Response(200, json=listing)
        assert request.url.path == "/misdownload/servlets/mirDownload"
        assert request.url.params["doclookupId"] == "111"
        return httpx.Response(200, content=data)

    with client(answer) as ercot:
        got = list(ercot.fetch(Dataset.LMP_DA_HOURLY, *DAY))
    assert got == [(name, data)]
    assert len(seen) == 2
    records = PARSERS[Dataset.LMP_DA_HOURLY](data, name)
    assert {r.revision for r in records} == {to_micros(datetime(2024, 7, 14, 18, 30, tzinfo=UTC))}


def test_mis_with_nothing_for_the_window_is_no_data() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ListDocsByRptTypeRes": {"DocumentList": []}})

    with client(answer) as ercot, pytest.raises(NoDataError, match="NP4-188-CD: MIS"):
        list(ercot.fetch(Dataset.AS_PRICES, *DAY))


def test_an_unexpected_listing_is_a_fetch_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": "maintenance"})

    with client(answer) as ercot, pytest.raises(FetchError, match="unexpected MIS document list"):
        list(ercot.fetch(Dataset.LMP_RT_15MIN, *DAY))


def test_a_failing_listing_is_retried_by_the_shared_policy() -> None:
    answers = iter(
        [
            httpx.Response(503, text="publishing"),
            httpx.Response(200, json={"ListDocsByRptTypeRes": {"DocumentList": []}}),
        ]
    )
    with client(lambda request: next(answers)) as ercot, pytest.raises(NoDataError):
        list(ercot.fetch(Dataset.LOAD, *DAY))


# --- the public API archive -------------------------------------------------------------------

LISTING = shared_file("ercot", "ercot_pubapi_archive_np3-911-er_listing_post_2024-11-05.json")
NP3_911 = feeds.Report(
    emil_id="NP3-911-ER",
    report_type_id=13057,
    title="2-Day Ancillary Services Reports",
    doc_name="2_Day_AS_Disclosure",
    columns=(),
    interval_minutes=60,
    posted_before=timedelta(days=3),
    posted_after=timedelta(days=3),
    cadence="daily",
)


def archive_pages(first: dict[str, Any], docs: int) -> list[dict[str, Any]]:
    """The recorded listing as page 1 of `docs`, and the further pages ERCOT would send."""
    pages = []
    for page in range(1, docs + 1):
        body = json.loads(json.dumps(first))
        body["_meta"].update(totalPages=docs, currentPage=page, totalRecords=docs, pageSize=1)
        item = body["archives"][0]
        if page > 1:
            item["docId"] = item["docId"] + page
            item["postDatetime"] = f"2024-11-05T0{3 + page}:00:00.000"
        pages.append(body)
    return pages


class FakeApi:
    """ERCOT's sign-in and archive endpoints, recording what it was asked."""

    def __init__(self, pages: list[dict[str, Any]], body: bytes = b"PK") -> None:
        self.pages = pages
        self.body = body
        self.sign_ins: list[dict[str, list[str]]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "ercotb2c.b2clogin.com":
            assert request.method == "POST"
            self.sign_ins.append(parse_qs(request.content.decode()))
            token = f"token-{len(self.sign_ins)}"
            return httpx.Response(200, json={"id_token": token, "expires_in": "3600"})
        assert request.url.host == "api.ercot.com"
        assert request.headers["Ocp-Apim-Subscription-Key"] == "sub-key-123"
        assert request.headers["Authorization"].startswith("Bearer token-")
        if "download" in request.url.params:
            return httpx.Response(200, content=self.body)
        page = int(request.url.params["page"])
        return httpx.Response(200, json=self.pages[page - 1])


def test_api_signs_in_pages_through_the_archive_and_downloads_each_document() -> None:
    _, recorded = LISTING()
    api = FakeApi(archive_pages(json.loads(recorded), docs=3))
    window = (datetime(2024, 11, 4, tzinfo=UTC), datetime(2024, 11, 5, tzinfo=UTC))
    with api_client(api) as ercot:
        postings = ercot.postings(NP3_911, *window)
        bodies = [ercot.download(p) for p in postings]
    assert [p.params for p in postings] == [
        (("download", "1049861718"),),
        (("download", "1049861720"),),
        (("download", "1049861721"),),
    ]
    first = postings[0]
    assert first.posted_utc == datetime(2024, 11, 5, 9, 16, 10, tzinfo=UTC)  # 03:16:10 CST
    assert first.name == "np3-911-er.1049861718.20241105.031610.2_Day_AS_Disclosure.zip"
    assert first.url == "https://api.ercot.com/api/public-reports/archive/np3-911-er"
    assert bodies == [b"PK"] * 3
    listed = [r for r in api.requests if r.url.params.get("page")]
    assert [r.url.params["page"] for r in listed] == ["1", "2", "3"]
    assert listed[0].url.params["postDatetimeFrom"] == "2024-10-31T18:00:00"  # CDT, widened
    assert listed[0].url.params["size"] == "1000"
    (form,) = api.sign_ins
    assert form["username"] == ["trader@example.com"]
    assert form["password"] == ["s3cret-pass"]
    assert form["grant_type"] == ["password"]
    assert form["client_id"] == [feeds.SIGN_IN_CLIENT_ID]
    assert all("s3cret" not in str(r.url) for r in api.requests)  # never in a URL


def test_api_names_carry_the_posting_time_the_parser_reads() -> None:
    _, data = simulated_dam()
    page = {
        "_meta": {"totalPages": 1, "currentPage": 1, "totalRecords": 1},
        "archives": [
            {"docId": 7, "friendlyName": "DAMSPNP4190", "postDatetime": "2024-07-14T13:30:00"}
        ],
    }
    with api_client(FakeApi([page], body=data)) as ercot:
        ((got_name, got_data),) = ercot.fetch(Dataset.LMP_DA_HOURLY, *DAY)
    assert got_name == "np4-190-cd.7.20240714.133000.DAMSPNP4190.zip"
    records = PARSERS[Dataset.LMP_DA_HOURLY](got_data, got_name)
    assert {r.revision for r in records} == {to_micros(datetime(2024, 7, 14, 18, 30, tzinfo=UTC))}


def test_api_with_an_empty_archive_is_no_data() -> None:
    empty = {"_meta": {"totalPages": 0, "currentPage": 1, "totalRecords": 0}, "archives": []}
    with api_client(FakeApi([empty])) as ercot, pytest.raises(NoDataError, match="API archive"):
        list(ercot.fetch(Dataset.LMP_RT_5MIN, *DAY))


def test_the_id_token_is_renewed_before_it_expires() -> None:
    empty = {"_meta": {"totalPages": 1, "currentPage": 1}, "archives": []}
    api = FakeApi([empty])
    moments = iter([NOW, NOW + timedelta(minutes=30), NOW + timedelta(minutes=56)])
    ercot = api_client(api, clock=lambda: next(moments))  # read once before each listing
    for _ in range(3):
        ercot.postings(feeds.SCED_LMP, *DAY)
    assert len(api.sign_ins) == 2  # 30 minutes in: still valid; 56 minutes in: renewed
    assert api.requests[-1].headers["Authorization"] == "Bearer token-2"


def test_a_refused_sign_in_does_not_echo_the_credentials() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_grant", "hint": "s3cret-pass"})

    with api_client(refuse) as ercot, pytest.raises(FetchError) as info:
        list(ercot.fetch(Dataset.LMP_DA_HOURLY, *DAY))
    assert str(info.value) == "ERCOT sign-in refused: HTTP 400"


def test_load_with_the_forecast_lists_both_reports() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["reportTypeId"])
        return httpx.Response(200, json={"ListDocsByRptTypeRes": {"DocumentList": []}})

    with client(answer, include_forecast=True) as ercot, pytest.raises(NoDataError):
        list(ercot.fetch(Dataset.LOAD, *DAY))
    assert asked == ["13101", "12312"]


# --- the fuel-mix dashboard and the rest ----------------------------------------------------------


def test_fuel_mix_reads_the_dashboard_for_recent_windows_only() -> None:
    body = b'{"lastUpdated": "2024-07-16 10:00:00-0500", "data": {}}'
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=body)

    with client(answer) as ercot:
        ((name, data),) = ercot.fetch(Dataset.FUEL_MIX, NOW - timedelta(hours=20), NOW)
        assert (name, data) == ("fuel-mix_20240716T150000Z.json", body)
        with pytest.raises(NoDataError, match="holds data from"):
            list(ercot.fetch(Dataset.FUEL_MIX, *[t - timedelta(days=1) for t in DAY]))
    assert asked == [feeds.FUEL_MIX_URL]


def test_windows_and_credentials_are_checked() -> None:
    with pytest.raises(ValueError, match="username, password and subscription key"):
        ErcotClient(username="someone", password=SecretStr("x"))
    with client(lambda r: httpx.Response(500)) as ercot:
        with pytest.raises(ValueError, match="not a UTC window"):
            list(ercot.fetch(Dataset.LOAD, DAY[1], DAY[0]))
        with pytest.raises(ValueError, match="no lmp_rt_hourly"):
            list(ercot.fetch(Dataset.LMP_RT_HOURLY, *DAY))


def test_from_credentials_picks_the_door() -> None:
    assert not from_credentials(None, None, None).uses_api
    assert from_credentials("someone", SecretStr("pw"), SecretStr("key")).uses_api
