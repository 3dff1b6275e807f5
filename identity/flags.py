"""Feature flags: an aggregate per flag, and the one function that evaluates a flag.

A flag is set and removed only through commands (`SetFeatureFlag`, `RemoveFeatureFlag`, sent
by platform operators); the projector folds its events into the read model the API reads.

`evaluate(flag, org_id, role)` decides, in this order:
1. an organisation listed in `org_ids_off` is off, one in `org_ids_on` is on;
2. a flag not `enabled` is off;
3. a flag limited to `roles` is off for every other role;
4. `percentage` rolls the flag out to that share of organisations, chosen by a stable hash of
   (flag, organisation): raising the percentage only ever adds organisations, and every member
   of an organisation sees the same answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with
from identity.organization import role_of

NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")


@dataclass(frozen=True)
class Flag:
    """One feature flag; `version` counts the events folded into it."""

    flag: str
    version: int = 0
    exists: bool = False
    enabled: bool = False
    percentage: int = 100
    roles: frozenset[str] = frozenset()
    org_ids_on: frozenset[str] = frozenset()
    org_ids_off: frozenset[str] = frozenset()


def _names(value: object) -> frozenset[str]:
    return frozenset(v.strip() for v in str(value or "").split(",") if v.strip())


def _joined(values: frozenset[str]) -> str:
    return ",".join(sorted(values))


def decide(state: Flag, command: Command) -> list[Event]:
    kind = command["type"]
    if kind == "SetFeatureFlag":
        return [_set(state, command)]
    if kind == "RemoveFeatureFlag":
        if not state.exists:
            raise Rejected("unknown_flag", f"no feature flag {state.flag!r}")
        return [{"type": "FeatureFlagRemoved", "flag": state.flag, "at_utc": command["at_utc"]}]
    raise Rejected("unknown_command", f"the flag aggregate has no command {kind!r}")


def _set(state: Flag, command: Command) -> Event:
    if not NAME.match(state.flag):
        raise Rejected(
            "invalid",
            f"flag name {state.flag!r}: 2 to 64 of a-z, 0-9, '_', '.', '-', starting with a letter",
        )
    percentage = int(command.get("percentage", 100))
    if not 0 <= percentage <= 100:
        raise Rejected("invalid", f"percentage {percentage} is not between 0 and 100")
    roles = _names(command.get("roles"))
    for role in roles:
        role_of(role)  # refuses an unknown role by name
    on, off = _names(command.get("org_ids_on")), _names(command.get("org_ids_off"))
    if on & off:
        raise Rejected("invalid", f"organisations both on and off: {_joined(on & off)}")
    return {
        "type": "FeatureFlagSet",
        "flag": state.flag,
        "at_utc": command["at_utc"],
        "enabled": bool(command.get("enabled", False)),
        "percentage": percentage,
        "roles": _joined(roles),
        "org_ids_on": _joined(on),
        "org_ids_off": _joined(off),
        "reason": command.get("reason"),
    }


COMMANDS = frozenset({"SetFeatureFlag", "RemoveFeatureFlag"})


def _flag_set(state: Flag, event: Event) -> Flag:
    return replace(
        state,
        exists=True,
        enabled=bool(event["enabled"]),
        percentage=int(event["percentage"]),
        roles=_names(event.get("roles")),
        org_ids_on=_names(event.get("org_ids_on")),
        org_ids_off=_names(event.get("org_ids_off")),
    )


def _flag_removed(state: Flag, event: Event) -> Flag:
    return Flag(state.flag, version=state.version)


_FOLDS = {"FeatureFlagSet": _flag_set, "FeatureFlagRemoved": _flag_removed}


def evolve(state: Flag, event: Event) -> Flag:
    return evolve_with(_FOLDS, state, event)


def replay(name: str, events: Iterable[Mapping[str, Any]]) -> Flag:
    return replay_with(Flag(name), evolve, [dict(e) for e in events])


def bucket(flag: str, org_id: str) -> int:
    """0..99: where `org_id` falls in `flag`'s rollout (stable across processes and releases)."""
    digest = hashlib.sha256(f"{flag}\x00{org_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def evaluate(flag: Flag | None, org_id: str, role: str | None) -> bool:
    """Whether `flag` is on for a principal of `org_id` with `role` (see the module doc); an
    unknown flag is off."""
    if flag is None or not flag.exists:
        return False
    if org_id in flag.org_ids_off:
        return False
    if org_id in flag.org_ids_on:
        return True
    if not flag.enabled:
        return False
    if flag.roles and role not in flag.roles:
        return False
    return bucket(flag.flag, org_id) < flag.percentage
