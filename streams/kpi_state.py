"""KPI state, free of Faust: what the KPI agents keep and emit.

Two stages, each keeping sets of latest values (never running sums), so a redelivered event
changes nothing and a revised price replaces what it revises:

- `SeriesKpis` (per series, fed by `core.market.lmp`, partitioned like it): the latest value of
  every interval of each series' open local days; hourly and daily KPIs of one series (TWAP,
  on/off-peak, min/max and when, volatility, negatives, spikes, congestion share, loss,
  completeness, latency).
- `BenchmarkKpis` (per ISO, fed by the series stage's hourly and daily TWAPs and daily
  volatilities, repartitioned by ISO): what needs several series at once: DA minus RT spread,
  basis to the ISO's reference hub, each location's percentile within its ISO and market, and the
  ISO-wide median.

Both write their inputs through to a mapping the caller persists (a Faust table with a changelog)
and mark windows dirty; `flush()` recomputes the dirty windows and returns the KpiComputed events
whose inputs changed since last emitted. A KPI's revision is the sum of the revisions of its
inputs: it grows with every new or revised input and is the same whatever the arrival order.
Late data (a window closed longer ago than the grace period, in event time) is counted, not
applied. After a restart, `load()` marks every window dirty: what a crash may have kept from
being emitted is emitted again, under the same deterministic event ids.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.timeutil import day_bounds_utc, local_day
from streams.kpis import (
    Interval,
    day_kpis,
    percentile,
    percentile_rank,
    twap,
    volatility,
)

KPI_NAMESPACE = uuid.UUID("5b0f7c1e-2d3a-4e8b-9f60-7a1c2d3e4f50")
SERIES_SOURCE = "worker:kpi"
BENCHMARK_SOURCE = "worker:kpi-benchmark"
HOUR, DAY = "HOUR", "DAY"
DA = "DA_HOURLY"
RT_MARKETS = ("RT_5MIN", "RT_15MIN", "RT_HOURLY")
ISO_WIDE = "*"  # location_id of ISO-wide statistics

# Reference hubs for basis, by ISO: PJM Western Hub (pnode 51288), CAISO NP15, ERCOT North Hub.
DEFAULT_HUBS: dict[str, str] = {"PJM": "51288", "CAISO": "TH_NP15_GEN-APND", "ERCOT": "HB_NORTH"}
BENCHMARK_INPUTS = frozenset(
    {
        (HOUR, "twap_lmp_usd_per_mwh"),
        (DAY, "twap_lmp_usd_per_mwh"),
        (DAY, "volatility_usd_per_mwh"),
    }
)

UNITS = {
    "twap_lmp_usd_per_mwh": "usd_per_mwh",
    "on_peak_avg_lmp_usd_per_mwh": "usd_per_mwh",
    "off_peak_avg_lmp_usd_per_mwh": "usd_per_mwh",
    "min_lmp_usd_per_mwh": "usd_per_mwh",
    "max_lmp_usd_per_mwh": "usd_per_mwh",
    "max_lmp_interval_start_unix_s": "unix_seconds",
    "volatility_usd_per_mwh": "usd_per_mwh",
    "negative_intervals": "count",
    "negative_share": "share",
    "spike_intervals": "count",
    "congestion_share": "share",
    "mean_loss_usd_per_mwh": "usd_per_mwh",
    "completeness": "share",
    "latency_p50_s": "seconds",
    "latency_p95_s": "seconds",
    "da_rt_spread_usd_per_mwh": "usd_per_mwh",
    "da_rt_spread_mean_abs_usd_per_mwh": "usd_per_mwh",
    "basis_usd_per_mwh": "usd_per_mwh",
}


@dataclass(frozen=True)
class KpiConfig:
    grace: timedelta = timedelta(days=2)  # how long after its end a window still takes data
    spike_threshold_usd_per_mwh: float = 1_000.0
    hubs: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HUBS))


def unit_of(kpi: str) -> str:
    if kpi.endswith(("_percentile", "_share")):
        return "share"
    if kpi.endswith("_iso_median"):
        return unit_of(kpi.removesuffix("_iso_median"))
    return UNITS[kpi]


@dataclass(frozen=True)
class Window:
    kind: str  # HOUR or DAY
    start: datetime
    end: datetime

    @staticmethod
    def hour(start: datetime) -> Window:
        return Window(HOUR, start, start + timedelta(hours=1))

    @staticmethod
    def day(iso: str, day: date) -> Window:
        return Window(DAY, *day_bounds_utc(iso, day))


def kpi_event(
    iso: str,
    market: str,
    location_id: str,
    kpi: str,
    window: Window,
    value: float | None,
    *,
    received: int,
    expected: int,
    revision: int,
    occurred: datetime,
    now: datetime,
    source: str,
) -> dict[str, Any]:
    """A KpiComputed event; its id is deterministic in (natural key, revision)."""
    start = window.start
    identity = f"{iso}|{market}|{location_id}|{kpi}|{window.kind}|{start.isoformat()}|{revision}"
    return {
        "event_id": str(uuid.uuid5(KPI_NAMESPACE, identity)),
        "occurred_at_utc": occurred,
        "recorded_at_utc": now,
        "source": source,
        "schema_version": 1,
        "iso": iso,
        "market": market,
        "location_id": location_id,
        "kpi": kpi,
        "window_kind": window.kind,
        "window_start_utc": start,
        "window_end_utc": window.end,
        "value": value,
        "unit": unit_of(kpi),
        "intervals_received": received,
        "intervals_expected": expected,
        "revision": revision,
    }


def natural_key(event: Mapping[str, Any]) -> str:
    return (
        f"{event['iso']}|{event['market']}|{event['location_id']}|{event['kpi']}|"
        f"{event['window_kind']}|{event['window_start_utc'].isoformat()}"
    )


# One interval's latest value: lmp, congestion, loss, arrival (unix s), revision, minutes.
Point = tuple[float, float | None, float | None, float, int, int]


class Emitted:
    """What was emitted last per KPI natural key, grouped by (series or ISO, local day) so a
    closed day is forgotten at once: a window recomputed from the same inputs (same
    revision) is not emitted again."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, date], dict[str, tuple[float | None, int]]] = {}

    def changed(self, group: tuple[str, date], event: Mapping[str, Any]) -> bool:
        seen = self.last.setdefault(group, {})
        key = natural_key(event)
        value = (event["value"], event["revision"])
        if seen.get(key) == value:
            return False
        seen[key] = value
        return True

    def drop(self, group: tuple[str, date]) -> None:
        self.last.pop(group, None)


