"""Single sign-on for the API: the OpenID Connect relying party, the one-use values a browser
flow needs (state, SAML request ids, assertion ids, tickets), and the step every sign-on ends
with: the same session and tokens as a password sign-in.

OIDC (authorization code flow with PKCE): `start` keeps `state`, `nonce` and the PKCE verifier
in Redis for 10 minutes and sends the browser to the provider; the callback takes them back
(once: a second use of a state is refused), trades the code for tokens with the client's
secret, and verifies the ID token: signature by the provider's JWKS (read from its discovery
document; an unknown `kid` reads the JWKS again, at most every `JWKS_REFRESH_S`), `iss`, `aud`,
`exp`/`iat` (with `LEEWAY_S`), `nonce`, and `azp` when there are several audiences. Only
asymmetric algorithms are accepted. Discovery documents and JWKS are cached for an hour.

Claims, by provider: the email is `email` (or, for Azure AD, `preferred_username`/`upn`); where
the provider says whether it verified it (`email_verified`: Okta, Google), it must be true; a
Google Workspace account's `hd` must be the email's domain. The role comes from the
connection's mapping over the claims (`groups`, `roles`, ...).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.problems import ProblemError
from identity.sso import domain_of

log = structlog.get_logger(__name__)

FLOW_TTL_S = 600  # a sign-on must come back within this
TICKET_TTL_S = 60  # the dashboard trades its ticket for tokens within this
DOCUMENT_TTL_S = 3600.0
JWKS_REFRESH_S = 10.0
LEEWAY_S = 30
HTTP_TIMEOUT_S = 10.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


def refused(detail: str, code: str, status: int = 400) -> ProblemError:
    titles = {400: "Sign-on refused", 401: "Sign-on refused", 403: "Forbidden"}
    return ProblemError(status, titles.get(status, "Sign-on refused"), detail, code=code)


@dataclass(frozen=True)
class Identity:
    """A person a provider vouched for, after every check."""

    connection_id: str
    email: str
    display_name: str
    claims: dict[str, Any]  # what the role mapping reads (OIDC claims, SAML attributes)
    amr: tuple[str, ...]
    subject: str


class OneUse:
    """Values a flow writes once and takes back once, in Redis (shared by every API process),
    under the read models' namespace."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client, self.namespace = client, namespace

    def _key(self, kind: str, name: str) -> str:
        return f"optibid:{self.namespace}:sso:{kind}:{name}"

    def put(self, kind: str, name: str, value: dict[str, Any], ttl_s: int) -> None:
        self.client.set(self._key(kind, name), json.dumps(value), ex=ttl_s)

    def take(self, kind: str, name: str) -> dict[str, Any] | None:
        """The value, gone from the store (None: never put, expired, or taken already)."""
        raw = self.client.getdel(self._key(kind, name))
        return json.loads(raw) if raw is not None else None

    def peek(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.client.get(self._key(kind, name))
        return json.loads(raw) if raw is not None else None

    def first(self, kind: str, name: str, ttl_s: int) -> bool:
        """Whether this is the first time `name` is seen (a replay is not)."""
        return bool(self.client.set(self._key(kind, name), "1", ex=max(ttl_s, 1), nx=True))


@dataclass
class _Cached:
    value: dict[str, Any]
    at: float
    forced: bool = False  # read again because of a key it lacked


@dataclass
class OidcProviders:
    """Discovery documents and JWKS of the providers, cached per process."""

    documents: dict[str, _Cached] = field(default_factory=dict)
    jwks: dict[str, _Cached] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, url: str) -> dict[str, Any]:
        try:
            answer = httpx.get(url, timeout=HTTP_TIMEOUT_S, follow_redirects=False)
            answer.raise_for_status()
            body: dict[str, Any] = answer.json()
            return body
        except (httpx.HTTPError, ValueError) as exc:
            raise ProblemError(
                502, "Identity provider unavailable", f"{url} did not answer: {exc}",
                code="provider_unavailable",
            ) from None  # fmt: skip

    def discovery(self, issuer: str) -> dict[str, Any]:
        with self.lock:
            cached = self.documents.get(issuer)
        if cached is not None and time.monotonic() - cached.at < DOCUMENT_TTL_S:
            return cached.value
        document = self._get(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise refused(
                f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}",
                "issuer_mismatch", 502,
            )  # fmt: skip
        with self.lock:
            self.documents[issuer] = _Cached(document, time.monotonic())
        return document

    def key_set(self, jwks_uri: str, *, refresh: bool = False) -> dict[str, Any]:
        with self.lock:
            cached = self.jwks.get(jwks_uri)
        age = time.monotonic() - cached.at if cached is not None else DOCUMENT_TTL_S
        # a key it lacks reads the set again, but not twice within JWKS_REFRESH_S: tokens
        # naming made-up kids cannot make the API hammer the provider
        recent = cached is not None and cached.forced and age < JWKS_REFRESH_S
        if cached is not None and age < DOCUMENT_TTL_S and (not refresh or recent):
            return cached.value
        keys = self._get(jwks_uri)
        with self.lock:
            self.jwks[jwks_uri] = _Cached(keys, time.monotonic(), forced=refresh)
        return keys


