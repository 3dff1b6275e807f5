"""The roles over an authenticated Kafka listener: the local broker's SASL_PLAINTEXT (PLAIN)
listener, as managed Kafka asks (SASL, over TLS there). Topics created, a connector's records
published (librdkafka) and the stream worker (faust, aiokafka) normalising them, all through
SASL; a wrong password refused with an error that says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, TopicPartition

from optibid.settings import PROJECT_ROOT, Settings
from optibid.stack.kafka_server import KafkaServer
from schemas.catalog import Dataset, Iso, TopicCatalog
from tests.integration.streams_util import free_port


def _sasl_env(settings: Settings, test_id: str, password: str) -> dict[str, str]:
    user, _ = KafkaServer(settings).sasl_credentials()
    return {
        **os.environ,
        "OPTIBID_KAFKA_BOOTSTRAP": f"{settings.host}:{settings.kafka_sasl_port}",
        "OPTIBID_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "OPTIBID_KAFKA_SASL_MECHANISM": "PLAIN",
        "OPTIBID_KAFKA_SASL_USERNAME": user,
        "OPTIBID_KAFKA_SASL_PASSWORD": password,
        "OPTIBID_TOPIC_PREFIX": f"{test_id}.",
        "COLUMNS": "200",
    }


def _optibid(
    env: dict[str, str], *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optibid", *args], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def _records(settings: Settings, topic: str, password: str) -> int:
    """Records on `topic`, counted through the SASL listener."""
    user, _ = KafkaServer(settings).sasl_credentials()
    consumer = Consumer({
        "bootstrap.servers": f"{settings.host}:{settings.kafka_sasl_port}",
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": user, "sasl.password": password, "group.id": "counter",
    })  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += high - low
        return total
    finally:
        consumer.close()


def test_the_roles_publish_and_stream_over_sasl(stack_settings: Settings, test_id: str) -> None:
    _, password = KafkaServer(stack_settings).sasl_credentials()
    env = _sasl_env(stack_settings, test_id, password)
    catalog = TopicCatalog(f"{test_id}.")
    created = _optibid(env, "topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr

    published = _optibid(
        env, "simulate", "pjm", "lmp_rt_5min", "--start", "2024-11-03T05:00Z",
        "--end", "2024-11-03T06:00Z", "--locations", "3",
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    raw = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    assert _records(stack_settings, raw, password) == 3 * 12

    worker = subprocess.Popen(
        [sys.executable, "-m", "optibid", "worker", "--app-id", f"{test_id}-worker",
         "--web-port", str(free_port()), "--metrics-port", str(free_port())],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        core = catalog.core("lmp").name
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _records(stack_settings, core, password) < 36:
            assert worker.poll() is None, (worker.stdout.read() if worker.stdout else b"").decode()
            time.sleep(1)
        assert _records(stack_settings, core, password) == 36
    finally:
        worker.terminate()
        worker.wait(60)


def test_a_wrong_password_is_refused_saying_so(stack_settings: Settings, test_id: str) -> None:
    env = _sasl_env(stack_settings, test_id, "not-the-password")
    refused = _optibid(env, "topics", "create", timeout_s=120)
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stdout + refused.stderr
