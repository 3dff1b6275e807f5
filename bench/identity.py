"""Identity commands/s through `optibid identity` against a bare loop doing the same I/O, the
handler's peak memory for two stream lengths on the same aggregates, and the identity
projector's events/s.

A realistic command stream, dominated by sign-ins and session refreshes, is built first: 1,000
users registered (ClaimEmail + RegisterUser), 100 organisations of 10 members each (the owner
creates it; InviteMember + AcceptInvitation for the other nine), two sessions per user (a
successful RecordSignIn + StartSession), then the rest: RecordSignIn (90% succeeding) and
RefreshSession with SHA-256 hashes that chain, so they are accepted, plus now and then a
refresh token presented twice, which ends its session. The short stream is the first quarter
of the long one: the same 4,100 aggregates, fewer sign-ins and refreshes of them.

Then, side by side in one run, on topics under prefixes of the run's own:
- the ceiling: a plain confluent-kafka loop that consumes the long stream, decodes each
  command, encodes one IdentityCommandOutcome for it and produces that (no decision, no state);
- `optibid identity` (a process of its own) deciding the long stream, then, under a second
  prefix, the short one. Each rate is outcomes over the span from the first append of an
  outcome to the last (broker timestamps), so start-up is left out of both alike; the
  records of the first append are left out too. Peak memory is the handler's VmHWM once all
  its outcomes are in; `memory_growth` = long peak / short peak (1.0: flat);
- the table the handler keeps (`identity.state.dump` of every aggregate, as JSON) after the
  short and the long stream, computed in process with the pure `identity.handler.handle`;
- the identity projector (`IdentityProjector.run(until_caught_up=True)`) folding the long
  run's identity.events and audit.events into a scratch schema, against a bare loop that
  consumes and decodes the same records (no database).

`ratio` = handler commands/s / ceiling commands/s (higher is better).
Run on the local stack: `python bench/identity.py [--commands N] [--short N] [--no-projector]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from bench.common import (
    ROOT,
    append_time_topics,
    delete_run_topics,
    emit,
    local_stack,
    peak_rss_mib,
    run_id,
    stamp_on_append,
)
from identity import state
from identity.bus import new_command
from identity.handler import OUTCOME_SCHEMA, Stored, contract_record, handle
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.identity_models import IdentityProjector
from projections.migrate import migrate
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.envelope import envelope
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

USERS = 1_000
ORGS = 100
SESSIONS_PER_USER = 2
SIGN_IN_SHARE = 0.3  # of the commands after the setup; the rest are refreshes
SIGN_IN_FAILURES = 0.1
REUSE_EVERY = 2_500  # one refresh token presented twice per this many commands after the setup
STEP = timedelta(milliseconds=500)  # command time between two commands of the stream
IDLE_TIMEOUT_S = 12 * 3600
SESSION_LIFETIME = timedelta(days=30)
FIRST_APPEND_MS = 10  # records stamped this close to the first one came with it

Keyed = tuple[bytes, dict[str, Any]]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Session:
    session_id: str
    user: int
    org_id: str
    current: str
    previous: list[str] = field(default_factory=list)  # the latest spent tokens' hashes
    refreshes: int = 0


def command_stream(total: int, seed: int = 7) -> tuple[list[Keyed], int]:
    """(key, IdentityCommand) pairs in publishing order, and how many of them are the setup."""
    rng = random.Random(seed)
    clock = datetime.now(UTC).replace(microsecond=0) - total * STEP - timedelta(hours=1)
    out: list[Keyed] = []

    def add(kind: str, aggregate: str, aggregate_id: str, **fields: Any) -> None:
        nonlocal clock
        clock += STEP
        fields.setdefault("actor_kind", "user")
        record = new_command(
            kind, aggregate, aggregate_id, now=clock, ip="198.51.100.7",
            user_agent="bench/identity", **fields,
        )  # fmt: skip
        out.append((f"{aggregate}:{aggregate_id}".encode(), record))

    users = [f"usr_{n:05d}" for n in range(USERS)]
    emails = [f"user{n:05d}@bench.example" for n in range(USERS)]
    orgs = [f"org_{n:04d}" for n in range(ORGS)]
    org_of = [orgs[n * ORGS // USERS] for n in range(USERS)]
    for n, (user_id, address) in enumerate(zip(users, emails, strict=True)):
        system: dict[str, Any] = {"actor_id": None, "actor_kind": "system"}
        add("ClaimEmail", "email", address, user_id=user_id, **system)
        add(
            "RegisterUser", "user", user_id, email=address, display_name=f"User {n}",
            password_sealed=f"sealed:{digest(user_id)}", **system,
        )  # fmt: skip
    for o, org_id in enumerate(orgs):
        members = [n for n in range(USERS) if org_of[n] == org_id]
        owner = users[members[0]]
        add(
            "CreateOrganization", "organization", org_id, org_id=org_id,
            name=f"Desk {o}", owner_user_id=owner, actor_id=owner,
        )  # fmt: skip
        for n in members[1:]:
            invitation, token = f"inv_{o}_{n}", f"token-{o}-{n}"
            role = rng.choice(("admin", "analyst", "analyst", "viewer", "billing"))
            add(
                "InviteMember", "organization", org_id, org_id=org_id, actor_id=owner,
                invitation_id=invitation, email=emails[n], role=role, token_hash=digest(token),
                expires_at_utc=clock + timedelta(days=7),
            )  # fmt: skip
            add(
                "AcceptInvitation", "organization", org_id, org_id=org_id, actor_id=users[n],
                invitation_id=invitation, token_hash=digest(token), user_id=users[n],
                email=emails[n],
            )  # fmt: skip
    sessions: list[_Session] = []
    for n in range(USERS):
        for s in range(SESSIONS_PER_USER):
            session = _Session(f"ses_{n:05d}_{s}", n, org_of[n], digest(f"ses_{n}_{s}:0"))
            sessions.append(session)
            add(
                "RecordSignIn", "user", users[n], actor_id=users[n], org_id=session.org_id,
                succeeded=True,
            )  # fmt: skip
            add(
                "StartSession", "session", session.session_id, actor_id=users[n],
                org_id=session.org_id, user_id=users[n], token_hash=session.current,
                expires_at_utc=clock + SESSION_LIFETIME, idle_timeout_s=IDLE_TIMEOUT_S,
                amr="pwd",
            )  # fmt: skip
    setup = len(out)
    if setup >= total:
        raise SystemExit(f"--commands must exceed the setup's {setup} commands")
    rng.shuffle(sessions)  # the order in which the live ones are picked
    live = sessions
    while len(out) < total:
        steady = len(out) - setup + 1
        if steady % REUSE_EVERY == 0:
            refreshed = [s for s in live if s.previous]
            if refreshed:  # a copy of a spent token comes back: refused, the session ends
                session = rng.choice(refreshed)
                live = [s for s in live if s is not session]
                add(
                    "RefreshSession", "session", session.session_id,
                    actor_id=users[session.user], org_id=session.org_id,
                    token_hash=session.previous[-1], new_token_hash=digest(f"{steady}:stolen"),
                )  # fmt: skip
                continue
        if rng.random() < SIGN_IN_SHARE:
            n = rng.randrange(USERS)
            succeeded = rng.random() >= SIGN_IN_FAILURES
            add(
                "RecordSignIn", "user", users[n], actor_id=users[n], org_id=org_of[n],
                succeeded=succeeded, reason=None if succeeded else "password",
            )  # fmt: skip
            continue
        session = live[rng.randrange(len(live))]
        session.refreshes += 1
        new = digest(f"{session.session_id}:{session.refreshes}")
        add(
            "RefreshSession", "session", session.session_id, actor_id=users[session.user],
            org_id=session.org_id, token_hash=session.current, new_token_hash=new,
        )  # fmt: skip
        session.previous = [*session.previous, session.current][-4:]
        session.current = new
    return out, setup


def _json_size(stored: Stored) -> int:
    return len(json.dumps(state.dump(stored), default=str, separators=(",", ":")))


def pure_pass(
    records: list[Keyed], checkpoints: list[int]
) -> tuple[dict[int, int], Counter[str], float]:
    """The pure step over the stream in process: at each checkpoint (commands decided), the
    bytes of the table the handler would keep (every aggregate's dump as JSON); the outcome
    codes of the whole stream; commands/s of `handle` alone."""
    table: dict[bytes, Stored] = {}
    sizes: dict[int, int] = {}
    codes: Counter[str] = Counter()
    now = datetime.now(UTC)
    spent = 0.0
    for offset, (key, command) in enumerate(records, start=1):
        tick = time.perf_counter()
        decision = handle(table.get(key), command, now, offset)
        spent += time.perf_counter() - tick
        if decision.stored is not None and not decision.repeated:
            table[key] = decision.stored
        outcome = decision.outcome or {}
        codes["accepted" if outcome.get("accepted") else str(outcome.get("code"))] += 1
        if offset in checkpoints:
            sizes[offset] = sum(_json_size(s) for s in table.values())
    return sizes, codes, len(records) / spent


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, records: list[Keyed]
) -> None:
    topic = catalog.identity("commands")
    encode = serde.encoder(topic.subject, topic.value_schema)
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "linger.ms": 20,
            "enable.idempotence": True,
            "log_level": 3,
        }
    )
    errors: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for key, record in records:
        while True:
            try:
                producer.produce(topic.name, encode(record), key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0 or errors:
        raise RuntimeError(f"publishing the commands failed: {errors[:3]}")


@dataclass
class Taken:
    """Records read off one topic: their broker timestamps, when the last one was seen."""

    stamps: list[int] = field(default_factory=list)
    last_seen: float = 0.0

    def rate(self) -> float:
        """Records after the first append over the span from it to the last record."""
        start = min(self.stamps, default=0) + FIRST_APPEND_MS
        later = [stamp for stamp in self.stamps if stamp > start]
        if not later or max(later) == start:
            return float("nan")
        return len(later) / ((max(later) - start) / 1000)


def take(
    settings: Settings,
    topic: str,
    expected: int,
    deadline_s: float,
    group: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> Taken:
    """Read `topic` from its start until `expected` records are in (or the deadline passes, or
    `proc` exits)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "log_level": 3}
    )
    taken = Taken()
    deadline = time.monotonic() + deadline_s
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        while len(taken.stamps) < expected and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the handler exited with {proc.returncode}")
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    taken.stamps.append(msg.timestamp()[1])
                    taken.last_seen = time.monotonic()
    finally:
        consumer.close()
    return taken


