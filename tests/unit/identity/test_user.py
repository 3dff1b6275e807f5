"""The user aggregate: step-up before changing factors, one use per TOTP step, lockout after
repeated failures (growing, capped, reset by a success), disable and erase; replay equals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity.aggregate import Rejected
from identity.user import LOCKOUT, MAX_FAILURES, MAX_LOCKOUT, User, decide, evolve, replay

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def command(kind: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "user_id": "u1", "at_utc": at, **fields}


def apply(state: User, cmd: dict[str, Any]) -> tuple[User, list[dict[str, Any]]]:
    events = decide(state, cmd)
    for event in events:
        state = evolve(state, event)
    return state, events


def registered() -> User:
    state, _ = apply(
        User("u1"),
        command(
            "RegisterUser", email=" Ana@Example.COM ", display_name="Ana", password_sealed="v1.p"
        ),
    )
    return state


def test_registration_lower_cases_the_email_and_keeps_the_password_sealed() -> None:
    state = registered()
    assert (state.email, state.display_name, state.password_sealed) == (
        "ana@example.com", "Ana", "v1.p",
    )  # fmt: skip
    with pytest.raises(Rejected, match="exists already"):
        decide(state, command("RegisterUser", email="b@x.com", password_sealed="v1.q"))
    with pytest.raises(Rejected, match="not an email"):
        decide(User("u2"), {**command("RegisterUser", email="nope", password_sealed="x")})


def test_changing_a_factor_needs_a_recent_step_up_and_the_code_once_mfa_is_on() -> None:
    state = registered()
    change = command("ChangePassword", password_sealed="v1.new")
    for proved in (None, T0 - timedelta(minutes=6)):
        with pytest.raises(Rejected) as refused:
            decide(state, {**change, "reauthenticated_at_utc": proved})
        assert refused.value.code == "step_up_required"
    fresh = {"reauthenticated_at_utc": T0 - timedelta(minutes=1)}
    state, _ = apply(
        state, command("EnrolTotp", totp_sealed="v1.t", recovery_sealed="v1.r", **fresh)
    )
    assert state.mfa
    with pytest.raises(Rejected, match="authenticator code"):
        decide(state, {**change, **fresh})
    state, _ = apply(state, {**change, **fresh, "reauthenticated_with_otp": True})
    assert state.password_sealed == "v1.new"


def test_a_totp_step_counts_once() -> None:
    state = registered()
    fresh = {"reauthenticated_at_utc": T0}
    state, _ = apply(state, command("EnrolTotp", totp_sealed="t", recovery_sealed="r", **fresh))
    sign_in = command("RecordSignIn", succeeded=True, totp_step=1000)
    with pytest.raises(Rejected) as no_code:
        decide(state, {**sign_in, "totp_step": None})
    assert no_code.value.code == "otp_required"
    state, _ = apply(state, sign_in)
    assert state.last_totp_step == 1000
    for step in (1000, 999):  # the same code again, or an older one
        with pytest.raises(Rejected) as replayed:
            decide(state, {**sign_in, "totp_step": step})
        assert replayed.value.code == "otp_replayed"
    state, _ = apply(state, {**sign_in, "totp_step": 1001})
    # a recovery code instead: the codes left come sealed again
    state, _ = apply(state, {**sign_in, "totp_step": None, "recovery_sealed": "r-minus-one"})
    assert state.recovery_sealed == "r-minus-one"
    assert state.last_totp_step == 1001


def fail(state: User, at: datetime) -> tuple[User, list[dict[str, Any]]]:
    return apply(state, command("RecordSignIn", at=at, succeeded=False, reason="bad_password"))


def test_repeated_failures_lock_the_account_longer_each_time_and_a_success_resets() -> None:
    state = registered()
    at = T0
    lockouts = []
    for _ in range(8):
        for n in range(MAX_FAILURES):
            state, events = fail(state, at)
            assert events[0]["failures"] == n + 1
        assert events[-1]["type"] == "UserLocked"
        lockouts.append(state.locked_until_utc - at)  # type: ignore[operator]
        with pytest.raises(Rejected) as locked:
            decide(state, command("RecordSignIn", at=at, succeeded=True))
        assert locked.value.code == "locked"
        at = state.locked_until_utc  # type: ignore[assignment]
    assert lockouts[:3] == [LOCKOUT, 2 * LOCKOUT, 4 * LOCKOUT]
    assert max(lockouts) == MAX_LOCKOUT
    state, _ = apply(state, command("RecordSignIn", at=at, succeeded=True))
    assert (state.failures, state.lockouts, state.locked_until_utc) == (0, 0, None)


def test_disabled_users_do_nothing_and_erased_ones_stay_erased() -> None:
    state = registered()
    state, events = apply(state, command("DisableUser", reason="left the firm"))
    assert events[0]["type"] == "UserDisabled"
    with pytest.raises(Rejected) as disabled:
        decide(state, command("RecordSignIn", succeeded=True))
    assert disabled.value.code == "disabled"
    state, _ = apply(state, command("EnableUser"))
    state, _ = apply(state, command("EraseUser"))
    assert state.erased
    assert (state.email, state.display_name) == ("", "")
    for kind in ("EnableUser", "RecordSignIn", "EraseUser"):
        with pytest.raises(Rejected) as erased:
            decide(state, command(kind, succeeded=True))
        assert erased.value.code == "erased"


def test_replay_gives_the_same_state() -> None:
    state = User("u1")
    log: list[dict[str, Any]] = []
    for cmd in (
        command("RegisterUser", email="a@b.com", password_sealed="p"),
        command("RecordSignIn", succeeded=False, reason="bad_password"),
        command("EnrolTotp", totp_sealed="t", recovery_sealed="r", reauthenticated_at_utc=T0),
        command("RecordSignIn", succeeded=True, totp_step=7),
        command("DisableUser", reason="audit"),
    ):
        state, events = apply(state, cmd)
        log += events
    assert replay("u1", log) == state
    assert state.version == len(log)
