"""Typed settings, read from `OPTIBID_*` environment variables (and `.env`) when a command starts.

Nothing builds a Settings object at import time: the CLI builds one and passes it down.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from projections.hypertables import Options
from schemas.kafka_client import KafkaSecurity
from schemas.vocabulary import ISOS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_state_dir() -> Path:
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / ".optibid"
    return Path.home() / ".local" / "state" / "optibid"


class Settings(BaseSettings):
    """Everything an OptiBid process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="OPTIBID_", env_file=".env", extra="ignore")

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Folder holding all local-stack state: data, logs, pid files.",
    )
    host: str = Field("127.0.0.1", description="Loopback address the local stack binds to.")
    kafka_port: int = Field(29092, description="Kafka broker listener port.")
    kafka_controller_port: int = Field(29093, description="Kafka KRaft controller port.")
    kafka_sasl_port: int = Field(
        29094, description="The local Kafka's SASL_PLAINTEXT (PLAIN) listener port."
    )
    kafka_heap_mb: int = Field(512, description="Kafka JVM heap (-Xms/-Xmx), MiB.")
    registry_port: int = Field(28081, description="Schema registry HTTP port.")
    registry_heap_mb: int = Field(384, description="Schema registry JVM heap, MiB.")
    postgres_port: int = Field(25432, description="PostgreSQL port.")
    postgres_db: str = Field("optibid", description="PostgreSQL database of the read models.")
    postgres_user: str = Field("optibid", description="PostgreSQL role (trust auth on loopback).")
    timescaledb: bool = Field(
        True,
        description="Load TimescaleDB into the local PostgreSQL where it is installed; off, the "
        "read models use plain partitions.",
    )
    redis_port: int = Field(26379, description="Redis port.")
    db_schema: str = Field(
        "public", description="PostgreSQL schema of the read models (and Redis key namespace)."
    )
    ready_timeout_s: float = Field(180.0, description="Deadline for each server to become ready.")
    topic_prefix: str = Field("", description="Prefix of every topic name (isolated environments).")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_format: Literal["console", "json"] = Field("console", description="Log renderer.")

    compress_after_days: float = Field(
        7.0,
        description="TimescaleDB: compress read-model chunks older than this (0: never).",
        ge=0,
    )
    chunk_target_mb: int = Field(
        256,
        description="TimescaleDB: the size a read-model chunk is aimed at; the chunk interval "
        "follows from the measured rows per day (about a quarter of the server's memory).",
        gt=0,
    )
    rollup_refresh_s: float = Field(
        60.0, description="TimescaleDB: how often the hourly and daily rollups refresh.", gt=0
    )

    # ISO credentials (never logged; SecretStr keeps them out of reprs).
    revision_retention_days: float = Field(
        90.0,
        description="How long the stream worker remembers an interval's revision (event time).",
    )
    price_bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description='Per-ISO LMP floor and cap over the defaults, JSON {"PJM": [-2000, 6000]}.',
    )
    kpi_grace_hours: float = Field(
        48.0, description="How long after its end a KPI window still takes late data."
    )
    kpi_spike_threshold_usd_per_mwh: float = Field(
        1000.0, description="An interval above this LMP counts as a price spike."
    )
    kpi_reference_hubs: dict[str, str] = Field(
        default_factory=dict,
        description='Reference hub per ISO for basis, over the defaults, JSON {"PJM": "51288"}.',
    )
    pjm_api_key: SecretStr | None = Field(
        None, description="PJM Data Miner 2 subscription key (Ocp-Apim-Subscription-Key)."
    )
    ercot_api_username: str | None = Field(None, description="ERCOT public API user (token).")
    ercot_api_password: SecretStr | None = Field(None, description="ERCOT public API password.")
    ercot_api_subscription_key: SecretStr | None = Field(
        None, description="ERCOT public API subscription key."
    )

    # Point at external services instead of the local stack (clusters, Helm).
    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers override.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How Kafka clients connect: SASL_SSL for MSK (SCRAM) and Confluent Cloud.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism: PLAIN (Confluent Cloud), SCRAM-SHA-512 (MSK)."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name (a Confluent Cloud API key)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (a Confluent Cloud API secret)."
    )
    kafka_ssl_ca_location: Path | None = Field(
        None, description="CA bundle for the brokers' TLS certificates (default: the system's)."
    )
    topic_replication_factor: int = Field(
        1, ge=1, description="Replicas of the topics OptiBid creates (3 on managed Kafka)."
    )
    registry_url: str | None = Field(
        None, description="Confluent-compatible registry URL override."
    )
    database_url: SecretStr | None = Field(None, description="PostgreSQL URL override.")
    redis_url: str | None = Field(None, description="Redis URL override.")

    metrics_host: str = Field(
        "127.0.0.1", description="Address the Prometheus metrics endpoints bind to."
    )
    identity_projector_metrics_port: int = Field(
        9470, description="Prometheus metrics port of `optibid project-identity` (0: none)."
    )
    usage_projector_metrics_port: int = Field(
        9474, description="Prometheus metrics port of `optibid project-usage` (0: none)."
    )
    demo_metrics_port: int = Field(
        9472,
        description="Prometheus port of `optibid demo`'s own process (its live feeds'"
        " connector metrics); 0: none.",
    )
    billing_metrics_port: int = Field(
        9475, description="Prometheus metrics port of `optibid billing` (0: none)."
    )

    # Usage metering and billing.
    meter_window_s: int = Field(
        60, ge=10, le=3600, description="Length of a usage metering window, in seconds."
    )
    meter_lateness_s: int = Field(
        10,
        ge=0,
        le=600,
        description="How long after its end a metering window waits for late requests.",
    )
    rate_limits: bool = Field(True, description="Enforce the tiers' rate limits and quotas.")
    stripe_api_key: SecretStr | None = Field(
        None, description="Stripe secret key (billing off without it)."
    )
    stripe_api_base: str | None = Field(
        None, description="Stripe API base URL override (a local stripe-mock in tests)."
    )
    stripe_webhook_key: SecretStr | None = Field(
        None, description="The Stripe webhook endpoint's signing key (whsec_...)."
    )
    stripe_prices: dict[str, str] = Field(
        default_factory=dict,
        description='Stripe price id per paid tier, e.g. {"starter": "price_..."}.',
    )
    stripe_meter_event: str = Field(
        "optibid_rows", description="Event name of the Stripe Billing Meter of rows served."
    )
    backup_key: SecretStr | None = Field(
        None,
        description="Master key of backups (base64 of 32 bytes); or use backup_key_file.",
    )
    backup_key_file: Path | None = Field(
        None,
        description='Master key file of backups, JSON {"key_id": ..., "key": base64} as a KMS'
        " hands out (`optibid backup-key FILE` makes one).",
    )
    smoke_api_key: SecretStr | None = Field(
        None, description="API key `optibid smoke` uses to check prices and freshness."
    )
    platform_org_id: str | None = Field(
        None,
        description="The operators' organisation: its owners and admins see every "
        "organisation's usage and set tiers and feature flags.",
    )

    # The query API.
    api_host: str = Field(
        "127.0.0.1", description="Address the API binds to (loopback unless api_allow_remote)."
    )
    api_port: int = Field(28000, description="Port of the query API and dashboard.")
    api_allow_remote: bool = Field(
        False,
        description="Let the API bind beyond loopback (every /v1 route needs credentials; "
        "put TLS in front of it).",
    )
    api_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins other than the API's own whose browsers may call it (none: CORS "
        "closed).",
    )
    api_public_url: str | None = Field(
        None,
        description="The API's address as browsers and identity providers reach it (single "
        "sign-on's redirect and metadata URLs); default http://API_HOST:API_PORT.",
    )
    auth_issuer: str = Field("optibid", description="The `iss` of access tokens.")
    auth_audience: str = Field("optibid-api", description="The `aud` of access tokens.")
    access_token_minutes: float = Field(
        10.0, ge=5.0, le=15.0, description="Lifetime of access tokens (5 to 15 minutes)."
    )
    auth_key_ring_ttl_s: float = Field(
        30.0,
        gt=0,
        description="How long the API keeps the signing keys it read (a rotated-out key's "
        "tokens are refused at most this much later).",
    )
    identity_command_timeout_s: float = Field(
        10.0, description="How long the API waits for an identity command's outcome (then 503)."
    )
    api_max_range_days: float = Field(
        92.0, description="Longest time range one history request serves."
    )
    api_heartbeat_s: float = Field(15.0, description="Interval of live-stream heartbeats.")

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if value != "localhost" and not ipaddress.ip_address(value).is_loopback:
            raise ValueError(f"the local stack binds to loopback only, not {value!r}")
        return value

    @field_validator("price_bounds")
    @classmethod
    def _known_isos_and_ordered(
        cls, value: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        for iso, (floor, cap) in value.items():
            if iso not in ISOS:
                raise ValueError(f"price_bounds: unknown ISO {iso!r} (PJM, CAISO or ERCOT)")
            if not floor < cap:
                raise ValueError(f"price_bounds: {iso} floor {floor} is not below cap {cap}")
        return value

    @field_validator("revision_retention_days")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"revision_retention_days must be positive, not {value}")
        return value

    @model_validator(mode="after")
    def _api_on_loopback(self) -> Settings:
        host = self.api_host
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        if not loopback and not self.api_allow_remote:
            raise ValueError(
                f"api_host {host!r} is not loopback: set OPTIBID_API_ALLOW_REMOTE=true to serve"
                " beyond this machine (behind TLS)"
            )
        return self

    @field_validator("db_schema")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError(
                f"db_schema {value!r} must be a lower-case SQL identifier (a-z, 0-9, _)"
            )
        return value

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The environment variable that sets a field (kafka_port: OPTIBID_KAFKA_PORT)."""
        return f"{cls.model_config.get('env_prefix', '')}{field_name.upper()}"

    @property
    def kafka_security(self) -> KafkaSecurity:
        password = self.kafka_sasl_password
        return KafkaSecurity(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            None if password is None else password.get_secret_value(),
            self.kafka_ssl_ca_location,
        )

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def schema_registry_url(self) -> str:
        return self.registry_url or f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def hypertable_options(self) -> Options:
        """What the read models take from TimescaleDB where the database has it."""
        return Options(
            compress_after=timedelta(days=self.compress_after_days)
            if self.compress_after_days
            else None,
            chunk_target_bytes=self.chunk_target_mb * 1024 * 1024,
            refresh_every=timedelta(seconds=self.rollup_refresh_s),
        )

    @property
    def postgres_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return (
            f"postgresql://{self.postgres_user}@{self.host}:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or f"redis://{self.host}:{self.redis_port}/0"
