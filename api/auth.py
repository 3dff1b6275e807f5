"""Who is asking, and may they: the principal of a request and role-based access control.

Every `/v1` route depends on `require(permission)` (the hot path calls the same check), which
authenticates the request and checks the principal's role and scope:

- an access token (`Authorization: Bearer <jwt>`): ES256, `typ at+jwt`, issuer, audience and
  times checked against the key ring in `identity_keys.signing_keys` (`identity.tokens`). A
  token from a session (`sid`) is also checked against the identity read models: the session
  not ended, the user neither disabled nor erased, and still a member of the token's
  organisation; the role is the member's current one, so a demotion counts within
  `CACHE_TTL_S`, not at the token's expiry;
- an API key (`Authorization: Bearer obk_...` or `X-API-Key: obk_...`): found by its prefix,
  compared by hash, neither revoked nor expired; its role and scope are the key's.

What was verified is cached per process for `CACHE_TTL_S` (bounded: `CACHE_ENTRIES` each), so
the hot path pays a dictionary lookup, and a revocation, a removal or a demotion takes effect
within that time. A read model that does not answer is a 503, never a pass (fail closed).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import psycopg
import structlog
from fastapi import Request
from prometheus_client import Counter
from psycopg import sql
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.problems import ProblemError, forbidden, not_found, unauthenticated
from identity import apikeys, signing
from identity.organization import Role
from identity.tokens import AccessClaims, KeyRing, TokenError, verify_access_token

log = structlog.get_logger(__name__)

CACHE_TTL_S = 5.0
VERDICT_TTL_S = 2.0
CACHE_ENTRIES = 4096
# while PostgreSQL is down the last verdict stands this long: nothing can be revoked meanwhile
# (the projector cannot write either), and the latest values keep being served from Redis
STALE_S = 900.0
DOWN_RETRY_S = 5.0  # after a failed read, PostgreSQL is asked again this much later
RING_TTL_S = 30.0
RING_RELOAD_MIN_S = 2.0  # an unknown kid reloads the ring at most this often

AUTHENTICATIONS = Counter(
    "optibid_api_authentications_total",
    "Requests authenticated, by credential kind and result",
    ["kind", "result"],  # kind: token, api_key, none; result: ok, refused
)


_COUNTED = {
    (kind, result): AUTHENTICATIONS.labels(kind, result)
    for kind in ("token", "api_key", "none")
    for result in ("ok", "refused")
}


class Permission(StrEnum):
    MARKET_READ = "market:read"  # every market-data route
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"  # roles, removals, invitations
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"
    SELF = "self"  # /v1/me: the signed-in user's own account and sessions
    USAGE_READ = "usage:read"  # the organisation's usage, quota and plan
    BILLING_READ = "billing:read"  # the plan, the subscription, invoices
    BILLING_MANAGE = "billing:manage"  # checkout, the customer portal

    @property
    def writes(self) -> bool:
        return self in (
            Permission.MEMBERS_MANAGE,
            Permission.KEYS_MANAGE,
            Permission.BILLING_MANAGE,
        )


_WRITES = frozenset({Permission.MEMBERS_MANAGE, Permission.KEYS_MANAGE, Permission.BILLING_MANAGE})
_EVERYONE = {Permission.SELF, Permission.USAGE_READ}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset({Permission.MARKET_READ, *_EVERYONE}),
    Role.VIEWER: frozenset({Permission.MARKET_READ, *_EVERYONE}),
    Role.BILLING: frozenset({Permission.BILLING_READ, Permission.BILLING_MANAGE, *_EVERYONE}),
}


@dataclass(frozen=True)
class Principal:
    """The verified caller of one request."""

    kind: str  # "user" or "api_key"
    subject: str  # the user id, or the key id
    org_id: str
    role: Role
    scopes: frozenset[str]
    session_id: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: datetime | None = None
    user_id: str | None = None  # the user, or the key's creator

    def can(self, permission: Permission) -> bool:
        if permission not in ROLE_PERMISSIONS[self.role]:
            return False
        if permission is Permission.SELF:
            return self.kind == "user"
        return not permission.writes or "commands" in self.scopes


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_Row = TypeVar("_Row")


CACHE_REQUESTS = Counter(
    "optibid_api_cache_requests_total",
    "Lookups in the API's per-process caches, by cache and result (hit, miss)",
    ["cache", "result"],
)


@dataclass
class TtlCache(Generic[_K, _V]):
    """A bounded map whose entries expire: least recently stored out first. A named cache
    counts its lookups in optibid_api_cache_requests_total (both results start at 0)."""

    ttl_s: float = CACHE_TTL_S
    size: int = CACHE_ENTRIES
    name: str = ""
    _entries: OrderedDict[_K, tuple[float, _V]] = field(default_factory=OrderedDict)

    _hits: Counter | None = field(default=None, init=False, repr=False)
    _misses: Counter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.name:
            self._hits = CACHE_REQUESTS.labels(self.name, "hit")
            self._misses = CACHE_REQUESTS.labels(self.name, "miss")

    def get(self, key: _K) -> _V | None:
        """The value stored within the TTL (None: none, or older)."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            if self._misses is not None:
                self._misses.inc()
            return None
        if self._hits is not None:
            self._hits.inc()
        return entry[1]

    def stale(self, key: _K, max_age_s: float) -> _V | None:
        """The value stored within `max_age_s`, however stale, for when it cannot be read
        again (entries past the TTL stay until pushed out by newer ones)."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > max_age_s:
            return None
        return entry[1]

    def put(self, key: _K, value: _V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, key: _K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    org_id: str
    secret_hash: str
    role: str
    scope: str
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str


@dataclass(frozen=True)
class SessionRow:
    user_id: str
    org_id: str
    revoked_at: datetime | None
    expires_at: datetime
    disabled: bool
    erased: bool
    role: str | None  # None: no longer a member


Pool = Any  # psycopg_pool.ConnectionPool; Any keeps this module free of the pool's generics


class Authenticator:
    """Finds and checks the principal of requests; one per API process."""

    def __init__(
        self,
        pool: Pool,
        schema: str,
        *,
        issuer: str,
        audience: str,
        ring: KeyRing | None = None,
        on_key_use: Callable[[Principal, Request], None] | None = None,
        ring_ttl_s: float = RING_TTL_S,
        service_tokens: bool = False,
    ) -> None:
        self.pool, self.schema = pool, schema
        self.issuer, self.audience = issuer, audience
        self._static_ring = ring
        self._ring: KeyRing | None = ring
        self._ring_loaded = 0.0
        self._ring_ttl_s = ring_ttl_s
        # tokens without a session, taken at their claims: off unless a deployment mints them
        # for programs of its own (and its tests do, with a fixed ring and no read models)
        self.service_tokens = service_tokens
        self._down_until = 0.0
        self._generation = 0  # counts the rings read that differ from the one before
        # verified tokens, with the ring generation that verified them: a token is checked
        # again once another ring was read (its key may have been retired since)
        self._tokens: TtlCache[str, tuple[AccessClaims, int]] = TtlCache(
            ttl_s=60.0, name="access_token"
        )
        self._sessions: TtlCache[str, SessionRow | None] = TtlCache(name="session")
        self._keys: TtlCache[str, KeyRow | None] = TtlCache(name="api_key")
        # credential -> (principal, ring generation, when it stops being valid): a hit skips
        # every check for VERDICT_TTL_S, so a change counts within that plus CACHE_TTL_S
        self._verdicts: TtlCache[str, tuple[Principal, int, float]] = TtlCache(
            ttl_s=VERDICT_TTL_S, name="principal"
        )
        self.on_key_use = on_key_use

    # --- the key ring ---

    def ring(self, *, reload: bool = False) -> KeyRing | None:
        """The key ring of access tokens (from PostgreSQL, cached RING_TTL_S; kept while
        PostgreSQL does not answer)."""
        if self._static_ring is not None:
            return self._static_ring
        age = time.monotonic() - self._ring_loaded
        if self._ring is None or age > self._ring_ttl_s or (reload and age > RING_RELOAD_MIN_S):
            try:
                with self.pool.connection() as conn:
                    ring = signing.load(conn)
            except psycopg.OperationalError:
                if self._ring is None or age > STALE_S:
                    raise
                return self._ring
            before = self._ring.kids if self._ring is not None else ()
            if ring is None or ring.kids != before:
                self._generation += 1
            self._ring, self._ring_loaded = ring, time.monotonic()
        return self._ring

    def _ring_stale(self) -> bool:
        return self._static_ring is None and (
            time.monotonic() - self._ring_loaded > self._ring_ttl_s
        )

    def forget_session(self, session_id: str) -> None:
        """Check the session again at its next use (it just ended here)."""
        self._sessions.drop(session_id)
        self._verdicts.clear()  # which tokens were of the session is not kept

    def forget_keys(self) -> None:
        """Check every API key again at its next use (one was just revoked here)."""
        self._keys.clear()
        self._verdicts.clear()

    def forget(self) -> None:
        """Drop every cached verdict (a test, or an operator after an incident)."""
        self._tokens.clear()
        self._sessions.clear()
        self._keys.clear()
        self._verdicts.clear()

    # --- requests ---

    async def authenticate(self, request: Request) -> Principal:
        """The principal of `request`, or a 401 problem naming what is wrong."""
        scope = request.scope
        cached = scope.get("optibid.principal")
        if isinstance(cached, Principal):
            return cached
        credential, kind = _credential(scope)
        # the hot path: the same credential verified a moment ago, nothing changed since
        verdict = self._verdicts.get(credential)
        if (
            verdict is not None
            and verdict[1] == self._generation
            and time.time() < verdict[2]
            and not self._ring_stale()
        ):
            principal = verdict[0]
        else:
            try:
                if kind == "api_key":
                    principal, ends = await self._api_key(credential)
                else:
                    principal, ends = await self._token(credential)
            except Exception:
                _COUNTED[kind, "refused"].inc()
                raise
            self._verdicts.put(credential, (principal, self._generation, ends))
        _COUNTED[kind, "ok"].inc()
        scope["optibid.principal"] = principal
        if kind == "api_key" and self.on_key_use is not None:
            self.on_key_use(principal, request)
        return principal

    async def still_allowed(self, request: Request, permission: Permission) -> bool:
        """Whether the request's credential still passes (a long-lived stream asks again)."""
        request.scope.pop("optibid.principal", None)
        try:
            authorize(await self.authenticate(request), permission)
        except ProblemError:
            return False
        return True

    async def _token(self, token: str) -> tuple[Principal, float]:
        now = datetime.now(UTC)
        if self._ring_stale():
            await run_in_threadpool(self.ring)
        cached = self._tokens.get(token)
        if cached is None or cached[1] != self._generation or now >= cached[0].expires_at:
            claims = await run_in_threadpool(self._verify, token, now)
            self._tokens.put(token, (claims, self._generation))
        else:
            claims = cached[0]
        ends = claims.expires_at.timestamp()
        if claims.session_id is None:
            if not self.service_tokens:
                raise unauthenticated("the token belongs to no session", code="session_unknown")
            role = _role(claims.roles[0] if claims.roles else "")
            return Principal(
                "user", claims.subject, claims.org, role, claims.scopes, None, claims.amr,
                claims.auth_time, claims.subject,
            ), ends  # fmt: skip
        session = self._sessions.get(claims.session_id)
        if session is None:
            session = await self._read(self._sessions, claims.session_id, self._session)
        role = _session_role(session, claims, now)
        assert session is not None  # _session_role refused a missing one
        return Principal(
            "user", claims.subject, claims.org, role, claims.scopes, claims.session_id,
            claims.amr, claims.auth_time, claims.subject,
        ), min(ends, session.expires_at.timestamp())  # fmt: skip

    async def _read(
        self, cache: TtlCache[str, _Row | None], key: str, read: Callable[[str], _Row | None]
    ) -> _Row | None:
        """`read(key)` from the read models, remembered; while PostgreSQL does not answer, the
        last answer of the past STALE_S stands (else the outage is a 503)."""
        stale = cache.stale(key, STALE_S)
        if stale is not None and time.monotonic() < self._down_until:
            return stale  # PostgreSQL failed a moment ago: not every request waits for it
        try:
            value = await run_in_threadpool(read, key)
        except PoolTimeout:
            raise  # the pool busy is no outage: a 503, never an old verdict
        except psycopg.OperationalError:
            self._down_until = time.monotonic() + DOWN_RETRY_S
            if stale is None:
                raise
            log.warning("api.auth_stale", reason="PostgreSQL unavailable", key=key[:12])
            return stale
        cache.put(key, value)
        return value

    def _verify(self, token: str, now: datetime) -> AccessClaims:
        ring = self.ring()
        if ring is None:
            raise unauthenticated("no access token can verify: no signing key exists yet")
        try:
            return verify_access_token(
                token, ring, issuer=self.issuer, audience=self.audience, now=now
            )
        except TokenError as exc:
            if "unknown or retired" in str(exc):
                fresh = self.ring(reload=True)  # a key made by a rotation since the last load
                if fresh is not None and fresh is not ring:
                    try:
                        return verify_access_token(
                            token, fresh, issuer=self.issuer, audience=self.audience, now=now
                        )
                    except TokenError as again:
                        raise unauthenticated(f"access token refused: {again}") from None
            raise unauthenticated(f"access token refused: {exc}") from None

    def _session(self, session_id: str) -> SessionRow | None:
        # a membership that began after the session (removed, then invited back) does not
        # revive it: the session counts as ended with the membership it was opened under
        query = sql.SQL(
            "SELECT s.user_id, s.org_id, s.revoked_at, s.expires_at, u.disabled, u.erased,"
            " CASE WHEN m.since <= s.created_at THEN m.role END"
            " FROM {s} s JOIN {u} u ON u.user_id = s.user_id"
            " LEFT JOIN {m} m ON m.org_id = s.org_id AND m.user_id = s.user_id"
            " WHERE s.session_id = %s"
        ).format(
            s=sql.Identifier(self.schema, "identity_sessions"),
            u=sql.Identifier(self.schema, "identity_users"),
            m=sql.Identifier(self.schema, "identity_memberships"),
        )
        with self.pool.connection() as conn:
            row = conn.execute(query, (session_id,)).fetchone()
        return SessionRow(*row) if row is not None else None

    async def _api_key(self, key: str) -> tuple[Principal, float]:
        prefix = apikeys.prefix_of(key)
        if prefix is None:
            raise unauthenticated("the API key is malformed (obk_<prefix>_<secret>)")
        row = self._keys.get(prefix)
        if row is None:
            row = await self._read(self._keys, prefix, self._key_row)
        if row is None or not apikeys.matches(key, row.secret_hash):
            raise unauthenticated("unknown API key")
        if row.revoked_at is not None:
            raise unauthenticated(f"API key {prefix} was revoked", code="key_revoked")
        if row.expires_at is not None and datetime.now(UTC) >= row.expires_at:
            raise unauthenticated(f"API key {prefix} expired", code="key_expired")
        scopes = frozenset(row.scope.split())
        ends = row.expires_at.timestamp() if row.expires_at is not None else float("inf")
        principal = Principal(
            "api_key", row.key_id, row.org_id, _role(row.role), scopes, user_id=row.created_by
        )
        return principal, ends

    def _key_row(self, prefix: str) -> KeyRow | None:
        # a key answers to its person: one whose account is disabled or erased, or who is no
        # longer a member, has keys that are refused even before their revocations are folded
        query = sql.SQL(
            "SELECT k.key_id, k.org_id, k.secret_hash, k.role, k.scope, k.expires_at,"
            " CASE WHEN u.disabled OR u.erased THEN COALESCE(k.revoked_at, now())"
            " WHEN m.user_id IS NULL THEN COALESCE(k.revoked_at, now())"
            " ELSE k.revoked_at END, k.created_by"
            " FROM {k} k LEFT JOIN {u} u ON u.user_id = k.created_by"
            " LEFT JOIN {m} m ON m.org_id = k.org_id AND m.user_id = k.created_by"
            " WHERE k.prefix = %s"
        ).format(
            k=sql.Identifier(self.schema, "identity_api_keys"),
            u=sql.Identifier(self.schema, "identity_users"),
            m=sql.Identifier(self.schema, "identity_memberships"),
        )
        with self.pool.connection() as conn:
            row = conn.execute(query, (prefix,)).fetchone()
        return KeyRow(*row) if row is not None else None


