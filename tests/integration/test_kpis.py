"""KPIs on the real stack: recorded PJM hub prices (DA and RT for the same days) and a simulated
market go through the connector runtime, `optibid worker` and `optibid kpis`; the KPI topics end
with the values an independent pandas computation gives on the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

from connectors.records import LmpRecord
from connectors.runtime import ConnectorRuntime, new_run
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from schemas.timeutil import day_bounds_utc
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.streams_util import WorkerProcess

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "iso" / "pjm"
DA_FILE = FIXTURES / "pjm_dataminer_csv_da_hrl_lmps_12hubs_2025-05-01_to_05-02.csv"
RT_FILE = FIXTURES / "pjm_dataminer_csv_rt_hrl_lmps_12hubs_2025-05-01_to_05-02.csv"
HUB = "51288"  # PJM Western Hub, the reference for basis
SIM_DAY = date(2024, 11, 3)  # 25-hour fall-back day


@pytest.fixture
def pipeline(
    test_id: str, tmp_path: Path, contracts_ready: TopicCatalog
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    market = WorkerProcess(test_id, tmp_path, "worker")
    kpis = WorkerProcess(test_id, tmp_path, "kpis")
    yield market, kpis
    kpis.stop()
    market.stop()


def publish(
    settings: Settings,
    serde: AvroSerde,
    catalog: TopicCatalog,
    dataset: Dataset,
    payloads: list[tuple[str, bytes]],
) -> list[LmpRecord]:
    runtime = ConnectorRuntime(settings.bootstrap_servers, serde, catalog, Iso.PJM, dataset)
    run = new_run("REPLAY")
    records: list[LmpRecord] = []
    for name, data in payloads:
        records += [r for r in runtime.handle_payload(name, data, run) if isinstance(r, LmpRecord)]
    runtime.close()
    return records


def frame(records: list[LmpRecord]) -> pd.DataFrame:
    """The latest revision of each interval, with its local (EPT) day and hour."""
    df = pd.DataFrame(
        {
            "market": r.market,
            "location": r.location_id,
            "start": pd.Timestamp(r.interval_start_utc),
            "minutes": r.interval_minutes,
            "lmp": r.lmp_usd_per_mwh,
            "congestion": r.congestion_usd_per_mwh,
            "loss": r.loss_usd_per_mwh,
            "revision": r.revision,
        }
        for r in records
    )
    df = df.sort_values("revision").drop_duplicates(["market", "location", "start"], keep="last")
    local = df["start"].dt.tz_convert("America/New_York")
    df["day"] = local.dt.date
    df["on_peak"] = (
        (local.dt.day_of_week < 5) & (local.dt.hour + 1 >= 8) & (local.dt.hour + 1 <= 23)
    )
    return df


def latest_kpis(
    settings: Settings, topics: list[str], serde: AvroSerde
) -> dict[tuple[Any, ...], Any]:
    """(market, location, kpi, window kind, window start) -> the highest revision's event."""
    out: dict[tuple[Any, ...], Any] = {}
    for topic in topics:
        for _, e in read_topic(settings, topic, serde):
            key = (e["market"], e["location_id"], e["kpi"], e["window_kind"], e["window_start_utc"])
            if key not in out or out[key]["revision"] <= e["revision"]:
                out[key] = e
    return out


def mean_or_none(values: pd.Series) -> Any:
    return pytest.approx(values.mean()) if len(values) else None


def day_start(day: Any) -> datetime:
    return day_bounds_utc("PJM", day)[0]


