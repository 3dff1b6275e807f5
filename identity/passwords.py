"""Password policy and hashing.

The policy follows NIST SP 800-63B (rev. 4, section 3.1.1.2): a length floor, a generous
ceiling, Unicode normalised with NFKC, no composition rules (no "one digit, one symbol"), and a
refusal of passwords that are common, that repeat the account's own names, or that are a
repeated character or an obvious sequence. `check_password` says which rule refused a password
and never repeats the password itself.

Hashes are argon2id with the explicit parameters below; `verify_password` and `verify_dummy`
cost the same, so a login for an unknown email takes as long as one with a wrong password.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# zxcvbn ships no type information; its one list used here is typed in `common_passwords`
from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

# NIST rev. 4 asks for at least 15 characters when the password is the only authenticator and
# at least 8 when it is one factor of several. Accounts here can add a TOTP factor
# (identity.totp), so the default sits between the two: well above the multi-factor
# floor, and close to the single-factor advice. A deployment that allows password-only accounts
# passes 15; one that enforces a second factor may pass 8.
DEFAULT_MIN_LENGTH = 12
# No configuration may go below NIST's absolute floor.
MIN_LENGTH_FLOOR = 8
# NIST: verifiers SHOULD accept at least 64 characters. That is room for a passphrase of ten
# words or more; past it, length adds nothing a guesser would notice, and the bound keeps what a
# request may ask of the server predictable.
MAX_LENGTH = 64
# A context word shorter than this (an email local part such as "jo") would refuse too many
# good passwords that merely contain those letters.
CONTEXT_WORD_MIN_LENGTH = 4
# A unit of up to this many characters repeated ("abababab", "123123123123") counts as a
# repeated character: it is as easy to guess.
REPEATED_UNIT_MAX = 3
# Obvious sequences, checked forwards, backwards and wrapping around ("7890123", "zyxw").
SEQUENCES = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
)

# argon2id, OWASP's password storage guidance: its minimum is m=19 MiB, t=2, p=1, and it lists
# m=46 MiB, t=1, p=1 as equally strong. We take 46 MiB with two passes, above both, which
# costs about 0.1 s per hash on one server core. Every concurrent login holds MEMORY_COST_KIB
# for that long, so the API bounds how many hashes run at once. Raising any of these makes
# `needs_rehash` true for older hashes, which are then rehashed at the next successful login.
TIME_COST = 2
MEMORY_COST_KIB = 46 * 1024
PARALLELISM = 1
HASH_LENGTH = 32  # bytes: 256 bits of output
SALT_LENGTH = 16  # bytes: RFC 9106's recommended 128-bit salt

_HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=HASH_LENGTH,
    salt_len=SALT_LENGTH,
    type=Type.ID,
)


class Rule(StrEnum):
    """The policy rule that refused a password."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    COMMON = "common"
    CONTEXT = "context"
    REPEATED = "repeated"
    SEQUENCE = "sequence"


class PasswordError(Exception):
    """Root of this module's errors."""


