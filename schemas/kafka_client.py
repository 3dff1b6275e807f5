"""How every Kafka client of the process connects: security and topics' replication.

Managed Kafka (MSK with SASL/SCRAM, Confluent Cloud with SASL/PLAIN, both over TLS) needs more
than bootstrap servers. The process's settings say it once (OPTIBID_KAFKA_SECURITY_PROTOCOL,
OPTIBID_KAFKA_SASL_*, OPTIBID_KAFKA_SSL_CA_LOCATION, OPTIBID_TOPIC_REPLICATION_FACTOR);
`optibid`'s entry point calls `configure` with them before any client is made; every
librdkafka client takes `librdkafka()` in its configuration, every faust app the same security
as its credentials (streams.runtime.app). A process that configures nothing connects in
plaintext, as the local stack's broker asks, and creates topics with one replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = None
    ca_location: Path | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Kafka security protocol {self.protocol!r}: one of {PROTOCOLS}")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"Kafka SASL mechanism {self.mechanism!r}: one of {MECHANISMS}")
        if self.sasl and not (self.username and self.password):
            raise ValueError(
                f"Kafka security protocol {self.protocol} needs OPTIBID_KAFKA_SASL_USERNAME"
                " and OPTIBID_KAFKA_SASL_PASSWORD"
            )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def librdkafka(self) -> dict[str, str]:
        """The librdkafka (confluent-kafka) properties of this security."""
        out = {"security.protocol": self.protocol}
        if self.sasl:
            assert self.username is not None
            assert self.password is not None
            out |= {
                "sasl.mechanism": self.mechanism,
                "sasl.username": self.username,
                "sasl.password": self.password,
            }
        if self.tls and self.ca_location is not None:
            out["ssl.ca.location"] = str(self.ca_location)
        return out


_security = KafkaSecurity()
_replication = 1


def configure(security: KafkaSecurity, replication_factor: int = 1) -> None:
    """Set how this process's Kafka clients connect and how many replicas new topics get."""
    global _security, _replication  # noqa: PLW0603 - one process-wide setting, set at start
    if replication_factor < 1:
        raise ValueError(f"topic replication factor {replication_factor}: at least 1")
    _security = security
    _replication = replication_factor


def security() -> KafkaSecurity:
    return _security


def replication_factor() -> int:
    return _replication


def librdkafka() -> dict[str, str]:
    """This process's security as librdkafka properties, for every client's configuration."""
    return _security.librdkafka()
