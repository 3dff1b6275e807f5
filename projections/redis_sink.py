"""Latest values in Redis, with a pub/sub message on each change; Redis is a cache.

The projector offers the rows of each committed batch; the sink keeps, per field, the newest
value not yet in Redis (so a burst of updates to one series costs one write) and a thread of
its own writes them. When Redis is down nothing blocks the projection: values keep coalescing
in memory (at most one per field) and are written when Redis answers again, which the sink
logs and counts. On start and after every outage (Redis may come back without its data, and
a projector that died between its commit and its Redis write left values unwritten) it first
rebuilds the cache from PostgreSQL, the latest row per field.

Writes go through a script that keeps a value only when its order (time, then revision) is
greater than the stored one, and publishes only when it keeps it, so a replay or a rebuild
writes the same cache and pushes nothing stale.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import psycopg
import redis
import structlog
from prometheus_client import Counter, Gauge
from psycopg import sql
from psycopg.rows import dict_row

from projections.folds import Row
from projections.models import Latest

log = structlog.get_logger(__name__)

REDIS_UP = Gauge("optibid_projector_redis_up", "Whether Redis accepts writes", ["read_model"])
REDIS_PENDING = Gauge(
    "optibid_projector_redis_pending", "Latest values waiting for Redis", ["read_model"]
)
REDIS_WRITES = Counter(
    "optibid_projector_redis_writes_total", "Latest values written to Redis", ["read_model"]
)
REDIS_OUTAGES = Counter(
    "optibid_projector_redis_outages_total", "Times Redis stopped answering", ["read_model"]
)

# KEYS: values hash, orders hash. ARGV: field, order, value, channel.
_KEEP_NEWER = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and old >= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
"""

Update = tuple[str, str, str, dict[str, Any]]  # hash, field, order, value


def order_token(order: tuple[int, ...]) -> str:
    """A string that sorts as the tuple of non-negative integers does."""
    return "|".join(f"{max(part, 0):020d}" for part in order)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def namespace(schema: str) -> str:
    return f"optibid:{schema}"


def channel(schema: str, read_model: str) -> str:
    """The pub/sub channel of a read model's updates."""
    return f"{namespace(schema)}:updates:{read_model}"


def values_key(schema: str, hash_name: str) -> str:
    """The Redis hash of latest values `hash_name` (e.g. 'lmp', 'PJM|RT_5MIN|51288')."""
    return f"{namespace(schema)}:latest:{hash_name}"


def updates_of(latest: Latest, rows: Iterable[Row]) -> dict[tuple[str, str], tuple[str, Row]]:
    """The newest row per (hash, field) among `rows`, with its order token."""
    newest: dict[tuple[str, str], tuple[str, Row]] = {}
    for row in rows:
        where = (latest.hash_of(row), latest.field_of(row))
        token = order_token(latest.order_of(row))
        held = newest.get(where)
        if held is None or token > held[0]:
            newest[where] = (token, row)
    return newest


class RedisSink:
    """Keeps one read model's latest values in Redis from a thread of its own."""

    def __init__(
        self,
        redis_url: str,
        schema: str,
        read_model: str,
        latest: Latest,
        connect_pg: Callable[[], psycopg.Connection[Any]],
        retry_max_s: float = 5.0,
    ) -> None:
        self.schema = schema
        self.read_model = read_model
        self.latest = latest
        self._connect_pg = connect_pg
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=5
        )
        self._script = self._client.register_script(_KEEP_NEWER)
        self._columns = latest.table.column_names
        self._channel = channel(schema, read_model)
        self._pending: dict[tuple[str, str], tuple[str, Row]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._needs_rebuild = True  # on start: Redis may have missed the last batches
        self._retry_max_s = retry_max_s
        self.up = False
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=f"redis-{read_model}", daemon=True)

    def start(self) -> None:
        REDIS_UP.labels(self.read_model).set(0)
        self._thread.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Write what is pending (when Redis answers within the timeout), then stop."""
        deadline = time.monotonic() + flush_timeout_s
        while self.pending() and self.up and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(flush_timeout_s)
        self._client.close()

    def offer(self, rows: Iterable[Row]) -> None:
        """Rows of a committed batch (of the sink's table)."""
        updates = updates_of(self.latest, rows)
        if not updates:
            return
        with self._lock:
            pending = self._pending
            for where, (token, row) in updates.items():
                held = pending.get(where)
                if held is None or token > held[0]:
                    pending[where] = (token, row)
            REDIS_PENDING.labels(self.read_model).set(len(pending))
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def idle(self) -> bool:
        """Nothing pending and nothing to rebuild: Redis holds what PostgreSQL holds."""
        return self.up and not self._needs_rebuild and self.pending() == 0

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                if self._needs_rebuild:
                    self._rebuild_from_postgres()
                self._flush()
                if not self.up:
                    log.info("redis available", read_model=self.read_model, caught_up=True)
                self.up = True
                REDIS_UP.labels(self.read_model).set(1)
                delay = 0.1
                self._wake.wait(1.0)
                self._wake.clear()
            except (redis.RedisError, OSError) as exc:
                if self.up:
                    REDIS_OUTAGES.labels(self.read_model).inc()
                    # it may come back empty (no persistence): rebuild, then add what waits
                    self._needs_rebuild = True
                    log.warning(
                        "redis unavailable; latest values wait in memory",
                        read_model=self.read_model,
                        error=str(exc),
                        pending=self.pending(),
                    )
                self.up = False
                REDIS_UP.labels(self.read_model).set(0)
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max_s)
            except psycopg.Error as exc:
                log.warning(
                    "cannot read latest values from postgres to rebuild the cache",
                    read_model=self.read_model,
                    error=str(exc),
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max_s)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            self._write(batch.items())
        except BaseException:
            with self._lock:  # keep them, unless newer ones arrived meanwhile
                for where, (token, row) in batch.items():
                    held = self._pending.get(where)
                    if held is None or token > held[0]:
                        self._pending[where] = (token, row)
            raise
        finally:
            REDIS_PENDING.labels(self.read_model).set(self.pending())

    def _write(self, items: Iterable[tuple[tuple[str, str], tuple[str, Row]]]) -> None:
        columns = self._columns
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for (hash_name, field), (token, row) in items:
            key = values_key(self.schema, hash_name)
            value = json.dumps(dict(zip(columns, row, strict=True)), default=_json_default)
            self._script(
                keys=[key, f"{key}:order"], args=[field, token, value, self._channel], client=pipe
            )
            count += 1
            if count % 2000 == 0:
                pipe.execute()
        pipe.execute()
        self.written += count
        REDIS_WRITES.labels(self.read_model).inc(count)

    def _rebuild_from_postgres(self) -> None:
        """Write the latest row per field as PostgreSQL holds it (guarded: nothing older
        replaces what Redis has)."""
        self._client.ping()
        query = sql.SQL(self.latest.rebuild_sql).format(
            table=sql.Identifier(self.schema, self.latest.table.name)
        )
        rows: list[Row] = []
        with self._connect_pg() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            for record in cur.execute(query):
                rows.append(tuple(record[c] for c in self._columns))
        self._write(updates_of(self.latest, rows).items())
        self._needs_rebuild = False
        log.info("redis cache rebuilt from postgres", read_model=self.read_model, rows=len(rows))
