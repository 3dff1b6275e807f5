"""faust topics of raw bytes."""

from __future__ import annotations

import faust

from schemas.catalog import TopicSpec


class BytesTopics:
    """faust topics carrying raw bytes (the serde does the Avro), one object per name."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, faust.TopicT] = {}

    def __call__(self, spec: TopicSpec) -> faust.TopicT:
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = self._app.topic(
                spec.name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
        return topic
