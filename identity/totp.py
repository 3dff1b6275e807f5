"""Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP) and recovery codes.

A TOTP secret is 160 random bits (RFC 4226 asks for at least 128 and recommends 160), written
in base32 without padding as authenticator apps take it. Codes are HMAC-SHA1, six digits, a
30-second period: the parameters every common authenticator app supports. `verify` accepts the
codes of one step either side of now (clock drift and typing time) and each time step once:
the caller stores the step it returns and passes it back as `last_used_step`, so a code seen
over a shoulder or in a log cannot be replayed.

Recovery codes stand in for the authenticator when it is lost; each works once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlencode

SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation
MIN_SECRET_BYTES = 16  # 128 bits, RFC 4226's requirement (R6)
DIGITS = 6
PERIOD = 30  # seconds
# what every authenticator app implements; SHA-1's collisions do not weaken HMAC-SHA1
ALGORITHM = "SHA1"
WINDOW = 1  # steps accepted either side of the current one
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Recovery codes: 12 characters from 32 that cannot be mistaken for one another when read from
# paper (no 0/O, no 1/I), so 60 bits each, shown in groups of four: ABCD-EFGH-JKLM.
RECOVERY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RECOVERY_CODE_LENGTH = 12
RECOVERY_GROUP = 4
RECOVERY_CODE_COUNT = 10
# "sha256$<salt hex>$<digest hex>". A fast hash suffices: a code is 60 uniformly random bits,
# not a human choice, so there is no dictionary to try, and guessing one by brute force costs
# about 2^59 hashes. The per-code salt keeps that cost per code: without it one pass of guesses
# would be tried against every stored code of every account at once.
RECOVERY_HASH_SCHEME = "sha256"
RECOVERY_SALT_BYTES = 16


class OtpError(Exception):
    """Root of this module's errors."""


class Refusal(StrEnum):
    """Why a code was refused."""

    MALFORMED = "malformed"
    WRONG = "wrong"
    REPLAYED = "replayed"
    UNKNOWN_RECOVERY_CODE = "unknown_recovery_code"


class OtpRejected(OtpError):  # noqa: N818 - a refusal of the user's input
    """The user's code is refused; `reason` says why, the message says it for people."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OtpUsageError(OtpError, ValueError):
    """A caller's or a store's mistake, never the user's code: a secret that is not base32 or
    too short, a time without a time zone, parameters out of range, a malformed stored hash."""


def new_secret() -> str:
    """A new random TOTP secret: 160 bits in base32, without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def secret_bytes(secret: str) -> bytes:
    """The key of a base32 secret, accepting lower case, spaces and missing padding (as people
    copy it from an authenticator app)."""
    text = "".join(secret.split()).upper().rstrip("=")
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error:
        raise OtpUsageError("TOTP secret is not base32") from None
    if len(key) < MIN_SECRET_BYTES:
        raise OtpUsageError(
            f"TOTP secret holds {len(key) * 8} bits; at least {MIN_SECRET_BYTES * 8} are needed"
        )
    return key


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from a QR code (the Key URI format):
    label "issuer:account", with the issuer repeated as a parameter, SHA1, 6 digits, 30 s."""
    secret_bytes(secret)
    for name, value in (("account", account), ("issuer", issuer)):
        if not value.strip():
            raise OtpUsageError(f"{name} must not be empty")
        if ":" in value:
            # the label's one colon separates issuer from account
            raise OtpUsageError(f"{name} must not contain ':'")
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    query = urlencode(
        {
            "secret": "".join(secret.split()).upper().rstrip("="),
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226's HOTP value of a counter: HMAC-SHA1, dynamic truncation, `digits` digits."""
    _check_digits(digits)
    if counter < 0:
        raise OtpUsageError(f"HOTP counter must not be negative, not {counter}")
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(value % 10**digits).zfill(digits)


