"""Single sign-on connections in the organisation aggregate: configuring one (checked), role
mapping from claims, just-in-time provisioning and role sync only from a sign-on, only within
the connection's domains and mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from identity import organization as org
from identity import sso
from identity.aggregate import Rejected
from identity.handler import Stored
from identity.state import dump, load

AT = datetime(2026, 12, 7, 9, tzinfo=UTC)
MAPPING = json.dumps(
    {"claim": "groups", "values": [["desk-admins", "admin"], ["traders", "analyst"]],
     "default": "viewer"}
)  # fmt: skip


def command(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "org_id": "o-1", "at_utc": AT, "actor_id": "u-owner",
            "actor_kind": "user", **fields}  # fmt: skip


def configured(**overrides: Any) -> org.Organization:
    state = org.replay(
        "o-1",
        [
            {"type": "OrganizationCreated", "org_id": "o-1", "at_utc": AT, "name": "Desk",
             "created_by": "u-owner"},
            {"type": "MemberAdded", "org_id": "o-1", "at_utc": AT, "user_id": "u-owner",
             "role": "owner"},
        ],
    )  # fmt: skip
    fields = {
        "connection_id": "c-1", "protocol": "oidc", "issuer": "https://idp.example/",
        "client_id": "cid", "allowed_domains": "Contoso.example, fabrikam.example",
        "role_mapping": MAPPING, "jit": True, **overrides,
    }  # fmt: skip
    (event,) = org.decide(state, command("ConfigureSso", **fields))
    return org.evolve(state, event)


def test_a_connection_is_kept_with_its_domains_lowercased_and_its_mapping_parsed() -> None:
    state = configured()
    connection = state.connections["c-1"]
    assert connection.allowed_domains == ("contoso.example", "fabrikam.example")
    assert connection.role_mapping.role_for({"groups": ["traders", "desk-admins"]}) == "admin"
    assert connection.role_mapping.role_for({"groups": ["traders"]}) == "analyst"
    assert connection.role_mapping.role_for({"groups": []}) == "viewer"
    assert connection.role_mapping.role_for({"groups": "traders"}) == "analyst"
    assert connection.allows("Alice@CONTOSO.example")
    assert not connection.allows("mallory@contoso.example.evil")
    # the state survives the handler's table
    again = load(dump(Stored(state))).state
    assert isinstance(again, org.Organization)
    assert again.connections == state.connections


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"protocol": "ldap"}, "invalid"),
        ({"issuer": None}, "invalid"),
        ({"allowed_domains": ""}, "invalid"),
        ({"allowed_domains": "@contoso.example"}, "invalid"),
        ({"role_mapping": "{not json"}, "invalid"),
        ({"role_mapping": json.dumps({"claim": "groups", "values": {"x": "god"}})}, "unknown_role"),
        ({"role_mapping": json.dumps({"values": {}})}, "invalid"),
    ],
)
def test_a_bad_configuration_is_refused_naming_what(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(Rejected) as refused:
        configured(**overrides)
    assert refused.value.code == code


def test_only_managers_configure_and_two_connections_never_share_a_domain() -> None:
    state = configured()
    with pytest.raises(Rejected) as viewer:
        org.decide(state, command("ConfigureSso", actor_id="u-nobody", connection_id="c-2"))
    assert viewer.value.code == "not_a_member"
    other = command(
        "ConfigureSso", connection_id="c-2", protocol="saml", idp_metadata="<md/>",
        allowed_domains="fabrikam.example", role_mapping=MAPPING,
    )  # fmt: skip
    with pytest.raises(Rejected) as taken:
        org.decide(state, other)
    assert taken.value.code == "exists"


def sso_command(kind: str, **fields: Any) -> dict[str, Any]:
    base = {"actor_kind": "sso", "actor_id": "c-1", "connection_id": "c-1",
            "user_id": "u-alice", "email": "alice@contoso.example", "role": "analyst"}  # fmt: skip
    return command(kind, **{**base, **fields})


def test_jit_makes_a_member_once_within_the_domains_and_the_mapping() -> None:
    state = configured()
    (added,) = org.decide(state, sso_command("ProvisionSsoMember"))
    assert (added["type"], added["role"]) == ("MemberAdded", "analyst")
    state = org.evolve(state, added)
    with pytest.raises(Rejected) as again:
        org.decide(state, sso_command("ProvisionSsoMember"))
    assert again.value.code == "exists"
    for fields, code in (
        ({"email": "eve@elsewhere.example", "user_id": "u-eve"}, "domain"),
        ({"role": "owner", "user_id": "u-bob"}, "forbidden"),  # the mapping never gives owner
        ({"actor_kind": "user", "user_id": "u-bob"}, "forbidden"),  # only from a sign-on
        ({"connection_id": "c-9", "user_id": "u-bob"}, "unknown_connection"),
    ):
        with pytest.raises(Rejected) as refused:
            org.decide(state, sso_command("ProvisionSsoMember", **fields))
        assert refused.value.code == code, fields
    without_jit = configured(jit=False)
    with pytest.raises(Rejected) as off:
        org.decide(without_jit, sso_command("ProvisionSsoMember"))
    assert off.value.code == "no_jit"


def test_the_directory_decides_the_role_at_each_sign_on() -> None:
    state = configured()
    state = org.evolve(state, org.decide(state, sso_command("ProvisionSsoMember"))[0])
    (assigned,) = org.decide(state, sso_command("SyncSsoRole", role="admin"))
    assert (assigned["type"], assigned["previous_role"], assigned["role"]) == (
        "RoleAssigned", org.Role.ANALYST, "admin",
    )  # fmt: skip
    assert org.decide(state, sso_command("SyncSsoRole", role="analyst")) == []
    owner = sso_command("SyncSsoRole", user_id="u-owner", role="viewer")
    with pytest.raises(Rejected) as last:
        org.decide(state, owner)
    assert last.value.code == "last_owner"


def test_removing_a_connection_forgets_it() -> None:
    state = configured()
    (removed,) = org.decide(state, command("RemoveSso", connection_id="c-1"))
    assert org.evolve(state, removed).connections == {}
    with pytest.raises(Rejected):
        org.decide(state, command("RemoveSso", connection_id="c-9"))
    assert sso.domain_of("a@B.example") == "b.example"
