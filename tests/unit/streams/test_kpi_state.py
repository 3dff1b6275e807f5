"""The KPI stages' state: sets of latest values, deterministic revisions, idempotent under
redelivery and reordering, late data counted, state rebuilt after a restart."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.timeutil import day_bounds_utc
from streams.kpi_state import (
    DAY,
    HOUR,
    ISO_WIDE,
    BenchmarkKpis,
    KpiConfig,
    SeriesKpis,
    is_benchmark_input,
    natural_key,
)
from streams.kpis import Interval, day_kpis

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY_ = date(2024, 11, 3)  # PJM fall-back: 25 hours, 300 five-minute intervals


def lmp(
    location: str,
    start: datetime,
    price: float,
    *,
    revision: int = 1,
    market: str = "RT_5MIN",
    minutes: int = 5,
    iso: str = "PJM",
) -> dict[str, Any]:
    return {
        "iso": iso,
        "market": market,
        "location_id": location,
        "interval_start_utc": start,
        "interval_minutes": minutes,
        "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": price - 1.5,
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.5,
        "revision": revision,
        "recorded_at_utc": start + timedelta(minutes=minutes, seconds=40),
    }


def day_of_prices(location: str, day: date = DAY_, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start, end = day_bounds_utc("PJM", day)
    out, t = [], start
    while t < end:
        out.append(lmp(location, t, round(rng.uniform(-20, 120), 2)))
        t += timedelta(minutes=5)
    return out


def final(events: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """The last event per KPI natural key: what a compacted KPI topic ends with."""
    last: dict[str, tuple[Any, ...]] = {}
    for e in events:
        last[natural_key(e)] = (e["value"], e["intervals_received"], e["revision"], e["event_id"])
    return last


def feed(events: list[dict[str, Any]], flush_every: int = 7) -> dict[str, tuple[Any, ...]]:
    state, table, out = SeriesKpis(), {}, []  # type: ignore[var-annotated]
    for n, event in enumerate(events, start=1):
        state.observe(event, table)
        if n % flush_every == 0:
            out += state.flush(NOW)
    out += state.flush(NOW)
    return final(out)


def test_day_kpis_of_the_stream_equal_the_pure_maths_on_the_same_intervals() -> None:
    events = day_of_prices("51288")
    result = feed(events)
    start, _ = day_bounds_utc("PJM", DAY_)
    intervals = {
        e["interval_start_utc"]: Interval(
            e["interval_start_utc"], 5, e["lmp_usd_per_mwh"], 1.0, 0.5, e["recorded_at_utc"]
        )
        for e in events
    }
    expected = day_kpis("PJM", DAY_, 5, intervals)
    key = f"PJM|RT_5MIN|51288|{{}}|DAY|{start.isoformat()}"
    assert result[key.format("twap_lmp_usd_per_mwh")][0] == pytest.approx(expected.twap)
    assert result[key.format("volatility_usd_per_mwh")][0] == pytest.approx(expected.volatility)
    # the fall-back day: 300 intervals received of 300 expected, revision 1 each
    assert result[key.format("completeness")][:3] == (1.0, 300, 300)
    assert result[key.format("latency_p95_s")][0] == pytest.approx(40.0)
    # 25 hourly windows, each with 12 intervals
    hours = [k for k in result if "|HOUR|" in k and "|twap_lmp_usd_per_mwh|" in k]
    assert len(hours) == 25
    assert all(result[k][1] == 12 for k in hours)


DAY_FIGURES = {
    "twap_lmp_usd_per_mwh": "twap",
    "on_peak_avg_lmp_usd_per_mwh": "on_peak_avg",
    "off_peak_avg_lmp_usd_per_mwh": "off_peak_avg",
    "min_lmp_usd_per_mwh": "min_lmp",
    "max_lmp_usd_per_mwh": "max_lmp",
    "volatility_usd_per_mwh": "volatility",
    "negative_intervals": "negative_intervals",
    "negative_share": "negative_share",
    "spike_intervals": "spike_intervals",
    "congestion_share": "congestion_share",
    "mean_loss_usd_per_mwh": "mean_loss",
    "completeness": "completeness",
    "latency_p50_s": "latency_p50_s",
    "latency_p95_s": "latency_p95_s",
}


@pytest.mark.parametrize(
    ("iso", "day", "minutes", "edit"),
    [
        ("PJM", date(2024, 11, 3), 5, "none"),  # fall-back: 25 hours, 300 intervals
        ("ERCOT", date(2024, 3, 10), 15, "none"),  # spring-forward: 23 hours, 92 intervals
        ("PJM", date(2024, 7, 4), 60, "none"),  # Independence Day: all off-peak
        ("CAISO", date(2024, 6, 12), 5, "missing"),  # a missing interval: completeness < 1
        ("PJM", date(2024, 3, 5), 60, "revision"),  # HE23 revised to a new maximum
        ("ERCOT", date(2024, 5, 1), 15, "negative"),  # a run of negative prices and a spike
    ],
)
def test_stream_day_kpis_equal_the_pure_maths(iso: str, day: date, minutes: int, edit: str) -> None:
    start, end = day_bounds_utc(iso, day)
    rng = random.Random(f"{iso}{day}")
    events, t = [], start
    while t < end:
        events.append(lmp("X", t, round(rng.uniform(5, 90), 2), minutes=minutes, iso=iso))
        t += timedelta(minutes=minutes)
    if edit == "missing":
        del events[40]
    elif edit == "revision":
        events.append({**events[22], "lmp_usd_per_mwh": 400.0, "revision": 2})
    elif edit == "negative":
        for e in events[10:14]:
            e["lmp_usd_per_mwh"] = -25.0
        events[30]["lmp_usd_per_mwh"] = 2_500.0
    state, table = SeriesKpis(), {}  # type: ignore[var-annotated]
    for e in events:
        state.observe(e, table)
    got = {k.split("|")[3]: v for k, v in final(state.flush(NOW)).items() if "|DAY|" in k}
    latest = {
        e["interval_start_utc"]: Interval(
            e["interval_start_utc"], minutes, e["lmp_usd_per_mwh"], 1.0, 0.5, e["recorded_at_utc"]
        )
        for e in sorted(events, key=lambda e: e["revision"])
    }
    expected = day_kpis(iso, day, minutes, latest)
    for kpi, attribute in DAY_FIGURES.items():
        want = getattr(expected, attribute)
        assert got[kpi][0] == (None if want is None else pytest.approx(want)), kpi
    assert got["twap_lmp_usd_per_mwh"][1:2] == (expected.intervals_received,)
    assert expected.max_interval_start_utc is not None
    assert got["max_lmp_interval_start_unix_s"][0] == expected.max_interval_start_utc.timestamp()
    if edit == "revision":
        assert expected.max_lmp == 400.0


def test_a_revision_updates_its_window_with_a_higher_revision() -> None:
    state, table = SeriesKpis(), {}  # type: ignore[var-annotated]
    events = day_of_prices("51288")[:12]  # the first hour
    for e in events:
        state.observe(e, table)
    before = final(state.flush(NOW))
    revised = {**events[3], "lmp_usd_per_mwh": 999.0, "revision": 2}
    assert state.observe(revised, table) == "applied"
    assert state.observe(events[3], table) == "stale"  # the older revision, late
    after = final(state.flush(NOW))
    hour = (
        f"PJM|RT_5MIN|51288|max_lmp_usd_per_mwh|HOUR|{events[0]['interval_start_utc'].isoformat()}"
    )
    assert before[hour][2] == 12
    assert after[hour][:3] == (999.0, 12, 13)  # revision = sum of input revisions
    assert after[hour][3] != before[hour][3]  # a new event id


def test_redelivery_emits_nothing_new() -> None:
    state, table = SeriesKpis(), {}  # type: ignore[var-annotated]
    events = day_of_prices("51288")[:24]
    for e in events:
        state.observe(e, table)
    assert state.flush(NOW)
    assert [state.observe(e, table) for e in events] == ["duplicate"] * 24
    assert state.flush(NOW) == []


def test_data_later_than_the_grace_period_is_counted_not_applied() -> None:
    state, table = SeriesKpis(KpiConfig(grace=timedelta(hours=6))), {}  # type: ignore[var-annotated]
    old = lmp("51288", datetime(2024, 11, 1, 12, tzinfo=UTC), 30.0)
    new = lmp("51288", datetime(2024, 11, 3, 12, tzinfo=UTC), 31.0)
    state.observe(new, table)
    # the 1st ended on 2 Nov 04:00Z; the watermark is 3 Nov 12:05Z, past the end + 6 h
    assert state.observe(old, table) == "late"
    assert state.late == 1
    assert len(table) == 1


def test_closed_days_are_evicted_from_the_table() -> None:
    state, table = SeriesKpis(KpiConfig(grace=timedelta(hours=1))), {}  # type: ignore[var-annotated]
    state.observe(lmp("51288", datetime(2024, 11, 1, 12, tzinfo=UTC), 30.0), table)
    state.observe(lmp("51288", datetime(2024, 11, 5, 12, tzinfo=UTC), 31.0), table)
    assert list(table) == [
        f"PJM|RT_5MIN|51288|{int(datetime(2024, 11, 5, 12, tzinfo=UTC).timestamp())}"
    ]


def test_a_restart_rebuilds_the_windows_and_emits_the_same_final_events() -> None:
    events = day_of_prices("51288")[:60]
    state, table = SeriesKpis(), {}  # type: ignore[var-annotated]
    for e in events:
        state.observe(e, table)
    uninterrupted = final(state.flush(NOW))
    restarted = SeriesKpis()
    restarted.load(dict(table))
    assert final(restarted.flush(NOW)) == uninterrupted


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    revised=st.lists(st.integers(0, 95), max_size=6),
    flush_every=st.integers(1, 40),
)
def test_twice_or_shuffled_within_grace_equals_once_in_order(
    seed: int, revised: list[int], flush_every: int
) -> None:
    """Property: the same events fed twice, or shuffled (all within the grace period), end
    with the same KPI events (value, count, revision, id) as fed once in order."""
    events = day_of_prices("A", seed=seed)[:48] + day_of_prices("B", seed=seed + 1)[:48]
    events += [
        {**events[i], "lmp_usd_per_mwh": events[i]["lmp_usd_per_mwh"] + 7.0, "revision": 2}
        for i in sorted(set(revised))
    ]
    once = feed(events, flush_every)
    twice = feed(events + events, flush_every)
    shuffled = events[:]
    random.Random(seed).shuffle(shuffled)
    assert twice == once
    assert feed(shuffled, flush_every) == once


def series_kpi(
    location: str, market: str, kpi: str, kind: str, start: datetime, value: float, revision: int
) -> dict[str, Any]:
    return {
        "iso": "PJM",
        "market": market,
        "location_id": location,
        "kpi": kpi,
        "window_kind": kind,
        "window_start_utc": start,
        "value": value,
        "revision": revision,
    }


def test_benchmark_spread_basis_percentiles_and_median() -> None:
    state, table = BenchmarkKpis(), {}  # type: ignore[var-annotated]
    day = date(2025, 5, 1)
    start, _ = day_bounds_utc("PJM", day)
    h1 = start + timedelta(hours=1)
    twap = "twap_lmp_usd_per_mwh"
    prices = {  # location -> (DA hour 0, DA hour 1, RT hour 0, RT hour 1)
        "51288": (30.0, 32.0, 28.0, 35.0),  # the reference hub
        "A": (40.0, 41.0, 38.0, 45.0),
        "B": (20.0, 22.0, 25.0, 20.0),
    }
    for loc, (da0, da1, rt0, rt1) in prices.items():
        for market, v0, v1 in (("DA_HOURLY", da0, da1), ("RT_HOURLY", rt0, rt1)):
            state.observe(series_kpi(loc, market, twap, HOUR, start, v0, 1), table)
            state.observe(series_kpi(loc, market, twap, HOUR, h1, v1, 1), table)
            state.observe(series_kpi(loc, market, twap, DAY, start, (v0 + v1) / 2, 2), table)
    out = final(state.flush(NOW))
    s0 = start.isoformat()
    # DA minus RT per hour, and the daily mean absolute spread
    assert out[f"PJM|RT_HOURLY|A|da_rt_spread_usd_per_mwh|HOUR|{s0}"][0] == pytest.approx(2.0)
    assert out[f"PJM|RT_HOURLY|A|da_rt_spread_mean_abs_usd_per_mwh|DAY|{s0}"][0] == (
        pytest.approx((2.0 + 4.0) / 2)
    )
    # basis to the Western Hub, hourly and daily
    assert out[f"PJM|DA_HOURLY|B|basis_usd_per_mwh|HOUR|{s0}"][0] == pytest.approx(-10.0)
    assert out[f"PJM|RT_HOURLY|A|basis_usd_per_mwh|DAY|{s0}"][0] == pytest.approx(41.5 - 31.5)
    assert not any("|51288|basis" in k for k in out)
    # DA daily TWAPs: B 21 < hub 31 < A 40.5
    pct = {
        loc: out[f"PJM|DA_HOURLY|{loc}|{twap}_percentile|DAY|{s0}"][0]
        for loc in ("A", "B", "51288")
    }
    assert pct == {"A": 1.0, "B": pytest.approx(1 / 3), "51288": pytest.approx(2 / 3)}
    assert out[f"PJM|DA_HOURLY|{ISO_WIDE}|{twap}_iso_median|DAY|{s0}"][0] == 31.0
    assert out[f"PJM|DA_HOURLY|{ISO_WIDE}|{twap}_iso_median|DAY|{s0}"][2] == 6  # 3 x revision 2


def test_benchmark_takes_only_its_inputs_and_ignores_redelivery() -> None:
    state, table = BenchmarkKpis(), {}  # type: ignore[var-annotated]
    start = datetime(2025, 5, 1, 4, tzinfo=UTC)
    event = series_kpi("A", "DA_HOURLY", "twap_lmp_usd_per_mwh", DAY, start, 40.0, 24)
    other = series_kpi("A", "DA_HOURLY", "min_lmp_usd_per_mwh", DAY, start, 10.0, 24)
    assert [e for e in (event, other) if is_benchmark_input(e)] == [event]
    assert state.observe(other, table) == "ignored"
    assert state.observe(event, table) == "applied"
    assert state.observe(event, table) == "duplicate"
    assert len(table) == 1
    assert DAY in next(iter(table))
