"""Consumer lag per partition of a role's consumer groups, as Prometheus gauges.

The identity and usage projectors and billing's usage reporter start one watch over their own
groups. The faust workers (stream, KPI, identity handler, meter) do not: a watch beside faust's
consumer in one process stalled the stream worker after a broker restart, cause not yet found
(tests/integration/test_outages.py); their groups' lag is for an outside exporter to read.
Each round (10 s) it asks the group coordinator for the committed offsets and the partition
leaders for the latest offsets, and sets `optibid_consumer_lag_records{group,topic,partition}`
to what is written but not yet committed. A partition the group has not committed yet counts
from the partition's earliest offset. Series of partitions the group no longer has are removed,
so the gauge holds one series per partition of the role's groups, whatever the uptime.

The lag is of committed offsets: a worker that has read records but not yet committed them
(faust commits every few seconds) shows them as lag until it does. That is the lag a
restarted worker would replay, which is what an operator needs to see.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from time import time

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Gauge

from schemas import kafka_client

log = structlog.get_logger(__name__)

CONSUMER_LAG = Gauge(
    "optibid_consumer_lag_records",
    "Records written to a partition and not yet committed by the consumer group",
    ["group", "topic", "partition"],
)
LAG_CHECKED = Gauge(
    "optibid_consumer_lag_checked_timestamp_seconds",
    "When the consumer group's lag was last measured (Unix time)",
    ["group"],
)

Partition = tuple[str, int]


def lags(
    committed: Mapping[Partition, int],
    earliest: Mapping[Partition, int],
    latest: Mapping[Partition, int],
) -> dict[Partition, int]:
    """Records not committed per partition: latest minus committed, or minus the earliest
    offset where the group has no commit (a negative committed offset); never below 0 (a
    committed offset can pass a latest offset read a moment before)."""
    out: dict[Partition, int] = {}
    for partition, end in latest.items():
        done = committed.get(partition, -1)
        if done < 0:
            done = earliest.get(partition, 0)
        out[partition] = max(0, end - done)
    return out


class LagWatch:
    """Measures `groups`' lag from a thread of its own, every `interval_s`, until closed."""

    def __init__(self, bootstrap: str, groups: Sequence[str], interval_s: float = 10.0) -> None:
        self.groups = tuple(groups)
        self.interval_s = interval_s
        self._admin = AdminClient(
            {**kafka_client.librdkafka(), "bootstrap.servers": bootstrap, "log_level": 0}
        )
        self._stop = threading.Event()
        self._shown: dict[str, set[Partition]] = {g: set() for g in self.groups}
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="lag-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for group in self.groups:
                try:
                    self.measure(group)
                except (KafkaException, TimeoutError, ValueError) as exc:
                    if not self._failing:  # said once per outage; the gauges keep their value
                        log.warning("consumer_lag.unavailable", group=group, error=str(exc))
                    self._failing = True
                else:
                    if self._failing:
                        log.info("consumer_lag.available", group=group)
                    self._failing = False

    def measure(self, group: str) -> dict[Partition, int]:
        """Measure one group now, set its gauges and return its lag per partition."""
        request = [ConsumerGroupTopicPartitions(group)]
        answer = self._admin.list_consumer_group_offsets(request, request_timeout=5)
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in answer[group].result(timeout=10).topic_partitions or []
        }
        partitions = [TopicPartition(t, p) for t, p in committed]
        latest = self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        uncommitted = [tp for tp in partitions if committed[(tp.topic, tp.partition)] < 0]
        earliest = self._offsets(uncommitted, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        result = lags(committed, earliest, latest)
        self._show(group, result)
        return result

    def _offsets(
        self, partitions: Iterable[TopicPartition], spec: OffsetSpec
    ) -> dict[Partition, int]:
        wanted = dict.fromkeys(partitions, spec)
        if not wanted:
            return {}
        futures = self._admin.list_offsets(wanted, request_timeout=5)
        return {(tp.topic, tp.partition): f.result(timeout=10).offset for tp, f in futures.items()}

    def _show(self, group: str, result: Mapping[Partition, int]) -> None:
        for topic, partition in self._shown[group] - set(result):
            CONSUMER_LAG.remove(group, topic, str(partition))
        for (topic, partition), lag in result.items():
            CONSUMER_LAG.labels(group, topic, str(partition)).set(lag)
        self._shown[group] = set(result)
        LAG_CHECKED.labels(group).set(time())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
