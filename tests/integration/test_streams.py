"""The stream worker on the real broker: exact canonical output, exact DLQ, gaps closed by the
backfill path, and a SIGKILL in the middle that changes nothing."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from connectors.records import LmpRecord
from connectors.runtime import ConnectorRuntime, new_run
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from schemas.timeutil import day_bounds_utc, expected_intervals
from tests.integration.kafka_util import count_records, read_topic, wait_until
from tests.integration.stack_util import backfill_worker
from tests.integration.streams_util import WorkerProcess, expected_outputs

DAY = date(2024, 11, 3)  # the 25-hour fall-back day in PJM
LOCATIONS = 8
# the kill test's volume: ~28k records keep the worker (~10k records/s on the batch path)
# busy for seconds, so that the kill lands mid-stream
KILLED_LOCATIONS = 48
FAULTS = Faults(missing_rate=0.01, revision_rate=0.02, duplicate_rate=0.01)


def publish_simulated(
    settings: Settings,
    serde: AvroSerde,
    catalog: TopicCatalog,
    start: datetime,
    end: datetime,
    faults: Faults,
    locations: int = LOCATIONS,
) -> list[LmpRecord]:
    runtime = ConnectorRuntime(
        settings.bootstrap_servers, serde, catalog, Iso.PJM, Dataset.LMP_RT_5MIN
    )
    source = SimulatedSource(Iso.PJM, locations=locations, faults=faults)
    published: list[LmpRecord] = []
    stats_run = new_run("SIMULATE")
    for name, data in source.fetch(Dataset.LMP_RT_5MIN, start, end):
        records = runtime.handle_payload(name, data, stats_run)
        published += [r for r in records if isinstance(r, LmpRecord)]
    runtime.close()
    return published


def inject_malformed(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, template: dict[str, Any]
) -> int:
    """Three bad records on the raw topic: undecodable bytes, an impossible price, a
    misaligned interval. Returns how many were sent."""
    topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN)
    encode = serde.encoder(topic.subject, topic.value_schema)
    impossible = {
        **template,
        "event_id": str(uuid.uuid4()),
        "lmp_usd_per_mwh": 99_999.0,
        "energy_usd_per_mwh": 99_998.0,
        "congestion_usd_per_mwh": 0.5,
        "loss_usd_per_mwh": 0.5,
    }
    misaligned = {
        **template,
        "event_id": str(uuid.uuid4()),
        "interval_start_utc": template["interval_start_utc"] + timedelta(minutes=2),
    }
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True}
    )
    key = f"PJM|RT_5MIN|{template['location_id']}".encode()
    for value in (b"\x00\x00\x00\x7f\xffnot avro", encode(impossible), encode(misaligned)):
        producer.produce(topic.name, value, key)
    assert producer.flush(30) == 0
    return 3


def ids(values: list[dict[str, Any]]) -> list[str]:
    return sorted(v["event_id"] for v in values)


def test_faulty_day_yields_exact_canonical_output_dlq_and_filled_gaps(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    worker: WorkerProcess,
    test_id: str,
) -> None:
    catalog = contracts_ready
    start, end = day_bounds_utc("PJM", DAY)
    published = publish_simulated(
        stack_settings, serde, catalog, start, end + timedelta(hours=1), FAULTS
    )
    raw_topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    template = read_topic(stack_settings, raw_topic, serde)[0][1]
    bad = inject_malformed(stack_settings, serde, catalog, template)

    worker.start()
    now = datetime.now(UTC)
    expected = expected_outputs(stack_settings, catalog, serde, [raw_topic], now)
    lmp_topic, dlq_topic = catalog.core("lmp").name, catalog.dlq(Iso.PJM, Dataset.LMP_RT_5MIN).name
    wait_until(
        lambda: count_records(stack_settings, lmp_topic) >= len(expected[lmp_topic]),
        180,
        "canonical LMP",
    )
    wait_until(lambda: count_records(stack_settings, dlq_topic) >= bad, 60, "dead letters")

    canonical = [v for _, v in read_topic(stack_settings, lmp_topic, serde)]
    assert ids(canonical) == ids(expected[lmp_topic])  # exactly, no duplicates
    corrections = [v for v in canonical if v["supersedes_revision"] is not None]
    assert corrections, "the simulated revisions should show as corrections"
    dlq = [v for _, v in read_topic(stack_settings, dlq_topic, serde)]
    assert sorted(tuple(v["reason_codes"]) for v in dlq) == sorted(
        [("UNDECODABLE",), ("PRICE_OUT_OF_BOUNDS",), ("MISALIGNED_INTERVAL",)]
    )
    locations = read_topic(stack_settings, catalog.core("locations").name, serde)
    assert len({v["location_id"] for _, v in locations}) == LOCATIONS

    # every interval the simulator left out is declared missing...
    have = {
        (r.location_id, r.interval_start_utc)
        for r in published
        if start <= r.interval_start_utc < end
    }
    location_ids = sorted({r.location_id for r in published})
    grid = {(loc, s) for loc in location_ids for s in expected_intervals("PJM", DAY, 5)}
    missing = grid - have
    assert missing, "the faults should have left intervals out"
    gaps_topic = catalog.ingest("gaps").name

    def declared() -> set[tuple[str, datetime]]:
        out = set()
        for _, gap in read_topic(stack_settings, gaps_topic, serde):
            location = gap["series_key"].rsplit("|", 1)[1]
            step = timedelta(minutes=gap["interval_minutes"])
            current = gap["missing_start_utc"]
            while current < gap["missing_end_utc"]:
                out.add((location, current))
                current += step
        return out

    wait_until(lambda: missing <= declared(), 120, "every missing interval declared")
    requests_topic = catalog.ingest("backfill_requests").name
    wait_until(lambda: count_records(stack_settings, requests_topic) > 0, 60, "a backfill request")

    # ...and the backfill path fills them: connector backfill worker, then the stream worker
    source = SimulatedSource(Iso.PJM, locations=LOCATIONS, faults=Faults())
    backfill = backfill_worker(stack_settings, serde, catalog, source, test_id)

    def complete() -> bool:
        seen = {
            (v["location_id"], v["interval_start_utc"])
            for _, v in read_topic(stack_settings, lmp_topic, serde)
        }
        return grid <= seen

    # the worker cuts windows lazily, a few outstanding at a time: serve them as they come
    # until the day is whole (each outcome lets the worker send the next window)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if backfill.poll_once(1.0) is None and complete():
                break
    finally:
        backfill.close()
    outcomes = read_topic(stack_settings, catalog.ingest("backfill_completed").name, serde)
    assert outcomes
    assert {v["outcome"] for _, v in outcomes} == {"FILLED"}

    wait_until(complete, 180, "every interval of the 25-hour day in the canonical stream")


def test_a_worker_killed_mid_stream_ends_with_the_same_output(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, worker: WorkerProcess
) -> None:
    catalog = contracts_ready
    start = datetime(2024, 3, 9, 5, tzinfo=UTC)  # two days across the spring-forward day
    end = start + timedelta(days=2)
    publish_simulated(stack_settings, serde, catalog, start, end, FAULTS, KILLED_LOCATIONS)
    raw_topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    expected = expected_outputs(stack_settings, catalog, serde, [raw_topic], datetime.now(UTC))
    lmp_topic = catalog.core("lmp").name
    total = len(expected[lmp_topic])

    worker.start()
    wait_until(
        lambda: count_records(stack_settings, lmp_topic) >= total // 3, 180, "a third processed"
    )
    worker.kill()
    assert count_records(stack_settings, lmp_topic) < total
    worker.start()
    wait_until(
        lambda: (
            {v["event_id"] for _, v in read_topic(stack_settings, lmp_topic, serde)}
            >= set(ids(expected[lmp_topic]))
        ),
        240,
        "every canonical event after the restart",
    )
    canonical = [v for _, v in read_topic(stack_settings, lmp_topic, serde)]
    assert set(ids(canonical)) == set(ids(expected[lmp_topic]))  # nothing lost, nothing extra
    # duplicates only of identical events (same deterministic id, same content)
    by_id: dict[str, dict[str, Any]] = {}
    for value in canonical:
        first = by_id.setdefault(value["event_id"], value)
        assert {k: v for k, v in first.items() if k != "recorded_at_utc"} == {
            k: v for k, v in value.items() if k != "recorded_at_utc"
        }
    locations_topic = catalog.core("locations").name
    assert {v["location_id"] for _, v in read_topic(stack_settings, locations_topic, serde)} == {
        v["location_id"] for v in expected[locations_topic]
    }
