"""Identity changes that take more than one command, as the API, the CLI and the demo make
them: each step is a command through the log, sent with `CommandBus.send`, and the next step
is sent only when the previous one was accepted.

- `register_user`: checks the password (NIST SP 800-63B), claims the email address in the
  email index (so two users never share one), then registers the user with the password's
  argon2id hash sealed under the user's own key;
- `create_organization`: the organisation with its first owner;
- `add_member`: an invitation and its acceptance (the way a member joins);
- `create_api_key`: a new key, of which only the hash is sent; the key itself is returned
  once.

A refusal raises `Refused` with the handler's code and message; no deadline passes silently
(`OutcomeTimeout` from the bus)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from identity import apikeys, passwords
from identity.bus import new_command
from identity.vault import Vault

INVITATION_LIFETIME = timedelta(days=7)


class Bus(Protocol):
    def send(self, command: Any, timeout_s: float = 10.0) -> dict[str, Any]: ...


class Refused(Exception):  # noqa: N818 - a refusal, answered to the caller as it is
    """A command the handler refused: its outcome's code and message."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(str(outcome.get("message") or outcome.get("code")))
        self.code = str(outcome.get("code") or "refused")
        self.outcome = outcome


@dataclass(frozen=True)
class Actor:
    """Who asks, as the audit log records it."""

    actor_id: str | None = None
    kind: str = "system"
    source: str = "api"
    ip: str | None = None
    user_agent: str | None = None
    org_id: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "actor_kind": self.kind,
            "source": self.source,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


SYSTEM = Actor()


def expect(bus: Bus, command: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Send `command`; its outcome when accepted, else Refused."""
    outcome = bus.send(command, timeout_s)
    if not outcome["accepted"]:
        raise Refused(outcome)
    return outcome


def command(kind: str, aggregate: str, aggregate_id: str, actor: Actor, **fields: Any) -> Any:
    org = fields.pop("org_id", actor.org_id)
    return new_command(kind, aggregate, aggregate_id, org_id=org, **actor.fields(), **fields)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register_user(
    bus: Bus,
    vault: Vault,
    *,
    email: str,
    password: str,
    display_name: str | None = None,
    actor: Actor = SYSTEM,
    context: tuple[str, ...] = (),
    timeout_s: float = 10.0,
) -> str:
    """A new user (their id); PasswordRejected for a weak password, Refused("email_taken")
    for an address in use."""
    address = normalise_email(email)
    passwords.check_password(password, (address, *(context)))
    user_id = f"usr_{uuid.uuid4().hex}"
    expect(bus, command("ClaimEmail", "email", address, actor, user_id=user_id), timeout_s)
    sealed = vault.seal_for(user_id, "password", passwords.hash_password(password).encode())
    register = command(
        "RegisterUser", "user", user_id, actor,
        email=address, display_name=display_name, password_sealed=sealed,
    )  # fmt: skip
    expect(bus, register, timeout_s)
    return user_id


def create_organization(
    bus: Bus, *, name: str, owner_user_id: str, actor: Actor = SYSTEM, timeout_s: float = 10.0
) -> str:
    org_id = f"org_{uuid.uuid4().hex}"
    create = command(
        "CreateOrganization", "organization", org_id, actor,
        org_id=org_id, name=name, owner_user_id=owner_user_id,
    )  # fmt: skip
    expect(bus, create, timeout_s)
    return org_id


def set_tier(
    bus: Bus,
    *,
    org_id: str,
    tier: str,
    reason: str = "set by an operator",
    actor: Actor = SYSTEM,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Put organisation `org_id`'s account on `tier` (the operators' SetTier)."""
    change = command("SetTier", "account", org_id, actor, org_id=org_id, tier=tier, reason=reason)
    return expect(bus, change, timeout_s)


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    token: str  # shown once to the inviter, to pass on to the invitee
    expires_at_utc: datetime


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(
    bus: Bus,
    *,
    org_id: str,
    email: str,
    role: str,
    actor: Actor,
    lifetime: timedelta = INVITATION_LIFETIME,
    timeout_s: float = 10.0,
) -> Invitation:
    token = secrets.token_urlsafe(32)
    invitation = Invitation(f"inv_{uuid.uuid4().hex}", token, datetime.now(UTC) + lifetime)
    invite = command(
        "InviteMember", "organization", org_id, actor,
        org_id=org_id, invitation_id=invitation.invitation_id, email=normalise_email(email),
        role=role, token_hash=invitation_token_hash(token),
        expires_at_utc=invitation.expires_at_utc,
    )  # fmt: skip
    expect(bus, invite, timeout_s)
    return invitation


def accept(
    bus: Bus,
    *,
    org_id: str,
    invitation_id: str,
    token: str,
    user_id: str,
    email: str,
    actor: Actor,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    accepted = command(
        "AcceptInvitation", "organization", org_id, actor,
        org_id=org_id, invitation_id=invitation_id, token_hash=invitation_token_hash(token),
        user_id=user_id, email=normalise_email(email),
    )  # fmt: skip
    return expect(bus, accepted, timeout_s)


def add_member(
    bus: Bus,
    *,
    org_id: str,
    user_id: str,
    email: str,
    role: str,
    actor: Actor,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """`user_id` a member of `org_id` with `role`: invited by `actor`, accepted by the user."""
    invitation = invite(
        bus, org_id=org_id, email=email, role=role, actor=actor, timeout_s=timeout_s
    )
    invitee = Actor(user_id, "user", actor.source, actor.ip, actor.user_agent, org_id)
    return accept(
        bus,
        org_id=org_id,
        invitation_id=invitation.invitation_id,
        token=invitation.token,
        user_id=user_id,
        email=email,
        actor=invitee,
        timeout_s=timeout_s,
    )


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    prefix: str
    api_key: str  # shown once
    outcome: dict[str, Any]


def create_api_key(
    bus: Bus,
    *,
    org_id: str,
    name: str,
    role: str,
    scope: str,
    actor: Actor,
    expires_at_utc: datetime | None = None,
    timeout_s: float = 10.0,
) -> NewApiKey:
    key, prefix, digest = apikeys.new_api_key()
    key_id = f"key_{uuid.uuid4().hex}"
    create = command(
        "CreateApiKey", "organization", org_id, actor,
        org_id=org_id, key_id=key_id, name=name, prefix=prefix, secret_hash=digest, role=role,
        scope=scope, expires_at_utc=expires_at_utc,
    )  # fmt: skip
    outcome = expect(bus, create, timeout_s)
    return NewApiKey(key_id, prefix, key, outcome)


def erase_user(
    bus: Bus,
    vault: Vault,
    *,
    user_id: str,
    email: str | None,
    actor: Actor = SYSTEM,
    timeout_s: float = 10.0,
) -> bool:
    """Erase a user: `EraseUser` through the log, their address released for reuse, then their
    key deleted (crypto-shredding: every secret sealed for them in the log is noise from now
    on, and a replay still folds every event). Whether a key was deleted."""
    expect(bus, command("EraseUser", "user", user_id, actor), timeout_s)
    if email:
        release = command("ReleaseEmail", "email", normalise_email(email), actor, user_id=user_id)
        try:
            expect(bus, release, timeout_s)
        except Refused as exc:
            if exc.code != "not_holder":  # claimed by nobody or someone else: nothing to free
                raise
    return vault.erase(user_id)
