"""The usage meter on the real broker and registry: requests of three organisations counted into
one-minute windows, each window sent once closed with exactly the requests published in it; a
meter killed, its local store gone and every record handed over again restores its state from
the changelog and counts nothing twice; the usage projector then gives the same totals per
range, day and organisation."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from optibid.settings import Settings
from projections import usage_reads
from projections.migrate import migrate
from projections.usage_models import UsageProjector
from projections.usage_reads import UsageTotals
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.serde import AvroSerde
from tests.integration.kafka_util import read_topic, wait_until
from tests.integration.stack_util import produce
from tests.integration.streams_util import WorkerProcess, free_port

REQUEST_SCHEMA = "energy.optibid.usage.RequestServed"
FIELDS = ContractSet().get(REQUEST_SCHEMA).field_names
ORGS = ("o1", "o2", "o3")
ENV = {"OPTIBID_METER_WINDOW_S": "60", "OPTIBID_METER_LATENESS_S": "2"}  # idle after 5 s


def request(org_id: str, at: datetime, n: int) -> dict[str, Any]:
    """The n-th RequestServed of the test: every fifth a dry run, the rows and bytes vary."""
    dry_run = n % 5 == 4
    values = {
        "event_id": f"req-{n}", "occurred_at_utc": at, "recorded_at_utc": at, "source": "api",
        "schema_version": 1, "org_id": org_id, "principal_kind": "api_key",
        "principal_id": f"key-{org_id}", "method": "GET", "route": "latest_prices",
        "dataset": "lmp", "status": 200, "rows": 0 if dry_run else n % 7 + 1,
        "bytes": 100 + n, "latency_seconds": 0.01, "tier": "starter", "dry_run": dry_run,
    }  # fmt: skip
    return {name: values[name] for name in FIELDS}


def requests(base: datetime, windows: range, first_n: int) -> list[dict[str, Any]]:
    """Requests of the three organisations in each of `windows` (minutes after `base`), a
    different number per organisation and window, in the order of their times."""
    out = []
    n = first_n
    for w in windows:
        for i, org_id in enumerate(ORGS):
            for k in range(2 + (i + w) % 3):
                second = 3 + 11 * k + 2 * i  # within the minute, apart from the others'
                out.append(request(org_id, base + timedelta(minutes=w, seconds=second), n))
                n += 1
    return sorted(out, key=lambda r: r["occurred_at_utc"])


def expected(base: datetime, published: list[dict[str, Any]]) -> dict[tuple[str, datetime], Any]:
    """Per (org, window start): (requests, rows, bytes, dry_runs), counted here by hand."""
    counts: dict[tuple[str, datetime], Counter[str]] = defaultdict(Counter)
    for r in published:
        minute = int((r["occurred_at_utc"] - base).total_seconds() // 60)
        c = counts[r["org_id"], base + timedelta(minutes=minute)]
        if r["dry_run"]:
            c["dry_runs"] += 1
        else:
            c["requests"] += 1
            c["rows"] += r["rows"]
            c["bytes"] += r["bytes"]
    return {k: (c["requests"], c["rows"], c["bytes"], c["dry_runs"]) for k, c in counts.items()}


class MeterProcess(WorkerProcess):
    """`optibid meter` whose metrics port the test knows."""

    def __init__(self, test_id: str, state_dir: Path) -> None:
        super().__init__(test_id, state_dir, command="meter")
        self.metrics_port = free_port()

    def start(self, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **ENV, **(env or {}), "OPTIBID_TOPIC_PREFIX": f"{self.test_id}."}
        argv = [
            sys.executable, "-m", "optibid", "meter", "--app-id", self.app_id,
            "--store", "rocksdb://", "--web-port", str(free_port()),
            "--metrics-port", str(self.metrics_port), "--loglevel", "info",
        ]  # fmt: skip
        self.spawn(argv, env)

    def requests_counted(self) -> dict[str, float]:
        """optibid_meter_requests_total by outcome, as this process counted them."""
        return {
            sample.labels["outcome"]: sample.value
            for sample in self.samples("optibid_meter_requests")
            if sample.name == "optibid_meter_requests_total"
        }


def windows_sent(
    settings: Settings, serde: AvroSerde, topic: str
) -> dict[str, list[dict[str, Any]]]:
    """Every record on usage.windows, by event id."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, record in read_topic(settings, topic, serde):
        assert key == record["org_id"]
        by_id[record["event_id"]].append(record)
    return by_id


