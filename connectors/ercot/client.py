"""The live ERCOT client: lists and downloads report documents, and reads the fuel-mix dashboard.

Thin on purpose: HTTP through connectors.http (one retry, back-off and timeout policy, a rate
limiter per host); the bytes it yields are exactly what connectors.ercot.parse reads.

Without credentials documents come from MIS, which lists only the recent postings of a report
(days; MIS trims older ones). With the public API's credentials (username and password for the
id token, plus the subscription key) they come from the API archive, which reaches back years.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.ercot import feeds
from connectors.ercot.timelabels import TZ, in_repeated_hour, posting_stamp
from connectors.errors import FetchError, NoDataError
from connectors.http import HttpFetcher, RateLimiter, RetryPolicy
from schemas.catalog import Dataset
from schemas.timeutil import local_day, local_midnight_utc, wall_to_utc

Payload = tuple[str, bytes]  # (response name, raw bytes)


@dataclass(frozen=True)
class Posting:
    """One listed document: where to download it and the name its bytes travel under."""

    name: str  # carries the local posting stamp the parser reads the revision from
    posted_utc: datetime
    url: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Credentials:
    """The public API's: username and password for the id token, and the subscription key."""

    username: SecretStr
    password: SecretStr
    subscription_key: SecretStr


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ErcotClient:
    """Fetches ERCOT responses for a dataset and a UTC window.

    Credentials are optional: all three (username, password, subscription key) switch document
    listing and download from MIS to the public API archive.
    """

    def __init__(
        self,
        *,
        username: SecretStr | str | None = None,
        password: SecretStr | None = None,
        subscription_key: SecretStr | None = None,
        include_forecast: bool = False,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        mis_min_interval_s: float = feeds.MIS_MIN_INTERVAL_S,
        api_min_interval_s: float = feeds.API_MIN_INTERVAL_S,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._credentials: Credentials | None = None
        if username is not None and password is not None and subscription_key is not None:
            name = SecretStr(username) if isinstance(username, str) else username
            self._credentials = Credentials(name, password, subscription_key)
        elif username is not None or password is not None or subscription_key is not None:
            raise ValueError("the ERCOT API needs username, password and subscription key")
        self.include_forecast = include_forecast
        self._policy = policy or RetryPolicy()
        self._transport = transport
        self._clock = clock
        self._mis = HttpFetcher(
            policy=self._policy, limiter=RateLimiter(mis_min_interval_s), transport=transport
        )
        self._api_limiter = RateLimiter(api_min_interval_s)
        self._api: HttpFetcher | None = None
        self._token_renew_at = datetime.min.replace(tzinfo=UTC)

    @property
    def uses_api(self) -> bool:
        """Whether documents come from the public API archive (credentials given) or MIS."""
        return self._credentials is not None

    def close(self) -> None:
        self._mis.close()
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> ErcotClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(self, dataset: Dataset, start_utc: datetime, end_utc: datetime) -> Iterator[Payload]:
        """(response name, raw bytes) of every ERCOT document about [start_utc, end_utc).

        Feeds: NP4-190-CD (lmp_da_hourly), NP6-905-CD (lmp_rt_15min), NP6-788-CD (lmp_rt_5min),
        NP4-188-CD (as_prices), NP6-345-CD and, with include_forecast, the NP3-561-CD forecasts
        issued in the window (load); the fuel-mix dashboard (fuel_mix). Reach: MIS keeps days of
        postings, the API archive years; the dashboard holds yesterday and today only.
        Documents are chosen by posting time, so neighbouring intervals may come along.
        Raises NoDataError when ERCOT lists nothing for the window.
        """
        if start_utc.tzinfo is None or end_utc.tzinfo is None or not start_utc < end_utc:
            raise ValueError(f"not a UTC window: {start_utc} .. {end_utc}")
        if dataset is Dataset.FUEL_MIX:
            yield self.fuel_mix(start_utc, end_utc)
            return
        report = feeds.REPORTS.get(dataset)
        if report is None:
            raise ValueError(f"ERCOT publishes no {dataset.value} dataset")
        reports = [report]
        if dataset is Dataset.LOAD and self.include_forecast:
            reports.append(feeds.LOAD_FORECAST)
        found = False
        for each in reports:
            for posting in self.postings(each, start_utc, end_utc):
                found = True
                yield posting.name, self.download(posting)
        if not found:
            where = "the API archive" if self.uses_api else "MIS (recent postings only)"
            raise NoDataError(
                f"{report.emil_id}: {where} lists no document for {start_utc} .. {end_utc}"
            )

    def postings(
        self, report: feeds.Report, start_utc: datetime, end_utc: datetime
    ) -> list[Posting]:
        """The report's documents posted in the window widened by its posting lag, oldest first.

        Feed: the API archive listing (`/archive/<emil id>`, paged; reaches back years) with
        credentials, else the MIS document list (`IceDocListJsonWS`; recent days only).
        """
        low = start_utc - report.posted_before
        high = end_utc + report.posted_after
        if self._credentials is None:
            found = self._mis_postings(report)
        else:
            found = self._api_postings(self._api_fetcher(self._credentials), report, low, high)
        return sorted(
            (p for p in found if low <= p.posted_utc < high), key=lambda p: (p.posted_utc, p.name)
        )

    def download(self, posting: Posting) -> bytes:
        """The bytes of one listed document (an MIS or API download: a zip holding its CSV).
        Reach: whatever the listing that named it holds."""
        fetcher = self._mis if self._credentials is None else self._api_fetcher(self._credentials)
        return self._get(fetcher, posting.url, dict(posting.params)).content

    def fuel_mix(self, start_utc: datetime, end_utc: datetime) -> Payload:
        """The fuel-mix dashboard JSON (5-minute generation by fuel). Reach: the previous and the
        current operating day only; an older window raises NoDataError."""
        now = self._clock()
        reach = local_midnight_utc(feeds.ISO, local_day(feeds.ISO, now) - timedelta(days=1))
        if end_utc <= reach:
            raise NoDataError(
                f"the fuel-mix dashboard holds data from {reach:%Y-%m-%d %H:%M} UTC only; "
                f"nothing for {start_utc} .. {end_utc}"
            )
        response = self._get(self._mis, feeds.FUEL_MIX_URL, None)
        return f"fuel-mix_{now:%Y%m%dT%H%M%SZ}.json", response.content

    # --- MIS ----------------------------------------------------------------------------------

    def _mis_postings(self, report: feeds.Report) -> list[Posting]:
        listing = self._get(self._mis, feeds.MIS_LIST_URL, {"reportTypeId": report.report_type_id})
        try:
            entries = _json(listing)["ListDocsByRptTypeRes"]["DocumentList"]
            documents = [entry["Document"] for entry in entries]
            return [
                Posting(
                    name=doc["ConstructedName"],
                    posted_utc=datetime.fromisoformat(doc["PublishDate"]).astimezone(UTC),
                    url=feeds.MIS_DOWNLOAD_URL,
                    params=(("doclookupId", str(doc["DocID"])),),
                )
                for doc in documents
                if "_csv" in str(doc.get("ConstructedName", "")).lower()
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise FetchError(f"{report.emil_id}: unexpected MIS document list ({exc!r})") from exc

    # --- public API ---------------------------------------------------------------------------

    def _api_postings(
        self, fetcher: HttpFetcher, report: feeds.Report, low: datetime, high: datetime
    ) -> list[Posting]:
        # The listing speaks Central local time without an offset: widen by an hour each side
        # so that the fall-back hour cannot hide a posting, then filter on UTC.
        window = {
            "postDatetimeFrom": _local_text(low - timedelta(hours=1)),
            "postDatetimeTo": _local_text(high + timedelta(hours=1)),
            "size": str(feeds.API_PAGE_SIZE),
        }
        found: list[Posting] = []
        page, pages = 1, 1
        while page <= pages:
            body = _json(self._get(fetcher, report.archive_url, {**window, "page": str(page)}))
            try:
                pages = int(body["_meta"]["totalPages"])
                found += [self._api_posting(report, item) for item in body.get("archives") or []]
            except (KeyError, TypeError, ValueError) as exc:
                raise FetchError(f"{report.emil_id}: unexpected archive listing ({exc!r})") from exc
            page += 1
        return found

    @staticmethod
    def _api_posting(report: feeds.Report, item: dict[str, Any]) -> Posting:
        posted = wall_to_utc(TZ, datetime.fromisoformat(item["postDatetime"]))
        marker = "xhr" if in_repeated_hour(posted) else ""
        doc_id = str(item["docId"])
        friendly = str(item.get("friendlyName") or report.doc_name)
        return Posting(
            name=f"{report.emil_id.lower()}.{doc_id}.{posting_stamp(posted)}.{friendly}{marker}.zip",
            posted_utc=posted,
            url=report.archive_url,
            params=(("download", doc_id),),
        )

    def _api_fetcher(self, credentials: Credentials) -> HttpFetcher:
        """The API fetcher, signed in with a fresh id token (renewed before it expires)."""
        now = self._clock()
        if self._api is None or now >= self._token_renew_at:
            token, lifetime_s = self._sign_in(credentials)
            if self._api is not None:
                self._api.close()
            self._api = HttpFetcher(
                policy=self._policy,
                limiter=self._api_limiter,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Ocp-Apim-Subscription-Key": credentials.subscription_key.get_secret_value(),
                },
                transport=self._transport,
            )
            self._token_renew_at = now + timedelta(seconds=max(lifetime_s - 300, 60))
        return self._api

    def _sign_in(self, credentials: Credentials) -> tuple[str, int]:
        """(id token, lifetime in seconds) from ERCOT's Azure B2C sign-in (password grant).

        One POST, no retry loop of its own: connectors.http.HttpFetcher only GETs. A failure
        raises FetchError without echoing the credentials.
        """
        form = {
            "username": credentials.username.get_secret_value(),
            "password": credentials.password.get_secret_value(),
            "grant_type": "password",
            "scope": f"openid {feeds.SIGN_IN_CLIENT_ID} offline_access",
            "client_id": feeds.SIGN_IN_CLIENT_ID,
            "response_type": "id_token",
        }
        timeout = httpx.Timeout(self._policy.read_timeout_s, connect=self._policy.connect_timeout_s)
        try:
            with httpx.Client(transport=self._transport, timeout=timeout) as client:
                response = client.post(feeds.SIGN_IN_URL, data=form)
        except httpx.HTTPError as exc:
            raise FetchError(f"ERCOT sign-in failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise FetchError(f"ERCOT sign-in refused: HTTP {response.status_code}")
        body = _json(response)
        token = body.get("id_token") or body.get("access_token")
        if not isinstance(token, str):
            raise FetchError("ERCOT sign-in answered without an id token")
        try:
            lifetime = int(body.get("expires_in", feeds.ID_TOKEN_LIFETIME_S))
        except (TypeError, ValueError):
            lifetime = feeds.ID_TOKEN_LIFETIME_S
        return token, lifetime

    @staticmethod
    def _get(fetcher: HttpFetcher, url: str, params: dict[str, Any] | None) -> httpx.Response:
        response = fetcher.get(url, params=params)
        if response is None:  # only conditional requests answer None; these are not
            raise FetchError(f"GET {url}: no response")
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise FetchError(f"GET {response.request.url}: not JSON ({exc})") from None


def _local_text(instant: datetime) -> str:
    return f"{instant.astimezone(TZ):%Y-%m-%dT%H:%M:%S}"


def from_credentials(
    username: str | SecretStr | None = None,
    password: SecretStr | None = None,
    subscription_key: SecretStr | None = None,
) -> ErcotClient:
    """The live client with the public API's credentials (the API archive, reaching back years),
    or MIS (recent postings only) where they are not all given."""
    if username is None or password is None or subscription_key is None:
        return ErcotClient()
    return ErcotClient(username=username, password=password, subscription_key=subscription_key)
