"""The broker and the schema registry going away while a connector, the stream worker and a
projector run: nothing accepted is lost, nothing is duplicated beyond identical events that
idempotence absorbs, and every role comes through it without a restart.

These stop servers of the shared local stack and start them again; each waits until its
server answers again before it ends, so the tests after it find the stack as it was."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from connectors.records import LmpRecord
from connectors.runtime import ConnectorRuntime, PublishError, new_run
from connectors.simulate import Faults
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from optibid.stack import Server
from optibid.stack.kafka_server import KafkaServer
from optibid.stack.registry_server import RegistryServer
from schemas.catalog import MARKET_DATA_PARTITIONS, Dataset, Iso, TopicCatalog
from schemas.serde import AvroSerde
from tests.integration.kafka_util import count_records, read_topic, wait_until
from tests.integration.projections_util import ProjectorProcess, lmp_rows
from tests.integration.streams_util import WorkerProcess

DAY = datetime(2024, 3, 10, 5, tzinfo=UTC)  # PJM's 23-hour spring-forward day, local midnight
LOCATIONS = 12
OUTAGE_S = 20.0


def _payloads(start: datetime, end: datetime) -> list[tuple[str, bytes]]:
    source = SimulatedSource(Iso.PJM, locations=LOCATIONS, faults=Faults())
    return list(source.fetch(Dataset.LMP_RT_5MIN, start, end))


def _publish_through(
    runtime: ConnectorRuntime, payloads: list[tuple[str, bytes]], deadline_s: float
) -> tuple[list[LmpRecord], int]:
    """The connector's loop: each payload published until the broker acknowledges it (a
    failed publish is retried, as the next poll of a live connector would); returns what was
    published and how many publishes failed."""
    published: list[LmpRecord] = []
    failures = 0
    deadline = time.monotonic() + deadline_s
    for name, data in payloads:
        while True:
            try:
                records = runtime.handle_payload(name, data, new_run("SIMULATE"))
                break
            except PublishError:
                failures += 1
                assert time.monotonic() < deadline, "the broker never came back"
                time.sleep(1.0)
        published += [r for r in records if isinstance(r, LmpRecord)]
    return published, failures


@contextmanager
def _stopped(server: Server) -> Iterator[float]:
    """The running `server` stopped while the block runs, and started again after it; yields
    when it stopped (time.monotonic)."""
    assert server.down()
    began = time.monotonic()
    try:
        yield began
    finally:
        assert server.up() == "started"


@dataclass
class Roles:
    """The roles the outages happen under, as processes: the stream worker, and a projector
    into the test's schema."""

    worker: WorkerProcess
    projector: ProjectorProcess
    db_schema: str

    def start(self, model: str) -> None:
        """The projector of `model` (its schema migrated first), then the worker."""
        self.projector.run("db", "migrate")
        self.projector.start(model, "--batch-events", "500")
        self.worker.start()

    def assert_alive(self) -> None:
        for role in (self.worker, self.projector):
            assert role.alive(), role.logs()[-3000:]


@pytest.fixture
def roles(worker: WorkerProcess, projector: ProjectorProcess, db_schema: str) -> Roles:
    return Roles(worker, projector, db_schema)


def test_a_broker_restart_mid_stream_loses_nothing_and_duplicates_only_identical_events(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, roles: Roles
) -> None:
    catalog = contracts_ready
    roles.start("lmp")
    runtime = ConnectorRuntime(
        stack_settings.bootstrap_servers,
        serde,
        catalog,
        Iso.PJM,
        Dataset.LMP_RT_5MIN,
        flush_timeout_s=5.0,
    )
    before = _payloads(DAY, DAY + timedelta(hours=8))
    after = _payloads(DAY + timedelta(hours=8), DAY + timedelta(hours=23))
    published, _ = _publish_through(runtime, before, 60)
    lmp = catalog.core("lmp").name
    wait_until(lambda: len(list(lmp_rows(stack_settings, roles.db_schema))) >= len(published),
               180, "the first part in PostgreSQL")  # fmt: skip

    with _stopped(KafkaServer(stack_settings)) as outage_began:
        # the connector goes on while the broker is away: its publishes fail and are retried
        failed_during = 0
        while time.monotonic() - outage_began < OUTAGE_S:
            try:
                runtime.handle_payload(*after[0], new_run("SIMULATE"))
            except PublishError:
                failed_during += 1
    assert failed_during >= 1, "a publish to a stopped broker must fail, not be dropped"
    rest, _ = _publish_through(runtime, after, 120)
    runtime.close()
    published += rest

    expected = {
        (r.iso, r.market, r.location_id, r.interval_start_utc): r.lmp_usd_per_mwh for r in published
    }

    def projected() -> dict[tuple[str, str, str, datetime], float]:
        return {key: price for key, _, price in lmp_rows(stack_settings, roles.db_schema)}

    wait_until(lambda: len(projected()) >= len(expected), 300, "every interval in PostgreSQL")
    assert projected() == expected  # nothing lost, nothing altered
    canonical = [v for _, v in read_topic(stack_settings, lmp, serde)]
    by_key: dict[tuple[str, str, str, datetime, int], set[str]] = {}
    for event in canonical:
        key = (event["iso"], event["market"], event["location_id"],
               event["interval_start_utc"], event["revision"])  # fmt: skip
        by_key.setdefault(key, set()).add(event["event_id"])
    assert len(by_key) == len(expected)  # one revision per interval, every one published
    assert all(len(ids) == 1 for ids in by_key.values())  # repeats are identical events
    roles.assert_alive()
    for role in (roles.worker, roles.projector):  # each says so, in order
        logs = role.logs()
        assert logs.index("broker.unavailable") < logs.rindex("broker.available"), logs[-3000:]
    # the worker still measures its group's lag after the restart: every source partition,
    # all committed
    raw = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    wait_until(lambda: _all_committed(roles.worker, raw), 60, "no consumer lag after the restart")


