"""What the billing, usage and operators' routes share: the Stripe connection (made at first
use, so the API starts without it), the operators' check, and feature flags as the API
evaluates them (`identity.flags.evaluate`, over the read model, remembered FLAGS_TTL_S)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from api.auth import Principal
from api.problems import ProblemError, forbidden, unavailable
from billing.stripe_gateway import StripeGateway
from identity.flags import Flag, evaluate
from identity.organization import MANAGERS
from projections import identity_reads

FLAGS_TTL_S = 5.0


@dataclass(frozen=True)
class BillingSettings:
    """Stripe and the operators' organisation, as the API is configured."""

    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    webhook_key: str | None = None
    webhook_tolerance_s: int = 300
    prices: dict[str, str] = field(default_factory=dict)
    platform_org_id: str | None = None


class BillingServices:
    """One API process's Stripe gateway, operators' check and feature flags."""

    def __init__(self, settings: BillingSettings, pool: Any, schema: str) -> None:
        self.settings = settings
        self.pool, self.schema = pool, schema
        self._gateway: StripeGateway | None = None
        self._lock = threading.Lock()
        self._flags: tuple[float, dict[str, Flag]] = (-FLAGS_TTL_S, {})

    @property
    def connected(self) -> bool:
        return self.settings.stripe_api_key is not None

    def gateway(self) -> StripeGateway:
        with self._lock:
            if self._gateway is None:
                key = self.settings.stripe_api_key
                if key is None:
                    raise unavailable(
                        "Billing", "this API is not connected to Stripe (OPTIBID_STRIPE_API_KEY)"
                    )
                self._gateway = StripeGateway(
                    key, self.settings.stripe_api_base, dict(self.settings.prices)
                )
            return self._gateway

    def require_operator(self, principal: Principal) -> None:
        """403 unless the principal is an owner or admin of the operators' organisation."""
        platform = self.settings.platform_org_id
        if platform is None or principal.org_id != platform or principal.role not in MANAGERS:
            raise forbidden(
                "this route is for the operators (owners and admins of the platform's"
                " organisation)",
                code="operators_only",
            )

    def flags(self) -> dict[str, Flag]:
        """Every feature flag, read at most every FLAGS_TTL_S."""
        read_at, flags = self._flags
        if time.monotonic() - read_at < FLAGS_TTL_S:
            return flags
        with self.pool.connection() as conn:
            rows = identity_reads.feature_flags(conn, self.schema)
        flags = {row["flag"]: flag_of(row) for row in rows}
        self._flags = (time.monotonic(), flags)
        return flags

    def forget_flags(self) -> None:
        self._flags = (-FLAGS_TTL_S, {})

    def flags_for(self, principal: Principal) -> dict[str, bool]:
        return {
            name: evaluate(flag, principal.org_id, principal.role.value)
            for name, flag in sorted(self.flags().items())
        }


def flag_of(row: dict[str, Any]) -> Flag:
    return Flag(
        flag=row["flag"],
        version=1,
        exists=True,
        enabled=bool(row["enabled"]),
        percentage=int(row["percentage"]),
        roles=frozenset(row["roles"]),
        org_ids_on=frozenset(row["org_ids_on"]),
        org_ids_off=frozenset(row["org_ids_off"]),
    )


def gateway_problem(exc: Exception) -> ProblemError:
    return ProblemError(502, "Stripe refused", str(exc), code=getattr(exc, "code", None))
