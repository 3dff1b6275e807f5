"""Events/s of the market worker's batch runtime against faust's public batching API, side by
side in one run on the same input.

- batch runtime: `optibid worker` exactly as bench/streams.py runs it (streams/runtime/: whole
  fetches as batches, outputs and changelog records handed to the producer as one batch per
  topic-partition, acks only after that, RocksDB tables; `--worker-store memory://` puts them
  on faust's memory store, the store the take contender has to use);
- take API: bench/peers/faust_take.py, a faust app written with faust's public API only: an
  agent iterating `stream.take_events(max, within)` (take()'s batching, yielding the events so
  that each record's partition and offset reach the market step), the same MarketProcessor
  and encoders for each record, outputs through `Topic.send_soon()` (`--send send`:
  `Topic.send()`), state in two faust Tables through their mapping API, commits by faust's own
  acking. faust lets a table be written from a take() batch only with `use_partitioner=True`
  on the memory store (the module docstring of the contender says why), so that is how its
  tables are built.

Commit safety differs: faust acks a take() batch when the agent asks for the next one, with
its outputs and changelog records in faust's producer buffer (`send()`: outputs already in
aiokafka's); a commit flushes that buffer first, but gives up waiting on it after 0.1 s without
progress, and commits whether or not the sends succeeded. The batch runtime acks only once
everything is with aiokafka and refuses to commit past a failed send.

Both read the same raw topic (simulated PJM 5-minute LMPs, produced once), one after the
other, each with its own consumer group, and write to their own output topics; each rate is
measured by bench/streams.py's `output_rate` on its LMP output topic (LogAppendTime): records
after the first append over the span from it to the last one, so start-up is left out of both
alike. The counts of every output (LMP, locations, dead letters) and of both tables'
changelogs are compared at the end; peak RSS is each process's VmHWM when its last output is in.
Run on the local stack: `python bench/take.py [--events N]`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
)

from bench.common import (
    ROOT,
    append_time_topics,
    delete_run_topics,
    emit,
    local_stack,
    peak_rss_mib,
    run_id,
    stamp_on_append,
)
from bench.streams import output_rate, produce_input
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.catalog import Dataset, Iso

SUFFIX = ".take"  # the take contender's output topics: the worker's names with this suffix
DEADLINE_S = 900  # for all the outputs of one contender


def contender_topics(settings: Settings, topics: list[str]) -> None:
    """Create `<topic><SUFFIX>` beside each topic (as many partitions) and have the broker stamp
    the records of both when it appends them, so that both rates span broker time alike."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    existing = admin.list_topics(timeout=10).topics
    append_time_topics(settings, {t + SUFFIX: len(existing[t].partitions) for t in topics})
    stamp_on_append(settings, topics)


