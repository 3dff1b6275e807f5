"""Sealed secrets: AES-256-GCM bound to user and purpose, lost with the user's key."""

from __future__ import annotations

import base64
import re

import pytest

from identity.vault import (
    KEY_BYTES,
    KeyStore,
    MemoryKeyStore,
    SecretCorrupt,
    SecretUnavailable,
    Vault,
    VaultUsageError,
    seal,
    unseal,
)

ALICE = "3f2a9c1e-0b7d-4e55-9a31-6c2f8d0e4b17"
BOB = "8c4d2b6a-1f3e-4a77-b5c9-0d1e2f3a4b5c"
SEED = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def store() -> KeyStore:
    return MemoryKeyStore()


@pytest.fixture
def key(store: KeyStore) -> bytes:
    return store.create(ALICE)


def test_a_data_key_is_32_random_bytes_made_once(store: KeyStore) -> None:
    assert KEY_BYTES == 32
    assert store.get(ALICE) is None
    key = store.create(ALICE)
    assert len(key) == 32
    assert store.create(ALICE) == key  # idempotent
    assert store.get(ALICE) == key
    assert store.create(BOB) != key


def test_erasing_deletes_the_key_once(store: KeyStore) -> None:
    store.create(ALICE)
    store.create(BOB)
    assert store.erase(ALICE) is True
    assert store.get(ALICE) is None
    assert store.erase(ALICE) is False
    assert store.get(BOB) is not None
    assert store.erase("never-seen") is False


@pytest.mark.parametrize("plaintext", [SEED, b"", bytes(range(256)), "é ✓".encode()])
def test_a_sealed_value_opens_to_its_plaintext(key: bytes, plaintext: bytes) -> None:
    sealed = seal(key, ALICE, "totp", plaintext)
    assert unseal(key, ALICE, "totp", sealed) == plaintext


def test_the_sealed_form_is_compact_versioned_ascii(key: bytes) -> None:
    sealed = seal(key, ALICE, "totp", SEED)
    assert sealed.isascii()
    version, nonce, ciphertext = sealed.split(".")
    assert version == "v1"
    assert re.fullmatch("[A-Za-z0-9_-]+", nonce + ciphertext)
    assert len(unb64(nonce)) == 12  # 96 bits
    assert len(unb64(ciphertext)) == len(SEED) + 16  # and the GCM tag
    assert b64(SEED) not in sealed
    assert SEED.decode() not in sealed


def test_two_seals_of_the_same_plaintext_differ(key: bytes) -> None:
    first, second = (seal(key, ALICE, "totp", SEED) for _ in range(2))
    assert first != second
    assert first.split(".")[1] != second.split(".")[1]  # a fresh nonce each time
    assert unseal(key, ALICE, "totp", first) == unseal(key, ALICE, "totp", second) == SEED


def test_a_value_does_not_open_for_another_user(store: KeyStore, key: bytes) -> None:
    sealed = seal(key, ALICE, "totp", SEED)
    # not with Alice's key under Bob's name, nor with Bob's own key
    with pytest.raises(SecretCorrupt, match=f"does not open for user '{BOB}'"):
        unseal(key, BOB, "totp", sealed)
    with pytest.raises(SecretCorrupt):
        unseal(store.create(BOB), BOB, "totp", sealed)


def test_a_value_does_not_open_for_another_purpose(key: bytes) -> None:
    sealed = seal(key, ALICE, "totp", SEED)
    with pytest.raises(SecretCorrupt, match="purpose 'recovery'"):
        unseal(key, ALICE, "recovery", sealed)


def test_user_and_purpose_cannot_trade_characters(key: bytes) -> None:
    sealed = seal(key, "user-a", "totp", SEED)
    with pytest.raises(SecretCorrupt):
        unseal(key, "user-at", "otp", sealed)


@pytest.mark.parametrize(("part", "index"), [(1, 0), (1, 11), (2, 0), (2, 20), (2, -1)])
def test_a_changed_byte_is_detected(key: bytes, part: int, index: int) -> None:
    parts = seal(key, ALICE, "totp", SEED).split(".")
    data = bytearray(unb64(parts[part]))
    data[index] ^= 0x01
    parts[part] = b64(bytes(data))
    with pytest.raises(SecretCorrupt, match="does not open"):
        unseal(key, ALICE, "totp", ".".join(parts))