def test_kpis_of_recorded_pjm_hubs_and_a_simulated_market_match_pandas(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    pipeline: tuple[WorkerProcess, WorkerProcess],
) -> None:
    if not DA_FILE.is_file():
        pytest.skip(f"recorded PJM payloads not present at {FIXTURES} (../shared is absent)")
    catalog = contracts_ready
    recorded = publish(
        stack_settings,
        serde,
        catalog,
        Dataset.LMP_DA_HOURLY,
        [(DA_FILE.name, DA_FILE.read_bytes())],
    )
    recorded += publish(
        stack_settings,
        serde,
        catalog,
        Dataset.LMP_RT_HOURLY,
        [(RT_FILE.name, RT_FILE.read_bytes())],
    )
    source = SimulatedSource(
        Iso.PJM,
        locations=4,
        faults=Faults(missing_rate=0.01, revision_rate=0.02, negative_rate=0.05),
    )
    start, end = day_bounds_utc("PJM", SIM_DAY)
    simulated = publish(
        stack_settings, serde, catalog, Dataset.LMP_RT_5MIN,
        list(source.fetch(Dataset.LMP_RT_5MIN, start, end)),
    )  # fmt: skip
    assert len(recorded) == 2 * 576
    market, kpis = pipeline
    market.start()
    # the simulated day is 18 months before the recorded ones: a grace period that covers it
    kpis.start(env={"OPTIBID_KPI_GRACE_HOURS": str(24 * 800)})

    hubs, sim = frame(recorded), frame(simulated)
    series_days = {
        (m, loc, d) for m, loc, d in hubs[["market", "location", "day"]].itertuples(False)
    }
    series_days |= {
        (m, loc, d) for m, loc, d in sim[["market", "location", "day"]].itertuples(False)
    }
    daily = catalog.kpi("lmp_daily").name
    hourly = catalog.kpi("lmp_hourly").name
    twap = "twap_lmp_usd_per_mwh"

    def complete() -> bool:
        got = latest_kpis(stack_settings, [daily], serde)
        done = all(
            (m, loc, twap, "DAY", day_start(d)) in got
            and got[(m, loc, twap, "DAY", day_start(d))]["intervals_received"]
            == len(hubs[(hubs.market == m) & (hubs.location == loc) & (hubs.day == d)])
            + len(sim[(sim.market == m) & (sim.location == loc) & (sim.day == d)])
            for m, loc, d in series_days
        )
        medians = [k for k in got if k[1] == "*" and k[2] == f"{twap}_iso_median"]
        return done and len(medians) >= 2 * 2 + 1  # DA and RT hubs on two days, the sim day

    wait_until(complete, 180, "final daily KPIs of every series")
    got = latest_kpis(stack_settings, [daily, hourly], serde)

    # per series and local day: the series stage against pandas
    for df in (hubs, sim):
        for group, rows in df.groupby(["market", "location", "day"]):
            m, loc, d = cast(tuple[str, str, date], group)
            k = {kpi: e["value"] for (mm, ll, kpi, kind, ws), e in got.items()
                 if (mm, ll, kind, ws) == (m, loc, "DAY", day_start(d))}  # fmt: skip
            weights = rows["minutes"]
            assert k[twap] == pytest.approx((rows.lmp * weights).sum() / weights.sum())
            on, off = rows[rows.on_peak], rows[~rows.on_peak]
            assert k["on_peak_avg_lmp_usd_per_mwh"] == mean_or_none(on.lmp)  # none on Sundays
            assert k["off_peak_avg_lmp_usd_per_mwh"] == mean_or_none(off.lmp)
            assert k["min_lmp_usd_per_mwh"] == pytest.approx(rows.lmp.min())
            assert k["max_lmp_usd_per_mwh"] == pytest.approx(rows.lmp.max())
            top = rows.sort_values(["lmp", "start"], ascending=[False, True]).iloc[0]
            assert k["max_lmp_interval_start_unix_s"] == top.start.timestamp()
            assert k["volatility_usd_per_mwh"] == pytest.approx(rows.lmp.std(ddof=0))
            assert k["negative_intervals"] == (rows.lmp < 0).sum()
            assert k["congestion_share"] == pytest.approx(
                rows.congestion.abs().mean() / rows.lmp.abs().mean()
            )
            assert k["mean_loss_usd_per_mwh"] == pytest.approx(rows.loss.mean())

    # the fall-back day of the simulated market expects 300 five-minute intervals
    sim_loc = sim.location.iloc[0]
    completeness = got[("RT_5MIN", sim_loc, "completeness", "DAY", day_start(SIM_DAY))]
    assert completeness["intervals_expected"] == 300

    # the benchmark stage: DA minus RT, basis to the Western Hub, percentiles and medians
    pivot = hubs.pivot_table(index=["location", "start", "day"], columns="market", values="lmp")
    pivot["spread"] = pivot["DA_HOURLY"] - pivot["RT_HOURLY"]
    for group, rows in pivot.reset_index().groupby(["location", "day"]):
        loc, d = cast(tuple[str, date], group)
        mean_abs = got[("RT_HOURLY", loc, "da_rt_spread_mean_abs_usd_per_mwh", "DAY", day_start(d))]
        assert mean_abs["value"] == pytest.approx(rows.spread.abs().mean())
    day_twap = hubs.groupby(["market", "day", "location"]).lmp.mean()
    for level, twaps in day_twap.groupby(level=[0, 1]):
        m, d = cast(tuple[str, date], level)
        ws = day_start(d)
        assert got[(m, "*", f"{twap}_iso_median", "DAY", ws)]["value"] == pytest.approx(
            twaps.median()
        )
        by_location = twaps.droplevel([0, 1])
        for name, value in by_location.items():
            loc = str(name)
            rank = (by_location <= value).mean()
            assert got[(m, loc, f"{twap}_percentile", "DAY", ws)]["value"] == pytest.approx(rank)
            if loc != HUB:
                basis = got[(m, loc, "basis_usd_per_mwh", "DAY", ws)]["value"]
                assert basis == pytest.approx(value - by_location[HUB])
    assert all(e["revision"] >= 1 for e in got.values())
    assert sum(1 for k in got if k[3] == "HOUR" and k[2] == "da_rt_spread_usd_per_mwh") == 576
