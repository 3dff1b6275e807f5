"""`optibid backup` and `optibid restore` timed, and the recovery time (RTO) they give, for the
demo's data and for a long log of LMP events, side by side in one run with a bare ceiling.

1. The demo: `optibid demo --duration 30` under a prefix and schema of the run's own, its read
   models then projected to the end of its topics, `optibid backup` of it, then
   `optibid restore` into an empty prefix and schema and `optibid api` started on them.
2. A long log: `--events` LMP events (`bench.projections.lmp_events`, produced in chunks of
   CHUNK so memory stays flat) in `core.market.lmp` of a fresh prefix, the catalog's other
   topics there but empty (`prepare_contracts`); every read model projected to the end
   (`rebuild_read_models`, as the restore does), then backup, restore and API as for the demo.
   With `--also-small`, the same again for a tenth of the events in the same invocation, so
   the peaks show whether memory grows with the log's length (`memory_growth_*` = long peak
   / short peak; 1.0 is flat).
3. The ceiling, on the long log: the bare work of a backup with none of its logic (a
   confluent-kafka loop consuming the same partitions and writing timestamp, key and value to
   one file per partition; no Avro container, no encryption, no manifest, no checksums of the
   read models), and of a republish (those files read back and produced to a fresh topic of
   as many partitions, with the restore's producer settings). `ratio` = backup records/s over
   the ceiling's (higher is better), `republish_ratio` the same for the republish.

What is timed: `backup_s` and the restore's phases are the JSON summaries the commands print
(the work, not the interpreter's start-up); `*_wall_s` are the processes' wall times. The RTO
is the wall time from launching `optibid restore` on the empty target until the API started
on it (`optibid api` on a free loopback port, launched as soon as the restore returns) is
serving. Serving means: `GET /ready` answers 200, so the API process is up and its
PostgreSQL pool (on the restored schema) and Redis answer; the market-data routes need a
principal, so the restored read model is read directly with the query the catalog route runs
(`projections.reads.coverage`), after the RTO's clock stops (`coverage_s`), and compared with
the source's. The restore itself rebuilds every read model before it returns and compares
their checksums with those at backup time: `differing_empty` says they were all equal.

Memory: each command's peak resident memory is its maximum resident set size as GNU time
(/usr/bin/time) reports it (VmHWM sampled every SAMPLE_S where that is not installed); the
restore's peak before its rebuild (`restore_republish_peak_mib`) is its VmHWM sampled when the
target schema appears (the rebuild's migration makes it), so it covers verify, republish and
keys. `--repeat` runs the long log's backup, ceiling, restore and API
that many times (each restore into a fresh prefix and schema); medians are reported.

Everything the run made is removed at the end: its topics, consumer groups, registry
subjects, schemas, Redis keys and temporary folders (all named after the run's id).
Run on the local stack:
`python bench/backup.py [--events N] [--repeat R] [--skip-demo] [--also-small]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import ROOT, delete_run_topics, emit, local_stack, median, peak_rss_mib, run_id
from bench.projections import lmp_events, produce
from optibid.backup import read_model_checksums
from optibid.backup_format import new_key_file
from optibid.cli_backup import rebuild_read_models
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections import reads
from projections.migrate import drop_schema
from projections.redis_sink import namespace
from schemas.catalog import TopicCatalog
from schemas.offsets import watermarks
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

CHUNK = 500_000  # LMP events made and produced at a time
SAMPLE_S = 0.05  # how often a command's memory is sampled
TIME = Path("/usr/bin/time")  # GNU time: a command's exact peak resident memory
DEMO_S = 30
FRAME = struct.Struct("<qii")  # the ceiling's files: timestamp, key length, value length


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_of(prefix: str, schema: str, key_file: Path) -> dict[str, str]:
    """The environment of an optibid command on `prefix` and `schema`."""
    return {
        **os.environ,
        "OPTIBID_TOPIC_PREFIX": prefix,
        "OPTIBID_DB_SCHEMA": schema,
        "OPTIBID_BACKUP_KEY_FILE": str(key_file),
        "OPTIBID_API_PORT": str(free_port()),
        "OPTIBID_DEMO_METRICS_PORT": "0",
        "COLUMNS": "200",
    }


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


@dataclass
class Measured:
    """One optibid command run to its end: wall time, peak memory, its JSON summary."""

    wall_s: float
    peak_mib: float
    phase_peak_mib: float | None
    returncode: int
    summary: dict[str, Any]


def optibid_pid(pid: int) -> int | None:
    """The optibid process: `pid` itself, or its child where GNU time runs it."""
    if not TIME.exists():
        return pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def run_measured(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    phase: Callable[[], bool] | None = None,
    ok: tuple[int, ...] = (0,),
) -> Measured:
    """`optibid argv` as a process, its peak resident memory and its VmHWM at the first
    sample where `phase()` is true. The peak is GNU time's maximum resident set size where
    /usr/bin/time is installed (exact: the rusage of a process started by a small one, since
    Linux counts the memory of the process a child was forked from in the child's own
    `ru_maxrss` up to its exec, here this benchmark's), else VmHWM sampled every SAMPLE_S."""
    phase_peak: list[float] = []
    sampled = [0.0]
    rss_file = log.with_suffix(".rss")
    timed = [str(TIME), "-f", "%M", "-o", str(rss_file)] if TIME.exists() else []
    with log.open("w") as out:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [*timed, sys.executable, "-m", "optibid", *argv],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    ended = threading.Event()

    def sample() -> None:
        pid = None
        while not ended.wait(SAMPLE_S):
            pid = pid or optibid_pid(proc.pid)
            if pid is None:
                continue
            with contextlib.suppress(OSError, RuntimeError):  # it ended meanwhile
                sampled[0] = peak_rss_mib(pid)
            if phase is not None and not phase_peak and phase():
                phase_peak.append(sampled[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - began
    ended.set()
    sampler.join()
    if returncode not in ok:
        raise RuntimeError(f"optibid {' '.join(argv)} exited {returncode}:\n{tail(log)}")
    peak = sampled[0]
    if timed:
        peak = int(rss_file.read_text().split()[-1]) / 1024
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return Measured(wall, peak, phase_peak[0] if phase_peak else None, returncode, summary)


def schema_appeared(
    settings: Settings, schema: str
) -> tuple[Callable[[], bool], Callable[[], None]]:
    """A probe that is true once `schema` exists (for the sampler's thread), and its closer."""
    conn = psycopg.connect(settings.postgres_dsn, autocommit=True)

    def probe() -> bool:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        return row is not None

    return probe, conn.close


def coverage(settings: Settings, schema: str) -> list[dict[str, Any]]:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return reads.coverage(conn, schema)


def lmp_rows(rows: list[dict[str, Any]]) -> int:
    return sum(int(r["rows"]) for r in rows if r["dataset"] == "lmp")


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """`optibid api` on a free loopback port; returns once `GET /ready` answers 200 (and
    `/health` too), with the seconds that took."""
    port = free_port()
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "optibid", "api", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = began + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"optibid api exited {proc.returncode}:\n{tail(log)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:  # not listening yet, or 503 while a dependency does not answer
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"optibid api not ready in 120 s:\n{tail(log)}")
            time.sleep(0.05)
        ready = time.perf_counter() - began
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            if answer.status != 200:
                raise RuntimeError(f"/health answered {answer.status}")
    except BaseException:
        stop(proc)
        raise
    return proc, ready


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Recovery:
    """A restore into an empty prefix and schema, and the API started on them."""

    restore: Measured
    api_s: float
    rto_s: float
    coverage_s: float
    coverage_equal: bool
    lmp_rows: int

    def figures(self) -> dict[str, Any]:
        s = self.restore.summary
        return {
            "restore_records": s["records"],
            "seconds_republish": s["seconds_republish"],
            "seconds_rebuild": s["seconds_rebuild"],
            "restore_s": s["seconds"],
            "restore_wall_s": round(self.restore.wall_s, 2),
            "restore_peak_mib": round(self.restore.peak_mib, 1),
            "restore_republish_peak_mib": (
                None
                if self.restore.phase_peak_mib is None
                else round(self.restore.phase_peak_mib, 1)
            ),
            "differing_empty": s["differing"] == [],
            "differing": s["differing"],
            "api_start_s": round(self.api_s, 2),
            "rto_s": round(self.rto_s, 2),
            "coverage_s": round(self.coverage_s, 2),
            "coverage_equal": self.coverage_equal,
        }


def recover(
    settings: Settings,
    folder: Path,
    key_file: Path,
    prefix: str,
    schema: str,
    logs: Path,
    expected: list[dict[str, Any]],
) -> Recovery:
    """`optibid restore` of `folder` into `prefix`/`schema` (empty), then `optibid api` on them:
    the RTO from the restore's launch to the API's first 200 on /ready."""
    env = env_of(prefix, schema, key_file)
    probe, close = schema_appeared(settings, schema)
    began = time.perf_counter()
    try:
        restored = run_measured(
            ["restore", str(folder)], env, logs / f"restore-{schema}.log", probe, ok=(0, 3)
        )
    finally:
        close()
    proc, api_s = serve(env, logs / f"api-{schema}.log")
    rto = time.perf_counter() - began
    try:
        read_began = time.perf_counter()
        found = coverage(settings, schema)
        coverage_s = time.perf_counter() - read_began
    finally:
        stop(proc)
    s = restored.summary
    say(
        f"  restore: {s['records']:,} records, republish {s['seconds_republish']:.1f} s,"
        f" rebuild {s['seconds_rebuild']:.1f} s, peak {restored.peak_mib:.0f} MiB"
        f" (before the rebuild {restored.phase_peak_mib or 0:.0f} MiB),"
        f" differing {s['differing']}; API ready {api_s:.1f} s after; RTO {rto:.1f} s"
    )
    return Recovery(restored, api_s, rto, coverage_s, found == expected, lmp_rows(found))


def backed_up(env: dict[str, str], folder: Path, logs: Path, name: str) -> Measured:
    done = run_measured(["backup", str(folder)], env, logs / f"backup-{name}.log")
    s = done.summary
    say(
        f"  backup: {s['records']:,} records in {s['segments']} segments,"
        f" {s['bytes'] / 1e6:.1f} MB,"
        f" {s['seconds']:.1f} s ({s['records'] / max(s['seconds'], 1e-9):,.0f} records/s),"
        f" peak {done.peak_mib:.0f} MiB"
    )
    return done


def backup_figures(done: Measured) -> dict[str, Any]:
    s = done.summary
    return {
        "records": s["records"],
        "segments": s["segments"],
        "backup_s": s["seconds"],
        "backup_wall_s": round(done.wall_s, 2),
        "backup_mb": round(s["bytes"] / 1e6, 1),
        "backup_records_per_s": round(s["records"] / s["seconds"]),
        "backup_peak_mib": round(done.peak_mib, 1),
    }


def demo_rto(settings: Settings, run: str, key_file: Path, work: Path) -> dict[str, Any]:
    """The demo's data: made, projected, backed up, restored, served."""
    prefix, schema = f"{run}d.", f"{run}d"
    env = env_of(prefix, schema, key_file)
    logs = work / "logs"
    say(f"demo: optibid demo --duration {DEMO_S} under {prefix} ...")
    began = time.perf_counter()
    with (logs / "demo.log").open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "optibid", "demo", "--duration", str(DEMO_S)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=DEMO_S + 600,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"optibid demo exited {done.returncode}:\n{tail(logs / 'demo.log')}")
    demo_s = time.perf_counter() - began
    source = settings.model_copy(update={"topic_prefix": prefix, "db_schema": schema})
    began = time.perf_counter()
    events = rebuild_read_models(source, TopicCatalog(prefix), threading.Event())
    say(f"  demo {demo_s:.0f} s; read models projected: {events:,} events in"
        f" {time.perf_counter() - began:.1f} s")  # fmt: skip
    folder = work / "demo-backups"
    backup = backed_up(env, folder, logs, "demo")
    expected = coverage(settings, schema)
    recovery = recover(settings, folder, key_file, f"{run}e.", f"{run}e", logs, expected)
    return {**backup_figures(backup), **recovery.figures()}


def produce_lmp(settings: Settings, catalog: TopicCatalog, count: int) -> float:
    """`count` LMP events into the catalog's core.market.lmp, CHUNK at a time: each chunk is
    `lmp_events` with its event ids and locations moved past the previous chunks', so every
    event is a row of its own. Returns the seconds taken."""
    topic = catalog.core("lmp")
    began = time.perf_counter()
    with RegistryClient(settings.schema_registry_url) as registry:
        serde = AvroSerde(registry)
        for first in range(0, count, CHUNK):
            events = lmp_events(min(CHUNK, count - first))
            for i, event in enumerate(events):
                node = int(event["location_id"]) - 100_000 + first
                event["event_id"] = str(uuid.UUID(int=first + i))
                event["location_id"] = str(100_000 + node)
                event["location_name"] = f"NODE {node}"
            produce(settings, serde, topic, events)
            done = first + len(events)
            say(f"  produced {done:,} ({done / (time.perf_counter() - began):,.0f} events/s)")
    return time.perf_counter() - began


def ceiling_backup(
    settings: Settings, topic: str, partitions: int, folder: Path
) -> tuple[int, float]:
    """The bare backup: every record of the topic's partitions consumed and written as
    timestamp, key and value to a file per partition. Returns (records, seconds)."""
    folder.mkdir(parents=True)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"{topic}-ceiling",  # never commits
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            "auto.offset.reset": "earliest",
            "log_level": 0,
        }
    )
    files = {p: (folder / f"{p}.bin").open("wb") for p in range(partitions)}
    try:
        began = time.perf_counter()
        ends = {p: watermarks(consumer, TopicPartition(topic, p))[1] for p in range(partitions)}
        left = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in left])
        records = 0
        while left:
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is not None:
                    raise RuntimeError(f"ceiling: {error}")
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                if partition not in left:
                    continue
                key, value = message.key(), message.value()
                out = files[partition]
                out.write(
                    FRAME.pack(
                        message.timestamp()[1],
                        -1 if key is None else len(key),
                        -1 if value is None else len(value),
                    )
                )
                if key:
                    out.write(key)
                if value:
                    out.write(value)
                records += 1
                if offset >= ends[partition] - 1:
                    left.discard(partition)
        for out in files.values():
            out.close()
        return records, time.perf_counter() - began
    finally:
        for out in files.values():
            out.close()
        consumer.close()


