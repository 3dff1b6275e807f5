"""The tiers table: four tiers, each at least as generous as the one below it."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from api.history import DATASETS as API_DATASETS
from billing.tiers import DATASETS, TIERS, Tier, UnknownTierError, tier

ORDER = ["free", "starter", "professional", "enterprise"]


def unlimited_last(value: int | None) -> float:
    return float("inf") if value is None else value


def test_the_four_tiers_in_order() -> None:
    assert list(TIERS) == ORDER
    assert all(TIERS[name].name == name for name in ORDER)


def test_dataset_names_are_the_api_s() -> None:
    assert set(API_DATASETS) == DATASETS


@pytest.mark.parametrize(("lower", "upper"), list(itertools.pairwise(ORDER)))
def test_each_tier_gives_at_least_what_the_one_below_gives(lower: str, upper: str) -> None:
    low, high = TIERS[lower], TIERS[upper]
    assert high.key_requests_per_minute > low.key_requests_per_minute
    assert high.org_requests_per_minute > low.org_requests_per_minute
    assert high.burst > low.burst
    assert unlimited_last(high.monthly_row_quota) > unlimited_last(low.monthly_row_quota)
    assert unlimited_last(high.history_days) > unlimited_last(low.history_days)
    assert high.datasets >= low.datasets
    assert high.sse >= low.sse
    assert high.export_csv >= low.export_csv


@pytest.mark.parametrize("name", ORDER)
def test_each_tier_is_consistent(name: str) -> None:
    t = TIERS[name]
    assert t.org_requests_per_minute >= t.key_requests_per_minute
    assert 1 <= t.burst <= t.key_requests_per_minute
    assert t.datasets <= DATASETS
    assert "lmp" in t.datasets


def test_the_extremes() -> None:
    free, enterprise = TIERS["free"], TIERS["enterprise"]
    assert (free.key_requests_per_minute, free.org_requests_per_minute) == (60, 120)
    assert free.monthly_row_quota == 100_000
    assert free.history_days == 31
    assert not free.sse
    assert not free.export_csv
    assert enterprise.monthly_row_quota is None
    assert enterprise.history_days is None
    assert enterprise.datasets == DATASETS


def test_free_and_starter_fail_closed_paid_tiers_open() -> None:
    assert {name: TIERS[name].redis_down for name in ORDER} == {
        "free": "closed",
        "starter": "closed",
        "professional": "open",
        "enterprise": "open",
    }


def test_tiers_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TIERS["free"].burst = 10_000  # type: ignore[misc]


def test_tier_by_name() -> None:
    assert tier("starter") is TIERS["starter"]
    assert tier(" Enterprise ") is TIERS["enterprise"]


def test_an_unknown_tier_is_a_clear_error() -> None:
    with pytest.raises(UnknownTierError) as caught:
        tier("platinum")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == (
        "unknown tier 'platinum'; expected one of free, starter, professional, enterprise"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"burst": 0}, "at least 1"),
        ({"org_requests_per_minute": 30}, "below a key's"),
        ({"monthly_row_quota": 0}, "monthly_row_quota"),
        ({"history_days": 0}, "history_days"),
        ({"datasets": frozenset({"lmp", "weather"})}, "unknown datasets"),
        ({"redis_down": "maybe"}, "redis_down"),
    ],
)
def test_an_inconsistent_tier_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TIERS["free"], **change)  # type: ignore[arg-type]


def test_allows_dataset() -> None:
    assert TIERS["free"].allows_dataset("lmp")
    assert not TIERS["free"].allows_dataset("kpis")
    assert isinstance(TIERS["free"], Tier)
