"""Signing in: `/v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout`,
`/v1/auth/reauthenticate`.

A sign-in is decided by the user aggregate through the log: the API checks the password (and
the authenticator code or a recovery code) and sends `RecordSignIn` with the result; the
handler refuses it while the account is locked, refuses a TOTP step used before, counts
failures and locks after too many. Only an accepted success opens a session (`StartSession`,
the session aggregate), whose first refresh token is returned once; every refresh spends the
token it presents (`RefreshSession`), and presenting a spent one ends the session.

An unknown email costs the same argon2 work as a wrong password, and both answer alike."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from api.auth import Permission, Principal, TtlCache, require
from api.deps import Dependencies, DependenciesDep
from api.identity import IdentityServices, client_of
from api.models.identity import (
    AccessToken,
    LoginRequest,
    ReauthenticateRequest,
    RefreshRequest,
    TokenPair,
    UserSummary,
)
from api.openapi import problems
from api.problems import ProblemError, unauthenticated, unavailable
from identity import passwords, signing, totp
from identity.bus import OutcomeTimeout, new_command
from identity.provisioning import Refused, expect, normalise_email
from identity.tokens import REFRESH_PREFIX, KeyRing, hash_refresh_token, issue_access_token
from identity.vault import VaultError
from projections import identity_reads

router = APIRouter(tags=["auth"], responses=problems(401, 403, 422, 429, 500, 503))

SCOPE = "read commands"
IP_FAILURES = 20  # failed sign-ins from one address within IP_WINDOW_S before it waits
IP_WINDOW_S = 300.0
_SESSION = re.compile(r"^[0-9a-f]{32}$")
_failures: TtlCache[str, int] = TtlCache(ttl_s=IP_WINDOW_S, size=65536)


def _invalid() -> ProblemError:
    return unauthenticated("the email or the password is wrong", code="invalid_credentials")


def _throttled(ip: str | None) -> None:
    if ip is not None and (_failures.get(ip) or 0) >= IP_FAILURES:
        raise ProblemError(
            429, "Too many attempts",
            f"too many failed sign-ins from {ip}; try again in {IP_WINDOW_S / 60:.0f} minutes",
            headers={"Retry-After": str(int(IP_WINDOW_S))}, code="throttled",
        )  # fmt: skip


def _failed(ip: str | None) -> None:
    if ip is not None:
        _failures.put(ip, (_failures.get(ip) or 0) + 1)


def _ring(deps: Dependencies) -> KeyRing:
    """The ring that signs: the fixed one, or PostgreSQL's (made at the first sign-in)."""
    if deps.auth_settings.ring is not None:
        return deps.auth_settings.ring
    with deps.pool.connection() as conn:
        ring = signing.load(conn)
        return ring if ring is not None else signing.rotate(conn)


def new_refresh_token(session_id: str) -> str:
    """`obr_<session id>.<256 random bits>`: the session id addresses the command; only the
    hash of the whole token is kept."""
    return f"{REFRESH_PREFIX}{session_id}.{secrets.token_urlsafe(32)}"


def session_of(token: str) -> str:
    body = token.removeprefix(REFRESH_PREFIX) if token.startswith(REFRESH_PREFIX) else ""
    session_id, dot, _ = body.partition(".")
    if not dot or not _SESSION.match(session_id):
        raise unauthenticated("the refresh token is malformed", code="invalid_refresh_token")
    return session_id


def _summary(user: dict[str, Any]) -> UserSummary:
    return UserSummary(
        user_id=user["user_id"],
        email=user["email"],
        display_name=user["display_name"],
        mfa=user["totp_sealed"] is not None,
    )


def _access(
    deps: Dependencies,
    user: dict[str, Any],
    org_id: str,
    role: str,
    session_id: str,
    amr: list[str],
    auth_time: datetime | None,
) -> AccessToken:
    settings = deps.auth_settings
    token = issue_access_token(
        _ring(deps), issuer=settings.issuer, audience=settings.audience, subject=user["user_id"],
        org=org_id, roles=[role], scope=SCOPE, lifetime=settings.access_lifetime,
        session_id=session_id, amr=amr, auth_time=auth_time,
    )  # fmt: skip
    return AccessToken(
        access_token=token,
        expires_in=int(settings.access_lifetime.total_seconds()),
        session_id=session_id,
        org_id=org_id,
        role=role,
        user=_summary(user),
    )


