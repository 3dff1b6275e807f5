"""Creates the catalog's topics on a broker, idempotently."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import kafka_client
from schemas.catalog import TopicSpec
from schemas.errors import ContractError


def ensure_topics(bootstrap: str, topics: Iterable[TopicSpec], timeout_s: float = 30) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    An existing topic with a different partition count is an error: repartitioning a
    keyed topic breaks per-series ordering, so it is never done silently.
    """
    admin = AdminClient(
        {**kafka_client.librdkafka(), "bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000}
    )
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise ContractError(f"cannot list topics on {bootstrap}: {exc}") from exc
    wanted = list(topics)
    for spec in wanted:
        if spec.name in existing and len(existing[spec.name].partitions) != spec.partitions:
            raise ContractError(
                f"topic {spec.name} has {len(existing[spec.name].partitions)} partitions on"
                f" {bootstrap}, the catalog says {spec.partitions}"
            )
    missing = [
        NewTopic(spec.name, spec.partitions, kafka_client.replication_factor(), config=spec.config)
        for spec in wanted
        if spec.name not in existing
    ]
    if not missing:
        return []
    created: list[str] = []
    futures = admin.create_topics(missing, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                continue  # created concurrently by another process: the same end state
            raise ContractError(f"creating topic {name} on {bootstrap} failed: {exc}") from exc
    _await_leaders(admin, bootstrap, [t.topic for t in missing], timeout_s)
    return sorted(created)


def _await_leaders(admin: AdminClient, bootstrap: str, names: list[str], timeout_s: float) -> None:
    """Until every partition of the new topics has a leader: a created topic is not usable
    before (producers and offset queries get NOT_LEADER_FOR_PARTITION), and under load the
    controller can take a while to elect them."""
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending:
        try:
            metadata = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        except KafkaException as exc:
            raise ContractError(f"cannot list topics on {bootstrap}: {exc}") from exc
        for name in list(pending):
            topic = metadata.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                continue
            if all(p.leader >= 0 and p.error is None for p in topic.partitions.values()):
                pending.discard(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ContractError(
                f"topics without a partition leader on {bootstrap} after {timeout_s:.0f} s: "
                + ", ".join(sorted(pending)[:5])
            )
        time.sleep(0.1)


def delete_topics(bootstrap: str, names: Iterable[str], timeout_s: float = 30) -> None:
    admin = AdminClient({**kafka_client.librdkafka(), "bootstrap.servers": bootstrap})
    names = list(names)
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=timeout_s).values():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