class PasswordRejected(PasswordError):  # noqa: N818 - a refusal of the user's input
    """The password breaks a policy rule; `rule` says which, the message says it for people."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class PasswordUsageError(PasswordError, ValueError):
    """A caller's or a store's mistake, not the user's: a policy configured outside its bounds,
    or a stored hash that is not an argon2 hash."""


def normalise(password: str) -> str:
    """The form that is checked and hashed: NFKC, so that the same password typed on another
    keyboard or input method (full-width letters, composed accents) is the same password."""
    return unicodedata.normalize("NFKC", password)


def check_password(
    password: str,
    context_words: Iterable[str] = (),
    *,
    min_length: int = DEFAULT_MIN_LENGTH,
) -> None:
    """Refuse a new password that breaks the policy, raising `PasswordRejected`.

    `context_words` are the account's own names: its email address (the whole address and its
    local part are refused, also inside a longer password) and its organisation's name. Each is
    compared without regard to case, and also with spaces and punctuation removed, so
    "Acme-Power!2024" contains "Acme Power". Pass each distinctive form that should be refused.
    Length counts Unicode code points after NFKC normalisation.
    """
    if not MIN_LENGTH_FLOOR <= min_length <= MAX_LENGTH:
        raise PasswordUsageError(
            f"min_length must be between {MIN_LENGTH_FLOOR} and {MAX_LENGTH}, not {min_length}"
        )
    text = normalise(password)
    if len(text) < min_length:
        raise PasswordRejected(Rule.TOO_SHORT, f"password is shorter than {min_length} characters")
    if len(text) > MAX_LENGTH:
        raise PasswordRejected(Rule.TOO_LONG, f"password is longer than {MAX_LENGTH} characters")
    folded = text.casefold()
    if folded in common_passwords():
        raise PasswordRejected(Rule.COMMON, "password is in the list of common passwords")
    if _contains_context(folded, context_words):
        raise PasswordRejected(
            Rule.CONTEXT, "password contains the account's email address or organisation name"
        )
    if _is_repeated(folded):
        raise PasswordRejected(
            Rule.REPEATED, "password is one character or a short pattern repeated"
        )
    if _is_sequence(folded):
        raise PasswordRejected(
            Rule.SEQUENCE, "password is an obvious sequence (alphabet, digits or keyboard row)"
        )


@cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords, in lower case."""
    words: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(word.casefold() for word in words)


def _squash(text: str) -> str:
    """Only letters and digits: separators do not hide a word."""
    return "".join(char for char in text if char.isalnum())


def _context_terms(words: Iterable[str]) -> Iterator[str]:
    for word in words:
        term = normalise(word).strip().casefold()
        yield term
        if "@" in term:
            local = term.rpartition("@")[0]
            yield local
            # plus addressing: alice+optibid@… is still alice
            yield local.partition("+")[0]


def _contains_context(folded: str, words: Iterable[str]) -> bool:
    squashed = _squash(folded)
    for term in _context_terms(words):
        if len(term) >= CONTEXT_WORD_MIN_LENGTH and term in folded:
            return True
        bare = _squash(term)
        if len(bare) >= CONTEXT_WORD_MIN_LENGTH and bare in squashed:
            return True
    return False


def _is_repeated(folded: str) -> bool:
    return any(
        len(folded) % unit == 0 and folded == folded[:unit] * (len(folded) // unit)
        for unit in range(1, REPEATED_UNIT_MAX + 1)
    )


def _is_sequence(folded: str) -> bool:
    # consecutive code points in any script ("αβγδεζηθ"), then the known orders with wrapping
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(folded)}
    if steps in ({1}, {-1}):
        return True
    for sequence in SEQUENCES:
        for order in (sequence, sequence[::-1]):
            cycle = order * (len(folded) // len(order) + 2)
            if folded in cycle:
                return True
    return False


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string form, parameters and salt included) of the normalised
    password. The policy is the caller's to check first, with `check_password`."""
    return _HASHER.hash(normalise(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash; argon2 compares in constant time.

    A stored value that is not an argon2 hash raises `PasswordUsageError`: it is corrupt data,
    which must not pass for a wrong password.
    """
    try:
        return _HASHER.verify(password_hash, normalise(password))
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as error:
        raise _invalid_hash(error) from error


def verify_dummy(password: str) -> bool:
    """Spend what `verify_password` spends, and say no: for a login whose email is unknown, so
    that the time of the answer does not tell which emails have accounts. Always False."""
    with contextlib.suppress(VerifyMismatchError):
        _HASHER.verify(_dummy_hash(), normalise(password))
    return False


def _invalid_hash(error: Exception) -> PasswordUsageError:
    detail = f": {error}" if str(error) else ""
    return PasswordUsageError(f"stored password hash is not a valid argon2 hash{detail}")


@cache
def _dummy_hash() -> str:
    # a hash of a random password nobody knows, with the current parameters (so it costs what
    # a current user's hash costs); made at the first use rather than at import
    return _HASHER.hash(secrets.token_urlsafe(32))


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones (or is not
    argon2id): rehash the password at the next successful login."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError as error:
        raise _invalid_hash(error) from error
