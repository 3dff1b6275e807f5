"""TOTP (RFC 6238 / RFC 4226) and recovery codes."""

from __future__ import annotations

import base64
import hmac
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from identity.totp import (
    RECOVERY_ALPHABET,
    RECOVERY_CODE_LENGTH,
    OtpRejected,
    OtpUsageError,
    Refusal,
    code_at,
    hash_recovery_code,
    hotp,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    secret_bytes,
    time_step,
    use_recovery_code,
    verify,
)

# RFC 6238 Appendix B and RFC 4226 Appendix D: the 20-byte ASCII key "12345678901234567890"
RFC_KEY = b"12345678901234567890"
RFC_SECRET = base64.b32encode(RFC_KEY).decode("ascii")
NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc_6238_appendix_b_sha1_vectors(seconds: int, expected: str) -> None:
    assert code_at(RFC_SECRET, at(seconds), digits=8, period=30) == expected


def test_rfc_4226_appendix_d_hotp_values() -> None:
    expected = [
        "755224",
        "287082",
        "359152",
        "969429",
        "338314",
        "254676",
        "287922",
        "162583",
        "399871",
        "520489",
    ]
    assert [hotp(RFC_KEY, counter) for counter in range(10)] == expected


def test_six_digits_are_the_last_six_of_the_truncated_value() -> None:
    assert code_at(RFC_SECRET, at(59)) == "287082"


def test_the_code_depends_on_the_instant_not_its_time_zone() -> None:
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-6)))
    assert code_at(RFC_SECRET, elsewhere) == code_at(RFC_SECRET, NOW)
    assert time_step(elsewhere) == time_step(NOW)


def test_time_steps_are_whole_periods_since_the_epoch() -> None:
    assert time_step(at(0)) == 0
    assert time_step(at(29)) == 0
    assert time_step(at(30)) == 1
    assert time_step(at(59)) == 1
    assert time_step(at(20000000000)) == 666666666
    assert time_step(at(60), period=60) == 1


def test_a_naive_time_is_a_usage_error() -> None:
    with pytest.raises(OtpUsageError, match="time zone"):
        code_at(RFC_SECRET, datetime(2026, 3, 14, 15, 9, 26))


@pytest.mark.parametrize("digits", [5, 9])
def test_digits_outside_six_to_eight_are_a_usage_error(digits: int) -> None:
    with pytest.raises(OtpUsageError, match="between 6 and 8"):
        code_at(RFC_SECRET, NOW, digits=digits)


def test_a_new_secret_is_160_random_bits_in_unpadded_base32() -> None:
    secret = new_secret()
    assert re.fullmatch("[A-Z2-7]{32}", secret)
    assert len(secret_bytes(secret)) == 20
    assert new_secret() != secret


def test_a_secret_is_read_as_people_copy_it() -> None:
    assert secret_bytes(RFC_SECRET.lower()) == RFC_KEY
    spaced = " ".join(RFC_SECRET[i : i + 4] for i in range(0, len(RFC_SECRET), 4))
    assert secret_bytes(spaced) == RFC_KEY


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("0189" * 8, "not base32"),
        ("", "holds 0 bits"),
        ("JBSWY3DPEHPK3PXP", "holds 80 bits; at least 128"),
    ],
)
def test_a_bad_secret_is_a_usage_error(secret: str, message: str) -> None:
    with pytest.raises(OtpUsageError, match=message):
        code_at(secret, NOW)


