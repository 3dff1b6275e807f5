"""A worker fed two series of one dataset three years apart, on the real broker: its memory
stays flat (gap state is ranges, never one entry per missing interval), the old series' silence
is declared missing up to its retirement age and no further, it is announced retired on
ingest.series_status, and the new series' own hole is one gap."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.records import LmpRecord
from connectors.runtime import ConnectorRuntime
from optibid.settings import Settings
from schemas.catalog import MARKET_DATA_PARTITIONS, Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from streams.processor import DEFAULT_RETIREMENT_AGE
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.streams_util import WorkerProcess
from tests.unit.streams.factories import lmp_record

FIVE = timedelta(minutes=5)
OLD_DAY = datetime(2023, 12, 1, 5, tzinfo=UTC)  # the old series' only day (a file replayed)
NEW_DAY = datetime(2026, 11, 30, 5, tzinfo=UTC)  # the live series, three years later
HOLE = (NEW_DAY + timedelta(hours=10), NEW_DAY + timedelta(hours=11))  # 12 intervals missing
RESIDENT_CEILING_MIB = 500


def _same_partition_pair() -> tuple[str, str]:
    """Two PJM node ids whose series keys land on one partition of the raw topic (the
    producer's default partitioner: CRC32 of the key), so one gap tracker holds both."""

    def partition(node: str) -> int:
        return zlib.crc32(f"PJM|RT_5MIN|{node}".encode()) % MARKET_DATA_PARTITIONS

    old = "5000001"
    new = next(str(n) for n in range(5000002, 5000100) if partition(str(n)) == partition(old))
    return old, new


def _day(node: str, start: datetime, skip: tuple[datetime, datetime] | None) -> list[LmpRecord]:
    records = []
    for i in range(288):
        at = start + i * FIVE
        if skip is not None and skip[0] <= at < skip[1]:
            continue
        price = 30.0 + (i % 24)
        records.append(lmp_record(node, at, price, i))
    return records


def _peak_resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_two_series_three_years_apart_stay_in_bounded_memory_and_retire_the_old_one(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, worker: WorkerProcess
) -> None:
    catalog = contracts_ready
    old, new = _same_partition_pair()
    runtime = ConnectorRuntime(
        stack_settings.bootstrap_servers, serde, catalog, Iso.PJM, Dataset.LMP_RT_5MIN
    )
    try:
        runtime.publish(_day(old, OLD_DAY, None), "sparse-old")
        runtime.publish(_day(new, NEW_DAY, HOLE), "sparse-new")
    finally:
        runtime.close()
    raw = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    assert len(read_topic(stack_settings, raw, serde)) == 288 + 288 - 12

    worker.start()
    status_topic = catalog.ingest("series_status").name
    gaps_topic = catalog.ingest("gaps").name
    wait_until(lambda: read_topic(stack_settings, status_topic, serde) != [], 180, "a retirement")
    wait_until(lambda: len(read_topic(stack_settings, gaps_topic, serde)) >= 2, 60, "both gaps")
    assert worker.proc is not None
    peak = _peak_resident_mib(worker.proc.pid)
    assert worker.alive(), worker.logs()[-3000:]

    age = DEFAULT_RETIREMENT_AGE[Dataset.LMP_RT_5MIN]
    old_last = OLD_DAY + 287 * FIVE
    [(key, retired)] = read_topic(stack_settings, status_topic, serde)
    assert key == f"PJM|lmp_rt_5min|PJM|RT_5MIN|{old}"
    assert (retired["series_key"], retired["status"]) == (f"PJM|RT_5MIN|{old}", "RETIRED")
    assert retired["last_interval_start_utc"] == old_last
    assert retired["occurred_at_utc"] == old_last + FIVE + age  # the end of its allowed silence
    assert retired["retirement_age_seconds"] == age.total_seconds()

    gaps = {
        (g["series_key"], g["missing_start_utc"], g["missing_end_utc"], g["missing_intervals"])
        for _, g in read_topic(stack_settings, gaps_topic, serde)
    }
    # the old series: its silence up to the retirement age, one gap, never the three years
    # after it; the new series: its hour of missing intervals
    assert gaps == {
        (f"PJM|RT_5MIN|{old}", old_last + FIVE, old_last + FIVE + age, age // FIVE),
        (f"PJM|RT_5MIN|{new}", HOLE[0], HOLE[1], 12),
    }
    assert peak < RESIDENT_CEILING_MIB, f"worker peak resident memory {peak:.0f} MiB"
