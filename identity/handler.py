"""One identity command decided: the pure step the identity command handler runs per record.

`handle(stored, command, now)` takes what the handler's table keeps for the command's aggregate
(its state and the outcomes of its latest commands) and one `IdentityCommand` record, and
returns the `IdentityEvent` records, the `IdentityCommandOutcome`, the `AuditRecorded` entry and
what the table keeps next. The worker around it only decodes, calls this and sends.

Idempotent by construction: event ids are UUIDv5 of (command id, position); a command at or
below the offset of the last one decided for its aggregate is never decided again (the runtime
may hand records over twice after a crash); if it is among the aggregate's latest
`RECENT_COMMANDS`, its outputs are sent again (same ids: consumers drop duplicates), since its
events may have missed the broker while the state reached it. The table keeps a bounded number
of outputs per aggregate, so its size follows the number of aggregates, not the log.

A command may name the aggregate version it was checked against (`expected_version`); it is
refused as a conflict when the aggregate has moved on (two sign-ins with one recovery code).

A refusal may carry events (`Rejected.events`: a reused refresh token revokes its session):
they are folded and sent like an accepted command's, and the outcome says refused, with the
refusal's code and the number of those events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from identity import account, email, flags, organization, session, user
from identity.aggregate import Rejected
from schemas.contracts import ContractSet
from schemas.envelope import envelope

RECENT_COMMANDS = 64
SOURCE = "worker:identity"
_IDS = uuid.UUID("6c1c3c52-5d0e-4d8a-9a55-3f0f1b7c2e10")  # namespace of identity record ids

EVENT_SCHEMA = "energy.optibid.identity.IdentityEvent"
OUTCOME_SCHEMA = "energy.optibid.identity.IdentityCommandOutcome"
AUDIT_SCHEMA = "energy.optibid.identity.AuditRecorded"
COMMAND_SCHEMA = "energy.optibid.identity.IdentityCommand"

Record = dict[str, Any]
State = (
    organization.Organization
    | user.User
    | session.Session
    | email.EmailIndex
    | account.Account
    | flags.Flag
)


@dataclass(frozen=True)
class Aggregate:
    """How one aggregate type decides and folds, and which command field names it."""

    empty: Callable[[str], State]
    decide: Callable[[Any, Mapping[str, Any]], list[Record]]
    evolve: Callable[[Any, Record], Any]
    id_field: str  # the field of its commands and events that holds the aggregate's id
    commands: frozenset[str]


AGGREGATES: dict[str, Aggregate] = {
    "organization": Aggregate(
        organization.Organization,
        organization.decide,
        organization.evolve,
        "org_id",
        organization.COMMANDS,
    ),
    "user": Aggregate(user.User, user.decide, user.evolve, "user_id", user.COMMANDS),
    "session": Aggregate(
        session.Session, session.decide, session.evolve, "session_id", session.COMMANDS
    ),
    "email": Aggregate(email.EmailIndex, email.decide, email.evolve, "email", email.COMMANDS),
    "account": Aggregate(
        account.Account, account.decide, account.evolve, "org_id", account.COMMANDS
    ),
    "flag": Aggregate(flags.Flag, flags.decide, flags.evolve, "flag", flags.COMMANDS),
}


@dataclass(frozen=True)
class Outputs:
    """Everything one command sent: its events, outcome and audit entry."""

    events: tuple[Record, ...]
    outcome: Record
    audit: Record
    offset: int | None = None  # where its command was read


@dataclass(frozen=True)
class Stored:
    """What the handler's table keeps per aggregate: its state, the offset of the last command
    it decided (one aggregate's commands are on one partition, so offsets only grow), and the
    outputs of its latest RECENT_COMMANDS commands, to send again when one is handed over
    again (its events may not have reached the broker although the state did)."""

    state: State
    recent: tuple[tuple[str, Outputs], ...] = ()
    last_offset: int | None = None

    def outputs_of(self, command_id: str) -> Outputs | None:
        return next((o for c, o in self.recent if c == command_id), None)


@dataclass(frozen=True)
class Decision:
    events: list[Record]
    outcome: Record | None  # None only for a repeat too old to have its outputs kept
    audit: Record | None
    stored: Stored | None  # what the table keeps next (None: nothing, no such aggregate)
    repeated: bool = False  # decided before: the outputs are the earlier ones, sent again


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


def handle(
    stored: Stored | None,
    command: Mapping[str, Any],
    now: datetime,
    offset: int | None = None,
    keep_from: int | None = None,
) -> Decision:
    """Decide `command` (an IdentityCommand record, read at `offset` of its partition) against
    `stored` (None: nothing yet). `keep_from`: the first offset the runtime may still hand over
    again (the start of the batch in hand, whose acks are pending); the outputs of commands
    before it are delivered and acked, so the table forgets them. The table then holds, per
    aggregate, the outputs of its commands in the batch in hand only (at most RECENT_COMMANDS)."""
    repeat = _repeat(stored, str(command["event_id"]), offset)
    if repeat is not None:
        return repeat
    kind = str(command["aggregate_type"])
    aggregate = AGGREGATES.get(kind)
    if aggregate is None:
        known = ", ".join(sorted(AGGREGATES))
        unknown = Rejected("unknown_aggregate", f"no aggregate type {kind!r}; one of {known}")
        return _rejected(stored, command, unknown, now, offset)
    if stored is None:
        stored = Stored(aggregate.empty(str(command["aggregate_id"])))
    expected = command.get("expected_version")
    if expected is not None and expected != stored.state.version:
        conflict = Rejected(
            "conflict",
            f"{kind} {command['aggregate_id']} is at version {stored.state.version}, not"
            f" {expected}: it changed meanwhile; read it again and retry",
        )
        return _rejected(stored, command, conflict, now, offset)
    decision = _decide(stored, aggregate, command, now, offset)
    if keep_from is None or decision.stored is None:
        return decision
    pending = tuple(
        (c, o) for c, o in decision.stored.recent if o.offset is None or o.offset >= keep_from
    )
    return replace(decision, stored=replace(decision.stored, recent=pending))


def _repeat(stored: Stored | None, command_id: str, offset: int | None) -> Decision | None:
    """The answer to a command decided before: its outputs again when they are kept; nothing
    (but no second decision) for one older than that."""
    if stored is None:
        return None
    earlier = stored.outputs_of(command_id)
    if earlier is not None:
        return Decision(list(earlier.events), earlier.outcome, earlier.audit, stored, repeated=True)
    if offset is not None and stored.last_offset is not None and offset <= stored.last_offset:
        return Decision([], None, None, stored, repeated=True)
    return None


def _decide(
    stored: Stored,
    aggregate: Aggregate,
    command: Mapping[str, Any],
    now: datetime,
    offset: int | None,
) -> Decision:
    refusal: Rejected | None = None
    try:
        decided = aggregate.decide(stored.state, _aggregate_command(command, aggregate))
    except Rejected as refused:
        if not refused.events:
            return _rejected(stored, command, refused, now, offset)
        refusal, decided = refused, refused.events  # refused, but with effects all the same
    except (KeyError, TypeError, ValueError) as bad:  # a field missing or of the wrong kind
        invalid = Rejected("invalid", f"{command['type']} is malformed: {bad!r}")
        return _rejected(stored, command, invalid, now, offset)
    state = stored.state
    events = []
    for position, fields in enumerate(decided):
        state = aggregate.evolve(state, fields)
        events.append(_event(command, fields, position, state.version, now))
    outcome = _outcome(command, refusal is None, state.version, len(events), now, refusal)
    outputs = Outputs(tuple(events), outcome, _audit(command, outcome, now))
    kept = _remember(stored, state, str(command["event_id"]), outputs, offset)
    return Decision(events, outcome, outputs.audit, kept)


def _remember(
    stored: Stored, state: State, command_id: str, outputs: Outputs, offset: int | None
) -> Stored:
    recent = (*stored.recent, (command_id, replace(outputs, offset=offset)))[-RECENT_COMMANDS:]
    last = offset if offset is not None else stored.last_offset
    return replace(stored, state=state, recent=recent, last_offset=last)


def _rejected(
    stored: Stored | None,
    command: Mapping[str, Any],
    refusal: Rejected,
    now: datetime,
    offset: int | None,
) -> Decision:
    version = stored.state.version if stored is not None else 0
    outcome = _outcome(command, False, version, 0, now, refusal)
    audit = _audit(command, outcome, now)
    if stored is None:  # nothing to keep for an aggregate type that does not exist
        return Decision([], outcome, audit, None)
    outputs = Outputs((), outcome, audit)
    kept = _remember(stored, stored.state, str(command["event_id"]), outputs, offset)
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
            **envelope(
                event_id=str(uuid.uuid5(_IDS, f"{command_id}|{position}")),
                occurred_at_utc=command["occurred_at_utc"],
                recorded_at_utc=now,
                source=SOURCE,
            ),
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
            **envelope(
                event_id=str(uuid.uuid5(_IDS, f"{command_id}|outcome")),
                occurred_at_utc=now,
                recorded_at_utc=now,
                source=SOURCE,
            ),
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
            **envelope(
                event_id=str(uuid.uuid5(_IDS, f"{command['event_id']}|audit")),
                occurred_at_utc=command["occurred_at_utc"],
                recorded_at_utc=now,
                source=SOURCE,
            ),
            **_actor(command),
            "action": command["type"],
            "outcome": "accepted" if outcome["accepted"] else "rejected",
            "target_type": command["aggregate_type"],
            "target_id": command["aggregate_id"],
            "detail": outcome["code"],
        },
    )
