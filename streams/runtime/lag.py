"""Consumer lag of a faust worker's group, read from its own consumer on the app's timer.

Every `interval_s` the worker's assigned source partitions (not its tables' changelogs, not
faust's leader topic) are measured from what the consumer already holds in memory: the
partition's latest offset (the high watermark of its last fetch) minus the offset faust last
committed. Nothing talks to the broker for it: an admin client beside faust's consumer stalled
the stream worker after a broker restart, and a request for a partition's earliest offset
through faust's consumer thread stalled a worker starting on a backlog. A partition the group
never committed counts from offset 0 until its first commit (records that retention deleted
before the group ever read them count until then); a partition not fetched yet is not shown.
Series of partitions the worker no longer holds are removed (`schemas.consumer_lag.LagGauges`).

The lag is of committed offsets, as for the other roles: records read but not yet committed
(faust commits every few seconds) count until they are, since a restart would read them again.
"""

from __future__ import annotations

from collections.abc import Mapping

import faust
import structlog
from faust.types import TP

from schemas.consumer_lag import LagGauges, Partition, lags
from streams.runtime.internals import committed_offsets

log = structlog.get_logger(__name__)

LEADER_TOPIC_SUFFIX = "-__assignor-__leader"


def partition_lags(
    latest: Mapping[TP, int], committed: Mapping[TP, int | None]
) -> dict[Partition, int]:
    """Lag per partition from a faust consumer's view: `latest` offsets (high watermarks) and
    `committed` offsets (None where the group never committed: counted from offset 0)."""
    done = {(tp.topic, tp.partition): offset for tp, offset in committed.items() if offset}
    return lags(done, {}, {(tp.topic, tp.partition): end for tp, end in latest.items()})


class ConsumerLag:
    """The lag of `app`'s consumer group, set on `optibid_consumer_lag_records`."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.group = str(app.conf.id)
        self._gauges = LagGauges(self.group)

    def sources(self) -> set[TP]:
        """The assigned partitions the group commits: its tables' changelogs and faust's
        leader topic are read without commits, so they are no lag."""
        changelogs = self.app.tables.changelog_topics
        return {
            tp
            for tp in self.app.consumer.assignment()
            if tp.topic not in changelogs and not tp.topic.endswith(LEADER_TOPIC_SUFFIX)
        }

    def measure(self) -> dict[Partition, int]:
        """Measure now, set the gauges and return the lag per partition."""
        consumer = self.app.consumer
        assigned = self.sources()
        committed = committed_offsets(consumer)
        latest: dict[TP, int] = {}
        for tp in assigned:
            try:
                end = consumer.highwater(tp)
            except (AssertionError, KeyError, ValueError):  # revoked a moment ago
                continue
            if end is not None:
                latest[tp] = end
        result = partition_lags(latest, committed)
        self._gauges.show(result)
        return result


def watch_lag(app: faust.App, interval_s: float = 10.0) -> ConsumerLag:
    """Measure `app`'s consumer lag every `interval_s` while it runs (on every worker, each
    for the partitions it holds)."""
    lag = ConsumerLag(app)

    @app.timer(interval=interval_s)  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        try:
            lag.measure()
        except Exception as exc:  # a metric never stops the worker
            log.warning("consumer_lag.failed", group=lag.group, error=repr(exc))

    return lag
