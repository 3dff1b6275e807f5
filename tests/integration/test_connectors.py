"""Connectors on the real broker and registry: replay counts, kill-and-restart, backfill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from connectors.events import event_id
from connectors.parsing import parser_for
from connectors.records import Record
from connectors.replay import replay
from connectors.runtime import ConnectorRuntime
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.kafka_util import count_records, read_topic, wait_until
from tests.integration.stack_util import backfill_worker

PROJECT = Path(__file__).resolve().parents[2]
SHARED_PJM = PROJECT.parent / "shared" / "fixtures" / "iso" / "pjm"


def runtime_for(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, iso: Iso, dataset: Dataset
) -> ConnectorRuntime:
    return ConnectorRuntime(settings.bootstrap_servers, serde, catalog, iso, dataset)


def expected_records(iso: Iso, dataset: Dataset, files: list[Path]) -> list[Record]:
    parser = parser_for(iso, dataset)
    return [r for f in files for r in parser(f.read_bytes(), f.name)]


def test_replaying_recorded_pjm_exports_publishes_every_record(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, tmp_path: Path
) -> None:
    if not SHARED_PJM.is_dir():
        pytest.skip(f"recorded PJM payloads not present at {SHARED_PJM} (../shared is absent)")
    files = sorted(SHARED_PJM.glob("pjm_dataminer_csv_rt_hrl_lmps_*.csv"))
    assert len(files) == 5
    runtime = runtime_for(stack_settings, serde, contracts_ready, Iso.PJM, Dataset.LMP_RT_HOURLY)
    summary = replay(runtime, SHARED_PJM, pattern="pjm_dataminer_csv_rt_hrl_lmps_*.csv")
    runtime.close()

    expected = expected_records(Iso.PJM, Dataset.LMP_RT_HOURLY, files)
    assert summary.rejected == []
    assert summary.rows == len(expected)
    topic = contracts_ready.raw(Iso.PJM, Dataset.LMP_RT_HOURLY).name
    published = read_topic(stack_settings, topic, serde)
    assert sorted(v["event_id"] for _, v in published) == sorted(event_id(r) for r in expected)
    # keyed per series: every record of a series on one key
    assert {k for k, _ in published} == {r.key for r in expected}
    runs = read_topic(stack_settings, contracts_ready.ingest("connector_runs").name, serde)
    assert sum(v["rows_published"] for _, v in runs) == len(expected)
    assert {v["mode"] for _, v in runs} == {"REPLAY"}

    # a second replay of the same folder resumes after its checkpoint: nothing new
    runtime = runtime_for(stack_settings, serde, contracts_ready, Iso.PJM, Dataset.LMP_RT_HOURLY)
    again = replay(runtime, SHARED_PJM, pattern="pjm_dataminer_csv_rt_hrl_lmps_*.csv")
    runtime.close()
    assert (again.files, again.skipped_by_checkpoint) == (0, len(files))
    assert count_records(stack_settings, topic) == len(expected)


def test_a_file_that_does_not_parse_publishes_nothing_and_is_reported(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, tmp_path: Path
) -> None:
    source = SimulatedSource(Iso.PJM, locations=2)
    start = datetime(2024, 11, 3, 4, tzinfo=UTC)
    (name, data), *_ = source.fetch(Dataset.LMP_RT_5MIN, start, start + timedelta(hours=2))
    (tmp_path / f"a_{name}").write_bytes(data)
    (tmp_path / "b_broken.csv").write_bytes(b"<html><title>Service Unavailable</title></html>")
    runtime = runtime_for(stack_settings, serde, contracts_ready, Iso.PJM, Dataset.LMP_RT_5MIN)
    summary = replay(runtime, tmp_path)
    runtime.close()
    good = parser_for(Iso.PJM, Dataset.LMP_RT_5MIN)(data, name)
    assert summary.rows == len(good)
    assert len(summary.rejected) == 1
    assert summary.rejected[0].startswith("b_broken.csv")
    topic = contracts_ready.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    assert count_records(stack_settings, topic) == len(good)


def test_a_connector_killed_mid_replay_and_restarted_loses_no_interval(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    test_id: str,
    tmp_path: Path,
) -> None:
    source = SimulatedSource(Iso.PJM, locations=20)
    start = datetime(2024, 3, 9, 5, tzinfo=UTC)  # spans the spring-forward day
    for hour in range(48):
        lo = start + timedelta(hours=hour)
        for name, data in source.fetch(Dataset.LMP_RT_5MIN, lo, lo + timedelta(hours=1)):
            (tmp_path / f"{hour:03d}_{name}").write_bytes(data)
    files = sorted(tmp_path.iterdir())
    expected = expected_records(Iso.PJM, Dataset.LMP_RT_5MIN, files)
    topic = contracts_ready.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": f"{test_id}."}
    argv = [
        sys.executable,
        "-m",
        "optibid",
        "connect",
        "pjm",
        "lmp_rt_5min",
        "--replay",
        str(tmp_path),
    ]

    first = subprocess.Popen(
        [*argv, "--speed", "3600"], env=env, cwd=PROJECT, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: count_records(stack_settings, topic) >= len(expected) // 4,
            120,
            "a quarter published",
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    published_before = count_records(stack_settings, topic)
    assert 0 < published_before < len(expected)

    subprocess.run(argv, env=env, cwd=PROJECT, check=True, capture_output=True, timeout=300)

    published = read_topic(stack_settings, topic, serde)
    ids = [v["event_id"] for _, v in published]
    assert set(ids) == {event_id(r) for r in expected}  # nothing lost
    per_file = max(len(expected_records(Iso.PJM, Dataset.LMP_RT_5MIN, [f])) for f in files)
    assert len(ids) - len(set(ids)) <= per_file  # at most the file in flight was sent twice


def test_backfill_worker_serves_a_request_end_to_end(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, test_id: str
) -> None:
    requests = contracts_ready.ingest("backfill_requests")
    encode = serde.encoder(requests.subject, requests.value_schema)
    window = (datetime(2024, 11, 3, 4, tzinfo=UTC), datetime(2024, 11, 4, 5, tzinfo=UTC))
    now = datetime.now(UTC)
    request: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "occurred_at_utc": now,
        "recorded_at_utc": now,
        "source": "test",
        "schema_version": 1,
        "request_id": f"{test_id}-req",
        "iso": "ERCOT",
        "dataset": "lmp_rt_15min",
        "window_start_utc": window[0],
        "window_end_utc": window[1],
        "gap_ids": ["g1"],
        "attempt": 1,
        "reason": "gap",
    }
    producer = Producer(
        {"bootstrap.servers": stack_settings.bootstrap_servers, "enable.idempotence": True}
    )
    producer.produce(requests.name, encode(request), b"ERCOT|lmp_rt_15min")
    assert producer.flush(30) == 0

    source = SimulatedSource(Iso.ERCOT, locations=5)
    worker = backfill_worker(stack_settings, serde, contracts_ready, source, test_id)
    served: list[dict[str, Any]] = []

    def serve_one() -> bool:
        done = worker.poll_once(1.0)
        if done is not None:
            served.append(done)
        return bool(served)

    try:
        wait_until(serve_one, 60, "a served request")
    finally:
        worker.close()
    assert served[0]["outcome"] == "FILLED"

    expected = [
        r
        for name, data in source.fetch(Dataset.LMP_RT_15MIN, *window)
        for r in parser_for(Iso.ERCOT, Dataset.LMP_RT_15MIN)(data, name)
    ]
    completed = read_topic(stack_settings, contracts_ready.ingest("backfill_completed").name, serde)
    assert [(v["request_id"], v["outcome"], v["records_published"]) for _, v in completed] == [
        (f"{test_id}-req", "FILLED", len(expected))
    ]
    # the outcome names what it answers, so a retry needs nothing but the outcome
    assert [(v["attempt"], v["gap_ids"]) for _, v in completed] == [(1, ["g1"])]
    raw = read_topic(
        stack_settings, contracts_ready.raw(Iso.ERCOT, Dataset.LMP_RT_15MIN).name, serde
    )
    assert sorted(v["event_id"] for _, v in raw) == sorted(event_id(r) for r in expected)
