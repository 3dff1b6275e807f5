"""Feature flags: set and removed by commands; evaluated by one function in a fixed order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from identity import state
from identity.aggregate import Rejected
from identity.flags import Flag, bucket, decide, evaluate, evolve
from identity.handler import Stored

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def set_flag(name: str = "usage_chart", **fields: Any) -> Flag:
    flag = Flag(name)
    for event in decide(flag, {"type": "SetFeatureFlag", "at_utc": T0, **fields}):
        flag = evolve(flag, event)
    return flag


def test_an_unknown_or_disabled_flag_is_off() -> None:
    assert not evaluate(None, "org_1", "owner")
    assert not evaluate(set_flag(enabled=False), "org_1", "owner")
    assert evaluate(set_flag(enabled=True), "org_1", "viewer")


def test_organisation_overrides_come_first() -> None:
    flag = set_flag(enabled=False, org_ids_on="org_a", org_ids_off="org_b")
    assert evaluate(flag, "org_a", "viewer")
    flag = set_flag(enabled=True, org_ids_off="org_b")
    assert not evaluate(flag, "org_b", "owner")


def test_roles_limit_a_flag() -> None:
    flag = set_flag(enabled=True, roles="owner,admin")
    assert evaluate(flag, "org_1", "admin")
    assert not evaluate(flag, "org_1", "analyst")


def test_a_percentage_rollout_is_stable_and_only_grows() -> None:
    orgs = [f"org_{n}" for n in range(2000)]
    at_10 = {o for o in orgs if evaluate(set_flag(enabled=True, percentage=10), o, "viewer")}
    at_30 = {o for o in orgs if evaluate(set_flag(enabled=True, percentage=30), o, "viewer")}
    assert at_10 <= at_30
    assert 140 <= len(at_10) <= 260  # about 10 % of 2000
    assert 500 <= len(at_30) <= 700
    assert bucket("usage_chart", "org_7") == bucket("usage_chart", "org_7")
    assert not any(evaluate(set_flag(enabled=True, percentage=0), o, "owner") for o in orgs[:50])


@pytest.mark.parametrize(
    ("name", "fields", "code"),
    [
        ("Bad Name", {}, "invalid"),
        ("ok_flag", {"percentage": 101}, "invalid"),
        ("ok_flag", {"roles": "owner,janitor"}, "unknown_role"),
        ("ok_flag", {"org_ids_on": "o1", "org_ids_off": "o1"}, "invalid"),
    ],
)
def test_a_bad_flag_is_refused_by_name(name: str, fields: dict[str, Any], code: str) -> None:
    with pytest.raises(Rejected) as refused:
        decide(Flag(name), {"type": "SetFeatureFlag", "at_utc": T0, **fields})
    assert refused.value.code == code


def test_removal_and_the_stored_state_round_trip() -> None:
    flag = set_flag(enabled=True, roles="owner", org_ids_on="o1,o2", percentage=25)
    loaded = state.load(state.dump(Stored(flag))).state
    assert loaded == flag
    [removed] = decide(flag, {"type": "RemoveFeatureFlag", "at_utc": T0})
    gone = evolve(flag, removed)
    assert not gone.exists
    assert not evaluate(gone, "o1", "owner")
    with pytest.raises(Rejected):
        decide(gone, {"type": "RemoveFeatureFlag", "at_utc": T0})