@dataclass
class SeriesKpis:
    """Per-series hourly and daily KPIs from the latest value of each interval."""

    config: KpiConfig = field(default_factory=KpiConfig)

    def __post_init__(self) -> None:
        # (series, local day) -> interval start (unix s) -> latest point
        self.days: dict[tuple[str, date], dict[int, Point]] = {}
        self.index: dict[str, set[date]] = {}  # series -> its days held
        self.watermark: dict[tuple[str, str], float] = {}  # (iso, market) -> latest end
        self.dirty_days: set[tuple[str, date]] = set()
        self.dirty_hours: set[tuple[str, int]] = set()
        self.emitted = Emitted()
        self.late = 0
        self.loaded = False

    @staticmethod
    def table_key(series: str, start: int) -> str:
        return f"{series}|{start}"

    def load(self, table: Mapping[str, Any]) -> None:
        """Rebuild the windows from the persisted inputs; every window is dirty again."""
        self.days.clear()
        self.index.clear()
        for key, point in table.items():
            if point is None:
                continue
            series, start = key.rsplit("|", 1)
            self._put(series, int(start), tuple(point))
        self.loaded = True

    def _put(self, series: str, start: int, point: Point) -> None:
        iso, market, _ = series.split("|", 2)
        instant = datetime.fromtimestamp(start, UTC)
        day = local_day(iso, instant)
        points = self.days.get((series, day))
        if points is None:
            points = self.days[(series, day)] = {}
            self.index.setdefault(series, set()).add(day)
        points[start] = point
        end = start + point[5] * 60
        mark = (iso, market)
        if end > self.watermark.get(mark, 0):
            self.watermark[mark] = end
        self.dirty_days.add((series, day))
        self.dirty_hours.add((series, start - start % 3600))

    def observe(self, event: Mapping[str, Any], table: MutableMapping[str, Any]) -> str:
        """Apply one canonical LMP event; returns applied, duplicate, stale or late."""
        if not self.loaded:
            self.load(table)
        iso, market = event["iso"], event["market"]
        series = f"{iso}|{market}|{event['location_id']}"
        instant: datetime = event["interval_start_utc"]
        start = int(instant.timestamp())
        minutes = int(event["interval_minutes"])
        day = local_day(iso, instant)
        _, day_end = day_bounds_utc(iso, day)
        mark = self.watermark.get((iso, market), 0)
        if day_end.timestamp() + self.config.grace.total_seconds() < mark:
            self.late += 1
            return "late"
        known = self.days.get((series, day), {}).get(start)
        revision = int(event["revision"])
        if known is not None and known[4] >= revision:
            return "duplicate" if known[4] == revision else "stale"
        point: Point = (
            float(event["lmp_usd_per_mwh"]),
            event["congestion_usd_per_mwh"],
            event["loss_usd_per_mwh"],
            event["recorded_at_utc"].timestamp(),
            revision,
            minutes,
        )
        self._put(series, start, point)
        table[self.table_key(series, start)] = list(point)
        self._evict(series, table)
        return "applied"

    def _evict(self, series: str, table: MutableMapping[str, Any]) -> None:
        """Drop the closed days of `series` (past the grace period): no data changes them."""
        iso, market, _ = series.split("|", 2)
        horizon = self.watermark.get((iso, market), 0) - self.config.grace.total_seconds()
        held = self.index.get(series, set())
        for day in sorted(held):
            _, end = day_bounds_utc(iso, day)
            if end.timestamp() >= horizon - 86_400:  # one more day: late data is counted first
                break
            held.discard(day)
            key = (series, day)
            for start in self.days.pop(key):
                table.pop(self.table_key(series, start), None)
            self.dirty_days.discard(key)
            self.emitted.drop(key)

    def flush(self, now: datetime) -> list[dict[str, Any]]:
        """KpiComputed events of the dirty windows whose values changed."""
        out: list[dict[str, Any]] = []
        for series, hour in sorted(self.dirty_hours):
            iso = series.split("|", 1)[0]
            group = (series, local_day(iso, datetime.fromtimestamp(hour, UTC)))
            out += [e for e in self._hour(series, hour, now) if self.emitted.changed(group, e)]
        for series, day in sorted(self.dirty_days):
            group = (series, day)
            out += [e for e in self._day(series, day, now) if self.emitted.changed(group, e)]
        self.dirty_hours.clear()
        self.dirty_days.clear()
        return out

    def _hour(self, series: str, hour: int, now: datetime) -> list[dict[str, Any]]:
        iso, market, location = series.split("|", 2)
        window = Window.hour(datetime.fromtimestamp(hour, UTC))
        points = self.days.get((series, local_day(iso, window.start)), {})
        inside = sorted((s, p) for s, p in points.items() if hour <= s < hour + 3600)
        if not inside:
            return []
        values = [_interval(s, p) for s, p in inside]
        expected = 60 // values[0].minutes
        figures: dict[str, float | None] = {
            "twap_lmp_usd_per_mwh": twap(values),
            "min_lmp_usd_per_mwh": min(i.lmp for i in values),
            "max_lmp_usd_per_mwh": max(i.lmp for i in values),
            "volatility_usd_per_mwh": volatility(values),
            "completeness": len(values) / expected,
        }
        revision = sum(p[4] for _, p in inside)
        occurred = max(i.end_utc for i in values)
        return [
            kpi_event(
                iso,
                market,
                location,
                kpi,
                window,
                value,
                received=len(values),
                expected=expected,
                revision=revision,
                occurred=occurred,
                now=now,
                source=SERIES_SOURCE,
            )
            for kpi, value in figures.items()
        ]

    def _day(self, series: str, day: date, now: datetime) -> list[dict[str, Any]]:
        iso, market, location = series.split("|", 2)
        points = self.days.get((series, day), {})
        if not points:
            return []
        latest = {datetime.fromtimestamp(s, UTC): _interval(s, p) for s, p in points.items()}
        minutes = next(iter(points.values()))[5]
        k = day_kpis(iso, day, minutes, latest, self.config.spike_threshold_usd_per_mwh)
        top = k.max_interval_start_utc
        figures: dict[str, float | None] = {
            "twap_lmp_usd_per_mwh": k.twap,
            "on_peak_avg_lmp_usd_per_mwh": k.on_peak_avg,
            "off_peak_avg_lmp_usd_per_mwh": k.off_peak_avg,
            "min_lmp_usd_per_mwh": k.min_lmp,
            "max_lmp_usd_per_mwh": k.max_lmp,
            "max_lmp_interval_start_unix_s": top.timestamp() if top else None,
            "volatility_usd_per_mwh": k.volatility,
            "negative_intervals": float(k.negative_intervals),
            "negative_share": k.negative_share,
            "spike_intervals": float(k.spike_intervals),
            "congestion_share": k.congestion_share,
            "mean_loss_usd_per_mwh": k.mean_loss,
            "completeness": k.completeness,
            "latency_p50_s": k.latency_p50_s,
            "latency_p95_s": k.latency_p95_s,
        }
        window = Window.day(iso, day)
        revision = sum(p[4] for p in points.values())
        occurred = max(i.end_utc for i in latest.values())
        return [
            kpi_event(
                iso,
                market,
                location,
                kpi,
                window,
                value,
                received=k.intervals_received,
                expected=k.intervals_expected,
                revision=revision,
                occurred=occurred,
                now=now,
                source=SERIES_SOURCE,
            )
            for kpi, value in figures.items()
        ]


