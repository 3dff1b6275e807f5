"""The user aggregate: registration, password and second factor, sign-in throttling, disabling
and erasure, as `decide` and `evolve` (see `identity.organization` for the shape).

Secrets reach this aggregate already sealed with the user's own key (`identity.vault`): the
argon2id password hash, the TOTP secret and the recovery-code hashes are opaque strings here and
in the log. Erasing a user deletes that key outside the log, so a replay still folds every event
while nothing sealed for the user can be opened again.

Rules:
- the email is unique per user (the handler that owns the email index checks across users) and
  stored lower-cased;
- changing the password or the second factor needs a recent re-authentication (step-up): the
  command carries when the session last proved the password (and the code, with MFA on);
- a TOTP time step counts once: the last step used is state, so a replayed code is refused even
  on another replica;
- `MAX_FAILURES` failed sign-ins in a row lock the account for `LOCKOUT`, each lockout longer
  than the one before, up to `MAX_LOCKOUT`; a successful sign-in resets the count;
- a disabled or erased user can do nothing; an erased user stays erased.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with

STEP_UP = timedelta(minutes=5)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=1)
MAX_LOCKOUT = timedelta(hours=1)


@dataclass(frozen=True)
class User:
    user_id: str
    version: int = 0
    email: str = ""
    display_name: str = ""
    password_sealed: str = ""
    totp_sealed: str | None = None
    recovery_sealed: str | None = None
    last_totp_step: int | None = None
    failures: int = 0
    lockouts: int = 0
    locked_until_utc: datetime | None = None
    disabled: bool = False
    erased: bool = False

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def mfa(self) -> bool:
        return self.totp_sealed is not None


def _event(kind: str, command: Command, **fields: Any) -> Event:
    return {"type": kind, "user_id": command["user_id"], "at_utc": command["at_utc"], **fields}


def _require_active(state: User, command: Command) -> None:
    if not state.exists:
        raise Rejected("unknown_user", f"no user {state.user_id}")
    if state.erased:
        raise Rejected("erased", f"user {state.user_id} was erased")
    if state.disabled and command["type"] not in ("EnableUser", "EraseUser"):
        raise Rejected("disabled", f"user {state.user_id} is disabled")


def _require_step_up(state: User, command: Command) -> None:
    """The session proved the password (and the code, with MFA on) within STEP_UP."""
    proved = command.get("reauthenticated_at_utc")
    if proved is None or command["at_utc"] - proved > STEP_UP:
        raise Rejected("step_up_required", "sign in again to change your sign-in factors")
    if state.mfa and not command.get("reauthenticated_with_otp", False):
        raise Rejected("step_up_required", "confirm with your authenticator code first")


def decide(state: User, command: Command) -> list[Event]:
    """The events `command` causes on `state`; raises Rejected when the state forbids it."""
    kind = command["type"]
    handler = _DECIDERS.get(kind)
    if handler is None:
        raise Rejected("unknown_command", f"the user aggregate has no command {kind!r}")
    if kind != "RegisterUser":
        _require_active(state, command)
    return handler(state, command)


def _register(state: User, command: Command) -> list[Event]:
    if state.exists:
        raise Rejected("exists", f"user {state.user_id} exists already")
    email = str(command["email"]).strip().lower()
    if "@" not in email:
        raise Rejected("invalid", f"{command['email']!r} is not an email address")
    return [
        _event(
            "UserRegistered",
            command,
            email=email,
            display_name=str(command.get("display_name") or email),
            password_sealed=str(command["password_sealed"]),
        )
    ]


def _change_password(state: User, command: Command) -> list[Event]:
    _require_step_up(state, command)
    return [_event("PasswordChanged", command, password_sealed=str(command["password_sealed"]))]


def _enrol_totp(state: User, command: Command) -> list[Event]:
    _require_step_up(state, command)
    return [
        _event(
            "TotpEnrolled",
            command,
            totp_sealed=str(command["totp_sealed"]),
            recovery_sealed=str(command["recovery_sealed"]),
            totp_step=command.get("totp_step"),  # the code that confirmed it is spent
        )
    ]


def _sign_in(state: User, command: Command) -> list[Event]:
    """The outcome of a sign-in the API checked (password, code): success or failure. A
    sign-in with a recovery code carries the user version it was checked against
    (`expected_version`, enforced by the handler), so two sign-ins with one code cannot both
    pass: the second finds the version moved on."""
    at: datetime = command["at_utc"]
    if state.locked_until_utc is not None and at < state.locked_until_utc:
        raise Rejected(
            "locked",
            f"too many failed sign-ins; try again after {state.locked_until_utc:%H:%M:%S} UTC",
        )
    if not command["succeeded"]:
        failures = state.failures + 1
        if failures < MAX_FAILURES:
            return [
                _event("SignInFailed", command, failures=failures, reason=str(command["reason"]))
            ]
        lockout = min(LOCKOUT * 2**state.lockouts, MAX_LOCKOUT)
        return [
            _event("SignInFailed", command, failures=failures, reason=str(command["reason"])),
            _event("UserLocked", command, locked_until_utc=at + lockout),
        ]
    step = command.get("totp_step")
    # through single sign-on, the identity provider's own factors count (its amr is kept)
    federated = command.get("connection_id") is not None
    if state.mfa and step is None and not command.get("recovery_sealed") and not federated:
        raise Rejected("otp_required", "this account needs its authenticator code")
    if step is not None and state.last_totp_step is not None and step <= state.last_totp_step:
        raise Rejected("otp_replayed", "that code was used already; wait for the next one")
    fields: dict[str, Any] = {"totp_step": step}
    if command.get("recovery_sealed"):  # a recovery code used up: the rest, sealed again
        fields["recovery_sealed"] = str(command["recovery_sealed"])
    return [_event("SignedIn", command, **fields)]


def _disable(state: User, command: Command) -> list[Event]:
    return (
        [] if state.disabled else [_event("UserDisabled", command, reason=str(command["reason"]))]
    )


def _enable(state: User, command: Command) -> list[Event]:
    return [_event("UserEnabled", command)] if state.disabled else []


def _erase(state: User, command: Command) -> list[Event]:
    return [_event("UserErased", command)]


_DECIDERS = {
    "RegisterUser": _register,
    "ChangePassword": _change_password,
    "EnrolTotp": _enrol_totp,
    "RecordSignIn": _sign_in,
    "DisableUser": _disable,
    "EnableUser": _enable,
    "EraseUser": _erase,
}
COMMANDS = frozenset(_DECIDERS)


def evolve(state: User, event: Event) -> User:
    """`state` with `event` folded in (`aggregate.evolve_with`)."""
    return evolve_with(_FOLDS, state, event)


def _registered(state: User, event: Event) -> User:
    return replace(
        state,
        email=event["email"],
        display_name=event["display_name"],
        password_sealed=event["password_sealed"],
    )


def _signed_in(state: User, event: Event) -> User:
    step = event.get("totp_step")
    return replace(
        state,
        failures=0,
        lockouts=0,
        locked_until_utc=None,
        last_totp_step=step if step is not None else state.last_totp_step,
        recovery_sealed=event.get("recovery_sealed") or state.recovery_sealed,
    )


Fold = Callable[[User, Event], User]

_FOLDS: dict[str, Fold] = {
    "UserRegistered": _registered,
    "PasswordChanged": lambda s, e: replace(s, password_sealed=e["password_sealed"]),
    "TotpEnrolled": lambda s, e: replace(
        s,
        totp_sealed=e["totp_sealed"],
        recovery_sealed=e["recovery_sealed"],
        last_totp_step=e.get("totp_step"),
    ),
    "SignInFailed": lambda s, e: replace(s, failures=e["failures"]),
    "UserLocked": lambda s, e: replace(
        s, locked_until_utc=e["locked_until_utc"], lockouts=s.lockouts + 1, failures=0
    ),
    "SignedIn": _signed_in,
    "UserDisabled": lambda s, e: replace(s, disabled=True),
    "UserEnabled": lambda s, e: replace(s, disabled=False),
    # the sealed values stay as the log has them: without the user's key they are noise
    "UserErased": lambda s, e: replace(s, erased=True, disabled=True, email="", display_name=""),
}
EVENTS = frozenset(_FOLDS)


def replay(user_id: str, events: list[Event]) -> User:
    return replay_with(User(user_id), evolve, events)
