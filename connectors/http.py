"""One HTTP policy for every ISO client: timeouts, retries with back-off, rate limits,
conditional requests.

ISOs fail in ordinary ways (429 with Retry-After, 5xx during publication windows, dropped
connections); the policy retries those with capped exponential back-off and jitter and gives
up with a FetchError naming the URL and the last failure. 4xx other than 408/429 is not retried.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from connectors.errors import FetchError

log = structlog.get_logger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `attempt` (1-based): Retry-After wins when given."""
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        jitter: float = 0.5 + random.random() / 2  # noqa: S311 - jitter, not security
        return float(backoff) * jitter


class RateLimiter:
    """At most one request per `min_interval_s` (CAISO OASIS asks for about one per 5 s)."""

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                time.sleep(self._next - now)
                now = self._next
            self._next = now + self.min_interval_s


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


@dataclass
class HttpFetcher:
    """GET with the shared policy; remembers ETag/Last-Modified per URL for conditional requests."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold API keys
    transport: httpx.BaseTransport | None = None
    _validators: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        timeout = httpx.Timeout(self.policy.read_timeout_s, connect=self.policy.connect_timeout_s)
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": "optibid-connector/0.1", **self.headers},
            follow_redirects=True,
            transport=self.transport,
        )

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        conditional: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response | None:
        """The response, or None when `conditional` and the ISO says nothing changed (304).

        `headers` are added to this request only (e.g. a bearer token that is renewed hourly).
        """
        key = str(httpx.URL(url, params=params))
        sent = dict(self._validators.get(key, {})) if conditional else {}
        sent.update(headers or {})
        response = self._send("GET", url, key, params=params, headers=sent)
        if response.status_code == 304 and conditional:
            return None
        self._remember(key, response)
        return response

    def post(
        self, url: str, data: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST a form under the same policy (token endpoints). The form never reaches a log."""
        return self._send("POST", url, url, data=data, headers=dict(headers or {}))

    def _send(self, method: str, url: str, key: str, **request: Any) -> httpx.Response:
        last_problem = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            if self.limiter:
                self.limiter.wait()
            retry_after = None
            try:
                response = self._client.request(method, url, **request)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                last_problem = f"HTTP {response.status_code}: {response.text[:200]!r}"
                if response.status_code not in RETRY_STATUS:
                    raise FetchError(f"{method} {key} failed: {last_problem}")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.policy.attempts:
                delay = self.policy.delay(attempt, retry_after)
                log.warning(
                    "fetch.retry", url=key, attempt=attempt, problem=last_problem, delay_s=delay
                )
                time.sleep(delay)
        raise FetchError(
            f"{method} {key} failed after {self.policy.attempts} attempts: {last_problem}"
        )

    def _remember(self, key: str, response: httpx.Response) -> None:
        validators = {}
        if etag := response.headers.get("ETag"):
            validators["If-None-Match"] = etag
        if modified := response.headers.get("Last-Modified"):
            validators["If-Modified-Since"] = modified
        if validators:
            self._validators[key] = validators
