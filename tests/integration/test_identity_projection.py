"""The identity projector on the real broker and database: identity.events and audit.events
folded into the identity read models; the same records handed over again change nothing; a
rebuild (in process and by `optibid project-identity --rebuild --once`) gives the very same
tables; undecodable records are skipped and counted; a version gap stops the projector naming
the aggregate; `wait_for_version` sees a live write."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from optibid.settings import Settings
from projections.identity_models import (
    AUDIT_SCHEMA,
    EVENT_SCHEMA,
    TABLES,
    IdentityProjector,
    VersionGapError,
    stored_version,
    wait_for_version,
)
from projections.migrate import migrate
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.serde import AvroSerde
from tests.integration.kafka_util import wait_until
from tests.integration.projections_util import ProjectorProcess
from tests.integration.stack_util import produce

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
CONTRACTS = ContractSet()
EVENT_FIELDS = CONTRACTS.get(EVENT_SCHEMA).field_names
AUDIT_FIELDS = CONTRACTS.get(AUDIT_SCHEMA).field_names
HAS_SESSION_FIELDS = "amr" in EVENT_FIELDS  # added with the session aggregate

Keyed = tuple[bytes, dict[str, Any]]


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def event(
    kind: str, aggregate: str, version: int, minute: int, *, actor: str = "u1", **fields: Any
) -> Keyed:
    aggregate_type, aggregate_id = aggregate.split(":")
    values = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{aggregate}|{version}")),
        "occurred_at_utc": at(minute), "recorded_at_utc": at(minute), "source": "worker:identity",
        "schema_version": 1, "type": kind, "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id, "aggregate_version": version,
        "command_id": str(uuid.uuid4()), "actor_id": actor, "actor_kind": "user",
        "ip": "10.0.0.1", "user_agent": "browser/1", **fields,
    }  # fmt: skip
    return aggregate.encode(), {name: values.get(name) for name in EVENT_FIELDS}


def audit(n: int, org_id: str | None, action: str, outcome: str, **fields: Any) -> Keyed:
    values = {
        "event_id": f"audit-{n}", "occurred_at_utc": at(n), "recorded_at_utc": at(n),
        "source": "api", "schema_version": 1, "org_id": org_id, "actor_id": "u1",
        "actor_kind": "user", "ip": "10.0.0.1", "user_agent": "browser/1", "action": action,
        "outcome": outcome, **fields,
    }  # fmt: skip
    return (org_id or "").encode(), {name: values.get(name) for name in AUDIT_FIELDS}


ORG = "organization:o1"
EVENTS: list[Keyed] = [
    event("OrganizationCreated", ORG, 1, 1, org_id="o1", name="Desk", created_by="u1"),
    event("MemberAdded", ORG, 2, 1, org_id="o1", user_id="u1", role="owner"),
    event("MemberInvited", ORG, 3, 2, org_id="o1", invitation_id="i1", email="ana@x.com",
          role="analyst", token_hash="th1", expires_at_utc=at(2) + timedelta(days=7)),
    event("InvitationAccepted", ORG, 4, 3, actor="u2", org_id="o1", invitation_id="i1",
          user_id="u2"),
    event("MemberAdded", ORG, 5, 3, actor="u2", org_id="o1", user_id="u2", role="analyst"),
    event("RoleAssigned", ORG, 6, 4, org_id="o1", user_id="u2", role="admin",
          previous_role="analyst"),
    event("ApiKeyCreated", ORG, 7, 5, org_id="o1", key_id="k1", name="loader", prefix="obk_k1",
          secret_hash="sh1", role="analyst", scope="read", created_by="u1"),
    event("ApiKeyCreated", ORG, 8, 6, actor="u2", org_id="o1", key_id="k2", name="mine",
          prefix="obk_k2", secret_hash="sh2", role="admin", scope="read commands",
          expires_at_utc=at(6) + timedelta(days=30), created_by="u2"),
    event("MemberRemoved", ORG, 9, 7, org_id="o1", user_id="u2", role="admin"),
    event("ApiKeyRevoked", ORG, 10, 7, org_id="o1", key_id="k2",
          reason="its creator left the organisation"),
    event("ApiKeyRevoked", ORG, 11, 8, org_id="o1", key_id="k1", reason="revoked"),
    event("UserRegistered", "user:u1", 1, 0, user_id="u1", email="owner@x.com",
          display_name="Owner", password_sealed="p1"),
    event("PasswordChanged", "user:u1", 2, 10, password_sealed="p2"),
    event("TotpEnrolled", "user:u1", 3, 11, totp_sealed="t1", recovery_sealed="r1"),
    event("SignInFailed", "user:u1", 4, 12, failures=1, reason="invalid_credentials"),
    event("SignedIn", "user:u1", 5, 13, totp_step=1000, recovery_sealed="r2"),
    event("UserNicknamed", "user:u1", 6, 14, display_name="newer producer"),  # unknown type
    event("UserRegistered", "user:u2", 1, 2, actor="u2", email="ana@x.com",
          display_name="Ana", password_sealed="p9"),
    event("SignInFailed", "user:u2", 2, 20, failures=1, reason="invalid_credentials"),
    event("SignInFailed", "user:u2", 3, 21, failures=2, reason="invalid_credentials"),
    event("UserLocked", "user:u2", 4, 21, locked_until_utc=at(22)),
    event("UserRegistered", "user:u3", 1, 30, actor="u3", email="gone@x.com",
          display_name="Gone", password_sealed="p3"),
    event("UserDisabled", "user:u3", 2, 31, reason="left"),
    event("UserErased", "user:u3", 3, 32),
    event("SessionStarted", "session:s1", 1, 40, org_id="o1", user_id="u1", token_hash="h1",
          expires_at_utc=at(40) + timedelta(days=30), idle_timeout_s=1800, amr="pwd otp"),
    event("SessionRefreshed", "session:s1", 2, 45, org_id="o1", token_hash="h2",
          ip="10.0.0.2", user_agent="browser/2"),
    event("SessionRevoked", "session:s1", 3, 50, org_id="o1", reason="logout"),
    event("SessionStarted", "session:s2", 1, 41, org_id="o1", user_id="u2", token_hash="h3",
          expires_at_utc=at(41) + timedelta(days=30), idle_timeout_s=900, amr="pwd"),
    event("EmailClaimed", "email:owner@x.com", 1, 0, user_id="u1", email="owner@x.com"),
]  # fmt: skip
AUDIT: list[Keyed] = [
    audit(1, "o1", "CreateOrganization", "accepted", target_type="organization", target_id="o1"),
    audit(2, None, "login", "failed", target_type="user", target_id="u2",
          detail="invalid_credentials"),
    audit(3, "o1", "token_refreshed", "succeeded", target_type="session", target_id="s1"),
]  # fmt: skip
NOT_A_RECORD = b"\x01not avro at all"
UNKNOWN_SCHEMA = b"\x00\x7f\xff\xff\xf0an id nobody registered"


def publish(
    settings: Settings,
    serde: AvroSerde,
    catalog: TopicCatalog,
    events: list[Keyed],
    audits: list[Keyed] | None = None,
    raw: tuple[bytes, bytes] | None = None,
) -> None:
    """Events on identity.events and entries on audit.events (and, with `raw`, one value that
    is no record on each)."""
    events_topic, audit_topic = catalog.identity("events"), catalog.audit()
    encode_event = serde.encoder(events_topic.subject, events_topic.value_schema)
    encode_audit = serde.encoder(audit_topic.subject, audit_topic.value_schema)
    values = [(key, encode_event(record)) for key, record in events]
    entries = [(key, encode_audit(record)) for key, record in audits or []]
    if raw is not None:
        values.insert(len(values) // 2, (b"user:u1", raw[0]))
        entries.append((b"", raw[1]))
    produce(settings, events_topic.name, values)
    if entries:
        produce(settings, audit_topic.name, entries)


def dump(settings: Settings, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every identity table, in a stable order."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        return {
            table: sorted(conn.execute(f'SELECT * FROM "{schema}".{table}').fetchall(), key=repr)
            for table in TABLES
        }


def rows(settings: Settings, schema: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return conn.execute(query.replace("S.", f'"{schema}".')).fetchall()


def skipped(topic: str) -> float:
    return (
        REGISTRY.get_sample_value("optibid_identity_projector_skipped_total", {"topic": topic})
        or 0.0
    )


@pytest.fixture
def migrated(stack_settings: Settings, db_schema: str) -> str:
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        migrate(conn, db_schema)
    return db_schema


def projector_of(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, schema: str
) -> IdentityProjector:
    return IdentityProjector(
        settings.bootstrap_servers, serde, catalog, settings.postgres_dsn, schema
    )


def assert_read_models(settings: Settings, schema: str) -> None:
    def select(columns: str, table: str) -> list[tuple[Any, ...]]:
        return rows(settings, schema, f"SELECT {columns} FROM S.identity_{table} ORDER BY 1")

    assert select("org_id, name, created_by, created_at", "organizations") == [
        ("o1", "Desk", "u1", at(1)),
    ]
    assert select("org_id, user_id, role, since", "memberships") == [
        ("o1", "u1", "owner", at(1)),  # u2 was removed
    ]
    assert select(
        "invitation_id, org_id, email, role, token_hash, expires_at, invited_by, created_at,"
        " accepted_by, accepted_at", "invitations",
    ) == [
        ("i1", "o1", "ana@x.com", "analyst", "th1", at(2) + timedelta(days=7), "u1", at(2),
         "u2", at(3)),
    ]  # fmt: skip
    assert select(
        "key_id, org_id, name, prefix, secret_hash, role, scope, expires_at, created_by,"
        " created_at, revoked_at, revoked_reason", "api_keys",
    ) == [
        ("k1", "o1", "loader", "obk_k1", "sh1", "analyst", "read", None, "u1", at(5), at(8),
         "revoked"),
        ("k2", "o1", "mine", "obk_k2", "sh2", "admin", "read commands", at(6) + timedelta(days=30),
         "u2", at(6), at(7), "its creator left the organisation"),
    ]  # fmt: skip
    assert select(
        "user_id, email, display_name, password_sealed, totp_sealed, recovery_sealed,"
        " last_totp_step, failures, lockouts, locked_until, disabled, erased, created_at,"
        " updated_at", "users",
    ) == [
        # signed in: failures and lockouts reset; the unknown event changed nothing
        ("u1", "owner@x.com", "Owner", "p2", "t1", "r2", 1000, 0, 0, None, False, False,
         at(0), at(13)),
        # locked: a lockout more, the failures start again
        ("u2", "ana@x.com", "Ana", "p9", None, None, None, 0, 1, at(22), False, False,
         at(2), at(21)),
        # erased: disabled, email and name gone, the sealed values as the log has them
        ("u3", "", "", "p3", None, None, None, 0, 0, None, True, True, at(30), at(32)),
    ]  # fmt: skip
    amr = ("pwd otp", "pwd") if HAS_SESSION_FIELDS else ("", "")
    idle = (1800, 900) if HAS_SESSION_FIELDS else (None, None)
    assert select(
        "session_id, user_id, org_id, amr, ip, user_agent, created_at, last_used_at, expires_at,"
        " idle_timeout_s, revoked_at, revoked_reason", "sessions",
    ) == [
        # the client last seen (the refresh's), the methods of the sign-in
        ("s1", "u1", "o1", amr[0], "10.0.0.2", "browser/2", at(40), at(45),
         at(40) + timedelta(days=30), idle[0], at(50), "logout"),
        ("s2", "u2", "o1", amr[1], "10.0.0.1", "browser/1", at(41), at(41),
         at(41) + timedelta(days=30), idle[1], None, None),
    ]  # fmt: skip
    assert select(
        "event_id, occurred_at, org_id, action, outcome, target_type, target_id, detail", "audit"
    ) == [
        ("audit-1", at(1), "o1", "CreateOrganization", "accepted", "organization", "o1", None),
        ("audit-2", at(2), None, "login", "failed", "user", "u2", "invalid_credentials"),
        ("audit-3", at(3), "o1", "token_refreshed", "succeeded", "session", "s1", None),
    ]
    assert dict(select("aggregate_type || ':' || aggregate_id, version", "versions")) == {
        ORG: 11, "user:u1": 6, "user:u2": 4, "user:u3": 3, "session:s1": 3, "session:s2": 1,
        "email:owner@x.com": 1,
    }  # fmt: skip


def test_identity_events_are_projected_once_and_rebuilt_the_same(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    migrated: str,
    test_id: str,
    tmp_path: Path,
) -> None:
    settings, catalog, schema = stack_settings, contracts_ready, migrated
    events_topic, audit_topic = catalog.identity("events").name, catalog.audit().name
    skipped_before = skipped(events_topic) + skipped(audit_topic)
    publish(settings, serde, catalog, EVENTS, AUDIT, raw=(NOT_A_RECORD, UNKNOWN_SCHEMA))
    projector = projector_of(settings, serde, catalog, schema)
    stop = threading.Event()

    first = projector.run(stop, until_caught_up=True)
    assert (first.records, first.applied, first.duplicates, first.skipped) == (
        len(EVENTS) + len(AUDIT) + 2, len(EVENTS) + len(AUDIT), 0, 2,
    )  # fmt: skip
    assert skipped(events_topic) + skipped(audit_topic) - skipped_before == 2
    assert_read_models(settings, schema)
    projected = dump(settings, schema)

    # handed over again (a producer's retry, a restore): every record is a duplicate
    publish(settings, serde, catalog, EVENTS, AUDIT)
    again = projector.run(stop, until_caught_up=True)
    assert (again.records, again.applied, again.duplicates) == (
        len(EVENTS) + len(AUDIT), 0, len(EVENTS) + len(AUDIT),
    )  # fmt: skip
    assert dump(settings, schema) == projected

    # rebuilt from the start: the same tables
    rebuilt = projector.rebuild(stop)
    assert rebuilt.applied == len(EVENTS) + len(AUDIT)
    assert rebuilt.duplicates == len(EVENTS) + len(AUDIT)
    assert rebuilt.skipped == 2
    assert dump(settings, schema) == projected

    # read-your-writes: a live projector, an event, and the version waited for
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert wait_for_version(conn, schema, "user", "u1", 6, 0.1)
        began = time.monotonic()
        assert not wait_for_version(conn, schema, "user", "u1", 7, 0.2)
        assert time.monotonic() - began >= 0.2
        live = threading.Thread(target=projector.run, args=(stop,))
        live.start()
        try:
            publish(
                settings,
                serde,
                catalog,
                [event("PasswordChanged", "user:u1", 7, 60, password_sealed="p4")],
            )
            assert wait_for_version(conn, schema, "user", "u1", 7, 30)
        finally:
            stop.set()
            live.join(30)
        assert not live.is_alive()
    assert rows(settings, schema, "SELECT password_sealed, updated_at FROM S.identity_users"
                " WHERE user_id = 'u1'") == [("p4", at(60))]  # fmt: skip
    projector.close()
    live_dump = dump(settings, schema)

    # and by the command: emptied, replayed, stopped once caught up
    command = ProjectorProcess(test_id, schema, tmp_path)
    output = command.run("project-identity", "--rebuild", "--once", "--metrics-port", "0")
    assert "rebuilt identity:" in output
    assert dump(settings, schema) == live_dump


def test_a_version_gap_stops_the_projector_naming_the_aggregate(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, migrated: str
) -> None:
    settings, catalog, schema = stack_settings, contracts_ready, migrated
    publish(settings, serde, catalog, [
        event("UserRegistered", "user:u9", 1, 0, email="u9@x.com", display_name="Nine",
              password_sealed="p"),
        event("PasswordChanged", "user:u9", 3, 1, password_sealed="q"),  # 2 is missing
    ])  # fmt: skip
    projector = projector_of(settings, serde, catalog, schema)
    with pytest.raises(VersionGapError, match=r"user 'u9' is at version 1.*is version 3") as gap:
        projector.run(threading.Event(), until_caught_up=True)
    projector.close()
    assert (gap.value.aggregate_id, gap.value.stored, gap.value.version) == ("u9", 1, 3)
    # nothing past the gap: the batch holding it was rolled back whole (with version 1 when
    # that came in the same batch)
    with psycopg.connect(settings.postgres_dsn) as conn:
        version = stored_version(conn, schema, "user", "u9")
        users = conn.execute(f'SELECT user_id, password_sealed FROM "{schema}".identity_users')
        assert users.fetchall() == ([("u9", "p")] if version == 1 else [])
    assert version in (0, 1)


class PostgresLink:
    """A TCP relay to PostgreSQL that the test cuts (every connection dropped, new ones
    refused) and restores: an outage of the projector's database, the server untouched."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_a_batch_read_while_postgres_is_away_is_written_once_it_is_back(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, migrated: str
) -> None:
    settings, catalog, schema = stack_settings, contracts_ready, migrated
    info = conninfo_to_dict(settings.postgres_dsn)
    link = PostgresLink(str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432))))
    dsn = make_conninfo(settings.postgres_dsn, host="127.0.0.1", port=str(link.port))
    projector = IdentityProjector(settings.bootstrap_servers, serde, catalog, dsn, schema)
    projector.retry_max_s = 0.5
    retries = REGISTRY.get_sample_value("optibid_identity_projector_postgres_retries_total") or 0
    stop = threading.Event()
    live = threading.Thread(target=projector.run, args=(stop,))
    live.start()
    try:
        wait_until(lambda: projector._conn is not None, 30, "the projector's connection")
        link.cut()
        publish(settings, serde, catalog, EVENTS[:11])  # the organisation's events
        wait_until(
            lambda: (
                REGISTRY.get_sample_value("optibid_identity_projector_postgres_retries_total")
                or 0
            ) > retries,
            30,
            "the batch write retried",
        )  # fmt: skip
        link.restore()
        with psycopg.connect(settings.postgres_dsn) as conn:
            assert wait_for_version(conn, schema, "organization", "o1", 11, 30)
    finally:
        stop.set()
        live.join(30)
        projector.close()
        link.close()
    assert not live.is_alive()
    keys = rows(
        settings, schema, "SELECT key_id, revoked_reason FROM S.identity_api_keys ORDER BY 1"
    )
    assert keys == [("k1", "revoked"), ("k2", "its creator left the organisation")]
