"""A batch waits for the schema registry instead of failing: an outage is not bad data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import monotonic

import structlog
from faust.types import Message
from prometheus_client import Counter, Gauge

from schemas.errors import RegistryUnavailableError
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

REGISTRY_UP = Gauge(
    "optibid_stream_registry_up",
    "1 when the schema registry answered the last lookup a batch needed, 0 while it does not",
)
REGISTRY_WAITS = Counter(
    "optibid_stream_registry_waits_total",
    "Times a batch waited for the schema registry (a lookup it needed failed)",
)
MAX_DELAY_S = 5.0


async def await_writer_schemas(serde: AvroSerde, runs: Sequence[Sequence[Message]]) -> None:
    """Return once the writer schema of every record in `runs` is known to `serde`, fetching
    the new ones; while the registry does not answer, wait with back-off (logged as
    `registry.unavailable`, then `registry.available` with how long it took). Nothing of the
    batch is processed before, so nothing is dead-lettered for an outage, and the records are
    not acked while it lasts."""
    values = [message.value for run in runs for message in run]
    delay, began = 0.1, None
    while True:
        try:
            serde.prefetch(v for v in values if isinstance(v, bytes))
        except RegistryUnavailableError as exc:
            if began is None:
                began = monotonic()
                log.warning("registry.unavailable", error=str(exc))
            REGISTRY_UP.set(0)
            REGISTRY_WAITS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        REGISTRY_UP.set(1)
        if began is not None:
            log.info("registry.available", waited_s=round(monotonic() - began, 1))
        return
