"""Access tokens, the signing key ring and refresh token families."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from identity.tokens import (
    AccessClaims,
    KeyRing,
    RefreshFamily,
    RefreshReuseError,
    TokenError,
    hash_refresh_token,
    issue_access_token,
    verify_access_token,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ISS = "https://optibid.example"
AUD = "optibid-api"


def issue(ring: KeyRing, now: datetime = NOW, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "issuer": ISS,
        "audience": AUD,
        "subject": "user-1",
        "org": "org-1",
        "roles": ["trader"],
        "scope": "read commands",
        "now": now,
    }
    return issue_access_token(ring, **{**fields, **overrides})


def verify(token: str | None, ring: KeyRing, now: datetime = NOW) -> AccessClaims:
    return verify_access_token(token, ring, issuer=ISS, audience=AUD, now=now)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def payload_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate(NOW)


# --- access tokens ------------------------------------------------------------------------------


def test_issue_and_verify_round_trip(ring: KeyRing) -> None:
    token = issue(ring, session_id="fam-1", amr=["pwd", "otp"])
    claims = verify(token, ring, NOW + timedelta(minutes=5))
    assert claims.subject == "user-1"
    assert claims.org == "org-1"
    assert claims.roles == ("trader",)
    assert claims.scopes == {"read", "commands"}
    assert claims.has_scope("commands")
    assert not claims.has_scope("admin")
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + timedelta(minutes=10)
    assert claims.session_id == "fam-1"
    assert claims.amr == ("pwd", "otp")
    assert claims.kid == ring.current.kid
    assert claims.issuer == ISS
    assert claims.audience == AUD


def test_header_names_type_and_kid(ring: KeyRing) -> None:
    header = jwt.get_unverified_header(issue(ring))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": ring.current.kid}


def test_each_token_has_its_own_jti(ring: KeyRing) -> None:
    assert verify(issue(ring), ring).token_id != verify(issue(ring), ring).token_id


def test_optional_claims_are_absent_unless_given(ring: KeyRing) -> None:
    token = issue(ring)
    assert "sid" not in payload_of(token)
    assert "amr" not in payload_of(token)
    assert verify(token, ring).session_id is None
    assert verify(token, ring).amr == ()


@pytest.mark.parametrize("minutes", [5, 15])
def test_lifetime_bounds_are_accepted(ring: KeyRing, minutes: int) -> None:
    token = issue(ring, lifetime=timedelta(minutes=minutes))
    assert verify(token, ring).expires_at == NOW + timedelta(minutes=minutes)


@pytest.mark.parametrize("lifetime", [timedelta(minutes=4, seconds=59), timedelta(minutes=16)])
def test_lifetime_outside_bounds_is_refused(ring: KeyRing, lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        issue(ring, lifetime=lifetime)


def test_roles_given_as_a_string_are_refused(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="roles"):
        issue(ring, roles="admin")


def test_a_malformed_scope_is_refused(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="scope"):
        issue(ring, scope="read  commands")


def test_naive_now_is_refused(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue(ring, now=datetime(2025, 3, 1, 12))


# --- attacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_refused(ring: KeyRing, token: str | None) -> None:
    with pytest.raises(TokenError, match="no token"):
        verify(token, ring)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer x.y.z", "...."])
def test_garbage_is_refused(ring: KeyRing, token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        verify(token, ring)


def test_an_oversized_token_is_refused(ring: KeyRing) -> None:
    with pytest.raises(TokenError, match="longer than"):
        verify("a" * 10_000, ring)


def test_alg_none_is_refused(ring: KeyRing) -> None:
    genuine = issue(ring)
    header = b64json({"alg": "none", "typ": "at+jwt", "kid": ring.current.kid})
    forged = f"{header}.{genuine.split('.')[1]}."
    with pytest.raises(TokenError, match="'none' is not ES256"):
        verify(forged, ring)


def test_hs256_with_the_public_key_as_secret_is_refused(ring: KeyRing) -> None:
    public_pem = ring.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64json({"alg": "HS256", "typ": "at+jwt", "kid": ring.current.kid})
    signing_input = f"{header}.{issue(ring).split('.')[1]}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError, match="'HS256' is not ES256"):
        verify(f"{signing_input}.{b64(mac)}", ring)


def test_a_token_of_another_type_is_refused(ring: KeyRing) -> None:
    token = jwt.encode(
        payload_of(issue(ring)),
        ring.current.private_key,
        algorithm="ES256",
        headers={"typ": "JWT", "kid": ring.current.kid},
    )
    with pytest.raises(TokenError, match="type 'JWT'"):
        verify(token, ring)


def test_an_expired_token_is_refused(ring: KeyRing) -> None:
    token = issue(ring)
    verify(token, ring, NOW + timedelta(minutes=10, seconds=29))  # within the leeway
    with pytest.raises(TokenError, match="expired"):
        verify(token, ring, NOW + timedelta(minutes=10, seconds=30))


def test_a_token_not_yet_valid_is_refused(ring: KeyRing) -> None:
    token = issue(ring, now=NOW + timedelta(minutes=2))
    with pytest.raises(TokenError, match="not valid before"):
        verify(token, ring)


def test_a_wrong_audience_is_refused(ring: KeyRing) -> None:
    with pytest.raises(TokenError, match="audience"):
        verify(issue(ring, audience="another-api"), ring)


def test_a_wrong_issuer_is_refused(ring: KeyRing) -> None:
    with pytest.raises(TokenError, match="issuer"):
        verify(issue(ring, issuer="https://elsewhere.example"), ring)


def test_an_unknown_kid_is_refused(ring: KeyRing) -> None:
    stranger = KeyRing.generate(NOW)
    with pytest.raises(TokenError, match="unknown or retired"):
        verify(issue(stranger), ring)


def test_a_tampered_payload_is_refused(ring: KeyRing) -> None:
    header, payload, signature = issue(ring).split(".")
    claims = payload_of(f"{header}.{payload}.{signature}")
    claims["roles"] = ["admin"]
    with pytest.raises(TokenError, match="signature"):
        verify(f"{header}.{b64json(claims)}.{signature}", ring)


def test_a_missing_required_claim_is_refused(ring: KeyRing) -> None:
    claims = payload_of(issue(ring))
    del claims["org"]
    token = jwt.encode(
        claims,
        ring.current.private_key,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": ring.current.kid},
    )
    with pytest.raises(TokenError, match="'org'"):
        verify(token, ring)


# --- key ring -----------------------------------------------------------------------------------


def test_a_token_of_the_previous_key_verifies_after_rotation(ring: KeyRing) -> None:
    old_kid = ring.current.kid
    token = issue(ring)
    new_kid = ring.rotate(NOW)
    assert new_kid != old_kid
    assert ring.current.kid == new_kid
    assert verify(token, ring).kid == old_kid
    assert verify(issue(ring), ring).kid == new_kid


def test_a_token_of_a_retired_key_is_refused(ring: KeyRing) -> None:
    old_kid = ring.current.kid
    token = issue(ring)
    ring.rotate(NOW)
    ring.retire(old_kid)
    with pytest.raises(TokenError, match="unknown or retired"):
        verify(token, ring)


def test_the_current_key_cannot_be_retired(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="current signing key"):
        ring.retire(ring.current.kid)


def test_rotation_drops_keys_beyond_the_retention(ring: KeyRing) -> None:
    first = ring.current.kid
    token = issue(ring)
    kids = [ring.rotate(NOW) for _ in range(3)]
    assert ring.kids == (kids[2], kids[1], kids[0])  # retains 2 previous keys
    with pytest.raises(TokenError, match="unknown or retired"):
        verify(token, ring)
    assert first not in ring.kids


def test_jwks_lists_exactly_the_verifying_keys_without_private_parts(ring: KeyRing) -> None:
    first = ring.current.kid
    second = ring.rotate(NOW)
    third = ring.rotate(NOW)
    ring.retire(second)
    keys = ring.jwks()["keys"]
    assert [key["kid"] for key in keys] == [third, first]
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("EC", "P-256", "sig", "ES256")
    assert "PRIVATE" not in json.dumps(ring.jwks())


def test_a_jwk_verifies_the_token_of_its_key(ring: KeyRing) -> None:
    token = issue(ring, now=datetime.now(UTC))  # PyJWT checks exp against its own clock
    public = jwt.PyJWK(ring.jwks()["keys"][0])
    assert jwt.decode(token, public, algorithms=["ES256"], audience=AUD)["sub"] == "user-1"


def test_the_kid_is_the_rfc_7638_thumbprint(ring: KeyRing) -> None:
    jwk = ring.jwks()["keys"][0]
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    assert jwk["kid"] == b64(hashlib.sha256(canonical).digest())


def test_the_serialised_ring_verifies_old_tokens(ring: KeyRing) -> None:
    old = issue(ring)
    ring.rotate(NOW)
    new = issue(ring)
    restored = KeyRing.from_dict(json.loads(json.dumps(ring.to_dict())))
    assert restored.kids == ring.kids
    assert restored.current.created_at == ring.current.created_at
    assert verify(old, restored).subject == "user-1"
    assert verify(new, restored).kid == ring.current.kid
    assert verify(issue(restored), ring).kid == ring.current.kid  # signs with the same key


def test_a_serialised_ring_with_a_wrong_kid_is_refused(ring: KeyRing) -> None:
    data = ring.to_dict()
    data["keys"][0]["kid"] = "not-the-thumbprint"
    with pytest.raises(ValueError, match="thumbprint"):
        KeyRing.from_dict(data)


# --- refresh tokens -----------------------------------------------------------------------------


def test_refresh_tokens_are_prefixed_random_and_stored_hashed() -> None:
    token, family = RefreshFamily.start("user-1", "org-1", NOW)
    other, _ = RefreshFamily.start("user-1", "org-1", NOW)
    assert token.startswith("obr_")
    assert len(token) >= len("obr_") + 43  # 256 bits in base64url
    assert token != other
    assert family.current_hash == hash_refresh_token(token)
    assert token not in repr(family)


def test_rotation_returns_a_new_token_and_state() -> None:
    first, family = RefreshFamily.start("user-1", "org-1", NOW)
    later = NOW + timedelta(hours=1)
    second, rotated = family.rotate(first, later)
    assert second != first
    assert rotated.current_hash == hash_refresh_token(second)
    assert rotated.previous_hashes == (hash_refresh_token(first),)
    assert rotated.last_used_at == later
    assert (rotated.family_id, rotated.created_at) == (family.family_id, family.created_at)
    assert family.current_hash == hash_refresh_token(first)  # the old state is unchanged
    third, _ = rotated.rotate(second, later)
    assert third not in {first, second}


def test_reuse_revokes_the_whole_family() -> None:
    first, family = RefreshFamily.start("user-1", "org-1", NOW)
    second, family = family.rotate(first, NOW)
    third, family = family.rotate(second, NOW)
    with pytest.raises(RefreshReuseError, match="already rotated") as caught:
        family.rotate(first, NOW + timedelta(minutes=1))
    revoked = caught.value.family
    assert revoked.revoked
    assert revoked.revoked_at == NOW + timedelta(minutes=1)
    assert not revoked.is_active(NOW)
    with pytest.raises(TokenError, match="revoked"):
        revoked.rotate(third, NOW)


def test_revoking_keeps_the_first_reason() -> None:
    _, family = RefreshFamily.start("user-1", "org-1", NOW)
    revoked = family.revoke("signed out", NOW).revoke("password changed", NOW)
    assert revoked.revoked_reason == "signed out"
    assert not family.revoked


def test_an_unknown_refresh_token_is_refused() -> None:
    _, family = RefreshFamily.start("user-1", "org-1", NOW)
    stranger, _ = RefreshFamily.start("user-2", "org-1", NOW)
    with pytest.raises(TokenError, match="unknown") as caught:
        family.rotate(stranger, NOW)
    assert type(caught.value) is TokenError
    with pytest.raises(TokenError, match="no refresh token"):
        family.rotate("", NOW)


def test_an_idle_family_is_refused() -> None:
    token, family = RefreshFamily.start("user-1", "org-1", NOW, idle_timeout=timedelta(hours=8))
    family.rotate(token, NOW + timedelta(hours=7, minutes=59))
    with pytest.raises(TokenError, match="idle"):
        family.rotate(token, NOW + timedelta(hours=8))


def test_a_family_past_its_absolute_lifetime_is_refused() -> None:
    token, family = RefreshFamily.start(
        "user-1", "org-1", NOW, lifetime=timedelta(days=2), idle_timeout=timedelta(days=1)
    )
    for hours in (20, 40):  # each use within the idle timeout
        token, family = family.rotate(token, NOW + timedelta(hours=hours))
    assert family.expiry_reason(NOW + timedelta(hours=47)) is None
    with pytest.raises(TokenError, match="expired"):
        family.rotate(token, NOW + timedelta(hours=48))


def test_previous_hashes_stay_bounded() -> None:
    first, family = RefreshFamily.start("user-1", "org-1", NOW)
    tokens = [first]
    for _ in range(40):
        token, family = family.rotate(tokens[-1], NOW)
        tokens.append(token)
    assert len(family.previous_hashes) == 32
    assert family.previous_hashes == tuple(hash_refresh_token(t) for t in tokens[-33:-1])
    # rotated out of memory: merely unknown, not a reuse that revokes
    with pytest.raises(TokenError, match="unknown") as caught:
        family.rotate(first, NOW)
    assert type(caught.value) is TokenError
    with pytest.raises(RefreshReuseError):
        family.rotate(tokens[-33], NOW)  # the oldest one still remembered
