"""The streams runtime on the real broker: the tables' changelog topics exist, compacted and
with the tables' partition counts, before a worker starts, so the first batch of a new app id
never meets a changelog topic that the consumer's metadata does not know yet."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient, ConfigResource

from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from streams.app import StreamWorker, WorkerConfig
from streams.kpi_app import KpiWorker, KpiWorkerConfig
from streams.runtime import ensure_changelogs


def test_every_table_changelog_is_created_before_the_workers_start(
    stack_settings: Settings, contracts_ready: TopicCatalog, test_id: str, tmp_path: Path
) -> None:
    broker, registry = stack_settings.bootstrap_servers, stack_settings.schema_registry_url
    prefix, data_dir = contracts_ready.prefix, str(tmp_path)
    market = StreamWorker(
        WorkerConfig(broker, registry, prefix, f"{test_id}-worker", "memory://", data_dir)
    )
    kpis = KpiWorker(
        KpiWorkerConfig(broker, registry, prefix, f"{test_id}-kpis", "memory://", data_dir)
    )
    created = ensure_changelogs(market.app, broker) + ensure_changelogs(kpis.app, broker)
    assert set(created) == {
        f"{test_id}-worker-revisions-changelog",
        f"{test_id}-worker-locations-changelog",
        f"{test_id}-worker-backfill_retries-changelog",
        f"{test_id}-kpis-kpi_inputs-changelog",
        f"{test_id}-kpis-kpi_benchmark-changelog",
    }
    admin = AdminClient({"bootstrap.servers": broker})
    topics = admin.list_topics(timeout=10).topics
    partitions = {name: len(topics[name].partitions) for name in created}
    # backfill_retries is co-partitioned with ingest.backfill_completed, which it is written from
    retries = f"{test_id}-worker-backfill_retries-changelog"
    assert partitions.pop(retries) == contracts_ready.ingest("backfill_completed").partitions == 3
    assert partitions == dict.fromkeys(partitions, 6)
    configs = admin.describe_configs([ConfigResource("topic", name) for name in created])
    for future in configs.values():
        assert future.result(10)["cleanup.policy"].value == "compact"
    # a second start creates nothing
    assert ensure_changelogs(market.app, broker) == []
