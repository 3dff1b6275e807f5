"""The four tiers of OptiBid's API: what each may read, how fast, how much and how far back.

Limits are counted per API key and per organisation (every key of an organisation shares the
organisation's limit); the stricter of the two answers a request. `burst` is how many requests
a caller may send at once after being idle (GCRA's capacity, see `billing.ratelimit`); the
same burst bounds the key's and the organisation's allowance.

When Redis is down the rate limiter cannot count, and each tier says what happens then
(`Tier.redis_down`):

- Free and Starter fail **closed**: their requests are refused (503 with Retry-After) until
  Redis is back. These tiers are where unmetered load comes from (self-service sign-ups,
  scrapers, retry loops), nothing else stands between them and PostgreSQL, and an outage of
  the meter must not become an outage of the history database for everyone else. Their
  callers lose a few seconds of service, which their terms do not promise.
- Professional and Enterprise fail **open**: their requests are served unmetered. These
  callers hold contracts with availability commitments, are few and identified, and a fault in
  our metering must not break their integrations. The unmetered window lasts as long as the
  outage, and these callers are known by name and bound by their contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The datasets of the API, named as its history routes name them (`/v1/{dataset}`); the LMP
# markets of `schemas.vocabulary.MARKET_DATASET` are all served under "lmp".
LMP = "lmp"
LOAD = "load"
FUEL_MIX = "fuel-mix"
ANCILLARY_PRICES = "ancillary-prices"
KPIS = "kpis"
DATASETS: frozenset[str] = frozenset({LMP, LOAD, FUEL_MIX, ANCILLARY_PRICES, KPIS})

RedisDown = Literal["open", "closed"]


@dataclass(frozen=True)
class Tier:
    """One tier's limits and rights."""

    name: str
    key_requests_per_minute: int  # sustained rate of one API key
    org_requests_per_minute: int  # sustained rate of all the organisation's keys together
    burst: int  # requests allowed at once from idle (per key and per organisation)
    monthly_row_quota: int | None  # rows served per calendar month; None: unlimited
    datasets: frozenset[str]  # which of DATASETS it may read
    history_days: int | None  # how far back it may read, in days; None: all history
    sse: bool  # live updates (`/v1/live`, server-sent events)
    export_csv: bool  # history as text/csv
    redis_down: RedisDown  # "open": served unmetered, "closed": refused while Redis is down

    def __post_init__(self) -> None:
        if min(self.key_requests_per_minute, self.org_requests_per_minute, self.burst) < 1:
            raise ValueError(f"tier {self.name!r}: rates and burst must be at least 1")
        if self.org_requests_per_minute < self.key_requests_per_minute:
            raise ValueError(f"tier {self.name!r}: the organisation's rate is below a key's")
        if self.monthly_row_quota is not None and self.monthly_row_quota < 1:
            raise ValueError(f"tier {self.name!r}: monthly_row_quota must be positive or None")
        if self.history_days is not None and self.history_days < 1:
            raise ValueError(f"tier {self.name!r}: history_days must be positive or None")
        if unknown := self.datasets - DATASETS:
            raise ValueError(f"tier {self.name!r}: unknown datasets {sorted(unknown)}")
        if self.redis_down not in ("open", "closed"):
            raise ValueError(f"tier {self.name!r}: redis_down must be 'open' or 'closed'")

    def allows_dataset(self, dataset: str) -> bool:
        return dataset in self.datasets


FREE = Tier(
    name="free",
    key_requests_per_minute=60,
    org_requests_per_minute=120,
    burst=20,
    monthly_row_quota=100_000,
    datasets=frozenset({LMP, LOAD, FUEL_MIX}),
    history_days=31,
    sse=False,
    export_csv=False,
    redis_down="closed",
)
STARTER = Tier(
    name="starter",
    key_requests_per_minute=300,
    org_requests_per_minute=600,
    burst=50,
    monthly_row_quota=2_000_000,
    datasets=frozenset({LMP, LOAD, FUEL_MIX, ANCILLARY_PRICES}),
    history_days=366,
    sse=False,
    export_csv=True,
    redis_down="closed",
)
PROFESSIONAL = Tier(
    name="professional",
    key_requests_per_minute=1_200,
    org_requests_per_minute=3_000,
    burst=200,
    monthly_row_quota=25_000_000,
    datasets=DATASETS,
    history_days=5 * 366,
    sse=True,
    export_csv=True,
    redis_down="open",
)
ENTERPRISE = Tier(
    name="enterprise",
    key_requests_per_minute=6_000,
    org_requests_per_minute=30_000,
    burst=1_000,
    monthly_row_quota=None,
    datasets=DATASETS,
    history_days=None,
    sse=True,
    export_csv=True,
    redis_down="open",
)

TIERS: dict[str, Tier] = {t.name: t for t in (FREE, STARTER, PROFESSIONAL, ENTERPRISE)}


class UnknownTierError(KeyError):
    """A tier name that is none of TIERS."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown tier {self.name!r}; expected one of {', '.join(TIERS)}"


def tier(name: str) -> Tier:
    """The tier called `name` (case-insensitive); UnknownTierError (a KeyError) for any other."""
    try:
        return TIERS[name.strip().lower()]
    except KeyError:
        raise UnknownTierError(name) from None
