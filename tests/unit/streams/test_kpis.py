"""KPI maths on small inline series; each edge-case row says why it is there."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from schemas.timeutil import day_bounds_utc, expected_intervals
from streams.kpis import (
    Interval,
    basis,
    da_rt_spread,
    day_kpis,
    is_on_peak,
    mean_abs,
    nerc_holidays,
    percentile_rank,
    twap,
)

H = timedelta(hours=1)


def hourly(iso: str, day: date, prices: list[float], **extra: float) -> dict[datetime, Interval]:
    start, _ = day_bounds_utc(iso, day)
    return {
        start + n * H: Interval(
            start + n * H, 60, price, extra.get("congestion"), extra.get("loss")
        )
        for n, price in enumerate(prices)
    }


def test_twap_weights_by_duration() -> None:
    t = datetime(2024, 6, 3, tzinfo=UTC)
    # a 60-minute interval at 10 and a 5-minute one at 130: the hour dominates
    assert twap([Interval(t, 60, 10.0), Interval(t + H, 5, 130.0)]) == pytest.approx(
        (600 + 650) / 65
    )


def test_fall_back_day_has_25_hours_and_counts_them_all() -> None:
    prices = [20.0 + n for n in range(25)]  # the repeated 1 AM is hour index 1 and 2
    k = day_kpis("PJM", date(2024, 11, 3), 60, hourly("PJM", date(2024, 11, 3), prices))
    assert (k.intervals_received, k.intervals_expected, k.completeness) == (25, 25, 1.0)
    assert k.twap == pytest.approx(sum(prices) / 25)
    assert k.max_lmp == 44.0


def test_spring_forward_day_has_23_hours() -> None:
    k = day_kpis("ERCOT", date(2024, 3, 10), 60, hourly("ERCOT", date(2024, 3, 10), [30.0] * 23))
    assert (k.intervals_received, k.intervals_expected, k.completeness) == (23, 23, 1.0)
    assert k.volatility == 0.0


def test_a_missing_interval_lowers_completeness_not_the_average() -> None:
    series = hourly("CAISO", date(2024, 7, 1), [40.0] * 24)
    del series[min(series)]  # hour ending 1 never arrived
    k = day_kpis("CAISO", date(2024, 7, 1), 60, series)
    assert k.intervals_received == 23
    assert k.completeness == pytest.approx(23 / 24)
    assert k.twap == 40.0


def test_a_revision_replaces_the_value_it_revises() -> None:
    series = hourly("PJM", date(2024, 3, 5), [28.348916] * 24)
    hour = sorted(series)[22]
    series[hour] = Interval(hour, 60, 40.164347)  # v2 of hour ending 23 replaces v1
    k = day_kpis("PJM", date(2024, 3, 5), 60, series)
    assert k.twap == pytest.approx((28.348916 * 23 + 40.164347) / 24)
    assert k.max_interval_start_utc == hour


def test_negative_prices_are_counted_and_shared() -> None:
    prices = [25.0] * 24
    prices[5:8] = [-11.372142, -8.894460, -40.306634]  # HE6-HE8 of the recorded 2024-06-16
    k = day_kpis("PJM", date(2024, 6, 16), 60, hourly("PJM", date(2024, 6, 16), prices))
    assert k.negative_intervals == 3
    assert k.negative_share == pytest.approx(3 / 24)
    assert k.min_lmp == -40.306634


def test_on_peak_excludes_weekends_holidays_and_night_hours() -> None:
    # Monday 2024-07-01: HE8 (07:00-08:00 EDT) is on-peak, HE7 and HE24 are not
    assert is_on_peak("PJM", datetime(2024, 7, 1, 11, tzinfo=UTC))  # 07:00 EDT, HE8
    assert not is_on_peak("PJM", datetime(2024, 7, 1, 10, tzinfo=UTC))  # 06:00 EDT, HE7
    assert not is_on_peak("PJM", datetime(2024, 7, 2, 3, tzinfo=UTC))  # 23:00 EDT, HE24
    assert not is_on_peak("PJM", datetime(2024, 7, 4, 15, tzinfo=UTC))  # Independence Day
    assert not is_on_peak("PJM", datetime(2024, 7, 6, 15, tzinfo=UTC))  # a Saturday


def test_a_holiday_day_is_all_off_peak() -> None:
    k = day_kpis("ERCOT", date(2024, 11, 28), 60, hourly("ERCOT", date(2024, 11, 28), [50.0] * 24))
    assert k.on_peak_avg is None  # Thanksgiving
    assert k.off_peak_avg == 50.0


def test_nerc_holidays_move_from_sunday_to_monday() -> None:
    assert date(2022, 12, 26) in nerc_holidays(2022)  # Christmas 2022 was a Sunday
    assert date(2021, 7, 5) in nerc_holidays(2021)  # July 4th 2021 was a Sunday
    assert date(2024, 5, 27) in nerc_holidays(2024)  # Memorial Day
    assert date(2024, 9, 2) in nerc_holidays(2024)  # Labor Day
    assert date(2024, 11, 28) in nerc_holidays(2024)  # Thanksgiving


def test_components_give_congestion_share_and_mean_loss() -> None:
    series = hourly("PJM", date(2024, 7, 1), [50.0] * 24, congestion=-5.0, loss=0.5)
    k = day_kpis("PJM", date(2024, 7, 1), 60, series)
    assert k.congestion_share == pytest.approx(0.1)
    assert k.mean_loss == 0.5


def test_spikes_use_the_threshold() -> None:
    prices = [30.0] * 24
    prices[17] = 2500.0  # an evening scarcity hour
    k = day_kpis(
        "ERCOT",
        date(2024, 8, 20),
        60,
        hourly("ERCOT", date(2024, 8, 20), prices),
        spike_threshold=1000,
    )
    assert k.spike_intervals == 1


def test_da_rt_spread_against_the_hourly_rt_average() -> None:
    t = datetime(2024, 6, 3, 14, tzinfo=UTC)
    da = {t: Interval(t, 60, 42.0)}
    rt = {
        t + n * timedelta(minutes=5): Interval(t + n * timedelta(minutes=5), 5, 30.0 + n)
        for n in range(12)
    }
    spread = da_rt_spread(da, rt)
    assert spread == {t: pytest.approx(42.0 - 35.5)}
    assert mean_abs(spread.values()) == pytest.approx(6.5)


def test_basis_and_benchmark_standing() -> None:
    assert basis(45.0, 40.0) == 5.0
    assert basis(None, 40.0) is None
    assert percentile_rank(30.0, [10.0, 20.0, 30.0, 40.0]) == 0.75


def test_day_kpis_agree_with_pandas_on_a_random_five_minute_day() -> None:
    rng = random.Random(11)
    starts = expected_intervals("CAISO", date(2024, 11, 3), 5)  # 25 hours, 300 intervals
    series = {s: Interval(s, 5, rng.uniform(-20, 200)) for s in starts if rng.random() > 0.02}
    k = day_kpis("CAISO", date(2024, 11, 3), 5, series)
    frame = pd.DataFrame({"lmp": [i.lmp for i in series.values()]})
    assert k.twap == pytest.approx(frame.lmp.mean())
    assert k.volatility == pytest.approx(frame.lmp.std(ddof=0))
    assert k.min_lmp == frame.lmp.min()
    assert k.negative_intervals == int((frame.lmp < 0).sum())
    assert k.intervals_expected == 300
