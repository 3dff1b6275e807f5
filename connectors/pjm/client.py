"""The live PJM client: Data Miner 2 JSON pages for a window, through the shared HTTP policy.

It does HTTP and paging only; the pages it yields are exactly what connectors.pjm.parse reads.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from connectors.errors import ConnectorError, FetchError, NoDataError, ParseError
from connectors.http import HttpFetcher, RateLimiter, RetryPolicy
from connectors.pjm.feeds import (
    FEEDS,
    KEY_HEADER,
    NON_MEMBER_REQUESTS_PER_MINUTE,
    PAGE_ROWS,
    RT_FIVEMIN_HRL_LMPS,
    RT_UNVERIFIED_FIVEMIN_LMPS,
    UTC_COLUMN,
    Feed,
)
from connectors.pjm.table import utc_instant
from connectors.simulate import Payload
from connectors.tabular import load_json
from schemas.catalog import Dataset

log = structlog.get_logger(__name__)

PNODE_FEEDS = frozenset({"da_hrl_lmps", "rt_hrl_lmps", "rt_fivemin_hrl_lmps"})
FILTER_FORMAT = "%m/%d/%Y %H:%M"


class _SecretHeaders(dict[str, str]):
    """Request headers whose values never show in a repr (the fetcher is a dataclass)."""

    def __repr__(self) -> str:
        return repr(dict.fromkeys(self, "**********"))


class PjmClient:
    """Data Miner 2 (https://api.pjm.com/api/v1/<feed>) for every PJM dataset.

    `api_key` is the Data Miner subscription key, sent as the Ocp-Apim-Subscription-Key header.
    `requests_per_minute` is the key's allowance (6 for a non-member key, 600 for a member's).
    `pnode_ids` narrows the LMP feeds to those pricing nodes (all nodes when None).
    """

    def __init__(
        self,
        api_key: SecretStr,
        *,
        requests_per_minute: float = NON_MEMBER_REQUESTS_PER_MINUTE,
        pnode_ids: Sequence[int | str] | None = None,
        page_rows: int = PAGE_ROWS,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key.get_secret_value():
            raise ConnectorError("PJM needs a Data Miner 2 subscription key")
        self.pnode_ids = tuple(str(p) for p in pnode_ids) if pnode_ids else None
        self.page_rows = page_rows
        self._http = HttpFetcher(
            policy=policy or RetryPolicy(),
            limiter=RateLimiter(60.0 / requests_per_minute),
            headers=_SecretHeaders({KEY_HEADER: api_key.get_secret_value()}),
            transport=transport,
        )

    def close(self) -> None:
        """Closes the connections to Data Miner."""
        self._http.close()

    def fetch(self, dataset: Dataset, start_utc: datetime, end_utc: datetime) -> Iterator[Payload]:
        """JSON pages of [start_utc, end_utc) of `dataset`, as (name, bytes), from its feeds:

        - lmp_da_hourly: `da_hrl_lmps` (since 2000-06-01; about 2 years with pnode filters);
        - lmp_rt_hourly: `rt_hrl_lmps` (since 1998-04-01; about 2 years with pnode filters);
        - lmp_rt_5min: `rt_fivemin_hrl_lmps` (verified, about 186 days with pnode filters), and
          for the intervals after its last row `rt_unverified_fivemin_lmps` (the latest days);
        - load: `hrl_load_metered` (since 1993) and `inst_load` (about the last 30 days);
        - fuel_mix: `gen_by_fuel` (since 2016-01-01);
        - as_prices: `reserve_market_results` (since 2013-06-14).

        Raises NoDataError when no feed of the dataset has a row in the window, FetchError when
        Data Miner cannot be reached or answers with an error document.
        """
        if start_utc.tzinfo is None or end_utc.tzinfo is None:
            raise ValueError("the window must be given in aware UTC datetimes")
        if not start_utc < end_utc:
            raise ValueError(f"empty window [{start_utc}, {end_utc})")
        if dataset not in FEEDS:
            raise ConnectorError(f"PJM has no dataset {dataset.value}")
        found = 0
        if dataset is Dataset.LMP_RT_5MIN:
            found = yield from self._verified_then_unverified(start_utc, end_utc)
        else:
            for feed in FEEDS[dataset]:
                found += yield from self._feed(feed, start_utc, end_utc)
        if not found:
            feeds = ", ".join(f.name for f in FEEDS[dataset])
            raise NoDataError(f"PJM {feeds}: no rows in [{start_utc}, {end_utc})")

    def _verified_then_unverified(
        self, start: datetime, end: datetime
    ) -> Generator[Payload, None, int]:
        """The verified feed, then the unverified one from the first interval it lacks."""
        latest: list[datetime] = []
        found = yield from self._feed(RT_FIVEMIN_HRL_LMPS, start, end, latest)
        rest = max(latest) + timedelta(minutes=RT_FIVEMIN_HRL_LMPS.minutes) if latest else start
        if rest < end:
            found += yield from self._feed(RT_UNVERIFIED_FIVEMIN_LMPS, rest, end)
        return found

    def _feed(
        self, feed: Feed, start: datetime, end: datetime, latest: list[datetime] | None = None
    ) -> Generator[Payload, None, int]:
        """Every non-empty page of `feed` in [start, end), window by window; the row count.

        Follows each page's `next` link; `totalRows` is only compared, never used to make up
        requests, because Data Miner (and trimmed recordings) can disagree with the rows sent.
        """
        rows = 0
        lo = start
        while lo < end:
            hi = min(lo + feed.window, end)
            name = f"{feed.name}_{lo:%Y%m%dT%H%MZ}_{hi:%Y%m%dT%H%MZ}"
            url: str | None = feed.url
            params: Mapping[str, Any] | None = self.params(feed, lo, hi)
            seen: set[str] = set()
            received, page = 0, 0
            while url is not None:
                response = self._http.get(url, params=params)
                if response is None:  # only conditional requests answer None
                    break
                page += 1
                body = response.content
                items, total, url = self._envelope(body, f"{name}_p{page:03d}.json")
                if items:
                    received += len(items)
                    if latest is not None:
                        latest.append(_latest_start(items, feed))
                    yield f"{name}_p{page:03d}.json", body
                else:
                    url = None  # an empty page ends the listing, whatever its links say
                if url is not None:
                    if url in seen:
                        raise FetchError(f"PJM {feed.name}: the next link repeats {url}")
                    seen.add(url)
                    params = None  # the next link carries the whole query
                if url is None and total is not None and total != received:
                    log.warning(
                        "pjm.total_rows_mismatch",
                        feed=feed.name,
                        total_rows=total,
                        received=received,
                        window=name,
                    )
            rows += received
            lo = hi
        return rows

    def params(self, feed: Feed, start: datetime, end: datetime) -> dict[str, Any]:
        """The query of one window of `feed` (any feed of FEEDS; their reach: see fetch).
        Data Miner's time filters include both ends, so the last minute before `end` closes it;
        feeds stamped early (inst_load) are shifted by their lead."""
        first = start - feed.lead
        last = end - feed.lead - timedelta(minutes=1)
        params: dict[str, Any] = {
            "rowCount": self.page_rows,
            "startRow": 1,
            "sort": feed.time_filter,
            "order": "Asc",
            "fields": ",".join(feed.fields),
            feed.time_filter: f"{first:{FILTER_FORMAT}}to{last:{FILTER_FORMAT}}",
        }
        if self.pnode_ids and feed.name in PNODE_FEEDS:
            params["pnode_id"] = ";".join(self.pnode_ids)
        return params

    @staticmethod
    def _envelope(body: bytes, name: str) -> tuple[list[dict[str, Any]], int | None, str | None]:
        """(items, totalRows, next link) of a page; FetchError for anything but a page."""
        try:
            document = load_json(body, name)
        except ParseError as exc:
            raise FetchError(f"PJM answered something other than a page: {exc}") from exc
        if isinstance(document, dict) and "errors" in document:
            raise FetchError(f"PJM answered an error document: {document['errors']!s:.300}")
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise FetchError(f"PJM answered something other than a page: {body[:300]!r}")
        total = document.get("totalRows")
        links = document.get("links") or []
        following = [
            link.get("href")
            for link in links
            if isinstance(link, dict) and link.get("rel") == "next"
        ]
        next_url = following[0] if following and isinstance(following[0], str) else None
        return document["items"], total if isinstance(total, int) else None, next_url


def _latest_start(items: list[dict[str, Any]], feed: Feed) -> datetime:
    try:
        return max(utc_instant(str(item[UTC_COLUMN])) for item in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise FetchError(f"PJM {feed.name}: a row without a readable {UTC_COLUMN}") from exc


def from_credentials(api_key: SecretStr | None, **options: Any) -> PjmClient:
    """The live client from settings' PJM Data Miner 2 key (feeds and reach: PjmClient.fetch)."""
    if api_key is None:
        raise ConnectorError("PJM needs a Data Miner 2 subscription key (OPTIBID_PJM_API_KEY)")
    return PjmClient(api_key, **options)