def _all_committed(worker: WorkerProcess, topic: str) -> bool:
    """The worker shows a lag for each partition of `topic`, all 0 (and none of a table's
    changelog: only source partitions are committed)."""
    lag = worker.consumer_lag()
    assert not [t for t, _ in lag if "changelog" in t or "__assignor" in t], lag
    of_topic = {p: v for (t, p), v in lag.items() if t == topic}
    return len(of_topic) == MARKET_DATA_PARTITIONS and set(of_topic.values()) == {0.0}


REGISTRY_OUTAGE_S = 60.0


def _load_rows(settings: Settings, schema: str) -> int:
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".load').fetchone()
    return int(row[0]) if row else 0


def test_the_registry_down_for_a_minute_delays_new_schemas_and_dead_letters_nothing(
    stack_settings: Settings, contracts_ready: TopicCatalog, serde: AvroSerde, roles: Roles
) -> None:
    """LMP flows before the outage, so the worker and the projector know its schemas; load
    arrives only while the registry is down, so its schema ids are new to both: they wait for
    the registry instead of dead-lettering it, and everything lands once it is back."""
    catalog = contracts_ready
    roles.start("all")
    lmp_runtime = ConnectorRuntime(
        stack_settings.bootstrap_servers, serde, catalog, Iso.PJM, Dataset.LMP_RT_5MIN
    )
    load_runtime = ConnectorRuntime(
        stack_settings.bootstrap_servers, serde, catalog, Iso.PJM, Dataset.LOAD
    )  # its encoder holds the raw load schema id from now on
    published, _ = _publish_through(lmp_runtime, _payloads(DAY, DAY + timedelta(hours=6)), 60)
    wait_until(lambda: len(list(lmp_rows(stack_settings, roles.db_schema))) >= len(published),
               180, "LMP in PostgreSQL before the outage")  # fmt: skip

    with _stopped(RegistryServer(stack_settings)) as began:
        later = _payloads(DAY + timedelta(hours=6), DAY + timedelta(hours=12))
        rest, _ = _publish_through(lmp_runtime, later, 60)
        published += rest
        source = SimulatedSource(Iso.PJM, locations=LOCATIONS, faults=Faults())
        loads = 0
        for name, data in source.fetch(Dataset.LOAD, DAY, DAY + timedelta(hours=23)):
            loads += len(load_runtime.handle_payload(name, data, new_run("SIMULATE")))
        # the load records wait in the worker: its consumer lag says how many
        raw_load = catalog.raw(Iso.PJM, Dataset.LOAD).name
        waiting = count_records(stack_settings, raw_load)
        assert waiting > 0

        def load_lag() -> float:
            return sum(v for (t, _), v in roles.worker.consumer_lag().items() if t == raw_load)

        wait_until(lambda: load_lag() == waiting, 40, f"{waiting} records of consumer lag")
        time.sleep(max(0.0, REGISTRY_OUTAGE_S - (time.monotonic() - began)))
        roles.assert_alive()
        assert count_records(stack_settings, catalog.core("load").name) == 0  # still waiting
    lmp_runtime.close()
    load_runtime.close()

    wait_until(
        lambda: _load_rows(stack_settings, roles.db_schema) >= loads, 300, "load in PostgreSQL"
    )
    expected = {(r.iso, r.market, r.location_id, r.interval_start_utc) for r in published}
    wait_until(lambda: len(list(lmp_rows(stack_settings, roles.db_schema))) >= len(expected),
               120, "every LMP interval in PostgreSQL")  # fmt: skip
    assert {key for key, _, _ in lmp_rows(stack_settings, roles.db_schema)} == expected
    assert _load_rows(stack_settings, roles.db_schema) == loads
    for dataset in (Dataset.LMP_RT_5MIN, Dataset.LOAD):
        assert count_records(stack_settings, catalog.dlq(Iso.PJM, dataset).name) == 0
    logs = roles.worker.logs()
    assert "registry.unavailable" in logs
    assert "registry.available" in logs
    roles.assert_alive()
    wait_until(lambda: _all_committed(roles.worker, raw_load), 60, "the lag gone once committed")
