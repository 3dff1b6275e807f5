"""Single sign-on connections of an organisation: what the organisation aggregate keeps of each
(`SsoConnection`) and the pure rules a sign-in through one follows.

A connection trusts one identity provider (OIDC: an issuer and a client; SAML: the IdP's
metadata) for the email domains it names. Its role mapping decides a member's role from the
provider's claims (OIDC) or attributes (SAML): the first value of `claim` found in `values`,
in the order the values are listed, wins; without one, `default` (None: no access). Just-in-time
provisioning makes a member of a person the organisation has not seen; "SSO required" refuses
password sign-ins of the organisation's members, owners excepted (the break-glass account).
Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from identity.aggregate import Rejected

PROTOCOLS = frozenset({"oidc", "saml"})
ROLES = ("owner", "admin", "analyst", "viewer", "billing")


@dataclass(frozen=True)
class RoleMapping:
    claim: str  # e.g. "groups", "roles"
    values: tuple[tuple[str, str], ...]  # (claim value, role), first match wins
    default: str | None = None

    def role_for(self, claims: Mapping[str, Any]) -> str | None:
        """The role the claims map to, or the default (None: no access)."""
        found = claims.get(self.claim)
        held = {str(v) for v in found} if isinstance(found, list | tuple) else set()
        if isinstance(found, str):
            held = {found}
        for value, role in self.values:
            if value in held:
                return role
        return self.default

    def to_json(self) -> str:
        return json.dumps(
            {"claim": self.claim, "values": [list(v) for v in self.values], "default": self.default}
        )


def parse_mapping(text: str) -> RoleMapping:
    """A role mapping from its JSON form `{"claim", "values": [[value, role], ...] or
    {value: role}, "default"}`; Rejected("invalid") naming what is wrong."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise Rejected("invalid", f"role_mapping is not JSON: {text!r:.80}") from None
    if not isinstance(data, dict) or not isinstance(data.get("claim"), str) or not data["claim"]:
        raise Rejected("invalid", "role_mapping needs a 'claim' (e.g. 'groups')")
    raw = data.get("values", [])
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    values: list[tuple[str, str]] = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise Rejected("invalid", f"role_mapping value {pair!r} is not [value, role]")
        value, role = str(pair[0]), str(pair[1])
        if role not in ROLES:
            raise Rejected("unknown_role", f"role_mapping maps {value!r} to unknown role {role!r}")
        values.append((value, role))
    default = data.get("default")
    if default is not None and default not in ROLES:
        raise Rejected("unknown_role", f"role_mapping default {default!r} is not a role")
    return RoleMapping(data["claim"], tuple(values), default)


def parse_domains(text: str) -> tuple[str, ...]:
    domains = tuple(sorted({d.strip().lower() for d in text.split(",") if d.strip()}))
    if not domains:
        raise Rejected("invalid", "a connection needs at least one allowed email domain")
    for domain in domains:
        if "@" in domain or "." not in domain or " " in domain:
            raise Rejected("invalid", f"{domain!r} is not an email domain")
    return domains


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""


@dataclass(frozen=True)
class SsoConnection:
    """One connection as the organisation keeps it (the client secret only sealed)."""

    connection_id: str
    name: str
    protocol: str
    allowed_domains: tuple[str, ...]
    role_mapping: RoleMapping
    jit: bool = False
    sso_required: bool = False
    allow_idp_initiated: bool = False
    issuer: str | None = None  # OIDC
    client_id: str | None = None  # OIDC
    client_secret_sealed: str | None = None  # OIDC, sealed for the organisation
    idp_metadata: str | None = None  # SAML: the IdP's metadata XML

    def allows(self, email: str) -> bool:
        return domain_of(email) in self.allowed_domains


def connection_of(fields: Mapping[str, Any]) -> SsoConnection:
    """A connection from a ConfigureSso command's (or SsoConfigured event's) fields, checked."""
    protocol = str(fields.get("protocol") or "")
    if protocol not in PROTOCOLS:
        raise Rejected("invalid", f"protocol {protocol!r} is not one of {sorted(PROTOCOLS)}")
    if protocol == "oidc" and not (fields.get("issuer") and fields.get("client_id")):
        raise Rejected("invalid", "an OIDC connection needs an issuer and a client_id")
    if protocol == "saml" and not fields.get("idp_metadata"):
        raise Rejected("invalid", "a SAML connection needs the IdP's metadata")
    return SsoConnection(
        connection_id=str(fields["connection_id"]),
        name=str(fields.get("name") or fields["connection_id"]),
        protocol=protocol,
        allowed_domains=parse_domains(str(fields.get("allowed_domains") or "")),
        role_mapping=parse_mapping(str(fields.get("role_mapping") or "")),
        jit=bool(fields.get("jit")),
        sso_required=bool(fields.get("sso_required")),
        allow_idp_initiated=bool(fields.get("allow_idp_initiated")),
        issuer=fields.get("issuer"),
        client_id=fields.get("client_id"),
        client_secret_sealed=fields.get("client_secret_sealed"),
        idp_metadata=fields.get("idp_metadata"),
    )


def event_fields(connection: SsoConnection) -> dict[str, Any]:
    """The SsoConfigured event's fields of a connection."""
    return {
        "connection_id": connection.connection_id,
        "name": connection.name,
        "protocol": connection.protocol,
        "allowed_domains": ",".join(connection.allowed_domains),
        "role_mapping": connection.role_mapping.to_json(),
        "jit": connection.jit,
        "sso_required": connection.sso_required,
        "allow_idp_initiated": connection.allow_idp_initiated,
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "client_secret_sealed": connection.client_secret_sealed,
        "idp_metadata": connection.idp_metadata,
    }


def sso_required_for(connections: Iterable[SsoConnection]) -> bool:
    return any(c.sso_required for c in connections)
