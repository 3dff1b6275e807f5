"""Events/s through validate + normalise on one worker, side by side in one run with
- the ceiling: a plain confluent-kafka consume-decode-produce loop doing the same transformation;
- the peer: Quix Streams doing the same transformation (in a virtual environment of its own).

All three read the same raw topic (simulated PJM 5-minute LMPs) and run the same
MarketProcessor; each rate is output records over the span between its first append and its
last output record (broker timestamps), so start-up time is left out of every contender alike.
The records of that first append are left out too, since the work that made them was done
before the span began: a contender that emits in batches would otherwise be credited a whole
batch for free.
Run on the local stack: `python bench/streams.py [--events N]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.common import (
    ROOT,
    append_time_topics,
    arguments,
    delete_run_topics,
    emit,
    local_stack,
    run_id,
    stamp_on_append,
    uv_command,
)
from bench.streams_transform import Transform
from connectors.runtime import ConnectorRuntime, new_run
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

QUIX_VERSION = "3.28.1"


def produce_input(settings: Settings, catalog: TopicCatalog, events: int) -> int:
    locations = max(1, events // 288)
    start = datetime(2024, 6, 3, 4, tzinfo=UTC)
    with RegistryClient(settings.schema_registry_url) as registry:
        runtime = ConnectorRuntime(
            settings.bootstrap_servers, AvroSerde(registry), catalog, Iso.PJM, Dataset.LMP_RT_5MIN
        )
        stats = new_run("SIMULATE")
        source = SimulatedSource(
            Iso.PJM, locations=locations, faults=Faults(negative_rate=0.02, spike_rate=0.001)
        )
        for name, data in source.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(days=1)):
            runtime.handle_payload(name, data, stats)
        runtime.close()
    return stats.rows


FIRST_APPEND_MS = 10  # records stamped this close to the first one came with it


def output_rate(
    settings: Settings, topic: str, expected: int, deadline_s: float
) -> tuple[int, float]:
    """(records, records/s) once `expected` are in: the records after the first append, over
    the seconds from it to the last record (broker timestamps)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": run_id(), "log_level": 3}
    )
    stamps: list[int] = []
    deadline = time.monotonic() + deadline_s
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        while len(stamps) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    stamps.append(msg.timestamp()[1])
    finally:
        consumer.close()
    start = min(stamps, default=0) + FIRST_APPEND_MS
    later = [stamp for stamp in stamps if stamp > start]
    if not later:
        return len(stamps), float("nan")
    return len(stamps), len(later) / ((max(later) - start) / 1000)


def ceiling(settings: Settings, prefix: str, source: str, target: str, events: int) -> None:
    """The plain loop: batch consume, transform, produce, flush."""
    transform = Transform(settings.schema_registry_url, prefix)
    lmp = transform.catalog.core("lmp").name
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": run_id(),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "log_level": 3,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "linger.ms": 20,
            "enable.idempotence": True,
            "log_level": 3,
        }
    )
    consumer.subscribe([source])
    seen = 0
    while seen < events:
        for msg in consumer.consume(1000, 1.0):
            value, partition, offset = msg.value(), msg.partition(), msg.offset()
            if msg.error() is not None or value is None or partition is None or offset is None:
                continue
            seen += 1
            for topic, key, data in transform(source, partition, offset, msg.key(), value):
                if topic == lmp:
                    producer.produce(target, data, key.encode())
            producer.poll(0)
    producer.flush(60)
    consumer.close()


def quix_python() -> str:
    venv = ROOT / ".optibid" / "bench" / f"quix-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = uv_command()
        subprocess.run([*uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                f"quixstreams=={QUIX_VERSION}",
                "-e",
                str(ROOT),
            ],
            check=True,
        )
    return str(python)


def main() -> None:
    args = arguments(__doc__, events=100_000)
    settings = local_stack()
    prefix = f"{run_id()}."
    scoped = Settings(topic_prefix=prefix)
    catalog = prepare_contracts(scoped)
    events = produce_input(settings, catalog, args.events)
    source = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    lmp = catalog.core("lmp").name
    targets = {"ceiling": f"{lmp}.ceiling", "quix": f"{lmp}.quix"}
    # every output topic stamps records when the broker appends them (Quix would otherwise
    # carry the input's timestamps over), so all three spans are measured the same way
    append_time_topics(settings, dict.fromkeys(targets.values(), 6))
    stamp_on_append(settings, [lmp])
    print(f"{events} raw events on {source}", file=sys.stderr)

    rates: dict[str, float] = {}
    ceiling(settings, prefix, source, targets["ceiling"], events)
    count, rates["ceiling"] = output_rate(settings, targets["ceiling"], events, 300)
    print(
        f"ceiling (confluent-kafka loop): {count} outputs, {rates['ceiling']:.0f} events/s",
        file=sys.stderr,
    )

    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": prefix}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optibid",
            "worker",
            "--app-id",
            f"{prefix}streams",
            "--store",
            "rocksdb://",
            "--web-port",
            "16099",
            "--metrics-port",
            "19499",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        count, rates["optibid"] = output_rate(settings, lmp, events, 900)
    finally:
        worker.terminate()
        worker.wait(60)
    print(
        f"optibid worker (faust): {count} outputs, {rates['optibid']:.0f} events/s", file=sys.stderr
    )

    quix = subprocess.Popen(
        [
            quix_python(),
            str(ROOT / "bench" / "peers" / "quix_contender.py"),
            settings.bootstrap_servers,
            settings.schema_registry_url,
            prefix,
            source,
            targets["quix"],
            f"{prefix}quix",
            str(events),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        count, rates["quix"] = output_rate(settings, targets["quix"], events, 900)
    finally:
        quix.terminate()
        quix.wait(60)
    print(
        f"quix streams {QUIX_VERSION}: {count} outputs, {rates['quix']:.0f} events/s",
        file=sys.stderr,
    )

    delete_run_topics(settings, prefix.rstrip("."))
    emit(
        {
            "benchmark": "streams",
            "events": events,
            "ceiling_events_per_s": round(rates["ceiling"]),
            "optibid_events_per_s": round(rates["optibid"]),
            "quix_events_per_s": round(rates["quix"]),
            "ratio": round(rates["optibid"] / rates["ceiling"], 3),
            "ratio_vs_quix": round(rates["optibid"] / rates["quix"], 3),
        }
    )


if __name__ == "__main__":
    main()
