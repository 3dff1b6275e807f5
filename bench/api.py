"""The query API under load, side by side in one run:
- latest price (`GET /v1/lmp/latest?iso=&market=&location_id=`) against a bare Starlette route
  that reads the same Redis hash field and returns it (the ceiling); both one uvicorn process,
  driven by wrk on loopback (a Python load generator when wrk is absent); `ratio` = API req/s
  over ceiling req/s;
- median and p99 latency of a one-location one-day history query (JSON, 288 rows), and of a
  one-month 5-minute query streamed as CSV (one location, 8,928 rows).
The read model holds 100 locations x 31 days of 5-minute LMPs (~890k rows) in a schema of its own.
Run on the local stack: `python bench/api.py [--seconds S] [--connections C]`.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
import redis

from bench.common import ROOT, arguments, emit, local_stack, median, run_id
from optibid.settings import Settings
from projections.migrate import migrate
from projections.redis_sink import values_key
from tests.integration.streams_util import free_port

START = datetime(2025, 1, 1, 5, tzinfo=UTC)  # PJM local midnight (EST)
DAYS, LOCATIONS = 31, 100
CEILING_APP = """
import os
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

client = aioredis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
KEY, FIELD = os.environ["BENCH_KEY"], os.environ["BENCH_FIELD"]

async def latest(request):
    raw = await client.hget(KEY, FIELD)
    return Response(raw, media_type="application/json")

