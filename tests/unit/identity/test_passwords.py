"""The password policy (NIST SP 800-63B) and argon2id hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from identity import passwords
from identity.passwords import (
    DEFAULT_MIN_LENGTH,
    MAX_LENGTH,
    MEMORY_COST_KIB,
    PARALLELISM,
    TIME_COST,
    PasswordRejected,
    PasswordUsageError,
    Rule,
    check_password,
    hash_password,
    needs_rehash,
    normalise,
    verify_dummy,
    verify_password,
)

EMAIL = "alice.smith+optibid@acmepower.example"
ORGANISATION = "Acme Power"
CONTEXT = (EMAIL, ORGANISATION)


def full_width(text: str) -> str:
    """The text as a full-width (East Asian) keyboard types it; NFKC maps it back."""
    return "".join(
        chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else "\u3000" if char == " " else char
        for char in text
    )


def rejected_by(password: str, context: tuple[str, ...] = (), **options: int) -> Rule:
    with pytest.raises(PasswordRejected) as caught:
        check_password(password, context, **options)
    # the message says which rule, never the password
    assert password not in str(caught.value)
    assert normalise(password) not in str(caught.value)
    return caught.value.rule


@pytest.mark.parametrize(
    "password",
    [
        "violet tractor umbrella",
        "violettractorumbrella",  # no composition rules: lower case letters alone are fine
        "804219637512",  # and so are digits alone
        "Smithy-rides-the-ferry",  # a context word shorter than the minimum is not refused
        "x" * 11 + "y",
        "é" * 6 + "ñ" * 6,
    ],
)
def test_a_long_uncommon_password_is_accepted(password: str) -> None:
    check_password(password, CONTEXT)


def test_the_default_minimum_is_twelve_and_is_configurable() -> None:
    assert DEFAULT_MIN_LENGTH == 12
    assert rejected_by("rivercanoe7") == Rule.TOO_SHORT
    check_password("rivercanoe7x")
    check_password("rivercan", min_length=8)
    assert rejected_by("rivercanoe7xyz", min_length=15) == Rule.TOO_SHORT
    check_password("rivercanoe7xyzw", min_length=15)


def test_the_message_names_the_minimum() -> None:
    with pytest.raises(PasswordRejected, match="shorter than 12 characters"):
        check_password("short")


@pytest.mark.parametrize("min_length", [0, 7, 65])
def test_a_minimum_outside_nists_bounds_is_a_usage_error(min_length: int) -> None:
    with pytest.raises(
        PasswordUsageError, match=f"min_length must be between 8 and 64, not {min_length}"
    ):
        check_password("violet tractor umbrella", min_length=min_length)


def test_up_to_64_characters_are_accepted() -> None:
    assert MAX_LENGTH == 64
    longest = ("violet tractor umbrella " * 3)[:64]
    assert len(longest) == 64
    check_password(longest)
    assert rejected_by(longest + "s") == Rule.TOO_LONG


def test_full_width_text_normalises_to_ascii() -> None:
    assert full_width("Acme 1!") != "Acme 1!"
    assert normalise(full_width("Acme 1!")) == "Acme 1!"


def test_length_counts_code_points_after_nfkc() -> None:
    # the ligature "ﬃ" is one code point that NFKC spells as three letters: eleven code points
    # typed, thirteen checked
    assert len("raﬃnesse-fx") == 11
    assert normalise("raﬃnesse-fx") == "raffinesse-fx"
    check_password("raﬃnesse-fx")
    # a decomposed accent (e + combining acute) is composed into one code point
    assert len(normalise("cafe\u0301" * 3)) == 12


@pytest.mark.parametrize(
    "password",
    ["password1234", "PassWord1234", "QWERTY123456", "1q2w3e4r5t6y", full_width("password1234")],
)
def test_a_common_password_is_refused_whatever_its_case_or_width(password: str) -> None:
    assert rejected_by(password) == Rule.COMMON


def test_common_passwords_are_zxcvbns_list() -> None:
    common = passwords.common_passwords()
    assert len(common) == 30_000
    assert {"password", "qwerty", "dragon"} <= common
    assert all(word == word.casefold() for word in common)


def test_a_common_password_is_refused_under_a_lower_minimum() -> None:
    assert rejected_by("sunshine", min_length=8) == Rule.COMMON


@pytest.mark.parametrize(
    "password",
    [
        EMAIL,
        EMAIL.upper(),
        "my alice.smith+optibid password",  # the local part
        "Alice.Smith is my name",  # the local part without its +tag
        "xx-alice-smith-xx",  # punctuation does not hide it
        "acmepower2024!",  # the organisation without its space
        "ACME POWER forever",
        "we love Acme-Power",
    ],
)
def test_the_accounts_email_and_organisation_are_refused(password: str) -> None:
    assert rejected_by(password, CONTEXT) == Rule.CONTEXT


def test_context_words_are_compared_after_nfkc() -> None:
    assert rejected_by(full_width("ACME POWER") + " forever", CONTEXT) == Rule.CONTEXT


def test_a_short_local_part_is_not_refused_inside_a_password() -> None:
    check_password("join the river crew", ("jo@example.com",))
    assert rejected_by("jo@example.com", ("jo@example.com",), min_length=8) == Rule.CONTEXT


@pytest.mark.parametrize(
    "password", ["aaaaaaaaaaaa", "############", "abababababab", "123123123123", "zzzzzzzzzzzzz"]
)
def test_a_repeated_character_or_short_pattern_is_refused(password: str) -> None:
    assert rejected_by(password) == Rule.REPEATED


@pytest.mark.parametrize(
    "password",
    [
        "abcdefghijklm",
        "ZYXWVUTSRQPO",
        "lmnopqrstuvw",
        "xyzabcdefghi",  # wrapping round the alphabet
        "345678901234",  # digits wrap 9 -> 0
        "9876543210987",
        "qwertyuiopqw",
        "lkjhgfdsalkj",
        "αβγδεζηθικλμ",  # consecutive code points in any script
        "mnbvcxzmnbvc",
    ],
)
def test_an_obvious_sequence_is_refused(password: str) -> None:
    assert rejected_by(password) == Rule.SEQUENCE


def test_hashes_are_argon2id_with_the_named_parameters() -> None:
    encoded = hash_password("violet tractor umbrella")
    assert encoded.startswith(f"$argon2id$v=19$m={MEMORY_COST_KIB},t={TIME_COST},p={PARALLELISM}$")
    # OWASP's minimum for argon2id: 19 MiB, two passes, one lane
    assert MEMORY_COST_KIB >= 19 * 1024
    assert TIME_COST >= 2
    assert PARALLELISM >= 1
    assert "violet" not in encoded


def test_a_password_verifies_against_its_hash_only() -> None:
    encoded = hash_password("violet tractor umbrella")
    assert verify_password(encoded, "violet tractor umbrella") is True
    assert verify_password(encoded, "violet tractor umbrellA") is False
    assert verify_password(encoded, "") is False
    # a fresh salt each time
    assert hash_password("violet tractor umbrella") != encoded


def test_verification_normalises_as_hashing_does() -> None:
    composed = "caf\u00e9 au lait, s'il vous pla\u00eet"
    decomposed = "cafe\u0301 au lait, s'il vous plai\u0302t"
    assert composed != decomposed
    assert verify_password(hash_password(composed), decomposed)
    assert verify_password(hash_password(full_width("wide space text")), "wide space text")


def test_a_current_hash_needs_no_rehash_and_an_older_one_does() -> None:
    assert needs_rehash(hash_password("violet tractor umbrella")) is False
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    old = weaker.hash("violet tractor umbrella")
    assert needs_rehash(old) is True
    # an older hash still verifies, so the login can rehash it
    assert verify_password(old, "violet tractor umbrella") is True


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$2b$12$abcdefghijklmnopqrstuv",  # bcrypt
        "$argon2id$v=19$m=47104,t=2,p=1$c29tZXNhbHQ$AAAA",  # output cut short
    ],
)
def test_a_stored_value_that_is_no_argon2_hash_is_a_usage_error(stored: str) -> None:
    with pytest.raises(PasswordUsageError, match="stored password hash is not a valid argon2"):
        verify_password(stored, "violet tractor umbrella")


def test_needs_rehash_of_a_value_that_is_no_argon2_hash_is_a_usage_error() -> None:
    with pytest.raises(PasswordUsageError, match="stored password hash is not a valid argon2"):
        needs_rehash("not a hash")


def test_the_dummy_verification_says_no_at_the_cost_of_a_real_one() -> None:
    assert verify_dummy("violet tractor umbrella") is False
    assert verify_dummy("") is False
    # it verifies against a hash with the current parameters, so it costs what a user's costs
    dummy = passwords._dummy_hash()
    assert not needs_rehash(dummy)
    assert dummy == passwords._dummy_hash()
