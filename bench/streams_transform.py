"""The transformation every streams benchmark contender runs: decode, validate, revisions,
normalise, encode — the worker's own MarketProcessor with in-memory state."""

from __future__ import annotations

from typing import Any

from schemas.catalog import TopicCatalog
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.processor import MarketProcessor


class Transform:
    def __init__(self, registry_url: str, prefix: str) -> None:
        self.catalog = TopicCatalog(prefix)
        self.serde = AvroSerde(RegistryClient(registry_url))
        self.processor = MarketProcessor(self.catalog, self.serde)
        self.latest: dict[str, Any] = {}
        self.locations: dict[str, Any] = {}
        self.encoders: dict[str, Any] = {}

    def __call__(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes
    ) -> list[tuple[str, str, bytes]]:
        """(output topic, key, value bytes) of one raw record."""
        out = []
        for item in self.processor.process(
            topic, partition, offset, key, value, self.latest, self.locations
        ):
            encoder = self.encoders.get(item.topic.name)
            if encoder is None:
                encoder = self.serde.encoder(item.topic.subject, item.topic.value_schema)
                self.encoders[item.topic.name] = encoder
            out.append((item.topic.name, item.key, encoder(item.value)))
        return out
