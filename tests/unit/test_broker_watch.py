"""The broker watch says when a role loses and regains the brokers, once each."""

from __future__ import annotations

import json
import time

from prometheus_client import REGISTRY

from optibid.broker_watch import BrokerState, BrokerWatch


def _stats(*states: str) -> str:
    brokers = {"127.0.0.1:1/bootstrap": {"nodeid": -1, "state": "INIT"}}
    brokers |= {f"127.0.0.1:{n}/{n}": {"nodeid": n, "state": s} for n, s in enumerate(states)}
    return json.dumps({"brokers": brokers})


def test_states_from_the_clients_statistics() -> None:
    state = BrokerState("unit")
    state.stats(json.dumps({"brokers": {"b/bootstrap": {"nodeid": -1, "state": "UP"}}}))
    assert state.up is None  # no cluster metadata yet: undecided
    state.stats(_stats("UP"))
    assert state.up is True
    assert REGISTRY.get_sample_value("optibid_broker_up", {"role": "unit"}) == 1
    state.stats(_stats("CONNECT", "DOWN"))
    assert state.up is False
    assert REGISTRY.get_sample_value("optibid_broker_up", {"role": "unit"}) == 0
    state.stats(_stats("DOWN", "UP"))  # one broker of two is enough
    assert state.up is True


def test_a_closed_port_is_reported_unavailable() -> None:
    watch = BrokerWatch("127.0.0.1:1", "unit-closed", interval_s=0.2)
    try:
        deadline = time.monotonic() + 20
        while watch.up is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watch.up is False
    finally:
        watch.close()
