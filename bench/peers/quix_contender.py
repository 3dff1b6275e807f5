"""The Quix Streams contender of bench/streams.py: the same transformation in a Quix app.

Runs in a virtual environment of its own (Quix pins older confluent-kafka and pydantic-settings
than OptiBid uses). Arguments: bootstrap registry_url prefix input_topic output_topic group count
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from quixstreams import Application, message_context
from quixstreams.models.serializers import Serializer

from bench.streams_transform import Transform


class PairValue(Serializer):  # type: ignore[misc]  # Serializer is Any where Quix is absent
    """Values travel as (key, bytes) pairs; the topic gets the bytes."""

    def __call__(self, value: Any, ctx: Any) -> bytes:
        return bytes(value[1])


def main() -> None:
    bootstrap, registry_url, prefix, source, target, group, count = sys.argv[1:8]
    expected = int(count)
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    transform = Transform(registry_url, prefix)
    lmp_topic = transform.catalog.core("lmp").name
    topic_in = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    topic_out = app.topic(target, key_serializer="bytes", value_serializer=PairValue())
    seen = [0]

    def run(value: bytes) -> list[tuple[str, bytes]]:
        ctx = message_context()
        seen[0] += 1
        outputs = transform(ctx.topic, ctx.partition, ctx.offset, None, value)
        if seen[0] >= expected:
            app.stop()
        return [(key, data) for topic, key, data in outputs if topic == lmp_topic]

    sdf = app.dataframe(topic_in)
    sdf = sdf.apply(run, expand=True)
    sdf.to_topic(topic_out, key=lambda pair: pair[0].encode())
    app.run()


if __name__ == "__main__":
    main()
