"""The parser contract: one set of checks every (ISO, dataset) parser passes.

Each ISO's test module declares `CASES` (payloads: recorded ones from ../shared and edge cases
written in the ISO's format) and `MALFORMED` (inputs that must be rejected, with the message
expected). test_parser_contract.py runs the same checks over all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from schemas.catalog import Dataset, Iso

SHARED_ISO = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "iso"


def shared_file(*parts: str) -> Callable[[], tuple[str, bytes]]:
    """A loader of a recorded payload in ../shared; skips (saying why) where that is absent."""

    def load() -> tuple[str, bytes]:
        path = SHARED_ISO.joinpath(*parts)
        if not path.is_file():
            pytest.skip(f"recorded payload {path} not present (../shared is absent)")
        return path.name, path.read_bytes()

    return load


def inline(name: str, data: bytes | Callable[[], bytes]) -> Callable[[], tuple[str, bytes]]:
    """A loader of a payload written in the test (or built by a function, e.g. a zip)."""

    def load() -> tuple[str, bytes]:
        return name, data() if callable(data) else data

    return load


@dataclass(frozen=True)
class ParserCase:
    """One payload and what its parse must show."""

    id: str
    iso: Iso
    dataset: Dataset
    load: Callable[[], tuple[str, bytes]]
    expected_records: int | None = None
    # local operating days on which every series must have every interval exactly once
    complete_days: tuple[date, ...] = ()
    # LMP only: the ISO publishes energy/congestion/loss components in this payload
    has_components: bool = False
    # |energy + congestion + loss - lmp| allowed (rounding in the ISO's own file)
    component_tolerance: float = 0.011
    expect_negative: bool = False
    # some natural key appears with two or more revisions
    expect_revisions: bool = False
    expected_interval_minutes: int | None = None


@dataclass(frozen=True)
class MalformedCase:
    """A payload the parser must reject with a ParseError whose message matches `match`."""

    id: str
    iso: Iso
    dataset: Dataset
    load: Callable[[], tuple[str, bytes]]
    match: str
    notes: str = field(default="")
