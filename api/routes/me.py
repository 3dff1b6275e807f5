"""The signed-in user: `/v1/me`, their sessions (devices), their password and second factor.

Changing a sign-in factor needs a step-up: an access token from `/v1/auth/reauthenticate`
within the last 5 minutes (its `auth_time`); the user aggregate checks it again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.auth import Permission, Principal, require
from api.deps import Dependencies, DependenciesDep
from api.identity import client_of
from api.models.identity import (
    Me,
    Membership,
    PasswordChange,
    RecoveryCodes,
    Revoked,
    SessionInfo,
    SessionList,
    TotpConfirm,
    TotpEnrolment,
)
from api.openapi import problems
from api.problems import ProblemError, bad_parameter, forbidden, not_found, unauthenticated
from api.routes.auth import end_session
from identity import passwords, totp
from identity.bus import new_command
from identity.user import STEP_UP
from identity.vault import VaultError
from projections import identity_reads

router = APIRouter(tags=["me"], responses=problems(401, 403, 422, 500, 503))

SelfPrincipal = Annotated[Principal, Depends(require(Permission.SELF))]
ENROLMENT_LIFETIME = timedelta(minutes=10)
ISSUER = "OptiBid"


@router.get("/v1/me", summary="The signed-in user, their organisation and role")
def me(principal: SelfPrincipal, deps: DependenciesDep) -> Me:
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        user = identity_reads.user(conn, schema, principal.subject)
        joined = identity_reads.memberships(conn, schema, principal.subject)
    if user is None:
        raise unauthenticated("the account is gone")
    return Me(
        user_id=user["user_id"],
        email=user["email"],
        display_name=user["display_name"],
        mfa=user["totp_sealed"] is not None,
        org_id=principal.org_id,
        role=principal.role.value,
        session_id=principal.session_id,
        amr=list(principal.amr),
        memberships=[Membership.model_validate(m) for m in joined],
    )


@router.get("/v1/me/sessions", summary="The user's sessions (signed-in devices)")
def my_sessions(principal: SelfPrincipal, deps: DependenciesDep) -> SessionList:
    with deps.pool.connection() as conn:
        rows = identity_reads.sessions(
            conn, deps.settings.schema, principal.subject, datetime.now(UTC)
        )
    return SessionList(
        data=[
            SessionInfo(
                **{k: v for k, v in row.items() if k != "amr"},
                amr=(row["amr"] or "").split(),
                current=row["session_id"] == principal.session_id,
            )
            for row in rows
        ]
    )


@router.delete(
    "/v1/me/sessions/{session_id}", summary="End one of the user's sessions", status_code=204,
    responses=problems(404),
)  # fmt: skip
def end_my_session(
    session_id: str, principal: SelfPrincipal, request: Request, deps: DependenciesDep
) -> Response:
    with deps.pool.connection() as conn:
        row = identity_reads.session(conn, deps.settings.schema, session_id)
    if row is None or row["user_id"] != principal.subject:
        raise not_found(f"no session {session_id}")
    if row["revoked_at"] is None:
        end_session(deps, request, principal, session_id, "ended by the user")
    return Response(status_code=204)


@router.post("/v1/me/sessions/revoke-others", summary="End every other session of the user")
def end_other_sessions(
    principal: SelfPrincipal, request: Request, deps: DependenciesDep
) -> Revoked:
    ended = end_other_sessions_of(deps, request, principal, "ended by the user from another")
    return Revoked(revoked=ended)


def end_other_sessions_of(
    deps: Dependencies, request: Request, principal: Principal, reason: str
) -> int:
    """End the user's sessions but this one (after a password or factor change, a stolen
    device's session must not live on); how many."""
    with deps.pool.connection() as conn:
        rows = identity_reads.sessions(
            conn, deps.settings.schema, principal.subject, datetime.now(UTC)
        )
    others = [r["session_id"] for r in rows if r["session_id"] != principal.session_id]
    for session_id in others:
        end_session(deps, request, principal, session_id, reason)
    return len(others)


