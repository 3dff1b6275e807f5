"""Revisions and duplicates: the latest revision of a natural key wins.

The state per key is (revision, value). A record is
- NEW: first time this key is seen;
- DUPLICATE: same revision and value as what is known (a redelivery or a re-fetch): nothing new;
- CORRECTION: a higher revision with a different value: published, superseding the old one;
- UNCHANGED: a higher revision with the same value: state advances, nothing is published;
- STALE: a lower revision than known: late, ignored (the newer value already stands);
- CONFLICT: the same revision with a different value: the ISO broke its own versioning;
  kept out of the canonical stream and dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CORRECTION = "correction"
    UNCHANGED = "unchanged"
    STALE = "stale"
    CONFLICT = "conflict"


PUBLISH = frozenset({Decision.NEW, Decision.CORRECTION})


@dataclass(frozen=True)
class Known:
    revision: int
    value: tuple[Any, ...]


def decide(known: Known | None, revision: int, value: tuple[Any, ...]) -> Decision:
    if known is None:
        return Decision.NEW
    if revision < known.revision:
        return Decision.STALE
    if revision == known.revision:
        return Decision.DUPLICATE if value == known.value else Decision.CONFLICT
    return Decision.UNCHANGED if value == known.value else Decision.CORRECTION


def advance(known: Known | None, revision: int, value: tuple[Any, ...]) -> Known | None:
    """The state after a decision (None: unchanged)."""
    decision = decide(known, revision, value)
    if decision in (Decision.NEW, Decision.CORRECTION, Decision.UNCHANGED):
        return Known(revision, value)
    return None