def _verify_factors(  # noqa: PLR0911 - one answer per factor and its failure
    services: IdentityServices,
    user: dict[str, Any],
    password: str,
    otp: str | None,
    recovery_code: str | None,
    now: datetime,
) -> tuple[bool, str, dict[str, Any]]:
    """(succeeded, why not, RecordSignIn's fields) for the factors presented."""
    user_id = user["user_id"]
    try:
        stored = services.vault.open_for(user_id, "password", user["password_sealed"]).decode()
    except VaultError:  # erased, or corrupt: no sign-in either way
        passwords.verify_dummy(password)
        return False, "password", {}
    if not passwords.verify_password(stored, password):
        return False, "password", {}
    if user["totp_sealed"] is None:
        return True, "", {}
    if recovery_code:
        hashes = json.loads(services.vault.open_for(user_id, "recovery", user["recovery_sealed"]))
        try:
            left = totp.use_recovery_code(recovery_code, hashes)
        except totp.OtpRejected:
            return False, "recovery_code", {}
        sealed = services.vault.seal_for(user_id, "recovery", json.dumps(left).encode())
        # two sign-ins with one code: the second finds the user's version moved on
        return True, "", {"recovery_sealed": sealed, "expected_version": user["version"]}
    if not otp:
        raise unauthenticated(
            "this account needs its authenticator code: send the sign-in again with `otp`",
            code="otp_required",
        )
    secret = services.vault.open_for(user_id, "totp", user["totp_sealed"]).decode()
    try:
        step = totp.verify(secret, otp, now, user["last_totp_step"])
    except totp.OtpRejected as exc:
        return False, f"otp: {exc}", {}
    return True, "", {"totp_step": step}


def _record_sign_in(
    services: IdentityServices,
    request: Request,
    user: dict[str, Any],
    org_id: str | None,
    succeeded: bool,
    reason: str,
    fields: dict[str, Any],
) -> None:
    ip, agent = client_of(request)
    command = new_command(
        "RecordSignIn", "user", user["user_id"], actor_id=user["user_id"], org_id=org_id,
        ip=ip, user_agent=agent, succeeded=succeeded, reason=reason or None, **fields,
    )  # fmt: skip
    try:
        expect(services.bus(), command, services.settings.command_timeout_s)
    except Refused as exc:
        if exc.code == "locked":
            raise ProblemError(
                429, "Account locked", str(exc), headers={"Retry-After": "60"}, code="locked"
            ) from None
        if exc.code in ("otp_replayed", "conflict"):
            raise unauthenticated(
                "that code was used already; wait for the next one", code="invalid_otp"
            ) from None
        raise unauthenticated(str(exc), code=exc.code) from None
    except OutcomeTimeout as exc:
        raise unavailable("Identity handler", str(exc)) from None


def _sso_required(deps: Dependencies, joined: list[dict[str, Any]], wanted: str | None) -> None:
    """403 when the organisation signed in to wants its members through single sign-on; its
    owners keep their password (the way back in when the identity provider fails)."""
    chosen = [m for m in joined if wanted in (None, m["org_id"])][:1]
    for membership in chosen:
        if membership["role"] == "owner":
            return
        with deps.pool.connection() as conn:
            connections = identity_reads.sso_connections(
                conn, deps.settings.schema, membership["org_id"]
            )
        if any(c["sso_required"] for c in connections):
            raise ProblemError(
                403, "Forbidden",
                f"{membership['name']} signs its members in through single sign-on"
                " (GET /v1/auth/sso/discover?email=...)",
                code="sso_required",
            )  # fmt: skip


def _memberships(deps: Dependencies, user_id: str) -> list[dict[str, Any]]:
    with deps.pool.connection() as conn:
        return identity_reads.memberships(conn, deps.settings.schema, user_id)


def _org_and_role(deps: Dependencies, user_id: str, wanted: str | None) -> tuple[str, str]:
    joined = _memberships(deps, user_id)
    if wanted is not None:
        joined = [m for m in joined if m["org_id"] == wanted]
    if not joined:
        raise ProblemError(
            403, "Forbidden",
            f"not a member of {wanted}" if wanted else "not a member of any organisation",
            code="not_a_member",
        )  # fmt: skip
    return joined[0]["org_id"], joined[0]["role"]


@router.post(
    "/v1/auth/login",
    summary="Sign in with email and password (and the authenticator code)",
    responses=problems(403),
)
def login(body: LoginRequest, request: Request, deps: DependenciesDep) -> TokenPair:
    services = deps.identity
    ip, agent = client_of(request)
    _throttled(ip)
    now = datetime.now(UTC)
    email = normalise_email(body.email)
    with deps.pool.connection() as conn:
        user = identity_reads.user_by_email(conn, deps.settings.schema, email)
    if user is None or user["disabled"]:
        passwords.verify_dummy(body.password)
        _failed(ip)
        services.record(
            action="SignIn", outcome="rejected", actor_kind="anonymous", ip=ip, user_agent=agent,
            target_type="user", target_id=user["user_id"] if user else None,
            detail="disabled" if user else "unknown email",
        )  # fmt: skip
        raise _invalid()
    locked = user["locked_until"]
    if locked is not None and locked > now:
        wait = int((locked - now).total_seconds()) + 1
        raise ProblemError(
            429, "Account locked",
            f"too many failed sign-ins; try again after {locked:%H:%M:%S} UTC",
            headers={"Retry-After": str(wait)}, code="locked",
        )  # fmt: skip
    joined = _memberships(deps, user["user_id"])
    _sso_required(deps, joined, body.org_id)
    ok, reason, fields = _verify_factors(
        services, user, body.password, body.otp, body.recovery_code, now
    )
    wanted = [m for m in joined if body.org_id in (None, m["org_id"])]
    audit_org = wanted[0]["org_id"] if wanted else None  # the organisation signed in to
    _record_sign_in(services, request, user, audit_org, ok, reason, fields)
    if not ok:
        _failed(ip)
        if reason.startswith("otp") or reason == "recovery_code":
            raise unauthenticated("the authenticator code is wrong", code="invalid_otp")
        raise _invalid()
    # which organisation, only now: before, a refusal would tell who has an account
    org_id, role = _org_and_role(deps, user["user_id"], body.org_id)
    amr = ["pwd", "otp"] if user["totp_sealed"] is not None else ["pwd"]
    session_id = uuid.uuid4().hex
    refresh = new_refresh_token(session_id)
    start = new_command(
        "StartSession", "session", session_id, actor_id=user["user_id"], org_id=org_id,
        ip=ip, user_agent=agent, user_id=user["user_id"], token_hash=hash_refresh_token(refresh),
        expires_at_utc=now + services.settings.refresh_lifetime,
        idle_timeout_s=int(services.settings.refresh_idle.total_seconds()), amr=" ".join(amr),
    )  # fmt: skip
    services.send(start)
    access = _access(deps, user, org_id, role, session_id, amr, now)
    return TokenPair(**access.model_dump(), refresh_token=refresh)


