"""The pure parts of the rate limiter: header fields, the answers while Redis is down, the
combined answer of two limits and the arguments' checks (tests/integration/test_ratelimit.py
runs the script on a real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from billing.ratelimit import (
    DOWN_RETRY_AFTER_S,
    SCRIPT,
    SCRIPT_SHA,
    Decision,
    Limit,
    RateLimiter,
    decide_when_down,
    headers,
    redis_key,
)
from billing.tiers import TIERS


def decision(**changes: object) -> Decision:
    fields: dict[str, object] = {
        "allowed": True,
        "limit": 20,
        "remaining": 7,
        "reset_after_s": 12.2,
        "retry_after_s": 0.0,
        "window_s": 20,
    }
    return Decision(**(fields | changes))  # type: ignore[arg-type]


def test_headers_of_an_allowed_request() -> None:
    assert headers(decision(), "free-key") == {
        "RateLimit-Policy": '"free-key";q=20;w=20',
        "RateLimit": '"free-key";r=7;t=13',
    }


def test_headers_of_a_refused_request_carry_retry_after_rounded_up() -> None:
    refused = decision(allowed=False, remaining=0, reset_after_s=19.5, retry_after_s=2.01)
    assert headers(refused, "org") == {
        "RateLimit-Policy": '"org";q=20;w=20',
        "RateLimit": '"org";r=0;t=20',
        "Retry-After": "3",
    }


def test_retry_after_is_at_least_one_second() -> None:
    refused = decision(allowed=False, remaining=0, retry_after_s=0.000_4)
    assert headers(refused, "key")["Retry-After"] == "1"


def test_a_whole_second_stays_whole() -> None:
    refused = decision(allowed=False, remaining=0, reset_after_s=5.0, retry_after_s=5.0)
    assert headers(refused, "key")["Retry-After"] == "5"
    assert headers(refused, "key")["RateLimit"] == '"key";r=0;t=5'


def test_unknown_remaining_leaves_the_ratelimit_field_out() -> None:
    assert headers(decision(remaining=None, reset_after_s=0.0), "key") == {
        "RateLimit-Policy": '"key";q=20;w=20'
    }


def test_policy_names_are_structured_field_strings() -> None:
    fields = headers(decision(), 'a "b" \\c')
    assert fields["RateLimit-Policy"] == '"a \\"b\\" \\\\c";q=20;w=20'
    with pytest.raises(ValueError, match="printable ASCII"):
        headers(decision(), "caf\u00e9")


@pytest.mark.parametrize("name", ["free", "starter"])
def test_fail_closed_tiers_refuse_while_redis_is_down(name: str) -> None:
    down = decide_when_down(TIERS[name])
    assert not down.allowed
    assert down.retry_after_s == DOWN_RETRY_AFTER_S == 5.0
    assert down.remaining == 0
    assert headers(down, name)["Retry-After"] == "5"


@pytest.mark.parametrize("name", ["professional", "enterprise"])
def test_fail_open_tiers_are_served_while_redis_is_down(name: str) -> None:
    down = decide_when_down(TIERS[name])
    assert down.allowed
    assert down.remaining is None
    assert down.retry_after_s == 0.0
    assert "Retry-After" not in headers(down, name)
    assert "RateLimit" not in headers(down, name)
    assert down.limit == TIERS[name].burst


def test_limit_interval_and_window() -> None:
    limit = Limit("k", rate_per_minute=600, burst=50)
    assert limit.interval_us == 100_000
    assert limit.window_s == 5
    assert Limit("k", rate_per_minute=7, burst=1).window_s == 9  # 8.57 s, rounded up
    with pytest.raises(ValueError, match="at least 1"):
        Limit("k", rate_per_minute=0, burst=1)


def test_keys_are_namespaced() -> None:
    assert redis_key("public", "key:abc") == "optibid:public:rl:key:abc"
    limiter = RateLimiter(None, namespace="t1")  # type: ignore[arg-type]
    key, org = limiter.tier_limits("k1", "o1", TIERS["free"])
    assert (key.redis_key, key.rate_per_minute, key.burst, key.scope) == (
        "optibid:t1:rl:key:k1", 60, 20, "key",
    )  # fmt: skip
    assert (org.redis_key, org.rate_per_minute, org.burst, org.scope) == (
        "optibid:t1:rl:org:o1", 120, 20, "org",
    )  # fmt: skip


@pytest.mark.parametrize("cost", [0, -1, 21])
def test_a_cost_outside_one_to_the_burst_is_refused_before_redis(cost: int) -> None:
    limiter = RateLimiter(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        limiter.check("k", 60, 20, cost=cost)


def test_acheck_needs_an_async_client() -> None:
    limiter = RateLimiter(None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="async"):
        asyncio.run(limiter.acheck("k", 60, 20))


def test_the_script_reads_the_server_clock_only() -> None:
    assert "redis.call('TIME')" in SCRIPT
    assert len(SCRIPT_SHA) == 40
