"""`optibid admin ...`: administration through the log. `bootstrap` makes the first user and
their organisation (its owner) by sending the same commands the API sends, and waits for the
identity handler's outcomes."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import psycopg
import typer

from identity import passwords, signing
from identity.bus import CommandBus, OutcomeTimeout, new_command
from identity.keystore import PgKeyStore
from identity.vault import Vault
from optibid.cli_common import console
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    admin_app = typer.Typer(help="Administration: organisations and users, through the log.")
    app.add_typer(admin_app, name="admin")
    _rotate_command(admin_app, settings_of)

    @admin_app.command("bootstrap")
    def bootstrap(
        email: Annotated[str, typer.Option(help="The first owner's email address.")],
        org_name: Annotated[str, typer.Option(help="The organisation's name.")],
        password_env: Annotated[
            str | None,
            typer.Option(help="Read the password from this environment variable (else asked)."),
        ] = None,
        display_name: Annotated[str | None, typer.Option(help="The owner's name.")] = None,
        timeout_s: Annotated[float, typer.Option(help="Wait this long for each outcome.")] = 30,
    ) -> None:
        """Create the first owner and their organisation (prints their ids as JSON)."""
        settings = settings_of()
        password = os.environ.get(password_env, "") if password_env else ""
        if not password:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        try:
            passwords.check_password(password, (email, org_name))
        except passwords.PasswordRejected as refused:
            console.print(f"[red]error:[/] {refused}")
            raise typer.Exit(2) from None
        user_id, org_id = f"usr_{uuid.uuid4().hex}", f"org_{uuid.uuid4().hex}"
        keys = PgKeyStore(settings.postgres_dsn)
        keys.ensure()
        sealed = Vault(keys).seal_for(
            user_id, "password", passwords.hash_password(password).encode()
        )
        catalog = prepare_contracts(settings)
        with (
            RegistryClient(settings.schema_registry_url) as registry,
            CommandBus(
                settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog
            ) as bus,
        ):
            steps = [
                new_command(
                    "RegisterUser", "user", user_id, actor_id=None, actor_kind="system",
                    source="cli:admin", email=email, display_name=display_name,
                    password_sealed=sealed,
                ),
                new_command(
                    "CreateOrganization", "organization", org_id, actor_id=None,
                    actor_kind="system", source="cli:admin", org_id=org_id, name=org_name,
                    owner_user_id=user_id,
                ),
            ]  # fmt: skip
            for command in steps:
                outcome = _outcome(bus, command, timeout_s)
                if not outcome["accepted"]:
                    console.print(f"[red]error:[/] {command['type']}: {outcome['message']}")
                    raise typer.Exit(1)
        print(json.dumps({"user_id": user_id, "org_id": org_id, "email": email.lower()}))


def _rotate_command(admin_app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @admin_app.command("rotate-signing-key")
    def rotate_signing_key() -> None:
        """Make a new signing key for access tokens (the first, when there is none); the
        previous ones stay published until the tokens they signed have expired."""
        settings = settings_of()
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            ring = signing.rotate(conn)
        print(json.dumps({"current_kid": ring.current.kid, "kids": list(ring.kids)}))


def _outcome(bus: CommandBus, command: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    try:
        return bus.send(command, timeout_s)
    except OutcomeTimeout as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