def test_the_provisioning_uri_names_issuer_account_and_parameters() -> None:
    uri = provisioning_uri(RFC_SECRET, "alice@example.com", "OptiBid Energy")
    assert uri == (
        "otpauth://totp/OptiBid%20Energy:alice%40example.com"
        f"?secret={RFC_SECRET}&issuer=OptiBid%20Energy&algorithm=SHA1&digits=6&period=30"
    )
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parse_qs(parts.query) == {
        "secret": [RFC_SECRET],
        "issuer": ["OptiBid Energy"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_the_provisioning_uri_encodes_reserved_characters() -> None:
    uri = provisioning_uri(new_secret(), "a&b=c/d?é@x.org", "Acme #1")
    label, query = uri.removeprefix("otpauth://totp/").split("?")
    assert label == "Acme%20%231:a%26b%3Dc%2Fd%3F%C3%A9%40x.org"
    assert parse_qs(query)["issuer"] == ["Acme #1"]


@pytest.mark.parametrize(
    ("account", "issuer", "message"),
    [
        ("alice:admin", "OptiBid", "account must not contain ':'"),
        ("alice", "Opti:Bid", "issuer must not contain ':'"),
        ("", "OptiBid", "account must not be empty"),
        ("alice", " ", "issuer must not be empty"),
    ],
)
def test_a_label_the_uri_cannot_carry_is_a_usage_error(
    account: str, issuer: str, message: str
) -> None:
    with pytest.raises(OtpUsageError, match=message):
        provisioning_uri(RFC_SECRET, account, issuer)


def test_the_provisioning_uri_refuses_a_bad_secret() -> None:
    with pytest.raises(OtpUsageError, match="not base32"):
        provisioning_uri("not a secret!", "alice", "OptiBid")


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_of_one_step_either_side_of_now_is_accepted(offset: int) -> None:
    code = code_at(RFC_SECRET, NOW + timedelta(seconds=30 * offset))
    assert verify(RFC_SECRET, code, NOW, None) == time_step(NOW) + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_two_steps_away_is_wrong(offset: int) -> None:
    code = code_at(RFC_SECRET, NOW + timedelta(seconds=30 * offset))
    with pytest.raises(OtpRejected, match="code does not match") as caught:
        verify(RFC_SECRET, code, NOW, None)
    assert caught.value.reason == Refusal.WRONG


def test_a_window_of_zero_accepts_only_the_current_step() -> None:
    assert verify(RFC_SECRET, code_at(RFC_SECRET, NOW), NOW, None, window=0) == time_step(NOW)
    previous = code_at(RFC_SECRET, NOW - timedelta(seconds=30))
    with pytest.raises(OtpRejected):
        verify(RFC_SECRET, previous, NOW, None, window=0)


def test_a_negative_window_is_a_usage_error() -> None:
    with pytest.raises(OtpUsageError, match="window must not be negative"):
        verify(RFC_SECRET, "123456", NOW, None, window=-1)


def test_a_wrong_code_is_refused() -> None:
    accepted = {code_at(RFC_SECRET, NOW + timedelta(seconds=30 * k)) for k in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)
    with pytest.raises(OtpRejected) as caught:
        verify(RFC_SECRET, wrong, NOW, None)
    assert caught.value.reason == Refusal.WRONG


def test_a_code_works_once() -> None:
    code = code_at(RFC_SECRET, NOW)
    step = verify(RFC_SECRET, code, NOW, None)
    with pytest.raises(OtpRejected, match="already used") as caught:
        verify(RFC_SECRET, code, NOW, step)
    assert caught.value.reason == Refusal.REPLAYED
    # nor in the next step, while its own is still within the window
    assert time_step(NOW + timedelta(seconds=20)) == step + 1
    with pytest.raises(OtpRejected, match="already used"):
        verify(RFC_SECRET, code, NOW + timedelta(seconds=20), step)


def test_a_code_older_than_the_last_used_step_is_refused() -> None:
    later = verify(RFC_SECRET, code_at(RFC_SECRET, NOW), NOW, None)
    previous = code_at(RFC_SECRET, NOW - timedelta(seconds=30))
    with pytest.raises(OtpRejected) as caught:
        verify(RFC_SECRET, previous, NOW, later)
    assert caught.value.reason == Refusal.REPLAYED


def test_the_next_steps_code_is_accepted_after_the_current_one() -> None:
    step = verify(RFC_SECRET, code_at(RFC_SECRET, NOW), NOW, None)
    following = code_at(RFC_SECRET, NOW + timedelta(seconds=30))
    assert verify(RFC_SECRET, following, NOW, step) == step + 1


@pytest.mark.parametrize(
    "code",
    ["", "12345", "1234567", "12a456", "12345!", "+12345", "\u0661\u0662\u0663\u0664\u0665\u0666"],
)
def test_a_malformed_code_is_refused(code: str) -> None:
    with pytest.raises(OtpRejected, match="code is not 6 digits") as caught:
        verify(RFC_SECRET, code, NOW, None)
    assert caught.value.reason == Refusal.MALFORMED


def test_spaces_in_a_code_are_ignored() -> None:
    code = code_at(RFC_SECRET, NOW)
    assert verify(RFC_SECRET, f" {code[:3]} {code[3:]} ", NOW, None) == time_step(NOW)


def test_every_step_of_the_window_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[str] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    # the earliest step matches, and the later two are compared all the same
    verify(RFC_SECRET, code_at(RFC_SECRET, NOW - timedelta(seconds=30)), NOW, None)
    assert len(compared) == 3


def test_recovery_codes_are_distinct_readable_and_hold_50_bits_or_more() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", code)
    assert not set("01IO") & set(RECOVERY_ALPHABET)
    assert len(set(RECOVERY_ALPHABET)) == len(RECOVERY_ALPHABET) == 32
    assert RECOVERY_CODE_LENGTH * math.log2(len(RECOVERY_ALPHABET)) >= 50
    assert len(new_recovery_codes(3)) == 3


def test_recovery_codes_differ_between_sets() -> None:
    assert not set(new_recovery_codes()) & set(new_recovery_codes())


def test_a_non_positive_number_of_recovery_codes_is_a_usage_error() -> None:
    with pytest.raises(OtpUsageError, match="must be positive, not 0"):
        new_recovery_codes(0)


def test_recovery_codes_are_stored_salted_never_in_clear() -> None:
    code = new_recovery_codes(1)[0]
    stored = hash_recovery_code(code)
    assert re.fullmatch(r"sha256\$[0-9a-f]{32}\$[0-9a-f]{64}", stored)
    assert code not in stored
    assert code.replace("-", "") not in stored
    assert hash_recovery_code(code) != stored  # a fresh salt each time


def test_a_recovery_code_works_once() -> None:
    codes = new_recovery_codes()
    stored = [hash_recovery_code(code) for code in codes]
    remaining = use_recovery_code(codes[3], stored)
    assert remaining == stored[:3] + stored[4:]
    with pytest.raises(OtpRejected, match="not one of the unused codes") as caught:
        use_recovery_code(codes[3], remaining)
    assert caught.value.reason == Refusal.UNKNOWN_RECOVERY_CODE
    # the others still work, each once
    for code in codes[:3] + codes[4:]:
        remaining = use_recovery_code(code, remaining)
    assert remaining == []


def test_a_recovery_code_is_accepted_as_people_type_it() -> None:
    code = "7KQM-X3TD-9HRB"
    stored = [hash_recovery_code(code)]
    for typed in ("7kqm-x3td-9hrb", "7KQMX3TD9HRB", " 7kqm x3td 9hrb "):
        assert use_recovery_code(typed, stored) == []


def test_an_unknown_recovery_code_is_refused() -> None:
    stored = [hash_recovery_code(code) for code in new_recovery_codes()]
    with pytest.raises(OtpRejected):
        use_recovery_code("2222-2222-2222", stored)
    with pytest.raises(OtpRejected):
        use_recovery_code("7KQM-X3TD-9HRB", [])


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "7KQM-X3TD-9HRB",
        "md5$00112233445566778899aabbccddeeff$" + "00" * 32,
        "sha256$0011$" + "00" * 32,
        "sha256$00112233445566778899aabbccddeeff$zz",
    ],
)
def test_a_malformed_stored_recovery_hash_is_a_usage_error(stored: str) -> None:
    with pytest.raises(OtpUsageError, match="stored recovery code hash"):
        use_recovery_code("7KQM-X3TD-9HRB", [stored])
