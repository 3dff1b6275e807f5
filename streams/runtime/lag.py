"""Consumer lag of a faust worker's group, read from its own consumer on the app's timer.

Every `interval_s` the worker's assigned source partitions (not its tables' changelogs, not
faust's leader topic) are measured from what the consumer already holds: the partition's
latest offset (the high watermark of its last fetch) minus the offset faust last committed.
No other client talks to the broker for it (an admin client beside faust's consumer stalled
the stream worker after a broker restart). Only a partition holding records the group has
never committed asks the broker once for its earliest offset (the lag counts from there, as
retention may have deleted the rest); a partition not fetched yet is not shown. Series of
partitions the worker no longer holds are removed (`schemas.consumer_lag.LagGauges`).

The lag is of committed offsets, as for the other roles: records read but not yet committed
(faust commits every few seconds) count until they are, since a restart would read them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import faust
import structlog
from faust.types import TP

from schemas.consumer_lag import LagGauges, Partition, lags
from streams.runtime.internals import committed_offsets

log = structlog.get_logger(__name__)

LEADER_TOPIC_SUFFIX = "-__assignor-__leader"
EARLIEST_TIMEOUT_S = 5.0


def partition_lags(
    latest: Mapping[TP, int],
    committed: Mapping[TP, int | None],
    earliest: Mapping[TP, int],
) -> dict[Partition, int]:
    """Lag per partition from a faust consumer's view: `latest` offsets (high watermarks),
    `committed` offsets (None where the group never committed) and the `earliest` offsets
    known for partitions never committed. An empty partition has no lag; a partition with
    records, no commit and no earliest offset known yet is left out (not guessed)."""
    done: dict[Partition, int] = {}
    first: dict[Partition, int] = {}
    shown: dict[Partition, int] = {}
    for tp, end in latest.items():
        key = (tp.topic, tp.partition)
        offset = committed.get(tp)
        if offset is not None:
            done[key] = offset
        elif end == 0:
            done[key] = 0
        elif tp in earliest:
            first[key] = earliest[tp]
        else:
            continue
        shown[key] = end
    return lags(done, first, shown)


class ConsumerLag:
    """The lag of `app`'s consumer group, set on `optibid_consumer_lag_records`."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.group = str(app.conf.id)
        self._gauges = LagGauges(self.group)
        self._earliest: dict[TP, int] = {}  # of never-committed partitions, while assigned
        self._failing = False

    def sources(self) -> set[TP]:
        """The assigned partitions the group commits: its tables' changelogs and faust's
        leader topic are read without commits, so they are no lag."""
        changelogs = self.app.tables.changelog_topics
        return {
            tp
            for tp in self.app.consumer.assignment()
            if tp.topic not in changelogs and not tp.topic.endswith(LEADER_TOPIC_SUFFIX)
        }

    async def measure(self) -> dict[Partition, int]:
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
        self._earliest = {tp: o for tp, o in self._earliest.items() if tp in assigned}
        unknown = [
            tp
            for tp, end in latest.items()
            if committed.get(tp) is None and end > 0 and tp not in self._earliest
        ]
        if unknown:
            await self._ask_earliest(unknown)
        result = partition_lags(latest, committed, self._earliest)
        self._gauges.show(result)
        return result

    async def _ask_earliest(self, partitions: list[TP]) -> None:
        try:
            answer: Mapping[TP, int] = await asyncio.wait_for(
                self.app.consumer.earliest_offsets(*partitions), EARLIEST_TIMEOUT_S
            )
        except Exception as exc:  # a timeout or any broker error: asked again next round
            if not self._failing:  # said once per outage; those partitions wait for a commit
                log.warning("consumer_lag.earliest_unavailable", group=self.group, error=repr(exc))
            self._failing = True
            return
        self._failing = False
        self._earliest.update({tp: int(o) for tp, o in answer.items() if o is not None})


def watch_lag(app: faust.App, interval_s: float = 10.0) -> ConsumerLag:
    """Measure `app`'s consumer lag every `interval_s` while it runs (on every worker, each
    for the partitions it holds)."""
    lag = ConsumerLag(app)

    @app.timer(interval=interval_s)  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        try:
            await lag.measure()
        except Exception as exc:  # a metric never stops the worker
            log.warning("consumer_lag.failed", group=lag.group, error=repr(exc))

    return lag
