"""The parser contract: one set of checks every (ISO, dataset) parser passes.

Each ISO's test module declares `CASES` (payloads: recorded ones from ../shared and edge cases
written in the ISO's format) and `MALFORMED` (inputs that must be rejected, with the message
expected). test_parser_contract.py runs the same checks over all of them. A `Feed` builds the
cases of one (ISO, dataset) parser, so that each case names only what is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import Flag, auto
from pathlib import Path

import pytest

from schemas.catalog import Dataset, Iso

SHARED_ISO = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "iso"

Loader = Callable[[], tuple[str, bytes]]
Payload = bytes | Callable[[], bytes]  # the bytes, or a function that builds them (a zip, say)


def shared_file(*parts: str) -> Loader:
    """A loader of a recorded payload in ../shared; skips (saying why) where that is absent."""

    def load() -> tuple[str, bytes]:
        path = SHARED_ISO.joinpath(*parts)
        if not path.is_file():
            pytest.skip(f"recorded payload {path} not present (../shared is absent)")
        return path.name, path.read_bytes()

    return load


def inline(name: str, data: Payload) -> Loader:
    """A loader of a payload written in the test (or built by a function, e.g. a zip)."""

    def load() -> tuple[str, bytes]:
        return name, data() if callable(data) else data

    return load


def edited(data: bytes, old: str, new: str) -> bytes:
    """`data` with the first `old` replaced; fails loudly if the payload lacks it."""
    assert old.encode() in data, f"{old!r} not in the payload"
    return data.replace(old.encode(), new.encode(), 1)


class Shows(Flag):
    """What a payload's parse must show besides what every parse shows."""

    NOTHING = 0
    COMPONENTS = auto()  # LMP only: the ISO publishes energy/congestion/loss in this payload
    NEGATIVE = auto()  # some price (or generation) below zero
    REVISIONS = auto()  # some natural key appears with two or more revisions


@dataclass(frozen=True)
class Case:
    """One payload for the parser of `dataset` in `iso`."""

    id: str
    iso: Iso
    dataset: Dataset
    load: Loader


@dataclass(frozen=True)
class Expect:
    """What the parse of a payload must show, mostly written `Expect(records, days, shows)`."""

    # how many records
    records: int | None = None
    # local operating days on which every series must have every interval exactly once
    days: tuple[date, ...] = ()
    shows: Shows = Shows.NOTHING
    # the interval length of every record
    minutes: int | None = None
    # |energy + congestion + loss - lmp| allowed (rounding in the ISO's own file)
    component_tolerance: float = 0.011


@dataclass(frozen=True)
class ParserCase(Case):
    """A payload the parser reads, and what its parse must show."""

    expect: Expect = Expect()


@dataclass(frozen=True)
class MalformedCase(Case):
    """A payload the parser must reject with a ParseError whose message matches `match`."""

    match: str
    notes: str = ""


@dataclass(frozen=True)
class Feed:
    """One (ISO, dataset) parser, which builds its cases."""

    iso: Iso
    dataset: Dataset

    def parses(self, id: str, load: Loader, expect: Expect = Expect()) -> ParserCase:
        return ParserCase(id, self.iso, self.dataset, load, expect)

    def rejects(self, id: str, load: Loader, match: str, notes: str = "") -> MalformedCase:
        return MalformedCase(id, self.iso, self.dataset, load, match, notes)

    def rejects_each(self, name: str, *cases: tuple[str, Payload, str]) -> list[MalformedCase]:
        """Payloads to reject, each named `name`: (case id, payload, message matched) each."""
        return [self.rejects(id, inline(name, data), match) for id, data, match in cases]

    def rejects_edits(
        self, name: str, payload: bytes, *cases: tuple[str, str, str, str]
    ) -> list[MalformedCase]:
        """`payload` edited once for each case, named `name`: (case id, old, new, message)."""
        return [
            self.rejects(id, inline(name, edited(payload, old, new)), match)
            for id, old, new, match in cases
        ]
