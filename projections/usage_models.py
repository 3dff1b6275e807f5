"""The usage read model: every organisation's metering windows, folded from `usage.windows` into
the PostgreSQL table `usage_windows` (migration 0007_usage). `projections.usage_reads` queries it.

Two parts:
- the fold: `window_row(record)` maps one decoded UsageWindowClosed to its row (no database),
  `upsert(target, schema, rows)` writes rows by (org_id, window_start_utc) with the window's
  values, not increments: a window handed over again, or sent again by a restarted meter (same
  id, same values), leaves the row as it was, so no version guard is needed.
- the runner, `UsageProjector`: reads `usage.windows` under the consumer group
  `<prefix>optibid-usage-projector`, in batches of up to 500 records, each written in one
  PostgreSQL transaction; the batch's offsets are committed to the group only once that
  transaction has committed (at least once, which the upsert makes harmless).

Records that do not decode (or carry another schema) are logged with their partition and offset,
counted in `optibid_usage_projector_skipped_total` and passed. PostgreSQL away: the batch in hand
is retried with exponential back-off, nothing more is read and no offset is committed meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge, Histogram
from psycopg import sql

from projections.errors import ProjectionError
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.errors import DeserializationError, RegistryUnavailableError
from schemas.offsets import watermarks
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

GROUP = "optibid-usage-projector"
BATCH_MAX_RECORDS = 500
WINDOW_SCHEMA = "energy.optibid.usage.UsageWindowClosed"
TABLE = "usage_windows"
COLUMNS = (
    "org_id",
    "window_start_utc",
    "window_end_utc",
    "requests",
    "rows",
    "bytes",
    "dry_runs",
    "event_id",
    "recorded_at_utc",
)
KEY = ("org_id", "window_start_utc")

WRITTEN = Counter("optibid_usage_projector_windows_total", "Usage windows written (upserted)")
SKIPPED = Counter(
    "optibid_usage_projector_skipped_total",
    "Records on usage.windows that do not decode (or carry another schema), logged and passed",
)
PG_UP = Gauge("optibid_usage_projector_postgres_up", "Whether PostgreSQL takes writes")
PG_RETRIES = Counter(
    "optibid_usage_projector_postgres_retries_total", "Batch writes retried after an outage"
)
LAG = Gauge("optibid_usage_projector_lag_records", "Records behind usage.windows' ends")
BATCH_SECONDS = Histogram(
    "optibid_usage_projector_batch_seconds", "Seconds to write and commit one batch"
)


# --- the fold ---------------------------------------------------------------------------------

Row = dict[str, Any]


def window_row(record: Mapping[str, Any]) -> Row:
    """The `usage_windows` row of one decoded UsageWindowClosed."""
    return {column: record[column] for column in COLUMNS}


def _upsert_statement(schema: str) -> sql.Composed:
    names = [sql.Identifier(c) for c in COLUMNS]
    updated = [c for c in COLUMNS if c not in KEY]
    return sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values})"
        " ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ).format(
        table=sql.Identifier(schema, TABLE),
        columns=sql.SQL(", ").join(names),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in COLUMNS),
        key=sql.SQL(", ").join(sql.Identifier(c) for c in KEY),
        updates=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updated
        ),
    )


def upsert(cursor: psycopg.Cursor[Any], schema: str, rows: Sequence[Row]) -> int:
    """Write `rows` to `usage_windows` of `schema`, each replacing the row of its (org_id,
    window_start_utc), in order; returns how many were written. The caller holds the
    transaction."""
    if rows:
        cursor.executemany(_upsert_statement(schema), rows)
    return len(rows)


def truncate(conn: psycopg.Connection[Any], schema: str) -> None:
    """Empty `usage_windows` of `schema`."""
    with conn.transaction():
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema, TABLE)))


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Progress:
    """Where a run stands: records read (written, skipped) and, for a run to the end, how many
    there were to read when it began."""

    records: int = 0
    written: int = 0
    skipped: int = 0
    total: int = 0
    lag: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0


class StoppedError(Exception):
    """Asked to stop while waiting for a server."""


_T = TypeVar("_T")


@dataclass
class _Batch:
    rows: list[Row] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)  # next offset per partition
    records: int = 0
    skipped: int = 0


class UsageProjector:
    """Projects usage.windows into `usage_windows` of `schema`."""

    def __init__(
        self,
        bootstrap: str,
        serde: AvroSerde,
        catalog: TopicCatalog,
        postgres_dsn: str,
        schema: str,
        *,
        batch_max_records: int = BATCH_MAX_RECORDS,
        poll_timeout_s: float = 0.5,
        retry_max_s: float = 5.0,
    ) -> None:
        if batch_max_records < 1:
            raise ValueError(f"batch_max_records must be at least 1, not {batch_max_records}")
        self.bootstrap = bootstrap
        self.serde = serde
        self.postgres_dsn = postgres_dsn
        self.schema = schema
        self.batch_max_records = batch_max_records
        self.poll_timeout_s = poll_timeout_s
        self.retry_max_s = retry_max_s
        self.group_id = f"{catalog.prefix}{GROUP}"
        self.topic = catalog.usage("windows").name
        self._conn: psycopg.Connection[Any] | None = None
        self._log = log.bind(schema=schema, group=self.group_id)
        self.progress = Progress()

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _connection(self, stop: threading.Event) -> psycopg.Connection[Any]:
        """The connection, (re)connecting with back-off while PostgreSQL is away."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        delay = 0.1
        while True:
            try:
                self._conn = psycopg.connect(self.postgres_dsn, connect_timeout=5)
                return self._conn
            except psycopg.OperationalError as exc:
                PG_UP.set(0)
                self._log.warning(
                    "usage_projector.postgres_unavailable", error=str(exc).strip(), retry_s=delay
                )
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop_connection()

    def _check_table(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("SELECT 1 FROM {} LIMIT 0").format(sql.Identifier(self.schema, TABLE))
                )
        except psycopg.errors.UndefinedTable as exc:
            raise ProjectionError(
                f"schema {self.schema!r} has no {TABLE} table: run `optibid db migrate`"
            ) from exc

    def _with_postgres(
        self, work: Callable[[psycopg.Connection[Any]], _T], stop: threading.Event, what: str
    ) -> _T:
        """`work` on the connection, waiting out PostgreSQL outages with exponential back-off
        (`work` runs again whole: it is one transaction)."""
        delay = 0.1
        outage_began: float | None = None
        while True:
            conn = self._connection(stop)
            try:
                done = work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                PG_UP.set(0)
                PG_RETRIES.inc()
                if outage_began is None:
                    outage_began = time.monotonic()
                self._log.warning(
                    "usage_projector.postgres_unavailable",
                    waiting=what,
                    error=str(exc).strip(),
                    retry_s=delay,
                )
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)
                continue
            PG_UP.set(1)
            if outage_began is not None:
                self._log.info(
                    "usage_projector.postgres_available",
                    done=what,
                    paused_s=round(time.monotonic() - outage_began, 1),
                )
            return done

    # --- runs ---------------------------------------------------------------------------------

    def rebuild(
        self, stop: threading.Event, on_progress: Callable[[Progress], None] | None = None
    ) -> Progress:
        """Empty `usage_windows` and fold usage.windows again from its first offset up to the
        end it has now; the group's offsets follow, so a `run` afterwards goes on from there."""
        consumer = self._consumer()
        try:
            # the group back to the start before the table is emptied: a crash in between
            # replays onto a full table (harmless), never from the middle onto an empty one
            self._commit(
                consumer,
                [
                    TopicPartition(self.topic, p, low)
                    for p, (low, _) in self._ends(consumer).items()
                ],
            )
        finally:
            consumer.close()

        def empty(conn: psycopg.Connection[Any]) -> None:
            self._check_table(conn)
            truncate(conn, self.schema)

        try:
            self._with_postgres(empty, stop, f"emptying {TABLE}")
        except StoppedError:
            return Progress()
        self._log.info("usage_projector.truncated", table=TABLE)
        return self.run(stop, until_caught_up=True, from_beginning=True, on_progress=on_progress)

    def run(
        self,
        stop: threading.Event,
        until_caught_up: bool = False,
        *,
        from_beginning: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Project until `stop` is set or, with `until_caught_up`, until every partition is
        read up to the end it had when the run began. Starts at the group's committed offsets
        (the first offset where none), or at the first offset with `from_beginning`. Raises
        ProjectionError for a record the database refuses."""
        self.progress = Progress()
        try:
            self._with_postgres(self._check_table, stop, TABLE)
        except StoppedError:
            return self.progress
        consumer = self._consumer()
        try:
            positions, ends = self._start(consumer, from_beginning)
            self.progress.total = sum(max(end - positions[p], 0) for p, end in ends.items())
            self._log.info(
                "usage_projector.started",
                topic=self.topic,
                until_caught_up=until_caught_up,
                from_beginning=from_beginning,
                behind=self.progress.total,
            )
            self._loop(consumer, positions, ends, stop, until_caught_up, on_progress)
        except StoppedError:
            pass
        finally:
            consumer.close()
        self._log.info(
            "usage_projector.stopped",
            records=self.progress.records,
            written=self.progress.written,
            skipped=self.progress.skipped,
        )
        return self.progress

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "log_level": 3,
            }
        )

    def _ends(self, consumer: Consumer) -> dict[int, tuple[int, int]]:
        """(low, high) offsets of every partition of the topic."""
        metadata = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ProjectionError(
                f"topic {self.topic} does not exist; run `optibid topics create` first"
            )
        found = {}
        for partition in sorted(metadata.partitions):
            try:
                found[partition] = watermarks(consumer, TopicPartition(self.topic, partition))
            except KafkaException as exc:
                raise ProjectionError(
                    f"no offsets for {self.topic}[{partition}] from the broker: {exc}"
                ) from exc
        return found

    def _start(
        self, consumer: Consumer, from_beginning: bool
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Assign every partition at its start; (positions, ends)."""
        marks = self._ends(consumer)
        committed: dict[int, int] = {}
        if not from_beginning:
            asked = [TopicPartition(self.topic, p) for p in marks]
            for tp in consumer.committed(asked, timeout=10):
                if tp.error is None and tp.offset >= 0:
                    committed[tp.partition] = tp.offset
        positions = {p: max(committed.get(p, low), low) for p, (low, _) in marks.items()}
        ends = {p: high for p, (_, high) in marks.items()}
        consumer.assign([TopicPartition(self.topic, p, o) for p, o in positions.items()])
        return positions, ends

    def _loop(
        self,
        consumer: Consumer,
        positions: dict[int, int],
        ends: dict[int, int],
        stop: threading.Event,
        until_caught_up: bool,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        def caught_up() -> bool:
            return all(positions[p] >= end for p, end in ends.items())

        def report() -> None:
            self.progress.lag = sum(max(end - positions[p], 0) for p, end in ends.items())
            LAG.set(self.progress.lag)
            if on_progress is not None:
                on_progress(self.progress)

        report()
        while not stop.is_set() and not (until_caught_up and caught_up()):
            first = consumer.poll(self.poll_timeout_s)
            if first is None:
                if until_caught_up:
                    self._skip_markers(consumer, positions, ends)
                report()
                continue
            messages = [first, *consumer.consume(self.batch_max_records - 1, timeout=0)]
            batch = self._read(messages, stop)
            if batch.offsets:
                began = time.monotonic()
                written = self._write(batch, stop)
                self._commit(
                    consumer, [TopicPartition(self.topic, p, o) for p, o in batch.offsets.items()]
                )
                BATCH_SECONDS.observe(time.monotonic() - began)
                positions.update(batch.offsets)
                WRITTEN.inc(written)
                self.progress.records += batch.records
                self.progress.written += written
                self.progress.skipped += batch.skipped
            report()

    def _skip_markers(
        self, consumer: Consumer, positions: dict[int, int], ends: dict[int, int]
    ) -> None:
        """Move positions past offsets that hold no record (transaction markers), as the
        consumer's own positions say, when nothing more arrives."""
        behind = [TopicPartition(self.topic, p) for p, end in ends.items() if positions[p] < end]
        if not behind:
            return
        for tp in consumer.position(behind):
            if tp.offset >= 0 and tp.offset > positions[tp.partition]:
                positions[tp.partition] = tp.offset

    def _read(self, messages: list[Message], stop: threading.Event) -> _Batch:
        batch = _Batch()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    raise ProjectionError(f"kafka consumer failed: {error}")
                self._log.warning("usage_projector.kafka_error", error=str(error))
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:
                continue
            batch.offsets[partition] = offset + 1
            batch.records += 1
            value = message.value()
            if value is None:
                continue  # a tombstone: nothing to fold
            try:
                full_name, record = self._decode(value, stop)
                if full_name != WINDOW_SCHEMA:
                    raise DeserializationError(
                        f"{self.topic} carries {WINDOW_SCHEMA}, not {full_name}"
                    )
            except DeserializationError as exc:
                batch.skipped += 1
                SKIPPED.inc()
                self._log.error(
                    "usage_projector.undecodable",
                    topic=self.topic,
                    partition=partition,
                    offset=offset,
                    error=str(exc),
                )
                continue
            batch.rows.append(window_row(record))
        return batch

    def _decode(self, value: bytes, stop: threading.Event) -> tuple[str, dict[str, Any]]:
        delay = 0.1
        while True:
            try:
                return self.serde.decode(value)
            except RegistryUnavailableError as exc:  # an outage, not a bad record
                self._log.warning("usage_projector.registry_unavailable", error=str(exc))
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)

    def _write(self, batch: _Batch, stop: threading.Event) -> int:
        """Write the batch in one transaction, waiting out PostgreSQL outages (no offset is
        committed meanwhile, nothing more is read)."""

        def transaction(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction(), conn.cursor() as cursor:
                try:
                    return upsert(cursor, self.schema, batch.rows)
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except psycopg.DatabaseError as exc:
                    raise ProjectionError(
                        f"usage read model: the database refused a batch of {self.topic}:"
                        f" {str(exc).strip()}"
                    ) from exc

        return self._with_postgres(
            transaction, stop, f"a batch of {batch.records} records kept for retry"
        )

    def _commit(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Commit offsets to the group; a failure is logged (the records come again, and are
        written again: harmless)."""
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._log.warning(
                "usage_projector.commit_failed",
                detail="these records may be read again (harmless)",
                error=str(exc),
            )
