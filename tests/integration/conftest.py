"""Integration fixtures: the real local stack, started once for the whole suite when not up.

Each test gets its own topics (a unique name prefix), consumer group and database schema,
so tests never see each other's data.

The read models run on whichever path the database has: TimescaleDB hypertables where the
extension is there, plain partitions otherwise. `OPTIBID_TEST_READ_MODELS=partitions` runs
the suite on the database PARTITIONS_DB of the same server, which never gets the extension
(`make test` runs the projection and API tests a second time so); `=timescaledb` fails the
run unless the extension is loaded (CI sets it, so a build that failed cannot pass unseen).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from optibid import stack
from optibid.settings import Settings
from optibid.stack import timescale
from optibid.stack.postgres_server import REPO_ROOT
from projections.hypertables import has_timescale
from projections.migrate import drop_schema, plain_database
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import delete_topics, ensure_topics
from tests.integration.projections_util import ProjectorProcess
from tests.integration.stack_util import LMP, PublishLmp, produce
from tests.integration.streams_util import WorkerProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


PARTITIONS_DB = "optibid_partitions"
READ_MODELS = os.environ.get("OPTIBID_TEST_READ_MODELS", "")


@pytest.fixture(scope="session")
def server_settings() -> Iterator[Settings]:
    """Settings the local stack runs with; starts it (and stops it afterwards) when it was
    down. A test that stops and starts a server uses these, so that the server comes back as
    it was, whichever database the read models use."""
    settings = Settings()
    was_running = all(s.state == "running" for s in stack.status(settings))
    stack.up(settings)  # a failed up stops what it started itself; what ran before keeps running
    yield settings
    if not was_running and os.environ.get("OPTIBID_TEST_KEEP_STACK") != "1":
        stack.down(settings)


@pytest.fixture(scope="session")
def stack_settings(server_settings: Settings) -> Iterator[Settings]:
    """Settings of the running local stack for the tests: on its database, or with
    OPTIBID_TEST_READ_MODELS=partitions on the database without TimescaleDB."""
    settings = server_settings
    saved = os.environ.get("OPTIBID_POSTGRES_DB")
    if READ_MODELS == "partitions":
        plain_database(settings.postgres_dsn, PARTITIONS_DB)
        os.environ["OPTIBID_POSTGRES_DB"] = PARTITIONS_DB  # child processes follow
        settings = settings.model_copy(update={"postgres_db": PARTITIONS_DB})
    elif READ_MODELS == "timescaledb":
        with psycopg.connect(settings.postgres_dsn) as conn:
            loaded = has_timescale(conn)
        if not loaded:
            pytest.fail(f"OPTIBID_TEST_READ_MODELS=timescaledb: {timescale_absence(settings)}")
    elif READ_MODELS:
        pytest.fail(f"OPTIBID_TEST_READ_MODELS={READ_MODELS!r}: use timescaledb or partitions")
    yield settings
    if saved is None:
        os.environ.pop("OPTIBID_POSTGRES_DB", None)
    else:
        os.environ["OPTIBID_POSTGRES_DB"] = saved
    if READ_MODELS == "partitions":
        with psycopg.connect(settings.postgres_dsn) as conn:
            assert not has_timescale(conn), f"something created TimescaleDB in {PARTITIONS_DB}"


def timescale_absence(settings: Settings) -> str:
    """Why the stack's database has no TimescaleDB, in words."""
    if not settings.timescaledb:
        return "OPTIBID_TIMESCALEDB is false"
    if READ_MODELS == "partitions":
        return "this run is the plain-partition pass (OPTIBID_TEST_READ_MODELS=partitions)"
    if timescale.vendored_source(REPO_ROOT) is None:
        return "the server lacks TimescaleDB and ../shared/vendor has no source to build it"
    return (
        "TimescaleDB is not loaded although its source is in ../shared/vendor;"
        " `optibid stack status` says why"
    )


