from __future__ import annotations

import pytest
from pydantic import ValidationError

from optibid.cli_streams import validation_config
from optibid.settings import Settings


def test_defaults_avoid_the_well_known_ports() -> None:
    s = Settings()
    ports = {s.kafka_port, s.kafka_controller_port, s.registry_port, s.postgres_port, s.redis_port}
    assert ports.isdisjoint({9092, 9093, 8081, 5432, 6379})
    assert len(ports) == 5


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIBID_KAFKA_PORT", "39092")
    monkeypatch.setenv("OPTIBID_POSTGRES_DB", "other")
    s = Settings()
    assert s.bootstrap_servers == "127.0.0.1:39092"
    assert s.postgres_dsn.endswith("/other")


def test_external_services_replace_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIBID_KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("OPTIBID_DATABASE_URL", "postgresql://u:secret@db/optibid")
    s = Settings()
    assert s.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert s.postgres_dsn == "postgresql://u:secret@db/optibid"
    assert "secret" not in repr(s)


def test_the_local_stack_binds_to_loopback_only() -> None:
    with pytest.raises(ValidationError, match="loopback only"):
        Settings(host="0.0.0.0")


def test_price_bounds_override_the_worker_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIBID_PRICE_BOUNDS", '{"PJM": [-100, 250.5]}')
    bounds = validation_config(Settings()).bounds
    assert (bounds["PJM"].floor_usd_per_mwh, bounds["PJM"].cap_usd_per_mwh) == (-100, 250.5)
    assert bounds["ERCOT"].cap_usd_per_mwh == 10_000.0  # the others keep their defaults


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"MISO": [-100, 100]}', "unknown ISO 'MISO'"),
        ('{"PJM": [100, -100]}', "PJM floor 100.0 is not below cap -100.0"),
    ],
)
def test_bad_price_bounds_are_named(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("OPTIBID_PRICE_BOUNDS", value)
    with pytest.raises(ValueError, match=message):
        Settings()
