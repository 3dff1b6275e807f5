"""Queries of the usage read model (`usage_windows`, folded from `usage.windows` by
`projections.usage_models`), as the API and the operators ask them.

A range [start, end) takes the windows that start in it: a window is counted whole in the range
(and the UTC day) of its start, never split. Usage trails the requests by a window and its
lateness (`metered_through` says up to where it is counted). Every org-scoped query takes the
organisation as a parameter, so a row of another organisation is never returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

_SUMS = sql.SQL(
    "COALESCE(sum(requests), 0), COALESCE(sum(rows), 0), COALESCE(sum(bytes), 0),"
    " COALESCE(sum(dry_runs), 0)"
)


@dataclass(frozen=True)
class UsageTotals:
    """Requests that read data, their rows and response bytes, and dry runs (cost estimates,
    not billed)."""

    requests: int = 0
    rows: int = 0
    bytes: int = 0
    dry_runs: int = 0


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "usage_windows")


def _totals(row: tuple[Any, ...]) -> UsageTotals:
    return UsageTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def totals(
    conn: psycopg.Connection[Any], schema: str, org_id: str, start: datetime, end: datetime
) -> UsageTotals:
    """An organisation's usage over the windows starting in [start, end); zeros without any."""
    query = sql.SQL(
        "SELECT {sums} FROM {t} WHERE org_id = %s"
        " AND window_start_utc >= %s AND window_start_utc < %s"
    ).format(sums=_SUMS, t=_table(schema))
    row = conn.execute(query, (org_id, start, end)).fetchone()
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return _totals(row)


def daily(
    conn: psycopg.Connection[Any], schema: str, org_id: str, start: datetime, end: datetime
) -> list[tuple[date, UsageTotals]]:
    """An organisation's usage per UTC day (of the windows' starts) over the windows starting
    in [start, end), earliest first; only the days with a window."""
    query = sql.SQL(
        "SELECT (window_start_utc AT TIME ZONE 'UTC')::date AS day, {sums} FROM {t}"
        " WHERE org_id = %s AND window_start_utc >= %s AND window_start_utc < %s"
        " GROUP BY day ORDER BY day"
    ).format(sums=_SUMS, t=_table(schema))
    return [(row[0], _totals(row[1:])) for row in conn.execute(query, (org_id, start, end))]


def by_org(
    conn: psycopg.Connection[Any], schema: str, start: datetime, end: datetime
) -> list[tuple[str, UsageTotals]]:
    """Every organisation's usage over the windows starting in [start, end), by org_id; only
    organisations with a window there (for operators)."""
    query = sql.SQL(
        "SELECT org_id, {sums} FROM {t} WHERE window_start_utc >= %s AND window_start_utc < %s"
        " GROUP BY org_id ORDER BY org_id"
    ).format(sums=_SUMS, t=_table(schema))
    return [(str(row[0]), _totals(row[1:])) for row in conn.execute(query, (start, end))]


def metered_through(conn: psycopg.Connection[Any], schema: str, org_id: str) -> datetime | None:
    """End of the latest window of the organisation counted so far; None before its first."""
    query = sql.SQL(
        "SELECT window_end_utc FROM {t} WHERE org_id = %s ORDER BY window_start_utc DESC LIMIT 1"
    ).format(t=_table(schema))
    row = conn.execute(query, (org_id,)).fetchone()
    return row[0] if row is not None else None
