"""Access and refresh tokens.

Access tokens are short-lived JWTs (RFC 9068 profile, ``typ: at+jwt``) signed ES256 by the
current key of a :class:`KeyRing`; any key still in the ring verifies, so tokens issued just
before a rotation stay valid until they expire. Verification trusts nothing in the token header
but the ``kid``, which only selects one of our own public keys: the algorithm is fixed to ES256,
and ``jku``/``jwk``/``x5u`` headers are ignored.

Refresh tokens are opaque random strings kept only as SHA-256 hashes. Each device session is a
:class:`RefreshFamily`, an immutable state that rotates its token at every use and is revoked as
a whole as soon as an already rotated token comes back (RFC 9700: someone holds a copy).

Nothing here does I/O, and every clock reading can be injected. Where the ring or the families
are stored, and how, is the caller's concern.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

ALGORITHM = "ES256"
ACCESS_TYP = "at+jwt"  # RFC 9068 §2.1
MIN_ACCESS_LIFETIME = timedelta(minutes=5)
MAX_ACCESS_LIFETIME = timedelta(minutes=15)
DEFAULT_ACCESS_LIFETIME = timedelta(minutes=10)
# replicas' clocks drift a little; a few seconds of it must not refuse a fresh token
DEFAULT_LEEWAY_S = 30.0
# a real access token is well under 2 KiB; refuse large junk before parsing it
MAX_TOKEN_CHARS = 8192
DEFAULT_RETAIN_PREVIOUS_KEYS = 2
KEY_RING_FORMAT = 1

REFRESH_PREFIX = "obr_"
REFRESH_TOKEN_BYTES = 32  # 256 bits
DEFAULT_REFRESH_LIFETIME = timedelta(days=30)
DEFAULT_REFRESH_IDLE_TIMEOUT = timedelta(days=7)
PREVIOUS_HASHES_KEPT = 32

_REQUIRED_CLAIMS = ["iss", "aud", "sub", "org", "roles", "scope", "iat", "nbf", "exp", "jti"]
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class TokenError(Exception):
    """A token was refused; the message names why (never the token itself)."""


class RefreshReuseError(TokenError):
    """A refresh token that was already rotated came back: the family is revoked.

    ``family`` is the revoked state, which the caller must store in place of the old one.
    """

    def __init__(self, message: str, family: RefreshFamily) -> None:
        super().__init__(message)
        self.family = family


def _utc(now: datetime | None, name: str = "now") -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {now.isoformat()}")
    return now.astimezone(UTC)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- signing keys -------------------------------------------------------------------------------


def _public_jwk_members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    size = (public_key.curve.key_size + 7) // 8
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(size, "big")),
        "y": _b64url(numbers.y.to_bytes(size, "big")),
    }


def jwk_thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint of a P-256 public key, base64url without padding."""
    # the required members only, sorted, no whitespace (RFC 7638)
    members = json.dumps(_public_jwk_members(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(members.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """One P-256 key pair of the ring; its kid is the key's RFC 7638 thumbprint."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    created_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise ValueError(
                f"signing key {self.kid!r} is on {self.private_key.curve.name}, not P-256"
            )
        _utc(self.created_at, "created_at")
        expected = jwk_thumbprint(self.private_key.public_key())
        if self.kid != expected:
            raise ValueError(f"kid {self.kid!r} is not the thumbprint {expected!r} of its key")

    @classmethod
    def generate(cls, now: datetime | None = None) -> SigningKey:
        private_key = ec.generate_private_key(ec.SECP256R1())
        return cls(jwk_thumbprint(private_key.public_key()), private_key, _utc(now))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK (RFC 7517/7518) of this key; no private member."""
        return {
            **_public_jwk_members(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


class KeyRing:
    """The current signing key and the previous keys kept to verify tokens they signed.

    ``rotate()`` puts a new key in front; at most ``retain_previous`` older keys remain, the
    oldest dropped first, and ``retire(kid)`` drops one at once. An access token lives 15
    minutes at most, so a previous key is needed only that long after a rotation; keeping more
    of them only widens what a leaked old key could sign.

    Rotation swaps one immutable tuple, so a concurrent reader sees the ring before or after,
    never between.
    """

    def __init__(
        self,
        current: SigningKey,
        previous: Sequence[SigningKey] = (),
        *,
        retain_previous: int = DEFAULT_RETAIN_PREVIOUS_KEYS,
    ) -> None:
        if retain_previous < 0:
            raise ValueError(f"retain_previous must be >= 0, got {retain_previous}")
        keys = (current, *previous[:retain_previous])
        kids = [key.kid for key in keys]
        if len(set(kids)) != len(kids):
            raise ValueError(f"key ring holds a kid twice: {kids}")
        self._retain_previous = retain_previous
        self._keys: tuple[SigningKey, ...] = keys

    @classmethod
    def generate(
        cls, now: datetime | None = None, *, retain_previous: int = DEFAULT_RETAIN_PREVIOUS_KEYS
    ) -> KeyRing:
        return cls(SigningKey.generate(now), retain_previous=retain_previous)

    @property
    def current(self) -> SigningKey:
        return self._keys[0]

    @property
    def kids(self) -> tuple[str, ...]:
        """Kids of every key that verifies, the current one first."""
        return tuple(key.kid for key in self._keys)

    @property
    def retain_previous(self) -> int:
        return self._retain_previous

    def verification_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key named ``kid``, or None if it is unknown or retired."""
        for key in self._keys:
            if key.kid == kid:
                return key.public_key
        return None

    def rotate(self, now: datetime | None = None) -> str:
        """Sign with a new key from now on; returns its kid."""
        new = SigningKey.generate(now)
        self._keys = (new, *self._keys[: self._retain_previous])
        return new.kid

    def retire(self, kid: str) -> None:
        """Stop verifying with the previous key ``kid``."""
        if kid == self.current.kid:
            raise ValueError(f"kid {kid!r} is the current signing key; rotate before retiring it")
        if kid not in self.kids:
            raise ValueError(f"kid {kid!r} is not in the key ring")
        self._keys = tuple(key for key in self._keys if key.kid != kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set (RFC 7517 §5) of every key that verifies."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, private keys as unencrypted PKCS#8 PEM.

        It holds secrets: encrypting it at rest is up to whoever stores it.
        """
        return {
            "format": KEY_RING_FORMAT,
            "retain_previous": self._retain_previous,
            "keys": [
                {
                    "kid": key.kid,
                    "created_at": key.created_at.isoformat(),
                    "private_key_pem": key.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode("ascii"),
                }
                for key in self._keys
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRing:
        """Read back what :meth:`to_dict` wrote; the first key is the current one."""
        if data.get("format") != KEY_RING_FORMAT:
            raise ValueError(f"key ring format {data.get('format')!r} is not {KEY_RING_FORMAT}")
        retain = data.get("retain_previous")
        if not isinstance(retain, int) or isinstance(retain, bool):
            raise ValueError(f"key ring retain_previous {retain!r} is not an integer")
        entries = data.get("keys")
        if not isinstance(entries, list) or not entries:
            raise ValueError("key ring has no keys")
        keys = [_signing_key_from_dict(entry) for entry in entries]
        if len(keys) > retain + 1:
            raise ValueError(f"key ring holds {len(keys)} keys but retains {retain} previous")
        return cls(keys[0], keys[1:], retain_previous=retain)


def _signing_key_from_dict(entry: object) -> SigningKey:
    if not isinstance(entry, Mapping):
        raise ValueError(f"key ring entry is not an object: {type(entry).__name__}")
    kid, created, pem = entry.get("kid"), entry.get("created_at"), entry.get("private_key_pem")
    if not isinstance(kid, str) or not isinstance(created, str) or not isinstance(pem, str):
        raise ValueError(f"key ring entry {kid!r} lacks kid, created_at or private_key_pem")
    try:
        private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"key ring entry {kid!r} has an unreadable private key") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"key ring entry {kid!r} is not an EC key")
    try:
        created_at = datetime.fromisoformat(created)
    except ValueError as exc:
        raise ValueError(f"key ring entry {kid!r} has created_at {created!r}") from exc
    return SigningKey(kid, private_key, _utc(created_at, "created_at"))


# --- access tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims of an access token."""

    issuer: str
    audience: str
    subject: str  # user id
    org: str  # organisation id
    roles: tuple[str, ...]
    scope: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    token_id: str  # jti
    kid: str
    session_id: str | None = None  # sid: the refresh family the token came from
    amr: tuple[str, ...] = ()
    auth_time: datetime | None = None  # when the user last proved the password (OIDC auth_time)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split(" "))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _names(value: Iterable[str], what: str) -> list[str]:
    # a bare string is an iterable of letters: "admin" would become five roles
    if isinstance(value, str):
        raise ValueError(f"{what} must be a list of names, not the string {value!r}")
    names = list(value)
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        raise ValueError(f"{what} holds values that are not non-empty strings: {bad!r}")
    return names


def issue_access_token(
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    subject: str,
    org: str,
    roles: Iterable[str],
    scope: str,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_ACCESS_LIFETIME,
    session_id: str | None = None,
    amr: Iterable[str] | None = None,
    auth_time: datetime | None = None,
) -> str:
    """Sign an access token with the ring's current key."""
    if not MIN_ACCESS_LIFETIME <= lifetime <= MAX_ACCESS_LIFETIME:
        raise ValueError(f"access token lifetime {lifetime} is outside 5..15 minutes")
    for name, value in (("issuer", issuer), ("audience", audience), ("subject", subject)):
        if not value:
            raise ValueError(f"access token {name} is empty")
    if not org:
        raise ValueError("access token org is empty")
    if not _SCOPE.fullmatch(scope):
        raise ValueError(f"access token scope {scope!r} is not space-separated scope names")
    issued = int(_utc(now).timestamp())
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "org": org,
        "roles": _names(roles, "roles"),
        "scope": scope,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }
    if session_id is not None:
        payload["sid"] = session_id
    if amr is not None:
        payload["amr"] = _names(amr, "amr")
    if auth_time is not None:
        payload["auth_time"] = int(_utc(auth_time, "auth_time").timestamp())
    key = ring.current
    return jwt.encode(
        payload,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"typ": ACCESS_TYP, "kid": key.kid},
    )


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"malformed token: {exc}") from None


def _instant(payload: Mapping[str, Any], claim: str) -> datetime:
    value = payload[claim]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TokenError(f"claim {claim!r} is not a number of seconds: {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise TokenError(f"claim {claim!r} is out of range: {value!r}") from None


def _text(payload: Mapping[str, Any], claim: str) -> str:
    value = payload[claim]
    if not isinstance(value, str) or not value:
        raise TokenError(f"claim {claim!r} is not a non-empty string")
    return value


def _text_list(payload: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    value = payload[claim]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenError(f"claim {claim!r} is not a list of strings")
    return tuple(value)


def _presented(token: str | None) -> str:
    if not token:
        raise TokenError("no token presented")
    if not isinstance(token, str):
        raise TokenError(f"token is a {type(token).__name__}, not a string")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"token is longer than {MAX_TOKEN_CHARS} characters")
    return token


def _verification_key(token: str, ring: KeyRing) -> tuple[str, ec.EllipticCurvePublicKey]:
    """The kid and key that must have signed ``token``, judged by its header alone."""
    header = _header(token)
    alg = header.get("alg")
    if alg != ALGORITHM:
        # "none" and HS256 (with our public key as the HMAC secret) are the classic forgeries
        raise TokenError(f"token algorithm {alg!r} is not {ALGORITHM}")
    typ = header.get("typ")
    if typ != ACCESS_TYP:
        raise TokenError(f"token type {typ!r} is not {ACCESS_TYP!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("token header names no kid")
    public_key = ring.verification_key(kid)
    if public_key is None:
        raise TokenError(f"token kid {kid!r} is unknown or retired")
    return kid, public_key


def _signed_payload(
    token: str, public_key: ec.EllipticCurvePublicKey, issuer: str, audience: str
) -> dict[str, Any]:
    # PyJWT checks the signature, then presence, issuer and audience; times are checked
    # afterwards against the injected clock, which PyJWT cannot take
    options: Options = {
        "require": _REQUIRED_CLAIMS,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": True,
        "verify_iss": True,
    }
    try:
        return jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options=options,
        )
    except jwt.InvalidSignatureError:
        raise TokenError("token signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the required claim {exc.claim!r}") from None
    except jwt.InvalidAudienceError:
        raise TokenError(f"token audience is not {audience!r}") from None
    except jwt.InvalidIssuerError:
        raise TokenError(f"token issuer is not {issuer!r}") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"malformed token: {exc}") from None


def verify_access_token(
    token: str | None,
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    now: datetime | None = None,
    leeway_s: float = DEFAULT_LEEWAY_S,
) -> AccessClaims:
    """Check an access token against the ring and return its claims; raise TokenError if not.

    ``leeway_s`` tolerates that much clock difference on ``exp``, ``nbf`` and ``iat``.
    """
    if leeway_s < 0:
        raise ValueError(f"leeway_s must be >= 0, got {leeway_s}")
    moment = _utc(now)
    presented = _presented(token)
    kid, public_key = _verification_key(presented, ring)
    payload = _signed_payload(presented, public_key, issuer, audience)

    issued_at = _instant(payload, "iat")
    not_before = _instant(payload, "nbf")
    expires_at = _instant(payload, "exp")
    leeway = timedelta(seconds=leeway_s)
    if moment >= expires_at + leeway:
        raise TokenError(f"token expired at {expires_at.isoformat()}")
    if moment < not_before - leeway:
        raise TokenError(f"token is not valid before {not_before.isoformat()}")
    if moment < issued_at - leeway:
        raise TokenError(f"token is issued in the future, at {issued_at.isoformat()}")

    sid = payload.get("sid")
    if sid is not None and (not isinstance(sid, str) or not sid):
        raise TokenError("claim 'sid' is not a non-empty string")
    scope = _text(payload, "scope")
    if not _SCOPE.fullmatch(scope):
        raise TokenError(f"claim 'scope' is not space-separated scope names: {scope!r}")
    return AccessClaims(
        issuer=issuer,
        audience=audience,
        subject=_text(payload, "sub"),
        org=_text(payload, "org"),
        roles=_text_list(payload, "roles"),
        scope=scope,
        issued_at=issued_at,
        not_before=not_before,
        expires_at=expires_at,
        token_id=_text(payload, "jti"),
        kid=kid,
        session_id=sid,
        amr=_text_list(payload, "amr") if "amr" in payload else (),
        auth_time=_instant(payload, "auth_time") if "auth_time" in payload else None,
    )


# --- refresh tokens -----------------------------------------------------------------------------


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """SHA-256 hex of a refresh token, the only form in which it is stored.

    The token carries 256 random bits, so a fast unsalted hash cannot be brute-forced, and the
    same token always gives the same hash, which lets a store find its family by it.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RefreshFamily:
    """One device session: the chain of refresh tokens that followed one sign-in.

    Only the current token's hash rotates; the hashes of the ``keep_previous`` tokens before it
    are kept to recognise reuse. A token older than that is merely unknown: it is refused all
    the same, but its coming back no longer revokes the family. The bound keeps the state small
    however long the session lives; 32 rotations of a 5..15 minute access token cover hours of
    use, far beyond the window in which a stolen token is typically replayed.

    Rotation is strict: two requests racing with the same token look exactly like a replay, and
    the second revokes the family. Clients must serialise their refreshes.
    """

    family_id: str
    user_id: str
    org_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    idle_timeout: timedelta
    current_hash: str
    previous_hashes: tuple[str, ...] = ()  # oldest first
    keep_previous: int = PREVIOUS_HASHES_KEPT
    revoked_reason: str | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "last_used_at", "expires_at"):
            _utc(getattr(self, name), name)
        if self.revoked_at is not None:
            _utc(self.revoked_at, "revoked_at")
        if (self.revoked_reason is None) != (self.revoked_at is None):
            raise ValueError("revoked_reason and revoked_at must be set together")
        if self.idle_timeout <= timedelta(0):
            raise ValueError(f"idle_timeout must be positive, got {self.idle_timeout}")
        if self.expires_at <= self.created_at:
            raise ValueError(f"expires_at {self.expires_at} is not after created_at")
        if self.keep_previous < 0:
            raise ValueError(f"keep_previous must be >= 0, got {self.keep_previous}")
        if len(self.previous_hashes) > self.keep_previous:
            raise ValueError(
                f"{len(self.previous_hashes)} previous hashes exceed keep_previous "
                f"{self.keep_previous}"
            )
        for digest in (self.current_hash, *self.previous_hashes):
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(f"{digest!r} is not a SHA-256 hex digest")

    @classmethod
    def start(
        cls,
        user_id: str,
        org_id: str,
        now: datetime | None = None,
        *,
        lifetime: timedelta = DEFAULT_REFRESH_LIFETIME,
        idle_timeout: timedelta = DEFAULT_REFRESH_IDLE_TIMEOUT,
        keep_previous: int = PREVIOUS_HASHES_KEPT,
        family_id: str | None = None,
    ) -> tuple[str, RefreshFamily]:
        """Open a family at sign-in; returns its first token and its state."""
        if not user_id or not org_id:
            raise ValueError("a refresh family needs a user_id and an org_id")
        moment = _utc(now)
        token = new_refresh_token()
        family = cls(
            family_id=family_id or str(uuid.uuid4()),
            user_id=user_id,
            org_id=org_id,
            created_at=moment,
            last_used_at=moment,
            expires_at=moment + lifetime,
            idle_timeout=idle_timeout,
            current_hash=hash_refresh_token(token),
            keep_previous=keep_previous,
        )
        return token, family

    @property
    def revoked(self) -> bool:
        return self.revoked_reason is not None

    def expiry_reason(self, now: datetime | None = None) -> str | None:
        """Why the family can no longer refresh at ``now`` by the clock alone, or None."""
        moment = _utc(now)
        if moment >= self.expires_at:
            return f"refresh family expired at {self.expires_at.isoformat()}"
        if moment - self.last_used_at >= self.idle_timeout:
            return (
                f"refresh family idle since {self.last_used_at.isoformat()}, "
                f"longer than {self.idle_timeout}"
            )
        return None

    def is_active(self, now: datetime | None = None) -> bool:
        return not self.revoked and self.expiry_reason(now) is None

    def revoke(self, reason: str, now: datetime | None = None) -> RefreshFamily:
        """The family revoked; revoking again keeps the first reason."""
        if self.revoked:
            return self
        if not reason:
            raise ValueError("revoking a refresh family needs a reason")
        return replace(self, revoked_reason=reason, revoked_at=_utc(now))

    def rotate(self, presented: str, now: datetime | None = None) -> tuple[str, RefreshFamily]:
        """Trade the current token for a new one; returns the new token and state.

        Raises RefreshReuseError (carrying the revoked state) for a token already rotated, and
        TokenError for a revoked or expired family or a token the family does not know.
        """
        moment = _utc(now)
        if not presented:
            raise TokenError("no refresh token presented")
        if self.revoked:
            raise TokenError(f"refresh family is revoked: {self.revoked_reason}")
        digest = hash_refresh_token(presented)
        # reuse is checked before expiry: a replayed token is news even on a dead family
        if digest in self.previous_hashes:
            revoked = self.revoke("an already rotated refresh token was presented again", moment)
            raise RefreshReuseError(
                f"refresh token of family {self.family_id} was already rotated; family revoked",
                revoked,
            )
        if not hmac.compare_digest(digest, self.current_hash):
            raise TokenError(f"refresh token is unknown to family {self.family_id}")
        reason = self.expiry_reason(moment)
        if reason is not None:
            raise TokenError(reason)
        token = new_refresh_token()
        kept = (*self.previous_hashes, self.current_hash)
        kept = kept[-self.keep_previous :] if self.keep_previous else ()
        return token, replace(
            self,
            current_hash=hash_refresh_token(token),
            previous_hashes=kept,
            last_used_at=moment,
        )
