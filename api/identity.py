"""What the identity routes share: the command bus (made at the first write, so the API starts
and serves reads while Kafka is down), the vault of users' secrets, and read-your-writes.

`IdentityServices.send` publishes a command and waits for its outcome, then until the identity
read models have folded the aggregate's new version in, so the answer and the next read agree.
A refusal becomes the problem its code calls for; a deadline passed is a 503 with Retry-After
(the command may still be decided later, and nothing was half done: one command is one
aggregate's change)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from fastapi import Request

from api.auth import Principal
from api.problems import ProblemError, unavailable
from identity.bus import CommandBus, OutcomeTimeout
from identity.keystore import PgKeyStore
from identity.organization import Role
from identity.provisioning import Actor, Refused, expect
from identity.tokens import KeyRing
from identity.vault import Vault
from projections import identity_reads
from schemas.catalog import TopicCatalog
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

READ_MODEL_POLL_S = 0.02


@dataclass(frozen=True)
class AuthSettings:
    """How the API authenticates and where it sends identity commands."""

    issuer: str = "optibid"
    audience: str = "optibid-api"
    access_lifetime: timedelta = timedelta(minutes=10)
    refresh_lifetime: timedelta = timedelta(days=30)
    refresh_idle: timedelta = timedelta(days=7)
    bootstrap: str | None = None  # Kafka; None: the API takes no identity command
    registry_url: str | None = None
    topic_prefix: str = ""
    command_timeout_s: float = 10.0
    ring: KeyRing | None = None  # a fixed key ring; None: the one in PostgreSQL
    ring_ttl_s: float = 30.0  # how long the PostgreSQL one is kept before reading it again
    service_tokens: bool = False  # accept tokens without a session, at their claims
    public_url: str = "http://127.0.0.1:28000"  # as browsers and identity providers reach it
    cors_origins: tuple[str, ...] = ()


# refusal code -> HTTP status; anything else is a 409 (the state forbids it)
REFUSAL_STATUS = {
    "forbidden": 403,
    "step_up_required": 403,
    "not_a_member": 404,
    "unknown_organization": 404,
    "unknown_user": 404,
    "unknown_key": 404,
    "unknown_invitation": 404,
    "unknown_connection": 404,
    "unknown_session": 404,
    "domain": 403,
    "no_jit": 403,
    "invalid": 422,
    "unknown_role": 422,
    "locked": 429,
}


def refusal(exc: Refused) -> ProblemError:
    status = REFUSAL_STATUS.get(exc.code, 409)
    titles = {403: "Forbidden", 404: "Not found", 409: "Conflict", 422: "Invalid", 429: "Locked"}
    return ProblemError(status, titles[status], str(exc), code=exc.code)


class IdentityServices:
    """One API process's way into the identity commands."""

    def __init__(self, settings: AuthSettings, pool: Any, schema: str, postgres_dsn: str) -> None:
        self.settings = settings
        self.pool, self.schema = pool, schema
        self.vault = Vault(PgKeyStore(postgres_dsn))
        self._bus: CommandBus | None = None
        self._registry: RegistryClient | None = None
        self._lock = threading.Lock()

    def bus(self) -> CommandBus:
        with self._lock:
            if self._bus is None:
                if self.settings.bootstrap is None or self.settings.registry_url is None:
                    raise unavailable("Identity commands", "this API takes no identity commands")
                registry = RegistryClient(self.settings.registry_url)
                try:
                    self._bus = CommandBus(
                        self.settings.bootstrap,
                        AvroSerde(registry, ContractSet()),
                        TopicCatalog(self.settings.topic_prefix),
                    )
                except Exception as exc:
                    registry.close()
                    log.warning("api.command_bus_unavailable", error=str(exc))
                    raise unavailable("Kafka", f"identity commands cannot be sent: {exc}") from exc
                self._registry = registry
            return self._bus

    def send(self, command: dict[str, Any], *, wait: bool = True) -> dict[str, Any]:
        """Send `command`; its outcome once the read models show it. Problems for a refusal
        (by its code) and for a deadline passed (503)."""
        timeout = self.settings.command_timeout_s
        began = time.monotonic()
        try:
            outcome = expect(self.bus(), command, timeout)
        except Refused as exc:
            raise refusal(exc) from None
        except OutcomeTimeout as exc:
            raise unavailable("Identity handler", str(exc)) from None
        if wait:
            self.wait_read_models(
                str(command["aggregate_type"]),
                str(command["aggregate_id"]),
                int(outcome["aggregate_version"]),
                timeout - (time.monotonic() - began),
            )
        return outcome

    def wait_read_models(
        self, aggregate_type: str, aggregate_id: str, version: int, timeout_s: float
    ) -> None:
        """Until the read models have folded `version` of the aggregate in; 503 past the
        deadline (the change is made; only its reading lags)."""
        deadline = time.monotonic() + max(timeout_s, 0.5)
        while True:
            with self.pool.connection() as conn:
                seen = identity_reads.version(conn, self.schema, aggregate_type, aggregate_id)
            if seen >= version:
                return
            if time.monotonic() > deadline:
                raise unavailable(
                    "Identity read models",
                    f"the change to {aggregate_type} {aggregate_id} was accepted (version"
                    f" {version}) but the read models show version {seen}: is"
                    " `optibid project-identity` running?",
                )
            time.sleep(READ_MODEL_POLL_S)

    def record(self, **fields: Any) -> None:
        """An audit entry for something that is no command; dropped with a warning when Kafka
        is away (the request it describes is served all the same)."""
        try:
            self.bus().record(**fields)
        except Exception as exc:  # the audit of a read must not fail the read
            log.warning("api.audit_unrecorded", error=str(exc), action=fields.get("action"))

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
        if self._registry is not None:
            self._registry.close()


def role(value: str) -> Role:
    return Role(value)


def client_of(request: Request) -> tuple[str | None, str | None]:
    """The client's address and User-Agent, as the audit log records them."""
    ip = request.client.host if request.client is not None else None
    return ip, request.headers.get("user-agent")


def actor_of(principal: Principal, request: Request) -> Actor:
    """The principal as a command's actor: a user, or an API key acting by its own role."""
    ip, agent = client_of(request)
    return Actor(principal.subject, principal.kind, "api", ip, agent, principal.org_id)
