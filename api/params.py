"""Query parameters: parsed and checked once, each error naming its parameter."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.problems import bad_parameter
from schemas.vocabulary import ISOS, MARKETS

RESAMPLE: dict[str, timedelta | None] = {
    "5min": timedelta(minutes=5),
    "15min": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
    "1month": None,  # calendar months: not a fixed width
}
AGGREGATES = ("mean", "min", "max", "sum")
MAX_LIMIT = 50_000


def _code(name: str, what: str, codes: tuple[str, ...]) -> Callable[[str | None], str | None]:
    """The parser of query parameter `name`: the wire code it names in any case, or None when
    absent; an unknown code is refused."""

    def parse(value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if upper not in codes:
            raise bad_parameter(name, f"unknown {what} {value!r}; one of {', '.join(codes)}")
        return upper

    return parse


iso = _code("iso", "ISO", ISOS)
market = _code("market", "market", MARKETS)


def choice(value: str | None, name: str, *allowed: str) -> str | None:
    """`value` when absent or one of `allowed`; else refused, naming them ("a, b or c")."""
    if value is not None and value not in allowed:
        listed = " or ".join((", ".join(allowed[:-1]), allowed[-1]))
        raise bad_parameter(name, f"{value!r}; {listed}")
    return value


def instant(value: str | None, name: str) -> datetime | None:
    """ISO-8601 with `Z` or an offset (a naive time is UTC), or a date (UTC midnight)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == len("YYYY-MM-DD"):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+", 1))
    except ValueError:
        raise bad_parameter(
            name, f"{value!r} is not an ISO-8601 time (e.g. 2025-05-01T04:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def time_range(
    start: str | None, end: str | None, max_span: timedelta, *, required: bool = True
) -> TimeRange:
    """[start, end): both given, end after start, at most `max_span` for one request."""
    begin, finish = instant(start, "start"), instant(end, "end")
    if begin is None or finish is None:
        missing = "start" if begin is None else "end"
        raise bad_parameter(missing, "required (ISO-8601 time or date)")
    if finish <= begin:
        raise bad_parameter("end", f"{end} is not after start {start}")
    if finish - begin > max_span:
        days = (finish - begin) / timedelta(days=1)
        raise bad_parameter(
            "end",
            f"range of {days:.1f} days is more than one request serves "
            f"({max_span / timedelta(days=1):.0f} days); split it",
        )
    return TimeRange(begin, finish)


def limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise bad_parameter("limit", f"{value} is not within 1..{MAX_LIMIT}")
    return value


def resample(value: str | None, how: str) -> tuple[str, str] | None:
    if value is None:
        return None
    if value not in RESAMPLE:
        raise bad_parameter("resample", f"{value!r}; one of {', '.join(RESAMPLE)}")
    if how not in AGGREGATES:
        raise bad_parameter("agg", f"{how!r}; one of {', '.join(AGGREGATES)}")
    return value, how


def columns(value: str | None, available: tuple[str, ...], always: tuple[str, ...]) -> list[str]:
    """The selected columns (the key columns `always` come first), or all of them."""
    if not value:
        return list(available)
    chosen = [c.strip() for c in value.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise bad_parameter(
            "columns", f"unknown {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [*always, *(c for c in chosen if c not in always)]


def fingerprint(query: dict[str, Any]) -> str:
    """What a cursor is bound to: the query's parameters other than the cursor itself."""
    text = json.dumps(query, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(after: list[Any], query: dict[str, Any]) -> str:
    payload = json.dumps({"after": after, "q": fingerprint(query)}, default=str)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(value: str | None, query: dict[str, Any]) -> list[Any] | None:
    """The key after which the next page starts; a cursor of another query is refused."""
    if value is None:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, bound = payload["after"], payload["q"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_parameter("cursor", "not a cursor this API gave out") from None
    if bound != fingerprint(query) or not isinstance(after, list):
        raise bad_parameter("cursor", "belongs to another query (same parameters needed)")
    return after