@router.post("/v1/auth/refresh", summary="Trade a refresh token for new tokens")
def refresh(body: RefreshRequest, request: Request, deps: DependenciesDep) -> TokenPair:
    services = deps.identity
    session_id = session_of(body.refresh_token)
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        session = identity_reads.session(conn, schema, session_id)
    if session is None:
        raise unauthenticated("the refresh token is unknown", code="invalid_refresh_token")
    ip, agent = client_of(request)
    fresh = new_refresh_token(session_id)
    command = new_command(
        "RefreshSession", "session", session_id, actor_id=session["user_id"],
        org_id=session["org_id"], ip=ip, user_agent=agent,
        token_hash=hash_refresh_token(body.refresh_token), new_token_hash=hash_refresh_token(fresh),
    )  # fmt: skip
    try:
        outcome = expect(services.bus(), command, services.settings.command_timeout_s)
    except Refused as exc:
        deps.auth.forget_session(session_id)
        if exc.code == "refresh_reused":
            raise unauthenticated(
                "this refresh token was used already: the session is ended; sign in again",
                code="refresh_reused",
            ) from None
        raise unauthenticated(f"refresh refused: {exc}", code="invalid_refresh_token") from None
    except OutcomeTimeout as exc:
        raise unavailable("Identity handler", str(exc)) from None
    # the new token is spent-proof now; the read models need not show the refresh first
    # (the session is the one the access token names), and a client that never got the new
    # pair because of a late read model would present the old token again and end it
    del outcome
    with deps.pool.connection() as conn:
        user = identity_reads.user(conn, schema, session["user_id"])
    if user is None or user["disabled"] or user["erased"]:
        raise unauthenticated("the account is disabled", code="account_disabled")
    org_id, role = _org_and_role(deps, user["user_id"], session["org_id"])
    amr = (session["amr"] or "pwd").split()
    access = _access(deps, user, org_id, role, session_id, amr, None)
    return TokenPair(**access.model_dump(), refresh_token=fresh)


SelfPrincipal = Annotated[Principal, Depends(require(Permission.SELF))]


@router.post("/v1/auth/logout", summary="End this session", status_code=204)
def logout(principal: SelfPrincipal, request: Request, deps: DependenciesDep) -> Response:
    if principal.session_id is not None:
        end_session(deps, request, principal, principal.session_id, "signed out")
    return Response(status_code=204)


def end_session(
    deps: Dependencies, request: Request, principal: Principal, session_id: str, reason: str
) -> None:
    ip, agent = client_of(request)
    command = new_command(
        "EndSession", "session", session_id, actor_id=principal.user_id,
        org_id=principal.org_id, ip=ip, user_agent=agent, reason=reason,
    )  # fmt: skip
    deps.identity.send(command)
    deps.auth.forget_session(session_id)


@router.post(
    "/v1/auth/reauthenticate",
    summary="Prove the password again (step-up) before changing sign-in factors",
)
def reauthenticate(
    body: ReauthenticateRequest, principal: SelfPrincipal, request: Request, deps: DependenciesDep
) -> AccessToken:
    services = deps.identity
    now = datetime.now(UTC)
    with deps.pool.connection() as conn:
        user = identity_reads.user(conn, deps.settings.schema, principal.subject)
    if user is None or principal.session_id is None:
        raise unauthenticated("sign in first")
    ok, reason, fields = _verify_factors(services, user, body.password, body.otp, None, now)
    _record_sign_in(services, request, user, principal.org_id, ok, reason, fields)
    if not ok:
        raise unauthenticated("the password or the code is wrong", code="invalid_credentials")
    amr = ["pwd", "otp"] if user["totp_sealed"] is not None else ["pwd"]
    return _access(
        deps, user, principal.org_id, principal.role.value, principal.session_id, amr, now
    )
