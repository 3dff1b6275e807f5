"""An organisation's administration: members and their roles, invitations, API keys, and its
audit log, under `/v1/orgs/{org_id}`.

Every change is a command to the organisation aggregate, answered once its outcome is known
and the read models show it. Another organisation's id answers 404, as if it did not exist."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import Permission, Principal, in_org, require
from api.deps import Dependencies, DependenciesDep
from api.identity import actor_of, client_of, refusal
from api.models.identity import (
    AcceptRequest,
    ApiKeyInfo,
    ApiKeyList,
    ApiKeyRequest,
    AuditEntry,
    AuditPage,
    InvitationInfo,
    InvitationList,
    InvitationRequest,
    Member,
    MemberList,
    NewApiKey,
    NewInvitation,
    Organization,
    RegisterRequest,
    RoleChange,
)
from api.openapi import problems
from api.problems import bad_parameter, not_found
from identity import apikeys, passwords, provisioning
from projections import identity_reads

router = APIRouter(tags=["organisations"], responses=problems(401, 403, 404, 422, 500, 503))

Reader = Annotated[Principal, Depends(require(Permission.MEMBERS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.MEMBERS_MANAGE))]
KeyManager = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
SelfPrincipal = Annotated[Principal, Depends(require(Permission.SELF))]


def _send(deps: Dependencies, command: dict[str, Any]) -> dict[str, Any]:
    return deps.identity.send(command)


@router.get("/v1/orgs/{org_id}", summary="The organisation")
def get_organization(org_id: str, principal: Reader, deps: DependenciesDep) -> Organization:
    in_org(principal, org_id)
    with deps.pool.connection() as conn:
        row = identity_reads.organization(conn, deps.settings.schema, org_id)
    if row is None:
        raise not_found(f"no organisation {org_id}")
    return Organization(org_id=row["org_id"], name=row["name"])


@router.get("/v1/orgs/{org_id}/members", summary="Members and their roles")
def list_members(org_id: str, principal: Reader, deps: DependenciesDep) -> MemberList:
    in_org(principal, org_id)
    with deps.pool.connection() as conn:
        rows = identity_reads.members(conn, deps.settings.schema, org_id)
    return MemberList(data=[Member.model_validate(r) for r in rows])


@router.put(
    "/v1/orgs/{org_id}/members/{user_id}/role", summary="Give a member another role",
    responses=problems(409),
)  # fmt: skip
def assign_role(
    org_id: str,
    user_id: str,
    body: RoleChange,
    principal: Manager,
    request: Request,
    deps: DependenciesDep,
) -> Member:
    in_org(principal, org_id)
    command = provisioning.command(
        "AssignRole", "organization", org_id, actor_of(principal, request),
        org_id=org_id, user_id=user_id, role=body.role,
    )  # fmt: skip
    _send(deps, command)
    with deps.pool.connection() as conn:
        row = identity_reads.member(conn, deps.settings.schema, org_id, user_id)
    if row is None:
        raise not_found(f"no member {user_id}")
    return Member.model_validate(row)


@router.delete(
    "/v1/orgs/{org_id}/members/{user_id}", summary="Remove a member (and revoke their keys)",
    status_code=204, responses=problems(409),
)  # fmt: skip
def remove_member(
    org_id: str, user_id: str, principal: Manager, request: Request, deps: DependenciesDep
) -> Response:
    in_org(principal, org_id)
    command = provisioning.command(
        "RemoveMember", "organization", org_id, actor_of(principal, request),
        org_id=org_id, user_id=user_id,
    )  # fmt: skip
    _send(deps, command)
    return Response(status_code=204)


@router.get("/v1/orgs/{org_id}/invitations", summary="Invitations sent")
def list_invitations(org_id: str, principal: Reader, deps: DependenciesDep) -> InvitationList:
    in_org(principal, org_id)
    with deps.pool.connection() as conn:
        rows = identity_reads.invitations(conn, deps.settings.schema, org_id)
    return InvitationList(data=[InvitationInfo.model_validate(r) for r in rows])


@router.post(
    "/v1/orgs/{org_id}/invitations", summary="Invite someone by email (the token is shown once)",
    status_code=201, responses=problems(409),
)  # fmt: skip
def create_invitation(
    org_id: str,
    body: InvitationRequest,
    principal: Manager,
    request: Request,
    deps: DependenciesDep,
) -> NewInvitation:
    in_org(principal, org_id)
    who = actor_of(principal, request)
    try:
        made = provisioning.invite(
            deps.identity.bus(), org_id=org_id, email=body.email, role=body.role, actor=who,
            timeout_s=deps.identity.settings.command_timeout_s,
        )  # fmt: skip
    except provisioning.Refused as exc:
        raise refusal(exc) from None
    return NewInvitation(
        invitation_id=made.invitation_id,
        email=provisioning.normalise_email(body.email),
        role=body.role,
        expires_at=made.expires_at_utc,
        invited_by=principal.subject,
        token=made.token,
    )


@router.post(
    "/v1/invitations/{invitation_id}/accept",
    summary="Accept an invitation sent to the signed-in user's email",
    tags=["organisations"], responses=problems(409),
)  # fmt: skip
def accept_invitation(
    invitation_id: str,
    body: AcceptRequest,
    principal: SelfPrincipal,
    request: Request,
    deps: DependenciesDep,
) -> Member:
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        found = identity_reads.invitation(conn, schema, invitation_id)
        user = identity_reads.user(conn, schema, principal.subject)
    if found is None or user is None:
        raise not_found(f"no invitation {invitation_id}")
    org_id = found["org_id"]
    command = provisioning.command(
        "AcceptInvitation", "organization", org_id, actor_of(principal, request),
        org_id=org_id, invitation_id=invitation_id,
        token_hash=provisioning.invitation_token_hash(body.token),
        user_id=principal.subject, email=user["email"],
    )  # fmt: skip
    _send(deps, command)
    with deps.pool.connection() as conn:
        row = identity_reads.member(conn, schema, org_id, principal.subject)
    if row is None:
        raise not_found(f"no member {principal.subject}")
    return Member.model_validate(row)


@router.post(
    "/v1/invitations/{invitation_id}/register",
    summary="Join with an invitation as a new user (the invitation's token is the credential)",
    tags=["organisations"], status_code=201, responses=problems(409),
)  # fmt: skip
def register_invited(
    invitation_id: str, body: RegisterRequest, request: Request, deps: DependenciesDep
) -> Member:
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        found = identity_reads.invitation(conn, schema, invitation_id)
    digest = provisioning.invitation_token_hash(body.token)
    usable = (
        found is not None
        and found["accepted_at"] is None
        and found["expires_at"] > datetime.now(UTC)
        and hmac.compare_digest(found["token_hash"].encode(), digest.encode())
    )
    if not usable or found is None:  # checked before any account is made
        raise not_found(f"no usable invitation {invitation_id} with that token")
    ip, agent = client_of(request)
    services = deps.identity
    who = provisioning.Actor(None, "system", "api", ip, agent)
    try:
        user_id = provisioning.register_user(
            services.bus(), services.vault, email=found["email"], password=body.password,
            display_name=body.display_name, actor=who,
            timeout_s=services.settings.command_timeout_s,
        )  # fmt: skip
    except passwords.PasswordRejected as exc:
        raise bad_parameter("password", str(exc)) from None
    except provisioning.Refused as exc:
        raise refusal(exc) from None
    invitee = provisioning.Actor(user_id, "user", "api", ip, agent, found["org_id"])
    command = provisioning.command(
        "AcceptInvitation", "organization", found["org_id"], invitee,
        org_id=found["org_id"], invitation_id=invitation_id, token_hash=digest,
        user_id=user_id, email=found["email"],
    )  # fmt: skip
    _send(deps, command)
    with deps.pool.connection() as conn:
        row = identity_reads.member(conn, schema, found["org_id"], user_id)
    if row is None:
        raise not_found(f"no member {user_id}")
    return Member.model_validate(row)


@router.get("/v1/orgs/{org_id}/api-keys", summary="API keys, revoked ones too")
def list_api_keys(org_id: str, principal: KeyManager, deps: DependenciesDep) -> ApiKeyList:
    in_org(principal, org_id)
    with deps.pool.connection() as conn:
        rows = identity_reads.api_keys(conn, deps.settings.schema, org_id)
    return ApiKeyList(data=[ApiKeyInfo.model_validate(r) for r in rows])


@router.post(
    "/v1/orgs/{org_id}/api-keys", summary="Make an API key (shown once)", status_code=201,
    responses=problems(409),
)  # fmt: skip
def create_api_key(
    org_id: str,
    body: ApiKeyRequest,
    principal: KeyManager,
    request: Request,
    deps: DependenciesDep,
) -> NewApiKey:
    in_org(principal, org_id)
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise bad_parameter("expires_at", "needs a time zone (UTC: a trailing Z)")
    key, prefix, digest = apikeys.new_api_key()
    key_id = f"key_{prefix}"
    command = provisioning.command(
        "CreateApiKey", "organization", org_id, actor_of(principal, request),
        org_id=org_id, key_id=key_id, name=body.name, prefix=prefix, secret_hash=digest,
        role=body.role, scope=body.scope, expires_at_utc=body.expires_at,
    )  # fmt: skip
    _send(deps, command)
    return NewApiKey(
        key_id=key_id,
        name=body.name,
        prefix=prefix,
        role=body.role,
        scope=body.scope,
        expires_at=body.expires_at,
        api_key=key,
    )


@router.delete("/v1/orgs/{org_id}/api-keys/{key_id}", summary="Revoke an API key", status_code=204)
def revoke_api_key(
    org_id: str, key_id: str, principal: KeyManager, request: Request, deps: DependenciesDep
) -> Response:
    in_org(principal, org_id)
    command = provisioning.command(
        "RevokeApiKey", "organization", org_id, actor_of(principal, request),
        org_id=org_id, key_id=key_id,
    )  # fmt: skip
    _send(deps, command)
    deps.auth.forget_keys()
    return Response(status_code=204)


@router.get("/v1/orgs/{org_id}/audit", summary="The audit log, newest first")
def audit_log(
    org_id: str,
    principal: Auditor,
    deps: DependenciesDep,
    action: str | None = None,
    actor_id: str | None = None,
    outcome: Annotated[str | None, Query(pattern="^(accepted|rejected)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    in_org(principal, org_id)
    where = identity_reads.AuditFilter(action, actor_id, outcome, since, until)
    try:
        with deps.pool.connection() as conn:
            rows, following = identity_reads.audit(
                conn, deps.settings.schema, org_id, where, limit, cursor
            )
    except ValueError as exc:
        raise bad_parameter("cursor", str(exc)) from None
    return AuditPage(data=[AuditEntry.model_validate(r) for r in rows], next_cursor=following)
