"""The topic catalog names every topic once, with a schema that exists."""

from __future__ import annotations

import re

import pytest

from schemas.catalog import ISO_DATASETS, MARKET_DATA_PARTITIONS, Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet

CATALOG = TopicCatalog()
LAYERED = re.compile(
    r"^(raw\.(pjm|caiso|ercot)|dlq\.(pjm|caiso|ercot|projections)|core\.market|ingest|kpi"
    r"|identity|audit|usage)\.[a-z0-9_]+$"
)


def test_every_topic_names_an_existing_schema() -> None:
    contracts = ContractSet()
    for topic in CATALOG:
        contracts.get(topic.value_schema)


def test_names_are_layered_and_unique() -> None:
    names = [t.name for t in CATALOG]
    assert len(names) == len(set(names))
    bad = [n for n in names if not LAYERED.match(n)]
    assert bad == []


def test_each_iso_dataset_has_a_raw_and_a_dead_letter_topic() -> None:
    for iso, datasets in ISO_DATASETS.items():
        for dataset in datasets:
            assert CATALOG.raw(iso, dataset).name == f"raw.{iso}.{dataset}"
            assert CATALOG.dlq(iso, dataset).value_schema.endswith("RecordDeadLettered")


def test_an_iso_without_a_dataset_has_no_topic_for_it() -> None:
    # PJM publishes no 15-minute real-time market
    with pytest.raises(KeyError, match="pjm publishes no lmp_rt_15min"):
        CATALOG.raw(Iso.PJM, Dataset.LMP_RT_15MIN)


def test_market_data_topics_co_partition() -> None:
    keyed_by_series = [
        t for t in CATALOG if t.key == "iso|market|location_id" and "dlq" not in t.name
    ]
    assert keyed_by_series
    assert {t.partitions for t in keyed_by_series} == {MARKET_DATA_PARTITIONS}


def test_retention_and_compaction_reach_the_broker_config() -> None:
    core = CATALOG.core("lmp")
    assert core.config == {"cleanup.policy": "delete", "retention.ms": "-1"}
    raw = CATALOG.raw(Iso.ERCOT, Dataset.LMP_RT_5MIN)
    assert raw.config["retention.ms"] == str(90 * 86_400_000)


def test_prefix_isolates_names_and_subjects() -> None:
    prefixed = TopicCatalog("t1234.")
    assert prefixed.core("lmp").name == "t1234.core.market.lmp"
    assert prefixed.core("lmp").subject == "t1234.core.market.lmp-value"
    assert len(prefixed) == len(CATALOG)


def test_compacted_topics_roll_their_segments_hourly_so_compaction_can_run() -> None:
    compacted = [t for t in TopicCatalog() if t.compact]
    assert {t.name for t in compacted} >= {"ingest.connector_checkpoints", "ingest.series_status"}
    for topic in compacted:
        assert topic.config["cleanup.policy"] == "compact"
        assert topic.config["segment.ms"] == str(3_600_000)


def test_identity_topics_keep_the_events_for_good_and_key_by_aggregate() -> None:
    events = CATALOG.identity("events")
    assert events.retention_ms == -1
    assert not events.compact
    assert events.key == CATALOG.identity("commands").key == "aggregate_type:aggregate_id"
    assert CATALOG.identity("commands").partitions == events.partitions  # co-partitioned
    assert CATALOG.identity("command_outcomes").value_schema.endswith("IdentityCommandOutcome")
    assert CATALOG.audit().retention_ms == -1
