"""Real OpenID Connect identity providers on loopback for the single sign-on tests.

Each peer is one `node tests/peers/oidc/provider.mjs CONFIG.json` process running the
certified `oidc-provider` package (pinned in tests/peers/oidc/package.json), shaped like one
of the identity providers OptiBid's customers use:

- azure: Entra ID (Azure AD) v2.0, issuer http://127.0.0.1:PORT/<tenant id>/v2.0; `tid`,
  `oid`, `preferred_username`, `email`, `name`, `groups` (group object ids), `roles` (app
  role values) and `amr` in the ID token;
- okta: an Okta custom authorization server, issuer http://127.0.0.1:PORT/oauth2/default;
  `email`, `email_verified`, `name` and `groups` (group names, under the `groups` scope);
- google: Google Workspace, issuer http://127.0.0.1:PORT; `email`, `email_verified`, `hd`,
  `name` and `picture`.

All run the authorization code flow with PKCE (S256) required, `client_secret_basic` or
`client_secret_post` at the token endpoint, and put the profile's claims in the ID token.

    peers = start_peers(tmp_path, "http://127.0.0.1:8000/sso/callback")
    peer = peers["okta"]
    callback = log_in(authorization_url, "alice", peer.accounts["alice"].password)
    ...
    stop_peers(peers)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.streams_util import PROJECT, free_port

PEERS_DIR = PROJECT / "tests" / "peers" / "oidc"
PROVIDER_SCRIPT = PEERS_DIR / "provider.mjs"
NPM_CI = ("npm", "ci", "--no-audit", "--no-fund")
MIN_NODE_MAJOR = 20

PROFILES = ("azure", "okta", "google")
# each profile's customer domain; OUTSIDE_DOMAIN is no customer's
DOMAINS = {"azure": "contoso.example", "okta": "acme.example", "google": "globex.example"}
OUTSIDE_DOMAIN = "outside.example"
SCOPES = {
    "azure": "openid email profile",
    "okta": "openid email profile groups",
    "google": "openid email profile",
}

_NAMESPACE = uuid.UUID("6f1c8e9a-3b0d-4c52-9a7e-2d4b1f0c8a63")
AZURE_TENANT_ID = str(uuid.uuid5(_NAMESPACE, "azure tenant contoso"))
# Entra security groups (object ids) and app roles (values) the relying party maps to roles
AZURE_GROUPS = {
    "admin": str(uuid.uuid5(_NAMESPACE, "azure group optibid admins")),
    "viewer": str(uuid.uuid5(_NAMESPACE, "azure group optibid viewers")),
}
AZURE_APP_ROLES = {"admin": "OptiBid.Admin", "viewer": "OptiBid.Viewer"}
OKTA_GROUPS = {"admin": "OptiBid Admins", "viewer": "OptiBid Viewers"}
OKTA_EVERYONE = "Everyone"
PASSWORDS = {"alice": "alice-Pa55word!", "bob": "bob-Pa55word!", "mallory": "mallory-Pa55word!"}
# who is who in every profile: alice maps to admin, bob to viewer, mallory is from outside
PEOPLE = {
    "alice": ("Alice", "Archer", "admin"),
    "bob": ("Bob", "Baker", "viewer"),
    "mallory": ("Mallory", "Moss", ""),
}
OUTSIDER = "mallory"


class OidcPeerError(RuntimeError):
    """A peer could not be installed, started or driven."""


class LoginRejectedError(OidcPeerError):
    """The peer showed its login form again: wrong login or password. No code was issued."""


@dataclass(frozen=True)
class PeerAccount:
    """One account of a peer. `login` (or the email) goes into the login form; `sub` is the
    subject the ID token carries; `role` is the OptiBid role the relying party is meant to
    map the account's groups/roles/domain to ("" for the outsider)."""

    login: str
    password: str
    sub: str
    email: str
    role: str
    claims: dict[str, Any]

    def config(self) -> dict[str, Any]:
        return {
            "id": self.sub,
            "login": self.login,
            "password": self.password,
            "claims": self.claims,
        }


