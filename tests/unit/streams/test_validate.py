"""Validation rules, one failing record per rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.validate import PriceBounds, ValidationConfig, validate
from tests.unit.streams.factories import T0, raw_lmp

NOW = T0 + timedelta(hours=1)
CONFIG = ValidationConfig()


def codes(record: dict[str, object], dataset: str = "lmp_rt_5min") -> list[str]:
    return [f.code for f in validate(dataset, record, NOW, CONFIG)]


def test_a_good_record_passes() -> None:
    assert codes(raw_lmp()) == []


def test_negative_prices_are_valid() -> None:
    assert codes(raw_lmp(lmp=-40.31, components=(-20.0, -20.81, 0.5))) == []


@pytest.mark.parametrize(
    ("record", "dataset", "code"),
    [
        (
            raw_lmp(lmp=99_999.0, components=(99_997.5, 1.0, 0.5)),
            "lmp_rt_5min",
            "PRICE_OUT_OF_BOUNDS",
        ),
        (raw_lmp(lmp=30.0, components=(10.0, 1.0, 0.5)), "lmp_rt_5min", "COMPONENTS_MISMATCH"),
        (raw_lmp(start=T0 + timedelta(minutes=2)), "lmp_rt_5min", "MISALIGNED_INTERVAL"),
        (raw_lmp(start=T0 + timedelta(days=3)), "lmp_rt_5min", "BEYOND_HORIZON"),
        (raw_lmp(minutes=15), "lmp_rt_5min", "WRONG_CADENCE"),
        (raw_lmp(market="RT_HOURLY"), "lmp_rt_5min", "WRONG_MARKET"),
        (raw_lmp(iso="MISO"), "lmp_rt_5min", "UNKNOWN_ISO"),
        (raw_lmp(location_id="  "), "lmp_rt_5min", "EMPTY_LOCATION"),
    ],
)
def test_each_rule_names_its_failure(record: dict[str, object], dataset: str, code: str) -> None:
    failures = validate(dataset, record, NOW, CONFIG)
    assert code in [f.code for f in failures]
    assert all(f.message for f in failures)


def test_day_ahead_prices_may_be_for_tomorrow() -> None:
    tomorrow = raw_lmp(
        start=T0 + timedelta(hours=30), dataset="lmp_da_hourly", market="DA_HOURLY", minutes=60
    )
    assert codes(tomorrow, "lmp_da_hourly") == []


def test_partial_components_are_rejected() -> None:
    record = raw_lmp()
    record["loss_usd_per_mwh"] = None
    assert codes(record) == ["PARTIAL_COMPONENTS"]


def test_no_components_at_all_is_fine() -> None:
    record = raw_lmp(iso="ERCOT")
    record.update(energy_usd_per_mwh=None, congestion_usd_per_mwh=None, loss_usd_per_mwh=None)
    assert codes(record) == []


def test_bounds_are_configurable_per_iso() -> None:

    strict = ValidationConfig(bounds={"PJM": PriceBounds(0.0, 100.0)})
    record = raw_lmp(lmp=-5.0, components=(-6.0, 0.5, 0.5))
    assert [f.code for f in validate("lmp_rt_5min", record, NOW, strict)] == ["PRICE_OUT_OF_BOUNDS"]
