"""The live poller on the real broker, with the simulator standing in for the ISO's API (the
same Source interface the live clients implement): checkpoints advance, re-polls revisit the
look-back window without losing or inventing intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.events import event_id
from connectors.live import LIVE_STREAM, Poller
from connectors.parsing import parser_for
from connectors.runtime import ConnectorRuntime
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import ensure_topics
from tests.integration.kafka_util import read_topic


def test_polls_advance_the_checkpoint_and_lose_nothing(
    stack_settings: Settings, catalog: TopicCatalog, registry: RegistryClient, serde: AvroSerde
) -> None:
    ensure_topics(stack_settings.bootstrap_servers, catalog)
    register_all(registry, catalog, ContractSet())
    runtime = ConnectorRuntime(
        stack_settings.bootstrap_servers, serde, catalog, Iso.CAISO, Dataset.LMP_RT_15MIN
    )
    source = SimulatedSource(Iso.CAISO, locations=4)
    clock = [datetime(2024, 11, 3, 9, 7, tzinfo=UTC)]  # 01:07 PST... the second 1 AM in CAISO
    poller = Poller(runtime, source, initial_lookback=timedelta(hours=3), clock=lambda: clock[0])

    first = poller.poll_once()
    checkpoint = runtime.load_checkpoint(LIVE_STREAM)
    assert checkpoint is not None
    assert checkpoint.position_utc == datetime(2024, 11, 3, 9, 0, tzinfo=UTC)
    assert first.rows > 0

    clock[0] += timedelta(hours=1)
    second = poller.poll_once()
    assert second.rows > 0
    advanced = runtime.load_checkpoint(LIVE_STREAM)
    assert advanced is not None
    assert advanced.position_utc == datetime(2024, 11, 3, 10, 0, tzinfo=UTC)
    runtime.close()

    window = (datetime(2024, 11, 3, 6, 7, tzinfo=UTC), datetime(2024, 11, 3, 10, 0, tzinfo=UTC))
    expected = {
        event_id(r)
        for name, data in source.fetch(Dataset.LMP_RT_15MIN, *window)
        for r in parser_for(Iso.CAISO, Dataset.LMP_RT_15MIN)(data, name)
        if r.interval_start_utc + timedelta(minutes=15) <= window[1]
    }
    published = {
        v["event_id"]
        for _, v in read_topic(
            stack_settings, catalog.raw(Iso.CAISO, Dataset.LMP_RT_15MIN).name, serde
        )
    }
    assert expected <= published  # every interval up to the second poll, once or (revisited) twice
    runs = read_topic(stack_settings, catalog.ingest("connector_runs").name, serde)
    assert [v["mode"] for _, v in runs] == ["LIVE", "LIVE"]
