"""Tiers, rate limits, quotas and usage metering, as the API applies them.

Every market-data request passes `Metering.admit` after its principal is known (the routes'
`require(Permission.MARKET_READ)` and the hot path call it):

1. The organisation's tier, from the account read model (`identity_accounts`; no row: free),
   remembered per process for TIER_TTL_S. While PostgreSQL is down the last tier read stands
   (for up to STALE_S), else the free tier's rules apply.
2. The tier's rights: the dataset of the route (`billing.tiers.Tier.datasets`), live updates
   (`sse`); CSV export and how far back history reaches are checked by the history routes
   (`check_history`). A right the tier lacks is a 403 problem naming the tier that has it.
3. The rate limits: GCRA per principal (API key or user) and per organisation at once, in
   one Lua script on Redis's clock (`billing.ratelimit`). Refused: 429 with Retry-After,
   RateLimit-Policy and RateLimit; allowed: the same fields on the answer. Redis down: the
   tier decides (`Tier.redis_down`: Free and Starter refused with 503, Professional and
   Enterprise served unmetered).
4. The monthly row quota (calendar month, UTC): rows served this month from the usage read
   model (`usage_windows`, folded from the meter's windows), remembered for USED_TTL_S. Used
   up: 429 problem+json with `quota`, `limit`, `used`, `resets_at` and `upgrade`. The read
   model trails the requests by about one metering window, so an organisation can go past
   its quota by what it reads in that time; the meter counts every row all the same.

After the answer, `api.middleware.Edge` hands one RequestServed record per request that had a
principal to `UsagePublisher`, which encodes and produces them on a thread of its own
(`usage.requests`, keyed by organisation). Its buffer is bounded (BUFFER_RECORDS): while
Kafka is away for longer than the buffer lasts, the oldest records are dropped and counted
(`optibid_api_usage_dropped_total`), never the request's answer delayed.
"""

from __future__ import annotations

import calendar
import collections
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
import structlog
from confluent_kafka import KafkaException, Producer
from fastapi import Request
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, TtlCache
from api.problems import ProblemError
from api.resp import Command, RespClient
from billing import ratelimit
from billing.ratelimit import RateLimiter
from billing.tiers import ANCILLARY_PRICES, FUEL_MIX, KPIS, LMP, LOAD, TIERS, Tier
from projections import identity_reads, usage_reads
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.envelope import envelope
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

SCOPE_KEY = "optibid.served"  # where a request's Served rides in its ASGI scope
BEGAN_KEY = "optibid.began"  # when the edge (api.middleware.Edge) took the request
DEFER_KEY = "optibid.defer_limit"  # set by the hot path: its endpoints call `limited_read`
TIER_TTL_S = 5.0
USED_TTL_S = 5.0
STALE_S = 900.0
BUFFER_RECORDS = 100_000
UPGRADE_PATH = "/dashboard/#/billing"

# the dataset each market route reads, by path template
DATASET_OF_ROUTE: dict[str, str] = {
    "/v1/lmp": LMP,
    "/v1/lmp/latest": LMP,
    "/v1/load": LOAD,
    "/v1/fuel-mix": FUEL_MIX,
    "/v1/ancillary-prices": ANCILLARY_PRICES,
    "/v1/kpis": KPIS,
    "/v1/kpis/latest": KPIS,
}
LIVE_ROUTE = "/v1/live"

REFUSED = Counter(
    "optibid_api_limited_total",
    "Requests refused by a tier's rules, by reason",
    ["reason"],  # rate_limited, quota_exhausted, tier_dataset, tier_sse, tier_csv,
    # tier_history, limiter_unavailable
)
UNMETERED = Counter(
    "optibid_api_unmetered_total", "Requests served without a rate-limit count (Redis down)"
)
PUBLISHED = Counter("optibid_api_usage_records_total", "Usage records handed to Kafka")
DROPPED = Counter(
    "optibid_api_usage_dropped_total", "Usage records dropped: the buffer was full (Kafka away)"
)


@dataclass
class Served:
    """What one admitted request is, and what it did: the makings of its usage record."""

    principal: Principal
    tier: Tier
    route: str
    dataset: str | None
    began: float
    enforced: bool = True  # the tier's rules apply (OPTIBID_RATE_LIMITS)
    method: str = "GET"
    defer: bool = False  # the endpoint sends the rate-limit check with its own Redis read
    pending: list[ratelimit.Limit] | None = None  # that check, not yet sent
    rows: int = 0
    dry_run: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def route_of(request: Request) -> str:
    """The path template of the request's route (the hot path's own path)."""
    hot = request.scope.get("hot_path")
    if hot is not None:
        return str(hot)
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def served_of(request: Request) -> Served | None:
    served = request.scope.get(SCOPE_KEY)
    return served if isinstance(served, Served) else None


