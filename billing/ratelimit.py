"""Rate limits in Redis: GCRA (the generic cell rate algorithm), one atomic Lua script.

GCRA keeps one number per limited key, its theoretical arrival time (TAT): when the caller
would be back to a full allowance. A limit of `rate` requests a minute with a burst of `burst`
spaces requests by the emission interval T = 60 s / rate and lets a caller run ahead of that
schedule by at most `burst` * T. A request costing `cost` moves the TAT to
max(TAT, now) + cost * T and is allowed when the new TAT is within `burst` * T of now. Idle
callers regain their whole burst; steady callers get exactly `rate` a minute.

Everything happens in one Lua script on the Redis server, with the server's clock
(`redis.call('TIME')`): many API processes share one clock and one state, and no
read-modify-write race exists between them. The script checks every key it is given and
writes all of them or none, so `check_both` refuses without consuming the other limit's
allowance. A key lives only as long as its TAT lies in the future (PEXPIRE), so Redis holds
state for active callers only.

The script needs Redis 5 or newer (writes after TIME replicate as effects). `check_both` uses
two keys in one script, which a Redis Cluster would need in one hash slot; OptiBid runs a
single Redis.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from billing.tiers import Tier

# KEYS: the limited keys. ARGV[1]: the cost; then per key its emission interval and its burst,
# interval in microseconds. Returns per key {allowed, remaining, reset_after_us, retry_after_us}
# as the key alone would answer; the keys are written only when every one of them allows.
SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local cost = tonumber(ARGV[1])
local answers = {}
local tats = {}
local all_allowed = true
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local capacity = interval * tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - capacity
  if now >= allow_at then
    answers[i] = {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
  else
    all_allowed = false
    local remaining = math.max(0, math.floor((capacity - (tat - now)) / interval))
    answers[i] = {0, remaining, tat - now, allow_at - now}
  end
  tats[i] = new_tat
end
if all_allowed then
  for i, key in ipairs(KEYS) do
    local ttl_ms = math.max(1, math.ceil((tats[i] - now) / 1000))
    redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl_ms)
  end
end
return answers
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()

DOWN_RETRY_AFTER_S = 5.0  # what a fail-closed tier tells callers while Redis is down
MICROS = 1_000_000


@dataclass(frozen=True)
class Decision:
    """The answer to one request against a limit.

    `limit` is the burst (the most requests allowed at once), `window_s` the seconds in which
    an empty allowance refills to `limit`, `remaining` how many more requests of cost 1 would
    be allowed right now (None: unknown, Redis is down), `reset_after_s` the seconds until the
    allowance is full again, `retry_after_s` the seconds until this request would be allowed
    (0 when it is). `scope` names the limit that answered ("key" or "org" for `check_both`).
    """

    allowed: bool
    limit: int
    remaining: int | None
    reset_after_s: float
    retry_after_s: float
    window_s: int
    scope: str = ""


@dataclass(frozen=True)
class Limit:
    """One GCRA limit on one Redis key."""

    redis_key: str
    rate_per_minute: int
    burst: int
    scope: str = ""

    def __post_init__(self) -> None:
        if self.rate_per_minute < 1 or self.burst < 1:
            raise ValueError("rate_per_minute and burst must be at least 1")

    @property
    def interval_us(self) -> int:
        """The emission interval: microseconds between requests at the sustained rate."""
        return max(1, round(60 * MICROS / self.rate_per_minute))

    @property
    def window_s(self) -> int:
        """Whole seconds for an empty allowance to refill (RateLimit-Policy's `w`)."""
        return max(1, math.ceil(self.burst * 60 / self.rate_per_minute))


def redis_key(namespace: str, key: str) -> str:
    return f"optibid:{namespace}:rl:{key}"


def script_arguments(limits: Sequence[Limit], cost: int) -> list[Any]:
    """SCRIPT's arguments (the key count, keys, then ARGV) for `limits` at `cost`: for callers
    that send it in a pipeline of their own."""
    return _arguments(limits, cost)


def stricter(limits: Sequence[Limit], answer: Any) -> Decision:
    """The one Decision of SCRIPT's `answer` for `limits` (see `script_arguments`)."""
    return _stricter(limits, cast(list[list[int]], answer))


def _arguments(limits: Sequence[Limit], cost: int) -> list[Any]:
    if cost < 1:
        raise ValueError(f"cost must be at least 1, not {cost}")
    if too_small := [lim for lim in limits if cost > lim.burst]:
        raise ValueError(f"cost {cost} exceeds the burst {too_small[0].burst}: never allowed")
    args: list[Any] = [len(limits), *(lim.redis_key for lim in limits), cost]
    for lim in limits:
        args += [lim.interval_us, lim.burst]
    return args


def _decision(limit: Limit, answer: Sequence[int]) -> Decision:
    allowed, remaining, reset_us, retry_us = (int(v) for v in answer)
    return Decision(
        allowed=bool(allowed),
        limit=limit.burst,
        remaining=remaining,
        reset_after_s=reset_us / MICROS,
        retry_after_s=retry_us / MICROS,
        window_s=limit.window_s,
        scope=limit.scope,
    )


def _stricter(limits: Sequence[Limit], answers: Sequence[Sequence[int]]) -> Decision:
    """The one answer for all limits: when any refuses, the refusal asking the longest wait;
    otherwise the allowance with the fewest remaining (then the longest reset)."""
    decisions = [_decision(lim, ans) for lim, ans in zip(limits, answers, strict=True)]
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after_s)
    return min(decisions, key=lambda d: (d.remaining or 0, -d.reset_after_s))