def outcome_codes(settings: Settings, serde: AvroSerde, topic: str, group: str) -> Counter[str]:
    """The handler's outcomes by code ("accepted" for the accepted ones), read to the end."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "log_level": 3}
    )
    codes: Counter[str] = Counter()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        position = dict.fromkeys(partitions, 0)
        while any(position[p] < ends[p] for p in partitions):
            for msg in consumer.consume(10_000, 1.0):
                value, partition, offset = msg.value(), msg.partition(), msg.offset()
                if msg.error() is not None or value is None or partition is None or offset is None:
                    continue
                position[partition] = offset + 1
                _, outcome = serde.decode(value)
                codes["accepted" if outcome["accepted"] else str(outcome["code"])] += 1
    finally:
        consumer.close()
    return codes


def ceiling(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, target: str, n: int, group: str
) -> None:
    """The bare loop: consume, decode, encode one outcome, produce; nothing decided."""
    source = catalog.identity("commands").name
    outcomes = catalog.identity("command_outcomes")
    encode = serde.encoder(outcomes.subject, outcomes.value_schema)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "log_level": 3,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "linger.ms": 20,
            "enable.idempotence": True,
            "log_level": 3,
        }
    )
    consumer.subscribe([source])
    seen = 0
    try:
        while seen < n:
            for msg in consumer.consume(1000, 1.0):
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                seen += 1
                _, command = serde.decode(value)
                now = datetime.now(UTC)
                outcome = contract_record(
                    OUTCOME_SCHEMA,
                    {
                        **envelope(
                            event_id=command["event_id"], occurred_at_utc=now,
                            recorded_at_utc=now, source="bench:ceiling",
                        ),
                        "command_id": command["event_id"], "command_type": command["type"],
                        "aggregate_type": command["aggregate_type"],
                        "aggregate_id": command["aggregate_id"], "accepted": True,
                        "aggregate_version": 1, "event_count": 1,
                    },
                )  # fmt: skip
                while True:
                    try:
                        producer.produce(target, encode(outcome), msg.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
        producer.flush(60)
    finally:
        consumer.close()


@dataclass
class HandlerRun:
    rate: float
    wall_s: float
    peak_mib: float
    outcomes: int


def run_handler(settings: Settings, run: str, prefix: str, expected: int, log: Path) -> HandlerRun:
    """`optibid identity` under `prefix` until the outcomes of all `expected` commands are in:
    its rate, seconds from its start to the last outcome, its peak memory."""
    app_id = f"{prefix.rstrip('.')}-identity"
    outcomes = TopicCatalog(prefix).identity("command_outcomes").name
    env = {**os.environ, "OPTIBID_TOPIC_PREFIX": prefix}
    argv = [
        sys.executable, "-m", "optibid", "identity", "--app-id", app_id,
        "--web-port", str(_port()), "--metrics-port", str(_port()),
    ]  # fmt: skip
    with log.open("ab") as out:
        began = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        taken = take(settings, outcomes, expected, 900, f"{run}-count", proc)
        if len(taken.stamps) < expected:
            raise RuntimeError(f"{len(taken.stamps)} of {expected} outcomes within the deadline")
        peak = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(settings.state_dir / "identity" / app_id, ignore_errors=True)
    return HandlerRun(taken.rate(), taken.last_seen - began, peak, len(taken.stamps))


def drain_decode(
    settings: Settings, serde: AvroSerde, topics: list[str], group: str
) -> tuple[int, float]:
    """The projector's baseline: every record of `topics` consumed and decoded, nothing
    written. (records, records/s)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "log_level": 3}
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assigned = []
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[(topic, p)] = high
                assigned.append(TopicPartition(topic, p, 0))
        position = dict.fromkeys(ends, 0)
        consumer.assign(assigned)
        records = 0
        began = time.perf_counter()
        while any(position[tp] < end for tp, end in ends.items()):
            for msg in consumer.consume(10_000, 1.0):
                value, name = msg.value(), msg.topic()
                partition, offset = msg.partition(), msg.offset()
                if msg.error() is not None or value is None or name is None:
                    continue
                if partition is None or offset is None:
                    continue
                position[(name, partition)] = offset + 1
                serde.decode(value)
                records += 1
        return records, records / (time.perf_counter() - began)
    finally:
        consumer.close()


