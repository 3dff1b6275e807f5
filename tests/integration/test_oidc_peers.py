"""The OIDC peers of the single sign-on tests work: a relying party written here with authlib
signs alice, bob and mallory in at each of them, and checks what their ID tokens say."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2 import ClientAuth
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, KeySetSerialization, RSAKey

from tests.integration.oidc_peers import (
    AZURE_APP_ROLES,
    AZURE_GROUPS,
    AZURE_TENANT_ID,
    DOMAINS,
    OKTA_EVERYONE,
    OKTA_GROUPS,
    OUTSIDE_DOMAIN,
    LoginRejectedError,
    OidcPeer,
    log_in,
    start_peers,
    stop_peers,
)

REDIRECT_URI = "http://127.0.0.1:8765/sso/oidc/callback"  # never requested
# both client authentication methods get exercised
AUTH_METHODS = {
    "azure": "client_secret_post",
    "okta": "client_secret_basic",
    "google": "client_secret_post",
}


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, OidcPeer]]:
    started = start_peers(tmp_path_factory.mktemp("oidc-peers"), REDIRECT_URI)
    yield started
    stop_peers(started)


@dataclass
class SignIn:
    claims: dict[str, Any]
    header: dict[str, Any]
    id_token: str
    tokens: dict[str, Any]


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    verifier: str


def authorization_request(peer: OidcPeer, *, pkce: bool = True) -> AuthorizationRequest:
    """A fresh authorization code request with state, nonce and (unless told not) PKCE."""
    state, nonce, verifier = generate_token(24), generate_token(24), generate_token(64)
    url = prepare_grant_uri(
        peer.metadata()["authorization_endpoint"],
        peer.client_id,
        "code",
        redirect_uri=peer.redirect_uri,
        scope=peer.scope,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier) if pkce else None,
        code_challenge_method="S256" if pkce else None,
    )
    return AuthorizationRequest(str(url), state, nonce, verifier)


def redeem(peer: OidcPeer, request: AuthorizationRequest, callback: str) -> dict[str, Any]:
    """The token response for the code in `callback`, the client authenticated the
    profile's way (AUTH_METHODS)."""
    code = parse_authorization_code_response(callback, state=request.state)["code"]
    url = peer.metadata()["token_endpoint"]
    body = prepare_token_request(
        "authorization_code",
        redirect_uri=peer.redirect_uri,
        code=code,
        code_verifier=request.verifier,
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    client_auth = ClientAuth(peer.client_id, peer.client_secret, AUTH_METHODS[peer.profile])
    _, headers, body = client_auth.prepare("POST", url, headers, body)
    response = httpx.post(url, content=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    assert tokens["token_type"] == "Bearer"
    return tokens


def published_keys(peer: OidcPeer) -> KeySet:
    return KeySet.import_key_set(cast(KeySetSerialization, peer.public_jwks()))


def verify_id_token(
    peer: OidcPeer, id_token: str, nonce: str, access_token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Signature against the peer's published JWKS, then iss, aud, exp, nonce, at_hash."""
    token = jwt.decode(id_token, published_keys(peer), algorithms=["RS256"])
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": peer.issuer},
            "aud": {"essential": True, "value": peer.client_id},
        },
        params={"nonce": nonce, "client_id": peer.client_id, "access_token": access_token},
    )
    claims.validate()
    return dict(claims), dict(token.header)


def sign_in(peer: OidcPeer, login: str) -> SignIn:
    account = peer.accounts[login]
    request = authorization_request(peer)
    callback = log_in(request.url, account.login, account.password)
    assert callback.startswith(f"{REDIRECT_URI}?")
    params = parse_qs(urlsplit(callback).query)
    assert params["state"] == [request.state]
    assert params["iss"] == [peer.issuer]  # RFC 9207
    tokens = redeem(peer, request, callback)
    claims, header = verify_id_token(
        peer, tokens["id_token"], request.nonce, tokens["access_token"]
    )
    assert claims["sub"] == account.sub
    assert claims["nonce"] == request.nonce
    return SignIn(claims, header, tokens["id_token"], tokens)


@pytest.mark.parametrize("profile", ["azure", "okta", "google"])
def test_discovery(peers: dict[str, OidcPeer], profile: str) -> None:
    peer = peers[profile]
    metadata = peer.metadata()
    assert metadata["issuer"] == peer.issuer
    assert urlsplit(peer.issuer).hostname == "127.0.0.1"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(peer.scope.split()) <= set(metadata["scopes_supported"])
    assert [key["kid"] for key in peer.public_jwks()["keys"]] == [peer.kid]
    assert all("d" not in key for key in peer.public_jwks()["keys"])  # public halves only
    if profile == "azure":
        assert peer.issuer.endswith(f"/{AZURE_TENANT_ID}/v2.0")


def test_azure_claims(peers: dict[str, OidcPeer]) -> None:
    peer = peers["azure"]
    alice = sign_in(peer, "alice").claims
    assert alice["tid"] == AZURE_TENANT_ID
    assert alice["oid"] == peer.accounts["alice"].claims["oid"]
    assert alice["preferred_username"] == alice["email"] == f"alice@{DOMAINS['azure']}"
    assert alice["name"] == "Alice Archer"
    assert alice["groups"] == [AZURE_GROUPS["admin"]]
    assert alice["roles"] == [AZURE_APP_ROLES["admin"]]
    assert alice["amr"] == ["pwd", "mfa"]

    bob = sign_in(peer, "bob").claims
    assert bob["groups"] == [AZURE_GROUPS["viewer"]]
    assert bob["roles"] == [AZURE_APP_ROLES["viewer"]]
    assert bob["amr"] == ["pwd"]
    assert bob["oid"] != alice["oid"]

    mallory = sign_in(peer, "mallory").claims
    assert mallory["email"] == f"mallory@{OUTSIDE_DOMAIN}"
    assert mallory["tid"] == AZURE_TENANT_ID
    assert mallory["groups"] == []
    assert mallory["roles"] == []


def test_okta_claims(peers: dict[str, OidcPeer]) -> None:
    peer = peers["okta"]
    alice = sign_in(peer, "alice").claims
    assert alice["email"] == f"alice@{DOMAINS['okta']}"
    assert alice["email_verified"] is True
    assert alice["name"] == "Alice Archer"
    assert alice["groups"] == [OKTA_EVERYONE, OKTA_GROUPS["admin"]]
    assert alice["sub"].startswith("00u")
    assert "tid" not in alice
    assert "hd" not in alice

    assert sign_in(peer, "bob").claims["groups"] == [OKTA_EVERYONE, OKTA_GROUPS["viewer"]]
    mallory = sign_in(peer, "mallory").claims
    assert mallory["email"] == f"mallory@{OUTSIDE_DOMAIN}"
    assert mallory["groups"] == [OKTA_EVERYONE]


def test_google_claims(peers: dict[str, OidcPeer]) -> None:
    peer = peers["google"]
    alice = sign_in(peer, "alice").claims
    assert alice["email"] == f"alice@{DOMAINS['google']}"
    assert alice["email_verified"] is True
    assert alice["hd"] == DOMAINS["google"]
    assert alice["name"] == "Alice Archer"
    assert alice["picture"].startswith("https://")
    assert alice["sub"].isdigit()
    assert "groups" not in alice

    assert sign_in(peer, "bob").claims["hd"] == DOMAINS["google"]
    mallory = sign_in(peer, "mallory").claims
    assert mallory["email"] == f"mallory@{OUTSIDE_DOMAIN}"
    assert "hd" not in mallory  # a consumer account


def test_login_by_email(peers: dict[str, OidcPeer]) -> None:
    peer = peers["okta"]
    alice = peer.accounts["alice"]
    request = authorization_request(peer)
    callback = log_in(request.url, alice.email.upper(), alice.password)
    tokens = redeem(peer, request, callback)
    claims, _ = verify_id_token(peer, tokens["id_token"], request.nonce, tokens["access_token"])
    assert claims["sub"] == alice.sub


@pytest.mark.parametrize("profile", ["azure", "okta", "google"])
def test_wrong_password_gives_no_code(peers: dict[str, OidcPeer], profile: str) -> None:
    peer = peers[profile]
    url = authorization_request(peer).url
    with pytest.raises(LoginRejectedError, match="Invalid login or password"):
        log_in(url, "alice", "not-the-password")
    with pytest.raises(LoginRejectedError):
        log_in(url, "nobody", peer.accounts["alice"].password)


def test_declined_consent_is_access_denied(peers: dict[str, OidcPeer]) -> None:
    peer = peers["azure"]
    request = authorization_request(peer)
    callback = log_in(request.url, "bob", peer.accounts["bob"].password, consent=False)
    params = parse_qs(urlsplit(callback).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == [request.state]
    assert "code" not in params


def test_pkce_is_required(peers: dict[str, OidcPeer]) -> None:
    peer = peers["google"]
    request = authorization_request(peer, pkce=False)
    assert "code_challenge" not in request.url
    params = parse_qs(urlsplit(log_in(request.url, "alice", "unused")).query)
    assert params["error"] == ["invalid_request"]
    assert "code" not in params


def test_code_needs_its_verifier(peers: dict[str, OidcPeer]) -> None:
    peer = peers["okta"]
    alice = peer.accounts["alice"]
    request = authorization_request(peer)
    code = parse_qs(urlsplit(log_in(request.url, alice.login, alice.password)).query)["code"][0]
    response = httpx.post(
        peer.metadata()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": peer.redirect_uri,
            "code_verifier": generate_token(64),
        },
        auth=(peer.client_id, peer.client_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_requests_are_logged(peers: dict[str, OidcPeer]) -> None:
    peer = peers["google"]
    sign_in(peer, "bob")
    lines = peer.logs().splitlines()
    assert any(" POST /interaction/" in line and "/login 303 " in line for line in lines)
    assert any(" POST /token 200 " in line for line in lines)


def test_rotate_keys(peers: dict[str, OidcPeer]) -> None:
    peer = peers["okta"]
    before = sign_in(peer, "alice")
    old_kid = peer.kid
    assert before.header["kid"] == old_kid
    old_key = RSAKey.import_key(peer.public_jwks()["keys"][0])

    new_kid = peer.rotate_keys()
    assert new_kid != old_kid
    assert [key["kid"] for key in peer.public_jwks()["keys"]] == [new_kid]

    after = sign_in(peer, "alice")
    assert after.header["kid"] == new_kid
    assert after.claims["sub"] == before.claims["sub"]
    # the old key set does not know the new kid; the old key does not verify the new token
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(before.id_token, published_keys(peer), algorithms=["RS256"])
    with pytest.raises(BadSignatureError):
        jwt.decode(after.id_token, old_key, algorithms=["RS256"])