def _credential(scope: Any) -> tuple[str, str]:
    """The one credential of a request and its kind; 401 for none, two, or a bad scheme.
    Read from the raw headers (no Headers object per request on the hot path)."""
    authorization = api_key = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    if authorization is not None and api_key is not None:
        raise unauthenticated("send one credential: Authorization or X-API-Key, not both")
    if api_key is not None:
        return api_key.strip(), "api_key"
    if authorization is None:
        _COUNTED["none", "refused"].inc()
        raise unauthenticated(
            "this route needs credentials: an access token or an API key"
            " (Authorization: Bearer ..., or X-API-Key)"
        )
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <token or API key>'")
    value = value.strip()
    return value, "api_key" if apikeys.looks_like_api_key(value) else "token"


def _role(name: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        raise unauthenticated(f"the credential names no known role ({name!r})") from None


def _session_role(session: SessionRow | None, claims: AccessClaims, now: datetime) -> Role:
    if session is None or session.user_id != claims.subject or session.org_id != claims.org:
        raise unauthenticated("the token's session is unknown", code="session_unknown")
    if session.revoked_at is not None:
        raise unauthenticated("the token's session has ended; sign in again", code="session_ended")
    if now >= session.expires_at:
        raise unauthenticated(
            "the token's session has expired; sign in again", code="session_ended"
        )
    if session.disabled or session.erased:
        raise unauthenticated("the account is disabled", code="account_disabled")
    if session.role is None:
        raise unauthenticated("no longer a member of the organisation", code="not_a_member")
    return _role(session.role)


def authorize(principal: Principal, permission: Permission) -> None:
    """403 unless the principal's role (and, for changes, its scope) allows `permission`."""
    if principal.can(permission):
        return
    if permission is Permission.SELF:
        raise forbidden("this route is for signed-in users, not API keys", code="users_only")
    if permission in ROLE_PERMISSIONS[principal.role]:
        raise forbidden(
            f"this API key's scope ({' '.join(sorted(principal.scopes))}) does not allow"
            " changes; a key with the scope 'read commands' does",
            code="scope",
        )
    raise forbidden(f"the role {principal.role} does not allow {permission}", code="role")


def in_org(principal: Principal, org_id: str) -> None:
    """Another organisation's resource does not exist for this principal: 404, never 403."""
    if principal.org_id != org_id:
        raise not_found(f"no organisation {org_id}")


Dependency = Callable[[Request], Awaitable[Principal]]
_REQUIREMENTS: dict[Permission, Dependency] = {}


def require(permission: Permission) -> Dependency:
    """The dependency of a route that needs `permission` (one function per permission, so a
    test can find each route's requirement)."""
    existing = _REQUIREMENTS.get(permission)
    if existing is not None:
        return existing

    metered = permission is Permission.MARKET_READ

    async def required(request: Request) -> Principal:
        deps = request.app.state.deps
        authenticator: Authenticator = deps.auth
        principal = await authenticator.authenticate(request)
        authorize(principal, permission)
        if metered:  # the tier's rights, rate limits and quota (api.metering)
            await deps.metering.admit(request, principal)
        return principal

    required.permission = permission  # type: ignore[attr-defined]  # read by the route test
    _REQUIREMENTS[permission] = required
    return required


def required_permission(dependency: object) -> Permission | None:
    value = getattr(dependency, "permission", None)
    return value if isinstance(value, Permission) else None
