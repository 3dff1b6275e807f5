"""Consumer lag per partition as Prometheus gauges, shared by the two ways a role measures it.

`optibid.lag_watch.LagWatch` asks the broker for a group's committed and latest offsets (the
identity and usage projectors, billing); `streams.runtime.lag.ConsumerLag` reads them from the
faust workers' own consumer (stream, KPI, identity handler, meter). Both set
`optibid_consumer_lag_records{group,topic,partition}` through `LagGauges`, which removes the
series of partitions a group no longer has, so the gauge holds one series per partition of the
role's groups whatever the uptime.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import time

from prometheus_client import Gauge

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


class LagGauges:
    """The lag series of one consumer group: each measurement replaces the last."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._shown: set[Partition] = set()

    def show(self, result: Mapping[Partition, int]) -> None:
        for topic, partition in self._shown - set(result):
            CONSUMER_LAG.remove(self.group, topic, str(partition))
        for (topic, partition), lag in result.items():
            CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
        self._shown = set(result)
        LAG_CHECKED.labels(self.group).set(time())
