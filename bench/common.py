"""Shared helpers of the benchmarks: the local stack, isolated topics, medians, the JSON line."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from optibid import stack
from optibid.settings import Settings
from projections.hypertables import has_timescale
from projections.migrate import plain_database
from schemas.topics import delete_topics

ROOT = Path(__file__).resolve().parent.parent


def uv_command() -> list[str]:
    """How to run uv here: the uv that runs this benchmark (`uv run` names itself in $UV), else
    the interpreter that has it as a module (where ops/setup.sh put it with pip), else a `uv`
    on PATH. Never assumes PATH reaches pip's scripts folder: under `uv run`, `python3` on PATH
    is the project's environment, which has no uv."""
    running = os.environ.get("UV")
    if running and os.access(running, os.X_OK):
        return [running]
    for python in ("python3", sys.executable):
        found = shutil.which(python) or python
        if (
            subprocess.run(
                [found, "-m", "uv", "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return [found, "-m", "uv"]
    on_path = shutil.which("uv")
    if on_path:
        return [on_path]
    raise SystemExit("uv is missing: run `python3 -m pip install --user uv` (or `make demo`)")


def arguments(description: str | None, **defaults: float) -> argparse.Namespace:
    """The benchmark's command line: an option `--name` for each default, of the default's type."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args()


def local_stack() -> Settings:
    settings = Settings()
    stack.up(settings)
    return settings


PARTITIONS_DB = "optibid_partitions"


def read_model_paths(settings: Settings) -> dict[str, Settings]:
    """Settings per read-model path of the local stack's PostgreSQL: "timescaledb" (the stack's
    database, where the extension is loaded) and "partitions" (a database of the same server
    that never gets it, `projections.migrate.plain_database`)."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        paths = {"timescaledb": settings} if has_timescale(conn) else {}
    plain_database(settings.postgres_dsn, PARTITIONS_DB)
    paths["partitions"] = settings.model_copy(update={"postgres_db": PARTITIONS_DB})
    return paths


def delete_run_topics(settings: Settings, run: str) -> int:
    """Delete the topics a benchmark run created (its prefix and its workers' app ids)."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(run)]
    delete_topics(settings.bootstrap_servers, names)
    return len(names)


def run_id() -> str:
    return f"bench{uuid.uuid4().hex[:8]}"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall seconds of each of `repeat` calls, and the last result."""
    times: list[float] = []
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return times, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object with its figures."""
    print(json.dumps(figures, sort_keys=True))


APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def append_time_topics(settings: Settings, partitions: Mapping[str, int]) -> None:
    """Create each topic (name -> partitions) with records stamped when the broker appends them,
    so the rates of contenders that write them span broker time alike."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    new = [NewTopic(t, n, 1, config=APPEND_TIME) for t, n in partitions.items()]
    for future in admin.create_topics(new).values():
        future.result(30)


def stamp_on_append(settings: Settings, topics: Iterable[str]) -> None:
    """Have the broker stamp the records of existing topics when it appends them."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    [(name, value)] = APPEND_TIME.items()
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[entry]) for t in topics
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)
