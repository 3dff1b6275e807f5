"""The live CAISO client: builds OASIS and Today's Outlook requests for a window and yields the
raw responses, exactly the bytes connectors.caiso.parse reads. All HTTP goes through the shared
HttpFetcher policy; this module only decides what to ask for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import structlog

from connectors.caiso.feeds import (
    FEEDS,
    ISO,
    OASIS_NODES_PER_REQUEST,
    OASIS_RESULT_CSV,
    OASIS_SECONDS_PER_REQUEST,
    OASIS_TIME_FORMAT,
    OASIS_URL,
    OUTLOOK_CURRENT_URL,
    OUTLOOK_HISTORY_URL,
    OUTLOOK_SECONDS_PER_REQUEST,
    TRADING_HUBS,
    OasisQuery,
    OutlookFile,
)
from connectors.caiso.oasis import error_document
from connectors.errors import FetchError, NoDataError
from connectors.http import HttpFetcher, RateLimiter
from connectors.simulate import Payload
from schemas.catalog import Dataset
from schemas.timeutil import floor_to, local_day

log = structlog.get_logger(__name__)

ALL_NODES = "ALL"  # OASIS grp_type: every pricing node
ALL_AP_NODES = "ALL_APNODES"  # OASIS grp_type: every aggregated pricing node


class CaisoClient:
    """CAISO OASIS (SingleZip CSV) and Today's Outlook, one request at a time.

    `nodes` are the pricing nodes asked for LMPs (default: the three trading hubs), paged
    OASIS_NODES_PER_REQUEST to a request; ALL_NODES or ALL_AP_NODES ask for every node with
    OASIS's shorter windows. Both services are public, so the client takes no credentials.
    `oasis` and `outlook` are the HTTP fetchers (default: the shared policy with CAISO's rate
    limits); `clock` tells which Pacific day is today (its Outlook file has another URL).
    """

    def __init__(
        self,
        *,
        nodes: Sequence[str] | str = TRADING_HUBS,
        oasis: HttpFetcher | None = None,
        outlook: HttpFetcher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.nodes = nodes
        self.oasis = oasis or HttpFetcher(limiter=RateLimiter(OASIS_SECONDS_PER_REQUEST))
        self.outlook = outlook or HttpFetcher(limiter=RateLimiter(OUTLOOK_SECONDS_PER_REQUEST))
        self._clock = clock

    def close(self) -> None:
        self.oasis.close()
        self.outlook.close()

    def fetch(self, dataset: Dataset, start_utc: datetime, end_utc: datetime) -> Iterator[Payload]:
        """(name, bytes) responses covering [start_utc, end_utc) of one CAISO dataset.

        Upstream feeds and reach:
        - lmp_da_hourly: OASIS PRC_LMP (DAM); lmp_rt_15min: PRC_RTPD_LMP (RTPD); lmp_rt_5min:
          PRC_INTVL_LMP (RTM); as_prices: PRC_AS (DAM) then PRC_INTVL_AS (RTM); load: SLD_FCST
          (actual and forecasts) then Today's Outlook demand.csv; fuel_mix: Today's Outlook
          fuelsource.csv.
        - OASIS keeps about 39 months online; Today's Outlook daily files reach back to mid-2018.

        Windows longer than a query allows are split (feeds.OasisQuery.window). A request OASIS
        answers with "no data" (ERR_CODE 1000) yields nothing; if no request of the window had
        data, NoDataError is raised. Any other OASIS error code raises FetchError.
        """
        if end_utc <= start_utc:
            return
        answered = no_data = 0
        for feed in FEEDS[dataset]:
            responses = (
                self._oasis_responses(feed, start_utc, end_utc)
                if isinstance(feed, OasisQuery)
                else self._outlook_responses(feed, start_utc, end_utc)
            )
            for response in responses:
                if response is None:
                    no_data += 1
                    continue
                answered += 1
                yield response
        if not answered and no_data:
            raise NoDataError(
                f"CAISO {dataset.value}: no data for {start_utc:%Y-%m-%dT%H:%MZ}"
                f" to {end_utc:%Y-%m-%dT%H:%MZ}"
            )

    # OASIS ---------------------------------------------------------------------------------

    def oasis_requests(
        self, query: OasisQuery, start_utc: datetime, end_utc: datetime
    ) -> list[dict[str, str]]:
        """The query parameters of every OASIS request for the window (windows, node pages)."""
        every_node = isinstance(self.nodes, str)
        window = query.window_all if query.by_node and every_node else query.window
        start = floor_to(start_utc, query.minutes)
        end = floor_to(end_utc - timedelta(microseconds=1), query.minutes) + timedelta(
            minutes=query.minutes
        )
        pages: list[dict[str, str]] = [{}]
        if query.by_node:
            if isinstance(self.nodes, str):
                pages = [{"grp_type": self.nodes}]
            else:
                nodes = list(self.nodes)
                pages = [
                    {"node": ",".join(nodes[i : i + OASIS_NODES_PER_REQUEST])}
                    for i in range(0, len(nodes), OASIS_NODES_PER_REQUEST)
                ]
        elif query.dataset is Dataset.AS_PRICES:
            pages = [{"anc_type": "ALL", "anc_region": "ALL"}]
        requests = []
        lo = start
        while lo < end:
            hi = min(lo + window, end)
            for page in pages:
                params = {
                    "queryname": query.queryname,
                    "startdatetime": lo.strftime(OASIS_TIME_FORMAT),
                    "enddatetime": hi.strftime(OASIS_TIME_FORMAT),
                    "version": str(query.version),
                    "resultformat": str(OASIS_RESULT_CSV),
                    **page,
                }
                if query.market_run_id:
                    params["market_run_id"] = query.market_run_id
                requests.append(params)
            lo = hi
        return requests

    def _oasis_responses(
        self, query: OasisQuery, start_utc: datetime, end_utc: datetime
    ) -> Iterator[Payload | None]:
        for params in self.oasis_requests(query, start_utc, end_utc):
            response = self.oasis.get(OASIS_URL, params=params)
            if response is None:  # only conditional requests answer None
                continue
            data = response.content
            name = _attachment_name(response.headers.get("Content-Disposition")) or (
                f"caiso_{query.queryname}_{query.market_run_id or 'ALL'}_"
                f"{params['startdatetime'][:14].replace(':', '')}Z_"
                f"{params['enddatetime'][:14].replace(':', '')}Z.zip"
            )
            error = error_document(data)
            if error is not None:
                code, description = error
                if code == "1000":
                    log.info("caiso.no_data", query=query.queryname, params=params)
                    yield None
                    continue
                raise FetchError(
                    f"OASIS {query.queryname} {params['startdatetime']}..{params['enddatetime']}:"
                    f" ERR_CODE {code}: {description}"
                )
            yield name, data

    # Today's Outlook -------------------------------------------------------------------------

    def outlook_days(self, start_utc: datetime, end_utc: datetime) -> list[date]:
        """The Pacific days whose files hold the window, up to today (no file is ahead)."""
        today = local_day(ISO, self._clock())
        first = local_day(ISO, start_utc)
        last = min(local_day(ISO, end_utc - timedelta(microseconds=1)), today)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def _outlook_responses(
        self, feed: OutlookFile, start_utc: datetime, end_utc: datetime
    ) -> Iterator[Payload | None]:
        today = local_day(ISO, self._clock())
        for day in self.outlook_days(start_utc, end_utc):
            url = (
                OUTLOOK_CURRENT_URL.format(file=feed.file)
                if day == today
                else OUTLOOK_HISTORY_URL.format(day=f"{day:%Y%m%d}", file=feed.file)
            )
            response = self.outlook.get(url)
            if response is None:
                continue
            published = _published_stamp(response.headers.get("Last-Modified"))
            name = f"caiso_outlook_{day:%Y%m%d}_{feed.file}{published}.csv"
            yield name, response.content


def _attachment_name(disposition: str | None) -> str | None:
    """The file name of a Content-Disposition header ("attachment; filename=x.zip")."""
    if not disposition:
        return None
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return value.strip().strip('"')
    return None


def _published_stamp(last_modified: str | None) -> str:
    """ "_pubYYYYMMDDTHHMMSSZ" from a Last-Modified header, the Outlook file's publish time."""
    if not last_modified:
        return ""
    try:
        when = parsedate_to_datetime(last_modified).astimezone(UTC)
    except (TypeError, ValueError):
        return ""
    return f"_pub{when:%Y%m%dT%H%M%SZ}"


def from_credentials() -> CaisoClient:
    """The live client for every CAISO dataset: OASIS (PRC_LMP, PRC_RTPD_LMP, PRC_INTVL_LMP,
    PRC_AS, PRC_INTVL_AS, SLD_FCST; about 39 months back) and Today's Outlook (fuelsource.csv,
    demand.csv; back to mid-2018). Both are public: there are no credentials to pass."""
    return CaisoClient()
