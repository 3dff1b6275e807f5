"""The access tokens' signing keys in PostgreSQL: one key ring (`identity.tokens.KeyRing`),
beside the users' data keys in `identity.keystore.KEYS_SCHEMA`, never in a read-model schema.

`rotate` makes a new current key and keeps the previous ones the ring retains, so tokens
signed just before stay valid until they expire; the API publishes the ring's public keys at
`/.well-known/jwks.json`. Two rotations at once are serialised by a row lock. The private keys
are stored as PEM (wrapping them under a key-encryption key is not done yet).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from identity.keystore import KEYS_SCHEMA
from identity.tokens import KeyRing


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "signing_keys")


def ensure(conn: psycopg.Connection[Any], schema: str = KEYS_SCHEMA) -> None:
    """Create the schema and table when missing (idempotent)."""
    # IF NOT EXISTS still races another process creating it at the same moment
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id smallint PRIMARY KEY CHECK (id = 1),"
                " ring jsonb NOT NULL, updated_at_utc timestamptz NOT NULL DEFAULT now())"
            ).format(_table(schema))
        )


def load(conn: psycopg.Connection[Any], schema: str = KEYS_SCHEMA) -> KeyRing | None:
    """The ring, or None when none was made yet (or the table does not exist)."""
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."signing_keys"',)).fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT ring FROM {} WHERE id = 1").format(_table(schema))
    ).fetchone()
    return KeyRing.from_dict(row[0]) if row else None


def rotate(
    conn: psycopg.Connection[Any], now: datetime | None = None, schema: str = KEYS_SCHEMA
) -> KeyRing:
    """A new current key (the first ring, when there is none); returns the ring saved."""
    ensure(conn, schema)
    with conn.transaction():
        # two processes making the first ring at once: one inserts it; the other finds it
        # there and rotates it, keeping its key (none is lost)
        first = KeyRing.generate(now)
        inserted = conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, ring) VALUES (1, %s) ON CONFLICT (id) DO NOTHING RETURNING id"
            ).format(_table(schema)),
            (Jsonb(first.to_dict()),),
        ).fetchone()
        if inserted is not None:
            return first
        row = conn.execute(
            sql.SQL("SELECT ring FROM {} WHERE id = 1 FOR UPDATE").format(_table(schema))
        ).fetchone()
        assert row is not None  # there: the insert found it
        ring = KeyRing.from_dict(row[0])
        ring.rotate(now)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, ring) VALUES (1, %s) ON CONFLICT (id)"
                " DO UPDATE SET ring = excluded.ring, updated_at_utc = now()"
            ).format(_table(schema)),
            (Jsonb(ring.to_dict()),),
        )
    return ring
