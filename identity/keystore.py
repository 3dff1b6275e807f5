"""The users' data keys in PostgreSQL: the `KeyStore` of `identity.vault` that production uses.

The keys live in a schema of their own, `KEYS_SCHEMA`, never in a read-model schema: read
models are dropped and rebuilt from the log at will, and a key rebuilt from the log cannot
exist (that is the point). Nothing derived from the log may ever truncate this table.

An erased key is deleted and the table vacuumed at once, so PostgreSQL stops keeping the dead
row (a vacuum marks its space free; the bytes may stay on the page until it is reused, and a
snapshot older than the delete keeps the row until it ends). WAL segments and base backups hold
it until they are recycled or expire; that bounds how long an erasure takes to be complete.
Wrapping the data keys under a key-encryption key held outside PostgreSQL would make the
erasure immediate everywhere; not done yet.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import sql

from identity.vault import KEY_BYTES

KEYS_SCHEMA = "identity_keys"


class PgKeyStore:
    """A `KeyStore` over PostgreSQL (`dsn`): one row per user, made on first use."""

    def __init__(self, dsn: str, schema: str = KEYS_SCHEMA) -> None:
        self.dsn = dsn
        self.schema = schema
        self._table = sql.Identifier(schema, "user_keys")

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)

    def ensure(self) -> None:
        """Create the schema and table when missing (idempotent)."""
        with self._connect() as conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (user_id text PRIMARY KEY, key bytea NOT NULL"
                    " CHECK (length(key) = {}), created_at_utc timestamptz NOT NULL DEFAULT now())"
                ).format(self._table, sql.Literal(KEY_BYTES))
            )

    def get(self, user_id: str) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                sql.SQL("SELECT key FROM {} WHERE user_id = %s").format(self._table), (user_id,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def create(self, user_id: str) -> bytes:
        """The user's key, made when there is none; two racing callers get the same one."""
        fresh = secrets.token_bytes(KEY_BYTES)
        with self._connect() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (user_id, key) VALUES (%s, %s) ON CONFLICT (user_id) DO NOTHING"
                ).format(self._table),
                (user_id, fresh),
            )
            row = conn.execute(
                sql.SQL("SELECT key FROM {} WHERE user_id = %s").format(self._table), (user_id,)
            ).fetchone()
        if row is None:  # erased between the insert and the read: a caller's race to settle
            raise LookupError(f"the key of {user_id} was erased while it was being made")
        return bytes(row[0])

    def erase(self, user_id: str) -> bool:
        with self._connect() as conn:
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE user_id = %s").format(self._table), (user_id,)
            ).rowcount
            if deleted:
                conn.execute(sql.SQL("VACUUM {}").format(self._table))
        return bool(deleted)
