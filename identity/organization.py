"""The organisation aggregate: its members and their roles, invitations and API keys.

Event-sourced as `decide` and `evolve`: `decide(state, command)` checks a command against the
current state and returns the events it causes (or raises `Rejected` naming why), and
`evolve(state, event)` folds one event into the state. The command handler keeps the state,
the projectors fold the same events into read models, and a replay of the events gives the same
state again. Commands and events are plain mappings whose keys are the contracts' field names
(`type` names the command or event); times are timezone-aware UTC. Nothing here does I/O.

Rules, the ones a security review asks about:
- five system roles; only `owner` and `admin` manage members and keys;
- an admin can neither grant nor take away `owner`, nor remove an owner;
- the last owner can be neither demoted nor removed (an organisation always has an owner);
- an invitation is accepted once, before it expires, with the token it was sent with (only
  its hash is in the log); the state keeps no used or expired invitation, so it stays bounded;
- an API key's role is at most its creator's, only an owner revokes an owner's key, and a key
  goes with its creator's rights: removing a member revokes their keys, demoting one revokes
  those above the new role;
- an invitation is for the address it was sent to (the accepting user's verified email must
  be it) and lasts at most MAX_INVITATION.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from identity import sso
from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    BILLING = "billing"


MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
# what a role may hand on to an API key it creates: never more than itself
# what a role may hand on to an API key: the roles whose rights are within its own (billing's
# are not within viewer's, nor the other way round)
COVERS: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset(Role),
    Role.ADMIN: frozenset({Role.ADMIN, Role.ANALYST, Role.VIEWER, Role.BILLING}),
    Role.ANALYST: frozenset({Role.ANALYST, Role.VIEWER}),
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.BILLING: frozenset({Role.BILLING}),
}
KEY_SCOPES = frozenset({"read", "read commands"})
MAX_INVITATION = timedelta(days=14)


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    email: str
    role: Role
    token_hash: str
    expires_at_utc: datetime


@dataclass(frozen=True)
class ApiKey:
    """A key in use: revoked and expired ones leave the state (the read models keep them)."""

    key_id: str
    name: str
    prefix: str
    role: Role
    scope: str
    expires_at_utc: datetime | None
    created_by: str


@dataclass(frozen=True)
class Organization:
    """The state of one organisation; `version` counts the events folded into it."""

    org_id: str
    name: str = ""
    version: int = 0
    members: Mapping[str, Role] = field(default_factory=dict)
    invitations: Mapping[str, Invitation] = field(default_factory=dict)
    api_keys: Mapping[str, ApiKey] = field(default_factory=dict)
    connections: Mapping[str, sso.SsoConnection] = field(default_factory=dict)  # single sign-on

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def owners(self) -> int:
        return sum(1 for role in self.members.values() if role is Role.OWNER)


def role_of(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise Rejected("unknown_role", f"unknown role {value!r}; one of {known}") from None


def _event(kind: str, command: Command, **fields: Any) -> Event:
    return {"type": kind, "org_id": command["org_id"], "at_utc": command["at_utc"], **fields}


def _actor_role(state: Organization, command: Command) -> Role:
    actor = command.get("actor_id")
    if command.get("actor_kind") == "api_key":  # a program, with its key's role and scope
        key = state.api_keys.get(str(actor))
        ends = key.expires_at_utc if key is not None else None
        if key is None or (ends is not None and command["at_utc"] >= ends):
            raise Rejected("not_a_member", f"API key {actor} is not in use in {state.org_id}")
        if "commands" not in key.scope.split():
            raise Rejected("forbidden", f"API key {actor} has the scope {key.scope!r}: no changes")
        return key.role
    role = state.members.get(str(actor)) if actor is not None else None
    if role is None:
        raise Rejected("not_a_member", f"{actor} is not a member of {state.org_id}")
    return role


def _require_manager(state: Organization, command: Command) -> Role:
    role = _actor_role(state, command)
    if role not in MANAGERS:
        raise Rejected("forbidden", f"a {role} cannot {command['type']}; owner or admin can")
    return role


def _require_exists(state: Organization) -> None:
    if not state.exists:
        raise Rejected("unknown_organization", f"no organisation {state.org_id}")


def decide(state: Organization, command: Command) -> list[Event]:
    """The events `command` causes on `state`; raises Rejected when the state forbids it."""
    kind = command["type"]
    handler = _DECIDERS.get(kind)
    if handler is None:
        raise Rejected("unknown_command", f"the organisation aggregate has no command {kind!r}")
    if kind != "CreateOrganization":
        _require_exists(state)
    return handler(state, command)


def _create(state: Organization, command: Command) -> list[Event]:
    if state.exists:
        raise Rejected("exists", f"organisation {state.org_id} exists already")
    name = str(command["name"]).strip()
    if not name:
        raise Rejected("invalid", "an organisation needs a name")
    owner = str(command["owner_user_id"])
    return [
        _event("OrganizationCreated", command, name=name, created_by=owner),
        _event("MemberAdded", command, user_id=owner, role=Role.OWNER.value),
    ]


def _invite(state: Organization, command: Command) -> list[Event]:
    actor = _require_manager(state, command)
    role = role_of(command["role"])
    if role is Role.OWNER and actor is not Role.OWNER:
        raise Rejected("forbidden", "only an owner can invite an owner")
    invitation_id = str(command["invitation_id"])
    if invitation_id in state.invitations:
        raise Rejected("exists", f"invitation {invitation_id} exists already")
    email = str(command["email"]).strip().lower()
    expires = command["expires_at_utc"]
    if not command["at_utc"] < expires <= command["at_utc"] + MAX_INVITATION:
        raise Rejected("invalid", f"an invitation expires within {MAX_INVITATION.days} days")
    pending = [i for i in state.invitations.values() if i.email == email]
    if any(i.expires_at_utc > command["at_utc"] for i in pending):
        raise Rejected("exists", f"{email} has an invitation pending already")
    return [
        _event(
            "MemberInvited",
            command,
            invitation_id=invitation_id,
            email=email,
            role=role.value,
            token_hash=str(command["token_hash"]),
            expires_at_utc=command["expires_at_utc"],
        )
    ]


def _accept(state: Organization, command: Command) -> list[Event]:
    invitation = state.invitations.get(str(command["invitation_id"]))
    if invitation is None:  # never sent, used already, or long expired
        raise Rejected("unknown_invitation", f"no usable invitation {command['invitation_id']}")
    if command["at_utc"] >= invitation.expires_at_utc:
        raise Rejected("expired", "this invitation has expired; ask for a new one")
    if not hmac.compare_digest(invitation.token_hash.encode(), str(command["token_hash"]).encode()):
        raise Rejected("invalid_token", "the invitation token does not match")
    if str(command.get("email", "")).strip().lower() != invitation.email:
        raise Rejected("wrong_invitee", "this invitation was sent to another address")
    user = str(command["user_id"])
    if user in state.members:
        raise Rejected("exists", f"{user} is a member already")
    return [
        _event("InvitationAccepted", command, invitation_id=invitation.invitation_id, user_id=user),
        _event("MemberAdded", command, user_id=user, role=invitation.role.value),
    ]


def _assign(state: Organization, command: Command) -> list[Event]:
    actor = _require_manager(state, command)
    user = str(command["user_id"])
    previous = state.members.get(user)
    if previous is None:
        raise Rejected("not_a_member", f"{user} is not a member of {state.org_id}")
    role = role_of(command["role"])
    if role == previous:
        return []  # already so: nothing happens, and nothing is logged as a change
    if Role.OWNER in (role, previous) and actor is not Role.OWNER:
        raise Rejected("forbidden", "only an owner can grant or take away the owner role")
    if previous is Role.OWNER and state.owners == 1:
        raise Rejected("last_owner", "the last owner cannot be demoted; make another owner first")
    assigned = _event(
        "RoleAssigned", command, user_id=user, role=role.value, previous_role=previous
    )
    above = [
        k for k in state.api_keys.values() if k.created_by == user and k.role not in COVERS[role]
    ]
    return [assigned, *_revocations(command, above, "its creator's role went down")]


def _revocations(command: Command, keys: list[ApiKey], reason: str) -> list[Event]:
    return [_event("ApiKeyRevoked", command, key_id=k.key_id, reason=reason) for k in keys]


def _remove(state: Organization, command: Command) -> list[Event]:
    actor = _require_manager(state, command)
    user = str(command["user_id"])
    role = state.members.get(user)
    if role is None:
        raise Rejected("not_a_member", f"{user} is not a member of {state.org_id}")
    if role is Role.OWNER and actor is not Role.OWNER:
        raise Rejected("forbidden", "only an owner can remove an owner")
    if role is Role.OWNER and state.owners == 1:
        raise Rejected("last_owner", "the last owner cannot be removed; make another owner first")
    theirs = [k for k in state.api_keys.values() if k.created_by == user]
    removed = _event("MemberRemoved", command, user_id=user, role=role.value)
    return [removed, *_revocations(command, theirs, "its creator left the organisation")]


def _create_key(state: Organization, command: Command) -> list[Event]:
    actor = _require_manager(state, command)
    key_id = str(command["key_id"])
    if key_id in state.api_keys:
        raise Rejected("exists", f"API key {key_id} exists already")
    role = role_of(command["role"])
    if role not in COVERS[actor]:
        raise Rejected("forbidden", f"a {actor} cannot create a key with the role {role}")
    scope = str(command["scope"])
    if scope not in KEY_SCOPES:
        raise Rejected("invalid", f"unknown scope {scope!r}; one of {sorted(KEY_SCOPES)}")
    expires = command.get("expires_at_utc")
    if expires is not None and expires <= command["at_utc"]:
        raise Rejected("invalid", "an API key must expire in the future")
    return [
        _event(
            "ApiKeyCreated",
            command,
            key_id=key_id,
            name=str(command["name"]),
            prefix=str(command["prefix"]),
            secret_hash=str(command["secret_hash"]),
            role=role.value,
            scope=scope,
            expires_at_utc=expires,
            created_by=_owner_of(state, command),
        )
    ]


def _owner_of(state: Organization, command: Command) -> str:
    """The person a new key answers to: its creator, or, for a key made with a key, that
    key's person, so that removing or demoting them revokes every key in their line."""
    actor = str(command["actor_id"])
    if command.get("actor_kind") == "api_key":
        return state.api_keys[actor].created_by
    return actor


