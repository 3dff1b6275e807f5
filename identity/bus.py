"""Sending identity commands and waiting for their outcome (read-your-writes with a deadline).

`CommandBus.send` publishes an IdentityCommand on `identity.commands`, keyed by its aggregate,
and returns the IdentityCommandOutcome the handler publishes for it, or raises OutcomeTimeout
when none arrives within the deadline (the handler is down or behind: the caller answers 503;
the command may still be decided later, and sending it again under the same id is harmless).

One background thread reads `identity.command_outcomes` from the end it had when the bus was
made and hands each outcome to the caller waiting for it, so many requests share one consumer.
Outcomes nobody waits for are dropped; the waiters are bounded by the callers in flight.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from identity.handler import AUDIT_SCHEMA, COMMAND_SCHEMA, contract_record
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.envelope import envelope
from schemas.errors import ContractError
from schemas.offsets import watermarks
from schemas.serde import AvroSerde


class OutcomeTimeout(Exception):  # noqa: N818 - the name a caller catches to answer 503
    """No outcome for a command within the deadline."""


def new_command(
    kind: str,
    aggregate_type: str,
    aggregate_id: str,
    *,
    actor_id: str | None,
    actor_kind: str = "user",
    source: str = "api",
    now: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An IdentityCommand record with a fresh id; `fields` are its payload (contract names)."""
    at = now or datetime.now(UTC)
    return contract_record(
        COMMAND_SCHEMA,
        {
            **envelope(
                event_id=str(uuid.uuid4()), occurred_at_utc=at, recorded_at_utc=at, source=source
            ),
            "type": kind,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "actor_id": actor_id,
            "actor_kind": actor_kind,
            "reauthenticated_with_otp": False,
            **fields,
        },
    )


class CommandBus:
    """Publishes identity commands and waits for their outcomes (thread-safe)."""

    def __init__(self, bootstrap: str, serde: AvroSerde, catalog: TopicCatalog) -> None:
        self.serde = serde
        self.commands = catalog.identity("commands")
        self.outcomes = catalog.identity("command_outcomes")
        self._encode = serde.encoder(self.commands.subject, self.commands.value_schema)
        self.audit_topic = catalog.audit()
        self._encode_audit = serde.encoder(self.audit_topic.subject, self.audit_topic.value_schema)
        self._producer = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
            }
        )
        self._consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": bootstrap,
                "group.id": f"optibid-command-bus-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        # the ends first, assigned explicitly: an outcome published after this point is read,
        # however soon after the command it comes
        topic = self.outcomes.name
        metadata = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise ContractError(f"topic {topic} does not exist; run `optibid topics create` first")
        starts = []
        for partition in metadata.partitions:
            _, high = watermarks(self._consumer, TopicPartition(topic, partition))
            starts.append(TopicPartition(topic, partition, high))
        self._consumer.assign(starts)
        self._waiters: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="command-outcomes", daemon=True)
        self._thread.start()

    def send(self, command: Mapping[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Publish `command` and return its outcome record; OutcomeTimeout past `timeout_s`."""
        command_id = str(command["event_id"])
        waiter: Future[dict[str, Any]] = Future()
        with self._lock:
            self._waiters[command_id] = waiter
        try:
            key = f"{command['aggregate_type']}:{command['aggregate_id']}".encode()
            self._producer.produce(self.commands.name, self._encode(command), key)
            self._producer.flush(timeout_s)
            return waiter.result(timeout=timeout_s)
        except FutureTimeout:
            raise OutcomeTimeout(
                f"no outcome for {command['type']} {command_id} within {timeout_s:g} s:"
                " is `optibid identity` running?"
            ) from None
        finally:
            with self._lock:
                self._waiters.pop(command_id, None)

    def record(self, **fields: Any) -> None:
        """Publish an audit entry of something that is no command (a key used, a sign-in
        with an unknown email), without waiting: `fields` are AuditRecorded's."""
        at = datetime.now(UTC)
        entry = contract_record(
            AUDIT_SCHEMA,
            {
                **envelope(
                    event_id=str(uuid.uuid4()),
                    occurred_at_utc=at,
                    recorded_at_utc=at,
                    source=fields.pop("source", "api"),
                ),
                **fields,
            },
        )
        key = str(entry.get("org_id") or "").encode()
        self._producer.produce(self.audit_topic.name, self._encode_audit(entry), key)
        self._producer.poll(0)

    def _read(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue  # transient broker errors: the consumer retries by itself
            value = message.value()
            if value is None:
                continue
            try:
                _, outcome = self.serde.decode(value)
            except ContractError:
                continue  # not ours to judge: the handler wrote it
            with self._lock:
                waiter = self._waiters.get(str(outcome.get("command_id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(outcome)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
        self._producer.flush(5)

    def __enter__(self) -> CommandBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