def time_step(at: datetime, period: int = PERIOD) -> int:
    """The RFC 6238 time step of an instant: whole periods since the Unix epoch."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise OtpUsageError("TOTP time must carry a time zone (a naive datetime is ambiguous)")
    if period <= 0:
        raise OtpUsageError(f"TOTP period must be positive, not {period}")
    # timedelta arithmetic is exact in integers, where a float timestamp would round
    return (at - EPOCH) // timedelta(seconds=period)


def code_at(secret: str, at: datetime, digits: int = DIGITS, period: int = PERIOD) -> str:
    """The TOTP code of a secret at an instant."""
    return hotp(secret_bytes(secret), time_step(at, period), digits)


def verify(
    secret: str,
    code: str,
    now: datetime,
    last_used_step: int | None,
    window: int = WINDOW,
    *,
    digits: int = DIGITS,
    period: int = PERIOD,
) -> int:
    """The time step the code belongs to, among those `window` steps either side of now.

    Raises `OtpRejected` for a code that is not `digits` ASCII digits (spaces are ignored, as
    apps show "123 456"), that matches none of the steps, or that matches only steps at or
    before `last_used_step` (a code already used, or an older one). Store the returned step as
    the new `last_used_step`.
    """
    if window < 0:
        raise OtpUsageError(f"TOTP window must not be negative, not {window}")
    key = secret_bytes(secret)
    typed = "".join(code.split())
    _check_digits(digits)
    if len(typed) != digits or not all("0" <= char <= "9" for char in typed):
        raise OtpRejected(Refusal.MALFORMED, f"code is not {digits} digits")
    current = time_step(now, period)
    # every candidate is compared (no early exit), each in constant time
    matched = [
        step
        for step in range(max(current - window, 0), current + window + 1)
        if hmac.compare_digest(hotp(key, step, digits), typed)
    ]
    fresh = [step for step in matched if last_used_step is None or step > last_used_step]
    if fresh:
        # the earliest: taking a later one would refuse the next genuine code
        return fresh[0]
    if matched:
        raise OtpRejected(
            Refusal.REPLAYED, "code was already used (each time step's code works once)"
        )
    raise OtpRejected(Refusal.WRONG, "code does not match")


def _check_digits(digits: int) -> None:
    # RFC 4226 allows 6 to 8 (its truncation yields 31 bits, about 9 digits)
    if not 6 <= digits <= 8:
        raise OtpUsageError(f"code digits must be between 6 and 8, not {digits}")


def new_recovery_codes(n: int = RECOVERY_CODE_COUNT) -> list[str]:
    """`n` distinct recovery codes to show the user once, such as "7KQM-X3TD-9HRB"."""
    if n < 1:
        raise OtpUsageError(f"the number of recovery codes must be positive, not {n}")
    codes: list[str] = []
    while len(codes) < n:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        code = "-".join(
            raw[i : i + RECOVERY_GROUP] for i in range(0, RECOVERY_CODE_LENGTH, RECOVERY_GROUP)
        )
        if code not in codes:  # a repeat is vanishingly rare, and harmless once skipped
            codes.append(code)
    return codes


def normalise_recovery_code(code: str) -> str:
    """The form that is hashed: upper case, without the hyphens and spaces people type or not."""
    text = unicodedata.normalize("NFKC", code).upper()
    return "".join(char for char in text if char != "-" and not char.isspace())


def hash_recovery_code(code: str) -> str:
    """The stored form of a recovery code: a salted SHA-256 of its normalised form."""
    salt = secrets.token_bytes(RECOVERY_SALT_BYTES)
    return f"{RECOVERY_HASH_SCHEME}${salt.hex()}${_recovery_digest(salt, code).hex()}"


def use_recovery_code(code: str, remaining_hashes: Sequence[str]) -> list[str]:
    """The stored hashes without the one of this code, which is thereby spent.

    Raises `OtpRejected` when the code matches none of them (a wrong code, or one already used).
    Every stored hash is compared, each in constant time.
    """
    matched: int | None = None
    for index, stored in enumerate(remaining_hashes):
        salt, digest = _parse_recovery_hash(stored)
        if hmac.compare_digest(_recovery_digest(salt, code), digest) and matched is None:
            matched = index
    if matched is None:
        raise OtpRejected(
            Refusal.UNKNOWN_RECOVERY_CODE, "recovery code is not one of the unused codes"
        )
    return [stored for index, stored in enumerate(remaining_hashes) if index != matched]


def _recovery_digest(salt: bytes, code: str) -> bytes:
    return hashlib.sha256(salt + normalise_recovery_code(code).encode("utf-8")).digest()


def _parse_recovery_hash(stored: str) -> tuple[bytes, bytes]:
    scheme, _, rest = stored.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    try:
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        salt = digest = b""
    if scheme != RECOVERY_HASH_SCHEME or len(salt) != RECOVERY_SALT_BYTES or len(digest) != 32:
        raise OtpUsageError(
            f"stored recovery code hash is not of the form {RECOVERY_HASH_SCHEME}$<salt>$<digest>"
        )
    return salt, digest
