"""The organisation aggregate: decide against the state, fold the events, replay to the same
state; the rules on owners, invitations and keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity.aggregate import Rejected
from identity.organization import (
    COMMANDS,
    EVENTS,
    Organization,
    Role,
    decide,
    evolve,
    replay,
)

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ORG = "org_1"


def command(
    kind: str, actor: str | None = "owner", at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    return {"type": kind, "org_id": ORG, "actor_id": actor, "at_utc": at, **fields}


def apply(state: Organization, cmd: dict[str, Any]) -> tuple[Organization, list[dict[str, Any]]]:
    events = decide(state, cmd)
    for event in events:
        state = evolve(state, event)
    return state, events


def founded(*members: tuple[str, Role]) -> tuple[Organization, list[dict[str, Any]]]:
    """An organisation made by `owner`, with `members` added through invitations."""
    state, log = apply(
        Organization(ORG), command("CreateOrganization", name="Desk", owner_user_id="owner")
    )
    for n, (user, role) in enumerate(members):
        state, invited = apply(
            state,
            command(
                "InviteMember", invitation_id=f"inv{n}", email=f"{user}@example.com",
                role=role.value, token_hash=f"h{n}", expires_at_utc=T0 + timedelta(days=7),
            ),
        )  # fmt: skip
        state, accepted = apply(
            state,
            command("AcceptInvitation", actor=user, invitation_id=f"inv{n}", token_hash=f"h{n}",
                    user_id=user, email=f"{user}@example.com"),
        )  # fmt: skip
        log += invited + accepted
    return state, log


def test_creating_makes_the_creator_its_owner_and_replay_gives_the_same_state() -> None:
    state, log = founded(("ana", Role.ANALYST), ("adm", Role.ADMIN))
    assert state.name == "Desk"
    assert dict(state.members) == {"owner": Role.OWNER, "ana": Role.ANALYST, "adm": Role.ADMIN}
    assert [e["type"] for e in log[:2]] == ["OrganizationCreated", "MemberAdded"]
    assert replay(ORG, log) == state
    assert state.version == len(log)
    assert state.invitations == {}  # used invitations are not kept
    with pytest.raises(Rejected, match="exists already"):
        decide(state, command("CreateOrganization", name="Again", owner_user_id="x"))


def test_a_command_on_an_organisation_that_does_not_exist_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        decide(Organization(ORG), command("AssignRole", user_id="a", role="viewer"))
    assert refused.value.code == "unknown_organization"


@pytest.mark.parametrize(
    ("actor", "target", "role", "code"),
    [
        ("ana", "vie", "admin", "forbidden"),  # an analyst manages nobody
        ("adm", "vie", "owner", "forbidden"),  # an admin cannot grant owner
        ("adm", "own2", "viewer", "forbidden"),  # ... nor take it away
        ("stranger", "vie", "viewer", "not_a_member"),
        ("owner", "nobody", "viewer", "not_a_member"),
        ("owner", "vie", "superuser", "unknown_role"),
    ],
)
def test_role_changes_follow_who_may_grant_what(
    actor: str, target: str, role: str, code: str
) -> None:
    state, _ = founded(
        ("ana", Role.ANALYST), ("adm", Role.ADMIN), ("vie", Role.VIEWER), ("own2", Role.OWNER)
    )
    with pytest.raises(Rejected) as refused:
        decide(state, command("AssignRole", actor=actor, user_id=target, role=role))
    assert refused.value.code == code


def test_an_admin_changes_an_analyst_and_an_unchanged_role_logs_nothing() -> None:
    state, _ = founded(("ana", Role.ANALYST), ("adm", Role.ADMIN))
    state, events = apply(state, command("AssignRole", actor="adm", user_id="ana", role="viewer"))
    assert events == [
        {"type": "RoleAssigned", "org_id": ORG, "at_utc": T0, "user_id": "ana",
         "role": "viewer", "previous_role": Role.ANALYST},
    ]  # fmt: skip
    assert state.members["ana"] is Role.VIEWER
    assert decide(state, command("AssignRole", actor="adm", user_id="ana", role="viewer")) == []


def test_the_last_owner_can_be_neither_demoted_nor_removed() -> None:
    state, _ = founded(("adm", Role.ADMIN))
    for cmd in (
        command("AssignRole", user_id="owner", role="admin"),
        command("RemoveMember", user_id="owner"),
    ):
        with pytest.raises(Rejected) as refused:
            decide(state, cmd)
        assert refused.value.code == "last_owner"
    # with a second owner, the first may step down
    state, _ = apply(state, command("AssignRole", user_id="adm", role="owner"))
    state, _ = apply(state, command("AssignRole", user_id="owner", role="viewer"))
    assert state.owners == 1
    assert state.members["owner"] is Role.VIEWER


def test_an_invitation_is_accepted_once_before_it_expires_with_its_token() -> None:
    state, _ = founded()
    state, _ = apply(
        state,
        command("InviteMember", invitation_id="i1", email=" Ana@Example.com ", role="analyst",
                token_hash="good", expires_at_utc=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert state.invitations["i1"].email == "ana@example.com"
    accept = command(
        "AcceptInvitation", actor="ana", invitation_id="i1", user_id="ana", email="ana@example.com"
    )
    with pytest.raises(Rejected) as other_address:
        decide(state, {**accept, "token_hash": "good", "email": "eve@example.com"})
    assert other_address.value.code == "wrong_invitee"
    with pytest.raises(Rejected, match="does not match"):
        decide(state, {**accept, "token_hash": "bad"})
    late = {**accept, "token_hash": "good", "at_utc": T0 + timedelta(days=1)}
    with pytest.raises(Rejected) as refused:
        decide(state, late)
    assert refused.value.code == "expired"
    state, events = apply(state, {**accept, "token_hash": "good"})
    assert [e["type"] for e in events] == ["InvitationAccepted", "MemberAdded"]
    with pytest.raises(Rejected) as again:
        decide(state, {**accept, "token_hash": "good", "user_id": "eve"})
    assert again.value.code == "unknown_invitation"


def test_expired_invitations_leave_the_state_so_it_stays_bounded() -> None:
    state, _ = founded()
    for day in range(30):
        at = T0 + timedelta(days=day)
        state, _ = apply(
            state,
            command("InviteMember", at=at, invitation_id=f"i{day}", email=f"u{day}@x.com",
                    role="viewer", token_hash="h", expires_at_utc=at + timedelta(days=2)),
        )  # fmt: skip
    assert len(state.invitations) <= 2


def test_an_invitation_lasts_at_most_two_weeks() -> None:
    state, _ = founded()
    invite = command(
        "InviteMember", invitation_id="a", email="x@y.com", role="viewer", token_hash="h",
        expires_at_utc=T0 + timedelta(days=15),
    )  # fmt: skip
    with pytest.raises(Rejected, match="within 14 days"):
        decide(state, invite)
    with pytest.raises(Rejected, match="within 14 days"):
        decide(state, {**invite, "expires_at_utc": T0})


def test_a_second_pending_invitation_to_one_address_is_refused() -> None:
    state, _ = founded(("adm", Role.ADMIN))
    invite = command(
        "InviteMember", actor="adm", invitation_id="a", email="x@y.com", role="viewer",
        token_hash="h", expires_at_utc=T0 + timedelta(days=1),
    )  # fmt: skip
    state, _ = apply(state, invite)
    with pytest.raises(Rejected, match="pending already"):
        decide(state, {**invite, "invitation_id": "b"})
    as_owner = {**invite, "invitation_id": "c", "email": "o@y.com", "role": "owner"}
    with pytest.raises(Rejected, match="only an owner can invite an owner"):
        decide(state, as_owner)


def test_api_keys_are_scoped_at_most_their_creators_role_and_revoked_once() -> None:
    state, _ = founded(("adm", Role.ADMIN), ("ana", Role.ANALYST))
    create = command(
        "CreateApiKey", actor="adm", key_id="k1", name="loader", prefix="obk_k1",
        secret_hash="s", role="analyst", scope="read", expires_at_utc=None,
    )  # fmt: skip
    state, events = apply(state, create)
    assert events[0]["type"] == "ApiKeyCreated"
    assert state.api_keys["k1"].role is Role.ANALYST
    refusals = {
        "forbidden": [
            {**create, "key_id": "k2", "role": "owner"},  # above the admin's own role
            {**create, "key_id": "k3", "actor_id": "ana"},  # an analyst creates no key
        ],
        "invalid": [
            {**create, "key_id": "k4", "scope": "everything"},
            {**create, "key_id": "k5", "expires_at_utc": T0 - timedelta(seconds=1)},
        ],
        "exists": [create],
    }
    for code, commands in refusals.items():
        for cmd in commands:
            with pytest.raises(Rejected) as refused:
                decide(state, cmd)
            assert refused.value.code == code, cmd
    assert state.api_keys["k1"].created_by == "adm"
    revoke = command("RevokeApiKey", actor="adm", key_id="k1")
    state, _ = apply(state, revoke)
    assert "k1" not in state.api_keys  # the state keeps the keys in use only
    with pytest.raises(Rejected) as twice:
        decide(state, revoke)
    assert twice.value.code == "unknown_key"


def test_a_key_goes_with_its_creators_rights_and_only_an_owner_revokes_an_owners() -> None:
    state, _ = founded(("adm", Role.ADMIN), ("adm2", Role.ADMIN))
    key = command(
        "CreateApiKey", actor="adm", key_id="ka", name="a", prefix="obk_ka", secret_hash="s",
        role="admin", scope="read commands", expires_at_utc=None,
    )  # fmt: skip
    state, _ = apply(state, key)
    state, _ = apply(state, {**key, "key_id": "kv", "role": "viewer"})
    state, _ = apply(state, {**key, "actor_id": "owner", "key_id": "ko", "role": "owner"})
    with pytest.raises(Rejected, match="only an owner can revoke"):
        decide(state, command("RevokeApiKey", actor="adm2", key_id="ko"))
    # demoted to analyst: the admin key goes, the viewer key stays
    state, events = apply(state, command("AssignRole", user_id="adm", role="analyst"))
    assert [(e["type"], e.get("key_id")) for e in events] == [
        ("RoleAssigned", None), ("ApiKeyRevoked", "ka"),
    ]  # fmt: skip
    assert set(state.api_keys) == {"kv", "ko"}
    # removed: the rest of their keys go too
    state, events = apply(state, command("RemoveMember", user_id="adm"))
    assert [e["type"] for e in events] == ["MemberRemoved", "ApiKeyRevoked"]
    assert set(state.api_keys) == {"ko"}


def test_a_key_made_with_a_key_answers_to_the_person_and_goes_with_them() -> None:
    state, _ = founded(("adm", Role.ADMIN))
    parent = command(
        "CreateApiKey", actor="adm", key_id="kp", name="p", prefix="obk_kp", secret_hash="s",
        role="admin", scope="read commands", expires_at_utc=None,
    )  # fmt: skip
    state, _ = apply(state, parent)
    child = {**parent, "actor_id": "kp", "actor_kind": "api_key", "key_id": "kc"}
    state, _ = apply(state, child)
    assert state.api_keys["kc"].created_by == "adm"  # not the parent key
    read_only = {**parent, "key_id": "kr", "scope": "read"}
    state, _ = apply(state, read_only)
    with pytest.raises(Rejected) as scope:
        decide(state, {**child, "actor_id": "kr", "key_id": "kx"})
    assert scope.value.code == "forbidden"  # a read key changes nothing
    state, events = apply(state, command("RemoveMember", user_id="adm"))
    assert {e.get("key_id") for e in events[1:]} == {"kp", "kc", "kr"}
    assert state.api_keys == {}


def test_a_key_has_no_right_its_creator_lacks_billing_and_viewer_apart() -> None:
    state, _ = founded(("bil", Role.BILLING), ("adm", Role.ADMIN))
    viewer_key = command(
        "CreateApiKey", actor="adm", key_id="kv", name="v", prefix="obk_kv", secret_hash="s",
        role="viewer", scope="read", expires_at_utc=None,
    )  # fmt: skip
    state, _ = apply(state, viewer_key)
    with pytest.raises(Rejected) as refused:  # billing reads no market data, nor its keys
        decide(state, {**viewer_key, "actor_id": "bil", "key_id": "kb"})
    assert refused.value.code == "forbidden"
    state, events = apply(state, command("AssignRole", user_id="adm", role="billing"))
    assert [(e["type"], e.get("key_id")) for e in events] == [
        ("RoleAssigned", None), ("ApiKeyRevoked", "kv"),
    ]  # fmt: skip


def test_expired_keys_leave_the_state() -> None:
    state, _ = founded()
    key = command(
        "CreateApiKey", key_id="k1", name="a", prefix="obk_k1", secret_hash="s", role="viewer",
        scope="read", expires_at_utc=T0 + timedelta(hours=1),
    )  # fmt: skip
    state, _ = apply(state, key)
    later = T0 + timedelta(hours=2)
    state, _ = apply(state, {**key, "key_id": "k2", "at_utc": later, "expires_at_utc": None})
    assert set(state.api_keys) == {"k2"}


def test_only_an_owner_removes_an_owner() -> None:
    state, _ = founded(("adm", Role.ADMIN), ("own2", Role.OWNER))
    with pytest.raises(Rejected, match="only an owner can remove an owner"):
        decide(state, command("RemoveMember", actor="adm", user_id="own2"))
    state, events = apply(state, command("RemoveMember", user_id="adm"))
    assert events[0]["type"] == "MemberRemoved"
    assert "adm" not in state.members


def test_every_command_and_event_is_named_once() -> None:
    assert {"CreateOrganization", "InviteMember", "AssignRole", "CreateApiKey"} <= COMMANDS
    assert {"OrganizationCreated", "MemberAdded", "ApiKeyRevoked"} <= EVENTS
    with pytest.raises(Rejected) as refused:
        decide(Organization(ORG), command("DropEverything"))
    assert refused.value.code == "unknown_command"
