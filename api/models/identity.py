"""Request and response bodies of the identity routes: sign-in, the signed-in user, and the
administration of an organisation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal["owner", "admin", "analyst", "viewer", "billing"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(None, max_length=16, description="The authenticator's code.")
    recovery_code: str | None = Field(
        None, max_length=32, description="One of the ten recovery codes, instead of `otp`."
    )
    org_id: str | None = Field(
        None, max_length=64, description="The organisation to act in (default: the first joined)."
    )


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=256)


class ReauthenticateRequest(_Strict):
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(None, max_length=16)


class UserSummary(BaseModel):
    user_id: str
    email: str
    display_name: str
    mfa: bool


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme, no secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    session_id: str
    org_id: str
    role: RoleName
    user: UserSummary


class TokenPair(AccessToken):
    refresh_token: str = Field(
        description="Trade it for new tokens at /v1/auth/refresh; each is spent by its use."
    )


class Membership(BaseModel):
    org_id: str
    name: str
    role: RoleName


class Me(UserSummary):
    org_id: str
    role: RoleName
    session_id: str | None
    amr: list[str]
    memberships: list[Membership]


class SessionInfo(BaseModel):
    session_id: str
    org_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    amr: list[str]
    current: bool


class SessionList(BaseModel):
    data: list[SessionInfo]


class Revoked(BaseModel):
    revoked: int


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32, for authenticators that take it typed in.")
    otpauth_uri: str
    enrolment: str = Field(description="Send it back with a code to /v1/me/totp/confirm.")


class TotpConfirm(_Strict):
    enrolment: str = Field(max_length=2048)
    code: str = Field(max_length=16)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once: each signs in once without a code.")


class PasswordChange(_Strict):
    password: str = Field(min_length=1, max_length=1024)


class Organization(BaseModel):
    org_id: str
    name: str


class Member(BaseModel):
    user_id: str
    email: str
    display_name: str
    role: RoleName
    since: datetime


class MemberList(BaseModel):
    data: list[Member]


class RoleChange(_Strict):
    role: RoleName


class InvitationRequest(_Strict):
    email: str = Field(min_length=3, max_length=320)
    role: RoleName


class InvitationInfo(BaseModel):
    invitation_id: str
    email: str
    role: RoleName
    expires_at: datetime
    invited_by: str | None = None
    created_at: datetime | None = None
    accepted_by: str | None = None
    accepted_at: datetime | None = None


class InvitationList(BaseModel):
    data: list[InvitationInfo]


class NewInvitation(InvitationInfo):
    token: str = Field(description="Shown once: pass it on to the invitee.")


class AcceptRequest(_Strict):
    token: str = Field(min_length=1, max_length=256)


class RegisterRequest(_Strict):
    token: str = Field(min_length=1, max_length=256, description="The invitation's token.")
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(None, max_length=200)


class ApiKeyRequest(_Strict):
    name: str = Field(min_length=1, max_length=100)
    role: RoleName
    scope: Literal["read", "read commands"] = "read"
    expires_at: datetime | None = None


class ApiKeyInfo(BaseModel):
    key_id: str
    name: str
    prefix: str
    role: RoleName
    scope: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    data: list[ApiKeyInfo]


class NewApiKey(BaseModel):
    key_id: str
    name: str
    prefix: str
    role: RoleName
    scope: str
    expires_at: datetime | None
    api_key: str = Field(description="Shown once: only its hash is kept.")


class AuditEntry(BaseModel):
    event_id: str
    occurred_at: datetime
    actor_id: str | None
    actor_kind: str | None
    ip: str | None
    user_agent: str | None
    action: str
    outcome: str
    target_type: str | None
    target_id: str | None
    detail: str | None


class AuditPage(BaseModel):
    data: list[AuditEntry]
    next_cursor: str | None
