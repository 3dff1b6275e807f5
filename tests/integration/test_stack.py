"""The local stack: idempotent up, status for people and scripts, port clashes, a full cycle,
a failed up that stops what it started, PostgreSQL's data out of a folder its user cannot enter."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from optibid import stack
from optibid.settings import Settings
from optibid.stack import process
from optibid.stack.postgres_server import SHARED_DATA_ROOT, PostgresServer
from optibid.stack.redis_server import RedisServer
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from tests.integration.stack_util import LMP, PublishLmp, consume, listening_port, lmp_record
from tests.integration.streams_util import free_port

PROJECT = Path(__file__).resolve().parents[2]


def test_second_up_reuses_every_server(stack_settings: Settings) -> None:
    before = {s.name: s.pid for s in stack.status(stack_settings)}
    assert stack.up(stack_settings) == dict.fromkeys(before, "reused")
    after = {s.name: s.pid for s in stack.status(stack_settings)}
    assert after == before


def test_status_json_gives_each_server_host_port_and_state(stack_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optibid", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT,
    )
    status = json.loads(result.stdout)
    assert set(status) == {"postgres", "redis", "kafka", "registry"}
    for name, server in status.items():
        assert server["host"] == "127.0.0.1", name
        assert server["state"] == "running", name
        assert isinstance(server["port"], int), name
    assert status["kafka"]["port"] == stack_settings.kafka_port
    assert isinstance(status["postgres"]["timescaledb"], bool)
    assert isinstance(status["postgres"]["timescaledb_available"], bool)
    assert status["postgres"]["data_dir"] == str(PostgresServer(stack_settings).data_dir)


def test_each_test_gets_a_database_schema_of_its_own(
    stack_settings: Settings, db_schema: str
) -> None:
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{db_schema}".probe (n int)')
        conn.execute(f'INSERT INTO "{db_schema}".probe VALUES (42)')
        assert conn.execute(f'SELECT n FROM "{db_schema}".probe').fetchall() == [(42,)]


def test_redis_answers_on_loopback(stack_settings: Settings) -> None:
    client = redis.Redis.from_url(stack_settings.redis_dsn)
    key = f"test:{uuid.uuid4()}"
    client.set(key, "1", ex=60)
    assert client.get(key) == b"1"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with listening_port() as port:
        yield port


def test_a_port_clash_names_the_port_the_process_and_the_fix(
    taken_port: int, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path, redis_port=taken_port)
    with pytest.raises(stack.StackError) as info:
        RedisServer(settings).up()
    message = str(info.value)
    assert f"port {taken_port} on 127.0.0.1 is already in use by pid" in message
    assert "OPTIBID_REDIS_PORT" in message
    assert not (tmp_path / "run" / "redis.pid").exists()


def test_the_cli_reports_a_port_clash_and_exits_non_zero(taken_port: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optibid", "stack", "up"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "OPTIBID_STATE_DIR": str(tmp_path),
            "OPTIBID_POSTGRES_PORT": str(taken_port),
        },
        check=False,
    )
    assert result.returncode == 1
    assert f"port {taken_port}" in result.stderr
    assert "OPTIBID_POSTGRES_PORT" in result.stderr


def test_records_written_before_a_restart_still_decode_after_it(
    stack_settings: Settings, publish_lmp: PublishLmp, registry: RegistryClient, group_id: str
) -> None:
    records = [lmp_record("51288", 5 * i, 20.0 + i) for i in range(10)]
    topic = publish_lmp([(b"k", r) for r in records])
    schema_id, _, schema_text = registry.latest_version(topic.subject)
    pids = [s.pid for s in stack.status(stack_settings)]

    stack.down(stack_settings)
    assert [p for p in pids if p is not None and process.is_alive(p)] == []
    for server in stack.servers(stack_settings):
        assert process.port_free(server.host, server.port), server.name
    stack.up(stack_settings)

    with RegistryClient(stack_settings.schema_registry_url) as after:
        assert after.latest_version(topic.subject) == (schema_id, 1, schema_text)
        fresh = AvroSerde(after)
        values = consume(stack_settings, topic.name, group_id, len(records))
        assert [fresh.decode(v) for v in values] == [(LMP, r) for r in records]


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a stack of this test's own (state, ports); whatever runs is stopped after,
    and PostgreSQL's data folder removed wherever it was put."""
    settings = Settings(
        state_dir=tmp_path / ".optibid",
        postgres_port=free_port(),
        redis_port=free_port(),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        registry_port=free_port(),
    )
    yield settings
    stack.down(settings)
    home = PostgresServer(settings).data_dir.parent
    if home.is_relative_to(SHARED_DATA_ROOT):
        shutil.rmtree(home, ignore_errors=True)


def test_a_failed_up_stops_what_it_started_and_keeps_what_ran_before(
    own_stack: Settings, taken_port: int
) -> None:
    redis_server = RedisServer(own_stack)
    assert redis_server.up() == "started"
    redis_pid = redis_server.pid()
    settings = own_stack.model_copy(update={"kafka_port": taken_port})
    postgres = PostgresServer(settings)
    started: list[tuple[str, str]] = []

    with pytest.raises(stack.StackError) as info:
        stack.up(settings, lambda name, outcome, _s: started.append((name, outcome)))

    message = str(info.value)
    assert f"port {taken_port} on 127.0.0.1 is already in use" in message
    assert "stopped again, as this `up` had started them: postgres" in message
    assert started == [("postgres", "started"), ("redis", "reused"), ("postgres", "stopped")]
    assert postgres.pid() is None
    assert process.port_free(settings.host, settings.postgres_port)
    assert redis_server.pid() == redis_pid  # it ran before this `up`: it stays


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only for root")
def test_postgres_runs_from_a_state_folder_its_user_cannot_enter(own_stack: Settings) -> None:
    # pytest's tmp_path is under a 0700 folder of root's, as root's home and mktemp -d are
    postgres = PostgresServer(own_stack)
    assert postgres.up() == "started"
    data = postgres.data_dir
    assert data.is_relative_to(SHARED_DATA_ROOT)
    home = data.parent
    assert home.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert home.stat().st_mode & 0o777 == 0o700
    assert postgres.status().details["data_dir"] == str(data)
    with psycopg.connect(own_stack.postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
    assert postgres.down()
    assert postgres.up() == "started"  # the same folder, found again
    assert postgres.data_dir == data
    with psycopg.connect(own_stack.postgres_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
