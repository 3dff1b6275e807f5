"""Backup of the event log, and restore into an empty stack.

What is backed up is every topic that is a source of truth (`source_topics`): what the ISOs
said (raw), the published market data, KPIs, the ingest events, dead letters, the identity and
audit events and the usage windows; with them the stream workers' table changelogs (so the
workers resume with their state), the consumer groups' committed offsets, the writer schemas of
the records, and the identity key store (users' sealing keys and the signing keys live in
PostgreSQL, not in the log). Commands, their outcomes, usage requests and benchmark inputs are
left out: they are requests already decided, whose results are in the topics kept.

`backup` reads each partition from where the previous backup of the folder ended (all of it
for the first, or with `full`) up to the end it had when the backup began, one partition at a
time, into sealed segments of at most SEGMENT_RECORDS records: memory stays bounded by one
segment whatever the log's length. `restore` takes a backup and the chain of backups it
continues, checks every checksum and MAC before anything is written, and refuses a target
that already holds records of those topics; it then creates the topics, registers the writer
schemas (old schema ids in the values are rewritten to the target registry's), republishes
every record to its partition in offset order, moves the consumer groups to the same places,
puts the keys back and rebuilds every read model from the topics.
"""

from __future__ import annotations

import json
import secrets
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from psycopg import sql

from identity import signing, sp_keys
from identity.keystore import PgKeyStore
from optibid.backup_format import (
    BUFFERED_RECORDS,
    FORMAT,
    KEY_BYTES,
    SEGMENT_RECORDS,
    BackupError,
    MasterKey,
    check_manifest,
    decode_segment,
    encode_segment,
    seal,
    sha256,
    sign_manifest,
    unseal,
    unwrap_key,
    wrap_key,
)
from projections.query import table_checksum
from schemas import kafka_client
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.errors import SchemaNotFoundError
from schemas.offsets import watermarks
from schemas.registry import RegistryClient
from schemas.topics import ensure_topics

log = structlog.get_logger(__name__)

KEYS_SCHEMA = "identity_keys"
# topics of the catalog left out: requests already decided (their results are in topics kept)
TRANSIENT = ("identity.commands", "identity.command_outcomes", "usage.requests")
TRANSIENT_PREFIXES = ("kpi.benchmark_inputs",)
MAGIC = 0  # the Confluent wire format: magic byte, 4-byte schema id, Avro body

Progress = Callable[[str, int, int], None]  # (what, done, total)


def source_topics(catalog: TopicCatalog) -> list[TopicSpec]:
    """The catalog's topics that are a source of truth (see the module's doc)."""
    out = []
    for spec in catalog:
        base = spec.name.removeprefix(catalog.prefix)
        if base in TRANSIENT or base.startswith(TRANSIENT_PREFIXES):
            continue
        out.append(spec)
    return out


def changelog_topics(admin: AdminClient, prefix: str) -> dict[str, int]:
    """The stream workers' table changelogs of `prefix` (name: partitions)."""
    topics = admin.list_topics(timeout=30).topics
    return {
        name: len(meta.partitions)
        for name, meta in topics.items()
        if name.startswith(f"{prefix}optibid-") and name.endswith("-changelog")
    }


def renamed(name: str, old_prefix: str, new_prefix: str) -> str:
    """A topic or group name of one prefix under another."""
    if old_prefix and name.startswith(old_prefix):
        name = name[len(old_prefix) :]
    return f"{new_prefix}{name}"


@dataclass
class BackupResult:
    backup_id: str
    folder: Path
    parent: str | None
    records: int
    segments: int
    bytes: int
    topics: int
    seconds: float


@dataclass
class RestoreResult:
    backup_ids: list[str]
    records: int
    seconds_republish: float
    seconds_rebuild: float
    seconds: float
    checksums: dict[str, tuple[int, str]] = field(default_factory=dict)
    differing: list[str] = field(default_factory=list)