def rewind(settings: Settings, group: str, topic: str) -> None:
    """The group's offsets on `topic` back to 0, once the broker has let the killed member go
    (the group must be empty)."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    offsets = [TopicPartition(topic, p, 0) for p in range(3)]

    def rewound() -> bool:
        request = [ConsumerGroupTopicPartitions(group, offsets)]
        try:
            results = [f.result(30) for f in admin.alter_consumer_group_offsets(request).values()]
        except KafkaException:
            return False
        # refused partition by partition while the killed member is still in the group
        return all(tp.error is None for r in results for tp in r.topic_partitions)

    wait_until(rewound, 120, f"the offsets of {group} rewound")


def test_requests_are_counted_once_into_their_windows_across_a_restart(
    stack_settings: Settings,
    contracts_ready: TopicCatalog,
    serde: AvroSerde,
    db_schema: str,
    test_id: str,
    tmp_path: Path,
) -> None:
    settings, catalog = stack_settings, contracts_ready
    requests_topic, windows_topic = catalog.usage("requests"), catalog.usage("windows")
    encode = serde.encoder(requests_topic.subject, requests_topic.value_schema)
    now = datetime.now(UTC)
    base = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    first, second = requests(base, range(4), 0), requests(base, range(4, 7), 1000)
    mis_keyed = request("o2", base + timedelta(minutes=1), 9999)
    produce(settings, requests_topic.name, [
        *[(r["org_id"].encode(), encode(r)) for r in first[:10]],
        (b"o1", b"\x01not avro at all"),  # logged and passed
        (b"o1", encode(mis_keyed)),  # o2's request keyed by o1: logged and passed
        *[(r["org_id"].encode(), encode(r)) for r in first[10:]],
    ])  # fmt: skip
    want = expected(base, first + second)

    meter = MeterProcess(test_id, tmp_path)
    meter.start()
    try:
        wait_until(lambda: meter.requests_counted().get("counted") == len(first), 90,
                   "the first requests counted")  # fmt: skip
        # the stream time (in minute 3) closed minutes 0 to 2; minute 3 waits for more
        wait_until(lambda: len(windows_sent(settings, serde, windows_topic.name)) >= 9, 60,
                   "the first windows")  # fmt: skip
        assert meter.logs().count("meter.request_undecodable") == 2

        # killed, its local store gone, and every record to be handed over again
        meter.kill()
        shutil.rmtree(settings.state_dir / "meter" / meter.app_id, ignore_errors=True)
        rewind(settings, meter.app_id, requests_topic.name)
        produce(settings, requests_topic.name, [(r["org_id"].encode(), encode(r)) for r in second])
        meter.start()
        # every window, the last ones closed by the wall clock once no request comes
        wait_until(lambda: len(windows_sent(settings, serde, windows_topic.name)) >= len(want),
                   120, "every window")  # fmt: skip
        counted = meter.requests_counted()
    finally:
        meter.stop()

    # the table came back from its changelog: the first requests were all known, none counted
    # again; only the new ones counted
    assert counted.get("duplicate") == len(first)
    assert counted.get("counted") == len(second)
    assert "late" not in counted  # requests in order: none came after its window closed
    assert meter.logs().count("meter.request_undecodable") == 4  # twice each, as delivered
    sent = windows_sent(settings, serde, windows_topic.name)
    for copies in sent.values():  # a window sent again is the very same record
        assert all(c == copies[0] for c in copies)
    got = {
        (c[0]["org_id"], c[0]["window_start_utc"]): (
            c[0]["requests"], c[0]["rows"], c[0]["bytes"], c[0]["dry_runs"],
        )
        for c in sent.values()
    }  # fmt: skip
    assert got == want
    for copies in sent.values():
        w = copies[0]
        assert w["window_end_utc"] - w["window_start_utc"] == timedelta(minutes=1)
        assert w["occurred_at_utc"] == w["window_end_utc"]
        assert w["source"] == "worker:meter"

    # projected: the read model's sums are those of the requests published
    with psycopg.connect(settings.postgres_dsn) as conn:
        migrate(conn, db_schema)
    projector = UsageProjector(
        settings.bootstrap_servers, serde, catalog, settings.postgres_dsn, db_schema
    )
    try:
        projector.run(threading.Event(), until_caught_up=True)
    finally:
        projector.close()

    def total(org_id: str | None = None) -> UsageTotals:
        sums = [v for (o, _), v in want.items() if org_id in (None, o)]
        return UsageTotals(*(sum(s[i] for s in sums) for i in range(4)))

    day = base.replace(hour=0)
    with psycopg.connect(settings.postgres_dsn) as conn:
        for org_id in ORGS:
            assert usage_reads.totals(conn, db_schema, org_id, base, now) == total(org_id)
            assert usage_reads.daily(conn, db_schema, org_id, day, now) == [
                (day.date(), total(org_id))
            ]
        assert usage_reads.by_org(conn, db_schema, base, now) == [(o, total(o)) for o in ORGS]
        assert usage_reads.totals(conn, db_schema, "o1", base, base + timedelta(minutes=1)) == (
            UsageTotals(*want["o1", base])
        )
