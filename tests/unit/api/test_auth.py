"""The principal checks without a server: roles and scopes, the credential of a request, the
verdict cache, and tokens against a fixed key ring (forgeries, a session's token without its
read models is refused, not passed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from api.app import create_app, serve
from api.auth import ROLE_PERMISSIONS, Permission, Principal, TtlCache, authorize
from api.identity import AuthSettings
from api.problems import ProblemError
from identity.apikeys import new_api_key, prefix_of
from identity.organization import Role
from identity.tokens import KeyRing, issue_access_token

AUTH = AuthSettings(ring=KeyRing.generate(), service_tokens=True)
assert AUTH.ring is not None


def principal(role: Role, kind: str = "user", scopes: str = "read commands") -> Principal:
    return Principal(kind, "usr_1", "org_1", role, frozenset(scopes.split()))


@pytest.mark.parametrize("role", list(Role))
def test_roles_read_market_data_except_billing_and_only_managers_administer(role: Role) -> None:
    user = principal(role)
    assert user.can(Permission.MARKET_READ) == (role is not Role.BILLING)
    managers = role in (Role.OWNER, Role.ADMIN)
    for permission in (Permission.MEMBERS_MANAGE, Permission.KEYS_MANAGE, Permission.AUDIT_READ):
        assert user.can(permission) == managers
    assert user.can(Permission.SELF)


def test_a_key_is_never_a_user_and_a_read_key_changes_nothing() -> None:
    reader = principal(Role.ADMIN, "api_key", "read")
    writer = principal(Role.ADMIN, "api_key", "read commands")
    assert not reader.can(Permission.SELF)
    assert reader.can(Permission.MEMBERS_READ)
    assert not reader.can(Permission.KEYS_MANAGE)
    assert writer.can(Permission.KEYS_MANAGE)
    with pytest.raises(ProblemError) as refused:
        authorize(reader, Permission.KEYS_MANAGE)
    assert (refused.value.status, refused.value.code) == (403, "scope")
    with pytest.raises(ProblemError) as users_only:
        authorize(writer, Permission.SELF)
    assert users_only.value.code == "users_only"
    with pytest.raises(ProblemError) as role:
        authorize(principal(Role.VIEWER), Permission.AUDIT_READ)
    assert role.value.code == "role"
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_the_cache_expires_keeps_stale_values_for_outages_and_stays_bounded() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=0.05, size=3)
    cache.put("a", 1)
    assert cache.get("a") == 1
    time.sleep(0.06)
    assert cache.get("a") is None
    assert cache.stale("a", 10.0) == 1
    assert cache.stale("a", 0.01) is None
    for n, key in enumerate("bcde"):
        cache.put(key, n)
    assert cache.stale("a", 10.0) is None  # pushed out: at most `size` entries
    assert cache.get("e") == 3
    cache.drop("e")
    assert cache.get("e") is None


def test_api_keys_are_well_formed_and_their_prefix_is_found() -> None:
    key, prefix, digest = new_api_key()
    assert prefix_of(key) == prefix
    assert len(digest) == 64
    assert prefix_of(key[:-1]) is None
    assert prefix_of(key + "x") is None
    assert prefix_of("obk_short") is None


def _get(app: FastAPI, path: str, headers: dict[str, str]) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=serve(app))  # as served: the headers' layer too
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(call())


@pytest.fixture
def app() -> FastAPI:
    return create_app(
        "postgresql://optibid@127.0.0.1:1/optibid", "redis://127.0.0.1:1/0", "demo",
        auth_settings=AUTH, rate_limits=False,
    )  # fmt: skip


def token(**changes: Any) -> str:
    assert AUTH.ring is not None
    fields: dict[str, Any] = {
        "issuer": AUTH.issuer, "audience": AUTH.audience, "subject": "usr_1", "org": "org_1",
        "roles": ["viewer"], "scope": "read", **changes,
    }  # fmt: skip
    return issue_access_token(AUTH.ring, **fields)


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "needs credentials"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "'Bearer <token or API key>'"),
        ({"Authorization": "Bearer "}, "'Bearer <token or API key>'"),
        ({"Authorization": "Bearer x", "X-API-Key": "y"}, "not both"),
        ({"X-API-Key": "obk_nope"}, "malformed"),
        ({"Authorization": "Bearer not.a.jwt"}, "malformed token"),
        ({"Authorization": "Bearer {audience=elsewhere}"}, "audience"),
        ({"Authorization": "Bearer {roles=root}"}, "no known role"),
    ],
)
def test_requests_without_a_valid_credential_get_a_401_naming_why(
    app: FastAPI, headers: dict[str, str], says: str
) -> None:
    # tokens are made now, not when the tests were collected (they would have expired)
    made = {
        "Bearer {audience=elsewhere}": f"Bearer {token(audience='elsewhere')}",
        "Bearer {roles=root}": f"Bearer {token(roles=['root'])}",
    }
    headers = {k: made.get(v, v) for k, v in headers.items()}
    answer = _get(app, "/v1/catalog/isos", headers)
    assert answer.status_code == 401
    assert says in answer.json()["detail"]
    assert answer.headers["www-authenticate"] == 'Bearer realm="optibid"'
    assert answer.headers["cache-control"] == "no-store"


def test_a_token_without_a_session_is_taken_at_its_claims_and_its_role_decides(
    app: FastAPI,
) -> None:
    viewer = _get(app, "/v1/catalog/isos", {"Authorization": f"Bearer {token()}"})
    assert viewer.status_code == 200
    billing = _get(app, "/v1/catalog/isos", {"Authorization": f"Bearer {token(roles=['billing'])}"})
    assert billing.status_code == 403
    assert billing.json()["code"] == "role"


def test_a_sessions_token_is_refused_when_its_read_models_do_not_answer(app: FastAPI) -> None:
    # nothing listens on port 1: the session cannot be checked, so it is no pass (503)
    answer = _get(
        app, "/v1/catalog/isos", {"Authorization": f"Bearer {token(session_id='s' * 32)}"}
    )
    assert answer.status_code == 503


def test_cors_is_closed_by_default_and_open_to_the_origins_configured() -> None:
    closed = create_app("postgresql://x@127.0.0.1:1/x", "redis://127.0.0.1:1/0", "demo",
                        auth_settings=AUTH, rate_limits=False)  # fmt: skip
    origin = {"Origin": "https://desk.example.com", "Authorization": f"Bearer {token()}"}
    assert "access-control-allow-origin" not in _get(closed, "/v1/catalog/isos", origin).headers
    settings = AuthSettings(
        ring=AUTH.ring, service_tokens=True, cors_origins=("https://desk.example.com",)
    )
    opened = create_app("postgresql://x@127.0.0.1:1/x", "redis://127.0.0.1:1/0", "demo",
                        auth_settings=settings, rate_limits=False)  # fmt: skip
    for path in ("/v1/catalog/isos", "/v1/lmp/latest"):  # FastAPI's routes and the hot path
        answer = _get(opened, path, origin)
        assert answer.headers["access-control-allow-origin"] == "https://desk.example.com", path
    other = {**origin, "Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in _get(opened, "/v1/catalog/isos", other).headers


def test_a_named_cache_counts_hits_and_misses_from_zero() -> None:
    def count(result: str) -> float | None:
        return REGISTRY.get_sample_value(
            "optibid_api_cache_requests_total", {"cache": "unit-test", "result": result}
        )

    cache: TtlCache[str, int] = TtlCache(ttl_s=60.0, name="unit-test")
    before_hits, before_misses = count("hit"), count("miss")
    assert before_hits is not None
    assert before_misses is not None
    assert cache.get("a") is None
    cache.put("a", 1)
    assert cache.get("a") == 1
    assert cache.get("a") == 1
    assert count("hit") == before_hits + 2
    assert count("miss") == before_misses + 1
    unnamed: TtlCache[str, int] = TtlCache()
    unnamed.get("a")
    assert count("miss") == before_misses + 1
