"""`optibid dlq redrive` on the real broker: records rejected under a price bound that was too
tight reach the canonical topic once the bound is fixed and they are redriven; a redrive does not
republish what it already did; what still fails comes back to the DLQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from streams.redrive import HEADER_FROM, Redriver
from tests.integration.kafka_util import count_records, messages, read_topic, wait_until
from tests.integration.streams_util import PROJECT, WorkerProcess
from tests.unit.streams.factories import raw_lmp

START = datetime(2025, 7, 14, 16, 0, tzinfo=UTC)
TIGHT = json.dumps({"PJM": [-100, 100]})  # a bound too tight for a July afternoon


def publish(settings: Settings, serde: AvroSerde, catalog: TopicCatalog) -> list[float]:
    """Six 5-minute prices, three of them above $100, and one undecodable record."""
    topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN)
    encode = serde.encoder(topic.subject, topic.value_schema)
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True}
    )
    prices = [45.0, 180.0, 52.5, 640.0, 38.0, 1_250.0]
    for number, price in enumerate(prices):
        record = raw_lmp("51288", START + timedelta(minutes=5 * number), price)
        record["event_id"] = str(uuid.uuid4())
        producer.produce(topic.name, encode(record), b"PJM|RT_5MIN|51288")
    producer.produce(topic.name, b"\x00\x00\x00\x7f\xffnot avro", b"PJM|RT_5MIN|51288")
    assert producer.flush(30) == 0
    return prices


def test_redrive_after_widening_a_price_bound(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, worker: WorkerProcess
) -> None:
    catalog = contracts_ready
    lmp, dlq = catalog.core("lmp").name, catalog.dlq(Iso.PJM, Dataset.LMP_RT_5MIN).name
    worker.start(env={"OPTIBID_PRICE_BOUNDS": TIGHT})
    prices = publish(stack_settings, serde, catalog)
    wait_until(lambda: count_records(stack_settings, dlq) >= 4, 90, "four dead letters")
    wait_until(lambda: count_records(stack_settings, lmp) >= 3, 30, "three canonical prices")
    letters = [v for _, v in read_topic(stack_settings, dlq, serde)]
    assert sorted(c for v in letters for c in v["reason_codes"]) == [
        "PRICE_OUT_OF_BOUNDS",
        "PRICE_OUT_OF_BOUNDS",
        "PRICE_OUT_OF_BOUNDS",
        "UNDECODABLE",
    ]
    worker.stop()
    worker.start()  # the fix: default bounds

    redriver = Redriver(stack_settings.bootstrap_servers, serde, catalog)
    seen: list[tuple[int, int]] = []
    report = redriver.redrive(
        Iso.PJM,
        Dataset.LMP_RT_5MIN,
        reasons=["PRICE_OUT_OF_BOUNDS"],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (report.read, report.republished, report.filtered_out) == (4, 3, 1)
    assert seen[-1] == (4, 4)
    wait_until(lambda: count_records(stack_settings, lmp) >= 6, 90, "redriven prices")
    published = sorted(v["lmp_usd_per_mwh"] for _, v in read_topic(stack_settings, lmp, serde))
    assert published == sorted(prices)  # each interval once, the rejected ones included
    # the raw topic holds the redriven records, each naming its dead letter
    raw = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    headers = _redrive_headers(stack_settings, raw)
    assert len(headers) == 3
    assert all(h.startswith(f"{dlq}:") for h in headers)

    # nothing new for this filter: its progress was committed
    again = redriver.redrive(Iso.PJM, Dataset.LMP_RT_5MIN, reasons=["PRICE_OUT_OF_BOUNDS"])
    assert (again.read, again.republished) == (0, 0)

    # everything, from the CLI: the undecodable record fails again and comes back to the DLQ;
    # the three prices are republished once more and absorbed as duplicates
    out = subprocess.run(
        [sys.executable, "-m", "optibid", "dlq", "redrive", "pjm", "lmp_rt_5min"],
        env={**os.environ, "OPTIBID_TOPIC_PREFIX": worker.test_id + "."},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["read"], summary["republished"]) == (4, 4)
    wait_until(lambda: count_records(stack_settings, dlq) >= 5, 60, "the undecodable one back")
    assert count_records(stack_settings, lmp) == 6
    letters = [v for _, v in read_topic(stack_settings, dlq, serde)]
    assert [v["reason_codes"] for v in letters].count(["UNDECODABLE"]) == 2
    assert redriver.summary(Iso.PJM, Dataset.LMP_RT_5MIN) == {
        "PRICE_OUT_OF_BOUNDS": 3,
        "UNDECODABLE": 2,
    }


def _redrive_headers(settings: Settings, topic: str) -> list[str]:
    found: list[str] = []
    for _, msg in messages(settings, topic):
        headers: list[tuple[str, bytes]] = list(msg.headers() or [])  # type: ignore[arg-type]
        found += [v.decode() for name, v in headers if name == HEADER_FROM]
    return found
