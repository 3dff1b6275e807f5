"""A partition's offsets from the broker, waiting out what is only a moment's state.

A topic created a moment ago may have no leader elected yet, and a broker that has just
restarted answers NOT_LEADER until its partitions move back. Both pass in a second or two;
anything else (an authorisation error, say) is raised at once, and a transient answer that
outlasts the wait is raised then.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

# codes a broker answers while a leader is being elected or the cluster is settling
TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)


def watermarks(
    consumer: Consumer,
    partition: TopicPartition,
    timeout_s: float = 30.0,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """(low, high) offsets of `partition`. Transient answers are asked again, backing off
    from 0.1 s to 2 s, for up to `timeout_s` in all; past it (or at once for any other
    error, or when `stop` is set) the broker's KafkaException is raised."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        left = deadline - time.monotonic()
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=max(min(left, 10.0), 1.0))
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            transient = isinstance(error, KafkaError) and (
                error.code() in TRANSIENT or error.retriable()
            )
            if not transient or time.monotonic() + delay > deadline:
                raise
            if stop is not None and stop.is_set():
                raise
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, 2.0)
