"""Secrets that enter the event log only sealed, and die with their user's key (crypto-shredding).

The log is append-only and kept for good, so a user's secrets (TOTP seed, recovery code hashes,
password hash) cannot be deleted from it. Instead each user has a 256-bit data key kept outside
the log, in a `KeyStore`, and every secret is sealed with it before it is written. Erasing the
user erases the key: their sealed values stay in the log, unreadable by anyone.

A sealed value is AES-256-GCM with a random 96-bit nonce and associated data naming the format
version, the user and the purpose, so it opens only for the user and field it was sealed for: a
value copied into another user's record or another field fails as corrupt. Its text form,
"v1.<nonce>.<ciphertext and tag>" in unpadded base64url, is ASCII and fits an Avro string.
Random nonces are safe for far more values than one user has (NIST SP 800-38D bounds a key at
2^32 of them).
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's 96-bit nonce
TAG_BYTES = 16
VERSION = "v1"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class VaultError(Exception):
    """Root of this module's errors."""


class SecretUnavailable(VaultError):  # noqa: N818 - a state of the data, not a program error
    """The user's key is gone (the user was erased) or was never made: the secret is lost."""


class SecretCorrupt(VaultError):  # noqa: N818 - a state of the data, not a program error
    """The sealed value does not open: altered, sealed for another user or purpose, or of a
    format version this code does not know."""


class VaultUsageError(VaultError, ValueError):
    """A caller's or a key store's mistake: a key of the wrong length, an empty user or purpose."""


class KeyStore(Protocol):
    """Where the users' data keys live: outside the event log, and never copied into it.

    The contract every store keeps:
    - keys are `KEY_BYTES` bytes from a cryptographically secure random source;
    - `get` returns the user's key, or None when there is none (never made, or erased);
    - `create` returns the user's key, making one if there is none; it is idempotent and, when
      two callers race, both receive the same key (a database store inserts with "on conflict
      do nothing" and reads back), since a value sealed under a key that lost the race would be
      lost;
    - `erase` deletes the key for good and says whether there was one. Nothing may keep a copy
      (no soft delete, no cache beyond the request): the erasure is what makes the user's sealed
      values in the log unreadable. Backups of the store hold the key until they expire, which
      bounds how long the erasure takes to be complete.

    After an erasure `create` makes a new, unrelated key; values sealed under the old one stay
    unreadable. Not sealing anything more for an erased user is the caller's concern.
    """

    def get(self, user_id: str) -> bytes | None: ...

    def create(self, user_id: str) -> bytes: ...

    def erase(self, user_id: str) -> bool: ...


class MemoryKeyStore:
    """A `KeyStore` in a dict, for pure tests only: its keys vanish with the process, so every
    value sealed under them would be lost at the next start."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def get(self, user_id: str) -> bytes | None:
        return self._keys.get(user_id)

    def create(self, user_id: str) -> bytes:
        return self._keys.setdefault(user_id, secrets.token_bytes(KEY_BYTES))

    def erase(self, user_id: str) -> bool:
        return self._keys.pop(user_id, None) is not None


def seal(key: bytes, user_id: str, purpose: str, plaintext: bytes) -> str:
    """The plaintext encrypted for one user and purpose ("totp", "recovery", "password"), in
    the text form "v1.<nonce>.<ciphertext and tag>"."""
    cipher = AESGCM(_checked_key(key))
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext, _associated_data(user_id, purpose))
    return f"{VERSION}.{_encode(nonce)}.{_encode(sealed)}"


def unseal(key: bytes | None, user_id: str, purpose: str, sealed: str) -> bytes:
    """The plaintext of a sealed value, given the user's key as the store returns it.

    Raises `SecretUnavailable` when the key is None (the user was erased), `SecretCorrupt`
    when the value is malformed, altered, of an unknown version, or sealed for another user or
    purpose.
    """
    if key is None:
        raise SecretUnavailable(
            f"no data key for user {user_id!r} (erased with the user, or never made): "
            f"the {purpose!r} secret cannot be opened"
        )
    cipher = AESGCM(_checked_key(key))
    associated = _associated_data(user_id, purpose)
    nonce, ciphertext = _parse(sealed)
    try:
        return cipher.decrypt(nonce, ciphertext, associated)
    except InvalidTag:
        raise SecretCorrupt(
            f"sealed value does not open for user {user_id!r} and purpose {purpose!r}: "
            "altered, or sealed for another user or purpose"
        ) from None


class Vault:
    """Sealing and opening for users, over a key store."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def seal_for(self, user_id: str, purpose: str, plaintext: bytes) -> str:
        """Seal under the user's key, making the key at the user's first secret."""
        return seal(self.keys.create(user_id), user_id, purpose, plaintext)

    def open_for(self, user_id: str, purpose: str, sealed: str) -> bytes:
        """Open a value sealed for the user; see `unseal` for what it raises."""
        return unseal(self.keys.get(user_id), user_id, purpose, sealed)

    def erase(self, user_id: str) -> bool:
        """Erase the user's key, and with it every secret sealed for them; whether there was
        a key."""
        return self.keys.erase(user_id)


def _checked_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise VaultUsageError(f"data key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def _associated_data(user_id: str, purpose: str) -> bytes:
    if not user_id:
        raise VaultUsageError("user_id must not be empty")
    if not purpose:
        raise VaultUsageError("purpose must not be empty")
    # each part length-prefixed, so that no two (user, purpose) pairs give the same bytes
    parts = [part.encode("utf-8") for part in (VERSION, user_id, purpose)]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    # only the canonical encoding is accepted, so that each value has exactly one text form
    if not _BASE64URL.fullmatch(text):
        raise ValueError(text)
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _encode(data) != text:
        raise ValueError(text)
    return data


def _parse(sealed: str) -> tuple[bytes, bytes]:
    """The nonce and the ciphertext (with its tag) of a sealed value's text form."""
    parts = sealed.split(".")
    if len(parts) != 3:
        raise SecretCorrupt("sealed value is not of the form <version>.<nonce>.<ciphertext>")
    version, nonce_text, ciphertext_text = parts
    if version != VERSION:
        raise SecretCorrupt(f"sealed value has unknown format version {version[:16]!r}")
    try:
        nonce, ciphertext = _decode(nonce_text), _decode(ciphertext_text)
    except ValueError:  # binascii.Error is one
        raise SecretCorrupt("sealed value is not in canonical unpadded base64url") from None
    if len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise SecretCorrupt("sealed value has a nonce or ciphertext of the wrong length")
    return nonce, ciphertext