@dataclass
class OidcPeer:
    """One identity provider process. Its in-memory state (sessions, codes, grants) is lost
    on every restart, `rotate_keys()` included."""

    profile: str
    issuer: str
    port: int
    client_id: str
    client_secret: str
    redirect_uri: str
    accounts: dict[str, PeerAccount]
    config_path: Path
    jwks: dict[str, Any] = field(repr=False)  # private keys; the first signs
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    id_token_ttl: int = 3600  # seconds; a short one makes expired ID tokens for a test

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def log_path(self) -> Path:
        return self.config_path.with_suffix(".log")

    @property
    def kid(self) -> str:
        """The key id ID tokens are signed with now."""
        return str(self.jwks["keys"][0]["kid"])

    @property
    def scope(self) -> str:
        """What a relying party asks for to get the profile's claims."""
        return SCOPES[self.profile]

    def config(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "issuer": self.issuer,
            "profile": self.profile,
            "clients": [
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": [self.redirect_uri],
                }
            ],
            "accounts": [account.config() for account in self.accounts.values()],
            "jwks": self.jwks,
            "id_token_ttl": self.id_token_ttl,
        }

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 30.0) -> None:
        """Writes the configuration and starts the process; returns once discovery answers."""
        if self.alive():
            return
        node = node_binary()
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.config_path.chmod(0o600)  # it holds the private keys
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), str(self.config_path)],
                cwd=PEERS_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OidcPeerError(
                    f"{self.profile} peer exited with {self.process.returncode}:\n{self.logs()}"
                )
            try:
                response = httpx.get(self.discovery_url, timeout=2)
                if response.status_code == 200 and response.json()["issuer"] == self.issuer:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise OidcPeerError(f"{self.profile} peer did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stops the process (SIGTERM to its PID, SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def rotate_keys(self) -> str:
        """Restarts with a new signing key in place of the old one (which is no longer
        published); returns the new kid."""
        self.stop()
        self.jwks = {"keys": [rsa_jwk()]}
        self.start()
        return self.kid

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        response = httpx.get(self.discovery_url, timeout=5)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def public_jwks(self) -> dict[str, Any]:
        """The key set the peer publishes at its jwks_uri."""
        response = httpx.get(self.metadata()["jwks_uri"], timeout=5)
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
        return keys

    def logs(self) -> str:
        """The process's output: one line per request, and its errors."""
        return self.log_path.read_text() if self.log_path.exists() else ""


def node_binary() -> str:
    """The `node` to run the peers with; a clear error when absent or too old."""
    node = shutil.which("node")
    if node is None:
        raise OidcPeerError(
            f"`node` is not on PATH: the OIDC peers need Node.js {MIN_NODE_MAJOR} or later"
        )
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < MIN_NODE_MAJOR:
        raise OidcPeerError(f"node {version} is too old for the OIDC peers")
    return node


def _installed_version() -> str | None:
    manifest = PEERS_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def ensure_installed() -> None:
    """Runs `npm ci` in tests/peers/oidc when node_modules lacks the pinned oidc-provider."""
    pinned = json.loads((PEERS_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]
    if _installed_version() == pinned:
        return
    node_binary()
    npm = shutil.which("npm")
    if npm is None:
        raise OidcPeerError(f"`npm` is not on PATH; run `{' '.join(NPM_CI)}` in {PEERS_DIR}")
    done = subprocess.run(
        [npm, *NPM_CI[1:]], cwd=PEERS_DIR, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or _installed_version() != pinned:
        raise OidcPeerError(
            f"`{' '.join(NPM_CI)}` in {PEERS_DIR} failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(bits: int = 2048) -> dict[str, str]:
    """A private RS256 signing JWK; its kid is the RFC 7638 thumbprint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_numbers()
    public = private.public_numbers
    n, e = _b64(public.n), _b64(public.e)
    canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    return {
        "kty": "RSA",
        "kid": kid.rstrip(b"=").decode(),
        "use": "sig",
        "alg": "RS256",
        "n": n,
        "e": e,
        "d": _b64(private.d),
        "p": _b64(private.p),
        "q": _b64(private.q),
        "dp": _b64(private.dmp1),
        "dq": _b64(private.dmq1),
        "qi": _b64(private.iqmp),
    }


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def _subject(profile: str, login: str) -> str:
    """A stable subject in the provider's own shape."""
    digest = _digest(profile, "sub", login)
    if profile == "azure":  # pairwise, 43 base64url characters
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if profile == "okta":  # 00u + 17 alphanumerics
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        return "00u" + "".join(alphabet[b % len(alphabet)] for b in digest[:17])
    return str(int.from_bytes(digest[:9], "big")).rjust(21, "1")[:21]  # google: 21 digits


def default_accounts(profile: str) -> dict[str, PeerAccount]:
    """alice (admin), bob (viewer) in the profile's domain; mallory outside every domain."""
    accounts: dict[str, PeerAccount] = {}
    for login, (given, family, role) in PEOPLE.items():
        domain = OUTSIDE_DOMAIN if login == OUTSIDER else DOMAINS[profile]
        email = f"{login}@{domain}"
        name = f"{given} {family}"
        claims: dict[str, Any]
        if profile == "azure":
            claims = {
                "tid": AZURE_TENANT_ID,
                "oid": str(uuid.uuid5(_NAMESPACE, f"azure user {login}")),
                "preferred_username": email,
                "email": email,
                "name": name,
                "groups": [AZURE_GROUPS[role]] if role else [],
                "roles": [AZURE_APP_ROLES[role]] if role else [],
                "amr": ["pwd", "mfa"] if role == "admin" else ["pwd"],
            }
        elif profile == "okta":
            claims = {
                "email": email,
                "email_verified": True,
                "name": name,
                "preferred_username": email,
                "groups": [OKTA_EVERYONE, OKTA_GROUPS[role]] if role else [OKTA_EVERYONE],
                "amr": ["pwd"],
            }
        else:
            claims = {
                "email": email,
                "email_verified": True,
                "name": name,
                "given_name": given,
                "family_name": family,
                "picture": f"https://lh3.googleusercontent.example/a/{login}",
            }
            if login != OUTSIDER:  # a consumer account has no hosted domain
                claims["hd"] = domain
        accounts[login] = PeerAccount(
            login=login,
            password=PASSWORDS[login],
            sub=_subject(profile, login),
            email=email,
            role=role,
            claims=claims,
        )
    return accounts


def _client_id(profile: str) -> str:
    digest = _digest(profile, "client")
    if profile == "azure":
        return str(uuid.UUID(bytes=digest[:16], version=4))
    if profile == "okta":
        return "0oa" + digest.hex()[:17]
    return f"{int.from_bytes(digest[:5], 'big')}-{digest.hex()[:32]}.apps.googleusercontent.com"


def _issuer(profile: str, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    if profile == "azure":
        return f"{base}/{AZURE_TENANT_ID}/v2.0"
    if profile == "okta":
        return f"{base}/oauth2/default"
    return base


def new_peer(profile: str, tmp_dir: Path, redirect_uri: str) -> OidcPeer:
    """A peer of the profile on a free loopback port, not started."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    port = free_port()
    return OidcPeer(
        profile=profile,
        issuer=_issuer(profile, port),
        port=port,
        client_id=_client_id(profile),
        client_secret=secrets.token_urlsafe(32),
        redirect_uri=redirect_uri,
        accounts=default_accounts(profile),
        config_path=tmp_dir / f"oidc-{profile}.json",
        jwks={"keys": [rsa_jwk()]},
    )


def start_peers(tmp_dir: Path, redirect_uri: str) -> dict[str, OidcPeer]:
    """Starts an azure, an okta and a google peer (installing oidc-provider first if
    needed), each with one client registered for `redirect_uri`."""
    ensure_installed()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    peers: dict[str, OidcPeer] = {}
    try:
        for profile in PROFILES:
            peer = new_peer(profile, tmp_dir, redirect_uri)
            peers[profile] = peer
            peer.start()
    except BaseException:
        stop_peers(peers)
        raise
    return peers


def stop_peers(peers: dict[str, OidcPeer]) -> None:
    for peer in peers.values():
        peer.stop()


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Page(HTMLParser):
    """The forms of an interaction page, and its error message if any."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.error = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(_Form(attributes.get("action", "")))
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")
        elif "error" in attributes.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data

    def form(self, action_suffix: str) -> _Form | None:
        return next((f for f in self.forms if f.action.endswith(action_suffix)), None)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def log_in(authorization_url: str, login: str, password: str, *, consent: bool = True) -> str:
    """Plays the browser at the peer: follows its redirects, submits the login form and then
    the consent form (allowing, or denying with consent=False). Returns the URL the peer
    finally redirects to at the relying party's redirect_uri (with `code` and `state`, or
    `error`), without requesting it. Raises LoginRejectedError when the login is refused."""
    query = parse_qs(urlsplit(authorization_url).query)
    redirect_uri = query.get("redirect_uri", [""])[0]
    peer_origin = _origin(authorization_url)

    def leaves_peer(url: str) -> bool:
        if redirect_uri and _without_query(url) == redirect_uri:
            return True
        return _origin(url) != peer_origin

    logged_in = False
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        response = browser.get(authorization_url)
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if leaves_peer(location):
                    return location
                response = browser.get(location)
                continue
            page = _Page()
            page.feed(response.text)
            login_form = page.form("/login")
            consent_form = page.form("/confirm")
            abort_form = page.form("/abort")
            if login_form is not None:
                if logged_in:
                    raise LoginRejectedError(
                        f"{login!r} was refused ({response.status_code}): "
                        f"{page.error.strip() or 'login form shown again'}"
                    )
                logged_in = True
                submit = {**login_form.fields, "login": login, "password": password}
                response = browser.post(urljoin(str(response.url), login_form.action), data=submit)
            elif consent_form is not None and abort_form is not None:
                chosen = consent_form if consent else abort_form
                response = browser.post(
                    urljoin(str(response.url), chosen.action), data=chosen.fields
                )
            else:
                status, text = response.status_code, response.text[:1000]
                raise OidcPeerError(f"unexpected {status} from {response.url}:\n{text}")
    raise OidcPeerError(f"no redirect to the relying party after 20 steps from {authorization_url}")
