"""Backup and restore on the real stack: the demo's log backed up (full, then incremental),
restored under another prefix and schema (an empty stack: new topics, registry subjects,
groups and read models), every record back in its partition in order, the consumer groups
where they were, and read models whose checksums equal the original's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer
from confluent_kafka.admin import AdminClient

from optibid.backup import Restore, read_model_checksums, source_topics
from optibid.backup_format import BackupError, MasterKey
from optibid.cli_backup import rebuild_read_models
from optibid.settings import PROJECT_ROOT, Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from tests.integration.kafka_util import count_records, messages
from tests.integration.streams_util import free_port

pytestmark = pytest.mark.timeout(900)


def optibid(env: dict[str, str], *args: str, timeout_s: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "optibid", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"optibid {' '.join(args)} exited {done.returncode}:\n{output[-4000:]}"
    )
    return output


def summary(output: str) -> dict[str, Any]:
    """The JSON line a backup or restore prints last."""
    line = [ln for ln in output.splitlines() if ln.startswith("{")][-1]
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def committed(settings: Settings, group: str) -> dict[tuple[str, int], int]:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    request = [ConsumerGroupTopicPartitions(group)]
    answer = admin.list_consumer_group_offsets(request)[group].result(30)
    return {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions or []}


@pytest.fixture(scope="module")
def demo_log(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo run for 20 s under a prefix and schema of its own; its read models then
    projected to the end of its topics (the demo stops its projectors wherever they are)."""
    test_id = f"b{os.urandom(4).hex()}"
    folder = tmp_path_factory.mktemp("backup")
    key_file = folder / "master.json"
    env = {
        **os.environ,
        "OPTIBID_TOPIC_PREFIX": f"{test_id}.",
        "OPTIBID_DB_SCHEMA": test_id,
        "OPTIBID_API_PORT": str(free_port()),
        "OPTIBID_DEMO_METRICS_PORT": "0",
        "COLUMNS": "200",  # rich wraps nothing the test reads
        "OPTIBID_BACKUP_KEY_FILE": str(key_file),
    }
    optibid(env, "backup-key", str(key_file))
    optibid(env, "demo", "--duration", "20")
    source = stack_settings.model_copy(update={"topic_prefix": f"{test_id}.", "db_schema": test_id})
    rebuild_read_models(source, TopicCatalog(source.topic_prefix), threading.Event())
    return {"id": test_id, "env": env, "folder": folder / "backups", "settings": source}


def test_restore_into_an_empty_stack_gives_equal_read_models(
    stack_settings: Settings, demo_log: dict[str, Any]
) -> None:
    source: Settings = demo_log["settings"]
    env, folder = demo_log["env"], demo_log["folder"]
    catalog = TopicCatalog(source.topic_prefix)

    # a poison record that only looks framed (a zero byte first): backed up and restored as is
    poison_topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    poison = b"\x00not an Avro record"
    producer = Producer({"bootstrap.servers": source.bootstrap_servers})
    producer.produce(poison_topic, poison, key=b"poison", partition=0)
    assert producer.flush(30) == 0

    full = summary(optibid(env, "backup", str(folder)))
    assert full["parent"] is None
    records = int(full["records"])
    in_topics = sum(count_records(source, spec.name) for spec in source_topics(catalog))
    assert records >= in_topics > 10_000  # and the workers' changelogs

    # nothing readable without the key: every segment sealed, the manifest names no secret
    backup = folder / full["backup_id"]
    manifest = json.loads((backup / "manifest.json").read_text())
    for segment in manifest["segments"]:
        data = (backup / segment["file"]).read_bytes()
        assert b"Obj\x01" not in data[:64]  # an Avro container file's magic, were it plain
        assert b"energy.optibid" not in data
    assert manifest["ends"][f"{catalog.prefix}core.market.lmp"]
    assert sum(s["records"] for s in manifest["segments"]) == records

    # more records after it: the next backup takes only them
    raw = catalog.raw(Iso.PJM, Dataset.LOAD).name
    for i in range(250):
        producer.produce(raw, f"late {i}".encode(), key=b"k", partition=i % 6)
    assert producer.flush(30) == 0
    incremental = summary(optibid(env, "backup", str(folder)))
    assert incremental["parent"] == full["backup_id"]
    assert incremental["records"] == 250

    # an altered segment is refused before anything is written
    target_id = f"r{os.urandom(4).hex()}"
    target_env = {**env, "OPTIBID_TOPIC_PREFIX": f"{target_id}.", "OPTIBID_DB_SCHEMA": target_id}
    assert "every checksum and MAC ok" in optibid(target_env, "restore", str(folder), "--verify")

    restored = summary(optibid(target_env, "restore", str(folder)))
    assert restored["backups"] == [full["backup_id"], incremental["backup_id"]]
    assert restored["records"] == records + 250
    assert restored["differing"] == []
    target = source.model_copy(update={"topic_prefix": f"{target_id}.", "db_schema": target_id})
    assert read_model_checksums(target.postgres_dsn, target_id) == read_model_checksums(
        source.postgres_dsn, source.db_schema
    )
    for spec in source_topics(catalog):
        copy = spec.name.replace(catalog.prefix, target.topic_prefix, 1)
        assert count_records(target, copy) == count_records(source, spec.name), spec.name
    restored_poison = [
        m.value()
        for _, m in messages(target, poison_topic.replace(catalog.prefix, target.topic_prefix, 1))
        if m.key() == b"poison"
    ]
    assert restored_poison == [poison]
    # the consumer groups where they were: the identity projector's offsets, renamed
    before = committed(source, f"{source.topic_prefix}optibid-identity-projector")
    after = committed(target, f"{target.topic_prefix}optibid-identity-projector")
    assert before
    assert {
        (t.replace(source.topic_prefix, target.topic_prefix, 1), p): o
        for (t, p), o in before.items()
    } == after

    # a second restore into the same, no longer empty, stack is refused
    refused = subprocess.run(
        [sys.executable, "-m", "optibid", "restore", str(folder)],
        env=target_env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "the target is not empty" in refused.stdout + refused.stderr


def test_a_tampered_or_foreign_backup_is_refused(demo_log: dict[str, Any], tmp_path: Path) -> None:
    source: Settings = demo_log["settings"]
    folder: Path = demo_log["folder"]
    key = MasterKey.from_file(Path(demo_log["env"]["OPTIBID_BACKUP_KEY_FILE"]))
    catalog = TopicCatalog("nowhere.")

    def restore(master: MasterKey, where: Path) -> Restore:
        return Restore(source.bootstrap_servers, source.schema_registry_url,
                       source.postgres_dsn, catalog, master, where)  # fmt: skip

    if not any(folder.glob("*/manifest.json")):
        optibid(demo_log["env"], "backup", str(folder))
    other = MasterKey("other", os.urandom(32))
    with pytest.raises(BackupError, match="sealed under key"):
        restore(other, folder)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
    segment = next(copy.glob("*/segments/*.sealed"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 1
    segment.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="checksum differs"):
        restore(key, copy).verify()
    manifest_path = next(copy.glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["ends"] = {}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="was altered"):
        restore(key, copy).verify()
