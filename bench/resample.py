"""Resample latency, side by side in one run, on the read models as the API queries them
(`projections.reads.resampled`):
- one node's year of 5-minute LMP (105,408 rows, 2024) resampled hourly (mean);
- a month of 5-minute LMP at 1,000 nodes (8.64 M rows, June 2024) resampled daily (mean);
each answered by
- the continuous aggregate (`lmp_hourly` / `lmp_daily`, refreshed, exactness checked per query),
- `time_bucket` over the raw hypertable, its chunks compressed as the compression policy leaves
  data older than a week (and, before that, uncompressed),
- `date_bin` over the plain monthly partitions (a database of the same server without
  TimescaleDB).
Every contender's answer is checked equal to the others' before any is timed; each round runs
every contender once, `--repeat` rounds, medians reported. `ratio` is the rollup's throughput
(queries/s) over `time_bucket` on the compressed hypertable for the 1,000-node month;
`ratios` has every pair. Run on the local stack: `python bench/resample.py [--nodes N]`.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench.common import emit, local_stack, median, read_model_paths, run_id
from optibid.settings import Settings
from projections import hypertables, reads
from projections.hypertables import ROLLUPS, Options
from projections.migrate import drop_schema, migrate
from projections.pg import Batch, PgWriter
from projections.tables import LMP

YEAR = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
MONTH = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
HUB = "HB_NORTH"  # an ERCOT hub: the 1,000-node month (PJM) does not hold it
SERIES = ("iso", "market", "location_id")

# rows made in the server: a price with a daily shape and a per-node offset
INSERT = """
INSERT INTO {schema}.lmp
SELECT %(iso)s, 'RT_5MIN', node, t, 5, NULL, 'NODE',
       price, price - 1.25, 0.75, 0.5, 1, NULL, 'bench', 'lmp_rt_5min',
       node || '|' || extract(epoch FROM t)::bigint, t, t, 'bench'
FROM unnest(%(nodes)s::text[]) AS node,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '5 minutes',
                     interval '5 minutes') AS t,
     LATERAL (SELECT 30 + 12 * sin(extract(epoch FROM t) / 13751.0)
                     + (hashtext(node) %% 700) / 100.0 AS price) p
ON CONFLICT DO NOTHING
"""


def make_partitions(settings: Settings, schema: str) -> None:
    """The projector's own writer makes the monthly partitions (one row per month)."""
    writer = PgWriter(schema, "resample-bench", [LMP])
    rows = []
    for month in range(1, 13):
        at = datetime(2024, month, 1, tzinfo=UTC)
        values = {
            "iso": "ERCOT", "market": "RT_5MIN", "location_id": HUB, "interval_start_utc": at,
            "interval_minutes": 5, "location_name": None, "location_type": "NODE",
            "lmp_usd_per_mwh": 0.0, "energy_usd_per_mwh": 0.0,
            "congestion_usd_per_mwh": 0.0, "loss_usd_per_mwh": 0.0, "revision": 1,
            "supersedes_revision": None, "run_id": "bench", "source_dataset": "lmp_rt_5min",
            "event_id": f"seed-{month}", "occurred_at_utc": at, "recorded_at_utc": at,
            "source": "bench",
        }  # fmt: skip
        rows.append(tuple(values[c] for c in LMP.column_names))
    with psycopg.connect(settings.postgres_dsn) as conn:
        writer.attach(conn)
        writer.write(conn, Batch(rows={"lmp": rows}, events=len(rows)))
        conn.execute(f'DELETE FROM "{schema}".lmp')  # the seeds; partitions stay


def load(settings: Settings, schema: str, nodes: int, timescale: bool) -> float:
    """Load the month of `nodes` nodes and the hub's year; seconds taken."""
    names = [f"N{n:04d}" for n in range(nodes)]
    began = time.perf_counter()
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        ident = f'"{schema}"'
        first_day = (MONTH[0], MONTH[0] + timedelta(days=1))
        conn.execute(
            INSERT.format(schema=ident),
            {"iso": "PJM", "nodes": names, "start": first_day[0], "end": first_day[1]},
        )
        if timescale:  # the chunk interval from the first day's volume, as a projector does
            with conn.transaction():
                chosen = hypertables.tune_chunks(conn, schema, Options().chunk_target_bytes)
            print(f"  chunk interval from the volume: {chosen}", flush=True)
        conn.execute(
            INSERT.format(schema=ident),
            {"iso": "PJM", "nodes": names, "start": first_day[1], "end": MONTH[1]},
        )
        conn.execute(
            INSERT.format(schema=ident),
            {"iso": "ERCOT", "nodes": [HUB], "start": YEAR[0], "end": YEAR[1]},
        )
        conn.execute(f"VACUUM ANALYZE {ident}.lmp")
    return time.perf_counter() - began


def refresh_rollups(settings: Settings, schema: str) -> float:
    began = time.perf_counter()
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        for rollup in ROLLUPS:
            if rollup.table == "lmp":
                hypertables.refresh(conn, schema, rollup, wait_s=600)
    return time.perf_counter() - began


def compress(settings: Settings, schema: str) -> float:
    """Compress every chunk, as the policy leaves data older than its setting."""
    began = time.perf_counter()
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT count(compress_chunk(c, if_not_compressed => true))"
            " FROM show_chunks(%s::regclass) c",
            (f'"{schema}".lmp',),
        )
        conn.execute(f'VACUUM ANALYZE "{schema}".lmp')
    return time.perf_counter() - began


Query = tuple[reads.Selection, timedelta]