app = Starlette(routes=[Route("/latest", latest)])
"""


def load(settings: Settings, schema: str) -> None:
    """LMP rows into the read model (COPY) and the latest value per series into Redis."""
    rng = random.Random(7)
    with psycopg.connect(settings.postgres_dsn) as conn:
        migrate(conn, schema)
        columns = (
            "iso, market, location_id, interval_start_utc, interval_minutes, location_name,"
            " location_type, lmp_usd_per_mwh, energy_usd_per_mwh, congestion_usd_per_mwh,"
            " loss_usd_per_mwh, revision, run_id, source_dataset, event_id, occurred_at_utc,"
            " recorded_at_utc, source"
        )
        with conn.cursor() as cur, cur.copy(f'COPY "{schema}".lmp ({columns}) FROM STDIN') as copy:
            for step in range(DAYS * 288):
                t = START + timedelta(minutes=5 * step)
                for n in range(LOCATIONS):
                    price = round(rng.gauss(35, 12), 2)
                    copy.write_row((
                        "PJM", "RT_5MIN", str(50_000 + n), t, 5, f"NODE {n}", "NODE", price,
                        price - 1.0, 0.5, 0.5, 1, "bench", "lmp_rt_5min", f"{n}-{step}", t,
                        t + timedelta(minutes=6), "worker:normalise",
                    ))  # fmt: skip
        conn.execute(f'ANALYZE "{schema}".lmp')
    client = redis.Redis.from_url(settings.redis_dsn)
    last = START + timedelta(minutes=5 * (DAYS * 288 - 1))
    mapping = {
        f"PJM|RT_5MIN|{50_000 + n}": json.dumps(
            {
                "iso": "PJM",
                "market": "RT_5MIN",
                "location_id": str(50_000 + n),
                "interval_start_utc": last.isoformat(),
                "interval_minutes": 5,
                "location_name": f"NODE {n}",
                "location_type": "NODE",
                "lmp_usd_per_mwh": 33.3,
                "energy_usd_per_mwh": 32.3,
                "congestion_usd_per_mwh": 0.5,
                "loss_usd_per_mwh": 0.5,
                "revision": 1,
            }
        )
        for n in range(LOCATIONS)
    }
    pipe = client.pipeline()
    for field, value in mapping.items():
        pipe.hset(values_key(schema, "lmp"), field, value)
    pipe.execute()
    client.close()


def serve(argv: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{argv} did not answer at {url}")


def throughput(url: str, seconds: int, connections: int) -> float:
    """Requests/s with wrk (one thread: the server has the other core), else Python."""
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx" in out:
            raise RuntimeError(f"errors under load at {url}:\n{out}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return float(match.group(1))
    done, deadline = 0, time.monotonic() + seconds
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            client.get(url).raise_for_status()
            done += 1
    return done / seconds


def latencies(url: str, params: dict[str, str], repeat: int) -> tuple[float, float, int]:
    """(median ms, p99 ms, bytes of one answer) of sequential requests."""
    times, size = [], 0
    with httpx.Client(timeout=60) as client:
        for _ in range(repeat):
            began = time.perf_counter()
            with client.stream("GET", url, params=params) as answer:
                answer.raise_for_status()
                size = sum(len(chunk) for chunk in answer.iter_bytes())
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return median(times), times[min(len(times) - 1, int(len(times) * 0.99))], size


def main() -> None:
    args = arguments(__doc__, seconds=10, connections=32, rounds=3)
    settings = local_stack()
    schema = run_id()
    began = time.perf_counter()
    load(settings, schema)
    rows = DAYS * 288 * LOCATIONS
    print(
        f"{rows} LMP rows in schema {schema} in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )

    api_port, ceiling_port = free_port(), free_port()
    env = {**os.environ, "OPTIBID_DB_SCHEMA": schema, "OPTIBID_API_PORT": str(api_port),
           "OPTIBID_LOG_LEVEL": "warning"}  # fmt: skip
    api = serve(
        [sys.executable, "-m", "optibid", "api"], env, f"http://127.0.0.1:{api_port}/health"
    )
    app_file = Path(f"/tmp/{schema}_ceiling.py")
    app_file.write_text(CEILING_APP)
    ceiling_env = {
        **os.environ, "BENCH_REDIS_URL": settings.redis_dsn,
        "BENCH_KEY": values_key(schema, "lmp"), "BENCH_FIELD": "PJM|RT_5MIN|50042",
        "PYTHONPATH": str(app_file.parent),
    }  # fmt: skip
    ceiling = serve(
        [sys.executable, "-m", "uvicorn", f"{app_file.stem}:app", "--port", str(ceiling_port),
         "--log-level", "warning", "--no-access-log"],
        ceiling_env, f"http://127.0.0.1:{ceiling_port}/latest",
    )  # fmt: skip
    try:
        latest_url = (
            f"http://127.0.0.1:{api_port}/v1/lmp/latest?iso=PJM&market=RT_5MIN&location_id=50042"
        )
        assert httpx.get(latest_url).json()["data"][0]["location_id"] == "50042"
        api_rates, ceiling_rates = [], []
        for n in range(args.rounds):  # alternate, so drift on a shared machine hits both
            ceiling_rates.append(
                throughput(
                    f"http://127.0.0.1:{ceiling_port}/latest", args.seconds, args.connections
                )
            )
            api_rates.append(throughput(latest_url, args.seconds, args.connections))
            print(f"round {n + 1}: ceiling {ceiling_rates[-1]:.0f} req/s, "
                  f"API {api_rates[-1]:.0f} req/s", file=sys.stderr)  # fmt: skip
        history = f"http://127.0.0.1:{api_port}/v1/lmp"
        day = {"iso": "PJM", "market": "RT_5MIN", "location_id": "50042",
               "start": "2025-01-15T05:00:00Z", "end": "2025-01-16T05:00:00Z"}  # fmt: skip
        day_p50, day_p99, day_bytes = latencies(history, day, 200)
        month = {
            **day,
            "start": START.isoformat(),
            "end": (START + timedelta(days=DAYS)).isoformat(),
            "format": "csv",
        }
        month_p50, month_p99, _ = latencies(history, month, 30)
        check = httpx.get(history, params=month, timeout=60).text
        month_rows = len(io.StringIO(check).readlines()) - 1
        print(f"one-day JSON: p50 {day_p50:.1f} ms, p99 {day_p99:.1f} ms ({day_bytes} B); "
              f"one-month CSV ({month_rows} rows): p50 {month_p50:.1f} ms, p99 {month_p99:.1f} ms",
              file=sys.stderr)  # fmt: skip
    finally:
        for proc in (api, ceiling):
            proc.terminate()
            proc.wait(30)
        app_file.unlink(missing_ok=True)
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(settings.redis_dsn).delete(values_key(schema, "lmp"))
    api_rate, ceiling_rate = median(api_rates), median(ceiling_rates)
    emit(
        {
            "benchmark": "api",
            "load_generator": "wrk" if shutil.which("wrk") else "python",
            "connections": args.connections,
            "latest_api_req_per_s": round(api_rate),
            "latest_ceiling_req_per_s": round(ceiling_rate),
            "ratio": round(api_rate / ceiling_rate, 3),
            "day_history_json_p50_ms": round(day_p50, 1),
            "day_history_json_p99_ms": round(day_p99, 1),
            "month_5min_csv_rows": month_rows,
            "month_5min_csv_p50_ms": round(month_p50, 1),
            "month_5min_csv_p99_ms": round(month_p99, 1),
        }
    )


if __name__ == "__main__":
    main()
