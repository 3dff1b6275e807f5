"""The live PJM client against httpx.MockTransport: requests, paging, fallbacks, no-data and
error answers. No network."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from connectors.errors import ConnectorError, FetchError, NoDataError
from connectors.http import RetryPolicy
from connectors.pjm.client import PjmClient, from_credentials
from connectors.pjm.feeds import KEY_HEADER, PAGE_ROWS
from connectors.pjm.parse import PARSERS
from connectors.pjm.simulate import simulate
from connectors.simulate import SimRequest
from schemas.catalog import Dataset
from tests.unit.connectors.contract import shared_file

KEY = SecretStr("test-subscription-key")
FAST = RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.01)
START = datetime(2024, 11, 3, 4, tzinfo=UTC)  # midnight EDT, the fall-back day
EMPTY = {"links": [], "items": [], "totalRows": 0}
Handler = Callable[[httpx.Request], httpx.Response]


def client(
    handler: Handler, *, pnode_ids: list[int] | None = None, page_rows: int = PAGE_ROWS
) -> PjmClient:
    return PjmClient(
        KEY,
        requests_per_minute=600_000,
        pnode_ids=pnode_ids,
        page_rows=page_rows,
        policy=FAST,
        transport=httpx.MockTransport(handler),
    )


class Recorder:
    """A Data Miner stand-in: answers each request with `answer(request)` and keeps them."""

    def __init__(self, answer: Callable[[httpx.Request], object]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = self.answer(request)
        if isinstance(body, httpx.Response):
            return body
        return httpx.Response(200, content=body if isinstance(body, bytes) else json.dumps(body))

    def feeds(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.requests]

    def windows(self) -> list[str]:
        return [
            r.url.params.get("datetime_beginning_utc", "") for r in self.requests if r.url.params
        ]


def served(pages_by_feed: dict[str, list[bytes]]) -> Recorder:
    """Serves simulated pages by feed and StartRow, as Data Miner pages its answers."""

    def answer(request: httpx.Request) -> object:
        feed = request.url.path.rsplit("/", 1)[-1]
        pages = pages_by_feed.get(feed, [])
        start_row = int(request.url.params.get("StartRow", request.url.params.get("startRow", 1)))
        for page in pages:
            if json.loads(page)["searchSpecification"]["startRow"] == start_row:
                return page
        return EMPTY

    return Recorder(answer)


def test_the_first_request_names_the_feed_window_fields_and_key() -> None:
    recorder = Recorder(lambda r: EMPTY)
    with pytest.raises(NoDataError):
        list(
            client(recorder, pnode_ids=[51217, 51288]).fetch(
                Dataset.LMP_DA_HOURLY, START, START + timedelta(days=1)
            )
        )
    (request,) = recorder.requests
    assert str(request.url).startswith("https://api.pjm.com/api/v1/da_hrl_lmps?")
    assert request.headers[KEY_HEADER] == "test-subscription-key"
    params = request.url.params
    assert params["rowCount"] == "50000"
    assert params["startRow"] == "1"
    assert (params["sort"], params["order"]) == ("datetime_beginning_utc", "Asc")
    # Data Miner's filter includes both ends: the window closes a minute before its end
    assert params["datetime_beginning_utc"] == "11/03/2024 04:00to11/04/2024 03:59"
    assert params["pnode_id"] == "51217;51288"
    assert "total_lmp_da" in params["fields"].split(",")


def test_pages_are_followed_by_their_next_links() -> None:
    request = SimRequest(Dataset.LMP_RT_5MIN, START, START + timedelta(hours=6), locations=3)
    pages = [data for _, data in simulate(request, page_rows=50)]
    recorder = served({"rt_fivemin_hrl_lmps": pages})
    fetched = list(
        client(recorder, page_rows=50).fetch(
            Dataset.LMP_RT_5MIN, request.start_utc, request.end_utc
        )
    )
    assert [body for _, body in fetched] == pages
    assert [name[-10:] for name, _ in fetched] == [
        f"_p{n:03d}.json" for n in range(1, len(pages) + 1)
    ]
    # the next links carry the whole query, StartRow advancing by the page size
    assert [r.url.params.get("StartRow") for r in recorder.requests[1:]] == [
        str(1 + 50 * n) for n in range(1, len(pages))
    ]
    records = [r for name, body in fetched for r in PARSERS[Dataset.LMP_RT_5MIN](body, name)]
    assert len(records) == 3 * 72


def test_total_rows_alone_never_makes_up_requests() -> None:
    # gridstatus trimmed this recording: totalRows says 10368, two items came, and no next link
    _, trimmed = shared_file(
        "pjm", "pjm_api_five_min_solar_power_forecast_2024-10-01_trimmed.json"
    )()
    assert json.loads(trimmed)["totalRows"] == 10368
    recorder = Recorder(lambda r: trimmed)
    fetched = list(client(recorder).fetch(Dataset.FUEL_MIX, START, START + timedelta(days=1)))
    assert len(recorder.requests) == 1
    assert [body for _, body in fetched] == [trimmed]


def test_a_recorded_single_page_is_one_request() -> None:
    _, recorded = shared_file(
        "pjm", "pjm_api_da_marginal_value_2023-11-05_to_11-07_dst_fall.json"
    )()
    recorder = Recorder(lambda r: recorded)
    fetched = list(client(recorder).fetch(Dataset.AS_PRICES, START, START + timedelta(hours=1)))
    assert len(fetched) == 1
    assert len(recorder.requests) == 1


def test_a_next_link_that_repeats_is_refused() -> None:
    looping = {
        "links": [{"rel": "next", "href": "https://api.pjm.com/api/v1/gen_by_fuel?StartRow=2"}],
        "items": [{"datetime_beginning_utc": "2024-11-03T04:00:00"}],
        "totalRows": 5,
    }
    with pytest.raises(FetchError, match="the next link repeats"):
        list(
            client(Recorder(lambda r: looping)).fetch(
                Dataset.FUEL_MIX, START, START + timedelta(days=1)
            )
        )


def test_an_empty_window_is_no_data() -> None:
    recorder = Recorder(lambda r: EMPTY)
    with pytest.raises(NoDataError, match=r"PJM hrl_load_metered, inst_load: no rows"):
        list(client(recorder).fetch(Dataset.LOAD, START, START + timedelta(hours=2)))
    assert recorder.feeds() == ["hrl_load_metered", "inst_load"]


def test_load_needs_only_one_of_its_feeds() -> None:
    request = SimRequest(Dataset.LOAD, START, START + timedelta(hours=2), locations=2)
    recorder = served({"inst_load": [data for _, data in simulate(request, feed="inst_load")]})
    fetched = list(client(recorder).fetch(Dataset.LOAD, request.start_utc, request.end_utc))
    assert [name.split("_2024")[0] for name, _ in fetched] == ["inst_load"]
    # inst_load is stamped seconds early: its window starts two minutes before
    assert recorder.windows()[-1] == "11/03/2024 03:58to11/03/2024 05:57"


def test_five_minute_prices_fall_back_to_the_unverified_feed_after_the_verified_rows() -> None:
    end = START + timedelta(hours=3)
    verified = SimRequest(Dataset.LMP_RT_5MIN, START, START + timedelta(hours=2), locations=2)
    unverified = SimRequest(Dataset.LMP_RT_5MIN, START, end, locations=2)
    recorder = served(
        {
            "rt_fivemin_hrl_lmps": [d for _, d in simulate(verified)],
            "rt_unverified_fivemin_lmps": [
                d for _, d in simulate(unverified, feed="rt_unverified_fivemin_lmps")
            ],
        }
    )
    fetched = list(client(recorder).fetch(Dataset.LMP_RT_5MIN, START, end))
    assert recorder.feeds() == ["rt_fivemin_hrl_lmps", "rt_unverified_fivemin_lmps"]
    # the unverified feed is asked only for what the verified one lacks: from 06:00 UTC on
    assert recorder.windows() == [
        "11/03/2024 04:00to11/03/2024 06:59",
        "11/03/2024 06:00to11/03/2024 06:59",
    ]
    assert len(fetched) == 2


def test_five_minute_prices_come_wholly_from_the_unverified_feed_before_verification() -> None:
    request = SimRequest(Dataset.LMP_RT_5MIN, START, START + timedelta(hours=1), locations=2)
    pages = [d for _, d in simulate(request, feed="rt_unverified_fivemin_lmps")]
    recorder = served({"rt_unverified_fivemin_lmps": pages})
    fetched = list(client(recorder).fetch(Dataset.LMP_RT_5MIN, request.start_utc, request.end_utc))
    assert recorder.windows() == ["11/03/2024 04:00to11/03/2024 04:59"] * 2
    records = [r for name, body in fetched for r in PARSERS[Dataset.LMP_RT_5MIN](body, name)]
    assert {r.revision for r in records} == {0}


def test_long_windows_are_asked_for_in_the_feeds_own_spans() -> None:
    recorder = Recorder(lambda r: EMPTY)
    with pytest.raises(NoDataError):
        list(
            client(recorder).fetch(
                Dataset.LMP_DA_HOURLY, START, START + timedelta(days=2, hours=12)
            )
        )
    assert recorder.windows() == [
        "11/03/2024 04:00to11/04/2024 03:59",
        "11/04/2024 04:00to11/05/2024 03:59",
        "11/05/2024 04:00to11/05/2024 15:59",
    ]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"errors": [{"message": "Invalid filter"}]}, "an error document"),
        (b"<html><title>Service Unavailable</title></html>", "something other than a page"),
        ({"statusCode": 401, "message": "Access denied"}, "something other than a page"),
        (httpx.Response(400, text="bad request"), "HTTP 400"),
    ],
)
def test_error_answers_fail_the_fetch(answer: object, problem: str) -> None:
    with pytest.raises(FetchError, match=problem):
        list(
            client(Recorder(lambda r: answer)).fetch(
                Dataset.FUEL_MIX, START, START + timedelta(hours=1)
            )
        )


def test_the_key_never_shows_and_is_required() -> None:
    live = client(Recorder(lambda r: EMPTY))
    assert "test-subscription-key" not in repr(live._http)
    assert "test-subscription-key" not in repr(vars(live))
    with pytest.raises(ConnectorError, match="subscription key"):
        from_credentials(None)
    with pytest.raises(ConnectorError, match="subscription key"):
        PjmClient(SecretStr(""))
    assert isinstance(from_credentials(KEY), PjmClient)


def test_a_non_member_key_is_held_to_six_requests_a_minute() -> None:
    limiter = PjmClient(KEY)._http.limiter
    assert limiter is not None
    assert limiter.min_interval_s == 10.0


@pytest.mark.parametrize(
    ("start", "end"),
    [(datetime(2024, 11, 3, 4), datetime(2024, 11, 4, 4)), (START, START)],
)
def test_the_window_must_be_aware_and_not_empty(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match=r"aware|empty window"):
        list(client(Recorder(lambda r: EMPTY)).fetch(Dataset.FUEL_MIX, start, end))