def ceiling_republish(
    settings: Settings, folder: Path, topic: str, partitions: int
) -> tuple[int, float]:
    """The bare republish: the ceiling's files read back and produced to a fresh topic, each
    record to its partition with its timestamp, with the restore's producer settings."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_048_576,
            "compression.type": "lz4",
            "log_level": 0,
        }
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    records = 0
    began = time.perf_counter()
    for partition in range(partitions):
        with (folder / f"{partition}.bin").open("rb") as source:
            while frame := source.read(FRAME.size):
                timestamp, key_len, value_len = FRAME.unpack(frame)
                key = source.read(key_len) if key_len >= 0 else None
                value = source.read(value_len) if value_len >= 0 else None
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=value,
                            key=key,
                            partition=partition,
                            timestamp=timestamp,
                            on_delivery=delivered,
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
                records += 1
    if producer.flush(120) != 0 or failures:
        raise RuntimeError(f"ceiling republish: records not delivered {failures[:3]}")
    return records, time.perf_counter() - began


def log_rto(
    settings: Settings,
    run: str,
    tags: tuple[str, str],
    count: int,
    key_file: Path,
    work: Path,
    repeat: int,
    with_ceiling: bool,
) -> dict[str, Any]:
    """A log of `count` LMP events: made, projected, then `repeat` times backed up, restored
    into a fresh prefix and schema, served (and, `with_ceiling`, the ceiling's pair)."""
    prefix, schema = f"{run}{tags[0]}.", f"{run}{tags[0]}"
    env = env_of(prefix, schema, key_file)
    logs = work / "logs"
    source = settings.model_copy(update={"topic_prefix": prefix, "db_schema": schema})
    catalog = prepare_contracts(source)
    say(f"{count:,} LMP events into {catalog.core('lmp').name} ...")
    produce_s = produce_lmp(settings, catalog, count)
    began = time.perf_counter()
    events = rebuild_read_models(source, catalog, threading.Event())
    project_s = time.perf_counter() - began
    say(f"  projected every read model: {events:,} events in {project_s:.1f} s")
    expected = coverage(settings, schema)
    if lmp_rows(expected) != count:
        raise RuntimeError(
            f"the source's lmp read model has {lmp_rows(expected)} rows, not {count}"
        )
    began = time.perf_counter()
    checksums_s: float | None = None
    try:  # the backup's own share: it sums the read models once, into its manifest
        read_model_checksums(settings.postgres_dsn, schema)
        checksums_s = time.perf_counter() - began
        say(f"  read_model_checksums of the source alone: {checksums_s:.1f} s")
    except psycopg.errors.ProgramLimitExceeded as exc:  # the backup will meet it too
        say(f"  read_model_checksums of the source failed: {' '.join(str(exc).split())}")

    lmp = catalog.core("lmp")
    backups: list[Measured] = []
    recoveries: list[Recovery] = []
    ceilings: list[tuple[float, float]] = []
    for attempt in range(repeat):
        say(f" run {attempt + 1} of {count:,} events:")
        folder = work / f"backups-{tags[0]}{attempt}"
        backups.append(backed_up(env, folder, logs, f"{tags[0]}{attempt}"))
        if with_ceiling:
            raw = work / f"ceiling-{attempt}"
            read, read_s = ceiling_backup(settings, lmp.name, lmp.partitions, raw)
            sent, sent_s = ceiling_republish(
                settings, raw, f"{run}c{attempt}.ceiling", lmp.partitions
            )
            if read != count or sent != count:
                raise RuntimeError(f"ceiling: {read} read, {sent} sent, {count} expected")
            ceilings.append((read_s, sent_s))
            say(
                f"  ceiling: consume+write {count / read_s:,.0f} records/s,"
                f" read+produce {count / sent_s:,.0f} records/s"
            )
            shutil.rmtree(raw)
        target = f"{run}{tags[1]}{attempt}"
        recoveries.append(recover(settings, folder, key_file, f"{target}.", target, logs, expected))
        if recoveries[-1].lmp_rows != count:
            raise RuntimeError(f"restored lmp has {recoveries[-1].lmp_rows} rows, not {count}")
        shutil.rmtree(folder)
        drop_prefix(settings, f"{target}.", target)  # frees the broker's disk for the next

    def mid(values: list[float]) -> float:
        return round(median(values), 2)

    records = int(backups[-1].summary["records"])
    backup_s = median([float(b.summary["seconds"]) for b in backups])
    republish_s = median([float(r.restore.summary["seconds_republish"]) for r in recoveries])
    figures: dict[str, Any] = {
        "events": count,
        "produce_s": round(produce_s, 1),
        "project_s": round(project_s, 1),
        "checksums_s": None if checksums_s is None else round(checksums_s, 1),
        **backup_figures(backups[-1]),
        **recoveries[-1].figures(),
        "backup_s": round(backup_s, 2),
        "backup_records_per_s": round(records / backup_s),
        "backup_peak_mib": round(max(b.peak_mib for b in backups), 1),
        "seconds_republish": round(republish_s, 2),
        "republish_records_per_s": round(records / republish_s),
        "seconds_rebuild": mid([float(r.restore.summary["seconds_rebuild"]) for r in recoveries]),
        "restore_peak_mib": round(max(r.restore.peak_mib for r in recoveries), 1),
        "rto_s": mid([r.rto_s for r in recoveries]),
        "api_start_s": mid([r.api_s for r in recoveries]),
        "differing_empty": all(r.restore.summary["differing"] == [] for r in recoveries),
        "coverage_equal": all(r.coverage_equal for r in recoveries),
    }
    if ceilings:
        ceiling_read = count / median([c[0] for c in ceilings])
        ceiling_sent = count / median([c[1] for c in ceilings])
        figures |= {
            "ceiling_backup_records_per_s": round(ceiling_read),
            "ceiling_republish_records_per_s": round(ceiling_sent),
            "ratio": round(records / backup_s / ceiling_read, 3),
            "republish_ratio": round(records / republish_s / ceiling_sent, 3),
        }
    drop_prefix(settings, prefix, schema)
    return figures


def drop_prefix(settings: Settings, prefix: str, schema: str | None) -> None:
    """What was made under `prefix` (topics, consumer groups, registry subjects) and `schema`
    (the PostgreSQL schema, the Redis keys of its namespace); nothing of any other prefix."""
    delete_run_topics(settings, prefix)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})
    groups = [g.group_id for g in admin.list_consumer_groups().result(30).valid]
    ours = [g for g in groups if g is not None and g.startswith(prefix)]
    if ours:
        for future in admin.delete_consumer_groups(ours).values():
            try:
                future.result(30)
            except Exception as exc:  # a group that went by itself is fine
                say(f"consumer group: {exc}")
    with RegistryClient(settings.schema_registry_url) as registry:
        for subject in registry.subjects():
            if subject.startswith(prefix):
                registry.delete_subject(subject)
    if schema is None:
        return
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        schemas = [
            str(name)
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE left(nspname, length(%s)) = %s",
                (schema, schema),
            ).fetchall()
        ]
    for name in schemas:
        drop_schema(settings.postgres_dsn, name)
    client = redis.Redis.from_url(settings.redis_dsn)
    try:
        keys = list(client.scan_iter(match=f"{namespace(schema)}*", count=1000))
        for first in range(0, len(keys), 1000):
            client.delete(*keys[first : first + 1000])
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="attempts on the long log")
    parser.add_argument("--skip-demo", action="store_true", help="leave the demo's RTO out")
    parser.add_argument(
        "--also-small", action="store_true", help="also a tenth of the events, for memory growth"
    )
    args = parser.parse_args()
    settings = local_stack()
    run = run_id()
    work = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    (work / "logs").mkdir()
    key_file = work / "master.json"
    new_key_file(key_file)
    began = time.perf_counter()
    figures: dict[str, Any] = {"benchmark": "backup", "events": args.events, "repeat": args.repeat}
    failed = True
    try:
        if not args.skip_demo:
            figures["demo"] = demo_rto(settings, run, key_file, work)
        figures |= log_rto(
            settings, run, ("s", "t"), args.events, key_file, work, args.repeat, True
        )
        if args.also_small:
            small = log_rto(
                settings, run, ("m", "n"), max(1, args.events // 10), key_file, work, 1, False
            )
            figures["small"] = small
            figures["memory_growth_backup"] = round(
                figures["backup_peak_mib"] / small["backup_peak_mib"], 3
            )
            figures["memory_growth_restore"] = round(
                figures["restore_peak_mib"] / small["restore_peak_mib"], 3
            )
        failed = False
    finally:
        drop_prefix(settings, run, run)
        if failed:
            kept = Path(tempfile.gettempdir()) / f"{run}-logs"
            shutil.copytree(work / "logs", kept)
            say(f"the commands' logs: {kept}")
        shutil.rmtree(work, ignore_errors=True)
    figures["bench_s"] = round(time.perf_counter() - began, 1)
    emit(figures)


if __name__ == "__main__":
    main()