@dataclass(frozen=True)
class OidcConnection:
    connection_id: str
    issuer: str
    client_id: str
    client_secret: str


def authorization_url(
    providers: OidcProviders, flows: OneUse, connection: OidcConnection, redirect_uri: str
) -> str:
    """Where to send the browser, with a new state, nonce and PKCE challenge kept for the
    callback."""
    document = providers.discovery(connection.issuer)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    scopes = ["openid", "email", "profile"]
    if "groups" in document.get("scopes_supported", []):
        scopes.append("groups")  # Okta releases groups for this scope only
    flows.put(
        "oidc",
        state,
        {"connection_id": connection.connection_id, "nonce": nonce, "verifier": verifier,
         "redirect_uri": redirect_uri},
        FLOW_TTL_S,
    )  # fmt: skip
    url: str = prepare_grant_uri(
        document["authorization_endpoint"],
        client_id=connection.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return url


def take_flow(flows: OneUse, state: str | None) -> dict[str, Any]:
    flow = flows.take("oidc", state) if state else None
    if flow is None:
        raise refused(
            "the sign-on's state is unknown, expired or used already; start again", "state"
        )
    return flow


def complete(
    providers: OidcProviders, connection: OidcConnection, flow: dict[str, Any], code: str
) -> Identity:
    """The code traded for tokens and the ID token verified; the person it names."""
    document = providers.discovery(connection.issuer)
    try:
        answer = httpx.post(
            document["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": flow["redirect_uri"],
                "code_verifier": flow["verifier"],
            },
            auth=(connection.client_id, connection.client_secret),
            timeout=HTTP_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ProblemError(
            502, "Identity provider unavailable", f"the token endpoint failed: {exc}",
            code="provider_unavailable",
        ) from None  # fmt: skip
    if answer.status_code != 200:
        raise refused(f"the provider refused the code: {answer.text[:300]}", "code_refused", 401)
    id_token = answer.json().get("id_token")
    if not isinstance(id_token, str):
        raise refused("the provider sent no ID token", "no_id_token", 401)
    claims = verify_id_token(providers, connection, document, id_token, flow["nonce"])
    return identity_of(connection.connection_id, connection.issuer, claims)


def verify_id_token(
    providers: OidcProviders,
    connection: OidcConnection,
    document: dict[str, Any],
    id_token: str,
    nonce: str,
    leeway_s: int = LEEWAY_S,
) -> dict[str, Any]:
    jwks_uri = document["jwks_uri"]
    token: jwt.Token | None = None
    for refresh in (False, True):  # a key it does not know: the provider rotated; read again
        keys = KeySet.import_key_set(providers.key_set(jwks_uri, refresh=refresh))  # type: ignore[arg-type]
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            break
        except (JoseError, ValueError) as exc:
            if refresh:
                raise refused(f"the ID token does not verify: {exc}", "id_token", 401) from None
    assert token is not None
    claims = token.claims
    checks = jwt.JWTClaimsRegistry(
        leeway=leeway_s,
        iss={"essential": True, "value": connection.issuer},
        aud={"essential": True, "value": connection.client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        checks.validate(claims)
    except JoseError as exc:
        claim = getattr(exc, "claim", "")
        code = "nonce" if claim == "nonce" else "id_token"
        raise refused(f"the ID token is not valid: {exc}", code, 401) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != connection.client_id:
        raise refused("the ID token was issued to another party (azp)", "id_token", 401)
    return dict(claims)


def identity_of(connection_id: str, issuer: str, claims: dict[str, Any]) -> Identity:
    """The person an ID token names, by the shape of its provider's claims."""
    email = claims.get("email") or claims.get("preferred_username") or claims.get("upn")
    if not isinstance(email, str) or "@" not in email:
        raise refused("the provider sent no email address", "no_email", 403)
    email = email.strip().lower()
    if claims.get("email_verified") is False:  # Okta and Google say; Azure AD does not
        raise refused(f"the provider has not verified {email}", "email_unverified", 403)
    hosted = claims.get("hd")
    if hosted is not None and str(hosted).lower() != domain_of(email):
        raise refused(f"{email} is not of the Google Workspace domain {hosted}", "domain", 403)
    amr = claims.get("amr")
    methods = tuple(str(m) for m in amr) if isinstance(amr, list) and amr else ("sso",)
    name = claims.get("name")
    return Identity(
        connection_id=connection_id,
        email=email,
        display_name=str(name) if isinstance(name, str) and name else email,
        claims=claims,
        amr=methods,
        subject=f"{issuer}|{claims['sub']}",
    )
