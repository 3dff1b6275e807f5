"""The identity command handler: one worker that decides identity commands on the streams runtime.

It consumes `identity.commands` (keyed `aggregate_type:aggregate_id`, so one partition holds
every command of an aggregate, in order) and keeps each aggregate's state in the table
`identity_aggregates`, co-partitioned with that topic. Per command it runs the pure step
`identity.handler.handle` and sends
- the events it decided to `identity.events` (same key),
- its outcome to `identity.command_outcomes` (same key; the API waits for it),
- an audit entry to `audit.events` (keyed by organisation);
with the table's changelog records in the same producer batch, before the command is acked.

Delivery is at least once. A command handed over twice (after a crash) is answered with its
earlier outcome and causes nothing, since the table keeps the aggregate's latest outcomes; a
worker that lost its local store restores the table from its changelog first. A record that is
not a decodable IdentityCommand is logged and counted, and the worker goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import faust
import structlog
from faust.types import Message
from prometheus_client import Counter

from identity import state
from identity.handler import COMMAND_SCHEMA, handle
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.errors import DeserializationError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.runtime import (
    BytesTopics,
    ChangelogBatchTable,
    KeyPartitioner,
    ProducerBatches,
    apply_runs,
    await_writer_schemas,
    producer_of,
    worker_app,
)

log = structlog.get_logger(__name__)

COMMANDS = Counter(
    "optibid_identity_commands_total",
    "Identity commands decided, by command type and outcome",
    ["command", "outcome"],  # accepted, rejected, repeated, undecodable
)
Output = tuple[str, bytes, bytes]


@dataclass(frozen=True)
class IdentityWorkerConfig:
    broker: str
    registry_url: str
    topic_prefix: str = ""
    app_id: str = "optibid-identity"
    store: str = "rocksdb://"
    data_dir: str = ".optibid/identity"
    web_port: int = 6068
    web_host: str = "127.0.0.1"
    batch: bool = True  # commands take the batch path (BatchConsumer), else faust's streams
    batch_max_records: int = 500


class IdentityWorker:
    """Builds the faust app of the identity command handler for one IdentityWorkerConfig."""

    def __init__(self, config: IdentityWorkerConfig) -> None:
        self.config = config
        self.catalog = TopicCatalog(config.topic_prefix)
        self.serde = AvroSerde(RegistryClient(config.registry_url), ContractSet())
        self.app, self.transport = worker_app(config, self.apply)
        self.partition_of = KeyPartitioner()
        self.topic = BytesTopics(self.app)
        self.commands = self.catalog.identity("commands")
        self.outputs = {
            "events": self.catalog.identity("events"),
            "outcomes": self.catalog.identity("command_outcomes"),
            "audit": self.catalog.audit(),
        }
        self._encoders: dict[str, Encoder] = {}
        self._batch: dict[str, dict[str, Any]] = {}  # states set by the batch in hand
        self._define()

    def prepare(self) -> None:
        """Resolve the schema ids of the topics the worker writes, at start."""
        for spec in self.outputs.values():
            self._encoder(spec)

    def _encoder(self, spec: TopicSpec) -> Encoder:
        encoder = self._encoders.get(spec.name)
        if encoder is None:
            encoder = self._encoders[spec.name] = self.serde.encoder(
                spec.subject, spec.value_schema
            )
        return encoder

    def _out(self, kind: str, key: bytes, record: dict[str, Any]) -> Output:
        spec = self.outputs[kind]
        return spec.name, key, self._encoder(spec)(record)

    def decide(self, key: bytes | None, value: bytes | None, now: datetime) -> list[Output]:
        """One command record: its events, outcome and audit entry, and the table updated."""
        try:
            if key is None or value is None:
                raise DeserializationError("a command record needs a key and a value")
            name, command = self.serde.decode(value)  # a registry outage is raised: no skip
            if name != COMMAND_SCHEMA:
                raise DeserializationError(f"a {name} record on {self.commands.name}")
        except DeserializationError as exc:
            COMMANDS.labels("?", "undecodable").inc()
            log.error("identity.command_undecodable", topic=self.commands.name, error=str(exc))
            return []
        table_key = key.decode()
        kept = (
            self._batch.get(table_key)
            if table_key in self._batch
            else self.aggregates.get(table_key)
        )
        decision = handle(state.load(kept) if kept is not None else None, command, now)
        if decision.stored is not None and not decision.repeated:
            dumped = state.dump(decision.stored)
            self.aggregates[table_key] = dumped
            self._batch[table_key] = dumped
        out = [self._out("events", key, event) for event in decision.events]
        out.append(self._out("outcomes", key, decision.outcome))
        if decision.repeated:
            outcome = "repeated"
        else:
            org = (decision.audit["org_id"] or "").encode()
            out.append(self._out("audit", org, decision.audit))
            outcome = "accepted" if decision.outcome["accepted"] else "rejected"
        COMMANDS.labels(command["type"], outcome).inc()
        log.info(
            "identity.command",
            command=command["type"],
            aggregate=table_key,
            outcome=outcome,
            code=decision.outcome["code"],
            events=len(decision.events),
        )
        return out

    async def apply(self, runs: list[list[Message]]) -> None:
        """The batch path: each command decided in order, outputs and the table's changelog
        records to the producer as one batch per topic-partition, then the acks."""

        def step(message: Message) -> list[Output]:
            return self.decide(message.key, message.value, datetime.now(UTC))

        await await_writer_schemas(self.serde, runs)
        # a batch's table writes reach the store only when the batch is done, so the states
        # it sets are read from here meanwhile (two commands of one aggregate in one batch)
        self._batch = {}
        try:
            await apply_runs(self.app, (self.aggregates,), runs, step, self.partition_of)
        finally:
            self._batch = {}

    async def send(self, records: list[Output]) -> None:
        """Records to the producer as one batch per topic-partition; waits for delivery."""
        batches = ProducerBatches(producer_of(self.app), self.partition_of)
        for name, key, data in records:
            await batches.add_keyed(name, key, data)
        sent = await batches.send()
        await asyncio.gather(*(future for _, _, future in sent))

    def _define(self) -> None:
        self.aggregates = cast(
            ChangelogBatchTable,
            self.app.Table(
                "identity_aggregates", default=None, partitions=self.commands.partitions
            ),
        )

        async def consume(stream: faust.StreamT[bytes]) -> None:
            # faust's per-event path: what runs with `batch` off
            async for event in stream.events():
                message = event.message
                await self.send(self.decide(message.key, message.value, datetime.now(UTC)))

        self.agent = self.app.agent(self.topic(self.commands), name="identity-commands")(consume)
        if self.transport is not None:
            self.transport.batch_topics = frozenset({self.commands.name})
