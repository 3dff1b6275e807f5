"""Single sign-on: discovery by email domain, the browser flows of OpenID Connect and SAML 2.0,
the ticket the dashboard trades for tokens, and the connections' administration.

Every sign-on ends alike (`sign_on`): the email within the connection's domains; a role from
the connection's mapping of the provider's claims (none: no access); a member made just in
time where the connection allows it (`ProvisionSsoMember`), an existing member's role kept in
step with the directory (`SyncSsoRole`); then `RecordSignIn` and `StartSession` as for a
password, with the provider's authentication methods (`amr`) kept. The browser gets a ticket
(in the dashboard's address, one use, 60 s), never a token in a URL."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import saml
from api.auth import Permission, Principal, in_org, require
from api.deps import Dependencies, DependenciesDep
from api.identity import actor_of, client_of, refusal
from api.models.identity import TokenPair
from api.openapi import problems
from api.problems import ProblemError, bad_parameter, not_found
from api.routes.auth import _access, new_refresh_token
from api.sso import (
    FLOW_TTL_S,
    TICKET_TTL_S,
    Identity,
    OidcConnection,
    OidcProviders,
    OneUse,
    authorization_url,
    complete,
    refused,
    take_flow,
)
from identity import provisioning
from identity.bus import new_command
from identity.sp_keys import load_or_create
from identity.sso import SsoConnection, connection_of, domain_of
from identity.tokens import hash_refresh_token
from identity.vault import VaultError
from projections import identity_reads

router = APIRouter(tags=["sso"], responses=problems(400, 401, 403, 422, 429, 500, 503))
PROVIDERS = OidcProviders()
CALLBACK = "/v1/auth/sso/oidc/callback"
ACS = "/v1/auth/sso/saml/acs"
Manager = Annotated[Principal, Depends(require(Permission.MEMBERS_MANAGE))]


def secret_purpose(connection_id: str) -> str:
    return f"sso-client-secret:{connection_id}"


def org_subject(org_id: str) -> str:
    """The vault's subject of an organisation's secrets (its key is the organisation's own)."""
    return f"org:{org_id}"


def _row_connection(row: dict[str, Any]) -> SsoConnection:
    return connection_of(
        {
            **row,
            "allowed_domains": ",".join(row["allowed_domains"]),
            "role_mapping": json.dumps(row["role_mapping"]),
        }
    )


def _load(deps: Dependencies, connection_id: str) -> tuple[SsoConnection, str]:
    with deps.pool.connection() as conn:
        row = identity_reads.sso_connection(conn, deps.settings.schema, connection_id)
    if row is None:
        raise not_found(f"no single sign-on connection {connection_id}")
    return _row_connection(row), str(row["org_id"])


def _flows(deps: Dependencies) -> OneUse:
    return OneUse(deps.redis, deps.settings.schema)


def _oidc(deps: Dependencies, connection: SsoConnection, org_id: str) -> OidcConnection:
    sealed = connection.client_secret_sealed
    try:
        secret = (
            deps.identity.vault.open_for(
                org_subject(org_id), secret_purpose(connection.connection_id), sealed
            ).decode()
            if sealed
            else ""
        )
    except VaultError:
        raise refused("the connection's client secret cannot be opened", "secret", 503) from None
    assert connection.issuer is not None
    assert connection.client_id is not None
    return OidcConnection(connection.connection_id, connection.issuer, connection.client_id, secret)


class SsoOption(BaseModel):
    connection_id: str
    name: str
    protocol: str
    org_name: str
    start_url: str


class SsoOptions(BaseModel):
    data: list[SsoOption]


@router.get("/v1/auth/sso/discover", summary="The single sign-on of an email's domain")
def discover(
    deps: DependenciesDep, email: Annotated[str, Query(min_length=3, max_length=320)]
) -> SsoOptions:
    domain = domain_of(email)
    if not domain:
        raise bad_parameter("email", "not an email address")
    with deps.pool.connection() as conn:
        rows = identity_reads.sso_for_domain(conn, deps.settings.schema, domain)
    return SsoOptions(
        data=[
            SsoOption(
                connection_id=r["connection_id"],
                name=r["name"],
                protocol=r["protocol"],
                org_name=r["org_name"],
                start_url=f"/v1/auth/sso/{r['connection_id']}/start",
            )
            for r in rows
        ]
    )


@router.get(
    "/v1/auth/sso/{connection_id}/start",
    summary="Begin a single sign-on: a redirect to the identity provider",
    response_class=RedirectResponse,
    status_code=303,
)
def start(connection_id: str, deps: DependenciesDep) -> RedirectResponse:
    connection, org_id = _load(deps, connection_id)
    public = deps.auth_settings.public_url
    if connection.protocol == "oidc":
        url = authorization_url(
            PROVIDERS, _flows(deps), _oidc(deps, connection, org_id), public + CALLBACK
        )
    else:
        with deps.pool.connection() as conn:
            keys = load_or_create(conn)
        url = saml.start(connection, keys, public, _flows(deps), relay_state=connection_id)
    return RedirectResponse(url, status_code=303)


@router.get(
    CALLBACK,
    summary="Where the OpenID provider sends the browser back",
    response_class=RedirectResponse,
    status_code=303,
)
def oidc_callback(
    request: Request,
    deps: DependenciesDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> RedirectResponse:
    flow = take_flow(_flows(deps), state)  # the state first: an unknown one learns nothing
    if error is not None or code is None:
        raise refused(f"the provider answered {error or 'without a code'}", "provider_error")
    connection, org_id = _load(deps, flow["connection_id"])
    if connection.protocol != "oidc":
        raise refused("the state is not of an OpenID connection", "state")
    person = complete(PROVIDERS, _oidc(deps, connection, org_id), flow, code)
    return _to_dashboard(deps, sign_on(deps, request, connection, org_id, person))


@router.post(
    ACS,
    summary="Where the SAML identity provider posts its response (HTTP-POST binding)",
    response_class=RedirectResponse,
    status_code=303,
)
async def saml_acs(request: Request, deps: DependenciesDep) -> RedirectResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    response = (form.get("SAMLResponse") or [""])[0]
    relay = (form.get("RelayState") or [""])[0]
    if not response or not relay:
        raise refused("a SAMLResponse and its RelayState are needed", "malformed")

    def finish() -> str:
        connection, org_id = _load(deps, relay)
        if connection.protocol != "saml":
            raise refused("the RelayState names no SAML connection", "malformed")
        with deps.pool.connection() as conn:
            keys = load_or_create(conn)
        public = deps.auth_settings.public_url
        person = saml.acs(connection, keys, public, _flows(deps), response)
        return sign_on(deps, request, connection, org_id, person)

    return _to_dashboard(deps, await run_in_threadpool(finish))


@router.get(
    "/v1/auth/sso/{connection_id}/saml/metadata",
    summary="The service provider's SAML metadata (its entity id is this URL)",
    response_class=Response,
)
def saml_metadata(connection_id: str, deps: DependenciesDep) -> Response:
    connection, _ = _load(deps, connection_id)
    if connection.protocol != "saml":
        raise not_found(f"{connection_id} is not a SAML connection")
    with deps.pool.connection() as conn:
        keys = load_or_create(conn)
    xml = saml.metadata(connection, keys, deps.auth_settings.public_url)
    return Response(xml, media_type="application/samlmetadata+xml")


class Ticket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket: str = Field(min_length=1, max_length=100)


@router.post("/v1/auth/sso/exchange", summary="Trade a sign-on's ticket for tokens (once)")
def exchange(body: Ticket, deps: DependenciesDep) -> TokenPair:
    tokens = _flows(deps).take("ticket", body.ticket)
    if tokens is None:
        raise refused("the ticket is unknown, expired or used already", "ticket", 401)
    return TokenPair.model_validate(tokens)


def _to_dashboard(deps: Dependencies, ticket: str) -> RedirectResponse:
    return RedirectResponse(f"/dashboard/#/sso/{quote(ticket)}", status_code=303)


def sign_on(
    deps: Dependencies, request: Request, connection: SsoConnection, org_id: str, person: Identity
) -> str:
    """The sign-on finished as a password sign-in would be: a session, tokens, and the ticket
    that hands them to the browser."""
    if not connection.allows(person.email):
        raise refused(f"{person.email} is outside this connection's domains", "domain", 403)
    role = connection.role_mapping.role_for(person.claims)
    if role is None:
        raise refused("the directory gives this person no role here", "no_role", 403)
    ip, agent = client_of(request)
    actor = provisioning.Actor(connection.connection_id, "sso", "api", ip, agent, org_id)
    user_id, role = _member(deps, connection, org_id, person, role, actor)
    user_actor = provisioning.Actor(user_id, "user", "api", ip, agent, org_id)
    signed = provisioning.command(
        "RecordSignIn", "user", user_id, user_actor, succeeded=True,
        connection_id=connection.connection_id,
    )  # fmt: skip
    deps.identity.send(signed, wait=False)
    tokens = _session(deps, user_actor, org_id, role, person.amr)
    ticket = secrets.token_urlsafe(32)
    _flows(deps).put("ticket", ticket, tokens.model_dump(mode="json"), TICKET_TTL_S)
    return ticket


def _not_member(email: str) -> Exception:
    return refused(f"{email} is not a member; ask for an invitation", "not_a_member", 403)


def _member(
    deps: Dependencies,
    connection: SsoConnection,
    org_id: str,
    person: Identity,
    role: str,
    actor: provisioning.Actor,
) -> tuple[str, str]:
    """The person's user id and role in the organisation: a user and a member made just in
    time where the connection allows it, the role kept in step with the directory."""
    services, schema = deps.identity, deps.settings.schema
    with deps.pool.connection() as conn:
        user = identity_reads.user_by_email(conn, schema, person.email)
    if user is None:
        if not connection.jit:
            raise _not_member(person.email)
        try:
            user_id = provisioning.register_user(
                services.bus(), services.vault, email=person.email,
                password=secrets.token_urlsafe(32), display_name=person.display_name,
                actor=actor, timeout_s=services.settings.command_timeout_s,
            )  # fmt: skip
        except provisioning.Refused as exc:
            raise refusal(exc) from None
        services.wait_read_models("user", user_id, 1, services.settings.command_timeout_s)
    else:
        user_id = str(user["user_id"])
        if user["disabled"]:
            raise refused("the account is disabled", "account_disabled", 403)
    with deps.pool.connection() as conn:
        member = identity_reads.member(conn, schema, org_id, user_id)
    fields = {
        "org_id": org_id, "connection_id": connection.connection_id, "user_id": user_id,
        "email": person.email, "role": role,
    }  # fmt: skip
    if member is None:
        if not connection.jit:
            raise _not_member(person.email)
        provision = provisioning.command(
            "ProvisionSsoMember", "organization", org_id, actor, **fields
        )
        services.send(provision)
    elif member["role"] != role:
        sync = provisioning.command("SyncSsoRole", "organization", org_id, actor, **fields)
        try:
            services.send(sync)
        except ProblemError as exc:  # the last owner keeps the role; the sign-on goes on
            if exc.code != "last_owner":
                raise
            role = str(member["role"])
    return user_id, role


def _session(
    deps: Dependencies, actor: provisioning.Actor, org_id: str, role: str, amr: tuple[str, ...]
) -> TokenPair:
    """A session started for the user, and its tokens, as for a password sign-in."""
    services, user_id = deps.identity, str(actor.actor_id)
    session_id = uuid.uuid4().hex
    refresh = new_refresh_token(session_id)
    now = datetime.now(UTC)
    started = new_command(
        "StartSession", "session", session_id, actor_id=user_id, org_id=org_id, ip=actor.ip,
        user_agent=actor.user_agent, user_id=user_id, token_hash=hash_refresh_token(refresh),
        expires_at_utc=now + services.settings.refresh_lifetime,
        idle_timeout_s=int(services.settings.refresh_idle.total_seconds()), amr=" ".join(amr),
    )  # fmt: skip
    services.send(started)
    with deps.pool.connection() as conn:
        fresh = identity_reads.user(conn, deps.settings.schema, user_id)
    if fresh is None:
        raise refused("the account is gone", "account_disabled", 403)
    access = _access(deps, fresh, org_id, role, session_id, list(amr), now)
    return TokenPair(**access.model_dump(), refresh_token=refresh)


# --- administration ----------------------------------------------------------------------


class ConnectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    protocol: str = Field(pattern="^(oidc|saml)$")
    issuer: str | None = Field(None, max_length=500)
    client_id: str | None = Field(None, max_length=300)
    client_secret: str | None = Field(
        None, max_length=2000, description="Sealed for the organisation; omit to keep the one set."
    )
    idp_metadata: str | None = Field(
        None, max_length=200_000, description="The IdP's metadata XML."
    )
    allowed_domains: list[str] = Field(min_length=1, max_length=50)
    role_mapping: dict[str, Any] = Field(
        description='{"claim": "groups", "values": [["desk-admins", "admin"]], "default": "viewer"}'
    )
    jit: bool = False
    sso_required: bool = False
    allow_idp_initiated: bool = False


class ConnectionInfo(BaseModel):
    connection_id: str
    name: str
    protocol: str
    issuer: str | None
    client_id: str | None
    has_client_secret: bool
    allowed_domains: list[str]
    role_mapping: dict[str, Any]
    jit: bool
    sso_required: bool
    allow_idp_initiated: bool
    start_url: str
    sp_metadata_url: str | None


class ConnectionList(BaseModel):
    data: list[ConnectionInfo]


def _info(deps: Dependencies, row: dict[str, Any]) -> ConnectionInfo:
    cid = row["connection_id"]
    public = deps.auth_settings.public_url
    return ConnectionInfo(
        connection_id=cid,
        name=row["name"],
        protocol=row["protocol"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        has_client_secret=row["client_secret_sealed"] is not None,
        allowed_domains=list(row["allowed_domains"]),
        role_mapping=row["role_mapping"],
        jit=row["jit"],
        sso_required=row["sso_required"],
        allow_idp_initiated=row["allow_idp_initiated"],
        start_url=f"{public}/v1/auth/sso/{cid}/start",
        sp_metadata_url=(
            f"{public}/v1/auth/sso/{cid}/saml/metadata" if row["protocol"] == "saml" else None
        ),
    )


@router.get("/v1/orgs/{org_id}/sso", summary="The organisation's single sign-on connections")
def list_connections(org_id: str, principal: Manager, deps: DependenciesDep) -> ConnectionList:
    in_org(principal, org_id)
    with deps.pool.connection() as conn:
        rows = identity_reads.sso_connections(conn, deps.settings.schema, org_id)
    return ConnectionList(data=[_info(deps, r) for r in rows])


@router.put(
    "/v1/orgs/{org_id}/sso/{connection_id}",
    summary="Configure a single sign-on connection",
    responses=problems(404, 409),
)
def configure(
    org_id: str,
    connection_id: str,
    body: ConnectionRequest,
    principal: Manager,
    request: Request,
    deps: DependenciesDep,
) -> ConnectionInfo:
    in_org(principal, org_id)
    sealed = None
    if body.client_secret:
        sealed = deps.identity.vault.seal_for(
            org_subject(org_id), secret_purpose(connection_id), body.client_secret.encode()
        )
    else:
        with deps.pool.connection() as conn:
            existing = identity_reads.sso_connection(conn, deps.settings.schema, connection_id)
        if existing is not None and existing["org_id"] == org_id:
            sealed = existing["client_secret_sealed"]
    actor = actor_of(principal, request)
    command = provisioning.command(
        "ConfigureSso", "organization", org_id, actor, org_id=org_id,
        connection_id=connection_id, name=body.name, protocol=body.protocol,
        issuer=body.issuer, client_id=body.client_id, client_secret_sealed=sealed,
        idp_metadata=body.idp_metadata, allowed_domains=",".join(body.allowed_domains),
        role_mapping=json.dumps(body.role_mapping), jit=body.jit,
        sso_required=body.sso_required, allow_idp_initiated=body.allow_idp_initiated,
    )  # fmt: skip
    deps.identity.send(command)
    with deps.pool.connection() as conn:
        row = identity_reads.sso_connection(conn, deps.settings.schema, connection_id)
    if row is None:
        raise not_found(f"no single sign-on connection {connection_id}")
    return _info(deps, row)


@router.delete(
    "/v1/orgs/{org_id}/sso/{connection_id}",
    summary="Remove a single sign-on connection",
    status_code=204,
    responses=problems(404),
)
def remove(
    org_id: str, connection_id: str, principal: Manager, request: Request, deps: DependenciesDep
) -> Response:
    in_org(principal, org_id)
    actor = actor_of(principal, request)
    deps.identity.send(
        provisioning.command(
            "RemoveSso", "organization", org_id, actor, org_id=org_id, connection_id=connection_id
        )
    )
    return Response(status_code=204)


class ConnectionTest(BaseModel):
    ok: bool
    detail: str


@router.post(
    "/v1/orgs/{org_id}/sso/{connection_id}/test",
    summary="Check a connection: the provider answers and its keys or metadata are usable",
    responses=problems(404),
)
def test_connection(
    org_id: str, connection_id: str, principal: Manager, deps: DependenciesDep
) -> ConnectionTest:
    in_org(principal, org_id)
    connection, owner = _load(deps, connection_id)
    if owner != org_id:
        raise not_found(f"no single sign-on connection {connection_id}")
    try:
        if connection.protocol == "oidc":
            assert connection.issuer is not None
            document = PROVIDERS.discovery(connection.issuer)
            keys = PROVIDERS.key_set(document["jwks_uri"], refresh=True).get("keys", [])
            _oidc(deps, connection, org_id)  # the secret opens
            detail = f"discovery and {len(keys)} signing keys read from {connection.issuer}"
        else:
            with deps.pool.connection() as conn:
                sp_keys = load_or_create(conn)
            detail = saml.check(connection, sp_keys, deps.auth_settings.public_url)
    except Exception as exc:  # every failure is the answer here, not an error of the route
        return ConnectionTest(ok=False, detail=str(getattr(exc, "detail", exc)))
    return ConnectionTest(ok=True, detail=detail)


__all__ = ["FLOW_TTL_S", "router"]