def record_count(settings: Settings, topic: str) -> int:
    """Records ever appended to `topic` (the sum of its partitions' end offsets), 0 if none."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": run_id(), "log_level": 3}
    )
    try:
        found = consumer.list_topics(topic, timeout=10).topics[topic]
        if found.error is not None:
            return 0
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in found.partitions
        )
    finally:
        consumer.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def measure(
    label: str,
    argv: list[str],
    env: dict[str, str],
    settings: Settings,
    topic: str,
    expected: int,
    log: Path,
) -> tuple[int, float, float]:
    """Run one contender until `expected` records are on `topic`: (records, records/s, peak
    RSS MiB of its process). Its output goes to `log`."""
    print(f"{label}: started, log in {log}", file=sys.stderr, flush=True)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            count, rate = output_rate(settings, topic, expected, DEADLINE_S)
            alive = process.poll() is None
            rss = peak_rss_mib(process.pid) if alive else math.nan
        finally:
            stop(process)
    status = "" if count == expected else f" (expected {expected}: see {log})"
    print(
        f"{label}: {count} LMP outputs{status}, {rate:.0f} events/s, peak RSS {rss:.0f} MiB",
        file=sys.stderr,
        flush=True,
    )
    return count, rate, rss


def figure(value: float, digits: int = 0) -> float | None:
    """`value` rounded for the JSON line (a whole number without `digits`); None when it could
    not be measured."""
    if math.isnan(value):
        return None
    return round(value, digits) if digits else round(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--web-port", type=int, default=16199, help="the worker's web port")
    parser.add_argument("--metrics-port", type=int, default=19599, help="its metrics port")
    parser.add_argument("--worker-store", default="rocksdb://", help="the worker's table store")
    parser.add_argument("--take-max", type=int, default=2_000, help="records per take() batch")
    parser.add_argument("--within", type=float, default=0.1, help="take()'s timeout, seconds")
    parser.add_argument("--send", choices=("send", "send_soon"), default="send_soon")
    args = parser.parse_args()
    settings = local_stack()
    prefix = f"{run_id()}."
    catalog = prepare_contracts(Settings(topic_prefix=prefix))
    events = produce_input(settings, catalog, args.events)
    source = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    lmp = catalog.core("lmp").name
    outputs = {
        "LMP": lmp,
        "locations": catalog.core("locations").name,
        "dead letters": catalog.dlq(Iso.PJM, Dataset.LMP_RT_5MIN).name,
    }
    contender_topics(settings, list(outputs.values()))
    print(f"{events} raw events on {source}", file=sys.stderr, flush=True)
    logs = settings.state_dir / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": prefix}
    worker_id, take_id = f"{prefix}streams", f"{prefix}take"

    worker = [
        sys.executable,
        "-m",
        "optibid",
        "worker",
        "--app-id",
        worker_id,
        "--store",
        args.worker_store,
        "--web-port",
        str(args.web_port),
        "--metrics-port",
        str(args.metrics_port),
    ]
    batch_count, batch_rate, batch_rss = measure(
        f"batch runtime (optibid worker, {args.worker_store})",
        worker,
        env,
        settings,
        lmp,
        events,
        logs / f"{worker_id}.log",
    )
    take = [
        sys.executable,
        str(ROOT / "bench" / "peers" / "faust_take.py"),
        "--app-id",
        take_id,
        "--source",
        source,
        "--suffix",
        SUFFIX,
        "--max",
        str(args.take_max),
        "--within",
        str(args.within),
        "--send",
        args.send,
    ]
    take_count, take_rate, take_rss = measure(
        f"take API (faust stream.take_events({args.take_max}, within={args.within}), "
        f"Topic.{args.send})",
        take,
        env,
        settings,
        lmp + SUFFIX,
        events,
        logs / f"{take_id}.log",
    )

    same = batch_count == take_count == events
    for label, topic in outputs.items():
        ours, theirs = record_count(settings, topic), record_count(settings, topic + SUFFIX)
        same = same and ours == theirs
        print(f"{label}: batch runtime {ours}, take API {theirs}", file=sys.stderr)
    for table in ("revisions", "locations"):
        ours = record_count(settings, f"{worker_id}-{table}-changelog")
        theirs = record_count(settings, f"{take_id}-{table}-changelog")
        same = same and ours == theirs
        print(f"{table} changelog: batch runtime {ours}, take API {theirs}", file=sys.stderr)
    if not same:
        print("the two paths wrote different counts", file=sys.stderr)

    delete_run_topics(settings, prefix.rstrip("."))
    for folder in (settings.state_dir / "streams" / worker_id, logs / take_id):
        shutil.rmtree(folder, ignore_errors=True)
    emit(
        {
            "benchmark": "take",
            "events": events,
            "batch_runtime_events_per_s": figure(batch_rate),
            "take_api_events_per_s": figure(take_rate),
            "ratio": figure(batch_rate / take_rate, 3),
            "batch_runtime_peak_rss_mib": figure(batch_rss),
            "take_api_peak_rss_mib": figure(take_rss),
            "batch_runtime_outputs": batch_count,
            "take_api_outputs": take_count,
            "outputs_match": same,
            "take_max": args.take_max,
            "take_within_s": args.within,
            "take_send": args.send,
            "worker_store": args.worker_store,
        }
    )


if __name__ == "__main__":
    main()
