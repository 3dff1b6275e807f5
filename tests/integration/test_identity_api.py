"""Identity and access through HTTP, on the real path: the API sends commands, the identity
handler decides them, the projector folds the events, and the API reads the read models.

- the authorization matrix: every `/v1` route x every role (as a user's token and as an API
  key) x own organisation / another's -> the expected status;
- attacks, each refused: no credentials, `alg: none`, HS256 signed with the public key, an
  expired token, a wrong audience, a token of a rotated-out key, a replayed TOTP code, a reused
  refresh token (its session ends), brute force past the limit, another organisation's
  resource by id;
- rebuilding the read models from the topics gives the same rows;
- a user erased by crypto-shredding: the replay still works, nothing of theirs opens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from identity import provisioning, signing, totp
from identity.tokens import issue_access_token
from identity.vault import SecretUnavailable
from optibid.settings import Settings
from projections.identity_models import TABLES
from projections.migrate import drop_schema, migrate
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from tests.integration.conftest import _cleanup, _delete_internal
from tests.integration.identity_util import IdentityPath, Person, identity_path, wait_until
from tests.integration.kafka_util import read_topic
from tests.integration.streams_util import PROJECT

MARKET = frozenset({"owner", "admin", "analyst", "viewer"})
MANAGERS = frozenset({"owner", "admin"})
USERS = frozenset({"owner", "admin", "analyst", "viewer", "billing"})  # as users, not keys
BILLING = frozenset({"owner", "admin", "billing"})
DAY = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}
PUBLIC = {
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/invitations/{invitation_id}/register"),  # the invitation's token is the key
    # single sign-on's browser flows (tests/integration/test_sso.py)
    ("GET", "/v1/auth/sso/discover"),
    ("GET", "/v1/auth/sso/{connection_id}/start"),
    ("GET", "/v1/auth/sso/oidc/callback"),
    ("POST", "/v1/auth/sso/saml/acs"),
    ("GET", "/v1/auth/sso/{connection_id}/saml/metadata"),
    ("POST", "/v1/auth/sso/exchange"),
    # Stripe's events, verified by their signature (tests/integration/test_billing_month.py)
    ("POST", "/v1/billing/stripe/webhook"),
}


@pytest.fixture(scope="module")
def path(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityPath]:
    test_id = f"t{uuid.uuid4().hex[:10]}"
    with identity_path(stack_settings, test_id, tmp_path_factory.mktemp("identity")) as running:
        try:
            yield running
        except Exception:
            print(running.logs())
            raise
    _cleanup(stack_settings, list(running.catalog))
    _delete_internal(stack_settings, test_id)


@dataclass(frozen=True)
class Route:
    """One operation of the matrix: who may, and what they get in their own organisation."""

    method: str
    template: str
    allowed: frozenset[str]  # roles allowed
    ok: int  # the status of an allowed call in the principal's own organisation
    users_only: bool = False  # API keys get 403 whatever their role
    writes: bool = False  # API keys need the scope "read commands"
    body: Callable[[], dict[str, Any]] | None = None
    params: dict[str, str] | None = None
    operators: bool = False  # the operators' routes: 403 to everyone of another organisation


def _email() -> dict[str, Any]:
    return {"email": f"{uuid.uuid4().hex[:8]}@invitee.example.com", "role": "viewer"}


ROUTES = [
    *(Route("GET", p, MARKET, 200) for p in ("/v1/lmp/latest", "/v1/kpis/latest")),
    *(
        Route("GET", p, MARKET, 200, params=DAY)
        for p in ("/v1/lmp", "/v1/load", "/v1/fuel-mix", "/v1/ancillary-prices", "/v1/kpis")
    ),
    *(
        Route("GET", p, MARKET, 200)
        for p in (
            "/v1/catalog/isos",
            "/v1/catalog/datasets",
            "/v1/catalog/locations",
            "/v1/quality/freshness",
            "/v1/quality/gaps",
            "/v1/quality/series",
            "/v1/quality/dead-letters",
            "/v1/live",
        )
    ),
    Route("POST", "/v1/auth/logout", USERS, 204, users_only=True),
    Route("POST", "/v1/auth/reauthenticate", USERS, 200, users_only=True),
    Route("GET", "/v1/me", USERS, 200, users_only=True),
    Route("GET", "/v1/me/sessions", USERS, 200, users_only=True),
    Route("DELETE", "/v1/me/sessions/{session_id}", USERS, 404, users_only=True),
    Route("POST", "/v1/me/sessions/revoke-others", USERS, 200, users_only=True),
    Route("POST", "/v1/me/totp", USERS, 200, users_only=True),
    Route(
        "POST",
        "/v1/me/totp/confirm",
        USERS,
        422,
        users_only=True,
        body=lambda: {"enrolment": "v1.bm90IG9uZQ", "code": "123456"},
    ),
    Route(
        "PUT", "/v1/me/password", USERS, 422, users_only=True, body=lambda: {"password": "short"}
    ),
    Route("GET", "/v1/orgs/{org_id}", MANAGERS, 200),
    Route("GET", "/v1/orgs/{org_id}/members", MANAGERS, 200),
    Route(
        "PUT",
        "/v1/orgs/{org_id}/members/{user_id}/role",
        MANAGERS,
        404,
        writes=True,
        body=lambda: {"role": "viewer"},
    ),
    Route("DELETE", "/v1/orgs/{org_id}/members/{user_id}", MANAGERS, 404, writes=True),
    Route("GET", "/v1/orgs/{org_id}/invitations", MANAGERS, 200),
    Route("POST", "/v1/orgs/{org_id}/invitations", MANAGERS, 201, writes=True, body=_email),
    Route(
        "POST",
        "/v1/invitations/{invitation_id}/accept",
        USERS,
        404,
        users_only=True,
        body=lambda: {"token": "not-a-token"},
    ),
    Route("GET", "/v1/orgs/{org_id}/api-keys", MANAGERS, 200),
    Route(
        "POST",
        "/v1/orgs/{org_id}/api-keys",
        MANAGERS,
        201,
        writes=True,
        body=lambda: {"name": "matrix", "role": "viewer", "scope": "read"},
    ),
    Route("DELETE", "/v1/orgs/{org_id}/api-keys/{key_id}", MANAGERS, 404, writes=True),
    Route("GET", "/v1/orgs/{org_id}/audit", MANAGERS, 200),
    Route("GET", "/v1/orgs/{org_id}/sso", MANAGERS, 200),
    Route(
        "PUT",
        "/v1/orgs/{org_id}/sso/{connection_id}",
        MANAGERS,
        422,
        writes=True,
        body=lambda: {
            "name": "x",
            "protocol": "oidc",
            "allowed_domains": ["x.example"],
            "role_mapping": {"claim": "groups"},
        },  # no issuer: refused by the aggregate
    ),
    Route("DELETE", "/v1/orgs/{org_id}/sso/{connection_id}", MANAGERS, 404, writes=True),
    Route("POST", "/v1/orgs/{org_id}/sso/{connection_id}/test", MANAGERS, 404, writes=True),
    Route("GET", "/v1/usage", USERS, 200),
    Route("GET", "/v1/me/flags", USERS, 200, users_only=True),
    Route("GET", "/v1/billing", BILLING, 200),
    Route("GET", "/v1/billing/invoices", BILLING, 200),
    # no Stripe connected on this API: 503, after the principal and the account are checked
    Route("POST", "/v1/billing/checkout", BILLING, 503, writes=True,
          body=lambda: {"tier": "starter"}),
    Route("POST", "/v1/billing/portal", BILLING, 503, writes=True),
    # no operators' organisation configured on this API: nobody is an operator
    Route("GET", "/v1/admin/accounts", MANAGERS, 403, operators=True),
    Route("GET", "/v1/admin/orgs/{org_id}/usage", MANAGERS, 403, operators=True),
    Route("PUT", "/v1/admin/orgs/{org_id}/tier", MANAGERS, 403, writes=True, operators=True,
          body=lambda: {"tier": "starter"}),
    Route("GET", "/v1/admin/flags", MANAGERS, 403, operators=True),
    Route("PUT", "/v1/admin/flags/{flag}", MANAGERS, 403, writes=True, operators=True,
          body=lambda: {"enabled": True}),
    Route("DELETE", "/v1/admin/flags/{flag}", MANAGERS, 403, writes=True, operators=True),
]  # fmt: skip


def _url(route: Route, org_id: str) -> str:
    return route.template.format(
        org_id=org_id, user_id="usr_nobody", key_id="key_nobody", session_id="0" * 32,
        invitation_id="inv_nobody", connection_id="conn_nobody", flag="matrix_flag",
    )  # fmt: skip


def _call(path: IdentityPath, route: Route, headers: dict[str, str], org_id: str) -> httpx.Response:
    url = path.url + _url(route, org_id)
    body = route.body() if route.body is not None else None
    if route.template == "/v1/auth/reauthenticate":
        body = {"password": headers.pop("x-password", "no-password-given")}
    if route.template == "/v1/live":
        with httpx.stream("GET", url, headers=headers, timeout=30) as answer:
            return answer  # the status and headers are what the matrix asks
    return httpx.request(
        route.method, url, headers=headers, json=body, params=route.params, timeout=30
    )


def _expected(route: Route, role: str, kind: str, own: bool) -> int:
    if kind == "api_key" and route.users_only:
        return 403
    if role not in route.allowed:
        return 403
    if kind == "api_key" and route.writes and role not in MANAGERS:
        return 403  # a "read" key; owner and admin keys here have "read commands"
    if route.operators:
        return 403
    if "{org_id}" in route.template and not own:
        return 404
    return route.ok


def _credentials(path: IdentityPath, person: Person, kind: str, route: Route) -> dict[str, str]:
    if kind == "api_key":
        return person.key()
    if route.template == "/v1/auth/logout":  # a session of its own, so the matrix's stays
        answer = path.login(person)
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}
    headers = person.bearer()
    if route.template == "/v1/auth/reauthenticate":
        headers["x-password"] = person.password
    return headers


def test_the_matrix_covers_every_v1_operation() -> None:
    document = create_app("postgresql://x@127.0.0.1:1/x", "redis://127.0.0.1:1/0", "x").openapi()
    operations = {
        (method.upper(), p)
        for p, ops in document["paths"].items()
        if p.startswith("/v1/")
        for method in ops
    }
    assert operations - PUBLIC == {(r.method, r.template) for r in ROUTES}


def test_authorization_matrix(path: IdentityPath) -> None:
    assert path.other is not None
    wrong: list[str] = []
    calls = 0
    for route in ROUTES:
        anonymous = _call(path, route, {}, path.people["owner"].org_id)
        if anonymous.status_code != 401:
            wrong.append(f"{route.method} {route.template} anonymous: {anonymous.status_code}")
        for role, person in path.people.items():
            for kind in ("user", "api_key"):
                scopes = [True, False] if "{org_id}" in route.template else [True]
                for own in scopes:
                    org = person.org_id if own else path.other.org_id
                    answer = _call(path, route, _credentials(path, person, kind, route), org)
                    calls += 1
                    expected = _expected(route, role, kind, own)
                    if answer.status_code != expected:
                        wrong.append(
                            f"{route.method} {route.template} {role} {kind}"
                            f" {'own' if own else 'other'} org: {answer.status_code} (expected"
                            f" {expected}) {answer.text[:200] if answer.status_code >= 400 else ''}"
                        )
    assert not wrong, "\n".join(wrong)
    assert calls > 300


def test_authenticated_answers_are_not_cached_and_carry_the_security_headers(
    path: IdentityPath,
) -> None:
    viewer = path.people["viewer"]
    answer = httpx.get(f"{path.url}/v1/lmp/latest", headers=viewer.key(), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in answer.headers  # CORS closed by default
    page = httpx.get(f"{path.url}/dashboard/", timeout=10)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    jwks = httpx.get(f"{path.url}/.well-known/jwks.json", timeout=10)
    assert jwks.headers["cache-control"] == "public, max-age=300"  # public, no credentials
    preflight = httpx.options(
        f"{path.url}/v1/lmp/latest",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


def _refused(path: IdentityPath, token: str) -> httpx.Response:
    answer = httpx.get(
        f"{path.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    return answer


def test_forged_and_stale_tokens_are_refused(path: IdentityPath) -> None:
    owner = path.people["owner"]
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        ring = signing.load(conn)
    assert ring is not None
    now = datetime.now(UTC)
    claims = {
        "iss": "optibid", "aud": "optibid-api", "sub": owner.user_id, "org": owner.org_id,
        "roles": ["owner"], "scope": "read commands", "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()), "exp": int(now.timestamp()) + 600, "jti": "x",
        "sid": owner.session_id,
    }  # fmt: skip
    kid = ring.current.kid
    assert (
        "algorithm 'none'"
        in _refused(path, _forged({"alg": "none", "typ": "at+jwt", "kid": kid}, claims, None)).text
    )
    public_pem = ring.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = _forged({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, public_pem)
    assert "HS256" in _refused(path, hs256).text

    def minted(**changes: Any) -> str:
        fields: dict[str, Any] = {
            "issuer": "optibid", "audience": "optibid-api", "subject": owner.user_id,
            "org": owner.org_id, "roles": ["owner"], "scope": "read commands",
            "session_id": owner.session_id, **changes,
        }  # fmt: skip
        return issue_access_token(ring, **fields)

    assert "expired" in _refused(path, minted(now=now - timedelta(minutes=30))).text
    assert "audience" in _refused(path, minted(audience="another-api")).text
    assert "issuer" in _refused(path, minted(issuer="someone-else")).text
    # a token signed properly but naming another organisation than its session's
    assert "session" in _refused(path, minted(org=path.other.org_id if path.other else "")).text
    # the genuine one passes
    ok = httpx.get(f"{path.url}/v1/me", headers={"Authorization": f"Bearer {minted()}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    # malformed credentials
    for header in ({"Authorization": "Basic b3duZXI6cHc="}, {"X-API-Key": "obk_short"}):
        answer = httpx.get(f"{path.url}/v1/lmp/latest", headers=header, timeout=10)
        assert answer.status_code == 401, answer.text
    both = {**owner.bearer(), **owner.key()}
    assert httpx.get(f"{path.url}/v1/me", headers=both, timeout=10).status_code == 401


def test_refresh_rotates_and_a_reused_token_ends_the_session(path: IdentityPath) -> None:
    analyst = path.people["analyst"]
    first = path.login(analyst).json()
    second = httpx.post(
        f"{path.url}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}, timeout=30
    )
    assert second.status_code == 200, second.text
    renewed = second.json()
    assert renewed["session_id"] == first["session_id"]
    assert renewed["refresh_token"] != first["refresh_token"]
    me = httpx.get(
        f"{path.url}/v1/me",
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200
    assert me.json()["role"] == "analyst"
    replayed = httpx.post(
        f"{path.url}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}, timeout=30
    )
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "refresh_reused"
    # the whole family is gone: the newest refresh token and the access token too
    latest = httpx.post(
        f"{path.url}/v1/auth/refresh", json={"refresh_token": renewed["refresh_token"]}, timeout=30
    )
    assert latest.status_code == 401
    gone = httpx.get(
        f"{path.url}/v1/me",
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
        timeout=10,
    )
    assert gone.status_code == 401
    assert gone.json()["code"] == "session_ended"
    sessions = httpx.get(f"{path.url}/v1/me/sessions", headers=analyst.bearer(), timeout=10)
    assert first["session_id"] not in {s["session_id"] for s in sessions.json()["data"]}


def test_brute_force_locks_the_account(path: IdentityPath) -> None:
    email, password = f"target@{path.test_id}.example.com", "juniper-compass-velvet-38"
    user_id = path.register(email, password)
    owner = path.people["owner"]
    provisioning.add_member(
        path.bus, org_id=owner.org_id, user_id=user_id, email=email, role="viewer",
        actor=provisioning.Actor(owner.user_id, "user", "test", org_id=owner.org_id),
        timeout_s=30,
    )  # fmt: skip
    path.member(owner.org_id, user_id)
    target = Person("viewer", email, password, user_id, owner.org_id)
    statuses = [path.login(target, password=f"guess-{n}-wrong-pw").status_code for n in range(5)]
    assert statuses == [401] * 5
    locked = path.login(target)  # the right password, too late
    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "locked"
    assert int(locked.headers["retry-after"]) > 0
    # every attempt is in the organisation's audit log, with the address it came from
    audit = httpx.get(
        f"{path.url}/v1/orgs/{owner.org_id}/audit",
        params={"action": "RecordSignIn", "limit": 500},
        headers=owner.bearer(),
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    attempts = [e for e in audit.json()["data"] if e["target_id"] == user_id]
    assert len(attempts) == 5, attempts
    assert all(e["ip"] == "127.0.0.1" and e["actor_id"] == user_id for e in attempts)


def _enrol(path: IdentityPath, person: Person) -> tuple[str, list[str]]:
    begun = httpx.post(f"{path.url}/v1/me/totp", headers=person.bearer(), timeout=30)
    assert begun.status_code == 200, begun.text
    secret = begun.json()["secret"]
    code = totp.code_at(secret, datetime.now(UTC) - timedelta(seconds=30))
    confirmed = httpx.post(
        f"{path.url}/v1/me/totp/confirm",
        json={"enrolment": begun.json()["enrolment"], "code": code},
        headers=person.bearer(),
        timeout=30,
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


def test_totp_sign_in_and_a_replayed_code_is_refused(path: IdentityPath) -> None:
    email, password = f"mfa@{path.test_id}.example.com", "marigold-anchor-pixel-64"
    user_id = path.register(email, password)
    owner = path.people["owner"]
    provisioning.add_member(
        path.bus, org_id=owner.org_id, user_id=user_id, email=email, role="analyst",
        actor=provisioning.Actor(owner.user_id, "user", "test", org_id=owner.org_id),
        timeout_s=30,
    )  # fmt: skip
    path.member(owner.org_id, user_id)
    person = Person("analyst", email, password, user_id, owner.org_id)
    path.sign_in(person)
    secret, recovery = _enrol(path, person)
    assert len(recovery) == 10
    asked = path.login(person)
    assert asked.status_code == 401
    assert asked.json()["code"] == "otp_required"
    code = totp.code_at(secret, datetime.now(UTC))
    signed = path.login(person, otp=code)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["mfa"] is True
    replayed = path.login(person, otp=code)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_otp"
    by_recovery = path.login(person, recovery_code=recovery[0])
    assert by_recovery.status_code == 200, by_recovery.text
    again = path.login(person, recovery_code=recovery[0])  # spent
    assert again.status_code == 401


def test_demotion_and_removal_take_effect_on_tokens_and_keys(path: IdentityPath) -> None:
    owner = path.people["owner"]
    email, password = f"temp-admin@{path.test_id}.example.com", "lantern-meadow-quartz-19"
    user_id = path.register(email, password)
    provisioning.add_member(
        path.bus, org_id=owner.org_id, user_id=user_id, email=email, role="admin",
        actor=provisioning.Actor(owner.user_id, "user", "test", org_id=owner.org_id),
        timeout_s=30,
    )  # fmt: skip
    path.member(owner.org_id, user_id)
    temp = Person("admin", email, password, user_id, owner.org_id)
    path.sign_in(temp)
    made = httpx.post(
        f"{path.url}/v1/orgs/{owner.org_id}/api-keys",
        json={"name": "temp", "role": "admin", "scope": "read commands"},
        headers=temp.bearer(),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["api_key"]}
    members = f"{path.url}/v1/orgs/{owner.org_id}/members"
    assert httpx.get(members, headers=temp.bearer(), timeout=10).status_code == 200
    demoted = httpx.put(
        f"{members}/{user_id}/role", json={"role": "viewer"}, headers=owner.bearer(), timeout=30
    )
    assert demoted.status_code == 200
    assert demoted.json()["role"] == "viewer"
    # the token still says admin; the session check reads the current role within its cache
    wait_until(
        lambda: httpx.get(members, headers=temp.bearer(), timeout=10).status_code == 403,
        15, "the demotion to reach the token",
    )  # fmt: skip
    # the key the admin made went with the admin role
    wait_until(
        lambda: httpx.get(members, headers=key, timeout=10).status_code == 401,
        15, "the demoted admin's key to be revoked",
    )  # fmt: skip
    removed = httpx.delete(f"{members}/{user_id}", headers=owner.bearer(), timeout=30)
    assert removed.status_code == 204
    wait_until(
        lambda: httpx.get(f"{path.url}/v1/lmp/latest", headers=temp.bearer(), timeout=10)
        .status_code == 401,
        15, "the removed member's token to stop",
    )  # fmt: skip
    last_owner = httpx.delete(f"{members}/{owner.user_id}", headers=owner.bearer(), timeout=30)
    assert last_owner.status_code == 409
    assert last_owner.json()["code"] == "last_owner"


def test_an_invitee_joins_with_the_invitations_token_and_signs_in(path: IdentityPath) -> None:
    owner = path.people["owner"]
    email = f"newcomer@{path.test_id}.example.com"
    invited = httpx.post(
        f"{path.url}/v1/orgs/{owner.org_id}/invitations",
        json={"email": email, "role": "analyst"},
        headers=owner.bearer(),
        timeout=30,
    )
    assert invited.status_code == 201, invited.text
    invitation = invited.json()
    register = f"{path.url}/v1/invitations/{invitation['invitation_id']}/register"
    password = "pelican-granite-mosaic-27"
    wrong = httpx.post(register, json={"token": "guess", "password": password}, timeout=30)
    assert wrong.status_code == 404
    weak = httpx.post(register, json={"token": invitation["token"], "password": "password123"},
                      timeout=30)  # fmt: skip
    assert weak.status_code == 422
    joined = httpx.post(register, json={"token": invitation["token"], "password": password},
                        timeout=30)  # fmt: skip
    assert joined.status_code == 201, joined.text
    assert (joined.json()["email"], joined.json()["role"]) == (email, "analyst")
    signed = path.login(Person("analyst", email, password, "", owner.org_id))
    assert signed.status_code == 200, signed.text
    assert signed.json()["role"] == "analyst"
    again = httpx.post(register, json={"token": invitation["token"], "password": password},
                       timeout=30)  # fmt: skip
    assert again.status_code == 404  # used


def test_a_nul_character_is_a_422_not_a_server_error(path: IdentityPath) -> None:
    answer = httpx.post(
        f"{path.url}/v1/auth/login", json={"email": "a\u0000@x.example", "password": "pw"},
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    owner = path.people["owner"]
    deleted = httpx.delete(f"{path.url}/v1/me/sessions/ab%00cd", headers=owner.bearer(),
                           timeout=30)  # fmt: skip
    assert deleted.status_code in (404, 422), deleted.text


def test_the_live_stream_ends_when_its_key_is_revoked(path: IdentityPath) -> None:
    owner = path.people["owner"]
    made = httpx.post(
        f"{path.url}/v1/orgs/{owner.org_id}/api-keys",
        json={"name": "streamer", "role": "viewer", "scope": "read"},
        headers=owner.bearer(),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key = made.json()
    with httpx.stream(
        "GET", f"{path.url}/v1/live", headers={"X-API-Key": key["api_key"]}, timeout=60
    ) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        revoked = httpx.delete(
            f"{path.url}/v1/orgs/{owner.org_id}/api-keys/{key['key_id']}",
            headers=owner.bearer(), timeout=30,
        )  # fmt: skip
        assert revoked.status_code == 204
        ended = False
        for line in lines:  # heartbeats every 0.5 s until the credential is asked again
            if line == "event: end":
                ended = True
                break
        assert ended


def _dump(settings: Settings, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        return {
            table: sorted(
                conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall(),
                key=repr,
            )
            for table in TABLES
        }


def _rebuild(path: IdentityPath, schema: str) -> str:
    env = {**path.env, "OPTIBID_DB_SCHEMA": schema}
    done = subprocess.run(
        [sys.executable, "-m", "optibid", "project-identity", "--rebuild", "--once",
         "--metrics-port", "0"],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def test_erased_user_is_crypto_shredded_and_a_rebuild_gives_the_same_read_models(
    path: IdentityPath,
) -> None:
    email, password = f"leaver@{path.test_id}.example.com", "hazel-orchid-tundra-42"
    user_id = path.register(email, password)
    env = {**path.env}
    erased = subprocess.run(
        [sys.executable, "-m", "optibid", "admin", "erase-user", "--user-id", user_id],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert erased.returncode == 0, erased.stderr[-2000:]
    assert json.loads(erased.stdout.strip().splitlines()[-1])["key_deleted"] is True
    leaver = Person("viewer", email, password, user_id, "")
    assert path.login(leaver).status_code == 401
    # nothing sealed for them in the log opens any more
    with RegistryClient(path.settings.schema_registry_url) as registry:
        serde = AvroSerde(registry, ContractSet())
        events = [
            v for _, v in read_topic(path.settings, path.catalog.identity("events").name, serde)
        ]
    theirs = [e for e in events if e["aggregate_id"] == user_id and e.get("password_sealed")]
    assert theirs, "the leaver's registration is in the log"
    for event in theirs:
        with pytest.raises(SecretUnavailable):
            path.vault.open_for(user_id, "password", event["password_sealed"])
    assert password not in json.dumps(events, default=str)
    # the live read models have caught up with everything so far; a rebuild into a schema of
    # its own from the topics gives the same rows, the erased user included
    owner = path.people["owner"]
    last = provisioning_touch(path, owner)
    wait_until(lambda: _version(path, path.schema, "organization", owner.org_id) >= last, 30,
               "the live projector to catch up")  # fmt: skip
    rebuilt = f"{path.schema}_rebuilt"
    with psycopg.connect(path.settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, rebuilt)
    try:
        output = _rebuild(path, rebuilt)
        assert "rebuil" in output.lower()
        live, replayed = _dump(path.settings, path.schema), _dump(path.settings, rebuilt)
        for table in TABLES:
            assert replayed[table] == live[table], table
        users = {row[0]: row for row in replayed["identity_users"]}
        assert users[user_id] is not None
    finally:
        drop_schema(path.settings.postgres_dsn, rebuilt)


def provisioning_touch(path: IdentityPath, owner: Person) -> int:
    """One more change to org A, so the live read models' version is known to be current."""
    answer = httpx.post(
        f"{path.url}/v1/orgs/{owner.org_id}/invitations", json=_email(), headers=owner.bearer(),
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return _version(path, path.schema, "organization", owner.org_id)


def _version(path: IdentityPath, schema: str, kind: str, aggregate_id: str) -> int:
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT version FROM "{schema}".identity_versions'
            " WHERE aggregate_type = %s AND aggregate_id = %s",
            (kind, aggregate_id),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_token_of_a_rotated_out_key_is_refused(path: IdentityPath) -> None:
    viewer = path.people["viewer"]
    fresh = path.login(viewer).json()["access_token"]
    headers = {"Authorization": f"Bearer {fresh}"}
    assert httpx.get(f"{path.url}/v1/me", headers=headers, timeout=10).status_code == 200
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        ring = signing.load(conn)
        assert ring is not None
        for _ in range(ring.retain_previous + 1):
            signing.rotate(conn)
    # the API reloads its ring at an unknown kid at most every few seconds
    wait_until(
        lambda: httpx.get(f"{path.url}/v1/me", headers=headers, timeout=10).status_code == 401,
        90, "the rotated-out key's token to be refused",
    )  # fmt: skip
    again = path.login(viewer)  # signed with the new current key
    assert again.status_code == 200
    token = again.json()["access_token"]
    ok = httpx.get(f"{path.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert ok.status_code == 200, ok.text
