"""The query API under load, side by side in one run, with the tiers' rate limits enforced and
every request metered (a usage record to Kafka), as the API runs in production:
- latest price (`GET /v1/lmp/latest?iso=&market=&location_id=`), authenticated two ways: with an
  API key (`X-API-Key`) and with an access token of a session (ES256 JWT with `sid`, so the
  session, user and membership are checked against the identity read models, then cached for
  `api.auth.CACHE_TTL_S`); against a bare Starlette route that reads the same Redis hash field
  and returns it, anonymously (the ceiling). The API and the ceiling are one uvicorn process
  each, driven by wrk on loopback (a Python load generator when wrk is absent); the three
  alternate within each of `--rounds` rounds and the medians are reported. `ratio_api_key` and
  `ratio_jwt` = that credential's req/s over the ceiling's; `ratio` = the lower of the two;
- median and p99 latency, with the API key, of a one-location one-day history query (JSON, 288
  rows), and of a one-month 5-minute query streamed as CSV (one location, 8,928 rows).
The read model holds 100 locations x 31 days of 5-minute LMPs (~890k rows) in a schema of its own,
beside identity read-model rows written here directly for DESKS organisations on the enterprise
tier (each a viewer member, a session and a read-only API key; no login happens); the load sends
their credentials in turn (a wrk script), so the limits, enforced on every request, refuse none
(wrk's non-2xx count would fail the run). Access tokens are signed with the database's key ring
(`identity_keys.signing_keys`, made when missing and left in place). Each credential must get a
200 before it is timed, and a request without one a 401.
Run on the local stack:
`python bench/api.py [--seconds S] [--connections C] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
import redis

from bench.common import ROOT, arguments, emit, local_stack, median, run_id
from identity import apikeys, signing
from identity.tokens import MAX_ACCESS_LIFETIME, KeyRing, issue_access_token
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.migrate import migrate
from projections.redis_sink import values_key
from tests.integration.streams_util import free_port

START = datetime(2025, 1, 1, 5, tzinfo=UTC)  # PJM local midnight (EST)
DAYS, LOCATIONS = 31, 100
# desks (organisations on the enterprise tier, 6,000 requests a minute per key or user) whose
# credentials the load sends in turn: enough that the rate limits, enforced, refuse nothing
DESKS = 64
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


@dataclass(frozen=True)
class Identity:
    """The principal the API sees: a viewer of one organisation, with a session and a key."""

    org_id: str
    user_id: str
    session_id: str
    api_key: str


def seed_identities(settings: Settings, schema: str, count: int) -> list[Identity]:
    """`count` desks (see seed_identity), each an organisation on the enterprise tier."""
    return [seed_identity(settings, schema) for _ in range(count)]


def seed_identity(settings: Settings, schema: str) -> Identity:
    """Identity read-model rows in the bench's schema, as `optibid project-identity` would fold
    them: an organisation on the enterprise tier, a user, their viewer membership, a session
    open for a day and a read-only API key; and a key ring in `identity_keys` (made only when
    there is none)."""
    org_id, user_id, session_id = (str(uuid.uuid4()) for _ in range(3))
    key, prefix, secret_hash = apikeys.new_api_key()
    now = datetime.now(UTC)
    versions = [("organization", org_id, 3), ("user", user_id, 1), ("session", session_id, 1),
                ("account", org_id, 1)]  # fmt: skip
    with psycopg.connect(settings.postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema}"')
        cur.execute(
            "INSERT INTO identity_accounts (org_id, tier, plan, status, updated_at)"
            " VALUES (%s, 'enterprise', 'enterprise', 'active', %s)",
            (org_id, now),
        )
        cur.execute(
            "INSERT INTO identity_organizations (org_id, name, created_by, created_at)"
            " VALUES (%s, 'Bench', %s, %s)",
            (org_id, user_id, now),
        )
        cur.execute(
            "INSERT INTO identity_users (user_id, email, display_name, password_sealed,"
            " created_at, updated_at) VALUES (%s, %s, 'Bench viewer', 'unused', %s, %s)",
            (user_id, f"{user_id}@bench.invalid", now, now),
        )
        cur.execute(
            "INSERT INTO identity_memberships (org_id, user_id, role, since)"
            " VALUES (%s, %s, 'viewer', %s)",
            (org_id, user_id, now),
        )
        cur.execute(
            "INSERT INTO identity_sessions (session_id, user_id, org_id, amr, created_at,"
            " last_used_at, expires_at, idle_timeout_s) VALUES (%s, %s, %s, 'pwd', %s, %s, %s,"
            " %s)",
            (session_id, user_id, org_id, now, now, now + timedelta(days=1), 30 * 86_400),
        )
        cur.execute(
            "INSERT INTO identity_api_keys (key_id, org_id, name, prefix, secret_hash, role,"
            " scope, created_by, created_at)"
            " VALUES (%s, %s, 'bench', %s, %s, 'viewer', 'read', %s, %s)",
            (str(uuid.uuid4()), org_id, prefix, secret_hash, user_id, now),
        )
        cur.executemany(
            "INSERT INTO identity_versions (aggregate_type, aggregate_id, version)"
            " VALUES (%s, %s, %s)",
            versions,
        )
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        if signing.load(conn) is None:
            signing.rotate(conn)  # shared by every schema of the database: kept afterwards
    return Identity(org_id, user_id, session_id, key)


def access_token(settings: Settings, identity: Identity) -> str:
    """A fresh access token of the seeded session, signed with the database's current key."""
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        ring: KeyRing | None = signing.load(conn)
    assert ring is not None, "no key ring in identity_keys.signing_keys"
    return issue_access_token(
        ring,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        subject=identity.user_id,
        org=identity.org_id,
        roles=["viewer"],
        scope="read",
        lifetime=MAX_ACCESS_LIFETIME,
        session_id=identity.session_id,
        amr=["pwd"],
    )


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


