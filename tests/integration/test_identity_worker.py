"""The identity command handler on the real broker and registry: commands decided in order per
aggregate into versioned events, outcomes and audit entries; after a SIGKILL and the loss of its
local store, a restarted worker restores the aggregates from the changelog, answers a command
it had decided with the same outcome and goes on at the next version."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from identity.handler import COMMAND_SCHEMA, field_names
from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.stack_util import produce
from tests.integration.streams_util import WorkerProcess

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
KEY = b"organization:org_1"


def command(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    values = {
        "event_id": str(uuid.UUID(int=n)), "occurred_at_utc": T0 + timedelta(minutes=n),
        "recorded_at_utc": T0 + timedelta(minutes=n), "source": "api", "schema_version": 1,
        "type": kind, "aggregate_type": "organization", "aggregate_id": "org_1",
        "org_id": "org_1", "actor_id": "owner", "actor_kind": "user", "ip": "127.0.0.1",
        "user_agent": "tests", "reauthenticated_with_otp": False, **fields,
    }  # fmt: skip
    return {name: values.get(name) for name in field_names(COMMAND_SCHEMA)}


def publish(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, records: list[tuple[bytes, Any]]
) -> None:
    """Commands (records) and raw bytes on identity.commands, in order."""
    topic = catalog.identity("commands")
    encode = serde.encoder(topic.subject, topic.value_schema)
    values = [(key, encode(r) if isinstance(r, dict) else r) for key, r in records]
    produce(settings, topic.name, values)


def decoded(settings: Settings, serde: AvroSerde, topic: str) -> list[dict[str, Any]]:
    return [value for _, value in read_topic(settings, topic, serde)]


CREATE = command("CreateOrganization", 1, name="Desk", owner_user_id="owner")
KEY_CREATED = command(
    "CreateApiKey", 4, key_id="k1", name="loader", prefix="obk_k1", secret_hash="s",
    role="analyst", scope="read",
)  # fmt: skip


def test_commands_are_decided_in_order_and_a_restart_from_the_changelog_goes_on(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    test_id: str,
    tmp_path: Path,
) -> None:
    settings, catalog = stack_settings, contracts_ready
    outcomes_topic = catalog.identity("command_outcomes").name
    events_topic = catalog.identity("events").name
    publish(settings, serde, catalog, [
        (KEY, CREATE),
        (KEY, command("InviteMember", 2, invitation_id="i1", email="ana@x.com", role="analyst",
                      token_hash="h", expires_at_utc=T0 + timedelta(days=7))),
        (KEY, command("AssignRole", 3, user_id="owner", role="viewer")),  # the last owner
        (KEY, b"\x00\x00\x00\x00\x07not a command"),  # logged and skipped
        (b"organization:org_2", command("RemoveMember", 9, user_id="owner")),  # mis-keyed
        (KEY, KEY_CREATED),
    ])  # fmt: skip
    worker = WorkerProcess(test_id, tmp_path, command="identity")
    worker.start()
    try:
        wait_until(lambda: len(decoded(settings, serde, outcomes_topic)) >= 4, 90, "four outcomes")
        outcomes = decoded(settings, serde, outcomes_topic)
        assert [(o["command_type"], o["accepted"], o["code"]) for o in outcomes] == [
            ("CreateOrganization", True, None),
            ("InviteMember", True, None),
            ("AssignRole", False, "last_owner"),
            ("CreateApiKey", True, None),
        ]
        events = decoded(settings, serde, events_topic)
        assert [(e["type"], e["aggregate_version"]) for e in events] == [
            ("OrganizationCreated", 1),
            ("MemberAdded", 2),
            ("MemberInvited", 3),
            ("ApiKeyCreated", 4),
        ]
        audit = decoded(settings, serde, catalog.audit().name)
        assert [(a["action"], a["outcome"]) for a in audit] == [
            ("CreateOrganization", "accepted"),
            ("InviteMember", "accepted"),
            ("AssignRole", "rejected"),
            ("CreateApiKey", "accepted"),
        ]
        assert worker.logs().count("identity.command_undecodable") == 2  # bytes, mis-keyed

        # killed, its local store gone: the table comes back from its changelog
        worker.kill()
        shutil.rmtree(settings.state_dir / "identity" / f"{test_id}-identity", ignore_errors=True)
        publish(settings, serde, catalog, [
            (KEY, KEY_CREATED),  # handed over again: its earlier outcome, no new event
            (KEY, command("RevokeApiKey", 5, key_id="k1")),
        ])  # fmt: skip
        worker.start()

        def revoked() -> bool:
            outcomes = decoded(settings, serde, outcomes_topic)
            return any(o["command_type"] == "RevokeApiKey" for o in outcomes)

        # the killed member holds its partitions until its session times out (faust's 60 s),
        # then the rebalance and the table's recovery from its changelog
        wait_until(revoked, 180, "the outcome of RevokeApiKey")
    finally:
        worker.stop()
    # at least once: what the first run had not committed is handed over again, and every
    # command handed over twice is answered with the very same outcome record
    by_command: dict[str, list[dict[str, Any]]] = {}
    for outcome in decoded(settings, serde, outcomes_topic):
        by_command.setdefault(outcome["command_id"], []).append(outcome)
    assert len(by_command) == 5  # four commands (one of them twice) and RevokeApiKey
    assert len(by_command[KEY_CREATED["event_id"]]) >= 2
    for records in by_command.values():
        assert all(r == records[0] for r in records)
    # and decided nothing twice: its events may come again, the very same records (same ids)
    first: dict[str, dict[str, Any]] = {}
    for event in decoded(settings, serde, events_topic):
        assert first.setdefault(event["event_id"], event) == event
    assert [(e["type"], e["aggregate_version"]) for e in first.values()] == [
        ("OrganizationCreated", 1),
        ("MemberAdded", 2),
        ("MemberInvited", 3),
        ("ApiKeyCreated", 4),
        ("ApiKeyRevoked", 5),
    ]
