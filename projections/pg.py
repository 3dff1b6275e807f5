"""The transactional adapter: one batch of folded rows and its offsets, in one transaction.

Per batch and table: COPY the rows into a temporary staging table, upsert them into the table
by natural key with the revision guard (an older revision never overwrites a newer one), keep
every other (key, revision) in the superseded table, and store the consumed offsets, then
commit. The table holds each key's current revision and the superseded table every other one
(the row a correction replaces moves there in the same transaction; an older revision arriving
late goes straight there), so the two together, the `<name>_revisions` view, hold every
revision once.
A batch applied twice (after a lost COMMIT acknowledgement) changes nothing the second time.
Monthly partitions are created ahead, inside the same transaction, for the time range the
batch touches.

Most batches only bring keys the table has never seen (new intervals; every batch of a
rebuild without corrections). Those are COPYed straight into the table, and only there: COPY
inserts rows many at a time, far cheaper than an INSERT ... ON CONFLICT row by row, with no
stored key there is nothing for the guard to decide, and a new key's only revision is its
current one, superseding nothing. A COPY that meets a
stored key, or two rows of one key within the batch, fails on the primary key and is undone
to its savepoint, so the guard is never bypassed; the batch then takes the staging table and
the upsert. After such a miss the next
batches are staged first and probed for stored keys (one indexed look-up per key), so a
stream of corrections costs one wasted COPY per clean-to-corrected turn, not one per batch;
a clean probe sends the very bytes already staged into the tables. Only one process writes a
read model (the advisory lock), so nothing stores a key between a probe and its COPY.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from projections.errors import ProjectorBusyError
from projections.folds import Row
from projections.tables import TableSpec

TopicPartitionKey = tuple[str, int]


@dataclass
class Batch:
    """Folded rows per table (each list in offset order) and the next offset per partition."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)
    events: int = 0

    def add(self, table: str, row: Row) -> None:
        rows = self.rows.get(table)
        if rows is None:
            rows = self.rows[table] = []
        rows.append(row)


class _KeptWriter(LibpqWriter):
    """Sends COPY data to the server and keeps it, to COPY the same bytes elsewhere."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        super().__init__(cursor)
        self.chunks: list[bytes] = []

    def write(self, data: Any) -> None:
        self.chunks.append(bytes(data))
        super().write(data)


@dataclass(frozen=True)
class _Statements:
    stage: sql.Composed  # COPY into the staging table
    copy: sql.Composed  # COPY into the table
    stored: sql.Composed  # whether any staged key is in the table
    upsert: sql.Composed
    # revisions tables: before the upsert, the stored rows it replaces go to the superseded
    # table; after it, so do the staged rows that are not their key's current revision
    supersede: sql.Composed | None
    keep_superseded: sql.Composed | None


@dataclass(frozen=True)
class Staged:
    """What goes into a staging table: unique rows, and whether each is its key's winner."""

    rows: list[Row]
    latest: list[bool]


def stage(spec: TableSpec, rows: Sequence[Row]) -> Staged:
    """Reduce a batch's rows of one table to what the upsert can take in one statement.

    Revision tables keep one row per (key, revision) (the first seen; a redelivery is the same
    event) and flag, per key, the highest revision for the current table. Other tables keep
    one row per key, chosen by the table's guard exactly as the upsert would choose it over
    the batch's rows in offset order (ties keep the first).
    """
    key_of = itemgetter(*(spec.index(c) for c in spec.key))
    if len(set(map(key_of, rows))) == len(rows):  # the common case, found without a loop
        return Staged(list(rows), [True] * len(rows))
    if spec.revisions:
        revision_at = spec.index("revision")
        tiebreak_at = spec.index(spec.tiebreak) if spec.tiebreak else None

        def order(row: Row) -> tuple[Any, ...]:  # revision, then the tiebreak (None lowest)
            if tiebreak_at is None:
                return (row[revision_at],)
            tie = row[tiebreak_at]
            return (
                (row[revision_at], tie is not None, tie)
                if tie is not None
                else (row[revision_at], False)
            )

        unique: dict[tuple[Any, Any], int] = {}
        best: dict[Any, int] = {}
        kept: list[Row] = []
        for row in rows:
            key = key_of(row)
            version = order(row)
            if (key, version) in unique:
                continue
            unique[key, version] = len(kept)
            winner = best.get(key)
            if winner is None or version > order(kept[winner]):
                best[key] = len(kept)
            kept.append(row)
        latest = [False] * len(kept)
        for index in best.values():
            latest[index] = True
        return Staged(kept, latest)
    chosen: dict[Any, Row] = {}
    guard_at = spec.index(spec.guard) if spec.guard else None
    lower = spec.guard_prefers == "lower"
    for row in rows:
        key = key_of(row)
        held = chosen.get(key)
        if held is None:
            chosen[key] = row
        elif guard_at is not None:
            new, old = row[guard_at], held[guard_at]
            if (new < old) if lower else (new > old):
                chosen[key] = row
    kept = list(chosen.values())
    return Staged(kept, [True] * len(kept))


