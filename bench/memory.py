"""Peak resident memory of the stream worker's state path against the time span of its input.

Each case runs in a process of its own: one dense day (200 PJM locations x 288 five-minute
intervals, ending today) plus one sparse series whose history spans 1 day, 30 days, 1 year
or 3 years (one interval at each end of the span), decoded, validated, deduplicated,
normalised and gap-tracked by the worker's own MarketProcessor (in-memory tables), with a
gap tick every 2,000 records as the worker's timer does. A second set of processes runs the
per-interval gap model of the test suite on the same arrivals, the design this replaced.

Flat memory gives `ratio` (smallest peak / largest peak of the range tracker) 1.0.
Needs no servers. Run: `python bench/memory.py`
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.gaps import GapTracker
from streams.processor import MarketProcessor
from tests.unit.streams.naive_gaps import NaiveGapTracker

SPANS = {"1d": 1, "30d": 30, "1y": 365, "3y": 3 * 365}
LOCATIONS = 200
FIVE = timedelta(minutes=5)


def raw_record(location: str, start: datetime) -> dict[str, Any]:
    return {
        "event_id": f"e-{location}-{start.isoformat()}",
        "occurred_at_utc": start + FIVE,
        "recorded_at_utc": start + FIVE,
        "source": "bench",
        "schema_version": 1,
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "market": "RT_5MIN",
        "location_id": location,
        "location_name": None,
        "location_type": "NODE",
        "interval_start_utc": start,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": 31.5,
        "energy_usd_per_mwh": 30.0,
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.5,
        "revision": 1,
        "revision_kind": "VERSION",
        "source_file": "bench.csv",
        "source_row": 1,
        "run_id": "bench",
        "native_fields": {},
    }


def child(days: int, model: str) -> dict[str, Any]:
    catalog = TopicCatalog("")
    serde = AvroSerde(RegistryClient("http://127.0.0.1:1/apis/ccompat/v7"))
    for number, spec in enumerate(catalog, start=1):
        serde.preload(spec.subject, spec.value_schema, number)
    processor = MarketProcessor(catalog, serde)
    if model == "per-interval":

        def naive(tracker_key: str, iso: str, dataset: str) -> Any:
            tracker = processor.trackers.get(tracker_key)
            if tracker is None:
                lateness = processor.lateness[Dataset(dataset)]
                # the same observe/tick/open_gaps surface as the range tracker
                tracker = cast(GapTracker, NaiveGapTracker(iso.upper(), dataset, lateness))
                processor.trackers[tracker_key] = tracker
            return tracker

        processor._tracker = naive  # type: ignore[method-assign]  # the replaced design
    spec = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN)
    encode = serde.encoder(spec.subject, spec.value_schema)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    arrivals = [("SPARSE", today - timedelta(days=days))]
    arrivals += [(f"N{n}", today + i * FIVE) for i in range(288) for n in range(LOCATIONS)]
    arrivals.append(("SPARSE", today + 287 * FIVE))
    latest: dict[str, Any] = {}
    locations: dict[str, Any] = {}
    gaps = 0
    for offset, (location, start) in enumerate(arrivals):
        value = encode(raw_record(location, start))
        processor.process(
            spec.name, 0, offset, f"PJM|RT_5MIN|{location}".encode(), value, latest, locations
        )
        if offset % 2_000 == 0:
            gaps += len(processor.due_gaps())
    gaps += len(processor.due_gaps())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": round(peak_kib / 1024, 1), "records": len(arrivals), "gaps": gaps}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3])))
        return
    figures: dict[str, Any] = {}
    for model in ("ranges", "per-interval"):
        for name, days in SPANS.items():
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", str(days), model],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(out)
            figures[f"{model}_{name}_peak_mib"] = result["peak_mib"]
            print(
                f"{model:>12} sparse span {name:>3}: peak {result['peak_mib']:8.1f} MiB, "
                f"{result['records']} records, {result['gaps']} gaps"
            )
    ranges = [figures[f"ranges_{n}_peak_mib"] for n in SPANS]
    naive = [figures[f"per-interval_{n}_peak_mib"] for n in SPANS]
    figures["ratio"] = round(min(ranges) / max(ranges), 3)
    figures["ratio_per_interval_model"] = round(min(naive) / max(naive), 3)
    emit(figures)


if __name__ == "__main__":
    main()
