"""The users' data keys in the stack's PostgreSQL: made once however many ask at the same time,
and erased for good, after which the user's sealed secrets cannot be opened."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from identity.keystore import PgKeyStore
from identity.vault import KEY_BYTES, SecretUnavailable, Vault
from optibid.settings import Settings
from projections.migrate import drop_schema


@pytest.fixture
def store(stack_settings: Settings, test_id: str) -> Iterator[PgKeyStore]:
    keys = PgKeyStore(stack_settings.postgres_dsn, schema=f"{test_id}_keys")
    keys.ensure()
    keys.ensure()  # idempotent
    yield keys
    drop_schema(stack_settings.postgres_dsn, keys.schema)


def test_a_key_is_made_once_even_when_many_ask_at_once(store: PgKeyStore) -> None:
    assert store.get("u1") is None
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: store.create("u1"), range(16)))
    assert len(keys) == 1
    [key] = keys
    assert len(key) == KEY_BYTES
    assert store.get("u1") == key
    assert store.create("u1") == key
    assert store.create("u2") != key


def test_an_erased_users_secrets_cannot_be_opened_and_others_still_can(
    store: PgKeyStore, stack_settings: Settings
) -> None:
    vault = Vault(store)
    sealed = vault.seal_for("u1", "totp", b"JBSWY3DPEHPK3PXP")
    other = vault.seal_for("u2", "totp", b"another seed")
    assert vault.open_for("u1", "totp", sealed) == b"JBSWY3DPEHPK3PXP"
    assert store.erase("u1") is True
    assert store.erase("u1") is False
    with pytest.raises(SecretUnavailable):
        vault.open_for("u1", "totp", sealed)
    assert vault.open_for("u2", "totp", other) == b"another seed"
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        rows = conn.execute(f'SELECT user_id FROM "{store.schema}".user_keys ORDER BY 1').fetchall()
    assert rows == [("u2",)]


def test_a_key_of_the_wrong_length_is_refused_by_the_table(
    store: PgKeyStore, stack_settings: Settings
) -> None:
    with (
        psycopg.connect(stack_settings.postgres_dsn) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(
            f'INSERT INTO "{store.schema}".user_keys (user_id, key) VALUES (%s, %s)',
            ("x", b"short"),
        )
