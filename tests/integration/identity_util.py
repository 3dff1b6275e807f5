"""The identity path for tests: the command handler (`optibid identity`), the identity
projector (`optibid project-identity`) and the API (`optibid api`) as processes of their own,
under a topic prefix and a schema of the test module's own, on the local stack."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from identity import provisioning
from identity.bus import CommandBus
from identity.keystore import PgKeyStore
from identity.vault import Vault
from optibid.settings import Settings
from projections import identity_reads
from projections.migrate import drop_schema, migrate
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import ensure_topics
from tests.integration.streams_util import ChildProcess, WorkerProcess, free_port

ROLES = ("owner", "admin", "analyst", "viewer", "billing")


def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class Person:
    role: str
    email: str
    password: str
    user_id: str
    org_id: str
    api_key: str = ""
    token: str = ""
    refresh: str = ""
    session_id: str = ""

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def key(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@dataclass
class IdentityPath:
    settings: Settings
    test_id: str
    schema: str
    catalog: TopicCatalog
    url: str
    env: dict[str, str]
    bus: CommandBus
    vault: Vault
    processes: dict[str, ChildProcess] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)  # org A, by role
    other: Person | None = None  # the owner of org B

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def login(self, person: Person, **extra: Any) -> httpx.Response:
        body = {"email": person.email, "password": person.password, **extra}
        return httpx.post(f"{self.url}/v1/auth/login", json=body, timeout=30)

    def sign_in(self, person: Person) -> None:
        answer = self.login(person)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        person.token, person.refresh = body["access_token"], body["refresh_token"]
        person.session_id = body["session_id"]

    def register(self, email: str, password: str) -> str:
        return provisioning.register_user(
            self.bus, self.vault, email=email, password=password, timeout_s=30
        )

    def member(self, org_id: str, user_id: str, timeout_s: float = 30) -> dict[str, Any] | None:
        found: dict[str, Any] | None = None

        def there() -> bool:
            nonlocal found
            with psycopg.connect(self.settings.postgres_dsn, autocommit=True) as conn:
                found = identity_reads.member(conn, self.schema, org_id, user_id)
            return found is not None

        wait_until(there, timeout_s, f"{user_id} in the read models of {org_id}")
        return found

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.logs()[-3000:]}" for n, p in self.processes.items())


def api_up(url: str) -> bool:
    """Whether an API process at `url` answers its health route."""
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def identity_path(
    settings: Settings, test_id: str, logs: Path, extra_env: dict[str, str] | None = None
) -> Iterator[IdentityPath]:
    """The three processes running, and org A (one user and one API key per role) and org B
    (an owner) made through the log, both on the enterprise tier. `extra_env`: more settings
    of the processes (Stripe, the operators' organisation, the meter's window)."""
    schema = test_id
    catalog = TopicCatalog(f"{test_id}.")
    ensure_topics(settings.bootstrap_servers, catalog)
    registry = RegistryClient(settings.schema_registry_url)
    register_all(registry, catalog, ContractSet())
    with psycopg.connect(settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, schema)
    PgKeyStore(settings.postgres_dsn).ensure()
    port = free_port()
    env = {
        **os.environ,
        "OPTIBID_TOPIC_PREFIX": f"{test_id}.",
        "OPTIBID_DB_SCHEMA": schema,
        "OPTIBID_API_PORT": str(port),
        "OPTIBID_LOG_FORMAT": "json",
        "OPTIBID_AUTH_KEY_RING_TTL_S": "2",  # a rotation reaches the API within seconds
        "OPTIBID_API_HEARTBEAT_S": "0.5",  # live streams ask again for their credential
        **(extra_env or {}),
    }
    handler = WorkerProcess(test_id, logs, command="identity")
    handler.start()
    projector = ChildProcess(logs / f"{test_id}-project-identity.log")
    projector.spawn(
        [sys.executable, "-m", "optibid", "project-identity", "--metrics-port", "0"], env
    )
    api = ChildProcess(logs / f"{test_id}-api.log")
    api.spawn([sys.executable, "-m", "optibid", "api"], env)
    bus = CommandBus(settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog)
    path = IdentityPath(
        settings, test_id, schema, catalog, f"http://127.0.0.1:{port}", env, bus,
        Vault(PgKeyStore(settings.postgres_dsn)),
        {"identity": handler, "project-identity": projector, "api": api},
    )  # fmt: skip
    try:
        wait_until(lambda: api_up(path.url), 60, "the API to answer")
        _populate(path)
        yield path
    finally:
        bus.close()
        for process in path.processes.values():
            process.stop()
        registry.close()
        drop_schema(settings.postgres_dsn, schema)


def _populate(path: IdentityPath) -> None:
    users: dict[str, tuple[str, str, str]] = {}
    for role in ROLES:
        email, password = (
            f"{role}@{path.test_id}.example.com",
            f"tangerine-orbit-{len(users)}-walrus",
        )
        users[role] = (path.register(email, password), email, password)
    org_a = provisioning.create_organization(
        path.bus, name="Desk A", owner_user_id=users["owner"][0], timeout_s=30
    )
    owner = provisioning.Actor(users["owner"][0], "user", "test", org_id=org_a)
    for role in ROLES[1:]:
        user_id, email, _ = users[role]
        provisioning.add_member(
            path.bus, org_id=org_a, user_id=user_id, email=email, role=role, actor=owner,
            timeout_s=30,
        )  # fmt: skip
    for role in ROLES:
        user_id, email, password = users[role]
        scope = "read commands" if role in ("owner", "admin") else "read"
        key = provisioning.create_api_key(
            path.bus, org_id=org_a, name=f"{role} key", role=role, scope=scope, actor=owner,
            timeout_s=30,
        )  # fmt: skip
        path.people[role] = Person(role, email, password, user_id, org_a, key.api_key)
    other_email, other_password = f"owner-b@{path.test_id}.example.com", "saffron-ledger-kite-51"
    other_id = path.register(other_email, other_password)
    org_b = provisioning.create_organization(
        path.bus, name="Desk B", owner_user_id=other_id, timeout_s=30
    )
    path.other = Person("owner", other_email, other_password, other_id, org_b)
    for org in (org_a, org_b):  # every dataset and right, and room for the tests' requests
        provisioning.set_tier(path.bus, org_id=org, tier="enterprise", timeout_s=30)
    path.member(org_b, other_id)
    for person in path.people.values():
        path.member(org_a, person.user_id)
    for person in (*path.people.values(), path.other):
        path.sign_in(person)