def _stepped_up(principal: Principal) -> datetime:
    proved = principal.auth_time
    if proved is None or datetime.now(UTC) - proved > STEP_UP:
        raise forbidden(
            "confirm your password first (POST /v1/auth/reauthenticate), then retry within"
            f" {STEP_UP.seconds // 60} minutes",
            code="step_up_required",
        )
    return proved


@router.post("/v1/me/totp", summary="Begin enrolling an authenticator (step-up needed)")
def begin_totp(principal: SelfPrincipal, deps: DependenciesDep) -> TotpEnrolment:
    _stepped_up(principal)
    with deps.pool.connection() as conn:
        user = identity_reads.user(conn, deps.settings.schema, principal.subject)
    if user is None:
        raise unauthenticated("the account is gone")
    secret = totp.new_secret()
    until = (datetime.now(UTC) + ENROLMENT_LIFETIME).isoformat()
    sealed = deps.identity.vault.seal_for(
        principal.subject, "totp-enrolment", json.dumps({"secret": secret, "until": until}).encode()
    )
    return TotpEnrolment(
        secret=secret,
        otpauth_uri=totp.provisioning_uri(secret, user["email"], ISSUER),
        enrolment=sealed,
    )


@router.post(
    "/v1/me/totp/confirm",
    summary="Finish enrolling with a code from the authenticator; returns the recovery codes",
)
def confirm_totp(
    body: TotpConfirm, principal: SelfPrincipal, request: Request, deps: DependenciesDep
) -> RecoveryCodes:
    proved = _stepped_up(principal)
    vault = deps.identity.vault
    try:
        opened = json.loads(vault.open_for(principal.subject, "totp-enrolment", body.enrolment))
    except (VaultError, ValueError):
        raise bad_parameter("enrolment", "not an enrolment of this user") from None
    if datetime.now(UTC) > datetime.fromisoformat(opened["until"]):
        raise bad_parameter("enrolment", "expired; begin again")
    secret = str(opened["secret"])
    try:
        step = totp.verify(secret, body.code, datetime.now(UTC), None)
    except totp.OtpRejected as exc:
        raise bad_parameter("code", str(exc)) from None
    codes = totp.new_recovery_codes()
    hashes = [totp.hash_recovery_code(code) for code in codes]
    ip, agent = client_of(request)
    command = new_command(
        "EnrolTotp", "user", principal.subject, actor_id=principal.subject,
        org_id=principal.org_id, ip=ip, user_agent=agent,
        reauthenticated_at_utc=proved, reauthenticated_with_otp="otp" in principal.amr,
        totp_sealed=vault.seal_for(principal.subject, "totp", secret.encode()),
        recovery_sealed=vault.seal_for(principal.subject, "recovery", json.dumps(hashes).encode()),
        totp_step=step,
    )  # fmt: skip
    deps.identity.send(command)
    end_other_sessions_of(deps, request, principal, "the second factor changed")
    return RecoveryCodes(recovery_codes=codes)


@router.put("/v1/me/password", summary="Change the password (step-up needed)", status_code=204)
def change_password(
    body: PasswordChange, principal: SelfPrincipal, request: Request, deps: DependenciesDep
) -> Response:
    proved = _stepped_up(principal)
    with deps.pool.connection() as conn:
        user = identity_reads.user(conn, deps.settings.schema, principal.subject)
    if user is None:
        raise unauthenticated("the account is gone")
    try:
        passwords.check_password(body.password, (user["email"], user["display_name"]))
    except passwords.PasswordRejected as exc:
        raise ProblemError(422, "Invalid parameter", f"password: {exc}", param="password") from None
    vault = deps.identity.vault
    sealed = vault.seal_for(
        principal.subject, "password", passwords.hash_password(body.password).encode()
    )
    ip, agent = client_of(request)
    command = new_command(
        "ChangePassword", "user", principal.subject, actor_id=principal.subject,
        org_id=principal.org_id, ip=ip, user_agent=agent,
        reauthenticated_at_utc=proved, reauthenticated_with_otp="otp" in principal.amr,
        password_sealed=sealed,
    )  # fmt: skip
    deps.identity.send(command)
    end_other_sessions_of(deps, request, principal, "the password changed")
    return Response(status_code=204)