def _revoke_key(state: Organization, command: Command) -> list[Event]:
    actor = _require_manager(state, command)
    key = state.api_keys.get(str(command["key_id"]))
    if key is None:  # never made, revoked already, or expired
        raise Rejected("unknown_key", f"no API key {command['key_id']} in use in {state.org_id}")
    if key.role is Role.OWNER and actor is not Role.OWNER:
        raise Rejected("forbidden", "only an owner can revoke an owner's key")
    return [_event("ApiKeyRevoked", command, key_id=key.key_id, reason="revoked")]


def _configure_sso(state: Organization, command: Command) -> list[Event]:
    _require_manager(state, command)
    connection = sso.connection_of(command)
    taken = {
        d for c in state.connections.values() if c.connection_id != connection.connection_id
        for d in c.allowed_domains
    }  # fmt: skip
    overlap = sorted(taken & set(connection.allowed_domains))
    if overlap:
        raise Rejected("exists", f"another connection serves {', '.join(overlap)} already")
    return [_event("SsoConfigured", command, **sso.event_fields(connection))]


def _remove_sso(state: Organization, command: Command) -> list[Event]:
    _require_manager(state, command)
    connection_id = str(command["connection_id"])
    if connection_id not in state.connections:
        raise Rejected("unknown_connection", f"no SSO connection {connection_id} in {state.org_id}")
    return [_event("SsoRemoved", command, connection_id=connection_id)]