def month_starts(earliest: datetime, latest: datetime) -> list[datetime]:
    """UTC month starts of every month from `earliest`'s to `latest`'s."""
    month = datetime(earliest.year, earliest.month, 1, tzinfo=UTC)
    out: list[datetime] = []
    while month <= latest:
        out.append(month)
        month = _next_month(month)
    return out


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


class PgWriter:
    """Writes one read model's batches into `schema`; holds the read model's advisory lock on
    its connection, so one process at a time projects or rebuilds it.

    `since` (rebuilds from a time) drops rows before it on time-series tables.
    """

    def __init__(
        self,
        schema: str,
        read_model: str,
        tables: Sequence[TableSpec],
        since: datetime | None = None,
    ) -> None:
        self.schema = schema
        self.read_model = read_model
        self.tables = list(tables)
        self.since = since
        self._partitioned: set[str] = set()
        self._partitions: set[tuple[str, datetime]] = set()
        self._statements: dict[str, _Statements] = {}
        # per table: whether to COPY a batch straight in, the last one having had no stored key
        self._direct: dict[str, bool] = {}
        for spec in self.tables:
            self._statements[spec.name] = self._sql(spec)

    # --- connection set-up -------------------------------------------------------------

    def attach(self, conn: psycopg.Connection[Any]) -> None:
        """Prepare a new connection: UTC session, the read model's lock, staging tables."""
        conn.execute("SET TIME ZONE 'UTC'")
        locked = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (self.lock_name,)
        ).fetchone()
        if not locked or not locked[0]:
            conn.rollback()
            raise ProjectorBusyError(
                f"another process projects or rebuilds read model {self.read_model!r} in schema"
                f" {self.schema!r}; stop it first"
            )
        relkinds = dict(
            conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
                (self.schema, [n for s in self.tables for n in self._table_names(s)]),
            ).fetchall()
        )
        missing = [n for s in self.tables for n in self._table_names(s) if n not in relkinds]
        if missing:
            conn.rollback()
            raise ProjectorBusyError(
                f"schema {self.schema!r} has no table {', '.join(missing)};"
                " run `optibid db migrate` first"
            )
        self._partitioned = {name for name, kind in relkinds.items() if kind == "p"}
        # staging stays in the backend's memory for batches of tens of thousands of rows; the
        # setting only takes before the session's first temporary table
        conn.execute("SET temp_buffers = '64MB'")
        for spec in self.tables:
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
                ).format(stage=self._stage(spec), table=self._table(spec.name))
            )
        conn.commit()

    @property
    def lock_name(self) -> str:
        return f"optibid-projector:{self.schema}:{self.read_model}"

    # --- reads ----------------------------------------------------------------------------

    def stored_offsets(self, conn: psycopg.Connection[Any]) -> dict[TopicPartitionKey, int]:
        query = sql.SQL(
            "SELECT topic, partition, next_offset FROM {} WHERE read_model = %s"
        ).format(self._table("projection_offsets"))
        rows = conn.execute(query, (self.read_model,)).fetchall()
        conn.commit()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    # --- writes ---------------------------------------------------------------------------

    def write(self, conn: psycopg.Connection[Any], batch: Batch) -> dict[str, int]:
        """Apply `batch` in one transaction; returns rows upserted (inserted or replaced) per
        table. Raises psycopg.OperationalError when PostgreSQL goes away (nothing applied)."""
        written: dict[str, int] = {}
        created: list[tuple[str, datetime]] = []
        with conn.transaction(), conn.cursor() as cur:
            for spec in self.tables:
                rows = batch.rows.get(spec.name)
                if rows and self.since is not None and spec.time_column:
                    at = spec.index(spec.time_column)
                    since = self.since
                    rows = [r for r in rows if r[at] >= since]
                if not rows:
                    continue
                created += self._ensure_partitions(cur, spec, rows)
                written[spec.name] = self._write_table(cur, spec, rows)
            if batch.offsets:
                self._store_offsets(cur, batch.offsets)
        self._partitions.update(created)  # only once committed
        return written

    def _write_table(self, cur: psycopg.Cursor[Any], spec: TableSpec, rows: list[Row]) -> int:
        statements = self._statements[spec.name]
        if self._direct.get(spec.name, True):
            # the batch as it came: two rows of one key in it (or a key already stored) fail
            # the primary key just as surely, so no Python pass looks for them beforehand
            try:
                with cur.connection.transaction():
                    self._copy_rows(cur, statements.copy, spec, rows, keep=False)
                return len(rows)
            except psycopg.errors.UniqueViolation:
                self._direct[spec.name] = False  # undone to the savepoint; stage and probe
        staged = stage(spec, rows)
        # one row per key (a batch with two revisions of a key takes the upsert)
        single = all(staged.latest)
        kept = self._copy_rows(cur, statements.stage, spec, staged.rows)
        if single and not self._stored(cur, statements):
            try:
                with cur.connection.transaction():
                    self._copy(cur, statements.copy, kept)
                self._direct[spec.name] = True
                return len(staged.rows)
            except psycopg.errors.UniqueViolation:
                pass  # undone to the savepoint; the upsert decides
        if statements.supersede is not None:
            cur.execute(statements.supersede)
        cur.execute(statements.upsert)
        count = cur.rowcount
        if statements.keep_superseded is not None:
            cur.execute(statements.keep_superseded)
        return count

    @staticmethod
    def _copy_rows(
        cur: psycopg.Cursor[Any],
        statement: sql.Composed,
        spec: TableSpec,
        rows: list[Row],
        *,
        keep: bool = True,
    ) -> list[bytes]:
        """COPY `rows` in binary; the bytes sent (with `keep`), to COPY them elsewhere
        unchanged."""
        kept = _KeptWriter(cur) if keep else LibpqWriter(cur)
        with cur.copy(statement, writer=kept) as copier:
            copier.set_types(list(spec.types))
            write_row = copier.write_row
            for row in rows:
                write_row(row)
        return kept.chunks if isinstance(kept, _KeptWriter) else []

    @staticmethod
    def _stored(cur: psycopg.Cursor[Any], statements: _Statements) -> bool:
        found = cur.execute(statements.stored).fetchone()
        return bool(found and found[0])

    @staticmethod
    def _copy(cur: psycopg.Cursor[Any], statement: sql.Composed, chunks: list[bytes]) -> None:
        with cur.copy(statement) as copier:
            for chunk in chunks:
                copier.write(chunk)

    def _store_offsets(
        self, cur: psycopg.Cursor[Any], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        topics, partitions, nexts = [], [], []
        for (topic, partition), next_offset in sorted(offsets.items()):
            topics.append(topic)
            partitions.append(partition)
            nexts.append(next_offset)
        cur.execute(
            sql.SQL(
                "INSERT INTO {} AS o (read_model, topic, partition, next_offset)"
                " SELECT %s, t, p, n FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS u(t, p, n)"
                " ON CONFLICT (read_model, topic, partition) DO UPDATE"
                " SET next_offset = excluded.next_offset, updated_at_utc = now()"
            ).format(self._table("projection_offsets")),
            (self.read_model, topics, partitions, nexts),
        )

    def _ensure_partitions(
        self, cur: psycopg.Cursor[Any], spec: TableSpec, rows: list[Row]
    ) -> list[tuple[str, datetime]]:
        if spec.time_column is None:
            return []
        names = [n for n in self._table_names(spec) if n in self._partitioned]
        if not names:
            return []
        at = spec.index(spec.time_column)
        times = [row[at] for row in rows]
        created: list[tuple[str, datetime]] = []
        for month in month_starts(min(times), max(times)):
            for name in names:
                if (name, month) in self._partitions:
                    continue
                self._create_partition(cur, name, spec.time_column, month)
                created.append((name, month))
        return created

    def _create_partition(
        self, cur: psycopg.Cursor[Any], name: str, time_column: str, month: datetime
    ) -> None:
        """Create the month's partition of `name` unless it exists; rows of that month that
        reached the DEFAULT partition meanwhile move into it."""
        partition = f"{name}_p{month:%Y%m}"
        upper = _next_month(month)
        exists = cur.execute(
            "SELECT to_regclass(%s)", (f'"{self.schema}"."{partition}"',)
        ).fetchone()
        if exists and exists[0] is not None:
            return
        default = self._table(f"{name}_default")
        column = sql.Identifier(time_column)
        in_month = sql.SQL("{c} >= %s AND {c} < %s").format(c=column)
        stray = cur.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(default, in_month),
            (month, upper),
        ).fetchone()
        if stray and stray[0]:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE _moved ON COMMIT DROP AS SELECT * FROM {} WHERE {}"
                ).format(default, in_month),
                (month, upper),
            )
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(default, in_month), (month, upper)
            )
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {part} PARTITION OF {parent}"
                " FOR VALUES FROM ({lower}) TO ({upper})"
            ).format(
                part=self._table(partition),
                parent=self._table(name),
                lower=sql.Literal(month),
                upper=sql.Literal(upper),
            )
        )
        if stray and stray[0]:
            cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM _moved").format(self._table(name)))
            cur.execute("DROP TABLE _moved")

    # --- rebuilds -------------------------------------------------------------------------

    def reset(self, conn: psycopg.Connection[Any], since: datetime | None = None) -> None:
        """Empty the read model (from `since` on, for time-series tables) and forget its
        offsets, in one transaction, before a rebuild from the topics."""
        with conn.transaction():
            for spec in self.tables:
                for name in self._table_names(spec):
                    if since is None:
                        conn.execute(sql.SQL("TRUNCATE {}").format(self._table(name)))
                    elif spec.time_column is not None:
                        conn.execute(
                            sql.SQL("DELETE FROM {} WHERE {} >= %s").format(
                                self._table(name), sql.Identifier(spec.time_column)
                            ),
                            (since,),
                        )
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE read_model = %s").format(
                    self._table("projection_offsets")
                ),
                (self.read_model,),
            )

    # --- SQL ------------------------------------------------------------------------------

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    @staticmethod
    def _stage(spec: TableSpec) -> sql.Identifier:
        return sql.Identifier("pg_temp", f"stage_{spec.name}")

    @staticmethod
    def _table_names(spec: TableSpec) -> Iterable[str]:
        return (spec.name, spec.superseded_name) if spec.revisions else (spec.name,)

    def _sql(self, spec: TableSpec) -> _Statements:
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in spec.column_names)
        stage_table = self._stage(spec)
        table = self._table(spec.name)

        def copy_into(target: sql.Identifier) -> sql.Composed:
            return sql.SQL("COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)").format(
                target=target, columns=columns
            )

        key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
        matches = sql.SQL(" AND ").join(
            sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in spec.key
        )
        # the names the statements below are written with
        names: dict[str, sql.Composable] = {
            "table": table,
            "stage": stage_table,
            "columns": columns,
            "key": key,
            "m": matches,
        }
        action: sql.Composable
        if spec.guard is None:
            action = sql.SQL("DO NOTHING")
        else:
            assignments = sql.SQL(", ").join(
                sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                for c in spec.column_names
                if c not in spec.key
            )
            compare = sql.SQL(">" if spec.guard_prefers == "higher" else "<")
            guard: sql.Composable = sql.Identifier(spec.guard)
            new, old = sql.SQL("excluded.{}").format(guard), sql.SQL("t.{}").format(guard)
            if spec.tiebreak:  # row comparison: the tiebreak decides only equal revisions
                tie = sql.Identifier(spec.tiebreak)
                new = sql.SQL("({}, excluded.{})").format(new, tie)
                old = sql.SQL("({}, t.{})").format(old, tie)
            action = sql.SQL("DO UPDATE SET {assignments} WHERE {new} {cmp} {old}").format(
                assignments=assignments, new=new, cmp=compare, old=old
            )
        # staged rows are unique per (key, revision[, tiebreak]): the highest of a key is its
        # winner, the one `stage` flags
        latest = sql.SQL("DISTINCT ON ({key}) ").format(key=key) if spec.revisions else sql.SQL("")
        tie_order = (
            sql.SQL(", {} DESC NULLS LAST").format(sql.Identifier(spec.tiebreak))
            if spec.tiebreak
            else sql.SQL("")
        )
        order = (
            sql.SQL(" ORDER BY {key}, revision DESC{tie}").format(key=key, tie=tie_order)
            if spec.revisions
            else sql.SQL("")
        )
        upsert = sql.SQL(
            "INSERT INTO {table} AS t ({columns}) SELECT {latest}{columns} FROM {stage}{order}"
            " ON CONFLICT ({key}) {action}"
        ).format(**names, latest=latest, order=order, action=action)
        stored = sql.SQL(
            "SELECT EXISTS (SELECT FROM {stage} s WHERE EXISTS (SELECT FROM {table} t WHERE {m}))"
        ).format(**names)
        supersede = keep_superseded = None
        if spec.revisions:
            names["superseded"] = self._table(spec.superseded_name)
            stored_columns = sql.SQL(", ").join(
                sql.SQL("t.{}").format(sql.Identifier(c)) for c in spec.column_names
            )
            # the stored rows the upsert is about to replace: a staged revision above theirs
            if spec.tiebreak:
                tie = sql.Identifier(spec.tiebreak)
                # two rows of one (key, revision) differ in the tiebreak only: the superseded
                # table keeps the higher of them, whichever came first
                revision_key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.revisions_key)
                others = sql.SQL(", ").join(
                    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                    for c in spec.column_names
                    if c not in spec.revisions_key
                )
                on_conflict = sql.SQL(
                    " ON CONFLICT ({rk}) DO UPDATE SET {others} WHERE excluded.{tie} > t.{tie}"
                ).format(rk=revision_key, others=others, tie=tie)
                supersede = sql.SQL(
                    "INSERT INTO {superseded} AS t ({columns}) SELECT {stored_columns}"
                    " FROM (SELECT DISTINCT ON ({key}) {key}, revision, {tie} FROM {stage}"
                    " ORDER BY {key}, revision DESC, {tie} DESC NULLS LAST) s"
                    " JOIN {table} t ON {m} AND (t.revision, t.{tie}) < (s.revision, s.{tie})"
                    "{on_conflict}"
                ).format(**names, stored_columns=stored_columns, tie=tie, on_conflict=on_conflict)
                # once upserted, every staged row but its key's current one, the highest of a
                # (key, revision) once
                keep_superseded = sql.SQL(
                    "INSERT INTO {superseded} AS t ({columns}) SELECT DISTINCT ON ({rk})"
                    " {columns} FROM {stage} s WHERE NOT EXISTS (SELECT FROM {table} t WHERE {m}"
                    " AND t.revision = s.revision AND t.{tie} IS NOT DISTINCT FROM s.{tie})"
                    " ORDER BY {rk}, {tie} DESC NULLS LAST{on_conflict}"
                ).format(**names, rk=revision_key, tie=tie, on_conflict=on_conflict)
            else:
                supersede = sql.SQL(
                    "INSERT INTO {superseded} ({columns}) SELECT {stored_columns}"
                    " FROM (SELECT {key}, max(revision) AS revision FROM {stage} GROUP BY {key})"
                    " s JOIN {table} t ON {m} AND t.revision < s.revision ON CONFLICT DO NOTHING"
                ).format(**names, stored_columns=stored_columns)
                # once upserted, every staged revision but its key's current one (which the
                # table holds, be it this batch's or the stored one brought again)
                keep_superseded = sql.SQL(
                    "INSERT INTO {superseded} ({columns}) SELECT {columns} FROM {stage} s"
                    " WHERE NOT EXISTS (SELECT FROM {table} t WHERE {m} AND t.revision"
                    " = s.revision) ON CONFLICT DO NOTHING"
                ).format(**names)
        return _Statements(
            stage=copy_into(stage_table),
            copy=copy_into(table),
            stored=stored,
            upsert=upsert,
            supersede=supersede,
            keep_superseded=keep_superseded,
        )