def read_model_checksums(dsn: str, schema: str) -> dict[str, tuple[int, str]]:
    """(rows, digest) of every table of the read-model schema, equal for equal contents in any
    physical order (`projections.query.table_checksum`). Where the projectors have read to
    (`projection_offsets`) is left out: offsets are the log's, not the data."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " ORDER BY c.relname",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            if table not in ("projection_offsets", "schema_migrations"):
                out[str(table)] = table_checksum(conn, schema, str(table))
    return out


def manifests(folder: Path) -> dict[str, dict[str, Any]]:
    """Every backup manifest in `folder`, by backup id (not yet verified)."""
    out = {}
    for path in sorted(folder.glob("*/manifest.json")):
        try:
            body = json.loads(path.read_text())
        except ValueError:
            raise BackupError(f"{path}: not JSON") from None
        if body.get("format") != FORMAT:
            raise BackupError(f"{path}: format {body.get('format')!r}, this version reads {FORMAT}")
        out[str(body["backup_id"])] = body
    return out


def latest_of(found: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    if not found:
        return None
    return max(found.values(), key=lambda m: str(m["created_at"]))


def chain_of(found: Mapping[str, dict[str, Any]], backup_id: str) -> list[dict[str, Any]]:
    """The backup and those it continues, oldest (the full one) first."""
    chain: list[dict[str, Any]] = []
    current: str | None = backup_id
    while current is not None:
        manifest = found.get(current)
        if manifest is None:
            wanted = chain[-1]["backup_id"] if chain else backup_id
            raise BackupError(f"backup {current} (continued by {wanted}) is not in the folder")
        chain.append(manifest)
        current = manifest.get("parent")
    return list(reversed(chain))


class Backup:
    """One backup run of a stack into a folder."""

    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        postgres_dsn: str,
        db_schema: str,
        catalog: TopicCatalog,
        master: MasterKey,
        folder: Path,
    ) -> None:
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.dsn = postgres_dsn
        self.db_schema = db_schema
        self.catalog = catalog
        self.master = master
        self.folder = folder

    def run(self, full: bool = False, progress: Progress | None = None) -> BackupResult:
        began = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        found = manifests(self.folder)
        parent = None if full else latest_of(found)
        starts: dict[str, dict[str, int]] = {}
        if parent is not None:
            check_manifest(parent, unwrap_key(self.master, parent))
            starts = parent["ends"]
        backup_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        final = self.folder / backup_id
        target = self.folder / f"{backup_id}.partial"  # renamed once its manifest is written
        (target / "segments").mkdir(parents=True)
        data_key = secrets.token_bytes(KEY_BYTES)
        admin = AdminClient(
            {**kafka_client.librdkafka(), "bootstrap.servers": self.bootstrap, "log_level": 0}
        )
        specs = {s.name: (s.partitions, s.config) for s in source_topics(self.catalog)}
        for name, partitions in changelog_topics(admin, self.catalog.prefix).items():
            specs[name] = (partitions, {"cleanup.policy": "compact"})
        consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": f"optibid-backup-{backup_id}",  # never commits
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,
                "auto.offset.reset": "earliest",  # a start retention deleted: from what is left
                "log_level": 0,
            }
        )
        # where every partition ends now: the backup is of the log up to this moment
        ends: dict[str, dict[str, int]] = {}
        try:
            for name, (partitions, _) in specs.items():
                ends[name] = {
                    str(p): watermarks(consumer, TopicPartition(name, p))[1]
                    for p in range(partitions)
                }
            groups = self._group_offsets(admin, set(specs))
            segments: list[dict[str, Any]] = []
            schema_ids: dict[int, set[str]] = {}
            total = sum(
                max(0, end - int(starts.get(t, {}).get(p, 0)))
                for t, parts in ends.items()
                for p, end in parts.items()
            )
            done = 0
            ranges = {
                (name, int(p)): (int(starts.get(name, {}).get(p, 0)), end)
                for name, parts in ends.items()
                for p, end in parts.items()
            }
            for segment, count in self._read(
                consumer, ranges, backup_id, data_key, target, schema_ids
            ):
                segments.append(segment)
                done += count
                if progress is not None:
                    progress("backup", done, total)
        finally:
            consumer.close()
        keys_file = self._keys(backup_id, data_key, target)
        manifest = {
            "format": FORMAT,
            "backup_id": backup_id,
            "parent": None if parent is None else parent["backup_id"],
            "created_at": datetime.now(UTC).isoformat(),
            "prefix": self.catalog.prefix,
            "key_id": self.master.key_id,
            "wrapped_key": wrap_key(self.master, data_key, backup_id),
            "topics": {n: {"partitions": p, "config": c} for n, (p, c) in sorted(specs.items())},
            "ends": ends,
            "starts": {
                n: {p: int(starts.get(n, {}).get(p, 0)) for p in ps} for n, ps in ends.items()
            },
            "groups": groups,
            "schemas": self._schemas(schema_ids),
            "segments": segments,
            "keys": keys_file,
            "read_models": {"schema": self.db_schema, "checksums": self._checksums()},
        }
        (target / "manifest.json").write_text(
            json.dumps(sign_manifest(manifest, data_key), indent=1, sort_keys=True) + "\n"
        )
        target.rename(final)
        return BackupResult(
            backup_id,
            final,
            None if parent is None else str(parent["backup_id"]),
            sum(int(s["records"]) for s in segments),
            len(segments),
            sum(int(s["bytes"]) for s in segments),
            len(specs),
            time.monotonic() - began,
        )

    def _checksums(self) -> dict[str, tuple[int, str]]:
        try:
            return read_model_checksums(self.dsn, self.db_schema)
        except psycopg.Error as exc:
            raise BackupError(
                f"reading the read models' checksums in schema {self.db_schema}: {exc}"
            ) from exc

    def _read(  # noqa: PLR0912 - one pass: records, ends, buffers
        self,
        consumer: Consumer,
        ranges: Mapping[tuple[str, int], tuple[int, int]],
        backup_id: str,
        data_key: bytes,
        target: Path,
        schema_ids: dict[int, set[str]],
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """Sealed segments of every partition's records in [start, end), read in one pass.
        Records wait in per-partition buffers; a full one (SEGMENT_RECORDS), or the largest
        when all of them together hold BUFFERED_RECORDS, is sealed as a segment, so memory is
        bounded however many partitions and records there are."""
        left = {tp: r for tp, r in ranges.items() if r[1] > r[0]}
        consumer.assign([TopicPartition(t, p, r[0]) for (t, p), r in left.items()])
        buffers: dict[tuple[str, int], list[dict[str, Any]]] = {}
        buffered = 0
        idle_since = time.monotonic()
        while left:
            messages = consumer.consume(10_000, timeout=0.5)
            if not messages:
                if time.monotonic() - idle_since > 60:
                    shown = ", ".join(f"{t}[{p}]" for t, p in list(left)[:5])
                    raise BackupError(f"no record for 60 s from {shown}, short of their ends")
                continue
            idle_since = time.monotonic()
            for message in messages:
                topic, partition = message.topic(), message.partition()
                assert topic is not None
                assert partition is not None
                tp = (topic, partition)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self._finish(consumer, left, tp)  # compaction or markers end it early
                        continue
                    raise BackupError(f"{topic}[{partition}]: {error}")
                offset = message.offset()
                if tp not in left or offset is None:
                    continue
                if offset < left[tp][1]:
                    value = message.value()
                    if value is not None and len(value) >= 5 and value[0] == MAGIC:
                        schema_ids.setdefault(struct.unpack(">I", value[1:5])[0], set()).add(topic)
                    buffers.setdefault(tp, []).append(
                        {
                            "offset": offset,
                            "timestamp_ms": message.timestamp()[1],
                            "key": message.key(),
                            "value": value,
                            "headers": headers_of(message.headers()),
                        }
                    )
                    buffered += 1
                if offset >= left[tp][1] - 1:
                    self._finish(consumer, left, tp)
                full = tp if len(buffers.get(tp, ())) >= SEGMENT_RECORDS else None
                if full is None and buffered >= BUFFERED_RECORDS:
                    full = max(buffers, key=lambda k: len(buffers[k]))
                if full is not None:
                    batch = buffers.pop(full)
                    buffered -= len(batch)
                    yield self._seal(*full, batch, backup_id, data_key, target), len(batch)
        for (topic, partition), batch in sorted(buffers.items()):
            if batch:
                yield self._seal(topic, partition, batch, backup_id, data_key, target), len(batch)

    @staticmethod
    def _finish(
        consumer: Consumer, left: dict[tuple[str, int], tuple[int, int]], tp: tuple[str, int]
    ) -> None:
        if left.pop(tp, None) is not None:
            consumer.incremental_unassign([TopicPartition(*tp)])

    @staticmethod
    def _seal(
        topic: str,
        partition: int,
        batch: list[dict[str, Any]],
        backup_id: str,
        data_key: bytes,
        target: Path,
    ) -> dict[str, Any]:
        first, last = int(batch[0]["offset"]), int(batch[-1]["offset"])
        name = f"segments/{topic}.{partition}.{first:020d}.avro.sealed"
        plain = encode_segment(batch, {"optibid.topic": topic, "optibid.partition": str(partition)})
        sealed = seal(data_key, plain, f"{backup_id}/{name}")
        (target / name).write_bytes(sealed)
        return {
            "file": name,
            "topic": topic,
            "partition": partition,
            "first_offset": first,
            "last_offset": last,
            "records": len(batch),
            "bytes": len(sealed),
            "sha256": sha256(sealed),
        }

    def _group_offsets(
        self, admin: AdminClient, topics: set[str]
    ) -> dict[str, dict[str, dict[str, int]]]:
        """Committed offsets, on the topics backed up, of the consumer groups of the prefix."""
        listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
        names = sorted(
            g.group_id
            for g in listed.valid
            if g.group_id.startswith(f"{self.catalog.prefix}optibid-")
            and not g.group_id.startswith(f"{self.catalog.prefix}optibid-backup-")
        )
        out: dict[str, dict[str, dict[str, int]]] = {}
        for group in names:
            request = [ConsumerGroupTopicPartitions(group)]
            answer = admin.list_consumer_group_offsets(request, request_timeout=30)
            offsets: dict[str, dict[str, int]] = {}
            for tp in answer[group].result(timeout=30).topic_partitions or []:
                if tp.topic in topics and tp.offset >= 0:
                    offsets.setdefault(tp.topic, {})[str(tp.partition)] = tp.offset
            if offsets:
                out[group] = offsets
        return out

    def _schemas(self, ids: dict[int, set[str]]) -> dict[str, dict[str, Any]]:
        out = {}
        with RegistryClient(self.registry_url) as registry:
            for schema_id in sorted(ids):
                try:
                    schema = registry.schema_by_id(schema_id)
                except SchemaNotFoundError:
                    # a value that only looks framed (a poison record starting with a zero
                    # byte): kept as it is, restored as it is
                    continue
                out[str(schema_id)] = {"schema": schema, "topics": sorted(ids[schema_id])}
        return out

    def _keys(self, backup_id: str, data_key: bytes, target: Path) -> dict[str, Any] | None:
        """The identity key store's tables (PostgreSQL COPY text), sealed; None where the
        stack has none."""
        tables: dict[str, str] = {}
        with psycopg.connect(self.dsn) as conn:
            names = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " ORDER BY table_name",
                (KEYS_SCHEMA,),
            ).fetchall()
            for (table,) in names:
                copy = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT").format(
                    sql.Identifier(KEYS_SCHEMA, table)
                )
                with conn.cursor().copy(copy) as out:
                    tables[str(table)] = b"".join(bytes(chunk) for chunk in out).decode()
        if not tables:
            return None
        name = "keys.json.sealed"
        sealed = seal(data_key, json.dumps(tables).encode(), f"{backup_id}/{name}")
        (target / name).write_bytes(sealed)
        return {"file": name, "sha256": sha256(sealed), "tables": sorted(tables)}


def headers_of(headers: Any) -> list[dict[str, Any]]:
    """A record's headers as BackedUpRecord keeps them (librdkafka gives (key, value) pairs)."""
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    return [{"key": str(k), "value": v} for k, v in pairs]


