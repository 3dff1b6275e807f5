"""The batch path's consumer: faust's aiokafka consumer handing whole fetches to a handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from time import monotonic
from typing import Any, cast

import faust
import structlog
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message, RecordMetadata
from mode import Service, ServiceT
from yarl import URL

log = structlog.get_logger(__name__)

# the records of one fetch, in runs of one topic-partition each, in offset order
BatchHandler = Callable[[list[list[Message]]], Awaitable[None]]


class BatchConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer, handing the records of `batch_topics` to `batch_handler`
    one fetch at a time instead of one record at a time to the streams.

    Records of other topics take faust's per-record path unchanged. A batch counts as
    unacked while handled (a rebalance or a stop waits for it, as for a stream event) and its
    records are acked only after the handler returned; records fetched before a rebalance
    (older generation) or while flow is stopped are dropped unacked and read again from the
    committed offsets that faust seeks to after every rebalance. A send that failed blocks
    every later commit and crashes the worker, so its source offset is never committed.
    faust's per-record sensors (message counts of its monitor) skip batch records; the market
    step keeps Prometheus counters of its own.
    """

    batch_topics: frozenset[str] = frozenset()
    batch_handler: BatchHandler | None = None
    send_failure: BaseException | None = None
    _crashing: asyncio.Future[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sends: list[asyncio.Future[RecordMetadata]] = []

    def track_send(self, future: asyncio.Future[RecordMetadata]) -> None:
        """Remember a batch-path send; `_commit` checks it was delivered."""
        self._sends.append(future)
        if len(self._sends) >= 10_000:  # no commit for a while: forget the delivered ones
            self._check_sends()

    def _check_sends(self) -> BaseException | None:
        """The first failed send, forgetting the delivered ones (a callback per send would
        cost a loop turn per record)."""
        if self.send_failure is None:
            pending: list[asyncio.Future[RecordMetadata]] = []
            for future in self._sends:
                if not future.done():
                    pending.append(future)  # sent after the flush began: checked next time
                elif future.cancelled():
                    self.send_failure = asyncio.CancelledError("send cancelled")
                elif future.exception() is not None:
                    self.send_failure = future.exception()
                if self.send_failure is not None:
                    log.error("stream.send_failed", error=repr(self.send_failure))
                    self._crashing = asyncio.ensure_future(self.app.crash(self.send_failure))
                    break
            self._sends = pending
        return self.send_failure

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        # the producer was flushed just before, so every send of the acked records is done
        if self._check_sends() is not None:
            log.error("stream.commit_refused", error=repr(self.send_failure))
            return False
        return await super()._commit(offsets)

    async def _deliver(self, batch: list[Message]) -> None:
        handler = self.batch_handler
        assert handler is not None
        if not self.app.flow_control.is_active():
            return
        generation = self.app.consumer_generation_id
        runs: dict[TP, list[Message]] = {}
        for message in batch:
            if message.generation_id == generation:
                run = runs.get(message.tp)
                if run is None:
                    runs[message.tp] = [message]
                else:
                    run.append(message)
        if not runs:
            return
        # One record stands for the batch among the unacked ones: a rebalance or a stop waits
        # (Consumer.wait_empty) until the handler is done and the records acked.
        sentinel = batch[0]
        self._unacked_messages.add(sentinel)
        inbound = self.app.monitor.stream_inbound_time
        now = monotonic()
        for tp in runs:
            inbound[tp] = now
        try:
            await handler(list(runs.values()))
        finally:
            # acked if handled; otherwise left for a re-read from the committed offset
            self._unacked_messages.discard(sentinel)
        ack = self.ack
        for run in runs.values():
            for message in run:
                ack(message)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        """faust's fetch loop (Consumer._drain_messages), batching `batch_topics`."""
        if self.batch_handler is None or not self.batch_topics:
            return await super()._drain_messages(fetcher)
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch = await self._split_fetch(ait)
                self.diag.unset_flag(CONSUMER_FETCHING)
                if batch:
                    await self._deliver(batch)
                    await self._maybe_commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _split_fetch(self, fetched: AsyncIterator[tuple[TP, Message]]) -> list[Message]:
        """One fetch: the records of `batch_topics`, in order, are returned; the others go to
        faust's per-record path right away. Read offsets and gaps are kept as faust does."""
        batch_topics, batch = self.batch_topics, []
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        async for tp, message in fetched:
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is not None and offset < r_offset:
                continue  # faust drops these too
            if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if message.topic in batch_topics:
                batch.append(message)
            else:
                await self._maybe_commit()
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            read_offset[tp] = offset
        return batch

    async def _maybe_commit(self) -> None:
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()


class BatchTransport(aiokafka_driver.Transport):
    """The aiokafka transport with `BatchConsumer` as its consumer."""

    Consumer = BatchConsumer

    def __init__(self, url: list[URL], app: faust.App, handler: BatchHandler) -> None:
        super().__init__(url, app)
        self.batch_handler = handler
        self.batch_topics: frozenset[str] = frozenset()

    def create_consumer(self, callback: Any, **kwargs: Any) -> BatchConsumer:
        consumer = cast(BatchConsumer, super().create_consumer(callback, **kwargs))
        consumer.batch_handler = self.batch_handler
        consumer.batch_topics = self.batch_topics
        return consumer