def month_of(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) around `now`: [start, end)."""
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert (end - start).days == days
    return start, end


def upgrade_to(tier: Tier, wants: Callable[[Tier], bool]) -> str | None:
    """The first tier above `tier` for which `wants` holds."""
    names = list(TIERS)
    for name in names[names.index(tier.name) + 1 :]:
        if wants(TIERS[name]):
            return name
    return None


def _tier_refusal(tier: Tier, what: str, code: str, wants: Callable[[Tier], bool]) -> ProblemError:
    REFUSED.labels(code).inc()
    better = upgrade_to(tier, wants)
    hint = f"; the {better} tier includes it" if better else ""
    return ProblemError(
        403,
        "Not in your plan",
        f"the {tier.name} tier does not include {what}{hint}",
        code=code,
        extra={"tier": tier.name, "upgrade_to": better, "upgrade": UPGRADE_PATH},
    )


class Metering:
    """One API process's tiers, limits, quota checks and usage records."""

    def __init__(
        self,
        pool: Any,
        schema: str,
        limiter: RateLimiter,
        *,
        enabled: bool = True,
        publisher: UsagePublisher | None = None,
        resp: RespClient | None = None,
    ) -> None:
        self.pool, self.schema = pool, schema
        self.limiter = limiter
        self.resp = resp  # the hot path's pipelining client (api.resp), else redis-py
        self.enabled = enabled
        self.publisher = publisher
        self._tiers: TtlCache[str, str] = TtlCache(TIER_TTL_S, 4096, "tier")
        self._used: TtlCache[str, int] = TtlCache(USED_TTL_S, 4096, "usage")

    # the tier

    def _tier_now(self, org_id: str) -> Tier:
        """The organisation's tier: remembered, else read (on the caller's thread); while
        PostgreSQL does not answer, the last one read within STALE_S, else free."""
        name = self._tiers.get(org_id)
        if name is None:
            try:
                name = self._read_tier(org_id)
            except psycopg.Error as exc:
                stale = self._tiers.stale(org_id, STALE_S)
                log.warning("api.tier_unread", org_id=org_id, error=str(exc), stale=stale)
                return TIERS[stale or "free"]
            self._tiers.put(org_id, name)
        return TIERS.get(name, TIERS["free"])

    def _read_tier(self, org_id: str) -> str:
        with self.pool.connection() as conn:
            return str(identity_reads.account(conn, self.schema, org_id)["tier"])

    def forget(self, org_id: str | None = None) -> None:
        """Read the tier (and usage) again at the next request: after a tier change here."""
        if org_id is None:
            self._tiers.clear()
            self._used.clear()
        else:
            self._tiers.drop(org_id)
            self._used.drop(org_id)

    # usage this month

    async def used_rows(self, org_id: str, now: datetime) -> int:
        """`used_rows_now`, read on a worker thread when not remembered."""
        used = self._used.get(org_id)
        if used is not None:
            return used
        return await run_in_threadpool(self.used_rows_now, org_id, now)

    def used_rows_now(self, org_id: str, now: datetime) -> int:
        """Rows served this month: remembered, else read (on the caller's thread); while
        PostgreSQL does not answer, the last count read within STALE_S, else 0."""
        used = self._used.get(org_id)
        if used is None:
            try:
                used = self._read_used(org_id, now)
            except psycopg.Error as exc:
                log.warning("api.usage_unread", org_id=org_id, error=str(exc))
                return self._used.stale(org_id, STALE_S) or 0
            self._used.put(org_id, used)
        return used

    def _read_used(self, org_id: str, now: datetime) -> int:
        start, end = month_of(now)
        with self.pool.connection() as conn:
            return int(usage_reads.totals(conn, self.schema, org_id, start, end).rows)

    def quota(self, tier: Tier, used: int, now: datetime) -> dict[str, Any]:
        """The monthly row quota as `/v1/usage` and a dry run report it."""
        start, end = month_of(now)
        limit = tier.monthly_row_quota
        return {
            "quota": "monthly_rows",
            "limit": limit,
            "used": used,
            "remaining": None if limit is None else max(limit - used, 0),
            "period_start_utc": start.isoformat().replace("+00:00", "Z"),
            "resets_at": end.isoformat().replace("+00:00", "Z"),
        }

    # admission

    async def admit(self, request: Request, principal: Principal) -> Served:
        """Check a market-data request against its organisation's tier (see the module doc);
        the Served it is metered as, also left in its scope. Raises the refusal."""
        began = request.scope.get(BEGAN_KEY) or time.perf_counter()
        cached = self._tiers.get(principal.org_id)  # the hot path: no coroutine for a hit
        if cached in TIERS:
            tier = TIERS[cached]
        else:
            tier = await run_in_threadpool(self._tier_now, principal.org_id)
        route = route_of(request)
        dataset = DATASET_OF_ROUTE.get(route)
        served = Served(principal, tier, route, dataset, began, self.enabled, request.method,
                        self.resp is not None and DEFER_KEY in request.scope)  # fmt: skip
        request.scope[SCOPE_KEY] = served
        if not self.enabled:
            return served
        if dataset is not None and not tier.allows_dataset(dataset):
            raise _tier_refusal(
                tier, f"the {dataset} dataset", "tier_dataset", lambda t: t.allows_dataset(dataset)
            )
        if route == LIVE_ROUTE and not tier.sse:
            raise _tier_refusal(tier, "live updates (/v1/live)", "tier_sse", lambda t: t.sse)
        await self._limit(served)
        if tier.monthly_row_quota is not None and dataset is not None:
            now = datetime.now(UTC)
            used = await self.used_rows(principal.org_id, now)
            if used >= tier.monthly_row_quota:
                REFUSED.labels("quota_exhausted").inc()
                quota = self.quota(tier, used, now)
                better = upgrade_to(tier, lambda t: (t.monthly_row_quota or math.inf) > used)
                retry = max(1, math.ceil((month_of(now)[1] - now).total_seconds()))
                raise ProblemError(
                    429,
                    "Quota exhausted",
                    f"the {tier.name} tier's {tier.monthly_row_quota} rows this month are used"
                    f" ({used}); it resets at {quota['resets_at']}"
                    + (f", or upgrade to {better}" if better else ""),
                    code="quota_exhausted",
                    headers={"Retry-After": str(retry)},
                    extra={**quota, "tier": tier.name, "upgrade_to": better,
                           "upgrade": UPGRADE_PATH},
                )  # fmt: skip
        return served

    async def _limit(self, served: Served) -> None:
        principal, tier = served.principal, served.tier
        limits = self.limiter.tier_limits(principal.subject, principal.org_id, tier)
        if served.defer:  # the endpoint sends the check with its own read (`limited_read`)
            served.pending = limits
            return
        try:
            if self.resp is not None:
                decision = await self.limiter.acheck_with(self.resp.execute, limits)
            else:
                decision = await self.limiter.acheck_limits(limits)
        except redis.RedisError as exc:
            self._down(served, exc)
            return
        self._apply(served, decision)

    async def limited_read(self, served: Served | None, *commands: Command) -> list[Any]:
        """The replies of `commands` (to the hot path's Redis), sent in the same round trip as
        the request's deferred rate-limit check, which is then applied: a refusal raises."""
        assert self.resp is not None
        limits = served.pending if served is not None else None
        if served is None or limits is None:
            return await self.resp.execute(*commands)
        served.pending = None
        check = ("EVALSHA", ratelimit.SCRIPT_SHA, *ratelimit.script_arguments(limits, 1))
        try:
            try:
                replies = await self.resp.execute(check, *commands)
            except redis.exceptions.NoScriptError:
                await self.resp.execute(("SCRIPT", "LOAD", ratelimit.SCRIPT))
                replies = await self.resp.execute(check, *commands)
        except redis.RedisError as exc:
            self._down(served, exc)  # refused (503), or served unmetered...
            raise  # ...but the read failed too: the route answers that
        self._apply(served, ratelimit.stricter(limits, replies[0]))
        return replies[1:]

    def _down(self, served: Served, exc: redis.RedisError) -> None:
        """Redis away: the tier decides (served unmetered, or refused with 503)."""
        tier = served.tier
        decision = ratelimit.decide_when_down(tier)
        if decision.allowed:
            UNMETERED.inc()
            return  # served unmetered: no count, so no RateLimit fields to give
        REFUSED.labels("limiter_unavailable").inc()
        raise ProblemError(
            503,
            "Rate limiter unavailable",
            f"requests of the {tier.name} tier cannot be counted while Redis is away"
            f" ({exc}); try again shortly",
            code="limiter_unavailable",
            headers={"Retry-After": str(math.ceil(decision.retry_after_s))},
        ) from None

    def _apply(self, served: Served, decision: ratelimit.Decision) -> None:
        principal, tier = served.principal, served.tier
        fields = ratelimit.headers(decision, f"{tier.name}-{decision.scope}")
        if not decision.allowed:
            REFUSED.labels("rate_limited").inc()
            who = "API key" if principal.kind == "api_key" else "user"
            whose = "this " + who if decision.scope == "key" else "the organisation"
            rate = (
                tier.key_requests_per_minute
                if decision.scope == "key"
                else tier.org_requests_per_minute
            )
            raise ProblemError(
                429,
                "Too many requests",
                f"{whose} is over the {tier.name} tier's rate ({rate}/min, burst {tier.burst});"
                f" retry after {fields['Retry-After']} s",
                code="rate_limited",
                headers=fields,
                extra={"limit_scope": decision.scope, "tier": tier.name},
            )  # fmt: skip
        served.headers = [(k.lower().encode(), v.encode()) for k, v in fields.items()]


