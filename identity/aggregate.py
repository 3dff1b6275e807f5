"""What every identity aggregate shares: commands and events as plain mappings, the refusal
`decide` raises, and `evolve`/`replay` as folds over a table of per-event folds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

Event = dict[str, Any]
Command = Mapping[str, Any]


class Rejected(Exception):  # noqa: N818 - a refusal, answered to the caller as it is
    """A command refused by the aggregate: `code` for programs, the message for people.

    A refusal may still change the aggregate: `events` are what it causes all the same (a
    reused refresh token is refused and revokes its session). The handler folds and sends
    them as it does an accepted command's, and answers the command as refused."""

    def __init__(self, code: str, message: str, *, events: Iterable[Event] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.events: list[Event] = list(events)


class Versioned(Protocol):
    """An aggregate's state: a frozen dataclass whose version counts the events folded in."""

    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=Versioned)


def evolve_with(folds: Mapping[str, Callable[[S, Event], S]], state: S, event: Event) -> S:
    """`state` with `event` folded in by the fold of its type; an event of a type it does not
    know leaves the state as it is but counts, so the version is the number of events."""
    state = replace(state, version=state.version + 1)  # type: ignore[type-var]  # a dataclass, per Versioned
    fold = folds.get(event["type"])
    return fold(state, event) if fold is not None else state


def replay_with(empty: S, evolve: Callable[[S, Event], S], events: Iterable[Event]) -> S:
    """The state after `events`, from `empty`."""
    state = empty
    for event in events:
        state = evolve(state, event)
    return state
