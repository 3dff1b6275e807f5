"""Live push: the projectors' Redis pub/sub updates, fanned out to server-sent-event clients.

One subscription per API process feeds a ring buffer of recent updates, each with an id
`<epoch>-<sequence>`; a client that reconnects with `Last-Event-ID` of this process gets what it
missed from the buffer, and one whose id the buffer no longer holds (or from another process)
gets a snapshot of the latest values first, so it is never silently behind. Comment heartbeats
keep proxies from closing idle streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter, Gauge

log = structlog.get_logger(__name__)

LIVE_CLIENTS = Gauge("optibid_api_live_clients", "Server-sent-event clients connected")
LIVE_EVENTS = Counter("optibid_api_live_events_total", "Updates received from Redis", ["topic"])
LIVE_UP = Gauge("optibid_api_live_subscribed", "Whether the Redis subscription is up")


@dataclass(frozen=True)
class Update:
    id: str
    sequence: int
    topic: str  # lmp or kpi
    data: dict[str, Any]

    def frame(self) -> str:
        return f"id: {self.id}\nevent: {self.topic}\ndata: {json.dumps(self.data)}\n\n"


@dataclass
class LiveHub:
    """Subscribes to the update channels and keeps the last `capacity` updates."""

    redis_url: str
    channels: dict[str, str]  # Redis channel -> SSE topic (lmp, kpi)
    capacity: int = 10_000
    epoch: str = field(default_factory=lambda: format(int(time.time() * 1000), "x"))

    def __post_init__(self) -> None:
        self.buffer: deque[Update] = deque(maxlen=self.capacity)
        self.sequence = 0
        self.queues: set[asyncio.Queue[Update]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def publish(self, topic: str, data: dict[str, Any]) -> Update:
        """Number an update, keep it and hand it to every client."""
        self.sequence += 1
        update = Update(f"{self.epoch}-{self.sequence}", self.sequence, topic, data)
        self.buffer.append(update)
        LIVE_EVENTS.labels(topic).inc()
        for queue in list(self.queues):
            if queue.full():
                queue.get_nowait()  # a slow client loses its oldest update, not the stream
            queue.put_nowait(update)
        return update

    def since(self, last_event_id: str | None) -> list[Update] | None:
        """What a client resuming after `last_event_id` missed; None when the buffer cannot
        tell (another process's id, or older than the buffer): it needs a snapshot."""
        if not last_event_id:
            return None
        epoch, _, number = last_event_id.partition("-")
        if epoch != self.epoch or not number.isdigit():
            return None
        sequence = int(number)
        if self.buffer and sequence < self.buffer[0].sequence - 1:
            return None
        return [u for u in self.buffer if u.sequence > sequence]

    async def _run(self) -> None:
        delay = 0.5
        while True:
            client = aioredis.from_url(self.redis_url)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(*self.channels)
                LIVE_UP.set(1)
                log.info("live.subscribed", channels=sorted(self.channels))
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else str(channel)
                    try:
                        data = json.loads(message["data"])
                    except (TypeError, ValueError):
                        log.warning("live.undecodable", channel=name)
                        continue
                    self.publish(self.channels.get(name, name), data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: retry with back-off
                LIVE_UP.set(0)
                log.warning("live.redis_down", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                await client.aclose()


def matches(update: Update, topics: set[str], locations: set[str]) -> bool:
    if update.topic not in topics:
        return False
    return not locations or str(update.data.get("location_id")) in locations


async def stream(
    hub: LiveHub,
    topics: set[str],
    locations: set[str],
    last_event_id: str | None,
    snapshot: Callable[[], Iterable[tuple[str, dict[str, Any]]]],
    heartbeat_s: float,
    is_disconnected: Callable[[], Any],
    allowed: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncGenerator[str]:
    """The SSE body of one client. `allowed` is asked again at least every `heartbeat_s`: a
    credential revoked, expired or demoted since the stream began ends it (the client signs
    in again or refreshes its token and reconnects with Last-Event-ID)."""
    queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=1_000)
    checked = time.monotonic()

    async def still_allowed() -> bool:
        nonlocal checked
        if allowed is None or time.monotonic() - checked < heartbeat_s:
            return True
        checked = time.monotonic()
        return await allowed()

    hub.queues.add(queue)
    LIVE_CLIENTS.inc()
    try:
        yield f"retry: 2000\n: live since {hub.epoch}-{hub.sequence}\n\n"
        missed = hub.since(last_event_id)
        if missed is None:
            for topic, data in snapshot():
                update = Update(f"{hub.epoch}-{hub.sequence}", hub.sequence, topic, data)
                if matches(update, topics, locations):
                    yield update.frame()
        else:
            for update in missed:
                if matches(update, topics, locations):
                    yield update.frame()
        while True:
            if not await still_allowed():
                yield 'event: end\ndata: {"reason": "credentials no longer valid"}\n\n'
                return
            try:
                update = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
            except TimeoutError:
                if await is_disconnected():
                    return
                yield f": heartbeat {int(time.time())}\n\n"
                continue
            if matches(update, topics, locations):
                yield update.frame()
    finally:
        hub.queues.discard(queue)
        LIVE_CLIENTS.dec()
