"""The GCRA rate limiter on a real Redis: the stack's, under a namespace of each test's own;
the script-cache test on a redis-server of its own (it flushes the server's scripts)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from billing.ratelimit import SCRIPT_SHA, Decision, RateLimiter, redis_key
from billing.tiers import TIERS, Tier
from optibid.settings import Settings


@pytest.fixture
def client(stack_settings: Settings) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(stack_settings.redis_dsn) as connection:
        yield connection


@pytest.fixture
def limiter(client: redis.Redis, test_id: str) -> Iterator[RateLimiter]:
    yield RateLimiter(client, namespace=test_id)
    leftovers = list(client.scan_iter(match=redis_key(test_id, "*")))
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A redis-server of this test's own on a Unix socket, ended afterwards by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH")
    socket = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        connection = redis.Redis(unix_socket_path=str(socket), socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield connection
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_burst_is_allowed_then_refused_with_a_sensible_retry_after(
    limiter: RateLimiter,
) -> None:
    answers = [limiter.check("burst", rate_per_minute=60, burst=5) for _ in range(6)]
    assert [a.allowed for a in answers] == [True] * 5 + [False]
    refused = answers[-1]
    assert refused.remaining == 0
    assert refused.limit == 5
    assert 0.9 < refused.retry_after_s <= 1.0  # one emission interval, less the time spent
    assert refused.retry_after_s <= refused.reset_after_s <= 5.0


def test_after_waiting_retry_after_the_next_is_allowed(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("wait", rate_per_minute=120, burst=3)
    refused = limiter.check("wait", rate_per_minute=120, burst=3)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.5
    time.sleep(refused.retry_after_s + 0.01)
    allowed = limiter.check("wait", rate_per_minute=120, burst=3)
    assert allowed.allowed
    assert allowed.remaining == 0
    assert allowed.retry_after_s == 0.0
    assert not limiter.check("wait", rate_per_minute=120, burst=3).allowed


def hammer(
    check: Callable[[str], Decision], keys: list[str], seconds: float
) -> tuple[dict[str, int], float]:
    """Requests on `keys` in turn, as fast as Redis answers, for `seconds`: how many each key
    had allowed, and the seconds from the first request to the last."""
    allowed = dict.fromkeys(keys, 0)
    start = last = time.monotonic()
    while last - start < seconds:
        for key in keys:
            allowed[key] += check(key).allowed
        last = time.monotonic()
    return allowed, last - start


@pytest.mark.parametrize("rate", [600, 3000])
def test_a_sustained_rate_is_held_within_five_percent(limiter: RateLimiter, rate: int) -> None:
    burst = 10
    allowed, elapsed = hammer(lambda key: limiter.check(key, rate, burst), ["steady"], 3.0)
    expected = burst + elapsed * rate / 60
    assert abs(allowed["steady"] - expected) <= 0.05 * expected, (allowed, expected)


def test_two_keys_are_independent(limiter: RateLimiter) -> None:
    assert all(limiter.check("one", 60, 4).allowed for _ in range(4))
    assert not limiter.check("one", 60, 4).allowed
    fresh = limiter.check("two", 60, 4)
    assert fresh.allowed
    assert fresh.remaining == 3


def small_tier(key_rate: int, org_rate: int, burst: int) -> Tier:
    return dataclasses.replace(
        TIERS["free"],
        key_requests_per_minute=key_rate,
        org_requests_per_minute=org_rate,
        burst=burst,
    )


def test_the_org_limit_caps_two_keys_of_one_org_together(
    limiter: RateLimiter, client: redis.Redis, test_id: str
) -> None:
    tier = small_tier(key_rate=60, org_rate=120, burst=4)
    first = [limiter.check_both("a", "org1", tier) for _ in range(4)]
    assert all(d.allowed for d in first)
    # key a and the organisation both spent their burst; key b is refused by the organisation
    refused = limiter.check_both("b", "org1", tier)
    assert not refused.allowed
    assert refused.scope == "org"
    assert 0.45 < refused.retry_after_s <= 0.5  # the organisation's interval: 60 s / 120
    # ... and its own allowance is untouched: nothing was written for it
    assert client.get(redis_key(test_id, "key:b")) is None
    # another organisation's key is not affected
    assert limiter.check_both("c", "org2", tier).allowed

    time.sleep(refused.retry_after_s + 0.01)
    allowed = limiter.check_both("b", "org1", tier)
    assert allowed.allowed
    assert allowed.scope == "org"  # the stricter: the organisation has none left, b has 3
    assert allowed.remaining == 0


def test_a_refusal_by_the_key_does_not_spend_the_org_s_allowance(
    limiter: RateLimiter, client: redis.Redis, test_id: str
) -> None:
    tier = small_tier(key_rate=60, org_rate=6000, burst=3)
    assert all(limiter.check_both("a", "org1", tier).allowed for _ in range(3))
    org_key = redis_key(test_id, "org:org1")
    org_state = client.get(org_key)
    refusals = [limiter.check_both("a", "org1", tier) for _ in range(5)]
    assert not any(d.allowed for d in refusals)
    assert {d.scope for d in refusals} == {"key"}
    assert client.get(org_key) == org_state


def test_two_keys_of_one_org_share_the_org_s_sustained_rate(limiter: RateLimiter) -> None:
    tier = small_tier(key_rate=600, org_rate=900, burst=10)
    allowed, elapsed = hammer(lambda key: limiter.check_both(key, "org1", tier), ["a", "b"], 3.0)
    expected = tier.burst + elapsed * tier.org_requests_per_minute / 60
    total = sum(allowed.values())
    assert abs(total - expected) <= 0.05 * expected, (allowed, expected)
    assert min(allowed.values()) > 0  # both keys are served ...
    keys_alone = 2 * (tier.burst + elapsed * tier.key_requests_per_minute / 60)
    assert total < 0.75 * keys_alone  # ... capped by the organisation, not by their own limits


def test_remaining_and_reset_are_monotonic_and_sane(limiter: RateLimiter) -> None:
    rate, burst = 60, 8
    answers = [limiter.check("mono", rate, burst) for _ in range(burst)]
    assert [a.remaining for a in answers] == list(range(burst - 1, -1, -1))
    resets = [a.reset_after_s for a in answers]
    assert resets == sorted(resets)
    assert all(0 < r <= burst * 60 / rate for r in resets)
    # each request pushes the reset out by one interval (1 s), less the time between them
    steps = [b - a for a, b in itertools.pairwise(resets)]
    assert all(0.9 < step <= 1.0 for step in steps)
    assert all(a.window_s == burst * 60 // rate and a.limit == burst for a in answers)
    # while refused, the wait only shrinks as time passes
    waits = []
    for _ in range(3):
        refused = limiter.check("mono", rate, burst)
        assert not refused.allowed
        assert refused.remaining == 0
        assert refused.retry_after_s <= refused.reset_after_s
        waits.append(refused.retry_after_s)
        time.sleep(0.05)
    assert waits == sorted(waits, reverse=True)
    assert len(set(waits)) == 3


def test_keys_expire_when_their_allowance_is_full_again(
    limiter: RateLimiter, client: redis.Redis, test_id: str
) -> None:
    decision = limiter.check("idle", rate_per_minute=600, burst=2)
    key = redis_key(test_id, "idle")
    ttl_ms = client.pttl(key)
    assert 0 < ttl_ms <= 100  # one interval: 60 s / 600
    assert ttl_ms <= round(decision.reset_after_s * 1000) + 1
    limiter.check("idle", rate_per_minute=600, burst=2)
    assert 100 < client.pttl(key) <= 200
    time.sleep(0.25)
    assert client.exists(key) == 0
    again = limiter.check("idle", rate_per_minute=600, burst=2)
    assert again.remaining == 1


def test_the_script_is_loaded_again_after_script_flush(own_redis: redis.Redis) -> None:
    limiter = RateLimiter(own_redis, namespace="flush")
    assert limiter.check("k", 60, 5).remaining == 4
    assert own_redis.script_exists(SCRIPT_SHA) == [True]
    own_redis.script_flush()
    assert own_redis.script_exists(SCRIPT_SHA) == [False]
    assert limiter.check("k", 60, 5).remaining == 3  # loaded again; the state is kept
    assert own_redis.script_exists(SCRIPT_SHA) == [True]

    async def flushed_async() -> Decision:
        own_redis.script_flush()
        kwargs = own_redis.connection_pool.connection_kwargs
        async with redis.asyncio.Redis(unix_socket_path=kwargs["path"]) as async_client:
            return await RateLimiter(own_redis, async_client, "flush").acheck("k", 60, 5)

    assert asyncio.run(flushed_async()).remaining == 2


def outline(d: Decision) -> tuple[bool, int | None, int, int]:
    """A decision without its timing (which differs by the microseconds between calls)."""
    return d.allowed, d.remaining, math.ceil(d.reset_after_s), math.ceil(d.retry_after_s)


def test_the_async_check_agrees_with_the_sync_one(
    limiter: RateLimiter, stack_settings: Settings, test_id: str
) -> None:
    tier = small_tier(key_rate=60, org_rate=120, burst=4)
    sync = [outline(limiter.check("sync", 60, 4)) for _ in range(6)]
    sync_both = [outline(limiter.check_both("s1", "sync-org", tier)) for _ in range(6)]

    async def run() -> tuple[list[tuple[bool, int | None, int, int]], ...]:
        async with redis.asyncio.Redis.from_url(stack_settings.redis_dsn) as async_client:
            alimiter = RateLimiter(limiter.client, async_client, test_id)
            answers = [outline(await alimiter.acheck("async", 60, 4)) for _ in range(6)]
            both = [outline(await alimiter.acheck_both("s2", "async-org", tier)) for _ in range(6)]
            # one state: the sync and async checks spend the same allowance
            mixed = [outline(await alimiter.acheck("mixed", 60, 2))]
            mixed.append(outline(alimiter.check("mixed", 60, 2)))
            mixed.append(outline(await alimiter.acheck("mixed", 60, 2)))
            return answers, both, mixed

    answers, both, mixed = asyncio.run(run())
    assert answers == sync
    assert both == sync_both
    assert [m[:2] for m in mixed] == [(True, 1), (True, 0), (False, 0)]
