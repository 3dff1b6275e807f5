"""The email-index aggregate: which user holds an email address, so that an address belongs to
one user at most, as `decide` and `evolve` (see `identity.organization` for the shape).

Its id is the address itself, stripped and lower-cased: every command about one address lands
on the one aggregate that decides for it, in order, so two registrations racing for one address
cannot both win. The API claims the address before it registers the user, and releases it when
the user changes address or is erased.

Rules:
- an address held by another user cannot be claimed;
- claiming an address one holds already changes nothing;
- only the holder releases an address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with


@dataclass(frozen=True)
class EmailIndex:
    """The state of one address; `version` counts the events folded into it."""

    email: str
    version: int = 0
    user_id: str | None = None  # the holder, None while the address is free


def normalised(email: str) -> str:
    """An address as the index keys it: stripped and lower-cased."""
    return email.strip().lower()


def _event(kind: str, state: EmailIndex, command: Command, **fields: Any) -> Event:
    return {"type": kind, "email": state.email, "at_utc": command["at_utc"], **fields}


def decide(state: EmailIndex, command: Command) -> list[Event]:
    """The events `command` causes on `state`; raises Rejected when the state forbids it."""
    kind = command["type"]
    handler = _DECIDERS.get(kind)
    if handler is None:
        raise Rejected("unknown_command", f"the email aggregate has no command {kind!r}")
    if state.email != normalised(state.email) or "@" not in state.email:
        raise Rejected(
            "invalid", f"{state.email!r} is not an email address stripped and lower-cased"
        )
    user = str(command["user_id"]).strip()
    if not user:
        raise Rejected("invalid", f"{kind} needs a user_id")
    return handler(state, command, user)


def _claim(state: EmailIndex, command: Command, user: str) -> list[Event]:
    if state.user_id == user:
        return []  # held by that user already: nothing changes
    if state.user_id is not None:
        raise Rejected("email_taken", f"{state.email} is in use")
    return [_event("EmailClaimed", state, command, user_id=user)]


def _release(state: EmailIndex, command: Command, user: str) -> list[Event]:
    if state.user_id != user:
        raise Rejected("not_holder", f"{state.email} is not held by {user}")
    return [_event("EmailReleased", state, command, user_id=user)]


_DECIDERS: dict[str, Callable[[EmailIndex, Command, str], list[Event]]] = {
    "ClaimEmail": _claim,
    "ReleaseEmail": _release,
}
COMMANDS = frozenset(_DECIDERS)


def evolve(state: EmailIndex, event: Event) -> EmailIndex:
    """`state` with `event` folded in (`aggregate.evolve_with`)."""
    return evolve_with(_FOLDS, state, event)


Fold = Callable[[EmailIndex, Event], EmailIndex]

_FOLDS: dict[str, Fold] = {
    "EmailClaimed": lambda s, e: replace(s, user_id=e["user_id"]),
    "EmailReleased": lambda s, e: replace(s, user_id=None),
}
EVENTS = frozenset(_FOLDS)


def replay(email: str, events: list[Event]) -> EmailIndex:
    """The state after `events`, from nothing."""
    return replay_with(EmailIndex(email), evolve, events)
