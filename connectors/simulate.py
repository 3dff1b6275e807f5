"""The simulator's common model: deterministic prices, loads and faults, rendered by each ISO's
own simulate module into that ISO's native response format.

Every value is a pure function of (seed, ISO, series, interval, revision), so the same window
simulated twice, or in different chunks (as a backfill re-fetch does), gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.catalog import Dataset

Payload = tuple[str, bytes]


@dataclass(frozen=True)
class Faults:
    """Rates (0..1) of the ways real feeds go wrong."""

    missing_rate: float = 0.0  # rows left out of the response
    revision_rate: float = 0.0  # rows also published again, later, with a changed value
    duplicate_rate: float = 0.0  # rows repeated verbatim within a response
    negative_rate: float = 0.03  # intervals with a negative price
    spike_rate: float = 0.005  # intervals with a scarcity spike


@dataclass(frozen=True)
class SimRequest:
    dataset: Dataset
    start_utc: datetime  # inclusive
    end_utc: datetime  # exclusive
    locations: int = 10
    seed: int = 7
    faults: Faults = field(default_factory=Faults)


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from any key."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return float(struct.unpack(">Q", digest)[0] >> 11) / float(1 << 53)


def chance(rate: float, *parts: object) -> bool:
    return rate > 0 and unit("chance", *parts) < rate


@dataclass(frozen=True)
class PricePoint:
    lmp: float
    energy: float
    congestion: float
    loss: float


def price(
    seed: int,
    iso: str,
    location: int,
    start_utc: datetime,
    market: str,
    *,
    revision: int = 1,
    faults: Faults | None = None,
) -> PricePoint:
    """A plausible LMP with components: daily and seasonal shape, noise, negatives, spikes.

    Components are rounded so that energy + congestion + loss equals the LMP exactly.
    """
    faults = faults or Faults()
    hour = start_utc.hour + start_utc.minute / 60
    daily = 12 * math.sin((hour - 10) / 24 * 2 * math.pi) + 6 * math.sin((hour - 4) / 12 * math.pi)
    energy = 32 + daily + 6 * (unit(seed, iso, "sys", start_utc, market) - 0.5)
    if market != "DA_HOURLY":
        energy += 8 * (unit(seed, iso, "rt", start_utc) - 0.5)
    congestion = (
        4 * (unit(seed, iso, location, "cong", start_utc.date()) - 0.5) * (1 + location % 3)
    )
    loss = 0.02 * energy * (unit(seed, iso, location, "loss") - 0.5)
    if chance(faults.negative_rate, seed, iso, location, start_utc, market, "neg"):
        congestion -= energy + 25 * unit(seed, iso, location, start_utc, "negsize")
    if chance(faults.spike_rate, seed, iso, start_utc, market, "spike"):
        energy += 400 + 1500 * unit(seed, iso, start_utc, "spikesize")
    if revision > 1:
        energy += 0.75 * revision
    energy, congestion, loss = round(energy, 2), round(congestion, 2), round(loss, 2)
    return PricePoint(round(energy + congestion + loss, 2), energy, congestion, loss)


def load_mw(seed: int, iso: str, area: int, start_utc: datetime, base_mw: float) -> float:
    hour = start_utc.hour + start_utc.minute / 60
    shape = 1 + 0.18 * math.sin((hour - 12) / 24 * 2 * math.pi)
    return round(base_mw * shape * (0.97 + 0.06 * unit(seed, iso, area, start_utc)), 2)


def intervals(start_utc: datetime, end_utc: datetime, minutes: int) -> list[datetime]:
    step = timedelta(minutes=minutes)
    first = start_utc
    remainder = (first - first.replace(hour=0, minute=0, second=0, microsecond=0)) % step
    if remainder:
        first += step - remainder
    out = []
    current = first
    while current < end_utc:
        out.append(current)
        current += step
    return out