def check_history(served: Served | None, start: datetime, csv: bool, now: datetime) -> None:
    """A history request's rights: CSV export, and how far back (403 naming the tier)."""
    if served is None or not served.enforced:
        return
    tier = served.tier
    if csv and not tier.export_csv:
        raise _tier_refusal(tier, "CSV export", "tier_csv", lambda t: t.export_csv)
    if tier.history_days is not None and (now - start).total_seconds() > tier.history_days * 86400:
        days = tier.history_days
        raise _tier_refusal(
            tier,
            f"history older than {days} days (start {start.isoformat()})",
            "tier_history",
            lambda t: t.history_days is None or t.history_days > days,
        )


# --- usage records ---------------------------------------------------------------------------


class UsagePublisher:
    """Usage records to `usage.requests`, from a bounded buffer, on a thread of its own."""

    def __init__(self, bootstrap: str, registry_url: str, topic_prefix: str = "") -> None:
        self.bootstrap, self.registry_url = bootstrap, registry_url
        self.topic = TopicCatalog(topic_prefix).usage("requests")
        self._buffer: collections.deque[tuple[Served, int, int, float]] = collections.deque(
            maxlen=BUFFER_RECORDS
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, served: Served, status: int, size: int, seconds: float) -> None:
        """Called once per answered request: cheap (an append)."""
        if len(self._buffer) == BUFFER_RECORDS:
            DROPPED.inc()
        self._buffer.append((served, status, size, seconds))
        if len(self._buffer) >= 256:
            self._wake.set()

    def _run(self) -> None:
        producer: Producer | None = None
        encode: Callable[[dict[str, Any]], bytes] | None = None
        registry: RegistryClient | None = None
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            if producer is None or encode is None:
                try:
                    registry = RegistryClient(self.registry_url)
                    encode = AvroSerde(registry).encoder(
                        self.topic.subject, self.topic.value_schema
                    )
                    producer = Producer(
                        {
                            **kafka_client.librdkafka(),
                            "bootstrap.servers": self.bootstrap,
                            "enable.idempotence": True,
                            "linger.ms": 50,
                            "compression.type": "lz4",
                        }
                    )
                except Exception as exc:  # the registry away: try again at the next wake
                    log.warning("api.usage_publisher_unavailable", error=str(exc))
                    if registry is not None:
                        registry.close()
                    producer = encode = registry = None
                    self._stop.wait(2.0)
                    continue
            self._drain(producer, encode)
        if producer is not None and encode is not None:
            self._drain(producer, encode)
            producer.flush(5)
        if registry is not None:
            registry.close()

    def _drain(self, producer: Producer, encode: Callable[[dict[str, Any]], bytes]) -> None:
        while self._buffer:
            served, status, size, seconds = self._buffer.popleft()
            record = usage_record(served, status, size, seconds)
            try:
                producer.produce(self.topic.name, encode(record), served.principal.org_id.encode())
            except BufferError:  # librdkafka's queue full: wait for deliveries, once
                producer.poll(0.5)
                try:
                    producer.produce(
                        self.topic.name, encode(record), served.principal.org_id.encode()
                    )
                except (BufferError, KafkaException) as exc:
                    DROPPED.inc()
                    log.warning("api.usage_dropped", error=str(exc))
                    continue
            PUBLISHED.inc()
        producer.poll(0)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Everything put so far produced and delivered (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while self._buffer and time.monotonic() < deadline:
            time.sleep(0.01)
        # the thread's producer flushes at close; deliveries are awaited there

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(15)


def usage_record(served: Served, status: int, size: int, seconds: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    principal = served.principal
    return {
        **envelope(event_id=str(uuid.uuid4()), occurred_at_utc=now, recorded_at_utc=now,
                   source="api"),
        "org_id": principal.org_id,
        "principal_kind": principal.kind,
        "principal_id": principal.subject,
        "method": served.method,
        "route": served.route,
        "dataset": served.dataset,
        "status": status,
        "rows": 0 if served.dry_run else served.rows,
        "bytes": size,
        "latency_seconds": seconds,
        "tier": served.tier.name,
        "dry_run": served.dry_run,
    }  # fmt: skip
