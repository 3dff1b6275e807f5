"""The demo: the local stack, the contracts, and every ISO dataset fed into the raw topics from
the simulator and (where ../shared is present) from recorded ISO responses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.backfill import backfill_window
from connectors.replay import replay, replay_files
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid import stack
from optibid.settings import PROJECT_ROOT, Settings
from optibid.wiring import connector_runtime, prepare_contracts
from schemas.catalog import ISO_DATASETS, Dataset, Iso

SHARED_ISO = PROJECT_ROOT.parent / "shared" / "fixtures" / "iso"

# Recorded responses and the dataset each one is (files of other feeds are left out).
RECORDED: tuple[tuple[Iso, Dataset, str], ...] = (
    (Iso.PJM, Dataset.LMP_RT_HOURLY, "pjm_dataminer_csv_rt_hrl_lmps_*.csv"),
    (Iso.PJM, Dataset.LMP_DA_HOURLY, "pjm_dataminer_csv_da_hrl_lmps_*.csv"),
    (Iso.CAISO, Dataset.LOAD, "caiso_oasis_singlezip_*.zip"),
    (Iso.ERCOT, Dataset.LOAD, "ercot_mis_np6-345-cd_*.zip"),
    (Iso.ERCOT, Dataset.LMP_RT_5MIN, "ercot_mis_np6-788-cd_*.csv"),
)
DEMO_FAULTS = Faults(missing_rate=0.002, revision_rate=0.01, duplicate_rate=0.002)


@dataclass
class Fed:
    iso: Iso
    dataset: Dataset
    origin: str
    records: int
    problems: int


def run_demo(settings: Settings, console: Console, locations: int = 10) -> list[Fed]:
    began = time.monotonic()
    console.rule("local stack")
    stack.up(settings, lambda n, o, s: console.print(f"  {n:<9} {o:<8} {s:6.1f} s"))
    catalog = prepare_contracts(settings)
    console.print(f"  {len(catalog)} topics and their schemas in place")

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = (now - timedelta(days=2)).replace(hour=0)
    fed: list[Fed] = []
    jobs = [(iso, ds) for iso, datasets in ISO_DATASETS.items() for ds in datasets]
    console.rule(f"simulated ISO responses, {start:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC")
    with _progress(console) as progress:
        task = progress.add_task("simulate", total=len(jobs))
        for iso, dataset in jobs:
            progress.update(task, description=f"simulate {iso.value} {dataset.value}")
            end = now + timedelta(days=1) if dataset is Dataset.LMP_DA_HOURLY else now
            source = SimulatedSource(iso, locations=locations, faults=DEMO_FAULTS)
            with connector_runtime(settings, iso, dataset) as runtime:
                outcome = backfill_window(runtime, source, start, end, chunk=timedelta(hours=6))
            fed.append(Fed(iso, dataset, "simulator", outcome.records, 0))
            progress.advance(task)

    if SHARED_ISO.is_dir():
        console.rule(f"recorded ISO responses from {SHARED_ISO}")
        for iso, dataset, pattern in RECORDED:
            folder = SHARED_ISO / iso.value
            if not replay_files(folder, pattern):
                continue
            with connector_runtime(settings, iso, dataset) as runtime:
                summary = replay(runtime, folder, pattern=pattern)
            problems = len(summary.rejected)
            fed.append(Fed(iso, dataset, f"recorded {pattern}", summary.rows, problems))
            for problem in summary.rejected:
                console.print(f"  rejected: {problem}", markup=False, highlight=False)
    else:
        console.print(f"(no recorded responses: {SHARED_ISO} is absent)")

    table = Table("raw topic", "from", "records published", "rejected files")
    for item in fed:
        topic = catalog.raw(item.iso, item.dataset).name
        table.add_row(topic, item.origin, str(item.records), str(item.problems))
    console.print(table)
    total = sum(f.records for f in fed)
    console.print(
        f"{total} records published to {len({(f.iso, f.dataset) for f in fed})} raw topics in"
        f" {time.monotonic() - began:.1f} s. The stack keeps running: `optibid stack status`,"
        " `optibid stack down`."
    )
    return fed


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


__all__ = ["RECORDED", "run_demo"]
