"""The identity handler's step: commands in, contract-shaped events, outcome and audit out;
versions count, ids are deterministic, a command handed over twice causes nothing twice."""

from __future__ import annotations

import hashlib
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


def test_outputs_of_acked_commands_are_forgotten_so_the_table_stays_small() -> None:
    # each batch starts where the last one ended: the commands before it were delivered and
    # acked, so only the batch in hand keeps its outputs for a redelivery
    stored = handle(None, round_trip(COMMAND_SCHEMA, CREATE), NOW, offset=0, keep_from=0).stored
    for n in range(2, 200):
        cmd = round_trip(COMMAND_SCHEMA, command("AssignRole", n, user_id="nobody", role="viewer"))
        stored = handle(stored, cmd, NOW, offset=n, keep_from=n).stored
        assert stored is not None
        assert [c for c, _ in stored.recent] == [f"cmd-{n}"]
    # a batch of three commands keeps all three until the next batch begins
    for n in (200, 201, 202):
        cmd = round_trip(COMMAND_SCHEMA, command("AssignRole", n, user_id="nobody", role="viewer"))
        stored = handle(stored, cmd, NOW, offset=n, keep_from=200).stored
    assert stored is not None
    assert [c for c, _ in stored.recent] == ["cmd-200", "cmd-201", "cmd-202"]
    again = handle(stored, round_trip(COMMAND_SCHEMA, command("AssignRole", 201, user_id="nobody",
                   role="viewer")), NOW, offset=201, keep_from=200)  # fmt: skip
    assert again.repeated
    assert again.outcome is not None  # its outcome sent again, as before
    assert state.load(state.dump(stored)) == stored  # the offsets survive the table


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


def digest(n: int) -> str:
    return hashlib.sha256(f"refresh-{n}".encode()).hexdigest()


SESSION = "5b0d7a8e-2f44-4c1e-8f1a-7a6a3e9d2c11"


def session_command(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    return command(
        kind, n, aggregate=SESSION, aggregate_type="session", org_id="org_1", actor_id="ana",
        **fields,
    )  # fmt: skip


START = session_command(
    "StartSession", 1, user_id="ana", token_hash=digest(0),
    expires_at_utc=T0 + timedelta(days=30), idle_timeout_s=3600, amr="pwd otp",
)  # fmt: skip


def test_a_session_starts_and_rotates_through_the_handler() -> None:
    stored, [started, refreshed] = run(
        None,
        START,
        session_command("RefreshSession", 2, token_hash=digest(0), new_token_hash=digest(1)),
    )
    [event] = started.events
    assert round_trip(EVENT_SCHEMA, event) == event
    assert (event["type"], event["aggregate_type"], event["aggregate_id"]) == (
        "SessionStarted", "session", SESSION,
    )  # fmt: skip
    assert (event["user_id"], event["org_id"], event["token_hash"]) == ("ana", "org_1", digest(0))
    assert (event["idle_timeout_s"], event["amr"]) == (3600, "pwd otp")
    [rotated] = refreshed.events
    assert (rotated["type"], rotated["token_hash"], rotated["aggregate_version"]) == (
        "SessionRefreshed", digest(1), 2,
    )  # fmt: skip
    assert out(refreshed)["accepted"] is True
    assert stored is not None
    assert stored.state.current_hash == digest(1)  # type: ignore[union-attr]


def test_a_reused_refresh_token_is_refused_and_revokes_the_session() -> None:
    stored, [*_, reused] = run(
        None,
        START,
        session_command("RefreshSession", 2, token_hash=digest(0), new_token_hash=digest(1)),
        session_command("RefreshSession", 3, token_hash=digest(0), new_token_hash=digest(2)),
    )
    [event] = reused.events
    assert round_trip(EVENT_SCHEMA, event) == event
    assert (event["type"], event["reason"], event["aggregate_version"]) == (
        "SessionRevoked", "refresh token reused", 3,
    )  # fmt: skip
    assert event["command_id"] == "cmd-3"
    outcome = out(reused)
    assert round_trip(OUTCOME_SCHEMA, outcome) == outcome
    assert (outcome["accepted"], outcome["code"], outcome["event_count"]) == (
        False, "refresh_reused", 1,
    )  # fmt: skip
    assert outcome["aggregate_version"] == 3
    assert "used already" in outcome["message"]
    assert (aud(reused)["outcome"], aud(reused)["detail"]) == ("rejected", "refresh_reused")
    assert stored is not None
    assert stored.state.version == 3
    assert stored.state.revoked_reason == "refresh token reused"  # type: ignore[union-attr]
    # handed over again: the same refusal and the same event, and no second revocation
    _, [again] = run(stored, session_command("RefreshSession", 3, token_hash=digest(0),
                                             new_token_hash=digest(2)))  # fmt: skip
    assert again.repeated
    assert again.events == reused.events
    assert again.outcome == reused.outcome
    # the current token is dead too
    _, [late] = run(
        stored,
        session_command("RefreshSession", 4, token_hash=digest(1), new_token_hash=digest(3)),
    )
    assert (out(late)["code"], late.events) == ("revoked", [])


def test_an_email_is_claimed_once_through_the_handler() -> None:
    def claim(n: int, user: str) -> dict[str, Any]:
        return command("ClaimEmail", n, aggregate="ana@x.com", aggregate_type="email",
                       org_id=None, actor_kind="system", user_id=user)  # fmt: skip

    stored, [first, same, other] = run(None, claim(1, "u1"), claim(2, "u1"), claim(3, "u2"))
    [event] = first.events
    assert (event["type"], event["email"], event["user_id"]) == ("EmailClaimed", "ana@x.com", "u1")
    assert (out(same)["accepted"], out(same)["event_count"]) == (True, 0)
    assert (out(other)["accepted"], out(other)["code"]) == (False, "email_taken")
    assert other.events == []
    assert stored is not None
    assert stored.state.version == 1


def test_session_and_email_state_survive_json() -> None:
    session_stored, _ = run(
        None,
        START,
        *[session_command("RefreshSession", n, token_hash=digest(n - 2),
                          new_token_hash=digest(n - 1)) for n in range(2, 5)],
        session_command("EndSession", 5, reason="logout"),
    )  # fmt: skip
    assert session_stored is not None
    assert session_stored.state.previous_hashes == (digest(0), digest(1), digest(2))  # type: ignore[union-attr]
    assert session_stored.state.revoked_at_utc is not None  # type: ignore[union-attr]
    restored = state.load(json.loads(json.dumps(state.dump(session_stored))))
    assert restored == session_stored
    end_again = session_command("EndSession", 6, reason="again")
    assert run(restored, end_again) == run(session_stored, end_again)
    email_stored, _ = run(
        None,
        command("ClaimEmail", 1, aggregate="bo@x.com", aggregate_type="email", user_id="u1"),
    )
    assert email_stored is not None
    assert state.load(json.loads(json.dumps(state.dump(email_stored)))) == email_stored
    with pytest.raises(ValueError, match="unknown aggregate type"):
        state.load({"format": state.FORMAT, "state": {"aggregate_type": "planet"}})
