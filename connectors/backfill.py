"""Backfill: fetch a missing window again and publish it, by hand or from backfill requests.

The worker consumes `ingest.backfill_requests`, fetches each window from its source, publishes
the records to the raw topic and answers with a BackfillCompleted on
`ingest.backfill_completed`. Offsets are committed only after the answer is acknowledged, so a
worker killed mid-request serves it again on restart (the re-published records carry the same
event ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from confluent_kafka import Consumer

from connectors.errors import ConnectorError, FetchError, NoDataError
from connectors.runtime import ConnectorRuntime, RunStats, new_run
from connectors.sources import Source
from schemas import kafka_client
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.envelope import envelope
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3
BACKFILL_REQUESTED = "energy.optibid.ingest.BackfillRequested"


@dataclass(frozen=True)
class Outcome:
    outcome: str  # FILLED | EMPTY | FAILED | UNRECOVERABLE
    records: int
    reason: str | None


def chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    current = start
    while current < end:
        out.append((current, min(current + size, end)))
        current += size
    return out


def backfill_window(
    runtime: ConnectorRuntime,
    source: Source,
    start_utc: datetime,
    end_utc: datetime,
    *,
    chunk: timedelta = timedelta(days=1),
    attempt: int = 1,
    on_chunk: Callable[[datetime, datetime, RunStats], None] | None = None,
) -> Outcome:
    """Fetch and publish [start_utc, end_utc) chunk by chunk; one run event per chunk."""
    total = 0
    reasons: list[str] = []
    for lo, hi in chunks(start_utc, end_utc, chunk):
        stats = new_run("BACKFILL")
        try:
            for name, data in source.fetch(runtime.dataset, lo, hi):
                runtime.handle_payload(name, data, stats)
        except NoDataError as exc:
            reasons.append(str(exc))
        except FetchError as exc:
            stats.error(str(exc))
            runtime.complete_run(stats)
            outcome = "UNRECOVERABLE" if attempt >= MAX_ATTEMPTS else "FAILED"
            return Outcome(outcome, total + stats.rows, f"attempt {attempt}: {exc}")
        reasons += stats.errors
        total += stats.rows
        runtime.complete_run(stats)
        if on_chunk:
            on_chunk(lo, hi, stats)
    if total:
        return Outcome("FILLED", total, "; ".join(reasons)[:1000] or None)
    return Outcome("EMPTY", 0, "; ".join(reasons)[:1000] or "the source returned no records")


class BackfillWorker:
    """Serves backfill requests for the ISOs it has sources for."""

    def __init__(
        self,
        bootstrap: str,
        serde: AvroSerde,
        catalog: TopicCatalog,
        sources: dict[Iso, Source],
        group_id: str = "optibid-backfill",
    ) -> None:
        self.bootstrap = bootstrap
        self.serde = serde
        self.catalog = catalog
        self.sources = sources
        self.requests = catalog.ingest("backfill_requests")
        self.completed = catalog.ingest("backfill_completed")
        self._runtimes: dict[tuple[Iso, Dataset], ConnectorRuntime] = {}
        self._encode_done = serde.encoder(self.completed.subject, self.completed.value_schema)
        self.consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 3,
            }
        )
        self.consumer.subscribe([self.requests.name])

    def _runtime(self, iso: Iso, dataset: Dataset) -> ConnectorRuntime:
        if (iso, dataset) not in self._runtimes:
            self._runtimes[iso, dataset] = ConnectorRuntime(
                self.bootstrap, self.serde, self.catalog, iso, dataset
            )
        return self._runtimes[iso, dataset]

    def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        """Serve one decoded BackfillRequested; returns the BackfillCompleted published."""
        iso = Iso.from_wire(request["iso"])
        dataset = Dataset(request["dataset"])
        runtime = self._runtime(iso, dataset)
        source = self.sources.get(iso)
        if source is None:
            outcome = Outcome("FAILED", 0, f"this worker has no source for {iso.value}")
        else:
            outcome = backfill_window(
                runtime,
                source,
                request["window_start_utc"],
                request["window_end_utc"],
                attempt=request["attempt"],
            )
        now = datetime.now(UTC)
        attempt = request["attempt"]
        # the outcome of each attempt is an event of its own (a retry's id names its attempt)
        answered = request["request_id"] if attempt == 1 else f"{request['request_id']}#{attempt}"
        done = {
            **envelope(
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"backfill-done|{answered}")),
                occurred_at_utc=now,
                recorded_at_utc=now,
                source=f"connector:{iso.value}:backfill",
            ),
            "request_id": request["request_id"],
            "iso": request["iso"],
            "dataset": request["dataset"],
            "window_start_utc": request["window_start_utc"],
            "window_end_utc": request["window_end_utc"],
            "outcome": outcome.outcome,
            "records_published": outcome.records,
            "reason": outcome.reason,
            "attempt": attempt,
            "gap_ids": list(request["gap_ids"]),
        }
        key = f"{request['iso']}|{request['dataset']}"
        runtime.emit(self.completed.name, key, self._encode_done(done), "backfill outcome")
        log.info("backfill.completed", request_id=request["request_id"], outcome=outcome.outcome)
        return done

    def poll_once(self, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """Serve at most one request; commit its offset only once its answer is acknowledged."""
        msg = self.consumer.poll(timeout_s)
        if msg is None:
            return None
        if msg.error():
            log.warning("backfill.consume_error", error=str(msg.error()))
            return None
        value = msg.value()
        if value is None:
            self.consumer.commit(message=msg, asynchronous=False)
            return None
        full_name, request = self.serde.decode(value)
        if full_name != BACKFILL_REQUESTED:
            raise ConnectorError(
                f"{self.requests.name} carries {full_name}, not {BACKFILL_REQUESTED}"
            )
        done = self.serve(request)
        self.consumer.commit(message=msg, asynchronous=False)
        return done

    def close(self) -> None:
        self.consumer.close()
        for runtime in self._runtimes.values():
            runtime.close()
