"""The identity read models' fold without a database: which writes each event causes, with
which parameters, and the version guard (duplicate, next, gap, unknown type) over a cursor that
only records what it is asked."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import psycopg
import pytest
from prometheus_client import REGISTRY

from projections import identity_models as im
from projections.migrate import MIGRATIONS_DIR
from schemas.catalog import TopicCatalog
from schemas.errors import DeserializationError

AT = datetime(2026, 12, 1, 9, tzinfo=UTC)
COMMON = {
    "event_id": "e-1",
    "occurred_at_utc": AT,
    "recorded_at_utc": AT + timedelta(seconds=1),
    "source": "worker:identity",
    "schema_version": 1,
    "command_id": "c-1",
    "org_id": None,
    "actor_id": "u-owner",
    "actor_kind": "user",
    "ip": "10.0.0.1",
    "user_agent": "tests",
}
# every payload field an event may carry, set, so a planner that forgets one shows
PAYLOAD = {
    "name": "Desk",
    "owner_user_id": "u-owner",
    "email": "ana@x.com",
    "display_name": "Ana",
    "user_id": "u-2",
    "role": "analyst",
    "invitation_id": "i-1",
    "token_hash": "th",
    "expires_at_utc": AT + timedelta(days=7),
    "key_id": "k-1",
    "prefix": "obk_k1",
    "secret_hash": "sh",
    "scope": "read",
    "password_sealed": "p",
    "totp_sealed": "t",
    "recovery_sealed": "r",
    "succeeded": None,
    "reason": "because",
    "totp_step": 42,
    "previous_role": "viewer",
    "created_by": "u-owner",
    "failures": 3,
    "locked_until_utc": AT + timedelta(minutes=1),
    "idle_timeout_s": 1800,
    "amr": "pwd otp",
}
AGGREGATE_OF = {
    **dict.fromkeys(
        (
            "OrganizationCreated", "MemberAdded", "RoleAssigned", "MemberRemoved",
            "MemberInvited", "InvitationAccepted", "ApiKeyCreated", "ApiKeyRevoked",
        ),
        "organization",
    ),
    **dict.fromkeys(
        (
            "UserRegistered", "PasswordChanged", "TotpEnrolled", "SignInFailed", "UserLocked",
            "SignedIn", "UserDisabled", "UserEnabled", "UserErased",
        ),
        "user",
    ),
    **dict.fromkeys(("SessionStarted", "SessionRefreshed", "SessionRevoked"), "session"),
    **dict.fromkeys(("SsoConfigured", "SsoRemoved"), "organization"),
    **dict.fromkeys(("EmailClaimed", "EmailReleased"), "email"),
    **dict.fromkeys(
        (
            "TierChanged", "StripeCustomerLinked", "SubscriptionActivated", "InvoicePaid",
            "PaymentFailed", "SubscriptionCanceled", "DowngradedForNonPayment",
        ),
        "account",
    ),
    **dict.fromkeys(("FeatureFlagSet", "FeatureFlagRemoved"), "flag"),
}  # fmt: skip


def event(
    kind: str, version: int = 1, aggregate_id: str = "agg-1", **fields: Any
) -> dict[str, Any]:
    return {
        **COMMON,
        **PAYLOAD,
        "type": kind,
        "aggregate_type": AGGREGATE_OF.get(kind, "user"),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        **fields,
    }


def test_every_event_type_of_the_spec_is_known() -> None:
    assert frozenset(AGGREGATE_OF) == im.KNOWN_EVENTS


@pytest.mark.parametrize("kind", sorted(AGGREGATE_OF))
def test_each_write_gives_the_parameters_of_its_statement(kind: str) -> None:
    for write in im.plan(event(kind)):
        wanted = im.statement_parameters(write.statement)
        assert wanted <= set(write.params), write.statement
        assert set(write.params) - wanted <= {"at"}, write.statement  # the event's time


def test_every_statement_names_only_identity_tables_of_the_schema() -> None:
    for name in im.STATEMENTS:
        text = im.statement("s1", name).as_string(None)
        tables = set(re.findall(r'"s1"\."(\w+)"', text))
        assert tables, name
        assert tables <= set(im.TABLES)
        assert "identity_keys" not in text


def test_the_tables_are_those_of_the_migrations() -> None:
    text = "".join(
        (MIGRATIONS_DIR / name).read_text()
        for name in ("0004_identity.sql", "0005_sso.sql", "0006_billing.sql")
    )
    assert set(re.findall(r"CREATE TABLE (\w+)", text)) == set(im.TABLES)


def test_organisation_events_write_on_the_aggregates_organisation() -> None:
    (created,) = im.plan(event("OrganizationCreated", aggregate_id="o-1", org_id="other"))
    assert created.statement == "organization_created"
    assert created.params == {"org_id": "o-1", "at": AT, "name": "Desk", "created_by": "u-owner"}
    (invited,) = im.plan(event("MemberInvited", aggregate_id="o-1"))
    assert invited.params["invited_by"] == "u-owner"  # the actor
    assert invited.params["expires_at"] == AT + timedelta(days=7)
    (removed,) = im.plan(event("MemberRemoved", aggregate_id="o-1"))
    assert removed == im.Write("member_removed", {"org_id": "o-1", "at": AT, "user_id": "u-2"})


def test_user_events_take_the_user_from_the_aggregate_id() -> None:
    (write,) = im.plan(event("SignInFailed", aggregate_id="u-9", user_id=None, failures=2))
    assert write == im.Write("sign_in_failed", {"user_id": "u-9", "at": AT, "failures": 2})
    (locked,) = im.plan(event("UserLocked", aggregate_id="u-9"))
    assert locked.params["locked_until"] == AT + timedelta(minutes=1)
    (signed_in,) = im.plan(event("SignedIn", aggregate_id="u-9", recovery_sealed=None))
    assert signed_in.params == {
        "user_id": "u-9", "at": AT, "totp_step": 42, "recovery_sealed": None,
    }  # fmt: skip


def test_a_session_keeps_its_client_and_its_methods() -> None:
    (started,) = im.plan(event("SessionStarted", aggregate_id="s-1"))
    assert started.params == {
        "session_id": "s-1", "at": AT, "user_id": "u-2", "org_id": None, "ip": "10.0.0.1",
        "user_agent": "tests", "expires_at": AT + timedelta(days=7), "idle_timeout_s": 1800,
        "amr": "pwd otp",
    }  # fmt: skip
    # an event written before amr existed: no method known
    older = event("SessionStarted", aggregate_id="s-1")
    del older["amr"], older["idle_timeout_s"]
    (write,) = im.plan(older)
    assert (write.params["amr"], write.params["idle_timeout_s"]) == ("", None)
    (revoked,) = im.plan(event("SessionRevoked", aggregate_id="s-1", reason="logout"))
    assert revoked == im.Write(
        "session_revoked", {"session_id": "s-1", "at": AT, "reason": "logout"}
    )


@pytest.mark.parametrize("kind", ["EmailClaimed", "EmailReleased", "SomethingNewer"])
def test_events_no_read_model_keeps_write_nothing(kind: str) -> None:
    assert im.plan(event(kind)) == []


def test_an_audit_entry_maps_its_times() -> None:
    record = {**COMMON, "action": "login", "outcome": "failed", "target_type": "user",
              "target_id": "u-2", "detail": "invalid_credentials", "org_id": "o-1"}  # fmt: skip
    params = im.audit_params(record)
    assert set(params) == im.statement_parameters("audit")
    assert (params["occurred_at"], params["recorded_at"]) == (AT, AT + timedelta(seconds=1))
    assert (params["action"], params["detail"], params["org_id"]) == (
        "login", "invalid_credentials", "o-1",
    )  # fmt: skip


def stand_in(cursor: FakeCursor) -> im.Target:
    fake: Any = cursor
    return cast("im.Target", fake)


class FakeCursor:
    """Answers the version query with `stored` and records every statement run."""

    def __init__(self, stored: int | None) -> None:
        self.stored = stored
        self.ran: list[tuple[str, dict[str, Any]]] = []
        self.rowcount = 1
        self._row: tuple[int] | None = None

    def execute(self, query: Any, params: dict[str, Any]) -> FakeCursor:
        name = next(n for n in im.STATEMENTS if im.statement("s1", n) is query)
        self.ran.append((name, params))
        self._row = (self.stored,) if name.startswith("version") and self.stored else None
        return self

    def fetchone(self) -> tuple[int] | None:
        return self._row


def run(stored: int | None, ev: dict[str, Any]) -> tuple[bool, list[str], FakeCursor]:
    cursor = FakeCursor(stored)
    applied = im.apply(stand_in(cursor), "s1", ev)
    return applied, [name for name, _ in cursor.ran], cursor


def test_the_next_version_is_applied_and_stored() -> None:
    applied, ran, cursor = run(2, event("RoleAssigned", version=3, aggregate_id="o-1"))
    assert applied
    assert ran == ["version_for_update", "role_assigned", "set_version"]
    assert cursor.ran[-1][1] == {
        "aggregate_type": "organization", "aggregate_id": "o-1", "version": 3,
    }  # fmt: skip


def test_a_first_event_needs_no_stored_version() -> None:
    applied, ran, _ = run(None, event("UserRegistered", version=1))
    assert applied
    assert ran == ["version_for_update", "user_registered", "set_version"]


@pytest.mark.parametrize("version", [1, 2])
def test_a_version_at_or_below_the_stored_one_is_a_duplicate(version: int) -> None:
    applied, ran, _ = run(2, event("PasswordChanged", version=version))
    assert not applied
    assert ran == ["version_for_update"]


def test_a_gap_names_the_aggregate_and_both_versions() -> None:
    with pytest.raises(im.VersionGapError) as caught:
        im.apply(
            stand_in(FakeCursor(2)),
            "s1",
            event("SignedIn", version=5, aggregate_id="u-7"),
            where="t[0]@9",
        )
    message = str(caught.value)
    assert "user 'u-7'" in message
    assert "version 2" in message
    assert "version 5" in message
    assert "3..4" in message
    assert "t[0]@9" in message
    assert (caught.value.aggregate_type, caught.value.stored, caught.value.version) == (
        "user", 2, 5,
    )  # fmt: skip


def test_an_unknown_event_type_moves_the_version_on_and_nothing_else() -> None:
    applied, ran, _ = run(4, event("UserRenamedLater", version=5))
    assert applied
    assert ran == ["version_for_update", "set_version"]


# --- the runner's record handling, without a broker or a database ----------------------------

CATALOG = TopicCatalog("u.")
EVENTS_TOPIC = CATALOG.identity("events").name
AUDIT_TOPIC = CATALOG.audit().name


class FakeMessage:
    def __init__(self, topic: str, offset: int, value: bytes | None) -> None:
        self._topic, self._offset, self._value = topic, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


class FakeSerde:
    """Decodes b"event" and b"audit" to records of those schemas; anything else is bad data."""

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        if data == b"event":
            return im.EVENT_SCHEMA, event("UserEnabled")
        if data == b"audit":
            return im.AUDIT_SCHEMA, {"event_id": "a-1"}
        raise DeserializationError(f"not a record: {data!r}")


def projector() -> im.IdentityProjector:
    serde: Any = FakeSerde()
    return im.IdentityProjector("127.0.0.1:1", serde, CATALOG, "postgresql://nowhere", "s1")


def skipped(topic: str) -> float:
    value = REGISTRY.get_sample_value("optibid_identity_projector_skipped_total", {"topic": topic})
    return value or 0.0


def test_records_that_do_not_decode_or_belong_elsewhere_are_skipped_and_counted() -> None:
    before = skipped(EVENTS_TOPIC), skipped(AUDIT_TOPIC)
    messages: list[Any] = [
        FakeMessage(EVENTS_TOPIC, 10, b"event"),
        FakeMessage(EVENTS_TOPIC, 11, b"\x01garbage"),
        FakeMessage(EVENTS_TOPIC, 12, b"audit"),  # an audit entry on the events topic
        FakeMessage(EVENTS_TOPIC, 13, None),  # a tombstone: nothing, but passed
        FakeMessage(AUDIT_TOPIC, 4, b"audit"),
    ]
    batch = projector()._read(messages, threading.Event())
    assert [(item.audit, item.where) for item in batch.items] == [
        (False, f"{EVENTS_TOPIC}[0]@10"),
        (True, f"{AUDIT_TOPIC}[0]@4"),
    ]
    assert batch.offsets == {(EVENTS_TOPIC, 0): 14, (AUDIT_TOPIC, 0): 5}
    assert (batch.records, batch.skipped) == (5, 2)
    assert (skipped(EVENTS_TOPIC) - before[0], skipped(AUDIT_TOPIC) - before[1]) == (2, 0)


def test_an_outage_is_waited_out_and_the_work_done_whole_again() -> None:
    runner = projector()
    runner.retry_max_s = 0.01
    runner._connection = lambda stop: cast("Any", object())  # type: ignore[method-assign]
    attempts: list[int] = []

    def work(conn: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise psycopg.OperationalError("server closed the connection")
        return "written"

    assert runner._with_postgres(work, threading.Event(), "a batch") == "written"
    assert len(attempts) == 3


def test_a_stop_during_an_outage_gives_up_without_the_work_done() -> None:
    runner = projector()
    runner._connection = lambda stop: cast("Any", object())  # type: ignore[method-assign]
    stop = threading.Event()

    def work(conn: Any) -> None:
        stop.set()
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(im.StoppedError):
        runner._with_postgres(work, stop, "a batch")
