"""The shared HTTP policy: retries, Retry-After, no retry on client errors, conditional GETs."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.errors import FetchError
from connectors.http import HttpFetcher, RateLimiter, RetryPolicy, retry_after_seconds

FAST = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.01)


def fetcher(handler: httpx.MockTransport) -> HttpFetcher:
    return HttpFetcher(policy=FAST, transport=handler)


def test_server_errors_are_retried_then_succeed() -> None:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, text="ok")

    response = fetcher(httpx.MockTransport(handle)).get("https://iso.example/feed")
    assert response is not None
    assert response.text == "ok"
    assert len(calls) == 3


def test_giving_up_names_the_url_and_the_last_failure() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(
        FetchError, match=r"iso\.example/feed\?a=1 failed after 3 attempts: HTTP 502"
    ):
        fetcher(transport).get("https://iso.example/feed", params={"a": 1})


def test_client_errors_are_not_retried() -> None:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, text="invalid subscription key")

    with pytest.raises(FetchError, match="HTTP 401"):
        fetcher(httpx.MockTransport(handle)).get("https://iso.example/feed")
    assert calls == [1]


def test_conditional_requests_send_validators_and_accept_304() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, text="body", headers={"ETag": '"v1"'})

    client = fetcher(httpx.MockTransport(handle))
    assert client.get("https://iso.example/doc", conditional=True) is not None
    assert client.get("https://iso.example/doc", conditional=True) is None
    assert seen == [None, '"v1"']


def test_retry_after_is_honoured_within_the_cap() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert FAST.delay(1, retry_after=120) == FAST.max_delay_s
    assert 0 < RetryPolicy(base_delay_s=1).delay(3) <= 4


def test_rate_limiter_spaces_requests() -> None:

    limiter = RateLimiter(0.05)
    began = time.monotonic()
    for _ in range(3):
        limiter.wait()
    assert time.monotonic() - began >= 0.1
