"""`optibid smoke URL`: the checks a deployment runs against the API it has just rolled out.

Without credentials: the process answers (`/health`), its servers are reachable (`/ready`),
metrics are served, the signing keys are published, the dashboard loads, every answer carries
the security headers, and market data refuses a request without credentials (401, a problem
document). With an API key (`--api-key` or OPTIBID_SMOKE_API_KEY): the latest prices of every
ISO are served, and every ISO's freshest dataset ran within `max_age` (a pipeline that stopped
feeding is a failed deployment even when the API itself is fine).

Each check is independent and timed; the command prints a table, then one JSON line, and
exits 1 when any check failed, so a deployment script can roll back on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

ISOS = ("PJM", "CAISO", "ERCOT")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


class CheckError(Exception):
    """A check's failure, in words."""


def stale_isos(
    rows: Iterable[Mapping[str, Any]], now: datetime, max_age: timedelta, isos: Sequence[str]
) -> dict[str, str]:
    """ISOs whose freshest dataset finished its last run longer than `max_age` ago (or never
    ran), with why; empty when every ISO is fresh."""
    latest: dict[str, datetime] = {}
    for row in rows:
        finished = datetime.fromisoformat(str(row["last_run_finished_utc"]).replace("Z", "+00:00"))
        iso = str(row["iso"]).upper()
        if iso not in latest or finished > latest[iso]:
            latest[iso] = finished
    out = {}
    for iso in isos:
        if iso not in latest:
            out[iso] = "no connector run recorded"
        elif now - latest[iso] > max_age:
            age = (now - latest[iso]).total_seconds() / 60
            out[iso] = (
                f"last run {age:,.0f} min ago (more than {max_age.total_seconds() / 60:,.0f})"
            )
    return out


def missing_security_headers(headers: Mapping[str, str]) -> list[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return [f"{k}: {v}" for k, v in SECURITY_HEADERS.items() if lowered.get(k) != v]


class Smoke:
    """The checks against one deployment's base URL."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        max_age: timedelta = timedelta(hours=1),
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.max_age = max_age
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.get(path, **kwargs)
        except httpx.HTTPError as exc:
            raise CheckError(f"GET {path}: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _status(response: httpx.Response, want: int) -> None:
        if response.status_code != want:
            raise CheckError(
                f"GET {response.request.url.path}: {response.status_code}, not {want}:"
                f" {response.text[:200]}"
            )

    def health(self) -> str:
        response = self._get("/health")
        self._status(response, 200)
        missing = missing_security_headers(response.headers)
        if missing:
            raise CheckError(f"security headers missing or wrong: {', '.join(missing)}")
        return "up, security headers present"

    def ready(self) -> str:
        response = self._get("/ready")
        self._status(response, 200)
        return "its servers answer"

    def metrics(self) -> str:
        response = self._get("/metrics")
        self._status(response, 200)
        if "optibid_api_requests_total" not in response.text:
            raise CheckError("/metrics has no optibid_api_requests_total")
        return f"{len(response.text.splitlines()):,} lines"

    def jwks(self) -> str:
        response = self._get("/.well-known/jwks.json")
        self._status(response, 200)
        keys = response.json().get("keys")
        if not isinstance(keys, list):
            raise CheckError("/.well-known/jwks.json has no key list")
        return f"{len(keys)} signing keys"

    def dashboard(self) -> str:
        response = self._get("/dashboard/")
        self._status(response, 200)
        if "text/html" not in response.headers.get("content-type", ""):
            raise CheckError(f"/dashboard/ is {response.headers.get('content-type')}, not HTML")
        return "served"

    def refuses_anonymous(self) -> str:
        response = self._get("/v1/lmp/latest")
        self._status(response, 401)
        if not response.headers.get("content-type", "").startswith("application/problem+json"):
            raise CheckError("a refusal without credentials is not a problem document")
        return "401 without credentials"

    def latest_prices(self) -> str:
        assert self.api_key is not None
        counts = {}
        for iso in ISOS:
            response = self._get(
                "/v1/lmp/latest", params={"iso": iso}, headers={"X-API-Key": self.api_key}
            )
            self._status(response, 200)
            counts[iso] = len(response.json().get("data", []))
        empty = [iso for iso, n in counts.items() if n == 0]
        if empty:
            raise CheckError(f"no latest prices of {', '.join(empty)}")
        return ", ".join(f"{iso} {n:,}" for iso, n in counts.items())

    def freshness(self) -> str:
        assert self.api_key is not None
        response = self._get("/v1/quality/freshness", headers={"X-API-Key": self.api_key})
        self._status(response, 200)
        stale = stale_isos(response.json().get("data", []), datetime.now(UTC), self.max_age, ISOS)
        if stale:
            raise CheckError("; ".join(f"{iso}: {why}" for iso, why in stale.items()))
        return f"every ISO ran within {self.max_age.total_seconds() / 60:,.0f} min"

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        out: list[tuple[str, Callable[[], str]]] = [
            ("health", self.health),
            ("ready", self.ready),
            ("metrics", self.metrics),
            ("signing keys", self.jwks),
            ("dashboard", self.dashboard),
            ("credentials required", self.refuses_anonymous),
        ]
        if self.api_key:
            out += [("latest prices", self.latest_prices), ("freshness", self.freshness)]
        return out

    def run(self) -> list[Check]:
        results = []
        for name, check in self.checks():
            began = time.perf_counter()
            try:
                detail, ok = check(), True
            except CheckError as exc:
                detail, ok = str(exc), False
            except ValueError as exc:  # an answer that is not the JSON it should be
                detail, ok = f"unreadable answer: {exc}", False
            results.append(Check(name, ok, detail, (time.perf_counter() - began) * 1000))
        return results