def _interval(start: int, point: Point) -> Interval:
    lmp, congestion, loss, arrived, _, minutes = point
    return Interval(
        datetime.fromtimestamp(start, UTC),
        minutes,
        lmp,
        congestion,
        loss,
        datetime.fromtimestamp(arrived, UTC),
    )


# The benchmark stage's input: (kind, kpi, market, location, window start unix s) -> (value, rev)
InputKey = tuple[str, str, str, str, int]


@dataclass
class BenchmarkKpis:
    """KPIs across series of one ISO: DA-RT spread, basis to the hub, percentiles, medians."""

    config: KpiConfig = field(default_factory=KpiConfig)

    def __post_init__(self) -> None:
        self.groups: dict[tuple[str, date], dict[InputKey, tuple[float, int]]] = {}
        self.watermark: dict[str, float] = {}  # iso -> latest window end
        self.dirty: set[tuple[str, date]] = set()
        self.emitted = Emitted()
        self.late = 0
        self.loaded = False

    @staticmethod
    def table_key(iso: str, day: date, key: InputKey) -> str:
        return "|".join([iso, day.isoformat(), key[0], key[1], key[2], key[3], str(key[4])])

    def load(self, table: Mapping[str, Any]) -> None:
        self.groups.clear()
        for key, stored in table.items():
            if stored is None:
                continue
            iso, day, kind, kpi, market, location, start = key.split("|")
            self._put(
                iso, date.fromisoformat(day), (kind, kpi, market, location, int(start)), stored
            )
        self.loaded = True

    def _put(self, iso: str, day: date, key: InputKey, stored: Any) -> None:
        self.groups.setdefault((iso, day), {})[key] = (float(stored[0]), int(stored[1]))
        self.dirty.add((iso, day))
        _, end = day_bounds_utc(iso, day)
        self.watermark[iso] = max(self.watermark.get(iso, 0), end.timestamp())

    def observe(self, event: Mapping[str, Any], table: MutableMapping[str, Any]) -> str:
        """Apply one series KPI (hourly or daily TWAP, daily volatility)."""
        if not self.loaded:
            self.load(table)
        kind, kpi = event["window_kind"], event["kpi"]
        if (kind, kpi) not in BENCHMARK_INPUTS or event["value"] is None:
            return "ignored"
        iso = event["iso"]
        start: datetime = event["window_start_utc"]
        day = local_day(iso, start)
        _, day_end = day_bounds_utc(iso, day)
        if day_end.timestamp() + self.config.grace.total_seconds() < self.watermark.get(iso, 0):
            self.late += 1
            return "late"
        key: InputKey = (kind, kpi, event["market"], event["location_id"], int(start.timestamp()))
        known = self.groups.get((iso, day), {}).get(key)
        revision = int(event["revision"])
        if known is not None and known[1] >= revision:
            return "duplicate" if known[1] == revision else "stale"
        stored = [float(event["value"]), revision]
        self._put(iso, day, key, stored)
        table[self.table_key(iso, day, key)] = stored
        self._evict(iso, table)
        return "applied"

    def _evict(self, iso: str, table: MutableMapping[str, Any]) -> None:
        horizon = self.watermark.get(iso, 0) - self.config.grace.total_seconds() - 86_400
        for group in [g for g in self.groups if g[0] == iso]:
            _, end = day_bounds_utc(iso, group[1])
            if end.timestamp() < horizon:
                for key in self.groups.pop(group):
                    table.pop(self.table_key(iso, group[1], key), None)
                self.dirty.discard(group)
                self.emitted.drop(group)

    def flush(self, now: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for group in sorted(self.dirty):
            out += [e for e in self._group(*group, now) if self.emitted.changed(group, e)]
        self.dirty.clear()
        return out

    def _group(self, iso: str, day: date, now: datetime) -> list[dict[str, Any]]:
        hours: dict[tuple[str, str], dict[int, tuple[float, int]]] = defaultdict(dict)
        daily: dict[tuple[str, str, str], tuple[float, int]] = {}  # (kpi, market, location)
        for (kind, kpi, market, location, start), stored in self.groups.get((iso, day), {}).items():
            if kind == HOUR:
                hours[(market, location)][start] = stored
            else:
                daily[(kpi, market, location)] = stored
        group = _Group(iso, Window.day(iso, day), now)
        spreads = group.spreads(hours)
        group.basis(hours, daily, self.config.hubs.get(iso))
        group.benchmarks(daily, spreads)
        return group.out


@dataclass
class _Group:
    """The benchmark KPIs of one ISO's local day, collected in `out`."""

    iso: str
    day: Window
    now: datetime
    out: list[dict[str, Any]] = field(default_factory=list)

    def emit(
        self,
        market: str,
        location: str,
        kpi: str,
        window: Window,
        value: float | None,
        revision: int,
        received: int = 1,
        expected: int = 1,
    ) -> None:
        self.out.append(
            kpi_event(
                self.iso,
                market,
                location,
                kpi,
                window,
                value,
                received=received,
                expected=expected,
                revision=revision,
                occurred=window.end,
                now=self.now,
                source=BENCHMARK_SOURCE,
            )
        )

    def spreads(
        self, hours: Mapping[tuple[str, str], Mapping[int, tuple[float, int]]]
    ) -> dict[tuple[str, str], tuple[float, int]]:
        """DA minus RT per hour, and its daily mean absolute value, per RT market; returns
        the daily means by (RT market, location)."""
        n_hours = int((self.day.end - self.day.start) / timedelta(hours=1))
        means: dict[tuple[str, str], tuple[float, int]] = {}
        for (market, location), rt in hours.items():
            da = hours.get((DA, location))
            if market not in RT_MARKETS or not da:
                continue
            values, revision = [], 0
            for hour in sorted(set(da) & set(rt)):
                spread, rev = da[hour][0] - rt[hour][0], da[hour][1] + rt[hour][1]
                window = Window.hour(datetime.fromtimestamp(hour, UTC))
                self.emit(market, location, "da_rt_spread_usd_per_mwh", window, spread, rev)
                values.append(abs(spread))
                revision += rev
            if values:
                mean = statistics.fmean(values)
                means[(market, location)] = (mean, revision)
                self.emit(
                    market,
                    location,
                    "da_rt_spread_mean_abs_usd_per_mwh",
                    self.day,
                    mean,
                    revision,
                    received=len(values),
                    expected=n_hours,
                )
        return means

    def basis(
        self,
        hours: Mapping[tuple[str, str], Mapping[int, tuple[float, int]]],
        daily: Mapping[tuple[str, str, str], tuple[float, int]],
        hub: str | None,
    ) -> None:
        """Location minus the ISO's reference hub, same market, hourly and daily."""
        if hub is None:
            return
        for (market, location), series in hours.items():
            reference = hours.get((market, hub))
            if not reference or location == hub:
                continue
            for hour in sorted(set(series) & set(reference)):
                window = Window.hour(datetime.fromtimestamp(hour, UTC))
                value = series[hour][0] - reference[hour][0]
                revision = series[hour][1] + reference[hour][1]
                self.emit(market, location, "basis_usd_per_mwh", window, value, revision)
        for (kpi, market, location), (value, revision) in daily.items():
            ref = daily.get((kpi, market, hub))
            if kpi != "twap_lmp_usd_per_mwh" or ref is None or location == hub:
                continue
            self.emit(
                market, location, "basis_usd_per_mwh", self.day, value - ref[0], revision + ref[1]
            )

    def benchmarks(
        self,
        daily: Mapping[tuple[str, str, str], tuple[float, int]],
        spreads: Mapping[tuple[str, str], tuple[float, int]],
    ) -> None:
        """Each location's percentile within its ISO and market, and the ISO-wide median, for
        daily TWAP, volatility and mean absolute DA-RT spread."""
        populations: dict[tuple[str, str], dict[str, tuple[float, int]]] = defaultdict(dict)
        for (kpi, market, location), stored in daily.items():
            populations[(kpi, market)][location] = stored
        for (market, location), stored in spreads.items():
            populations[("da_rt_spread_mean_abs_usd_per_mwh", market)][location] = stored
        for (kpi, market), members in sorted(populations.items()):
            values = [v for v, _ in members.values()]
            revision = sum(r for _, r in members.values())
            size = len(values)
            for location, (value, _) in sorted(members.items()):
                rank = percentile_rank(value, values)
                self.emit(
                    market, location, f"{kpi}_percentile", self.day, rank, revision, size, size
                )
            median = percentile(values, 0.5)
            self.emit(market, ISO_WIDE, f"{kpi}_iso_median", self.day, median, revision, size, size)


def benchmark_inputs(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The series KPIs the benchmark stage consumes."""
    return [e for e in events if (e["window_kind"], e["kpi"]) in BENCHMARK_INPUTS]
