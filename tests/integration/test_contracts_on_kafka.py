"""Avro through the real broker and registry; compatibility enforced by the real registry."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from schemas.contracts import AVRO_DIR, ContractSet
from schemas.errors import IncompatibleSchemaError
from schemas.offsets import watermarks
from schemas.registration import check_against_released, register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, schema_id_of
from schemas.topics import ensure_topics
from tests.integration.stack_util import LMP, PublishLmp, consume, lmp_record


def test_avro_record_round_trips_through_broker_and_registry(
    stack_settings: Settings, publish_lmp: PublishLmp, registry: RegistryClient, group_id: str
) -> None:
    record = lmp_record("51288", 0, -12.5)  # a negative price survives the trip
    topic = publish_lmp([(b"PJM|RT_5MIN|51288", record)])

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


def test_offsets_of_a_topic_created_a_moment_ago_are_given_once_it_has_a_leader(
    stack_settings: Settings, test_id: str
) -> None:
    admin = AdminClient({"bootstrap.servers": stack_settings.bootstrap_servers})
    topic = f"{test_id}.fresh"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result()
    consumer = Consumer(
        {"bootstrap.servers": stack_settings.bootstrap_servers, "group.id": test_id}
    )
    try:
        # asked the moment it exists: the leader may still be being elected
        assert [watermarks(consumer, TopicPartition(topic, p)) for p in range(3)] == [(0, 0)] * 3
        with pytest.raises(KafkaException):
            watermarks(consumer, TopicPartition(f"{test_id}.never-made", 0), timeout_s=1)
    finally:
        consumer.close()
        admin.delete_topics([topic])
