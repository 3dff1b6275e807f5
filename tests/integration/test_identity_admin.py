"""`optibid admin bootstrap` through the log: the commands go to the identity handler, the
command bus waits for their outcomes, and the events hold the owner with a password that only
their key opens. Without a handler running, the bus gives up at its deadline, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from identity import passwords
from identity.bus import CommandBus, OutcomeTimeout, new_command
from identity.keystore import PgKeyStore
from identity.vault import Vault
from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.kafka_util import read_topic
from tests.integration.streams_util import PROJECT, WorkerProcess

PASSWORD = "violet-kettle-harbour-93"


def admin(test_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": f"{test_id}.", "ADMIN_PW": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "optibid", "admin", "bootstrap", *args],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_bootstrap_makes_the_first_owner_through_the_log(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    test_id: str,
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(test_id, tmp_path, command="identity")
    worker.start()
    try:
        done = admin(
            test_id, "--email", "Owner@Example.com", "--org-name", "Desk", "--password-env",
            "ADMIN_PW",
        )  # fmt: skip
    finally:
        worker.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    events: list[dict[str, Any]] = [
        v for _, v in read_topic(stack_settings, contracts_ready.identity("events").name, serde)
    ]
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"EmailClaimed", "UserRegistered", "OrganizationCreated", "MemberAdded"}
    registered = by_type["UserRegistered"]
    assert (registered["aggregate_id"], registered["email"]) == (
        ids["user_id"],
        "owner@example.com",
    )
    member = by_type["MemberAdded"]
    assert (member["org_id"], member["user_id"], member["role"]) == (
        ids["org_id"], ids["user_id"], "owner",
    )  # fmt: skip
    # the password is in the log only sealed; the user's key opens it, and it verifies
    sealed = registered["password_sealed"]
    assert sealed.startswith("v1.")
    assert PASSWORD not in json.dumps(events, default=str)
    vault = Vault(PgKeyStore(stack_settings.postgres_dsn))
    hashed = vault.open_for(ids["user_id"], "password", sealed).decode()
    assert passwords.verify_password(hashed, PASSWORD)


@pytest.mark.parametrize(
    ("password", "says"),
    [("businessbabe", "common"), ("short-pw", "shorter than 12")],  # a list entry; too short
)
def test_a_weak_password_is_refused_before_anything_is_sent(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    test_id: str,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    says: str,
) -> None:
    monkeypatch.setenv("WEAK_PW", password)
    done = admin(test_id, "--email", "a@b.com", "--org-name", "Desk", "--password-env", "WEAK_PW")
    assert done.returncode == 2
    assert says in done.stderr
    assert password not in done.stderr


def test_without_a_handler_the_bus_gives_up_at_its_deadline(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde
) -> None:
    command = new_command(
        "CreateOrganization", "organization", "org_x", actor_id=None, actor_kind="system",
        org_id="org_x", name="Nobody", owner_user_id="usr_x",
    )  # fmt: skip
    with (
        CommandBus(stack_settings.bootstrap_servers, serde, contracts_ready) as bus,
        pytest.raises(OutcomeTimeout, match="is `optibid identity` running"),
    ):
        bus.send(command, timeout_s=2)
