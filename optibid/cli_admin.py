"""`optibid admin ...`: administration through the log. `bootstrap` makes the first user and
their organisation (its owner) by sending the same commands the API sends, and waits for the
identity handler's outcomes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Annotated

import psycopg
import typer

from identity import passwords, provisioning, signing
from identity.bus import CommandBus, OutcomeTimeout
from identity.keystore import PgKeyStore
from identity.vault import Vault
from optibid.cli_common import console
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections import identity_reads
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    admin_app = typer.Typer(help="Administration: organisations and users, through the log.")
    app.add_typer(admin_app, name="admin")
    _rotate_command(admin_app, settings_of)
    _erase_command(admin_app, settings_of)

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
        keys = PgKeyStore(settings.postgres_dsn)
        keys.ensure()
        catalog = prepare_contracts(settings)
        admin = provisioning.Actor(source="cli:admin")
        with (
            RegistryClient(settings.schema_registry_url) as registry,
            CommandBus(
                settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog
            ) as bus,
        ):
            try:
                user_id = provisioning.register_user(
                    bus, Vault(keys), email=email, password=password, display_name=display_name,
                    actor=admin, context=(org_name,), timeout_s=timeout_s,
                )  # fmt: skip
                org_id = provisioning.create_organization(
                    bus, name=org_name, owner_user_id=user_id, actor=admin, timeout_s=timeout_s
                )
            except provisioning.Refused as refused:
                console.print(f"[red]error:[/] {refused.outcome['command_type']}: {refused}")
                raise typer.Exit(1) from None
            except OutcomeTimeout as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
        print(json.dumps({"user_id": user_id, "org_id": org_id, "email": email.lower()}))


def _erase_command(admin_app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @admin_app.command("erase-user")
    def erase_user(
        user_id: Annotated[str, typer.Option(help="The user to erase (usr_...).")],
        timeout_s: Annotated[float, typer.Option(help="Wait this long for each outcome.")] = 30,
    ) -> None:
        """Erase a user for good: disabled, their address freed, and their key deleted, so
        nothing sealed for them in the log opens again (a replay still works)."""
        settings = settings_of()
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            row = identity_reads.user(conn, settings.db_schema, user_id)
        catalog = prepare_contracts(settings)
        with (
            RegistryClient(settings.schema_registry_url) as registry,
            CommandBus(
                settings.bootstrap_servers, AvroSerde(registry, ContractSet()), catalog
            ) as bus,
        ):
            try:
                shredded = provisioning.erase_user(
                    bus, Vault(PgKeyStore(settings.postgres_dsn)), user_id=user_id,
                    email=row["email"] if row else None,
                    actor=provisioning.Actor(source="cli:admin"), timeout_s=timeout_s,
                )  # fmt: skip
            except provisioning.Refused as refused:
                console.print(f"[red]error:[/] {refused.outcome['command_type']}: {refused}")
                raise typer.Exit(1) from None
            except OutcomeTimeout as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
        print(json.dumps({"user_id": user_id, "erased": True, "key_deleted": shredded}))


def _rotate_command(admin_app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @admin_app.command("rotate-signing-key")
    def rotate_signing_key() -> None:
        """Make a new signing key for access tokens (the first, when there is none); the
        previous ones stay published until the tokens they signed have expired."""
        settings = settings_of()
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            ring = signing.rotate(conn)
        print(json.dumps({"current_kid": ring.current.kid, "kids": list(ring.kids)}))
