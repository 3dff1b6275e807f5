"""Queries of the identity read models (tables `identity_*`, folded from `identity.events` and
`audit.events` by `projections.identity_models`), as the API asks them.

Every org-scoped query takes the organisation as a parameter: a row of another organisation is
never returned, whatever id is asked for (tenant isolation is in the query, not only in the
route)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Row = dict[str, Any]


def _table(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, f"identity_{name}")


def _rows(conn: psycopg.Connection[Any], query: sql.Composed, params: Any) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def _one(conn: psycopg.Connection[Any], query: sql.Composed, params: Any) -> Row | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def user_by_email(conn: psycopg.Connection[Any], schema: str, email: str) -> Row | None:
    """The user signing in with `email` (an erased user has no email any more)."""
    query = sql.SQL(
        "SELECT u.*, v.version FROM {u} u JOIN {v} v"
        " ON v.aggregate_type = 'user' AND v.aggregate_id = u.user_id"
        " WHERE u.email = %s AND NOT u.erased ORDER BY u.created_at LIMIT 1"
    ).format(u=_table(schema, "users"), v=_table(schema, "versions"))
    return _one(conn, query, (email,))


def user(conn: psycopg.Connection[Any], schema: str, user_id: str) -> Row | None:
    query = sql.SQL(
        "SELECT u.*, v.version FROM {u} u JOIN {v} v"
        " ON v.aggregate_type = 'user' AND v.aggregate_id = u.user_id WHERE u.user_id = %s"
    ).format(u=_table(schema, "users"), v=_table(schema, "versions"))
    return _one(conn, query, (user_id,))


def memberships(conn: psycopg.Connection[Any], schema: str, user_id: str) -> list[Row]:
    """The organisations of a user, earliest joined first."""
    query = sql.SQL(
        "SELECT m.org_id, o.name, m.role, m.since FROM {m} m JOIN {o} o USING (org_id)"
        " WHERE m.user_id = %s ORDER BY m.since, m.org_id"
    ).format(m=_table(schema, "memberships"), o=_table(schema, "organizations"))
    return _rows(conn, query, (user_id,))


def organization(conn: psycopg.Connection[Any], schema: str, org_id: str) -> Row | None:
    query = sql.SQL("SELECT org_id, name, created_at FROM {} WHERE org_id = %s").format(
        _table(schema, "organizations")
    )
    return _one(conn, query, (org_id,))


def members(conn: psycopg.Connection[Any], schema: str, org_id: str) -> list[Row]:
    query = sql.SQL(
        "SELECT m.user_id, u.email, u.display_name, m.role, m.since FROM {m} m"
        " JOIN {u} u USING (user_id) WHERE m.org_id = %s ORDER BY m.since, m.user_id"
    ).format(m=_table(schema, "memberships"), u=_table(schema, "users"))
    return _rows(conn, query, (org_id,))


def member(conn: psycopg.Connection[Any], schema: str, org_id: str, user_id: str) -> Row | None:
    query = sql.SQL(
        "SELECT m.user_id, u.email, u.display_name, m.role, m.since FROM {m} m"
        " JOIN {u} u USING (user_id) WHERE m.org_id = %s AND m.user_id = %s"
    ).format(m=_table(schema, "memberships"), u=_table(schema, "users"))
    return _one(conn, query, (org_id, user_id))


def invitations(conn: psycopg.Connection[Any], schema: str, org_id: str) -> list[Row]:
    query = sql.SQL(
        "SELECT invitation_id, email, role, expires_at, invited_by, created_at, accepted_by,"
        " accepted_at FROM {} WHERE org_id = %s ORDER BY created_at DESC, invitation_id"
    ).format(_table(schema, "invitations"))
    return _rows(conn, query, (org_id,))


def invitation(conn: psycopg.Connection[Any], schema: str, invitation_id: str) -> Row | None:
    query = sql.SQL("SELECT * FROM {} WHERE invitation_id = %s").format(
        _table(schema, "invitations")
    )
    return _one(conn, query, (invitation_id,))


def api_keys(conn: psycopg.Connection[Any], schema: str, org_id: str) -> list[Row]:
    query = sql.SQL(
        "SELECT key_id, name, prefix, role, scope, expires_at, created_by, created_at,"
        " revoked_at FROM {} WHERE org_id = %s ORDER BY created_at DESC, key_id"
    ).format(_table(schema, "api_keys"))
    return _rows(conn, query, (org_id,))


def api_key(conn: psycopg.Connection[Any], schema: str, org_id: str, key_id: str) -> Row | None:
    query = sql.SQL(
        "SELECT key_id, name, prefix, role, scope, expires_at, created_by, created_at,"
        " revoked_at FROM {} WHERE org_id = %s AND key_id = %s"
    ).format(_table(schema, "api_keys"))
    return _one(conn, query, (org_id, key_id))


def session(conn: psycopg.Connection[Any], schema: str, session_id: str) -> Row | None:
    query = sql.SQL("SELECT * FROM {} WHERE session_id = %s").format(_table(schema, "sessions"))
    return _one(conn, query, (session_id,))


def sessions(conn: psycopg.Connection[Any], schema: str, user_id: str, now: datetime) -> list[Row]:
    """A user's sessions that can still refresh: not ended, within their absolute and idle
    timeouts; the most recently used first."""
    query = sql.SQL(
        "SELECT session_id, org_id, amr, ip, user_agent, created_at, last_used_at, expires_at"
        " FROM {} WHERE user_id = %s AND revoked_at IS NULL AND expires_at > %s"
        " AND last_used_at + make_interval(secs => idle_timeout_s) > %s"
        " ORDER BY last_used_at DESC, session_id"
    ).format(_table(schema, "sessions"))
    return _rows(conn, query, (user_id, now, now))


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit(
    conn: psycopg.Connection[Any],
    schema: str,
    org_id: str,
    where: AuditFilter,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """One page of an organisation's audit log, newest first, and the cursor of the next."""
    conditions: list[sql.Composable] = [sql.SQL("org_id = %s")]
    params: list[Any] = [org_id]
    for column, value in (
        ("action", where.action),
        ("actor_id", where.actor_id),
        ("outcome", where.outcome),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if where.since is not None:
        conditions.append(sql.SQL("occurred_at >= %s"))
        params.append(where.since)
    if where.until is not None:
        conditions.append(sql.SQL("occurred_at < %s"))
        params.append(where.until)
    if cursor is not None:
        at, event_id = decode_cursor(cursor)
        conditions.append(sql.SQL("(occurred_at, event_id) < (%s, %s)"))
        params.extend([at, event_id])
    query = sql.SQL(
        "SELECT event_id, occurred_at, actor_id, actor_kind, ip, user_agent, action, outcome,"
        " target_type, target_id, detail FROM {} WHERE {} ORDER BY occurred_at DESC,"
        " event_id DESC LIMIT %s"
    ).format(_table(schema, "audit"), sql.SQL(" AND ").join(conditions))
    rows = _rows(conn, query, [*params, limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last["occurred_at"], last["event_id"])


def encode_cursor(at: datetime, event_id: str) -> str:
    raw = json.dumps([at.isoformat(), event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; ValueError for one this code did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, event_id = json.loads(raw)
        return datetime.fromisoformat(at), str(event_id)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cursor {cursor!r} is not one this API gave") from exc


def version(
    conn: psycopg.Connection[Any], schema: str, aggregate_type: str, aggregate_id: str
) -> int:
    """The aggregate version the read models have folded in (0: nothing yet)."""
    query = sql.SQL(
        "SELECT version FROM {} WHERE aggregate_type = %s AND aggregate_id = %s"
    ).format(_table(schema, "versions"))
    row = conn.execute(query, (aggregate_type, aggregate_id)).fetchone()
    return int(row[0]) if row is not None else 0


def sso_connection(conn: psycopg.Connection[Any], schema: str, connection_id: str) -> Row | None:
    query = sql.SQL("SELECT * FROM {} WHERE connection_id = %s").format(
        _table(schema, "sso_connections")
    )
    return _one(conn, query, (connection_id,))


def sso_connections(conn: psycopg.Connection[Any], schema: str, org_id: str) -> list[Row]:
    query = sql.SQL("SELECT * FROM {} WHERE org_id = %s ORDER BY connection_id").format(
        _table(schema, "sso_connections")
    )
    return _rows(conn, query, (org_id,))


def sso_for_domain(conn: psycopg.Connection[Any], schema: str, domain: str) -> list[Row]:
    """The connections that serve an email domain (at most one per organisation)."""
    query = sql.SQL(
        "SELECT c.*, o.name AS org_name FROM {c} c JOIN {o} o USING (org_id)"
        " WHERE %s = ANY (c.allowed_domains) ORDER BY c.connection_id"
    ).format(c=_table(schema, "sso_connections"), o=_table(schema, "organizations"))
    return _rows(conn, query, (domain,))


ACCOUNT_DEFAULT: Row = {
    "tier": "free",
    "plan": "free",
    "status": "none",
    "stripe_customer_id": None,
    "stripe_subscription_id": None,
    "period_start": None,
    "period_end": None,
    "grace_until": None,
}


def account(conn: psycopg.Connection[Any], schema: str, org_id: str) -> Row:
    """The organisation's account: tier, plan, subscription; the free tier where none exists."""
    query = sql.SQL("SELECT * FROM {a} WHERE org_id = %s").format(a=_table(schema, "accounts"))
    row = _one(conn, query, (org_id,))
    return row if row is not None else {"org_id": org_id, **ACCOUNT_DEFAULT}


def account_by_customer(conn: psycopg.Connection[Any], schema: str, customer_id: str) -> Row | None:
    query = sql.SQL("SELECT * FROM {a} WHERE stripe_customer_id = %s").format(
        a=_table(schema, "accounts")
    )
    return _one(conn, query, (customer_id,))


def tiers(conn: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    """Every organisation's tier that is not free (the API's tier cache reads this)."""
    query = sql.SQL("SELECT org_id, tier FROM {a} WHERE tier <> 'free'").format(
        a=_table(schema, "accounts")
    )
    return {str(r["org_id"]): str(r["tier"]) for r in _rows(conn, query, ())}


def past_due(conn: psycopg.Connection[Any], schema: str, now: datetime) -> list[Row]:
    """Accounts whose grace period after a failed payment has ended and that are not free."""
    query = sql.SQL(
        "SELECT org_id, grace_until FROM {a} WHERE status = 'past_due' AND grace_until <= %s"
        " AND tier <> 'free' ORDER BY grace_until"
    ).format(a=_table(schema, "accounts"))
    return _rows(conn, query, (now,))


def accounts(conn: psycopg.Connection[Any], schema: str) -> list[Row]:
    """Every organisation with its account (operators' view), by name."""
    query = sql.SQL(
        "SELECT o.org_id, o.name, COALESCE(a.tier, 'free') AS tier,"
        " COALESCE(a.plan, 'free') AS plan, COALESCE(a.status, 'none') AS status,"
        " a.period_end, a.grace_until FROM {o} o LEFT JOIN {a} a USING (org_id)"
        " ORDER BY o.name, o.org_id"
    ).format(o=_table(schema, "organizations"), a=_table(schema, "accounts"))
    return _rows(conn, query, ())


def feature_flags(conn: psycopg.Connection[Any], schema: str) -> list[Row]:
    query = sql.SQL("SELECT * FROM {f} ORDER BY flag").format(f=_table(schema, "feature_flags"))
    return _rows(conn, query, ())
