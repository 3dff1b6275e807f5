"""One identity command decided: the pure step the identity command handler runs per record.

`handle(stored, command, now)` takes what the handler's table keeps for the command's aggregate
(its state and the outcomes of its latest commands) and one `IdentityCommand` record, and
returns the `IdentityEvent` records, the `IdentityCommandOutcome`, the `AuditRecorded` entry and
what the table keeps next. The worker around it only decodes, calls this and sends.

Idempotent by construction: event ids are UUIDv5 of (command id, position), and a command whose
id is among the aggregate's latest `RECENT_COMMANDS` outcomes is answered with that outcome
again and causes nothing (the runtime may hand a record over twice after a crash). The table
keeps a bounded number of outcomes, so its size follows the number of aggregates, not the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from identity import organization, user
from identity.organization import Rejected
from schemas.contracts import ContractSet

RECENT_COMMANDS = 64
SOURCE = "worker:identity"
_IDS = uuid.UUID("6c1c3c52-5d0e-4d8a-9a55-3f0f1b7c2e10")  # namespace of identity record ids

EVENT_SCHEMA = "energy.optibid.identity.IdentityEvent"
OUTCOME_SCHEMA = "energy.optibid.identity.IdentityCommandOutcome"
AUDIT_SCHEMA = "energy.optibid.identity.AuditRecorded"
COMMAND_SCHEMA = "energy.optibid.identity.IdentityCommand"

Record = dict[str, Any]
State = organization.Organization | user.User


@dataclass(frozen=True)
class Aggregate:
    """How one aggregate type decides and folds, and which command field names it."""

    empty: Callable[[str], State]
    decide: Callable[[Any, Mapping[str, Any]], list[Record]]
    evolve: Callable[[Any, Record], Any]
    id_field: str  # the field of its commands and events that holds the aggregate's id


AGGREGATES: dict[str, Aggregate] = {
    "organization": Aggregate(
        organization.Organization, organization.decide, organization.evolve, "org_id"
    ),
    "user": Aggregate(user.User, user.decide, user.evolve, "user_id"),
}


@dataclass(frozen=True)
class Stored:
    """What the handler's table keeps per aggregate: its state and its latest outcomes."""

    state: State
    recent: tuple[tuple[str, Record], ...] = ()

    def outcome_of(self, command_id: str) -> Record | None:
        return next((o for c, o in self.recent if c == command_id), None)


@dataclass(frozen=True)
class Decision:
    events: list[Record]
    outcome: Record
    audit: Record
    stored: Stored | None  # what the table keeps next (None: nothing, no such aggregate)
    repeated: bool = False  # the command was decided before; nothing new happened


@cache
def field_names(schema: str) -> tuple[str, ...]:
    return ContractSet().get(schema).field_names


def contract_record(schema: str, values: Mapping[str, Any]) -> Record:
    """A record of `schema` with every field: `values`, null for the optional ones not given.
    A name the schema lacks is a programming error and says so."""
    names = field_names(schema)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise KeyError(f"{schema} has no field {', '.join(unknown)}")
    return {name: values.get(name) for name in names}


def _aggregate_command(command: Mapping[str, Any], aggregate: Aggregate) -> dict[str, Any]:
    """The command as the aggregate's decide reads it: its fields that are set, the
    aggregate's id under its own name, and the command's time as `at_utc`."""
    decided = {k: v for k, v in command.items() if v is not None}
    decided[aggregate.id_field] = command["aggregate_id"]
    decided["at_utc"] = command["occurred_at_utc"]
    return decided


