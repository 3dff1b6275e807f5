"""The SAML 2.0 identity provider of the single sign-on tests (tests/peers/saml/idp.py) as a
process of the test's own, and a browser's part of a login through it.

    peer = SamlPeer(tmp_path)
    peer.start(sp_metadata_xml)           # the SP's metadata: the one SP the IdP trusts
    ...                                   # the SP loads peer.metadata_url, redirects to the IdP
    acs_url, fields = log_in(redirect_url, "ada", "ada-password")
    ...                                   # POST fields to acs_url (or parse them in place)
    peer.set_faults(tamper=True)          # the next responses carry that fault
    peer.stop()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PROJECT = Path(__file__).resolve().parents[2]
IDP_SCRIPT = PROJECT / "tests" / "peers" / "saml" / "idp.py"
FAULTS = frozenset(
    {
        "unsigned_assertion",
        "response_only_signed",
        "tamper",
        "wrong_audience",
        "wrong_recipient",
        "wrong_destination",
        "expired",
    }
)  # as in tests/peers/saml/idp.py


EMPTY_METADATA = '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>'


class LoginRefusedError(Exception):
    """The IdP answered something other than the next step of a login."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"IdP answered {status}: {text[:500]}")
        self.status = status
        self.text = text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_credentials(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    """A self-signed RSA certificate and its key, as `name`.crt.pem and `name`.key.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt.pem"
    key_path = directory / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def make_sp_credentials(tmp: Path) -> tuple[Path, Path]:
    """(cert_pem_path, key_pem_path) for a service provider's signing key, under `tmp`."""
    return make_credentials(tmp, "sp", "optibid-sp")


@dataclass(frozen=True)
class Account:
    login: str
    password: str
    email: str
    given_name: str
    sn: str
    groups: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "login": self.login,
            "password": self.password,
            "attributes": {
                "email": self.email,
                "givenName": self.given_name,
                "sn": self.sn,
                "groups": list(self.groups),
            },
        }


DEFAULT_ACCOUNTS = (
    Account(
        "ada",
        "ada-correct-horse-battery",
        "ada@example.com",
        "Ada",
        "Lovelace",
        ("optibid-analysts", "optibid-viewers"),
    ),
    Account("grace", "grace-staple-ledger-lamp", "grace@example.com", "Grace", "Hopper", ()),
)


@dataclass
class SamlPeer:
    """The IdP process. `directory` holds its config, keys, SP metadata and log."""

    directory: Path
    accounts: tuple[Account, ...] = DEFAULT_ACCOUNTS
    faults: dict[str, bool] = field(default_factory=dict)  # in force from the start
    sign_metadata: bool = True
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _metadata: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def entity_id(self) -> str:
        return self.base_url

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/sso/redirect"

    @property
    def idp_initiated_url(self) -> str:
        return f"{self.base_url}/idp-initiated"

    @property
    def cert_path(self) -> Path:
        """The IdP's signing certificate (PEM), which also signs its metadata."""
        return self.directory / "idp.crt.pem"

    @property
    def log_path(self) -> Path:
        return self.directory / "idp.log"

    def account(self, login: str) -> Account:
        return next(a for a in self.accounts if a.login == login)

    def prepare(self) -> None:
        """The IdP's keys made and its metadata read (`metadata_xml`) before any service
        provider is known: a service provider's own metadata may need the IdP's first."""
        self.start(EMPTY_METADATA)
        try:
            answer = httpx.get(self.metadata_url, timeout=10)
            answer.raise_for_status()
            self._metadata = answer.text
        finally:
            self.stop()

    def metadata_xml(self) -> str:
        if self._metadata is None:
            raise RuntimeError("prepare() the IdP first")
        return self._metadata

    def start(self, sp_metadata_xml: str, timeout_s: float = 30) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = self.directory / "idp.key.pem"
        if self.cert_path.exists() and key.exists():  # the same keys on a restart
            cert = self.cert_path
        else:
            cert, key = make_credentials(self.directory, "idp", "optibid-test-idp")
        sp_metadata = self.directory / "sp-metadata.xml"
        sp_metadata.write_text(sp_metadata_xml)
        config = self.directory / "idp.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "entity_id": self.entity_id,
                    "sp_metadata": str(sp_metadata),
                    "cert": str(cert),
                    "key": str(key),
                    "accounts": [a.as_json() for a in self.accounts],
                    "faults": self.faults,
                    "sign_metadata": self.sign_metadata,
                },
                indent=2,
            )
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(IDP_SCRIPT), str(config)],
                cwd=PROJECT,
                env=os.environ.copy(),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the SAML IdP exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                if httpx.get(self.metadata_url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the SAML IdP did not answer within {timeout_s} s:\n{self.logs()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def set_faults(self, **flags: bool) -> None:
        """Replaces the faults in force for the next responses; no flags, no faults."""
        unknown = set(flags) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        answer = httpx.post(f"{self.base_url}/faults", json=flags, timeout=10)
        answer.raise_for_status()

    def log_in(self, redirect_url: str, login: str, password: str) -> tuple[str, dict[str, str]]:
        return log_in(redirect_url, login, password)

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class _Forms(HTMLParser):
    """The forms of a page: (action, {name: value}) each, input fields only."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1][1][attributes["name"]] = attributes.get("value", "")


def _forms(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(page)
    parser.close()
    return parser.forms


def log_in(redirect_url: str, login: str, password: str) -> tuple[str, dict[str, str]]:
    """What a browser does at the IdP: follows the SP's redirect (the IdP's SSO URL with the
    AuthnRequest), fills in the login form, and reads the auto-submitting form of the answer.
    Returns (acs_url, {"SAMLResponse": ..., "RelayState": ...}) without posting it; RelayState
    is there when the SP sent one. Raises LoginRefusedError when the IdP refuses the request or the
    password."""
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        page = client.get(redirect_url)
        if page.status_code != 200:
            raise LoginRefusedError(page.status_code, page.text)
        forms = [(a, f) for a, f in _forms(page.text) if "password" in f]
        if not forms:
            raise LoginRefusedError(page.status_code, f"no login form in: {page.text}")
        action, fields = forms[0]
        fields.update(login=login, password=password)
        answer = client.post(urljoin(str(page.url), action), data=fields)
        if answer.status_code != 200:
            raise LoginRefusedError(answer.status_code, answer.text)
        found = saml_post_form(answer.text)
        if found is None:
            raise LoginRefusedError(answer.status_code, f"no SAMLResponse form in: {answer.text}")
        return found


def saml_post_form(page: str) -> tuple[str, dict[str, str]] | None:
    """(action, fields) of the page's form that carries a SAMLResponse, if it has one."""
    for action, fields in _forms(page):
        if "SAMLResponse" in fields:
            return action, fields
    return None
