"""Avro through the real broker and registry; compatibility enforced by the real registry."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from optibid.settings import Settings
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import AVRO_DIR, ContractSet
from schemas.errors import IncompatibleSchemaError
from schemas.registration import check_against_released, register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, schema_id_of
from schemas.topics import ensure_topics
from tests.integration.conftest import consumer_config

LMP = "energy.optibid.market.LmpPublished"


def lmp_record(location_id: str, minute: int, price: float) -> dict[str, Any]:
    start = datetime(2024, 11, 3, 5, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at_utc": start + timedelta(minutes=5),
        "recorded_at_utc": datetime(2024, 11, 3, 6, 0, 1, 123456, tzinfo=UTC),
        "source": "test",
        "schema_version": 1,
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": location_id,
        "location_name": None,
        "location_type": "HUB",
        "interval_start_utc": start,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": price - 1.25,
        "congestion_usd_per_mwh": 1.0,
        "loss_usd_per_mwh": 0.25,
        "revision": 1,
        "supersedes_revision": None,
        "run_id": "run-1",
        "source_dataset": "lmp_rt_5min",
    }


def produce(settings: Settings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True}
    )
    errors: list[Any] = []
    for key, value in values:
        producer.produce(
            topic, value, key, on_delivery=lambda err, _m: errors.append(err) if err else None
        )
    assert producer.flush(30) == 0
    assert errors == []


def consume(
    settings: Settings, topic: str, group: str, count: int, deadline_s: float = 30
) -> list[bytes]:
    consumer = Consumer(consumer_config(settings, group))
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            value = None if msg is None or msg.error() else msg.value()
            if value is not None:
                values.append(value)
    finally:
        consumer.close()
    return values


def test_avro_record_round_trips_through_broker_and_registry(
    stack_settings: Settings,
    catalog: TopicCatalog,
    topic_factory: Callable[[TopicSpec], TopicSpec],
    serde: AvroSerde,
    registry: RegistryClient,
    group_id: str,
) -> None:
    topic = topic_factory(catalog.core("lmp"))
    encode = serde.encoder(topic.subject, LMP)
    record = lmp_record("51288", 0, -12.5)  # a negative price survives the trip
    produce(stack_settings, topic.name, [(b"PJM|RT_5MIN|51288", encode(record))])

    [value] = consume(stack_settings, topic.name, group_id, 1)

    registered_id, version, _ = registry.latest_version(topic.subject)
    assert version == 1
    assert schema_id_of(value) == registered_id
    fresh = AvroSerde(RegistryClient(stack_settings.schema_registry_url))  # nothing cached
    assert fresh.decode(value) == (LMP, record)


def test_incompatible_schema_change_is_rejected(registry: RegistryClient, test_id: str) -> None:
    subject = f"{test_id}.compat-value"
    contract = ContractSet().get(LMP)
    registry.set_compatibility(subject, "BACKWARD")
    first = registry.register(subject, contract.text)

    breaking = copy.deepcopy(contract.definition)
    breaking["fields"].append({"name": "node_class", "type": "string", "doc": "no default"})
    with pytest.raises(IncompatibleSchemaError, match=subject):
        registry.register(subject, json.dumps(breaking))

    additive = copy.deepcopy(contract.definition)
    additive["fields"].append(
        {"name": "zone_id", "type": ["null", "string"], "default": None, "doc": "optional"}
    )
    second = registry.register(subject, json.dumps(additive))
    assert second != first
    assert registry.compatibility(subject) == "BACKWARD"
    registry.delete_subject(subject)


def test_current_schemas_are_backward_compatible_with_released_ones(
    registry: RegistryClient, test_id: str
) -> None:
    verdict = check_against_released(registry, ContractSet(), f"{test_id}.released.")
    assert verdict, "no schema was checked"
    assert {name for name, ok in verdict.items() if not ok} == set()
    for subject in registry.subjects():
        if subject.startswith(f"{test_id}."):
            registry.delete_subject(subject)


def test_a_breaking_edit_of_an_avsc_file_fails_the_released_check(
    registry: RegistryClient, test_id: str, tmp_path: Path
) -> None:
    for path in AVRO_DIR.glob("*.avsc"):
        definition = json.loads(path.read_text())
        if definition["name"] == "LmpPublished":
            for field in definition["fields"]:
                if field["name"] == "lmp_usd_per_mwh":
                    field["type"] = "string"  # a type change no reader can resolve
        (tmp_path / path.name).write_text(json.dumps(definition))
    verdict = check_against_released(registry, ContractSet(tmp_path), f"{test_id}.edited.")
    assert {name for name, ok in verdict.items() if not ok} == {LMP}
    for subject in registry.subjects():
        if subject.startswith(f"{test_id}."):
            registry.delete_subject(subject)


def test_topic_creation_is_idempotent(stack_settings: Settings, catalog: TopicCatalog) -> None:
    every = list(catalog)
    first = ensure_topics(stack_settings.bootstrap_servers, every)
    second = ensure_topics(stack_settings.bootstrap_servers, every)
    assert first == sorted(t.name for t in every)
    assert second == []

    admin = AdminClient({"bootstrap.servers": stack_settings.bootstrap_servers})
    metadata = admin.list_topics(timeout=10)
    for spec in every:
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
    core = catalog.core("lmp")
    resource = ConfigResource(ConfigResource.Type.TOPIC, core.name)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["retention.ms"].value == "-1"
    assert config["cleanup.policy"].value == "delete"


def test_register_all_sets_backward_on_every_subject(
    registry: RegistryClient, catalog: TopicCatalog
) -> None:
    done = register_all(registry, catalog, ContractSet())
    assert len(done) == len(catalog)
    for item in done[:3] + done[-3:]:
        assert registry.compatibility(item.subject) == "BACKWARD"
    again = register_all(registry, catalog, ContractSet())
    assert [r.schema_id for r in again] == [r.schema_id for r in done]