def handle(stored: Stored | None, command: Mapping[str, Any], now: datetime) -> Decision:
    """Decide `command` (an IdentityCommand record) against `stored` (None: nothing yet)."""
    command_id = str(command["event_id"])
    kind = str(command["aggregate_type"])
    aggregate = AGGREGATES.get(kind)
    if stored is not None:
        earlier = stored.outcome_of(command_id)
        if earlier is not None:
            return Decision([], earlier, _audit(command, earlier, now), stored, repeated=True)
    if aggregate is None:
        known = ", ".join(sorted(AGGREGATES))
        unknown = Rejected("unknown_aggregate", f"no aggregate type {kind!r}; one of {known}")
        return _rejected(stored, command, unknown, now)
    if stored is None:
        stored = Stored(aggregate.empty(str(command["aggregate_id"])))
    try:
        decided = aggregate.decide(stored.state, _aggregate_command(command, aggregate))
    except Rejected as refusal:
        return _rejected(stored, command, refusal, now)
    except KeyError as missing:  # a command without a field its type needs
        invalid = Rejected("invalid", f"{command['type']} needs the field {missing.args[0]}")
        return _rejected(stored, command, invalid, now)
    state = stored.state
    events = []
    for position, fields in enumerate(decided):
        state = aggregate.evolve(state, fields)
        events.append(_event(command, fields, position, state.version, now))
    outcome = _outcome(command, True, state.version, len(events), now)
    kept = _remember(stored, state, command_id, outcome)
    return Decision(events, outcome, _audit(command, outcome, now), kept)


def _remember(stored: Stored, state: State, command_id: str, outcome: Record) -> Stored:
    recent = (*stored.recent, (command_id, outcome))[-RECENT_COMMANDS:]
    return replace(stored, state=state, recent=recent)


def _rejected(
    stored: Stored | None, command: Mapping[str, Any], refusal: Rejected, now: datetime
) -> Decision:
    version = stored.state.version if stored is not None else 0
    outcome = _outcome(command, False, version, 0, now, refusal)
    audit = _audit(command, outcome, now)
    if stored is None:  # nothing to keep for an aggregate type that does not exist
        return Decision([], outcome, audit, None)
    kept = _remember(stored, stored.state, str(command["event_id"]), outcome)
    return Decision([], outcome, audit, kept)


def _actor(command: Mapping[str, Any]) -> dict[str, Any]:
    return {k: command.get(k) for k in ("org_id", "actor_id", "actor_kind", "ip", "user_agent")}


def _event(
    command: Mapping[str, Any], fields: Record, position: int, version: int, now: datetime
) -> Record:
    command_id = str(command["event_id"])
    payload = {k: v for k, v in fields.items() if k not in ("type", "at_utc")}
    return contract_record(
        EVENT_SCHEMA,
        {
            "event_id": str(uuid.uuid5(_IDS, f"{command_id}|{position}")),
            "occurred_at_utc": command["occurred_at_utc"],
            "recorded_at_utc": now,
            "source": SOURCE,
            "schema_version": 1,
            "type": fields["type"],
            "aggregate_type": command["aggregate_type"],
            "aggregate_id": command["aggregate_id"],
            "aggregate_version": version,
            "command_id": command_id,
            **_actor(command),
            **payload,
        },
    )


def _outcome(
    command: Mapping[str, Any],
    accepted: bool,
    version: int,
    count: int,
    now: datetime,
    refusal: Rejected | None = None,
) -> Record:
    command_id = str(command["event_id"])
    return contract_record(
        OUTCOME_SCHEMA,
        {
            "event_id": str(uuid.uuid5(_IDS, f"{command_id}|outcome")),
            "occurred_at_utc": now,
            "recorded_at_utc": now,
            "source": SOURCE,
            "schema_version": 1,
            "command_id": command_id,
            "command_type": command["type"],
            "aggregate_type": command["aggregate_type"],
            "aggregate_id": command["aggregate_id"],
            "accepted": accepted,
            "code": refusal.code if refusal else None,
            "message": str(refusal) if refusal else None,
            "aggregate_version": version,
            "event_count": count,
        },
    )


def _audit(command: Mapping[str, Any], outcome: Record, now: datetime) -> Record:
    return contract_record(
        AUDIT_SCHEMA,
        {
            "event_id": str(uuid.uuid5(_IDS, f"{command['event_id']}|audit")),
            "occurred_at_utc": command["occurred_at_utc"],
            "recorded_at_utc": now,
            "source": SOURCE,
            "schema_version": 1,
            **_actor(command),
            "action": command["type"],
            "outcome": "accepted" if outcome["accepted"] else "rejected",
            "target_type": command["aggregate_type"],
            "target_id": command["aggregate_id"],
            "detail": outcome["code"],
        },
    )