def reframed(
    record: Mapping[str, Any], topic: str, partition: int, ids: Mapping[tuple[str, int], int]
) -> bytes | None:
    """The record's value with its schema id replaced by the target registry's."""
    value: bytes | None = record["value"]
    if value is None or len(value) < 5 or value[0] != MAGIC:
        return value
    old_id = struct.unpack(">I", value[1:5])[0]
    new_id = ids.get((topic, old_id))
    if new_id is None or new_id == old_id:
        # no schema of that id was in the registry at backup time: a poison record that only
        # looks framed, restored byte for byte (the workers dead-letter it again)
        return value
    return bytes([MAGIC]) + struct.pack(">I", new_id) + value[5:]


class Restore:
    """A backup (and the chain it continues) into an empty stack under `catalog`'s prefix."""

    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        postgres_dsn: str,
        catalog: TopicCatalog,
        master: MasterKey,
        folder: Path,
        backup_id: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.dsn = postgres_dsn
        self.catalog = catalog
        self.master = master
        found = manifests(folder)
        chosen = found.get(backup_id) if backup_id else latest_of(found)
        if chosen is None:
            raise BackupError(
                f"no backup {backup_id} in {folder}" if backup_id else f"no backup in {folder}"
            )
        self.folder = folder
        self.chain = chain_of(found, str(chosen["backup_id"]))
        self.keys = {m["backup_id"]: unwrap_key(master, m) for m in self.chain}

    @property
    def latest(self) -> dict[str, Any]:
        return self.chain[-1]

    def name_of(self, old: str, manifest: Mapping[str, Any]) -> str:
        return renamed(old, str(manifest["prefix"]), self.catalog.prefix)

    def verify(self) -> int:
        """Check every manifest's MAC and every file's checksum; the records in the chain."""
        records = 0
        for manifest in self.chain:
            data_key = self.keys[manifest["backup_id"]]
            check_manifest(manifest, data_key)
            files = [*manifest["segments"], *([manifest["keys"]] if manifest["keys"] else [])]
            for entry in files:
                path = self.folder / manifest["backup_id"] / entry["file"]
                if not path.exists():
                    raise BackupError(f"{path}: missing")
                if sha256(path.read_bytes()) != entry["sha256"]:
                    raise BackupError(f"{path}: checksum differs from the manifest's")
            records += sum(int(s["records"]) for s in manifest["segments"])
        return records

    def check_empty(self) -> None:
        """Refuse a target that holds records of any topic to restore."""
        consumer = Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": "optibid-restore",
            }
        )
        try:
            existing = consumer.list_topics(timeout=30).topics
            full = []
            for old, spec in self.latest["topics"].items():
                name = self.name_of(old, self.latest)
                if name not in existing:
                    continue
                for p in range(int(spec["partitions"])):
                    _, high = watermarks(consumer, TopicPartition(name, p))
                    if high > 0:
                        full.append(f"{name}[{p}] ({high} records)")
                        break
        finally:
            consumer.close()
        if full:
            shown = ", ".join(full[:5]) + (f" and {len(full) - 5} more" if len(full) > 5 else "")
            raise BackupError(
                f"the target is not empty: {shown}; restore into an empty stack (or another"
                " OPTIBID_TOPIC_PREFIX)"
            )

    def prepare(self) -> dict[tuple[str, int], int]:
        """Create the topics and register the writer schemas; (target topic, old id) -> new id."""
        specs = []
        for old, spec in self.latest["topics"].items():
            config = spec["config"]
            specs.append(
                TopicSpec(
                    self.name_of(old, self.latest),
                    "restored",
                    int(spec["partitions"]),
                    "restored",
                    "restored",
                    retention_ms=int(config.get("retention.ms", -1)),
                    compact=config.get("cleanup.policy") == "compact",
                )
            )
        ensure_topics(self.bootstrap, specs)
        ids: dict[tuple[str, int], int] = {}
        with RegistryClient(self.registry_url) as registry:
            for manifest in self.chain:
                for old_id, entry in sorted(manifest["schemas"].items(), key=lambda i: int(i[0])):
                    for topic in entry["topics"]:
                        name = self.name_of(topic, manifest)
                        key = (name, int(old_id))
                        if key not in ids:
                            ids[key] = registry.register(f"{name}-value", entry["schema"])
        return ids

    def republish(  # noqa: PLR0912 - one pass: records, groups' offsets, progress
        self, ids: Mapping[tuple[str, int], int], progress: Progress | None
    ) -> int:
        """Every record of the chain to its partition, in offset order; the groups' offsets
        moved to the same places. Returns the records sent."""
        producer = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "linger.ms": 20,
                "batch.size": 1_048_576,
                "compression.type": "lz4",
                "log_level": 0,
            }
        )
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None and len(failures) < 10:
                failures.append(str(error))

        # committed offsets to translate, per (target topic, partition): old offset -> groups
        wanted: dict[tuple[str, int], dict[int, list[str]]] = {}
        for group, topics in self.latest["groups"].items():
            target_group = self.name_of(group, self.latest)
            for topic, parts in topics.items():
                for p, offset in parts.items():
                    key = (self.name_of(topic, self.latest), int(p))
                    wanted.setdefault(key, {}).setdefault(int(offset), []).append(target_group)
        new_offsets: dict[str, list[TopicPartition]] = {}
        total = sum(int(s["records"]) for m in self.chain for s in m["segments"])
        sent = 0
        by_partition: dict[tuple[str, int], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for manifest in self.chain:
            for segment in manifest["segments"]:
                key = (self.name_of(segment["topic"], manifest), int(segment["partition"]))
                by_partition.setdefault(key, []).append((manifest, segment))
        for (topic, partition), segments in sorted(by_partition.items()):
            segments.sort(key=lambda ms: int(ms[1]["first_offset"]))
            pending = sorted(wanted.pop((topic, partition), {}).items())
            count = 0
            for manifest, segment in segments:
                backup_id = manifest["backup_id"]
                sealed = (self.folder / backup_id / segment["file"]).read_bytes()
                plain = unseal(self.keys[backup_id], sealed, f"{backup_id}/{segment['file']}")
                for record in decode_segment(plain):
                    while pending and pending[0][0] <= int(record["offset"]):
                        for group in pending.pop(0)[1]:
                            new_offsets.setdefault(group, []).append(
                                TopicPartition(topic, partition, count)
                            )
                    value = reframed(record, topic, partition, ids)
                    self._produce(producer, topic, partition, record, value, delivered)
                    count += 1
                sent += int(segment["records"])
                if progress is not None:
                    progress("republish", sent, total)
            for _, groups in pending:  # committed at the partition's end
                for group in groups:
                    new_offsets.setdefault(group, []).append(
                        TopicPartition(topic, partition, count)
                    )
        for (topic, partition), pending_offsets in wanted.items():  # partitions with no records
            for _, groups in pending_offsets.items():
                for group in groups:
                    new_offsets.setdefault(group, []).append(TopicPartition(topic, partition, 0))
        if producer.flush(120) != 0:
            raise BackupError("records not delivered within 120 s: is the broker up?")
        if failures:
            raise BackupError(f"records not delivered: {'; '.join(failures)}")
        self._move_groups(new_offsets)
        return sent

    @staticmethod
    def _produce(
        producer: Producer,
        topic: str,
        partition: int,
        record: Mapping[str, Any],
        value: bytes | None,
        delivered: Callable[[Any, Any], None],
    ) -> None:
        headers = [(h["key"], h["value"]) for h in record["headers"]]
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=record["key"],
                    partition=partition,
                    timestamp=int(record["timestamp_ms"]),
                    headers=headers or None,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                producer.poll(0.1)

    def _move_groups(self, offsets: Mapping[str, list[TopicPartition]]) -> None:
        if not offsets:
            return
        admin = AdminClient(
            {**kafka_client.librdkafka(), "bootstrap.servers": self.bootstrap, "log_level": 0}
        )
        for group, partitions in offsets.items():
            request = [ConsumerGroupTopicPartitions(group, partitions)]
            try:
                admin.alter_consumer_group_offsets(request, request_timeout=30)[group].result(30)
            except KafkaException as exc:
                raise BackupError(f"moving consumer group {group}: {exc}") from exc

    def restore_keys(self) -> int:
        """The identity key store's rows (rows already there are kept); returns rows added."""
        manifest = self.latest
        entry = manifest["keys"]
        if entry is None:
            return 0
        backup_id = manifest["backup_id"]
        sealed = (self.folder / backup_id / entry["file"]).read_bytes()
        tables = json.loads(unseal(self.keys[backup_id], sealed, f"{backup_id}/{entry['file']}"))
        PgKeyStore(self.dsn).ensure()
        added = 0
        with psycopg.connect(self.dsn) as conn:
            signing.ensure(conn)
            sp_keys.ensure(conn)
            for table, text in tables.items():
                target = sql.Identifier(KEYS_SCHEMA, table)
                conn.execute(
                    sql.SQL("CREATE TEMP TABLE restored (LIKE {}) ON COMMIT DROP").format(target)
                )
                with conn.cursor().copy("COPY restored FROM STDIN") as copy:
                    copy.write(text.encode())
                added += conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM restored ON CONFLICT DO NOTHING").format(
                        target
                    )
                ).rowcount
                conn.execute("DROP TABLE restored")
        return added
