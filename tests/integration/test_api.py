"""The query API on the real stack: a simulated day of every event kind is projected into its
read models, `optibid api` serves them; every route, every bad parameter, both outages, live
updates over SSE, and a schemathesis run against the OpenAPI document. Requests carry an API
key made through the log (the identity handler and projector run beside the API), and the
dashboard's browser test signs in with a password."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from identity import provisioning
from identity.bus import CommandBus
from identity.keystore import PgKeyStore
from identity.vault import Vault
from optibid import stack
from optibid.settings import Settings
from optibid.stack.postgres_server import PostgresServer
from optibid.stack.redis_server import RedisServer
from projections.hypertables import has_timescale
from projections.migrate import drop_schema
from projections.models import READ_MODEL_LIST, read_model
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import ensure_topics
from tests.integration.conftest import _cleanup
from tests.integration.kafka_util import wait_until
from tests.integration.projections_util import (
    DAY_START,
    Day,
    ProjectorProcess,
    caught_up,
    full_day,
    lmp_event,
    poison_lmp,
    produce_day,
)
from tests.integration.streams_util import PROJECT, ChildProcess, WorkerProcess, free_port

LOCATION = "51003"
OWNER_EMAIL, OWNER_PASSWORD = "owner@desk.example.com", "cobalt-harbour-lantern-58"


@dataclass
class Served:
    url: str
    settings: Settings
    catalog: TopicCatalog
    serde: AvroSerde
    schema: str
    day: Day
    projector: ProjectorProcess
    api: subprocess.Popen[bytes]
    env: dict[str, str]
    api_key: str
    identity: list[ChildProcess]

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@pytest.fixture(scope="module")
def served(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    run = f"t{uuid.uuid4().hex[:10]}"
    catalog = TopicCatalog(f"{run}.")
    ensure_topics(stack_settings.bootstrap_servers, catalog)
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{run}"')
    registry = RegistryClient(stack_settings.schema_registry_url)
    register_all(registry, catalog, ContractSet())
    serde = AvroSerde(registry, ContractSet())
    day = full_day()
    produce_day(
        stack_settings,
        serde,
        catalog,
        day,
        {"core.market.lmp": poison_lmp(serde, catalog.core("lmp"))},
    )
    logs = tmp_path_factory.mktemp("api")
    projector = ProjectorProcess(run, run, logs)
    projector.run("db", "migrate")
    projector.start("all", "--batch-events", "500")
    for model in READ_MODEL_LIST:
        topics = [s.topic.name for s in read_model(model.name).sources(catalog)]
        name = model.name
        wait_until(
            lambda n=name, t=topics: caught_up(stack_settings, run, n, t),  # type: ignore[misc]
            120,
            name,
        )
    api_key, identity = _identity(stack_settings, run, logs, serde, catalog, projector.env)
    port = free_port()
    env = {**projector.env, "OPTIBID_API_PORT": str(port), "OPTIBID_API_HEARTBEAT_S": "0.5"}
    with (logs / "api.log").open("ab") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "optibid", "api"], env=env, cwd=PROJECT, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, "the API to answer")
    served = Served(url, stack_settings, catalog, serde, run, day, projector, api, env, api_key,
                    identity)  # fmt: skip
    # the key is usable once the identity projector has folded it in
    wait_until(lambda: get(served, "/v1/catalog/isos").status_code == 200, 60, "the API key")
    yield served
    api.send_signal(signal.SIGTERM)
    api.wait(30)
    projector.stop()
    for process in identity:
        process.stop()
    drop_schema(stack_settings.postgres_dsn, run)
    _cleanup(stack_settings, list(catalog))
    registry.close()


def _identity(
    settings: Settings,
    run: str,
    logs: Path,
    serde: AvroSerde,
    catalog: TopicCatalog,
    env: dict[str, str],
) -> tuple[str, list[ChildProcess]]:
    """The identity handler and projector running, an owner with a password, and an analyst's
    read-only API key made by that owner (the key the tests send)."""
    handler = WorkerProcess(run, logs, command="identity")
    handler.start()
    projector = ChildProcess(logs / "project-identity.log")
    projector.spawn([sys.executable, "-m", "optibid", "project-identity", "--metrics-port", "0"],
                    env)  # fmt: skip
    keys = PgKeyStore(settings.postgres_dsn)
    keys.ensure()
    with CommandBus(settings.bootstrap_servers, serde, catalog) as bus:
        owner = provisioning.register_user(
            bus, Vault(keys), email=OWNER_EMAIL, password=OWNER_PASSWORD, timeout_s=60
        )
        org = provisioning.create_organization(bus, name="Desk", owner_user_id=owner, timeout_s=30)
        # every dataset, CSV, live updates and all history (the day served is years ago)
        provisioning.set_tier(bus, org_id=org, tier="enterprise", timeout_s=30)
        key = provisioning.create_api_key(
            bus, org_id=org, name="tests", role="analyst", scope="read",
            actor=provisioning.Actor(owner, "user", "test", org_id=org), timeout_s=30,
        )  # fmt: skip
    return key.api_key, [handler, projector]


def get(served: Served, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{served.url}{path}", params=params, headers=served.auth, timeout=30)


def resamples_by_source(served: Served) -> dict[str, float]:
    """The API's count of LMP resamples by where they were answered from."""
    metrics = httpx.get(f"{served.url}/metrics", timeout=10).text
    found = re.findall(
        r'^optibid_resample_total\{source="(\w+)",table="lmp"\} ([0-9.e+]+)$', metrics, re.MULTILINE
    )
    return {source: float(count) for source, count in found}


