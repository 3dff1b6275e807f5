"""Every panel of the Grafana dashboards (ops/grafana) against a real Prometheus scraping the
pipeline on the local stack.

The demo's roles (PROCESSES of optibid/demo.py) run as processes of their own under a topic
prefix, a database schema, consumer groups and ports of this test's own, beside the demo's
simulated live feeds (Services.live, their connector metrics on the demo's metrics port).
Prometheus (`/usr/bin/prometheus`) scrapes them with ops/prometheus/prometheus.yml, its
targets moved to those ports, and loads the rules of ops/prometheus/rules/. The test signs the
demo organisation in, sends API requests (one refused by its tier), a failed sign-in, and one
undecodable record to a raw topic of each ISO (a dead letter each); then every panel
expression, its variables replaced (the ISO dashboard once per ISO), must return at least one
series, and every rule must evaluate without error.

Run as a module (`python -m tests.integration.test_prometheus_dashboards feeds`), this file
runs the demo's live feeds until SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import typer
import yaml
from rich.console import Console

from identity.keystore import PgKeyStore
from optibid import demo_identity
from optibid.cli import app as cli_app
from optibid.demo import PROCESSES, Services
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from projections.migrate import drop_schema, migrate
from schemas.catalog import ISO_DATASETS, TopicCatalog
from schemas.topics import delete_topics
from tests.integration.identity_util import api_up, wait_until
from tests.integration.stack_util import produce
from tests.integration.streams_util import PROJECT, ChildProcess, free_port
from tests.unit.test_alert_rules import METRIC, RECORDED
from tests.unit.test_grafana_dashboards import (
    ISOS,
    PROMETHEUS_CONFIG,
    Expression,
    concrete,
    expressions,
)

RULES = PROJECT / "ops" / "prometheus" / "rules"
FEEDS_JOB = "optibid-connectors"
LOCATIONS = 3  # series per simulated live feed
DEADLINE_S = 120.0  # for every expression to return series


def prometheus_binary() -> str:
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if path is None:
        pytest.fail(
            "prometheus is not installed: run `sh ops/setup.sh test` (Debian's `prometheus` "
            "package), then run this test again"
        )
    return path


def options_of(args: tuple[str, ...]) -> set[str]:
    """The option names `optibid ARGS` takes."""
    command: Any = typer.main.get_command(cli_app)
    for arg in args:
        if arg not in getattr(command, "commands", {}):
            break
        command = command.commands[arg]
    return {str(param.name) for param in command.params}


@dataclass
class Pipeline:
    """The demo's roles, its live feeds and Prometheus, each a process of this test's own."""

    settings: Settings
    test_id: str
    logs: Path
    env: dict[str, str]
    api_url: str
    ports: dict[str, int] = field(default_factory=dict)  # job -> metrics port
    processes: dict[str, ChildProcess] = field(default_factory=dict)
    prometheus_url: str = ""

    def spawn(self, name: str, argv: list[str]) -> None:
        process = ChildProcess(self.logs / f"{name}.log")
        self.processes[name] = process
        process.spawn(argv, self.env)

    def start_roles(self) -> None:
        for name, args in PROCESSES:
            options = options_of(args)
            argv = [sys.executable, "-m", "optibid", *args]
            if "app_id" in options:
                argv += ["--app-id", f"{self.test_id}-{name}"]
            if "store" in options:
                argv += ["--store", "rocksdb://"]
            if "web_port" in options:
                argv += ["--web-port", str(free_port())]
            if "metrics_port" in options:
                self.ports[f"optibid-{name}"] = port = free_port()
                argv += ["--metrics-port", str(port)]
            else:  # the API: its metrics on its own port
                self.ports[f"optibid-{name}"] = int(self.env["OPTIBID_API_PORT"])
            self.spawn(name, argv)
        self.ports[FEEDS_JOB] = int(self.env["OPTIBID_DEMO_METRICS_PORT"])
        self.spawn("feeds", [sys.executable, "-m", "tests.integration.test_prometheus_dashboards",
                             "feeds"])  # fmt: skip

    def start_prometheus(self, folder: Path) -> None:
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
        config["rule_files"] = [str(RULES / "*.yml")]
        jobs = {job["job_name"] for job in config["scrape_configs"]}
        assert jobs == set(self.ports), f"jobs {sorted(jobs)}, roles {sorted(self.ports)}"
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{self.ports[job['job_name']]}"]}]
        path = folder / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{port}"
        self.spawn("prometheus", [
            prometheus_binary(), f"--config.file={path}",
            f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ])  # fmt: skip

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.alive(), f"{name} exited:\n{process.logs()[-3000:]}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10
        )
        body = answer.json()
        assert answer.status_code == 200, f"{expr}: {answer.status_code} {body}"
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        """SIGTERM to every process started here, then each waited for (killed after 30 s)."""
        started = [p.proc for p in self.processes.values() if p.proc is not None]
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)

    def all_logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.logs()[-2000:]}" for n, p in self.processes.items())


@pytest.fixture
def pipeline(stack_settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    test_id = f"t{uuid.uuid4().hex[:10]}"
    prefix, schema = f"{test_id}.", test_id
    settings = stack_settings.model_copy(update={"topic_prefix": prefix, "db_schema": schema})
    catalog = prepare_contracts(settings)
    with psycopg.connect(settings.postgres_dsn, autocommit=False) as conn:
        migrate(conn, schema, settings.hypertable_options)
    PgKeyStore(settings.postgres_dsn).ensure()
    api_port = free_port()
    env = {
        **os.environ,
        "OPTIBID_TOPIC_PREFIX": prefix,
        "OPTIBID_DB_SCHEMA": schema,
        "OPTIBID_STATE_DIR": str(tmp_path / "state"),
        "OPTIBID_API_PORT": str(api_port),
        "OPTIBID_DEMO_METRICS_PORT": str(free_port()),
        "OPTIBID_METER_WINDOW_S": "10",  # windows close while the test runs
        "OPTIBID_METER_LATENESS_S": "0",
        "OPTIBID_LOG_FORMAT": "json",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    path = Pipeline(settings, test_id, logs, env, f"http://127.0.0.1:{api_port}")
    try:
        path.start_roles()
        path.start_prometheus(tmp_path)
        yield path
    finally:
        path.stop()
        drop_schema(settings.postgres_dsn, schema)
        delete_topics(settings.bootstrap_servers, [t.name for t in catalog])


def traffic(path: Pipeline, credentials: Path) -> str:
    """What makes the API's, identity's and the DLQ's series: the demo organisation, sign-ins
    (one failed), requests (one refused by the tier) and one undecodable raw record per ISO."""
    catalog = TopicCatalog(path.settings.topic_prefix)
    entries = demo_identity.provision(path.settings, catalog, credentials)
    owner = next(e for e in entries if e["role"] == "owner")
    viewer = next(e for e in entries if e["role"] == "viewer")
    with httpx.Client(base_url=path.api_url, timeout=30) as client:
        good = client.post(
            "/v1/auth/login", json={"email": owner["email"], "password": owner["password"]}
        )
        assert good.status_code == 200, good.text
        wrong = client.post(
            "/v1/auth/login", json={"email": owner["email"], "password": "not-the-password"}
        )
        assert wrong.status_code == 401, wrong.text
        key = {"X-API-Key": viewer["api_key"]}
        for _ in range(5):
            client.get("/v1/lmp/latest", headers=key)
        # older than the professional tier's five years of history: refused (tier_history)
        refused = client.get(
            "/v1/lmp",
            headers=key,
            params={"iso": "PJM", "start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"},
        )
        assert refused.status_code == 403, refused.text
    for iso, datasets in ISO_DATASETS.items():
        topic = catalog.raw(iso, datasets[0]).name
        produce(path.settings, topic, [(b"not-avro", b"\x00not an Avro record")])
    return str(viewer["api_key"])


def missing_series(path: Pipeline, expr: str) -> list[str]:
    """The metrics and recorded series of `expr` (with its matchers, where it has them) that
    have no series in Prometheus."""
    names = set(METRIC.findall(expr)) | set(RECORDED.findall(expr))
    missing = []
    for name in sorted(names):
        selectors = re.findall(rf"(?<![\w:]){re.escape(name)}(\{{[^}}]*\}})?", expr)
        for matchers in sorted(set(selectors)):
            if not path.query(f"count({name}{matchers})"):
                missing.append(f"{name}{matchers}")
    return missing


def test_every_panel_expression_returns_series(pipeline: Pipeline, tmp_path: Path) -> None:
    began = time.monotonic()
    wait_until(lambda: api_up(pipeline.api_url), 90, "the API to answer")
    viewer_key = traffic(pipeline, tmp_path / "demo-credentials.json")
    cases = [(e, expr) for e in expressions() for expr in concrete(e.expr)]
    assert len(cases) >= len(expressions()) > 0
    pending: list[tuple[Expression, str]] = list(cases)
    while pending and time.monotonic() - began < DEADLINE_S:
        pipeline.check_alive()
        pending = [(e, expr) for e, expr in pending if not pipeline.query(expr)]
        if pending:
            time.sleep(2)
    failures = [
        f"panel {e.panel!r} of {e.dashboard!r}: no series for {expr}"
        f" (no series of: {', '.join(missing_series(pipeline, expr)) or 'each name has some'})"
        for e, expr in pending
    ]
    answered = len(cases) - len(pending)
    assert not failures, (
        f"{answered} of {len(cases)} expressions returned series; these did not:\n"
        + "\n".join(failures)
    )

    targets = httpx.get(f"{pipeline.prometheus_url}/api/v1/targets", timeout=10).json()
    down = [
        f"{t['labels']['job']}: {t['lastError']}"
        for t in targets["data"]["activeTargets"]
        if t["health"] != "up"
    ]
    assert not down, f"targets not scraped: {down}"
    rules = httpx.get(f"{pipeline.prometheus_url}/api/v1/rules", timeout=10).json()
    groups = rules["data"]["groups"]
    assert {g["name"] for g in groups} >= {"optibid.ingest", "optibid.api"}
    unhealthy = [
        f"{g['name']}/{r['name']}: {r['health']} {r.get('lastError', '')}"
        for g in groups
        for r in g["rules"]
        if r["health"] != "ok"
    ]
    assert not unhealthy, f"rules that did not evaluate: {unhealthy}"
    # the ISO dashboard was asked about every ISO
    assert set(ISOS) == {iso.value for iso in ISO_DATASETS}
    assert not any("$" in expr for _, expr in cases)

    # the post-deployment smoke test passes on this deployment, and fails when the feeds are
    # held to an age no run can meet
    passed = smoke(pipeline.api_url, "--api-key", viewer_key)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout.splitlines()[-1]) == {
        "url": pipeline.api_url, "checks": 8, "failed": []
    }  # fmt: skip
    stale = smoke(pipeline.api_url, "--api-key", viewer_key, "--max-age-minutes", "0")
    assert stale.returncode == 1
    assert json.loads(stale.stdout.splitlines()[-1])["failed"] == ["freshness"]


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optibid", "smoke", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _feeds() -> None:
    """The demo's simulated live feeds and their connector metrics, until SIGTERM."""
    services = Services(Settings(), Console(stderr=True))
    signal.signal(signal.SIGTERM, lambda *_: services.stop.set())
    services.live(LOCATIONS)
    services.stop.wait()
    for thread in services.threads:
        thread.join(10)


if __name__ == "__main__" and sys.argv[1:] == ["feeds"]:
    _feeds()
