"""The identity handler's step: commands in, contract-shaped events, outcome and audit out;
versions count, ids are deterministic, a command handed over twice causes nothing twice."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from identity import organization, state
from identity.handler import (
    AUDIT_SCHEMA,
    COMMAND_SCHEMA,
    EVENT_SCHEMA,
    OUTCOME_SCHEMA,
    RECENT_COMMANDS,
    Decision,
    Stored,
    contract_record,
    field_names,
    handle,
)
from schemas.contracts import ContractSet

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(seconds=1)
CONTRACTS = ContractSet()


def command(kind: str, n: int, aggregate: str = "org_1", **fields: Any) -> dict[str, Any]:
    """An IdentityCommand record, every field present as the decoder gives it."""
    values = {
        "event_id": f"cmd-{n}", "occurred_at_utc": T0 + timedelta(minutes=n),
        "recorded_at_utc": T0, "source": "api", "schema_version": 1, "type": kind,
        "aggregate_type": "organization", "aggregate_id": aggregate, "org_id": aggregate,
        "actor_id": "owner", "actor_kind": "user", "ip": "127.0.0.1", "user_agent": "tests",
        "reauthenticated_with_otp": False, **fields,
    }  # fmt: skip
    return {name: values.get(name) for name in field_names(COMMAND_SCHEMA)}


def round_trip(schema: str, record: dict[str, Any]) -> dict[str, Any]:
    """Encode and decode with the contract: the record is what the topic can carry."""
    parsed = CONTRACTS.get(schema).parsed
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, parsed, parsed)
    assert isinstance(decoded, dict)
    return decoded


def run(stored: Stored | None, *commands: dict[str, Any]) -> tuple[Stored | None, list[Decision]]:
    decisions = []
    for cmd in commands:
        decision = handle(stored, round_trip(COMMAND_SCHEMA, cmd), NOW)
        decisions.append(decision)
        stored = decision.stored
    return stored, decisions


def out(decision: Decision) -> dict[str, Any]:
    assert decision.outcome is not None
    return decision.outcome


def aud(decision: Decision) -> dict[str, Any]:
    assert decision.audit is not None
    return decision.audit


CREATE = command("CreateOrganization", 1, name="Desk", owner_user_id="owner")
INVITE = command(
    "InviteMember", 2, invitation_id="i1", email="ana@x.com", role="analyst",
    token_hash="h", expires_at_utc=T0 + timedelta(days=7),
)  # fmt: skip


def test_an_accepted_command_gives_versioned_events_an_outcome_and_an_audit_entry() -> None:
    stored, [created, invited] = run(None, CREATE, INVITE)
    assert [e["type"] for e in created.events] == ["OrganizationCreated", "MemberAdded"]
    assert [e["aggregate_version"] for e in created.events + invited.events] == [1, 2, 3]
    for decision in (created, invited):
        for event in decision.events:
            assert round_trip(EVENT_SCHEMA, event) == event
            assert event["command_id"] == out(decision)["command_id"]
        assert round_trip(OUTCOME_SCHEMA, out(decision)) == decision.outcome
        assert round_trip(AUDIT_SCHEMA, aud(decision)) == decision.audit
    member = created.events[1]
    assert (member["user_id"], member["role"], member["org_id"]) == ("owner", "owner", "org_1")
    assert out(invited)["accepted"] is True
    assert (out(invited)["aggregate_version"], out(invited)["event_count"]) == (3, 1)
    assert aud(invited)["action"] == "InviteMember"
    assert aud(invited)["outcome"] == "accepted"
    assert stored is not None
    # the events folded from nothing give the state the table keeps
    state = organization.Organization("org_1")
    for event in created.events + invited.events:
        state = organization.evolve(state, {**event, "at_utc": event["occurred_at_utc"]})
    assert state == stored.state


def test_event_ids_are_deterministic_and_a_repeated_command_causes_nothing() -> None:
    _, [first] = run(None, CREATE)
    _, [again] = run(None, CREATE)
    assert [e["event_id"] for e in first.events] == [e["event_id"] for e in again.events]
    assert len({e["event_id"] for e in first.events}) == 2
    # handed over twice (a crash before the offset was committed): the same outputs, sent
    # again since the events may have missed the broker, and no second decision
    stored, [_, repeated] = run(None, CREATE, CREATE)
    assert repeated.repeated
    assert repeated.events == first.events
    assert repeated.outcome == first.outcome
    assert repeated.audit == first.audit
    assert stored is not None
    assert stored.state.version == 2


def test_a_command_at_or_below_the_last_offset_is_never_decided_again() -> None:
    stored: Stored | None = None
    for offset, cmd in enumerate([CREATE, INVITE]):
        decision = handle(stored, round_trip(COMMAND_SCHEMA, cmd), NOW, offset=offset)
        stored = decision.stored
    assert stored is not None
    assert stored.last_offset == 1
    forgotten = Stored(stored.state, (), stored.last_offset)  # its outputs no longer kept
    again = handle(forgotten, round_trip(COMMAND_SCHEMA, CREATE), NOW, offset=0)
    assert (again.repeated, again.events, again.outcome, again.stored) == (
        True, [], None, forgotten,
    )  # fmt: skip
    nxt = handle(forgotten, round_trip(COMMAND_SCHEMA, command("AssignRole", 3, user_id="owner",
                 role="owner")), NOW, offset=2)  # fmt: skip
    assert nxt.stored is not None
    assert nxt.stored.last_offset == 2


def test_a_command_checked_against_an_older_version_is_a_conflict() -> None:
    stored, _ = run(None, CREATE)
    stale = command(
        "InviteMember", 2, invitation_id="i9", email="z@x.com", role="viewer", token_hash="h",
        expires_at_utc=T0 + timedelta(days=1), expected_version=1,
    )  # fmt: skip
    _, [conflict] = run(stored, stale)
    assert conflict.outcome is not None
    assert out(conflict)["code"] == "conflict"
    _, [fine] = run(stored, {**stale, "expected_version": 2})
    assert fine.outcome is not None
    assert out(fine)["accepted"] is True


def test_a_rejected_command_names_why_and_changes_nothing() -> None:
    stored, [_, refused] = run(
        None, CREATE, command("AssignRole", 2, user_id="owner", role="viewer")
    )
    assert refused.events == []
    assert out(refused)["accepted"] is False
    assert out(refused)["code"] == "last_owner"
    assert "last owner" in out(refused)["message"]
    assert aud(refused)["outcome"] == "rejected"
    assert aud(refused)["detail"] == "last_owner"
    assert stored is not None
    assert stored.state.version == 2
    missing = command("InviteMember", 3, email="x@y.com", role="viewer")  # no invitation_id
    _, [invalid] = run(stored, missing)
    assert out(invalid)["code"] == "invalid"
    assert "invitation_id" in out(invalid)["message"]


def test_user_commands_decide_on_the_user_aggregate() -> None:
    register = command(
        "RegisterUser", 1, aggregate="usr_1", aggregate_type="user", org_id=None,
        email="Ana@X.com", password_sealed="v1.sealed",
    )  # fmt: skip
    stored, [registered] = run(None, register)
    [event] = registered.events
    assert (event["type"], event["user_id"], event["email"]) == (
        "UserRegistered",
        "usr_1",
        "ana@x.com",
    )
    assert event["password_sealed"] == "v1.sealed"
    assert stored is not None
    assert stored.state.version == 1


def test_an_unknown_aggregate_type_is_refused_and_nothing_is_kept() -> None:
    _, [refused] = run(None, command("CreateOrganization", 1, aggregate_type="planet"))
    assert out(refused)["code"] == "unknown_aggregate"
    assert refused.stored is None


def test_the_outcomes_kept_per_aggregate_are_bounded() -> None:
    stored, _ = run(None, CREATE)
    for n in range(2, RECENT_COMMANDS + 40):
        stored, _ = run(stored, command("AssignRole", n, user_id="nobody", role="viewer"))
    assert stored is not None
    assert len(stored.recent) == RECENT_COMMANDS
    assert stored.outputs_of("cmd-1") is None  # the oldest are forgotten
    assert stored.outputs_of(f"cmd-{RECENT_COMMANDS + 39}") is not None


def test_a_field_the_contract_lacks_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="no field favourite_colour"):
        contract_record(EVENT_SCHEMA, {"type": "X", "favourite_colour": "red"})


def test_the_stored_state_survives_json_and_decides_the_same_afterwards() -> None:
    accept = command(
        "AcceptInvitation", 3, actor_id="ana", invitation_id="i1", token_hash="h", user_id="ana",
        email="ana@x.com",
    )  # fmt: skip
    key = command(
        "CreateApiKey", 4, key_id="k1", name="loader", prefix="obk_k1", secret_hash="s",
        role="analyst", scope="read", expires_at_utc=T0 + timedelta(days=90),
    )  # fmt: skip
    pending = command(
        "InviteMember", 5, invitation_id="i2", email="bo@x.com", role="viewer",
        token_hash="h2", expires_at_utc=T0 + timedelta(days=7),
    )  # fmt: skip
    stored, _ = run(None, CREATE, INVITE, accept, key, pending)
    assert stored is not None
    restored = state.load(json.loads(json.dumps(state.dump(stored))))
    assert restored == stored
    nxt = command("AssignRole", 6, user_id="ana", role="viewer")
    assert run(restored, nxt) == run(stored, nxt)
    # and a user with its lockout and MFA
    user_stored, _ = run(
        None,
        command("RegisterUser", 1, aggregate="u1", aggregate_type="user", email="a@b.com",
                password_sealed="p"),
        *[command("RecordSignIn", n, aggregate="u1", aggregate_type="user", succeeded=False,
                  reason="bad_password") for n in range(2, 8)],
    )  # fmt: skip
    assert user_stored is not None
    assert user_stored.state.locked_until_utc is not None  # type: ignore[union-attr]
    assert state.load(json.loads(json.dumps(state.dump(user_stored)))) == user_stored
    with pytest.raises(ValueError, match="format"):
        state.load({"format": 99})