def day_range() -> dict[str, str]:
    return {"start": DAY_START.isoformat(), "end": (DAY_START + timedelta(hours=25)).isoformat()}


def expected_lmp(served: Served, location: str) -> dict[str, tuple[int, float]]:
    return {
        key[3].astimezone(UTC).isoformat().replace("+00:00", "Z"): value
        for key, value in served.day.lmp_latest.items()
        if key[2] == location
    }


def test_lmp_history_pages_follow_the_cursor_to_exactly_the_projected_rows(served: Served) -> None:
    want = expected_lmp(served, LOCATION)
    got: dict[str, tuple[int, float]] = {}
    cursor, pages = None, 0
    while True:
        params = {**day_range(), "iso": "pjm", "location_id": LOCATION, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        answer = get(served, "/v1/lmp", **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        for row in body["data"]:
            assert row["location_id"] == LOCATION
            got[row["interval_start_utc"]] = (row["revision"], row["lmp_usd_per_mwh"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert got == want
    assert pages == -(-len(want) // 100)  # 300 intervals: three pages (fall-back day)
    assert len(want) == 300


def test_csv_by_accept_and_by_format_stream_the_same_rows_with_chosen_columns(
    served: Served,
) -> None:
    params = {**day_range(), "location_id": LOCATION, "columns": "lmp_usd_per_mwh"}
    by_accept = httpx.get(
        f"{served.url}/v1/lmp", params=params, headers={"Accept": "text/csv", **served.auth},
        timeout=30,
    )  # fmt: skip
    by_format = get(served, "/v1/lmp", **params, format="csv")
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_format.text
    lines = by_accept.text.strip().splitlines()
    assert lines[0] == "iso,market,location_id,interval_start_utc,lmp_usd_per_mwh"
    assert len(lines) == 1 + 300
    prices = {line.split(",")[3]: float(line.split(",")[4]) for line in lines[1:]}
    assert prices == {k: v[1] for k, v in expected_lmp(served, LOCATION).items()}


def test_market_time_columns_and_resampling(served: Served) -> None:
    local = get(served, "/v1/lmp", **day_range(), location_id=LOCATION, timezone="market", limit=1)
    row = local.json()["data"][0]
    assert row["interval_start_utc"] == "2024-11-03T04:00:00Z"
    assert row["interval_start_local"] == "2024-11-03T00:00:00-04:00"  # EDT before fall-back
    before = resamples_by_source(served)
    hourly = get(served, "/v1/lmp", **day_range(), location_id=LOCATION, resample="1h", agg="max")
    buckets = hourly.json()["data"]
    # whole hours: the hourly rollup answers on TimescaleDB, the rows on plain partitions
    with psycopg.connect(served.settings.postgres_dsn) as conn:
        source = "rollup" if has_timescale(conn) else "rows"
    after = resamples_by_source(served)
    assert after.get(source, 0) == before.get(source, 0) + 1
    assert len(buckets) == 25
    want = expected_lmp(served, LOCATION)
    first_hour = [v[1] for k, v in want.items() if k < "2024-11-03T05:00:00Z"]
    assert buckets[0]["lmp_usd_per_mwh"] == pytest.approx(max(first_hour))
    assert buckets[0]["intervals"] == 12
    monthly = get(served, "/v1/lmp", **day_range(), location_id=LOCATION, resample="1month")
    [month] = monthly.json()["data"]
    assert month["bucket_start_utc"] == "2024-11-01T00:00:00Z"
    assert month["lmp_usd_per_mwh"] == pytest.approx(sum(v[1] for v in want.values()) / 300)


def test_a_dry_run_counts_the_rows_a_query_would_return_without_reading_them(
    served: Served,
) -> None:
    query = {**day_range(), "iso": "pjm", "location_id": LOCATION}
    rows = len(get(served, "/v1/lmp", **query).json()["data"])
    cost = get(served, "/v1/lmp", **query, dry_run="true")
    assert cost.status_code == 200, cost.text
    body = cost.json()
    assert (body["dry_run"], body["rows"], body["matching"]) == (True, rows, 300)
    assert body["tier"] == "enterprise"
    assert body["quota"]["limit"] is None  # enterprise: no monthly quota
    assert body["quota"]["within"] is True
    page = get(served, "/v1/lmp", **query, limit=100, dry_run="true").json()
    assert (page["rows"], page["matching"], page["page_limit"]) == (100, 300, 100)
    hourly = get(served, "/v1/lmp", **query, resample="1h", dry_run="true").json()
    actual = len(get(served, "/v1/lmp", **query, resample="1h").json()["data"])
    assert (hourly["series"], hourly["buckets"]) == (1, 25)
    assert hourly["rows"] >= actual == 25  # at most: a bucket without data has no row


def test_as_of_answers_with_the_value_known_then_and_shows_lineage(served: Served) -> None:
    key = served.day.revised[0]
    location, start = key[2], key[3]
    window = {"start": start.isoformat(), "end": (start + timedelta(minutes=5)).isoformat()}
    now = get(served, "/v1/lmp", **window, location_id=location, lineage="true").json()["data"]
    assert now[0]["revision"] == 2
    assert {"event_id", "recorded_at_utc", "run_id", "source_dataset"} <= set(now[0])
    revised_at = datetime.fromisoformat(now[0]["recorded_at_utc"].replace("Z", "+00:00"))
    before = get(
        served,
        "/v1/lmp",
        **window,
        location_id=location,
        as_of=(revised_at - timedelta(seconds=1)).isoformat(),
    ).json()["data"]
    assert before[0]["revision"] == 1
    assert before[0]["lmp_usd_per_mwh"] == pytest.approx(now[0]["lmp_usd_per_mwh"] - 7.25)


@pytest.mark.parametrize(
    ("path", "params", "rows"),
    [
        ("/v1/load", {}, None),
        ("/v1/fuel-mix", {}, None),
        ("/v1/ancillary-prices", {}, None),
        ("/v1/kpis", {"window_kind": "HOUR"}, None),
    ],
)
def test_every_history_dataset_answers_its_projected_rows(
    served: Served, path: str, params: dict[str, str], rows: int | None
) -> None:
    answer = get(served, path, **day_range(), **params)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    table = {"/v1/load": "load", "/v1/fuel-mix": "fuel_mix", "/v1/ancillary-prices": "as_prices"}
    name = table.get(path, "kpis")
    with psycopg.connect(served.settings.postgres_dsn) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{served.schema}".{name}').fetchone()
    assert count is not None
    expected = count[0] if path != "/v1/kpis" else None
    assert data
    if expected is not None:
        assert len(data) == expected


def test_latest_values_come_from_redis_with_their_age(served: Served) -> None:
    answer = get(served, "/v1/lmp/latest", iso="PJM")
    data = answer.json()["data"]
    locations = {k[2] for k in served.day.lmp_latest}
    assert {row["location_id"] for row in data} == locations
    last = max(k[3] for k in served.day.lmp_latest)
    row = next(r for r in data if r["location_id"] == LOCATION)
    assert row["interval_start_utc"] == last.isoformat().replace("+00:00", "Z")
    assert row["age_seconds"] > 0
    one = get(served, "/v1/lmp/latest", location_id=LOCATION).json()["data"]
    assert [r["location_id"] for r in one] == [LOCATION]
    kpis = get(served, "/v1/kpis/latest", location_id="51000").json()["data"]
    assert all(r["location_id"] == "51000" for r in kpis)


def test_catalog_and_data_quality_routes(served: Served) -> None:
    isos = get(served, "/v1/catalog/isos").json()["data"]
    assert {"iso": "PJM", "time_zone": "America/New_York"} in isos
    coverage = get(served, "/v1/catalog/datasets").json()["data"]
    lmp = next(r for r in coverage if r["dataset"] == "lmp")
    assert lmp["start_utc"] == "2024-11-03T04:00:00Z"
    assert lmp["rows"] == len(served.day.lmp_latest)
    locations = get(served, "/v1/catalog/locations", iso="PJM").json()["data"]
    assert {r["location_id"] for r in locations} >= {"51000", "51005"}
    freshness = get(served, "/v1/quality/freshness").json()["data"]
    assert freshness
    assert all("latest_interval_end_utc" in r for r in freshness)
    gaps = get(served, "/v1/quality/gaps").json()["data"]
    assert {g["status"] for g in gaps} <= {"open", "closed", "unrecoverable"}
    letters = get(served, "/v1/quality/dead-letters").json()["data"]
    assert sum(r["count"] for r in letters) >= 1
    retired = get(served, "/v1/quality/series", status="retired").json()["data"]
    assert [(r["series_key"], r["changed_at_utc"]) for r in retired] == [
        ("PJM|RT_5MIN|51005", "2024-11-04T05:00:00Z")
    ]
    every = get(served, "/v1/quality/series", iso="PJM").json()["data"]
    # 51004's return was sent before its retirement: the later change in event time wins
    assert [(r["series_key"], r["status"]) for r in every] == [
        ("PJM|RT_5MIN|51004", "ACTIVE"),
        ("PJM|RT_5MIN|51005", "RETIRED"),
    ]
    metrics = httpx.get(f"{served.url}/metrics", timeout=10).text
    assert "optibid_api_requests_total" in metrics
    root = get(served, "/")
    assert (root.status_code, root.headers["location"]) == (307, "/dashboard/")


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/v1/lmp", {"iso": "MISO"}, "iso"),
        ("/v1/lmp", {"start": "2024-11-04", "end": "2024-11-03"}, "end"),
        ("/v1/lmp", {"start": "2020-01-01", "end": "2024-11-03"}, "end"),
        ("/v1/lmp", {"start": "yesterday", "end": "2024-11-03"}, "start"),
        ("/v1/lmp", {"end": "2024-11-03"}, "start"),
        ("/v1/lmp", {"market": "RT_1MIN"}, "market"),
        ("/v1/lmp", {"columns": "bid_price"}, "columns"),
        ("/v1/lmp", {"resample": "7min"}, "resample"),
        ("/v1/lmp", {"resample": "1h", "agg": "median"}, "agg"),
        ("/v1/lmp", {"cursor": "bm9wZQ"}, "cursor"),
        ("/v1/lmp", {"format": "xml"}, "format"),
        ("/v1/lmp", {"limit": "0"}, "limit"),
        ("/v1/lmp", {"limit": "many"}, "limit"),
        ("/v1/lmp", {"as_of": "soon"}, "as_of"),
        ("/v1/lmp", {"timezone": "Mars/Olympus"}, "timezone"),
        ("/v1/kpis", {"window_kind": "WEEK"}, "window_kind"),
        ("/v1/lmp/latest", {"iso": "NYISO"}, "iso"),
        ("/v1/quality/gaps", {"status": "lost"}, "status"),
        ("/v1/quality/series", {"status": "lost"}, "status"),
        ("/v1/live", {"topics": "bids"}, "topics"),
        ("/v1/catalog/locations", {"location_type": "HUB\x00"}, "location_type"),
        ("/v1/lmp", {"location_id": "51288\x00"}, "location_id"),
    ],
)
def test_bad_parameters_get_a_422_problem_naming_the_parameter(
    served: Served, path: str, params: dict[str, str], param: str
) -> None:
    full = {**day_range(), **params} if path in ("/v1/lmp", "/v1/kpis") else params
    if "end" in params and "start" not in params:
        full.pop("start", None)
    answer = get(served, path, **full)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 422
    assert problem["invalid_params"][0]["name"] == param


def test_postgres_down_history_is_503_latest_still_served(
    served: Served, server_settings: Settings
) -> None:
    postgres = PostgresServer(server_settings)  # started on the stack's database
    postgres.down()
    try:
        history = get(served, "/v1/lmp", **day_range(), location_id=LOCATION)
        assert history.status_code == 503
        assert history.headers["retry-after"] == "5"
        assert history.json()["title"] == "PostgreSQL unavailable"
        latest = get(served, "/v1/lmp/latest", location_id=LOCATION)
        assert latest.status_code == 200
        assert latest.json()["data"]
        ready = get(served, "/ready")
        assert ready.status_code == 503
        assert ready.json()["dependencies"]["redis"] == "up"
        assert ready.json()["dependencies"]["postgres"] != "up"
    finally:
        postgres.up()
        stack.up(server_settings)
    wait_until(lambda: get(served, "/ready").status_code == 200, 60, "ready again")
    assert get(served, "/v1/lmp", **day_range(), location_id=LOCATION).status_code == 200


def test_redis_down_latest_is_503_history_still_served(served: Served) -> None:
    redis_server = RedisServer(served.settings)
    redis_server.down()
    try:
        latest = get(served, "/v1/lmp/latest")
        assert latest.status_code == 503
        assert latest.headers["retry-after"] == "5"
        assert latest.json()["title"] == "Redis unavailable"
        history = get(served, "/v1/lmp", **day_range(), location_id=LOCATION, limit=5)
        assert history.status_code == 200
        assert len(history.json()["data"]) == 5
    finally:
        redis_server.up()
    wait_until(lambda: get(served, "/v1/lmp/latest").status_code == 200, 60, "latest again")


def sse_events(lines: Iterator[str], wanted: int, deadline_s: float) -> list[dict[str, Any]]:
    """Parse SSE frames until `wanted` events (heartbeat comments skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + deadline_s
    for line in lines:
        assert time.monotonic() < deadline, f"only {len(events)} events: {events}"
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
            if len(events) >= wanted:
                break
    return events


def test_live_stream_pushes_a_new_price_and_resumes_after_last_event_id(served: Served) -> None:
    stream_url = f"{served.url}/v1/live"
    params = {"topics": "lmp", "location_id": LOCATION}
    newest = max(k[3] for k in served.day.lmp_latest)
    fresh = [
        lmp_event(random.Random(n), LOCATION, newest + timedelta(minutes=5 * n), 1, p)
        for n, p in ((1, 77.5), (2, 78.5))
    ]
    with httpx.stream(
        "GET", stream_url, params=params, headers=served.auth, timeout=60
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        [snapshot] = sse_events(lines, 1, 30)
        assert snapshot["data"]["location_id"] == LOCATION
        produce_day(served.settings, served.serde, served.catalog, _day_of(fresh[0]))
        [pushed] = sse_events(lines, 1, 60)
    assert pushed["event"] == "lmp"
    assert pushed["data"]["lmp_usd_per_mwh"] == 77.5
    # while disconnected another price arrives; resuming after the last id replays it
    produce_day(served.settings, served.serde, served.catalog, _day_of(fresh[1]))
    wait_until(
        lambda: any(
            r["lmp_usd_per_mwh"] == 78.5
            for r in get(served, "/v1/lmp/latest", location_id=LOCATION).json()["data"]
        ),
        60,
        "the second price in Redis",
    )
    headers = {"Last-Event-ID": pushed["id"], **served.auth}
    with httpx.stream("GET", stream_url, params=params, headers=headers, timeout=60) as response:
        [missed] = sse_events(response.iter_lines(), 1, 30)
    assert missed["data"]["lmp_usd_per_mwh"] == 78.5
    assert missed["id"] != pushed["id"]


def _day_of(event: dict[str, Any]) -> Day:
    day = Day()
    day.lmp(event)
    return day


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = PROJECT / "docs" / "dashboard.png"


def test_dashboard_in_headless_chromium_shows_prices_and_updates_live(
    served: Served, tmp_path: Path
) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium "
                    "chromium-driver; CI installs them)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    series = f"PJM|RT_5MIN|{LOCATION}"
    cell = f'#latest-table tr[data-series="{series}"] .lmp'
    # the price the API serves now (earlier tests may have published newer ones)
    [latest] = get(served, "/v1/lmp/latest", location_id=LOCATION).json()["data"]
    shown = f"{latest['lmp_usd_per_mwh']:.2f}"
    try:
        driver.get(f"{served.url}/dashboard/")
        wait = WebDriverWait(driver, 60)
        # signed out, the dashboard asks for a sign-in first
        wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
        driver.find_element(By.ID, "login-email").send_keys(OWNER_EMAIL)
        driver.find_element(By.ID, "login-password").send_keys("not-the-password-at-all")
        driver.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: "wrong" in d.find_element(By.ID, "login-error").text)
        driver.find_element(By.ID, "login-password").clear()
        driver.find_element(By.ID, "login-password").send_keys(OWNER_PASSWORD)
        driver.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "signed-in-as").text == OWNER_EMAIL)
        assert driver.find_element(By.ID, "nav-admin").is_displayed()  # an owner administers
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, cell).text == shown)
        wait.until(lambda d: d.find_element(By.ID, "live-status").text.strip() == "live")
        rows = driver.find_elements(By.CSS_SELECTOR, "#latest-table tr[data-series]")
        assert len(rows) >= len({k[2] for k in served.day.lmp_latest})
        retired = '[data-testid="quality-retired"] tbody'
        wait.until(lambda d: "PJM|RT_5MIN|51005" in d.find_element(By.CSS_SELECTOR, retired).text)
        assert "51004" not in driver.find_element(By.CSS_SELECTOR, retired).text
        # a new price, published on the topics, reaches the page over the live stream
        later = datetime.fromisoformat(latest["interval_start_utc"].replace("Z", "+00:00"))
        later += timedelta(minutes=30)
        event = lmp_event(random.Random(9), LOCATION, later, 1, 91.25)
        produce_day(served.settings, served.serde, served.catalog, _day_of(event))
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, cell).text == "91.25")
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        if os.environ.get("OPTIBID_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT))
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000
        logs: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
        # the browser logs each 4xx fetch; the one expected is the wrong password's 401
        expected = ("/v1/auth/login", "401")
        errors = [
            e for e in logs
            if e["level"] == "SEVERE" and not all(part in e["message"] for part in expected)
        ]  # fmt: skip
        assert errors == [], errors
        # the sessions page lists this browser's session, and signing out ends it
        driver.find_element(By.ID, "nav-sessions").click()
        wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#sessions-table [data-current="true"]')
        )
        driver.find_element(By.ID, "nav-admin").click()
        wait.until(lambda d: OWNER_EMAIL in d.find_element(By.ID, "members-table").text)
        wait.until(lambda d: "tests" in d.find_element(By.ID, "keys-table").text)
        driver.find_element(By.ID, "sign-out").click()
        wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
    except Exception:
        print(driver.find_element(By.TAG_NAME, "body").text[:3000])
        print(driver.get_log("browser"))  # type: ignore[no-untyped-call]
        raise
    finally:
        driver.quit()


# last: its sign-in attempts with made-up addresses count against this address's limit
def test_schemathesis_finds_no_server_error(served: Served) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--exclude-path",
            "/v1/live",
            "--exclude-path",
            "/metrics",
            "--seed",  # reproducible in CI; explore with other seeds by hand
            "20261128",
            "--header",
            f"X-API-Key: {served.api_key}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested is not None
    assert int(tested.group(1)) >= 14  # every operation but the live stream and /metrics