def _sso_role(state: Organization, command: Command) -> tuple[sso.SsoConnection, Role]:
    """The connection a sign-in came through and the role its mapping gave (the API read the
    provider's verified claims); the role must be one the mapping can give."""
    if command.get("actor_kind") != "sso":
        raise Rejected("forbidden", f"{command['type']} comes from a single sign-on only")
    connection = state.connections.get(str(command["connection_id"]))
    if connection is None:
        raise Rejected("unknown_connection", f"no SSO connection {command['connection_id']}")
    if not connection.allows(str(command["email"])):
        raise Rejected("domain", f"{command['email']} is outside the connection's domains")
    role = role_of(command["role"])
    mapping = connection.role_mapping
    if role.value not in {r for _, r in mapping.values} | {mapping.default}:
        raise Rejected("forbidden", f"the connection's role mapping never gives {role}")
    return connection, role


def _provision(state: Organization, command: Command) -> list[Event]:
    connection, role = _sso_role(state, command)
    if not connection.jit:
        raise Rejected(
            "no_jit", "this connection does not provision members; ask for an invitation"
        )
    user = str(command["user_id"])
    if user in state.members:
        raise Rejected("exists", f"{user} is a member already")
    return [_event("MemberAdded", command, user_id=user, role=role.value)]


def _sync_role(state: Organization, command: Command) -> list[Event]:
    _, role = _sso_role(state, command)
    user = str(command["user_id"])
    previous = state.members.get(user)
    if previous is None:
        raise Rejected("not_a_member", f"{user} is not a member of {state.org_id}")
    if role == previous:
        return []
    if previous is Role.OWNER and state.owners == 1:
        raise Rejected("last_owner", "the last owner cannot be demoted; make another owner first")
    assigned = _event(
        "RoleAssigned", command, user_id=user, role=role.value, previous_role=previous
    )
    above = [
        k for k in state.api_keys.values() if k.created_by == user and k.role not in COVERS[role]
    ]
    return [assigned, *_revocations(command, above, "its creator's role went down")]


