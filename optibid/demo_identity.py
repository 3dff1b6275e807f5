"""The demo's organisation: one user and one API key per role, made through the log like any
other (the identity handler decides, the projector folds), written to
`.optibid/demo-credentials.json` as `[{"role", "email", "password", "api_key"}]`.

A second demo on the same stack keeps the organisation when its owner still signs in with the
recorded password; otherwise it makes a new one (new addresses: the old ones stay claimed)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg

from identity import passwords, provisioning
from identity.bus import CommandBus
from identity.keystore import PgKeyStore
from identity.organization import Role
from identity.vault import Vault, VaultError
from optibid.settings import PROJECT_ROOT, Settings
from projections import identity_reads
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

CREDENTIALS = Path(".optibid") / "demo-credentials.json"
ROLES = (Role.OWNER, Role.ADMIN, Role.ANALYST, Role.VIEWER, Role.BILLING)
ORG_NAME = "OptiBid Demo Trading"
DOMAIN = "demo.optibid.test"


def credentials_path(root: Path | None = None) -> Path:
    return (root or PROJECT_ROOT) / CREDENTIALS


def _still_valid(settings: Settings, entries: list[dict[str, Any]]) -> bool:
    """Whether the recorded owner still exists and signs in with the recorded password."""
    owner = next((e for e in entries if e.get("role") == Role.OWNER.value), None)
    if owner is None:
        return False
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        user = identity_reads.user_by_email(conn, settings.db_schema, owner["email"])
    if user is None:
        return False
    vault = Vault(PgKeyStore(settings.postgres_dsn))
    try:
        stored = vault.open_for(user["user_id"], "password", user["password_sealed"]).decode()
    except VaultError:
        return False
    return passwords.verify_password(stored, owner["password"])


def _wait_member(settings: Settings, org_id: str, user_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            if identity_reads.member(conn, settings.db_schema, org_id, user_id) is not None:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"{user_id} did not appear in the identity read models within {timeout_s:.0f} s:"
        " is `optibid project-identity` running?"
    )


def provision(settings: Settings, catalog: TopicCatalog, path: Path) -> list[dict[str, Any]]:
    """The demo's credentials: those recorded at `path` when they still work, else new ones
    (written there, readable by the owner of the file only)."""
    if path.exists():
        entries: list[dict[str, Any]] = json.loads(path.read_text())
        if _still_valid(settings, entries):
            return entries
    run = secrets.token_hex(3)
    vault = Vault(PgKeyStore(settings.postgres_dsn))
    PgKeyStore(settings.postgres_dsn).ensure()
    made: list[dict[str, Any]] = []
    with (
        RegistryClient(settings.schema_registry_url) as registry,
        CommandBus(settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog) as bus,
    ):
        users: dict[Role, tuple[str, str, str]] = {}
        for role in ROLES:
            email = f"{role.value}.{run}@{DOMAIN}"
            password = secrets.token_urlsafe(15)
            user_id = provisioning.register_user(
                bus, vault, email=email, password=password,
                display_name=f"Demo {role.value}", timeout_s=30,
            )  # fmt: skip
            users[role] = (user_id, email, password)
        owner_id = users[Role.OWNER][0]
        org_id = provisioning.create_organization(
            bus, name=ORG_NAME, owner_user_id=owner_id, timeout_s=30
        )
        owner = provisioning.Actor(owner_id, "user", "cli:demo", org_id=org_id)
        # the demo desk is on the professional tier: every dataset, CSV and live updates
        provisioning.set_tier(bus, org_id=org_id, tier="professional", reason="demo", timeout_s=30)
        for role in ROLES[1:]:
            user_id, email, _ = users[role]
            provisioning.add_member(
                bus, org_id=org_id, user_id=user_id, email=email, role=role.value, actor=owner,
                timeout_s=30,
            )  # fmt: skip
        for role in ROLES:
            scope = "read commands" if role in (Role.OWNER, Role.ADMIN) else "read"
            key = provisioning.create_api_key(
                bus, org_id=org_id, name=f"demo {role.value}", role=role.value, scope=scope,
                actor=owner, timeout_s=30,
            )  # fmt: skip
            user_id, email, password = users[role]
            made.append(
                {"role": role.value, "email": email, "password": password,
                 "api_key": key.api_key, "user_id": user_id, "org_id": org_id}
            )  # fmt: skip
    _wait_member(settings, org_id, users[Role.BILLING][0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(made, indent=2) + "\n")
    return made