def test_a_non_canonical_encoding_is_refused(key: bytes) -> None:
    # 4 bytes of plaintext and a 16-byte tag: 20 bytes, whose last base64 character carries
    # two unused bits; setting one spells the same bytes another way
    sealed = seal(key, ALICE, "totp", b"1234")
    last = sealed[-1]
    other = URLSAFE[URLSAFE.index(last) ^ 0x01]
    altered = sealed[:-1] + other
    assert unb64(altered.split(".")[2]) == unb64(sealed.split(".")[2])
    with pytest.raises(SecretCorrupt, match="canonical"):
        unseal(key, ALICE, "totp", altered)


def test_an_unknown_version_is_refused(key: bytes) -> None:
    sealed = seal(key, ALICE, "totp", SEED)
    with pytest.raises(SecretCorrupt, match="unknown format version 'v2'"):
        unseal(key, ALICE, "totp", "v2" + sealed[2:])


@pytest.mark.parametrize(
    ("sealed", "message"),
    [
        ("", "not of the form"),
        ("v1.AAAAAAAAAAAAAAAA", "not of the form"),
        ("v1.a.b.c", "not of the form"),
        ("v1.AAAAAAAAAAAAAAAA.!!!!", "base64url"),
        ("v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA==", "base64url"),
        ("v1.AAAA." + "A" * 22, "wrong length"),
        ("v1.AAAAAAAAAAAAAAAA.AAAA", "wrong length"),
    ],
)
def test_a_malformed_value_is_corrupt(key: bytes, sealed: str, message: str) -> None:
    with pytest.raises(SecretCorrupt, match=message):
        unseal(key, ALICE, "totp", sealed)


def test_without_a_key_the_secret_is_unavailable() -> None:
    sealed = seal(bytes(32), ALICE, "totp", SEED)
    with pytest.raises(SecretUnavailable, match="no data key for user"):
        unseal(None, ALICE, "totp", sealed)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_a_key_of_the_wrong_length_is_a_usage_error(length: int) -> None:
    with pytest.raises(VaultUsageError, match=f"data key must be 32 bytes, not {length}"):
        seal(bytes(length), ALICE, "totp", SEED)
    with pytest.raises(VaultUsageError):
        unseal(bytes(length), ALICE, "totp", "v1.AAAAAAAAAAAAAAAA." + "A" * 22)


@pytest.mark.parametrize(("user_id", "purpose"), [("", "totp"), (ALICE, "")])
def test_an_empty_user_or_purpose_is_a_usage_error(key: bytes, user_id: str, purpose: str) -> None:
    with pytest.raises(VaultUsageError, match="must not be empty"):
        seal(key, user_id, purpose, SEED)


def test_the_vault_seals_and_opens_per_user(store: KeyStore) -> None:
    vault = Vault(store)
    alices = vault.seal_for(ALICE, "totp", SEED)
    bobs = vault.seal_for(BOB, "totp", SEED)
    assert store.get(ALICE) is not None  # made at the first secret
    assert vault.open_for(ALICE, "totp", alices) == SEED
    assert vault.open_for(BOB, "totp", bobs) == SEED
    with pytest.raises(SecretCorrupt):
        vault.open_for(BOB, "totp", alices)


def test_after_erasure_the_users_secrets_are_unavailable_and_the_key_is_gone(
    store: KeyStore,
) -> None:
    vault = Vault(store)
    totp = vault.seal_for(ALICE, "totp", SEED)
    recovery = vault.seal_for(ALICE, "recovery", b"sha256$...")
    bobs = vault.seal_for(BOB, "totp", SEED)
    assert vault.erase(ALICE) is True
    assert store.get(ALICE) is None
    for purpose, sealed in (("totp", totp), ("recovery", recovery)):
        with pytest.raises(SecretUnavailable, match="erased"):
            vault.open_for(ALICE, purpose, sealed)
    assert vault.open_for(BOB, "totp", bobs) == SEED  # others are untouched
    assert vault.erase(ALICE) is False


def test_a_new_key_after_erasure_does_not_open_the_old_secrets(store: KeyStore) -> None:
    vault = Vault(store)
    old = vault.seal_for(ALICE, "totp", SEED)
    vault.erase(ALICE)
    new = vault.seal_for(ALICE, "totp", b"another seed")
    assert vault.open_for(ALICE, "totp", new) == b"another seed"
    with pytest.raises(SecretCorrupt):
        vault.open_for(ALICE, "totp", old)


def test_opening_for_a_user_without_a_key_makes_none(store: KeyStore) -> None:
    vault = Vault(store)
    sealed = seal(bytes(32), ALICE, "totp", SEED)
    with pytest.raises(SecretUnavailable):
        vault.open_for(ALICE, "totp", sealed)
    assert store.get(ALICE) is None