ROTATE = """
local values = {%s}
local i = 0
request = function()
  i = i %% #values + 1
  return wrk.format("GET", nil, {["%s"] = values[i]})
end
"""


def throughput(
    url: str,
    seconds: int,
    connections: int,
    headers: Mapping[str, str] | None = None,
    rotate: tuple[str, list[str]] | None = None,
) -> float:
    """Requests/s with wrk (one thread: the server has the other core), else Python.
    `rotate`: (header, values) sent in turn, one value per request (many principals)."""
    headers = headers or {}
    wrk = shutil.which("wrk")
    if wrk:
        header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
        script: list[str] = []
        if rotate is not None:
            name, values = rotate
            path = Path(f"/tmp/bench-rotate-{uuid.uuid4().hex}.lua")
            path.write_text(ROTATE % (", ".join(json.dumps(v) for v in values), name))
            script = ["-s", str(path)]
        try:
            out = subprocess.run(
                [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", *header_args, *script, url],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            if script:
                Path(script[1]).unlink(missing_ok=True)
        if "Non-2xx" in out:
            raise RuntimeError(f"errors under load at {url}:\n{out}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return float(match.group(1))
    done, deadline = 0, time.monotonic() + seconds
    with httpx.Client(headers=dict(headers)) as client:
        while time.monotonic() < deadline:
            extra = {rotate[0]: rotate[1][done % len(rotate[1])]} if rotate else {}
            client.get(url, headers=extra).raise_for_status()
            done += 1
    return done / seconds


def latencies(
    url: str, params: dict[str, str], repeat: int, headers: Mapping[str, str]
) -> tuple[float, float, int]:
    """(median ms, p99 ms, bytes of one answer) of sequential requests."""
    times, size = [], 0
    with httpx.Client(timeout=60, headers=dict(headers)) as client:
        for _ in range(repeat):
            began = time.perf_counter()
            with client.stream("GET", url, params=params) as answer:
                answer.raise_for_status()
                size = sum(len(chunk) for chunk in answer.iter_bytes())
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return median(times), times[min(len(times) - 1, int(len(times) * 0.99))], size


def api_counters(url: str) -> dict[str, float]:
    """The API's usage records published and dropped, and requests its limits refused."""
    text = httpx.get(url, timeout=10).text

    def total(name: str) -> float:
        found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
        return sum(float(v) for v in found)

    return {
        "published": total("optibid_api_usage_records_total"),
        "dropped": total("optibid_api_usage_dropped_total"),
        "limited": total("optibid_api_limited_total"),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check_latest(url: str, headers: Mapping[str, str], what: str) -> None:
    """The credential gets a 200 with the asked-for series, before it is timed."""
    answer = httpx.get(url, headers=dict(headers))
    if answer.status_code != 200:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text}")
    assert answer.json()["data"][0]["location_id"] == "50042", answer.text


def credential_rate(
    url: str, args: argparse.Namespace, headers_of: Callable[[], list[dict[str, str]]], what: str
) -> float:
    """Requests/s of `url` with credentials (one per desk, sent in turn) that each got a 200
    just before. One retry, with the credentials made again, when the load saw errors: the key
    ring is the database's, and another process may rotate a token's key out mid-run (the
    identity integration tests do)."""
    for attempt in (1, 2):
        all_headers = headers_of()
        for one in all_headers:
            check_latest(url, one, what)
        (name,) = all_headers[0]
        rotate = (name, [h[name] for h in all_headers])
        headers: dict[str, str] = {}
        try:
            return throughput(url, args.seconds, args.connections, headers, rotate)
        except RuntimeError as exc:
            if attempt == 2:
                raise
            now = httpx.get(url, headers=headers).status_code
            print(f"{what}: errors under load (a single request now gets {now}); once more: "
                  f"{str(exc).splitlines()[0]}", file=sys.stderr)  # fmt: skip
    raise AssertionError("unreachable")


def main() -> None:
    args = arguments(__doc__, seconds=10, connections=32, rounds=3)
    settings = local_stack()
    schema = run_id()
    began = time.perf_counter()
    load(settings, schema)
    prepare_contracts(settings)  # usage.requests: where the API's usage records go
    desks = seed_identities(settings, schema, DESKS)
    identity = desks[0]
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
        with_key = {"X-API-Key": identity.api_key}
        anonymous = httpx.get(latest_url)
        if anonymous.status_code != 401:
            raise RuntimeError(f"no credentials: {anonymous.status_code}, not 401")
        check_latest(latest_url, with_key, "API key")
        check_latest(latest_url, bearer(access_token(settings, identity)), "access token")
        ceiling_rates: list[float] = []
        key_rates: list[float] = []
        jwt_rates: list[float] = []
        for n in range(args.rounds):  # alternate, so drift on a shared machine hits all three
            ceiling_rates.append(
                throughput(
                    f"http://127.0.0.1:{ceiling_port}/latest", args.seconds, args.connections
                )
            )
            key_rates.append(
                credential_rate(
                    latest_url, args, lambda: [{"X-API-Key": d.api_key} for d in desks],
                    "API key",
                )
            )  # fmt: skip
            jwt_rates.append(  # fresh tokens each round: tokens live 15 minutes at most
                credential_rate(
                    latest_url, args,
                    lambda: [bearer(access_token(settings, d)) for d in desks], "JWT",
                )
            )  # fmt: skip
            print(f"round {n + 1}: ceiling {ceiling_rates[-1]:.0f} req/s, "
                  f"API key {key_rates[-1]:.0f} req/s, JWT {jwt_rates[-1]:.0f} req/s",
                  file=sys.stderr)  # fmt: skip
        time.sleep(1.0)  # the usage publisher's last batch
        metered = api_counters(f"http://127.0.0.1:{api_port}/metrics")
        print(f"usage records handed to Kafka: {metered['published']:.0f}, dropped: "
              f"{metered['dropped']:.0f}; refused by limits: {metered['limited']:.0f}",
              file=sys.stderr)  # fmt: skip
        history = f"http://127.0.0.1:{api_port}/v1/lmp"
        day = {"iso": "PJM", "market": "RT_5MIN", "location_id": "50042",
               "start": "2025-01-15T05:00:00Z", "end": "2025-01-16T05:00:00Z"}  # fmt: skip
        day_p50, day_p99, day_bytes = latencies(history, day, 200, with_key)
        month = {
            **day,
            "start": START.isoformat(),
            "end": (START + timedelta(days=DAYS)).isoformat(),
            "format": "csv",
        }
        month_p50, month_p99, _ = latencies(history, month, 30, with_key)
        check = httpx.get(history, params=month, headers=with_key, timeout=60).text
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
    ceiling_rate = median(ceiling_rates)
    key_rate, jwt_rate = median(key_rates), median(jwt_rates)
    ratio_key, ratio_jwt = key_rate / ceiling_rate, jwt_rate / ceiling_rate
    emit(
        {
            "benchmark": "api",
            "load_generator": "wrk" if shutil.which("wrk") else "python",
            "connections": args.connections,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "latest_ceiling_req_per_s": round(ceiling_rate),
            "latest_api_key_req_per_s": round(key_rate),
            "latest_jwt_req_per_s": round(jwt_rate),
            "ratio_api_key": round(ratio_key, 3),
            "ratio_jwt": round(ratio_jwt, 3),
            "ratio": round(min(ratio_key, ratio_jwt), 3),
            "rate_limits_and_metering": True,
            "desks": DESKS,
            "usage_records_published": round(metered["published"]),
            "usage_records_dropped": round(metered["dropped"]),
            "requests_refused_by_limits": round(metered["limited"]),
            "day_history_json_p50_ms": round(day_p50, 1),
            "day_history_json_p99_ms": round(day_p99, 1),
            "month_5min_csv_rows": month_rows,
            "month_5min_csv_p50_ms": round(month_p50, 1),
            "month_5min_csv_p99_ms": round(month_p99, 1),
        }
    )


if __name__ == "__main__":
    main()
