"""The session aggregate: one signed-in device, as the family of refresh tokens that followed
one sign-in (see `identity.tokens.RefreshFamily` for the rules), as `decide` and `evolve` (see
`identity.organization` for the shape).

Only SHA-256 hashes of refresh tokens reach this aggregate, never a token.

Rules:
- rotation is strict: each refresh spends the current token and names the hash of the next;
- a token already rotated coming back means someone holds a copy: the refresh is refused and
  the session revoked by the same decision (`Rejected` carrying the `SessionRevoked`);
- the hashes of the `PREVIOUS_HASHES_KEPT` tokens before the current one are kept to recognise
  reuse; an older one is merely unknown, so the state stays bounded however long the session
  lives;
- a session ends at its absolute expiry, or when unused for longer than its idle timeout;
- the session's user ends it, or the system, or an administrator (whose role the API checked);
- a revoked session stays revoked.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with
from identity.tokens import _SHA256_HEX, PREVIOUS_HASHES_KEPT

# who may end a session that is not their own; the API checked the administrator's role
ENDED_BY_KINDS = frozenset({"system", "admin"})
REUSE_REASON = "refresh token reused"


@dataclass(frozen=True)
class Session:
    """The state of one session; `version` counts the events folded into it."""

    session_id: str
    version: int = 0
    user_id: str = ""
    org_id: str = ""
    amr: str = ""  # the authentication methods of the sign-in, space separated
    created_at_utc: datetime | None = None
    last_used_at_utc: datetime | None = None
    expires_at_utc: datetime | None = None
    idle_timeout_s: int = 0
    current_hash: str = ""
    previous_hashes: tuple[str, ...] = ()  # oldest first, at most PREVIOUS_HASHES_KEPT
    revoked_reason: str | None = None
    revoked_at_utc: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def revoked(self) -> bool:
        return self.revoked_reason is not None

    def expiry_reason(self, at: datetime) -> str | None:
        """Why the session can no longer refresh at `at` by the clock alone, or None."""
        if self.expires_at_utc is not None and at >= self.expires_at_utc:
            return f"the session expired at {self.expires_at_utc:%Y-%m-%d %H:%M:%S} UTC"
        idle = timedelta(seconds=self.idle_timeout_s)
        if self.last_used_at_utc is not None and at - self.last_used_at_utc >= idle:
            return f"the session was unused for longer than {idle}; sign in again"
        return None


def _event(kind: str, command: Command, **fields: Any) -> Event:
    return {"type": kind, "at_utc": command["at_utc"], **fields}


def _digest(command: Command, name: str) -> str:
    value = command[name]
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise Rejected("invalid", f"{name} is not a SHA-256 hex digest")
    return value


def decide(state: Session, command: Command) -> list[Event]:
    """The events `command` causes on `state`; raises Rejected when the state forbids it."""
    kind = command["type"]
    handler = _DECIDERS.get(kind)
    if handler is None:
        raise Rejected("unknown_command", f"the session aggregate has no command {kind!r}")
    if kind != "StartSession" and not state.exists:
        raise Rejected("unknown_session", f"no session {state.session_id}")
    return handler(state, command)


def _start(state: Session, command: Command) -> list[Event]:
    if state.exists:
        raise Rejected("exists", f"session {state.session_id} exists already")
    user_id, org_id = str(command["user_id"]).strip(), str(command["org_id"]).strip()
    if not user_id or not org_id:
        raise Rejected("invalid", "a session needs a user_id and an org_id")
    token_hash = _digest(command, "token_hash")
    idle = command["idle_timeout_s"]
    if not isinstance(idle, int) or isinstance(idle, bool) or idle <= 0:
        raise Rejected("invalid", f"idle_timeout_s must be a positive number, got {idle!r}")
    expires: datetime = command["expires_at_utc"]
    if expires <= command["at_utc"]:
        raise Rejected("invalid", "a session must expire after it starts")
    amr = " ".join(str(command["amr"]).split())
    if not amr:
        raise Rejected("invalid", "a session names how its user signed in (amr)")
    return [
        _event(
            "SessionStarted",
            command,
            user_id=user_id,
            org_id=org_id,
            token_hash=token_hash,
            expires_at_utc=expires,
            idle_timeout_s=idle,
            amr=amr,
        )
    ]


def _refresh(state: Session, command: Command) -> list[Event]:
    if state.revoked:
        raise Rejected("revoked", f"the session was ended: {state.revoked_reason}")
    presented = _digest(command, "token_hash")
    # reuse is checked before expiry: a replayed token is news even on a dead session
    if presented in state.previous_hashes:
        raise Rejected(
            "refresh_reused",
            "this refresh token was used already; the session is ended, sign in again",
            events=[_event("SessionRevoked", command, reason=REUSE_REASON)],
        )
    if not hmac.compare_digest(presented.encode(), state.current_hash.encode()):
        raise Rejected(
            "unknown_token", f"the refresh token is unknown to session {state.session_id}"
        )
    reason = state.expiry_reason(command["at_utc"])
    if reason is not None:
        raise Rejected("expired", reason)
    new = _digest(command, "new_token_hash")
    if new == state.current_hash or new in state.previous_hashes:
        raise Rejected("invalid", "new_token_hash names a refresh token used already")
    return [_event("SessionRefreshed", command, token_hash=new)]


def _end(state: Session, command: Command) -> list[Event]:
    kind = command.get("actor_kind")
    own = kind == "user" and command.get("actor_id") == state.user_id
    if not own and kind not in ENDED_BY_KINDS:
        raise Rejected("forbidden", "only its user or an administrator can end a session")
    if state.revoked:
        return []  # ended already: nothing changes
    reason = str(command["reason"]).strip()
    if not reason:
        raise Rejected("invalid", "ending a session needs a reason")
    return [_event("SessionRevoked", command, reason=reason)]


_DECIDERS = {
    "StartSession": _start,
    "RefreshSession": _refresh,
    "EndSession": _end,
}
COMMANDS = frozenset(_DECIDERS)


def evolve(state: Session, event: Event) -> Session:
    """`state` with `event` folded in (`aggregate.evolve_with`)."""
    return evolve_with(_FOLDS, state, event)


def _started(state: Session, event: Event) -> Session:
    return replace(
        state,
        user_id=event["user_id"],
        org_id=event["org_id"],
        amr=event["amr"],
        created_at_utc=event["at_utc"],
        last_used_at_utc=event["at_utc"],
        expires_at_utc=event["expires_at_utc"],
        idle_timeout_s=event["idle_timeout_s"],
        current_hash=event["token_hash"],
    )


def _refreshed(state: Session, event: Event) -> Session:
    kept = (*state.previous_hashes, state.current_hash)[-PREVIOUS_HASHES_KEPT:]
    return replace(
        state,
        current_hash=event["token_hash"],
        previous_hashes=kept,
        last_used_at_utc=event["at_utc"],
    )


def _revoked(state: Session, event: Event) -> Session:
    if state.revoked:  # the first reason stays
        return state
    return replace(state, revoked_reason=event["reason"], revoked_at_utc=event["at_utc"])


Fold = Callable[[Session, Event], Session]

_FOLDS: dict[str, Fold] = {
    "SessionStarted": _started,
    "SessionRefreshed": _refreshed,
    "SessionRevoked": _revoked,
}
EVENTS = frozenset(_FOLDS)


def replay(session_id: str, events: list[Event]) -> Session:
    """The state after `events`, from nothing."""
    return replay_with(Session(session_id), evolve, events)
