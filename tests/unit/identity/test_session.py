"""The session aggregate: strict rotation of the refresh token, reuse revoking the session,
idle and absolute expiry, who may end it, and a state that stays bounded."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity.aggregate import Rejected
from identity.session import COMMANDS, EVENTS, REUSE_REASON, Session, decide, evolve, replay
from identity.tokens import PREVIOUS_HASHES_KEPT

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
SID = "3f1c2b8e-8d4a-4a57-9e0e-0b6f3d7c1a20"
IDLE = timedelta(hours=1)


def digest(n: int) -> str:
    return hashlib.sha256(f"token-{n}".encode()).hexdigest()


def command(
    kind: str, at: datetime = T0, actor: str | None = "ana", kind_of_actor: str = "user",
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "type": kind, "session_id": SID, "at_utc": at, "org_id": "org_1", "actor_id": actor,
        "actor_kind": kind_of_actor, **fields,
    }  # fmt: skip


def start(at: datetime = T0, **fields: Any) -> dict[str, Any]:
    values = {
        "user_id": "ana", "token_hash": digest(0), "expires_at_utc": at + timedelta(days=30),
        "idle_timeout_s": int(IDLE.total_seconds()), "amr": "pwd otp", **fields,
    }  # fmt: skip
    return command("StartSession", at, **values)


def refresh(old: int, new: int, at: datetime = T0) -> dict[str, Any]:
    return command("RefreshSession", at, token_hash=digest(old), new_token_hash=digest(new))


def apply(state: Session, cmd: dict[str, Any]) -> tuple[Session, list[dict[str, Any]]]:
    events = decide(state, cmd)
    for event in events:
        state = evolve(state, event)
    return state, events


def started() -> Session:
    state, _ = apply(Session(SID), start())
    return state


def refused(state: Session, cmd: dict[str, Any]) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decide(state, cmd)
    return caught.value


def test_starting_a_session_records_who_how_and_until_when() -> None:
    state, [event] = apply(Session(SID), start(amr="  pwd   otp "))
    assert event["type"] == "SessionStarted"
    assert (event["user_id"], event["org_id"], event["token_hash"]) == ("ana", "org_1", digest(0))
    assert (event["idle_timeout_s"], event["amr"]) == (3600, "pwd otp")
    assert state.exists
    assert state.version == 1
    assert (state.user_id, state.org_id, state.amr) == ("ana", "org_1", "pwd otp")
    assert state.created_at_utc == state.last_used_at_utc == T0
    assert state.expires_at_utc == T0 + timedelta(days=30)
    assert state.current_hash == digest(0)
    assert state.previous_hashes == ()
    assert not state.revoked
    assert refused(state, start()).code == "exists"


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"token_hash": "not-a-digest"}, "token_hash"),
        ({"token_hash": digest(0).upper()}, "token_hash"),
        ({"token_hash": digest(0)[:63]}, "token_hash"),
        ({"idle_timeout_s": 0}, "idle_timeout_s"),
        ({"idle_timeout_s": -5}, "idle_timeout_s"),
        ({"expires_at_utc": T0}, "expire"),
        ({"expires_at_utc": T0 - timedelta(seconds=1)}, "expire"),
        ({"amr": "  "}, "amr"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_a_start_with_bad_values_is_invalid(fields: dict[str, Any], names: str) -> None:
    rejection = refused(Session(SID), start(**fields))
    assert rejection.code == "invalid"
    assert names in str(rejection)


def test_refreshing_rotates_the_token_and_keeps_the_spent_one() -> None:
    at = T0 + timedelta(minutes=10)
    state, [event] = apply(started(), refresh(0, 1, at))
    assert (event["type"], event["token_hash"]) == ("SessionRefreshed", digest(1))
    assert "new_token_hash" not in event
    assert state.current_hash == digest(1)
    assert state.previous_hashes == (digest(0),)
    assert state.last_used_at_utc == at
    assert state.created_at_utc == T0
    state, _ = apply(state, refresh(1, 2, at + timedelta(minutes=10)))
    assert state.previous_hashes == (digest(0), digest(1))
    assert state.version == 3


def test_a_reused_token_is_refused_and_revokes_the_session() -> None:
    state, _ = apply(started(), refresh(0, 1))
    rejection = refused(state, refresh(0, 9, T0 + timedelta(minutes=1)))
    assert rejection.code == "refresh_reused"
    [revocation] = rejection.events
    assert (revocation["type"], revocation["reason"]) == ("SessionRevoked", REUSE_REASON)
    revoked = evolve(state, revocation)
    assert revoked.revoked
    assert revoked.revoked_reason == REUSE_REASON
    assert revoked.revoked_at_utc == T0 + timedelta(minutes=1)
    # the current token is dead too: whoever holds it must sign in again
    after = refused(revoked, refresh(1, 2, T0 + timedelta(minutes=2)))
    assert after.code == "revoked"
    assert after.events == []


def test_reuse_is_caught_even_on_an_expired_session() -> None:
    state, _ = apply(started(), refresh(0, 1))
    assert refused(state, refresh(0, 9, T0 + timedelta(days=31))).code == "refresh_reused"


def test_an_unknown_token_is_refused_and_changes_nothing() -> None:
    state = started()
    rejection = refused(state, refresh(7, 8))
    assert rejection.code == "unknown_token"
    assert rejection.events == []
    malformed = command("RefreshSession", token_hash="xyz", new_token_hash=digest(1))
    assert refused(state, malformed).code == "invalid"
    bad_new = command("RefreshSession", token_hash=digest(0), new_token_hash="xyz")
    assert refused(state, bad_new).code == "invalid"
    spent_again = command("RefreshSession", token_hash=digest(0), new_token_hash=digest(0))
    assert refused(state, spent_again).code == "invalid"


def test_a_session_unused_longer_than_its_idle_timeout_has_expired() -> None:
    state = started()
    just_in_time = T0 + IDLE - timedelta(seconds=1)
    state, _ = apply(state, refresh(0, 1, just_in_time))
    # the idle time counts from the last use, not from the start
    later = just_in_time + IDLE - timedelta(seconds=1)
    state, _ = apply(state, refresh(1, 2, later))
    rejection = refused(state, refresh(2, 3, later + IDLE))
    assert rejection.code == "expired"
    assert "unused" in str(rejection)


def test_a_session_ends_at_its_absolute_expiry_however_often_it_is_used() -> None:
    state = apply(Session(SID), start(expires_at_utc=T0 + timedelta(minutes=150)))[0]
    for n in range(1, 3):
        state, _ = apply(state, refresh(n - 1, n, T0 + timedelta(minutes=50 * n)))
    rejection = refused(state, refresh(2, 3, T0 + timedelta(minutes=150)))
    assert rejection.code == "expired"
    assert "expired at" in str(rejection)


def test_commands_on_a_session_that_does_not_exist_are_refused() -> None:
    assert refused(Session(SID), refresh(0, 1)).code == "unknown_session"
    assert refused(Session(SID), command("EndSession", reason="logout")).code == "unknown_session"
    assert refused(Session(SID), command("Nap")).code == "unknown_command"


def test_the_user_ends_their_own_session_once() -> None:
    state, [event] = apply(
        started(), command("EndSession", T0 + timedelta(hours=1), reason="logout")
    )
    assert (event["type"], event["reason"]) == ("SessionRevoked", "logout")
    assert state.revoked_reason == "logout"
    assert state.revoked_at_utc == T0 + timedelta(hours=1)
    assert decide(state, command("EndSession", reason="again")) == []
    assert refused(state, refresh(0, 1)).code == "revoked"


def test_another_user_cannot_end_the_session() -> None:
    other = command("EndSession", actor="bo", reason="mischief")
    rejection = refused(started(), other)
    assert rejection.code == "forbidden"
    # an API key named like the user is not the user
    key = command("EndSession", actor="ana", kind_of_actor="api_key", reason="x")
    assert refused(started(), key).code == "forbidden"


@pytest.mark.parametrize("kind_of_actor", ["system", "admin"])
def test_the_system_or_an_administrator_ends_any_session(kind_of_actor: str) -> None:
    cmd = command("EndSession", actor="bo", kind_of_actor=kind_of_actor, reason="removed")
    state, [event] = apply(started(), cmd)
    assert event["reason"] == "removed"
    assert state.revoked


def test_the_previous_hashes_kept_are_bounded() -> None:
    assert PREVIOUS_HASHES_KEPT == 32
    state = started()
    rotations = PREVIOUS_HASHES_KEPT + 8
    for n in range(1, rotations + 1):
        state, _ = apply(state, refresh(n - 1, n, T0 + timedelta(minutes=n)))
    assert len(state.previous_hashes) == PREVIOUS_HASHES_KEPT
    assert state.previous_hashes[0] == digest(rotations - PREVIOUS_HASHES_KEPT)
    assert state.previous_hashes[-1] == digest(rotations - 1)
    assert state.current_hash == digest(rotations)
    at = T0 + timedelta(minutes=rotations + 1)
    # one too old to remember is merely unknown; one still remembered revokes
    assert refused(state, refresh(0, 999, at)).code == "unknown_token"
    kept = rotations - PREVIOUS_HASHES_KEPT
    assert refused(state, refresh(kept, 999, at)).code == "refresh_reused"


def test_a_replay_of_the_events_gives_the_same_state() -> None:
    state = Session(SID)
    log: list[dict[str, Any]] = []
    for cmd in (start(), refresh(0, 1, T0 + timedelta(minutes=5))):
        state, events = apply(state, cmd)
        log += events
    rejection = refused(state, refresh(0, 2, T0 + timedelta(minutes=6)))
    for event in rejection.events:
        state = evolve(state, event)
    log += rejection.events
    assert replay(SID, log) == state
    assert state.version == 3
    assert {e["type"] for e in log} == EVENTS
    assert sorted(COMMANDS) == ["EndSession", "RefreshSession", "StartSession"]
