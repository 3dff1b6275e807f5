"""Polling an ISO on its cadence: fetch what is new (plus a look-back for revisions), publish,
checkpoint the position."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from connectors.errors import ConnectorError
from connectors.runtime import ConnectorRuntime, RunStats, new_run
from connectors.sources import Source
from schemas.catalog import Dataset
from schemas.timeutil import floor_to

log = structlog.get_logger(__name__)

# How often each dataset is polled, and how far back each poll looks again for revisions.
CADENCE: dict[Dataset, tuple[timedelta, timedelta]] = {
    Dataset.LMP_DA_HOURLY: (timedelta(hours=1), timedelta(days=1)),
    Dataset.LMP_RT_5MIN: (timedelta(minutes=5), timedelta(hours=2)),
    Dataset.LMP_RT_15MIN: (timedelta(minutes=15), timedelta(hours=2)),
    Dataset.LMP_RT_HOURLY: (timedelta(hours=1), timedelta(days=2)),
    Dataset.LOAD: (timedelta(minutes=15), timedelta(hours=6)),
    Dataset.FUEL_MIX: (timedelta(minutes=15), timedelta(hours=6)),
    Dataset.AS_PRICES: (timedelta(hours=1), timedelta(days=1)),
}
LIVE_STREAM = "live"


@dataclass
class Poller:
    runtime: ConnectorRuntime
    source: Source
    initial_lookback: timedelta = timedelta(days=1)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def poll_once(self) -> RunStats:
        """Fetch [checkpoint - revision look-back, now) and publish it; advance the checkpoint."""
        dataset = self.runtime.dataset
        cadence, revisit = CADENCE[dataset]
        now = self.clock()
        checkpoint = self.runtime.load_checkpoint(LIVE_STREAM)
        position = checkpoint.position_utc if checkpoint and checkpoint.position_utc else None
        start = (position - revisit) if position else now - self.initial_lookback
        end = (
            floor_to(now, int(cadence.total_seconds() // 60))
            if cadence < timedelta(days=1)
            else now
        )
        stats = new_run("LIVE")
        if dataset is Dataset.LMP_DA_HOURLY:
            end = now + timedelta(days=2)  # day-ahead prices are published for tomorrow
        try:
            for name, data in self.source.fetch(dataset, start, end):
                self.runtime.handle_payload(name, data, stats)
        except ConnectorError as exc:
            stats.error(str(exc))
            self.runtime.complete_run(stats)
            raise
        new_position = max(position or start, min(end, stats.last_end_utc or start))
        self.runtime.save_checkpoint(LIVE_STREAM, stats.run_id, position_utc=new_position)
        self.runtime.complete_run(stats)
        return stats

    def run(self, stop: threading.Event) -> None:
        cadence, _ = CADENCE[self.runtime.dataset]
        while not stop.is_set():
            try:
                self.poll_once()
            except ConnectorError as exc:
                log.error("live.poll_failed", error=str(exc))
            stop.wait(cadence.total_seconds())
