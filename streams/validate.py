"""Validation of raw records: pure rules, each failure a (code, message naming field and value).

A record that fails goes to `dlq.<iso>.<dataset>` with every reason; one bad record never
stops the stream. A location never seen before is not a failure (ISOs add nodes all the time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.vocabulary import ISOS

MARKET_OF_DATASET = {
    "lmp_da_hourly": ("DA_HOURLY", 60),
    "lmp_rt_5min": ("RT_5MIN", 5),
    "lmp_rt_15min": ("RT_15MIN", 15),
    "lmp_rt_hourly": ("RT_HOURLY", 60),
}
CADENCES = frozenset({5, 15, 60})


@dataclass(frozen=True)
class PriceBounds:
    """Offer caps and floors: an LMP outside them is a parse or feed error, not a price."""

    floor_usd_per_mwh: float
    cap_usd_per_mwh: float


# Generous on purpose: shortage pricing and penalty factors push LMPs well past offer caps.
DEFAULT_BOUNDS: dict[str, PriceBounds] = {
    "PJM": PriceBounds(-2_000.0, 6_000.0),  # energy offer cap $1,000-2,000 plus shortage adders
    "CAISO": PriceBounds(-2_500.0, 3_500.0),  # bid floor -$150, penalty prices reach -$2,000s
    "ERCOT": PriceBounds(-300.0, 10_000.0),  # floor -$251, cap $5,000 plus ORDC/RDPA adders
}


@dataclass(frozen=True)
class ValidationConfig:
    bounds: Mapping[str, PriceBounds] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    component_tolerance_usd_per_mwh: float = 0.05
    # how far beyond "now" an interval may start: day-ahead markets clear tomorrow,
    # load forecasts reach a week out
    horizon: timedelta = timedelta(hours=2)
    day_ahead_horizon: timedelta = timedelta(days=2)
    forecast_horizon: timedelta = timedelta(days=8)
    max_load_mw: float = 500_000.0
    max_as_price_usd_per_mw_hour: float = 20_000.0


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


def _aligned(start: datetime, minutes: int) -> bool:
    return int(start.timestamp()) % (minutes * 60) == 0 and start.microsecond == 0


def validate(  # noqa: PLR0912 - one readable list of rules
    dataset: str, record: Mapping[str, Any], now: datetime, config: ValidationConfig
) -> list[Failure]:
    """Every rule the raw record of `dataset` breaks; an empty list means it is valid."""
    failures: list[Failure] = []
    iso = record.get("iso")
    if iso not in ISOS:
        failures.append(Failure("UNKNOWN_ISO", f"iso {iso!r} is not one of {sorted(ISOS)}"))
    if record.get("dataset") not in (None, dataset):
        failures.append(
            Failure("WRONG_DATASET", f"dataset {record.get('dataset')!r} on the {dataset} topic")
        )
    start: datetime = record["interval_start_utc"]
    minutes: int = record["interval_minutes"]
    expected = MARKET_OF_DATASET.get(dataset)
    if expected is not None:
        market, cadence = expected
        if record.get("market") != market:
            failures.append(
                Failure("WRONG_MARKET", f"market {record.get('market')!r}, {dataset} is {market}")
            )
        if minutes != cadence:
            failures.append(
                Failure("WRONG_CADENCE", f"interval_minutes {minutes}, {dataset} is {cadence}")
            )
    elif minutes not in CADENCES:
        failures.append(Failure("WRONG_CADENCE", f"interval_minutes {minutes} not in 5/15/60"))
    if minutes > 0 and not _aligned(start, minutes):
        failures.append(
            Failure(
                "MISALIGNED_INTERVAL",
                f"interval_start_utc {start.isoformat()} is not on a {minutes}-minute boundary",
            )
        )
    horizon = config.horizon
    if dataset == "lmp_da_hourly" or record.get("market") == "DA_HOURLY":
        horizon = config.day_ahead_horizon
    if record.get("load_kind") == "FORECAST":
        horizon = config.forecast_horizon
    if start > now + horizon:
        failures.append(
            Failure(
                "BEYOND_HORIZON",
                f"interval_start_utc {start.isoformat()} is more than {horizon} after now",
            )
        )
    if "lmp_usd_per_mwh" in record:
        failures += _price_rules(record, config)
    if "load_mw" in record:
        load = record["load_mw"]
        if not 0 <= load <= config.max_load_mw:
            failures.append(
                Failure("IMPOSSIBLE_LOAD", f"load_mw {load} outside 0..{config.max_load_mw}")
            )
    if "price_usd_per_mw_hour" in record:
        value = record["price_usd_per_mw_hour"]
        if not -config.max_as_price_usd_per_mw_hour <= value <= config.max_as_price_usd_per_mw_hour:
            failures.append(
                Failure("PRICE_OUT_OF_BOUNDS", f"price_usd_per_mw_hour {value} is impossible")
            )
    if not str(record.get("location_id", "x")).strip():
        failures.append(Failure("EMPTY_LOCATION", "location_id is empty"))
    return failures


def _price_rules(record: Mapping[str, Any], config: ValidationConfig) -> list[Failure]:
    failures = []
    lmp = record["lmp_usd_per_mwh"]
    bounds = config.bounds.get(record.get("iso", ""))
    if bounds and not bounds.floor_usd_per_mwh <= lmp <= bounds.cap_usd_per_mwh:
        failures.append(
            Failure(
                "PRICE_OUT_OF_BOUNDS",
                f"lmp_usd_per_mwh {lmp} outside {record['iso']} bounds"
                f" [{bounds.floor_usd_per_mwh}, {bounds.cap_usd_per_mwh}]",
            )
        )
    parts = [
        record.get("energy_usd_per_mwh"),
        record.get("congestion_usd_per_mwh"),
        record.get("loss_usd_per_mwh"),
    ]
    present = [p for p in parts if p is not None]
    if present and len(present) != len(parts):
        failures.append(Failure("PARTIAL_COMPONENTS", "some price components are null, some not"))
    elif present:
        gap = sum(present) - lmp
        if abs(gap) > config.component_tolerance_usd_per_mwh:
            failures.append(
                Failure(
                    "COMPONENTS_MISMATCH",
                    f"energy+congestion+loss = {sum(present):.5f} differs from lmp {lmp}"
                    f" by {gap:.5f} (tolerance {config.component_tolerance_usd_per_mwh})",
                )
            )
    return failures
