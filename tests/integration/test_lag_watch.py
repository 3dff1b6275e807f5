"""The lag watch against the real broker: committed offsets of a real group, per partition."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from optibid.lag_watch import LagWatch
from optibid.settings import Settings
from schemas.catalog import TopicSpec
from schemas.topics import ensure_topics


def _gauge(group: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "optibid_consumer_lag_records",
        {"group": group, "topic": topic, "partition": str(partition)},
    )


def test_lag_per_partition_follows_the_groups_commits(
    stack_settings: Settings, test_id: str
) -> None:
    bootstrap = stack_settings.bootstrap_servers
    topic, group = f"{test_id}.lag", f"{test_id}-group"
    ensure_topics(bootstrap, [TopicSpec(topic, "k", 3, "bytes", "lag watch test")])
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in ((0, 10), (1, 4), (2, 7)):
        for i in range(count):
            producer.produce(topic, f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        # partition 0 half read, partition 1 read to its end, partition 2 never committed
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 4)],
            asynchronous=False,
        )
        watch = LagWatch(bootstrap, [group], interval_s=3600)
        try:
            assert watch.measure(group) == {(topic, 0): 5, (topic, 1): 0}
            assert _gauge(group, topic, 0) == 5
            assert _gauge(group, topic, 1) == 0
            consumer.commit(
                offsets=[TopicPartition(topic, 0, 10), TopicPartition(topic, 2, 2)],
                asynchronous=False,
            )
            assert watch.measure(group) == {(topic, 0): 0, (topic, 1): 0, (topic, 2): 5}
            assert _gauge(group, topic, 2) == 5
        finally:
            watch.close()
    finally:
        consumer.close()


def test_a_group_that_is_gone_leaves_no_series(stack_settings: Settings, test_id: str) -> None:
    bootstrap = stack_settings.bootstrap_servers
    topic, group = f"{test_id}.lag", f"{test_id}-group"
    ensure_topics(bootstrap, [TopicSpec(topic, "k", 1, "bytes", "lag watch test")])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        watch = LagWatch(bootstrap, [group], interval_s=3600)
        try:
            assert watch.measure(group) == {(topic, 0): 0}
            assert _gauge(group, topic, 0) == 0
            consumer.close()
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.delete_consumer_groups([group], request_timeout=10)[group].result(10)
            assert watch.measure(group) == {}
            assert _gauge(group, topic, 0) is None
        finally:
            watch.close()
    finally:
        consumer.close()
