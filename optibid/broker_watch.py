"""Whether a role reaches the Kafka brokers, said in its logs and metrics.

Every long-running role (connectors, stream workers, projectors) starts one watch: a small
idle librdkafka client whose statistics, once a second, say which brokers it is connected to.
When none is, the role logs `broker.unavailable` (once) and sets `optibid_broker_up` to 0;
when one is again, it logs `broker.available` with how long the outage lasted. The roles' own
clients ride the outage out on their own (they retry, and never commit past what the broker
did not take); this watch only makes it visible.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from time import monotonic
from typing import Any

import structlog
from confluent_kafka import KafkaError, Producer
from prometheus_client import Gauge, start_http_server

from optibid.lag_watch import LagWatch
from schemas import kafka_client

log = structlog.get_logger(__name__)


def observe_role(
    bootstrap: str,
    role: str,
    metrics_host: str,
    metrics_port: int | None,
    groups: Sequence[str] = (),
) -> None:
    """A role's Prometheus endpoint (when a port is given), its broker watch and the lag
    watch of its consumer `groups`."""
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    BrokerWatch(bootstrap, role)
    if groups:
        LagWatch(bootstrap, groups)


BROKER_UP = Gauge("optibid_broker_up", "1 while this role reaches a Kafka broker, else 0", ["role"])
CONNECTED = "UP"


class BrokerState:
    """Connected or not, from a client's statistics and errors; says each change once."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.up: bool | None = None  # None until the first cluster metadata or error
        self._down_since: float | None = None

    def stats(self, text: str) -> None:
        brokers: dict[str, Any] = json.loads(text).get("brokers", {})
        # the bootstrap entries have no node id; the cluster's brokers do
        known = [b for b in brokers.values() if int(b.get("nodeid", -1)) >= 0]
        if not known and self.up is None:
            return  # no metadata yet: undecided (an error says when no broker answers)
        self.set(any(b.get("state") == CONNECTED for b in known))

    def error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.set(False)

    def set(self, up: bool) -> None:
        if up == self.up:
            return
        if not up:
            self._down_since = monotonic()
            log.warning("broker.unavailable", role=self.role)
        elif self.up is False and self._down_since is not None:
            log.info(
                "broker.available",
                role=self.role,
                outage_s=round(monotonic() - self._down_since, 1),
            )
        self.up = up
        BROKER_UP.labels(self.role).set(1 if up else 0)


class BrokerWatch:
    """An idle librdkafka client feeding a BrokerState from a thread of its own."""

    def __init__(self, bootstrap: str, role: str, interval_s: float = 1.0) -> None:
        self.state = BrokerState(role)
        self._stop = threading.Event()
        period_ms = int(interval_s * 1000)
        self._client = Producer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": bootstrap,
                "client.id": f"optibid-{role}-broker-watch",
                "statistics.interval.ms": period_ms,
                # a metadata request every period keeps a connection wanted, so an idle
                # client notices a broker that went away, and one that came back
                "topic.metadata.refresh.interval.ms": period_ms,
                "reconnect.backoff.max.ms": period_ms,
                "stats_cb": self.state.stats,
                "error_cb": self.state.error,
                "log_level": 0,
            }
        )
        self._thread = threading.Thread(target=self._run, name="broker-watch", daemon=True)
        self._thread.start()

    @property
    def up(self) -> bool | None:
        return self.state.up

    def _run(self) -> None:
        while not self._stop.is_set():
            self._client.poll(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
