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

import contextlib
import math
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar, cast

from schemas.envelope import envelope
from schemas.timeutil import day_bounds_utc, local_day
from schemas.vocabulary import RT_MARKETS, series_key
from streams.kpis import is_on_peak, percentile, percentile_rank

KPI_NAMESPACE = uuid.UUID("5b0f7c1e-2d3a-4e8b-9f60-7a1c2d3e4f50")
SERIES_SOURCE = "worker:kpi"
BENCHMARK_SOURCE = "worker:kpi-benchmark"
HOUR, DAY = "HOUR", "DAY"
DA = "DA_HOURLY"
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
    series = series_key(iso, market, location_id)
    identity = f"{series}|{kpi}|{window.kind}|{start.isoformat()}|{revision}"
    return {
        **envelope(
            event_id=str(uuid.uuid5(KPI_NAMESPACE, identity)),
            occurred_at_utc=occurred,
            recorded_at_utc=now,
            source=source,
        ),
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
    series = series_key(event["iso"], event["market"], event["location_id"])
    return f"{series}|{event['kpi']}|{event['window_kind']}|{event['window_start_utc'].isoformat()}"


class Revised(NamedTuple):
    """A benchmark input or result: its value and the revision that sums its inputs'. The
    `kpi_benchmark` table holds an input as a list in this order."""

    value: float
    revision: int


class Point(NamedTuple):
    """One interval's latest value. The `kpi_inputs` table holds it as a list in this order."""

    lmp: float
    congestion: float | None
    loss: float | None
    recorded_at: float  # arrival, unix seconds
    revision: int
    minutes: int


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


K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """`compute(key)` remembered per key; all of it forgotten at once past `limit` keys, so
    the memo never outgrows a few days' worth of hours, whatever the uptime."""

    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        self.compute = compute
        self.limit = limit
        self.known: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        value = self.known.get(key, _MISSING)
        if value is _MISSING:
            if len(self.known) > self.limit:
                self.known.clear()
            value = self.known[key] = self.compute(key)
        return cast(V, value)


_MISSING: Any = object()


class Calendar:
    """Cached local-calendar facts per ISO and UTC hour (every interval of an hour shares
    them; a market's thousand series share the hour): local day, day bounds, on-peak."""

    def __init__(self) -> None:
        self._day = BoundedMemo[tuple[str, int], date](
            lambda k: local_day(k[0], datetime.fromtimestamp(k[1], UTC)), 100_000
        )
        self._bounds = BoundedMemo[tuple[str, date], tuple[float, float]](
            lambda k: _timestamps(day_bounds_utc(*k)), 10_000
        )
        self._peak = BoundedMemo[tuple[str, int], bool](
            lambda k: is_on_peak(k[0], datetime.fromtimestamp(k[1], UTC)), 100_000
        )

    def day(self, iso: str, hour: int) -> date:
        return self._day((iso, hour))

    def bounds(self, iso: str, day: date) -> tuple[float, float]:
        return self._bounds((iso, day))

    def on_peak(self, iso: str, hour: int) -> bool:
        return self._peak((iso, hour))


def _timestamps(bounds: tuple[datetime, datetime]) -> tuple[float, float]:
    return bounds[0].timestamp(), bounds[1].timestamp()


@dataclass
class HourSummary:
    """What the KPIs of a day need from one of its hours, recomputed from the hour's set of
    latest values whenever it changes (never updated incrementally)."""

    count: int
    minutes: int  # interval length
    weighted: float  # sum of lmp x minutes
    weight: int  # sum of minutes
    sum_sq: float  # sum of lmp^2 (volatility)
    total: float  # sum of lmp
    low: float
    high: float
    high_start: int  # earliest interval holding the high
    negatives: int
    spikes: int
    abs_lmp_with_components: float
    abs_congestion: float
    with_components: int
    loss: float
    with_loss: int
    revision: int
    occurred: int  # latest interval end
    latencies: list[float]
    on_peak: bool

    @staticmethod
    def of(points: Mapping[int, Point], on_peak: bool, spike: float) -> HourSummary:
        items = sorted(points.items())
        lmps = [p.lmp for _, p in items]
        minutes = items[0][1].minutes
        high = max(lmps)
        summary = HourSummary(
            count=len(items),
            minutes=minutes,
            weighted=sum(p.lmp * p.minutes for _, p in items),
            weight=sum(p.minutes for _, p in items),
            sum_sq=sum(v * v for v in lmps),
            total=sum(lmps),
            low=min(lmps),
            high=high,
            high_start=next(s for s, p in items if p.lmp == high),
            negatives=sum(1 for v in lmps if v < 0),
            spikes=sum(1 for v in lmps if v > spike),
            abs_lmp_with_components=0.0,
            abs_congestion=0.0,
            with_components=0,
            loss=0.0,
            with_loss=0,
            revision=sum(p.revision for _, p in items),
            occurred=max(s + p.minutes * 60 for s, p in items),
            latencies=[p.recorded_at - (s + p.minutes * 60) for s, p in items],
            on_peak=on_peak,
        )
        for _, p in items:
            if p.congestion is not None:
                summary.with_components += 1
                summary.abs_congestion += abs(p.congestion)
                summary.abs_lmp_with_components += abs(p.lmp)
            if p.loss is not None:
                summary.with_loss += 1
                summary.loss += p.loss
        return summary


@dataclass
class SeriesKpis:
    """Per-series hourly and daily KPIs from the latest value of each interval."""

    config: KpiConfig = field(default_factory=KpiConfig)

    def __post_init__(self) -> None:
        # (series, UTC hour start) -> interval start (unix s) -> latest point
        self.hours: dict[tuple[str, int], dict[int, Point]] = {}
        self.summaries: dict[tuple[str, int], HourSummary] = {}
        # (series, local day) -> its hours held; series -> its days held
        self.days: dict[tuple[str, date], set[int]] = {}
        self.index: dict[str, set[date]] = {}
        self.watermark: dict[tuple[str, str], float] = {}  # (iso, market) -> latest end
        self.dirty_hours: set[tuple[str, int]] = set()
        self.dirty_days: set[tuple[str, date]] = set()  # hours summarised, day not emitted
        self.emitted = Emitted()
        self.calendar = Calendar()
        self.late = 0
        self.loaded = False

    @staticmethod
    def table_key(series: str, start: int) -> str:
        return f"{series}|{start}"

    def load(self, table: Mapping[str, Any]) -> None:
        """Rebuild the windows from the persisted inputs; every window is dirty again."""
        self.hours.clear()
        self.summaries.clear()
        self.days.clear()
        self.index.clear()
        self.dirty_days.clear()
        for key, point in table.items():
            if point is None:
                continue
            series, start = key.rsplit("|", 1)
            self._put(series, int(start), Point(*point))
        self.loaded = True

    def _put(self, series: str, start: int, point: Point) -> None:
        iso, market, _ = series.split("|", 2)
        hour = start - start % 3600
        points = self.hours.get((series, hour))
        if points is None:
            points = self.hours[(series, hour)] = {}
            day = self.calendar.day(iso, hour)
            held = self.days.get((series, day))
            if held is None:
                held = self.days[(series, day)] = set()
                self.index.setdefault(series, set()).add(day)
            held.add(hour)
        points[start] = point
        end = start + point.minutes * 60
        mark = (iso, market)
        if end > self.watermark.get(mark, 0):
            self.watermark[mark] = end
        self.dirty_hours.add((series, hour))

    def observe(self, event: Mapping[str, Any], table: MutableMapping[str, Any]) -> str:
        """Apply one canonical LMP event; returns applied, duplicate, stale or late."""
        if not self.loaded:
            self.load(table)
        iso, market = event["iso"], event["market"]
        series = series_key(iso, market, event["location_id"])
        start = int(event["interval_start_utc"].timestamp())
        hour = start - start % 3600
        _, day_end = self.calendar.bounds(iso, self.calendar.day(iso, hour))
        if day_end + self.config.grace.total_seconds() < self.watermark.get((iso, market), 0):
            self.late += 1
            return "late"
        known = self.hours.get((series, hour), {}).get(start)
        revision = int(event["revision"])
        if known is not None and known.revision >= revision:
            return "duplicate" if known.revision == revision else "stale"
        point = Point(
            float(event["lmp_usd_per_mwh"]),
            event["congestion_usd_per_mwh"],
            event["loss_usd_per_mwh"],
            event["recorded_at_utc"].timestamp(),
            revision,
            int(event["interval_minutes"]),
        )
        new_hour = (series, hour) not in self.hours
        self._put(series, start, point)
        table[self.table_key(series, start)] = list(point)
        if new_hour:
            self._evict(series, table)
        return "applied"

    def _evict(self, series: str, table: MutableMapping[str, Any]) -> None:
        """Drop the closed days of `series` (past the grace period): no data changes them."""
        iso, market, _ = series.split("|", 2)
        horizon = self.watermark.get((iso, market), 0) - self.config.grace.total_seconds()
        held = self.index.get(series, set())
        for day in sorted(held):
            _, end = self.calendar.bounds(iso, day)
            if end >= horizon - 86_400:  # one more day: late data is counted first
                break
            held.discard(day)
            key = (series, day)
            for hour in self.days.pop(key, set()):
                for start in self.hours.pop((series, hour), {}):
                    _forget(table, self.table_key(series, start))
                self.summaries.pop((series, hour), None)
                self.dirty_hours.discard((series, hour))
            self.dirty_days.discard(key)
            self.emitted.drop(key)

    def flush(self, now: datetime, days: bool = True) -> list[dict[str, Any]]:
        """KpiComputed events of the dirty windows whose inputs changed: the hours, and with
        `days` the days (a day's KPIs cost a day's worth of events, so a caller under load
        fires them less often than the hours)."""
        out: list[dict[str, Any]] = []
        spike = self.config.spike_threshold_usd_per_mwh
        for series, hour in sorted(self.dirty_hours):
            points = self.hours.get((series, hour))
            if not points:
                continue
            iso = series.split("|", 1)[0]
            summary = HourSummary.of(points, self.calendar.on_peak(iso, hour), spike)
            self.summaries[(series, hour)] = summary
            group = (series, self.calendar.day(iso, hour))
            self.dirty_days.add(group)
            events = self._hour(series, hour, summary, now)
            out += [e for e in events if self.emitted.changed(group, e)]
        self.dirty_hours.clear()
        if days:
            for group in sorted(self.dirty_days):
                out += [e for e in self._day(*group, now) if self.emitted.changed(group, e)]
            self.dirty_days.clear()
        return out

    def _hour(self, series: str, hour: int, h: HourSummary, now: datetime) -> list[dict[str, Any]]:
        window = Window.hour(datetime.fromtimestamp(hour, UTC))
        expected = 60 // h.minutes
        mean = h.total / h.count
        figures: dict[str, float | None] = {
            "twap_lmp_usd_per_mwh": h.weighted / h.weight,
            "min_lmp_usd_per_mwh": h.low,
            "max_lmp_usd_per_mwh": h.high,
            "volatility_usd_per_mwh": _pstdev(h.sum_sq, mean, h.count),
            "completeness": h.count / expected,
        }
        occurred = datetime.fromtimestamp(h.occurred, UTC)
        return _series_events(
            series, window, figures, (h.count, expected, h.revision), occurred, now
        )

    def _day(self, series: str, day: date, now: datetime) -> list[dict[str, Any]]:
        iso = series.split("|", 1)[0]
        hours = [
            self.summaries[(series, hour)]
            for hour in sorted(self.days.get((series, day), ()))
            if (series, hour) in self.summaries
        ]
        if not hours:
            return []
        count = sum(h.count for h in hours)
        mean = sum(h.total for h in hours) / count
        on = [h for h in hours if h.on_peak]
        off = [h for h in hours if not h.on_peak]
        high = max(hours, key=lambda h: (h.high, -h.high_start))
        negatives = sum(h.negatives for h in hours)
        components = sum(h.with_components for h in hours)
        abs_lmp = sum(h.abs_lmp_with_components for h in hours)
        losses = sum(h.with_loss for h in hours)
        latencies = [v for h in hours for v in h.latencies]
        start, end = self.calendar.bounds(iso, day)
        expected = int((end - start) // (hours[0].minutes * 60))
        figures: dict[str, float | None] = {
            "twap_lmp_usd_per_mwh": _twap(hours),
            "on_peak_avg_lmp_usd_per_mwh": _twap(on),
            "off_peak_avg_lmp_usd_per_mwh": _twap(off),
            "min_lmp_usd_per_mwh": min(h.low for h in hours),
            "max_lmp_usd_per_mwh": high.high,
            "max_lmp_interval_start_unix_s": float(high.high_start),
            "volatility_usd_per_mwh": _pstdev(sum(h.sum_sq for h in hours), mean, count),
            "negative_intervals": float(negatives),
            "negative_share": negatives / count,
            "spike_intervals": float(sum(h.spikes for h in hours)),
            "congestion_share": (
                (sum(h.abs_congestion for h in hours) / components) / (abs_lmp / components)
                if components and abs_lmp
                else None
            ),
            "mean_loss_usd_per_mwh": (sum(h.loss for h in hours) / losses if losses else None),
            "completeness": count / expected if expected else 0.0,
            "latency_p50_s": percentile(latencies, 0.5),
            "latency_p95_s": percentile(latencies, 0.95),
        }
        window = Window.day(iso, day)
        revision = sum(h.revision for h in hours)
        occurred = datetime.fromtimestamp(max(h.occurred for h in hours), UTC)
        return _series_events(series, window, figures, (count, expected, revision), occurred, now)


def _series_events(
    series: str,
    window: Window,
    figures: Mapping[str, float | None],
    counts: tuple[int, int, int],  # intervals received, intervals expected, revision
    occurred: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """The KpiComputed events of one series' window, one per figure."""
    iso, market, location = series.split("|", 2)
    received, expected, revision = counts
    return [
        kpi_event(
            iso,
            market,
            location,
            kpi,
            window,
            value,
            received=received,
            expected=expected,
            revision=revision,
            occurred=occurred,
            now=now,
            source=SERIES_SOURCE,
        )
        for kpi, value in figures.items()
    ]


def _forget(table: MutableMapping[str, Any], key: str) -> None:
    """Delete without reading first (a batching table may not hold this batch's values yet)."""
    with contextlib.suppress(KeyError):
        del table[key]


def _twap(hours: Iterable[HourSummary]) -> float | None:
    weighted = weight = 0.0
    for h in hours:
        weighted += h.weighted
        weight += h.weight
    return weighted / weight if weight else None


def _pstdev(sum_sq: float, mean: float, count: int) -> float:
    """Population standard deviation from the sum of squares (clamped at 0 against rounding)."""
    return math.sqrt(max(sum_sq / count - mean * mean, 0.0))


# The benchmark stage's input: (kind, kpi, market, location, window start unix s) -> (value, rev)
InputKey = tuple[str, str, str, str, int]


@dataclass
class BenchmarkKpis:
    """KPIs across series of one ISO: DA-RT spread, basis to the hub, percentiles, medians."""

    config: KpiConfig = field(default_factory=KpiConfig)

    def __post_init__(self) -> None:
        self.groups: dict[tuple[str, date], dict[InputKey, Revised]] = {}
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
        self.groups.setdefault((iso, day), {})[key] = Revised(float(stored[0]), int(stored[1]))
        self.dirty.add((iso, day))
        _, end = day_bounds_utc(iso, day)
        self.watermark[iso] = max(self.watermark.get(iso, 0), end.timestamp())

    def observe(self, event: Mapping[str, Any], table: MutableMapping[str, Any]) -> str:
        """Apply one series KPI (hourly or daily TWAP, daily volatility)."""
        if not self.loaded:
            self.load(table)
        if not is_benchmark_input(event) or event["value"] is None:
            return "ignored"
        iso = event["iso"]
        start: datetime = event["window_start_utc"]
        day = local_day(iso, start)
        _, day_end = day_bounds_utc(iso, day)
        if day_end.timestamp() + self.config.grace.total_seconds() < self.watermark.get(iso, 0):
            self.late += 1
            return "late"
        key: InputKey = (
            event["window_kind"],
            event["kpi"],
            event["market"],
            event["location_id"],
            int(start.timestamp()),
        )
        known = self.groups.get((iso, day), {}).get(key)
        revision = int(event["revision"])
        if known is not None and known.revision >= revision:
            return "duplicate" if known.revision == revision else "stale"
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
                    _forget(table, self.table_key(iso, group[1], key))
                self.dirty.discard(group)
                self.emitted.drop(group)

    def flush(self, now: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for group in sorted(self.dirty):
            out += [e for e in self._group(*group, now) if self.emitted.changed(group, e)]
        self.dirty.clear()
        return out

    def _group(self, iso: str, day: date, now: datetime) -> list[dict[str, Any]]:
        hours: dict[tuple[str, str], dict[int, Revised]] = defaultdict(dict)
        daily: dict[tuple[str, str, str], Revised] = {}  # (kpi, market, location)
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
        self, hours: Mapping[tuple[str, str], Mapping[int, Revised]]
    ) -> dict[tuple[str, str], Revised]:
        """DA minus RT per hour, and its daily mean absolute value, per RT market; returns
        the daily means by (RT market, location)."""
        n_hours = int((self.day.end - self.day.start) / timedelta(hours=1))
        means: dict[tuple[str, str], Revised] = {}
        for (market, location), rt in hours.items():
            da = hours.get((DA, location))
            if market not in RT_MARKETS or not da:
                continue
            values, revision = [], 0
            for hour in sorted(set(da) & set(rt)):
                spread, rev = da[hour].value - rt[hour].value, da[hour].revision + rt[hour].revision
                window = Window.hour(datetime.fromtimestamp(hour, UTC))
                self.emit(market, location, "da_rt_spread_usd_per_mwh", window, spread, rev)
                values.append(abs(spread))
                revision += rev
            if values:
                mean = statistics.fmean(values)
                means[(market, location)] = Revised(mean, revision)
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
        hours: Mapping[tuple[str, str], Mapping[int, Revised]],
        daily: Mapping[tuple[str, str, str], Revised],
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
                value = series[hour].value - reference[hour].value
                revision = series[hour].revision + reference[hour].revision
                self.emit(market, location, "basis_usd_per_mwh", window, value, revision)
        for (kpi, market, location), (value, revision) in daily.items():
            ref = daily.get((kpi, market, hub))
            if kpi != "twap_lmp_usd_per_mwh" or ref is None or location == hub:
                continue
            self.emit(
                market,
                location,
                "basis_usd_per_mwh",
                self.day,
                value - ref.value,
                revision + ref.revision,
            )

    def benchmarks(
        self,
        daily: Mapping[tuple[str, str, str], Revised],
        spreads: Mapping[tuple[str, str], Revised],
    ) -> None:
        """Each location's percentile within its ISO and market, and the ISO-wide median, for
        daily TWAP, volatility and mean absolute DA-RT spread."""
        populations: dict[tuple[str, str], dict[str, Revised]] = defaultdict(dict)
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


def is_benchmark_input(event: Mapping[str, Any]) -> bool:
    """Whether the benchmark stage consumes this series KPI."""
    return (event["window_kind"], event["kpi"]) in BENCHMARK_INPUTS