_DECIDERS = {
    "ConfigureSso": _configure_sso,
    "RemoveSso": _remove_sso,
    "ProvisionSsoMember": _provision,
    "SyncSsoRole": _sync_role,
    "CreateOrganization": _create,
    "InviteMember": _invite,
    "AcceptInvitation": _accept,
    "AssignRole": _assign,
    "RemoveMember": _remove,
    "CreateApiKey": _create_key,
    "RevokeApiKey": _revoke_key,
}
COMMANDS = frozenset(_DECIDERS)


def evolve(state: Organization, event: Event) -> Organization:
    """`state` with `event` folded in (`aggregate.evolve_with`)."""
    return evolve_with(_FOLDS, state, event)


def _created(state: Organization, event: Event) -> Organization:
    return replace(state, name=str(event["name"]))


def _member_role(state: Organization, event: Event) -> Organization:
    return replace(state, members={**state.members, event["user_id"]: Role(event["role"])})


def _removed(state: Organization, event: Event) -> Organization:
    members = {u: r for u, r in state.members.items() if u != event["user_id"]}
    return replace(state, members=members)


def _invited(state: Organization, event: Event) -> Organization:
    invitation = Invitation(
        invitation_id=event["invitation_id"],
        email=event["email"],
        role=Role(event["role"]),
        token_hash=event["token_hash"],
        expires_at_utc=event["expires_at_utc"],
    )
    pending = _pending(state, event)
    return replace(state, invitations={**pending, invitation.invitation_id: invitation})


def _accepted(state: Organization, event: Event) -> Organization:
    # used up: nothing of it is needed any more
    return replace(state, invitations=_pending(state, event, drop=event["invitation_id"]))


def _key_created(state: Organization, event: Event) -> Organization:
    key = ApiKey(
        key_id=event["key_id"],
        name=event["name"],
        prefix=event["prefix"],
        role=Role(event["role"]),
        scope=event["scope"],
        expires_at_utc=event["expires_at_utc"],
        created_by=event["created_by"],
    )
    return replace(state, api_keys={**_keys_in_use(state, event), key.key_id: key})


def _key_revoked(state: Organization, event: Event) -> Organization:
    return replace(state, api_keys=_keys_in_use(state, event, drop=event["key_id"]))


def _keys_in_use(state: Organization, event: Event, drop: str | None = None) -> dict[str, ApiKey]:
    """The keys neither revoked nor expired at the event's time: the state grows with the
    keys in use, not with every key ever made."""
    at = event["at_utc"]
    return {
        k: key
        for k, key in state.api_keys.items()
        if k != drop and (key.expires_at_utc is None or key.expires_at_utc > at)
    }


def _sso_configured(state: Organization, event: Event) -> Organization:
    connection = sso.connection_of(event)
    return replace(state, connections={**state.connections, connection.connection_id: connection})


def _sso_removed(state: Organization, event: Event) -> Organization:
    kept = {k: c for k, c in state.connections.items() if k != event["connection_id"]}
    return replace(state, connections=kept)


_FOLDS = {
    "SsoConfigured": _sso_configured,
    "SsoRemoved": _sso_removed,
    "OrganizationCreated": _created,
    "MemberAdded": _member_role,
    "RoleAssigned": _member_role,
    "MemberRemoved": _removed,
    "MemberInvited": _invited,
    "InvitationAccepted": _accepted,
    "ApiKeyCreated": _key_created,
    "ApiKeyRevoked": _key_revoked,
}
EVENTS = frozenset(_FOLDS)


def _pending(state: Organization, event: Event, drop: str | None = None) -> dict[str, Invitation]:
    """The invitations still usable at the event's time: the state holds no expired or used
    one, so it grows with the organisation (members, keys), not with its history."""
    at = event["at_utc"]
    return {
        i: invitation
        for i, invitation in state.invitations.items()
        if invitation.expires_at_utc > at and i != drop
    }


def replay(org_id: str, events: list[Event]) -> Organization:
    """The state after `events`, from nothing."""
    return replay_with(Organization(org_id), evolve, events)
