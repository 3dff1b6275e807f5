"""The SAML service provider's key pair and certificate in PostgreSQL, beside the other keys in
`identity.keystore.KEYS_SCHEMA`.

One RSA 2048 key signs the AuthnRequests and decrypts assertions an identity provider
encrypts; its certificate (self-signed, SHA-256, valid ten years) is in the SP metadata every
connection's IdP is given, so it is made once and kept: a new key would break every IdP
that trusts the old certificate. Two processes making it at once both end up with the one
that was inserted first.

pysaml2 and xmlsec1 read keys from files only: `SpKeys.files()` writes them, once per process,
into a private temporary directory (mode 0700, the key file 0600) removed when the process
exits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from psycopg import sql

from identity.keystore import KEYS_SCHEMA

TABLE = "saml_sp_keys"
KEY_BITS = 2048
VALIDITY = timedelta(days=3650)
COMMON_NAME = "OptiBid SAML service provider"


@dataclass(frozen=True)
class SpKeyFiles:
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class SpKeys:
    cert_pem: str
    key_pem: str

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER form, hex."""
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        return cert.fingerprint(hashes.SHA256()).hex()

    def files(self) -> SpKeyFiles:
        """The certificate and key as files pysaml2 can read (written once per process)."""
        return _files(self)


def generate(now: datetime | None = None, common_name: str = COMMON_NAME) -> SpKeys:
    """A new key pair and its self-signed certificate."""
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))  # an IdP whose clock runs behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return SpKeys(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, TABLE)


def ensure(conn: psycopg.Connection[Any], schema: str = KEYS_SCHEMA) -> None:
    """Create the schema and table when missing (idempotent, also when two processes race)."""
    # IF NOT EXISTS still races another process creating it at the same moment; the savepoint
    # keeps a caller's transaction usable after the loser's error
    with (
        contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema),
        conn.transaction(),
    ):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    with (
        contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable),
        conn.transaction(),
    ):
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id smallint PRIMARY KEY CHECK (id = 1),"
                " cert_pem text NOT NULL, key_pem text NOT NULL,"
                " created_at_utc timestamptz NOT NULL DEFAULT now())"
            ).format(_table(schema))
        )


def load(conn: psycopg.Connection[Any], schema: str = KEYS_SCHEMA) -> SpKeys | None:
    """The keys, or None when none were made yet (or the table does not exist)."""
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{TABLE}"',)).fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT cert_pem, key_pem FROM {} WHERE id = 1").format(_table(schema))
    ).fetchone()
    return SpKeys(str(row[0]), str(row[1])) if row else None


def load_or_create(conn: psycopg.Connection[Any], schema: str = KEYS_SCHEMA) -> SpKeys:
    """The SP's keys, made and kept on first use. Of two processes making them at once, the
    second finds the first's row and returns it (its own key is dropped, never used). Meant
    for an autocommit connection: inside a transaction of the caller's, nothing is kept
    until the caller commits."""
    found = load(conn, schema)
    if found is not None:
        return found
    ensure(conn, schema)
    fresh = generate()
    with conn.transaction():
        inserted = conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, cert_pem, key_pem) VALUES (1, %s, %s)"
                " ON CONFLICT (id) DO NOTHING RETURNING id"
            ).format(_table(schema)),
            (fresh.cert_pem, fresh.key_pem),
        ).fetchone()
    if inserted is not None:
        return fresh
    kept = load(conn, schema)
    if kept is None:  # the conflicting row is gone again: someone deleted it meanwhile
        raise LookupError(f"the SAML SP keys in {schema}.{TABLE} vanished while being made")
    return kept


_lock = threading.Lock()
_directory: Path | None = None
_written: dict[str, SpKeyFiles] = {}


def _private_directory() -> Path:
    global _directory  # noqa: PLW0603 - one directory per process, made on first use
    if _directory is None or not _directory.is_dir():
        _directory = Path(tempfile.mkdtemp(prefix="optibid-saml-sp-"))  # mode 0700
        _directory.chmod(0o700)
        atexit.register(_remove, _directory, os.getpid())
    return _directory


def _remove(directory: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked child exiting leaves its parent's files alone
        shutil.rmtree(directory, ignore_errors=True)


def _write(path: Path, text: str, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(text)


def _files(keys: SpKeys) -> SpKeyFiles:
    name = hashlib.sha256((keys.cert_pem + keys.key_pem).encode()).hexdigest()[:16]
    with _lock:
        found = _written.get(name)
        if found is not None and Path(found.key_file).is_file():
            return found
        directory = _private_directory()
        cert, key = directory / f"{name}.crt.pem", directory / f"{name}.key.pem"
        for path in (cert, key):
            path.unlink(missing_ok=True)
        _write(cert, keys.cert_pem, 0o600)
        _write(key, keys.key_pem, 0o600)
        files = SpKeyFiles(str(cert), str(key))
        _written[name] = files
        return files
