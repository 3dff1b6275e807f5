"""Where responses come from: the ISO's live API, or the simulator in the ISO's native format.

Both give the same thing, (name, bytes) responses for a window, so the poller, the backfill
worker and `optibid backfill` run the same code on either.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from connectors.simulate import Faults, Payload, SimRequest
from schemas.catalog import Dataset, Iso


class Source(Protocol):
    """Responses covering [start_utc, end_utc) of one dataset, in the ISO's native format.

    Raises connectors.errors.FetchError when the ISO cannot be reached after the retry policy.
    """

    def fetch(
        self, dataset: Dataset, start_utc: datetime, end_utc: datetime
    ) -> Iterator[Payload]: ...


@dataclass(frozen=True)
class SimulatedSource:
    """The simulator as a source: deterministic, so a re-fetch returns the same responses."""

    iso: Iso
    locations: int = 10
    seed: int = 7
    faults: Faults = field(default_factory=Faults)

    def fetch(self, dataset: Dataset, start_utc: datetime, end_utc: datetime) -> Iterator[Payload]:
        module = importlib.import_module(f"connectors.{self.iso.value}.simulate")
        request = SimRequest(dataset, start_utc, end_utc, self.locations, self.seed, self.faults)
        yield from module.simulate(request)