class RateLimiter:
    """GCRA limits in Redis, for sync callers (`check`) and async ones (`acheck`).

    Keys are `optibid:{namespace}:rl:{key}`. Redis errors (redis.RedisError) propagate: the
    caller answers with `decide_when_down(tier)`.
    """

    def __init__(
        self,
        client: redis.Redis,
        async_client: redis.asyncio.Redis | None = None,
        namespace: str = "public",
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.namespace = namespace

    def limit(self, key: str, rate_per_minute: int, burst: int, scope: str = "") -> Limit:
        return Limit(redis_key(self.namespace, key), rate_per_minute, burst, scope)

    def tier_limits(self, key_id: str, org_id: str, tier: Tier) -> list[Limit]:
        """The tier's limits of one API key and of its organisation (one burst for both)."""
        return [
            self.limit(f"key:{key_id}", tier.key_requests_per_minute, tier.burst, "key"),
            self.limit(f"org:{org_id}", tier.org_requests_per_minute, tier.burst, "org"),
        ]

    # sync

    def check(self, key: str, rate_per_minute: int, burst: int, cost: int = 1) -> Decision:
        """Counts one request of `cost` against `key`'s limit, if allowed."""
        return self.check_limits([self.limit(key, rate_per_minute, burst)], cost)

    def check_both(self, key_id: str, org_id: str, tier: Tier, cost: int = 1) -> Decision:
        """Counts one request against the API key's and the organisation's limits of `tier`
        when both allow it, neither otherwise; the stricter answer."""
        return self.check_limits(self.tier_limits(key_id, org_id, tier), cost)

    def check_limits(self, limits: Sequence[Limit], cost: int = 1) -> Decision:
        args = _arguments(limits, cost)
        try:
            answers = self.client.evalsha(SCRIPT_SHA, *args)
        except NoScriptError:  # a restarted or flushed server: load once more
            self.client.script_load(SCRIPT)
            answers = self.client.evalsha(SCRIPT_SHA, *args)
        return _stricter(limits, cast(list[list[int]], answers))

    # async

    async def acheck(self, key: str, rate_per_minute: int, burst: int, cost: int = 1) -> Decision:
        """`check` on the async client."""
        return await self.acheck_limits([self.limit(key, rate_per_minute, burst)], cost)

    async def acheck_both(self, key_id: str, org_id: str, tier: Tier, cost: int = 1) -> Decision:
        """`check_both` on the async client."""
        return await self.acheck_limits(self.tier_limits(key_id, org_id, tier), cost)

    async def acheck_with(
        self,
        execute: Callable[..., Awaitable[list[Any]]],
        limits: Sequence[Limit],
        cost: int = 1,
    ) -> Decision:
        """`acheck_limits` through a pipelining client's `execute(*commands)` that returns the
        replies (the API's hot path, `api.resp`); its errors are redis-py's."""
        args = _arguments(limits, cost)
        try:
            (answers,) = await execute(("EVALSHA", SCRIPT_SHA, *args))
        except NoScriptError:
            await execute(("SCRIPT", "LOAD", SCRIPT))
            (answers,) = await execute(("EVALSHA", SCRIPT_SHA, *args))
        return _stricter(limits, cast(list[list[int]], answers))

    async def acheck_limits(self, limits: Sequence[Limit], cost: int = 1) -> Decision:
        if self.async_client is None:
            raise RuntimeError("this RateLimiter was built without an async Redis client")
        client = self.async_client
        args = _arguments(limits, cost)
        try:
            answers = await client.evalsha(SCRIPT_SHA, *args)
        except NoScriptError:
            await cast(Awaitable[Any], client.script_load(SCRIPT))
            answers = await client.evalsha(SCRIPT_SHA, *args)
        return _stricter(limits, cast(list[list[int]], answers))


def decide_when_down(tier: Tier) -> Decision:
    """The answer while Redis is down, by the tier's policy: "open" allows, remaining unknown;
    "closed" refuses with a retry after DOWN_RETRY_AFTER_S."""
    window_s = max(1, math.ceil(tier.burst * 60 / tier.key_requests_per_minute))
    if tier.redis_down == "open":
        return Decision(True, tier.burst, None, 0.0, 0.0, window_s, "key")
    return Decision(False, tier.burst, 0, DOWN_RETRY_AFTER_S, DOWN_RETRY_AFTER_S, window_s, "key")


def headers(decision: Decision, policy_name: str) -> dict[str, str]:
    """The response fields of draft-ietf-httpapi-ratelimit-headers (structured-field form),
    plus Retry-After (whole seconds, rounded up) on a refusal:

    RateLimit-Policy: "name";q=LIMIT;w=WINDOW_S
    RateLimit: "name";r=REMAINING;t=RESET_S       (left out while the remaining is unknown)
    """
    name = _sf_string(policy_name)
    fields = {"RateLimit-Policy": f"{name};q={decision.limit};w={decision.window_s}"}
    if decision.remaining is not None:
        reset = math.ceil(decision.reset_after_s)
        fields["RateLimit"] = f"{name};r={max(0, decision.remaining)};t={max(0, reset)}"
    if not decision.allowed:
        fields["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return fields


def _sf_string(value: str) -> str:
    """`value` as an RFC 8941 sf-string: printable ASCII, quote and backslash escaped."""
    if any(not (" " <= c <= "~") for c in value):
        raise ValueError(f"a policy name is printable ASCII: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
