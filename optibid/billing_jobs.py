"""The billing worker's two jobs (`optibid billing`):

- `GraceSweeper`: every `interval_s`, the accounts whose grace period after a failed payment
  has ended (`identity_reads.past_due`) get an `EnforceGrace` command; the account aggregate
  decides (a payment that arrived meanwhile makes it a refusal, `not_due`).
- `UsageReporter`: reads `usage.windows` (the meter's closed windows) under the consumer
  group `<prefix>optibid-billing-usage` and reports each window's rows of an organisation
  that is a Stripe customer as one Billing Meters event. Its identifier is the window's
  event id (a UUIDv5 of organisation and window start), so a window reported twice (a crash
  between the report and the commit) is counted once by Stripe. Offsets are committed only
  after the reports of the batch succeeded; Stripe away: the batch is retried with back-off,
  nothing further read. Organisations without a customer (the free tier, or not yet linked)
  are not billed for usage; their windows are passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
import structlog
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from prometheus_client import Counter

from billing.stripe_gateway import BillingGatewayError
from identity.bus import CommandBus, new_command
from projections import identity_reads
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.offsets import watermarks
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

GROUP = "optibid-billing-usage"
BATCH_MAX = 200

ENFORCED = Counter(
    "optibid_billing_grace_enforced_total", "EnforceGrace commands sent, by outcome", ["outcome"]
)
REPORTED = Counter(
    "optibid_billing_meter_events_total", "Usage windows reported to Stripe, by result", ["result"]
)  # reported, no_customer, empty, failed
ENFORCED.labels("downgraded")  # series from the start, at 0 (refusals add their own code)
for _result in ("reported", "no_customer", "empty", "failed"):
    REPORTED.labels(_result)


class Reporter(Protocol):
    def report_usage(
        self, event_name: str, customer_id: str, value: int, identifier: str, timestamp: datetime
    ) -> None: ...


@dataclass
class GraceSweeper:
    """Sends EnforceGrace for every account past its grace period."""

    bus: CommandBus
    postgres_dsn: str
    schema: str
    timeout_s: float = 10.0

    def sweep(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """One pass: (org_id, outcome) per account asked."""
        at = now or datetime.now(UTC)
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            due = identity_reads.past_due(conn, self.schema, at)
        results = []
        for row in due:
            org_id = str(row["org_id"])
            command = new_command(
                "EnforceGrace", "account", org_id, actor_id="billing", actor_kind="system",
                source="worker:billing", now=at, org_id=org_id,
            )  # fmt: skip
            outcome = self.bus.send(command, self.timeout_s)
            result = "downgraded" if outcome["accepted"] else str(outcome["code"])
            ENFORCED.labels(result).inc()
            log.info("billing.grace_enforced", org_id=org_id, outcome=result)
            results.append((org_id, result))
        return results


class UsageReporter:
    """Reports the meter's windows to Stripe (see the module doc)."""

    def __init__(
        self,
        bootstrap: str,
        serde: AvroSerde,
        catalog: TopicCatalog,
        postgres_dsn: str,
        schema: str,
        gateway: Reporter,
        event_name: str,
    ) -> None:
        self.topic = catalog.usage("windows").name
        self.group = f"{catalog.prefix}{GROUP}"
        self.bootstrap, self.serde = bootstrap, serde
        self.postgres_dsn, self.schema = postgres_dsn, schema
        self.gateway, self.event_name = gateway, event_name
        self.retry_max_s = 30.0
        self._customers: dict[str, tuple[float, str | None]] = {}

    def run(self, stop: threading.Event, until_caught_up: bool = False) -> int:
        """Report until `stop` (or, with `until_caught_up`, until the topic's end as it was
        at the start); the number of windows reported."""
        consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 3,
            }
        )
        reported = 0
        try:
            consumer.subscribe([self.topic])
            ends = self._ends(consumer) if until_caught_up else {}
            while not stop.is_set():
                messages = consumer.consume(BATCH_MAX, 0.5)
                batch = [m for m in messages if m.error() is None]
                for m in messages:
                    error = m.error()
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        log.warning("billing.consume_error", error=str(error))
                if batch:
                    reported += self._report_batch(batch, stop)
                    consumer.commit(
                        offsets=[
                            TopicPartition(topic, partition, offset + 1)
                            for (topic, partition), offset in _lasts(batch).items()
                        ],
                        asynchronous=False,
                    )
                if until_caught_up and self._caught_up(consumer, ends):
                    break
        finally:
            consumer.close()
        return reported

    def _ends(self, consumer: Consumer) -> dict[int, int]:
        meta = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        return {p: watermarks(consumer, TopicPartition(self.topic, p))[1] for p in meta.partitions}

    def _caught_up(self, consumer: Consumer, ends: dict[int, int]) -> bool:
        asked = [TopicPartition(self.topic, p) for p in ends]
        committed = {tp.partition: tp.offset for tp in consumer.committed(asked, timeout=10)}
        return all(end == 0 or committed.get(p, -1) >= end for p, end in ends.items())

    def _report_batch(self, batch: list[Message], stop: threading.Event) -> int:
        reported = 0
        for message in batch:
            value = message.value()
            if value is None:
                continue
            _, window = self.serde.decode(value)
            delay = 0.5
            while True:
                try:
                    reported += self._report(window)
                    break
                except (BillingGatewayError, psycopg.OperationalError) as exc:
                    REPORTED.labels("failed").inc()
                    log.warning("billing.report_retry", error=str(exc), retry_in_s=delay)
                    if stop.wait(delay):
                        raise InterruptedError("stopped while Stripe was away") from exc
                    delay = min(delay * 2, self.retry_max_s)
        return reported

    def _report(self, window: dict[str, Any]) -> int:
        rows = int(window["rows"])
        if rows <= 0:
            REPORTED.labels("empty").inc()
            return 0
        customer = self._customer(str(window["org_id"]))
        if customer is None:
            REPORTED.labels("no_customer").inc()
            return 0
        self.gateway.report_usage(
            self.event_name, customer, rows, str(window["event_id"]), window["window_end_utc"]
        )
        REPORTED.labels("reported").inc()
        return 1

    def _customer(self, org_id: str) -> str | None:
        read_at, customer = self._customers.get(org_id, (-60.0, None))
        if time.monotonic() - read_at < 60.0:
            return customer
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            found = identity_reads.account(conn, self.schema, org_id)["stripe_customer_id"]
        customer = str(found) if found else None
        if len(self._customers) > 10_000:
            self._customers.clear()
        self._customers[org_id] = (time.monotonic(), customer)
        return customer


def _lasts(batch: list[Message]) -> dict[tuple[str, int], int]:
    """The last offset of the batch per (topic, partition)."""
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        last[str(m.topic()), int(m.partition() or 0)] = int(m.offset() or 0)
    return last


def every(interval_s: float, stop: threading.Event, job: Callable[[], Any], what: str) -> None:
    """Run `job` every `interval_s` until `stop`; a failure is logged and retried next time."""
    while not stop.is_set():
        try:
            job()
        except Exception as exc:
            log.warning("billing.job_failed", job=what, error=str(exc))
        stop.wait(interval_s)