@pytest.fixture(scope="session")
def timescale_settings(stack_settings: Settings) -> Settings:
    """The stack's settings, on a database with TimescaleDB loaded. Skips, saying why, where
    the server cannot have it (no source to build, the setting off, the partitions pass);
    fails where it should have it and does not."""
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        if has_timescale(conn):
            return stack_settings
    reason = timescale_absence(stack_settings)
    if READ_MODELS == "timescaledb" or reason.startswith("TimescaleDB is not loaded"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def partitions_settings(stack_settings: Settings) -> Settings:
    """Settings on PARTITIONS_DB: the same server, a database without TimescaleDB."""
    plain_database(stack_settings.postgres_dsn, PARTITIONS_DB)
    return stack_settings.model_copy(update={"postgres_db": PARTITIONS_DB})


@pytest.fixture
def test_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def registry(stack_settings: Settings) -> Iterator[RegistryClient]:
    with RegistryClient(stack_settings.schema_registry_url) as client:
        yield client


@pytest.fixture
def serde(registry: RegistryClient) -> AvroSerde:
    return AvroSerde(registry, ContractSet())


@pytest.fixture
def catalog(stack_settings: Settings, test_id: str) -> Iterator[TopicCatalog]:
    """The catalog under a prefix of this test's own; its topics and subjects go afterwards."""
    prefixed = TopicCatalog(f"{test_id}.")
    yield prefixed
    _cleanup(stack_settings, list(prefixed))
    _delete_internal(stack_settings, test_id)


def _delete_internal(settings: Settings, test_id: str) -> None:
    """The workers' own topics (changelogs, repartitions) named after the test's app ids."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{test_id}-")]
    delete_topics(settings.bootstrap_servers, names)


@pytest.fixture
def topic_factory(
    stack_settings: Settings, catalog: TopicCatalog
) -> Callable[[TopicSpec], TopicSpec]:
    """Creates one catalog topic under the test's prefix."""

    def create(spec: TopicSpec) -> TopicSpec:
        ensure_topics(stack_settings.bootstrap_servers, [spec])
        return spec

    return create


def _cleanup(settings: Settings, topics: list[TopicSpec]) -> None:
    delete_topics(settings.bootstrap_servers, [t.name for t in topics if _exists(settings, t)])
    with RegistryClient(settings.schema_registry_url) as registry:
        subjects = set(registry.subjects())
        for topic in topics:
            if topic.subject in subjects:
                registry.delete_subject(topic.subject)


def _exists(settings: Settings, topic: TopicSpec) -> bool:
    metadata = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(
        timeout=10
    )
    return topic.name in metadata.topics


@pytest.fixture
def publish_lmp(
    stack_settings: Settings,
    catalog: TopicCatalog,
    topic_factory: Callable[[TopicSpec], TopicSpec],
    serde: AvroSerde,
) -> PublishLmp:
    """Publishes (key, LmpPublished record) pairs, Avro-encoded, to the test's canonical LMP
    topic, created here; returns that topic."""
    topic = topic_factory(catalog.core("lmp"))
    encode = serde.encoder(topic.subject, LMP)

    def publish(records: list[tuple[bytes, dict[str, Any]]]) -> TopicSpec:
        produce(stack_settings, topic.name, [(key, encode(value)) for key, value in records])
        return topic

    return publish


@pytest.fixture
def group_id(test_id: str) -> str:
    return f"{test_id}-group"


@pytest.fixture
def db_schema(stack_settings: Settings, test_id: str) -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{test_id}"')
    yield test_id
    drop_schema(stack_settings.postgres_dsn, test_id)


@pytest.fixture
def contracts_ready(
    stack_settings: Settings, catalog: TopicCatalog, registry: RegistryClient
) -> TopicCatalog:
    ensure_topics(stack_settings.bootstrap_servers, catalog)
    register_all(registry, catalog, ContractSet())
    return catalog


@pytest.fixture
def worker(test_id: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(test_id, tmp_path)
    yield process
    process.stop()


@pytest.fixture
def projector(test_id: str, db_schema: str, tmp_path: Path) -> Iterator[ProjectorProcess]:
    process = ProjectorProcess(test_id, db_schema, tmp_path)
    yield process
    process.stop()
