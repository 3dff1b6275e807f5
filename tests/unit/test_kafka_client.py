"""Kafka client security from settings: librdkafka's properties and faust's credentials."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from optibid.settings import Settings
from schemas import kafka_client
from schemas.kafka_client import KafkaSecurity
from streams.runtime.app import credentials


def test_plaintext_is_the_default_and_has_no_credentials() -> None:
    security = Settings().kafka_security
    assert security.librdkafka() == {"security.protocol": "PLAINTEXT"}
    assert credentials(security) is None


def test_sasl_ssl_for_managed_kafka() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="optibid",
        kafka_sasl_password="s3cret",
        kafka_ssl_ca_location=Path("/etc/ssl/certs/ca-certificates.crt"),
    )
    assert settings.kafka_security.librdkafka() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "optibid",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt",
    }
    faust_credentials = credentials(settings.kafka_security)
    assert isinstance(faust_credentials, faust.SASLCredentials)
    assert faust_credentials.protocol.value == "SASL_SSL"
    assert faust_credentials.mechanism.value == "SCRAM-SHA-512"
    assert faust_credentials.ssl_context is not None


def test_sasl_without_credentials_is_refused_naming_the_settings() -> None:
    with pytest.raises(ValueError, match="OPTIBID_KAFKA_SASL_USERNAME"):
        KafkaSecurity("SASL_SSL", "PLAIN")
    with pytest.raises(ValueError, match="mechanism 'GSSAPI'"):
        KafkaSecurity("SASL_SSL", "GSSAPI", "u", "p")


def test_configured_security_reaches_every_client_config() -> None:
    try:
        kafka_client.configure(KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p"), 3)
        assert kafka_client.librdkafka()["sasl.username"] == "u"
        assert kafka_client.replication_factor() == 3
        with pytest.raises(ValueError, match="at least 1"):
            kafka_client.configure(KafkaSecurity(), 0)
    finally:
        kafka_client.configure(KafkaSecurity(), 1)
    assert kafka_client.librdkafka() == {"security.protocol": "PLAINTEXT"}
