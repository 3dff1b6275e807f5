"""Running the stream worker as a real process in tests, and what it should produce."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from optibid.settings import Settings
from schemas.catalog import TopicCatalog
from schemas.serde import AvroSerde
from streams.processor import MarketProcessor
from tests.integration.kafka_util import messages

PROJECT = Path(__file__).resolve().parents[2]


# Ports for the processes the tests start, below the system's ephemeral range: a port the
# system handed out (bind to 0) is in that range, where any outgoing connection (a Kafka
# client's, say) may take it before the process binds it; below it, only listeners compete.
_FREE_PORTS = range(12_000, 20_000)


# never the same port twice in one session: a test's processes bind theirs a while after
# asking, and two random draws of one port failed a start
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and no earlier call returned, chosen at
    random below the ephemeral range (see _FREE_PORTS)."""
    for _ in range(200):
        port = random.choice(_FREE_PORTS)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN.add(port)
            return port
    raise RuntimeError(f"no free port in {_FREE_PORTS}")


class ChildProcess:
    """An `optibid` command run as a process of its own, its output appended to `log`."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=PROJECT, stdout=log, stderr=log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class WorkerProcess(ChildProcess):
    """`optibid worker` (or `optibid kpis`) under a topic prefix and an app id of the test's
    own."""

    def __init__(self, test_id: str, state_dir: Path, command: str = "worker") -> None:
        self.test_id = test_id
        self.state_dir = state_dir
        self.command = command  # `worker` (market data) or `kpis`
        self.metrics_port = 0
        super().__init__(state_dir / f"{test_id}-{command}.log")

    @property
    def app_id(self) -> str:
        return f"{self.test_id}-{self.command}"

    def start(self, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **(env or {}), "OPTIBID_TOPIC_PREFIX": f"{self.test_id}."}
        self.metrics_port = free_port()
        argv = [
            sys.executable, "-m", "optibid", self.command,
            "--app-id", self.app_id,
            "--store", "rocksdb://",
            "--web-port", str(free_port()),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        self.spawn(argv, env)

    def samples(self, family: str) -> list[Sample]:
        """The samples of the metric `family` its metrics endpoint serves now (none while it
        does not answer)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return []
        return [
            sample
            for metric in text_string_to_metric_families(text)
            if metric.name == family
            for sample in metric.samples
        ]

    def consumer_lag(self) -> dict[tuple[str, int], float]:
        """optibid_consumer_lag_records of the worker's group, by (topic, partition)."""
        return {
            (sample.labels["topic"], int(sample.labels["partition"])): sample.value
            for sample in self.samples("optibid_consumer_lag_records")
            if sample.labels["group"] == self.app_id
        }


def raw_in_order(
    settings: Settings, topic: str
) -> list[tuple[int, int, bytes | None, bytes, datetime]]:
    """(partition, offset, key, value, timestamp) of every record, each partition in order."""
    out = []
    for partition, msg in messages(settings, topic):
        value, offset = msg.value(), msg.offset()
        assert value is not None
        assert offset is not None
        stamp = datetime.fromtimestamp(msg.timestamp()[1] / 1000, UTC)
        out.append((partition, offset, msg.key(), value, stamp))
    return out


def expected_outputs(
    settings: Settings,
    catalog: TopicCatalog,
    serde: AvroSerde,
    raw_topics: list[str],
    now: datetime,
) -> dict[str, list[dict[str, Any]]]:
    """What the worker must publish, computed by the same pure processor over the raw topics."""
    processor = MarketProcessor(catalog, serde)
    latest: dict[str, Any] = {}
    locations: dict[str, Any] = {}

    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic in raw_topics:
        for partition, offset, key, value, stamp in raw_in_order(settings, topic):
            for out in processor.process(
                topic, partition, offset, key, value, latest, locations, now, stamp
            ):
                by_topic[out.topic.name].append(out.value)
    return by_topic
