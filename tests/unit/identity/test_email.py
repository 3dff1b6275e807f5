"""The email index: one address, one user at most; claims are idempotent, only the holder
releases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity.aggregate import Rejected
from identity.email import COMMANDS, EVENTS, EmailIndex, decide, evolve, normalised, replay

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ADDRESS = "ana@example.com"


def command(kind: str, user: str, at: datetime = T0) -> dict[str, Any]:
    return {"type": kind, "email": ADDRESS, "user_id": user, "at_utc": at, "actor_kind": "system"}


def apply(state: EmailIndex, cmd: dict[str, Any]) -> tuple[EmailIndex, list[dict[str, Any]]]:
    events = decide(state, cmd)
    for event in events:
        state = evolve(state, event)
    return state, events


def refused(state: EmailIndex, cmd: dict[str, Any]) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decide(state, cmd)
    return caught.value


def claimed(user: str = "u1") -> EmailIndex:
    return apply(EmailIndex(ADDRESS), command("ClaimEmail", user))[0]


def test_a_free_address_is_claimed() -> None:
    state, [event] = apply(EmailIndex(ADDRESS), command("ClaimEmail", "u1"))
    assert event == {"type": "EmailClaimed", "email": ADDRESS, "user_id": "u1", "at_utc": T0}
    assert state.user_id == "u1"
    assert state.version == 1


def test_an_address_held_by_another_user_is_taken() -> None:
    rejection = refused(claimed("u1"), command("ClaimEmail", "u2"))
    assert rejection.code == "email_taken"
    assert "is in use" in str(rejection)


def test_claiming_an_address_one_holds_changes_nothing() -> None:
    state = claimed("u1")
    assert decide(state, command("ClaimEmail", "u1")) == []


def test_the_holder_releases_and_then_another_user_may_claim() -> None:
    state, [event] = apply(claimed("u1"), command("ReleaseEmail", "u1", T0 + timedelta(days=1)))
    assert (event["type"], event["email"], event["user_id"]) == ("EmailReleased", ADDRESS, "u1")
    assert state.user_id is None
    state, [again] = apply(state, command("ClaimEmail", "u2"))
    assert again["user_id"] == "u2"
    assert state.user_id == "u2"
    assert state.version == 3


def test_only_the_holder_releases() -> None:
    assert refused(claimed("u1"), command("ReleaseEmail", "u2")).code == "not_holder"
    assert refused(EmailIndex(ADDRESS), command("ReleaseEmail", "u1")).code == "not_holder"


@pytest.mark.parametrize("address", ["Ana@Example.com", " ana@example.com", "no-at-sign"])
def test_an_index_keyed_by_an_address_not_normalised_refuses(address: str) -> None:
    rejection = refused(EmailIndex(address), command("ClaimEmail", "u1"))
    assert rejection.code == "invalid"


def test_a_command_without_a_user_or_of_another_kind_is_refused() -> None:
    assert refused(EmailIndex(ADDRESS), command("ClaimEmail", " ")).code == "invalid"
    assert refused(EmailIndex(ADDRESS), command("Forget", "u1")).code == "unknown_command"


def test_normalised_strips_and_lower_cases() -> None:
    assert normalised("  Ana@Example.COM ") == ADDRESS


def test_a_replay_of_the_events_gives_the_same_state() -> None:
    state = EmailIndex(ADDRESS)
    log: list[dict[str, Any]] = []
    for cmd in (command("ClaimEmail", "u1"), command("ReleaseEmail", "u1"),
                command("ClaimEmail", "u2")):  # fmt: skip
        state, events = apply(state, cmd)
        log += events
    assert replay(ADDRESS, log) == state == EmailIndex(ADDRESS, 3, "u2")
    assert {e["type"] for e in log} == EVENTS
    assert sorted(COMMANDS) == ["ClaimEmail", "ReleaseEmail"]
