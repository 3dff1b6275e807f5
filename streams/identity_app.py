"""The identity command handler: one worker that decides identity commands on the streams runtime.

It consumes `identity.commands` (keyed `aggregate_type:aggregate_id`, so one partition holds
every command of an aggregate, in order) and keeps each aggregate's state in the table
`identity_aggregates`, co-partitioned with that topic. Per command it runs the pure step
`identity.handler.handle` and sends
- the events it decided to `identity.events` (same key),
- its outcome to `identity.command_outcomes` (same key; the API waits for it),
- an audit entry to `audit.events` (keyed by organisation);
with the table's changelog records in the same producer batch, before the command is acked.

Delivery is at least once. A command handed over again (after a crash) is never decided twice:
the table keeps, per aggregate, the offset of the last command decided and the outputs of the
latest ones, which are sent again (same ids), since a crash may have kept the state and lost
the events. A worker that lost its local store restores the table from its changelog first.
A record that is not a decodable IdentityCommand, or is keyed under another aggregate, is
logged and counted, and the worker goes on.
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
from identity.handler import AGGREGATES, COMMAND_SCHEMA, handle
from schemas.catalog import TopicCatalog
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
KNOWN_COMMANDS = frozenset().union(*(a.commands for a in AGGREGATES.values()))


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
        # the states set by the batch in hand (only while one is), read before the table
        self._batch: dict[str, dict[str, Any]] | None = None
        self._batch_start: dict[bytes, int] | None = None
        self._define()

    def prepare(self) -> None:
        """Resolve the schema ids of the three topics the worker writes, at start."""
        self._encoders = {
            kind: self.serde.encoder(spec.subject, spec.value_schema)
            for kind, spec in self.outputs.items()
        }

    def _out(self, kind: str, key: bytes, record: dict[str, Any]) -> Output:
        if not self._encoders:
            self.prepare()
        return self.outputs[kind].name, key, self._encoders[kind](record)

    def decide(
        self, key: bytes | None, value: bytes | None, now: datetime, offset: int | None = None
    ) -> list[Output]:
        """One command record: its events, outcome and audit entry, and the table updated.
        A record that is not a command, or whose key is not its aggregate's, is logged,
        counted and skipped; a registry outage is raised (the batch is read again)."""
        try:
            command, table_key = self._command(key, value)
        except DeserializationError as exc:
            COMMANDS.labels("?", "undecodable").inc()
            log.error("identity.command_undecodable", topic=self.commands.name, error=str(exc))
            return []
        assert key is not None
        kept = self._batch.get(table_key) if self._batch is not None else None
        if kept is None:
            kept = self.aggregates.get(table_key)
        keep_from = self._batch_start.get(key) if self._batch_start is not None else None
        decision = handle(
            state.load(kept) if kept is not None else None, command, now, offset, keep_from
        )
        if decision.stored is not None and not decision.repeated:
            dumped = state.dump(decision.stored)
            self.aggregates[table_key] = dumped
            if self._batch is not None:
                self._batch[table_key] = dumped
        out = [self._out("events", key, event) for event in decision.events]
        if decision.outcome is not None:
            out.append(self._out("outcomes", key, decision.outcome))
        if decision.audit is not None:
            org = (decision.audit["org_id"] or "").encode()
            out.append(self._out("audit", org, decision.audit))
        if decision.repeated:
            outcome = "repeated"
        else:
            outcome = (
                "accepted" if decision.outcome and decision.outcome["accepted"] else "rejected"
            )
        kind = command["type"] if command["type"] in KNOWN_COMMANDS else "other"
        COMMANDS.labels(kind, outcome).inc()
        log.info(
            "identity.command",
            command=command["type"],
            aggregate=table_key,
            outcome=outcome,
            code=decision.outcome["code"] if decision.outcome else None,
            events=len(decision.events),
        )
        return out

    def _command(self, key: bytes | None, value: bytes | None) -> tuple[dict[str, Any], str]:
        """The command a record holds and its table key; DeserializationError when it holds
        none, or is keyed under another aggregate than its own (it would be decided against
        that aggregate's state)."""
        if key is None or value is None:
            raise DeserializationError("a command record needs a key and a value")
        name, command = self.serde.decode(value)  # a registry outage is raised: no skip
        if name != COMMAND_SCHEMA:
            raise DeserializationError(f"a {name} record on {self.commands.name}")
        own = f"{command['aggregate_type']}:{command['aggregate_id']}"
        if key != own.encode():
            raise DeserializationError(f"command {command['event_id']} keyed {key!r}, not {own!r}")
        return command, own

    async def apply(self, runs: list[list[Message]]) -> None:
        """The batch path: each command decided in order, outputs and the table's changelog
        records to the producer as one batch per topic-partition, then the acks."""

        def step(message: Message) -> list[Output]:
            return self.decide(message.key, message.value, datetime.now(UTC), message.offset)

        await await_writer_schemas(self.serde, runs)
        # a batch's table writes reach the store only when the batch is done, so the states
        # it sets are read from here meanwhile (two commands of one aggregate in one batch)
        self._batch = {}
        # per key, the first offset of this batch: what came before was delivered and acked,
        # so its outputs need not be kept for a redelivery (the table stays small)
        self._batch_start = {}
        for run in runs:
            for message in run:
                if message.key is not None:
                    self._batch_start.setdefault(message.key, message.offset)
        try:
            await apply_runs(self.app, (self.aggregates,), runs, step, self.partition_of)
        finally:
            self._batch = None
            self._batch_start = None

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
                await await_writer_schemas(self.serde, [[message]])  # waits out an outage
                now = datetime.now(UTC)
                await self.send(self.decide(message.key, message.value, now, message.offset))

        self.agent = self.app.agent(self.topic(self.commands), name="identity-commands")(consume)
        if self.transport is not None:
            self.transport.batch_topics = frozenset({self.commands.name})
