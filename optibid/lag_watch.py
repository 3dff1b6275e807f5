"""Consumer lag per partition of a role's consumer groups, asked of the broker.

The identity and usage projectors and billing's usage reporter start one watch over their own
groups. The faust workers (stream, KPI, identity handler, meter) read theirs from their own
consumer instead (`streams.runtime.lag`): an admin client beside faust's consumer in one
process stalled the stream worker after a broker restart (tests/integration/test_outages.py).
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
from collections.abc import Iterable, Sequence

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from schemas import kafka_client
from schemas.consumer_lag import LagGauges, Partition, lags

log = structlog.get_logger(__name__)


class LagWatch:
    """Measures `groups`' lag from a thread of its own, every `interval_s`, until closed."""

    def __init__(self, bootstrap: str, groups: Sequence[str], interval_s: float = 10.0) -> None:
        self.groups = tuple(groups)
        self.interval_s = interval_s
        self._admin = AdminClient(
            {**kafka_client.librdkafka(), "bootstrap.servers": bootstrap, "log_level": 0}
        )
        self._stop = threading.Event()
        self._gauges = {g: LagGauges(g) for g in self.groups}
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
        self._gauges[group].show(result)
        return result

    def _offsets(
        self, partitions: Iterable[TopicPartition], spec: OffsetSpec
    ) -> dict[Partition, int]:
        wanted = dict.fromkeys(partitions, spec)
        if not wanted:
            return {}
        futures = self._admin.list_offsets(wanted, request_timeout=5)
        return {(tp.topic, tp.partition): f.result(timeout=10).offset for tp, f in futures.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