def project(
    settings: Settings, serde: AvroSerde, catalog: TopicCatalog, schema: str
) -> tuple[int, float]:
    """The identity projector from the start of the long run's events into `schema`, until
    caught up: (records, records/s)."""
    with psycopg.connect(settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, schema)
    projector = IdentityProjector(
        settings.bootstrap_servers, serde, catalog, settings.postgres_dsn, schema
    )
    try:
        began = time.perf_counter()
        progress = projector.run(threading.Event(), until_caught_up=True, from_beginning=True)
        return progress.records, progress.records / (time.perf_counter() - began)
    finally:
        projector.close()


def cleanup(settings: Settings, run: str, schema: str | None) -> None:
    """Everything the run made: topics, consumer groups, registry subjects, scratch schema."""
    deleted = delete_run_topics(settings, run)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    groups = [g.group_id for g in admin.list_consumer_groups().result(30).valid]
    ours = [g for g in groups if g is not None and g.startswith(run)]
    if ours:
        for future in admin.delete_consumer_groups(ours).values():
            try:
                future.result(30)
            except Exception as exc:  # a group that went by itself is fine
                print(f"consumer group: {exc}", file=sys.stderr)
    with RegistryClient(settings.schema_registry_url) as registry:
        subjects = [s for s in registry.subjects() if s.startswith(run)]
        for subject in subjects:
            registry.delete_subject(subject)
    if schema is not None:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    print(
        f"cleaned up: {deleted} topics, {len(ours)} consumer groups, {len(subjects)} subjects"
        + (f", schema {schema}" if schema else ""),
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=100_000, help="the long stream")
    parser.add_argument(
        "--short", type=int, default=0, help="the short stream (default: a quarter of the long)"
    )
    parser.add_argument("--no-projector", action="store_true", help="skip the projector part")
    args = parser.parse_args()
    long_n = args.commands
    short_n = args.short or long_n // 4

    settings = local_stack()
    run = run_id()
    prefixes = {"long": f"{run}l.", "short": f"{run}s."}
    log = settings.state_dir / "logs" / f"bench-identity-{run}.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    began = time.perf_counter()
    records, setup = command_stream(long_n)
    kinds = Counter(str(r["type"]) for _, r in records)
    print(
        f"{long_n} commands built in {time.perf_counter() - began:.1f} s ({setup} of setup): "
        + ", ".join(f"{k} {v}" for k, v in kinds.most_common()),
        file=sys.stderr,
    )
    sizes, pure_codes, pure_rate = pure_pass(records, [short_n, long_n])
    print(
        f"pure handle: {pure_rate:.0f} commands/s; table {sizes[short_n] / 2**20:.1f} MiB after"
        f" {short_n}, {sizes[long_n] / 2**20:.1f} MiB after {long_n}; outcomes"
        f" {dict(pure_codes.most_common())}",
        file=sys.stderr,
    )

    schema: str | None = None
    failed = True
    try:
        catalogs = {
            name: prepare_contracts(Settings(topic_prefix=prefix))
            for name, prefix in prefixes.items()
        }
        long_catalog = catalogs["long"]
        outcomes_topic = long_catalog.identity("command_outcomes").name
        ceiling_topic = f"{outcomes_topic}.ceiling"
        stamp_on_append(settings, [c.identity("command_outcomes").name for c in catalogs.values()])
        append_time_topics(settings, {ceiling_topic: long_catalog.identity("commands").partitions})
        with RegistryClient(settings.schema_registry_url) as registry:
            serde = AvroSerde(registry, ContractSet())
            publish(settings, serde, long_catalog, records)
            publish(settings, serde, catalogs["short"], records[:short_n])
            print(f"published {long_n} and {short_n} commands", file=sys.stderr)

            ceiling(settings, serde, long_catalog, ceiling_topic, long_n, f"{run}-ceiling")
            ceiling_rate = take(settings, ceiling_topic, long_n, 300, f"{run}-count").rate()
            print(f"ceiling (confluent-kafka loop): {ceiling_rate:.0f} commands/s", file=sys.stderr)

            long = run_handler(settings, run, prefixes["long"], long_n, log)
            print(
                f"optibid identity, {long_n} commands: {long.rate:.0f} commands/s,"
                f" {long.wall_s:.1f} s from start to the last outcome,"
                f" peak {long.peak_mib:.1f} MiB",
                file=sys.stderr,
            )
            codes = outcome_codes(settings, serde, outcomes_topic, f"{run}-codes")
            print(f"handler outcomes: {dict(codes.most_common())}", file=sys.stderr)

            short = run_handler(settings, run, prefixes["short"], short_n, log)
            print(
                f"optibid identity, {short_n} commands: {short.rate:.0f} commands/s,"
                f" peak {short.peak_mib:.1f} MiB",
                file=sys.stderr,
            )

            projector: dict[str, Any] = {}
            if not args.no_projector:
                schema = run
                topics = [long_catalog.identity("events").name, long_catalog.audit().name]
                base_n, base_rate = drain_decode(settings, serde, topics, f"{run}-drain")
                proj_n, proj_rate = project(settings, serde, long_catalog, schema)
                print(
                    f"identity projector: {proj_n} records, {proj_rate:.0f} records/s;"
                    f" consume+decode only: {base_n} records, {base_rate:.0f} records/s",
                    file=sys.stderr,
                )
                projector = {
                    "projector_records": proj_n,
                    "projector_records_per_s": round(proj_rate),
                    "projector_baseline_records_per_s": round(base_rate),
                    "projector_ratio": round(proj_rate / base_rate, 3),
                }
        failed = False
    finally:
        cleanup(settings, run, schema)
        if not failed:
            log.unlink(missing_ok=True)
        else:
            print(f"the handler's log: {log}", file=sys.stderr)

    emit(
        {
            "benchmark": "identity",
            "commands": long_n,
            "short_commands": short_n,
            "aggregates": len({key for key, _ in records}),
            "ceiling_commands_per_s": round(ceiling_rate),
            "handler_commands_per_s": round(long.rate),
            "handler_wall_s": round(long.wall_s, 1),
            "ratio": round(long.rate / ceiling_rate, 3),
            "handle_only_commands_per_s": round(pure_rate),
            "accepted_share": round(codes["accepted"] / max(1, sum(codes.values())), 3),
            "outcomes_match_pure": codes == pure_codes,
            "peak_mib_short": round(short.peak_mib, 1),
            "peak_mib_long": round(long.peak_mib, 1),
            "memory_growth": round(long.peak_mib / short.peak_mib, 3),
            "table_kib_short": round(sizes[short_n] / 1024),
            "table_kib_long": round(sizes[long_n] / 1024),
            **projector,
        }
    )


if __name__ == "__main__":
    main()
