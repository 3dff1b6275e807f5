"""API keys for programs: `obk_<prefix>_<secret>`, shown once, stored as a SHA-256 hash.

The prefix (10 characters) names the key in lists, logs and the audit log and finds its row;
the secret carries 256 random bits, so a fast unsalted hash cannot be brute-forced and the
check costs microseconds per request. Only the hash reaches the log and the read models.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_MARK = "obk_"
PREFIX_CHARS = 10
SECRET_BYTES = 32
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: readable over the phone
_SHAPE = re.compile(rf"^{KEY_MARK}([{_ALPHABET}]{{{PREFIX_CHARS}}})_([A-Za-z0-9_-]{{43}})$")


def new_api_key() -> tuple[str, str, str]:
    """A new key: (the key to show once, its prefix, the hash to store)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_CHARS))
    key = f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return key, prefix, hash_api_key(key)


def looks_like_api_key(text: str) -> bool:
    return text.startswith(KEY_MARK)


def prefix_of(key: str) -> str | None:
    """The prefix of a well-formed key; None for anything else (never a partial parse)."""
    match = _SHAPE.match(key)
    return match.group(1) if match else None


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def matches(key: str, stored_hash: str) -> bool:
    """Whether `key` is the one stored as `stored_hash`, in constant time."""
    return hmac.compare_digest(hash_api_key(key).encode(), stored_hash.encode())