def queries(nodes: int) -> dict[str, Query]:
    return {
        "year_hourly_one_node": (
            reads.Selection("lmp", *YEAR, {"iso": "ERCOT", "location_id": HUB}),
            timedelta(hours=1),
        ),
        f"month_daily_{nodes}_nodes": (
            reads.Selection("lmp", *MONTH, {"iso": "PJM", "market": "RT_5MIN"}),
            timedelta(days=1),
        ),
    }


def asker(
    settings: Settings, schema: str, query: Query, rollups: bool
) -> Callable[[], list[dict[str, Any]]]:
    sel, width = query

    def ask() -> list[dict[str, Any]]:
        with psycopg.connect(settings.postgres_dsn) as conn:
            rows = reads.resampled(
                conn, schema, sel, "lmp_usd_per_mwh", width, "mean", SERIES, rollups=rollups
            )
        return rows

    return ask


def same(a: list[dict[str, Any]], b: list[dict[str, Any]], what: str) -> None:
    if len(a) != len(b) or not a:
        raise RuntimeError(f"{what}: {len(a)} buckets against {len(b)}")
    for x, y in zip(a, b, strict=True):
        if (x["location_id"], x["bucket_start_utc"], x["intervals"]) != (
            y["location_id"], y["bucket_start_utc"], y["intervals"],
        ):  # fmt: skip
            raise RuntimeError(f"{what}: {x} against {y}")
        if not math.isclose(x["lmp_usd_per_mwh"], y["lmp_usd_per_mwh"], rel_tol=1e-9):
            raise RuntimeError(f"{what}: {x} against {y}")


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7, help="rounds of every contender")
    args = parser.parse_args()
    settings = local_stack()
    paths = read_model_paths(settings)
    if "timescaledb" not in paths:
        raise SystemExit(
            "the stack's PostgreSQL has no TimescaleDB: `optibid stack status` says why"
        )
    ts, plain = paths["timescaledb"], paths["partitions"]
    schema = run_id()
    figures: dict[str, Any] = {"nodes": args.nodes, "repeat": args.repeat}
    try:
        for settings_, timescale in ((ts, True), (plain, False)):
            with psycopg.connect(settings_.postgres_dsn) as conn:
                migrate(conn, schema, Options(compress_after=None))
            if not timescale:
                make_partitions(settings_, schema)
            name = "timescaledb" if timescale else "partitions"
            seconds = load(settings_, schema, args.nodes, timescale)
            print(f"  {name}: loaded in {seconds:.1f} s", flush=True)
            figures[f"load_{name}_s"] = round(seconds, 1)
        figures["refresh_rollups_s"] = round(refresh_rollups(ts, schema), 1)
        asks = queries(args.nodes)
        with psycopg.connect(ts.postgres_dsn) as conn:
            for sel, width in asks.values():
                rollup = reads.rollup_for(sel, "lmp_usd_per_mwh", width, SERIES)
                if rollup is None or not reads.rollup_is_exact(
                    conn, schema, rollup, sel.start, sel.end
                ):
                    raise RuntimeError(f"no exact rollup answers {sel}")

        contenders: dict[str, dict[str, Callable[[], list[dict[str, Any]]]]] = {
            q: {
                "rollup": asker(ts, schema, query, rollups=True),
                "time_bucket_raw": asker(ts, schema, query, rollups=False),
                "partitions": asker(plain, schema, query, rollups=False),
            }
            for q, query in asks.items()
        }
        timings: dict[str, dict[str, list[float]]] = {q: {} for q in asks}

        def rounds(names: list[str]) -> None:
            for number in range(args.repeat):
                for q, by_name in contenders.items():
                    for name in names:
                        timings[q].setdefault(name, []).append(timed(by_name[name]))
                print(f"  round {number + 1}/{args.repeat}", flush=True)

        for q, by_name in contenders.items():
            answers = {name: fn() for name, fn in by_name.items()}
            for name, answer in answers.items():
                same(answer, answers["rollup"], f"{q}: {name}")
            print(
                f"  {q}: {len(answers['rollup']):,} buckets, the same from every contender",
                flush=True,
            )
        print("uncompressed hypertable:", flush=True)
        rounds(["rollup", "time_bucket_raw", "partitions"])
        for q in asks:
            timings[q]["time_bucket_uncompressed"] = timings[q].pop("time_bucket_raw")
        figures["compress_s"] = round(compress(ts, schema), 1)
        for q, by_name in contenders.items():
            same(by_name["time_bucket_raw"](), by_name["partitions"](), f"{q}: compressed")
        print("compressed hypertable:", flush=True)
        rounds(["rollup", "time_bucket_raw"])

        ratios: dict[str, float] = {}
        for q, measured in timings.items():
            medians = {name: median(values) for name, values in measured.items()}
            figures[q] = {f"{name}_ms": round(1000 * m, 2) for name, m in medians.items()}
            for name, m in medians.items():
                if name != "rollup":
                    ratios[f"{q}:rollup/{name}"] = round(m / medians["rollup"], 2)
            print(
                f"{q}: " + ", ".join(f"{n} {1000 * m:.1f} ms" for n, m in medians.items()),
                flush=True,
            )
        figures["ratios"] = ratios
        figures["ratio"] = ratios[f"month_daily_{args.nodes}_nodes:rollup/time_bucket_raw"]
        figures["peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        emit(figures)
    finally:
        for settings_ in (ts, plain):
            drop_schema(settings_.postgres_dsn, schema)


if __name__ == "__main__":
    main()
