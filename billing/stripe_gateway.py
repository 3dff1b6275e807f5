"""The Stripe API as OptiBid uses it: customers, Checkout, the customer portal, Billing Meters
and invoices, through one `stripe.StripeClient` (stripe 16.1.0, API version 2026-10-28).

Every write carries an idempotency key: the id of the command that asked for it (a customer,
a checkout or portal session), or one derived from the meter event's identifier, so a retried
command or a retried usage report makes one object in Stripe, not two. Stripe keeps an
idempotency key for 24 hours; a meter event's `identifier` keeps it from counting twice for
longer than that (Stripe drops an event whose identifier it has seen).

Every error of the library (Stripe's answers and failures to reach it) becomes one
BillingGatewayError naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypedDict, TypeVar

import stripe

from billing.tiers import FREE, TIERS

T = TypeVar("T")
# Stripe documents at most 100 objects a page
MAX_PAGE = 100


class BillingGatewayError(Exception):
    """A call to Stripe failed, or was refused before it was sent.

    `code` is Stripe's error code when it gives one (`resource_missing`, ...), else the kind
    of failure (`authentication_error`, `permission_error`, `rate_limit_error`,
    `idempotency_error`, `card_error`, `invalid_request_error`, `api_error`, and
    `api_connection_error` when Stripe could not be reached), or this module's own:
    `unknown_tier`, `no_price` (the free tier, or a tier with no price configured), `no_url`
    (a session came back without its URL), `invalid` (an argument refused before any call).
    `http_status` and `request_id` are Stripe's, when it answered."""

    def __init__(
        self,
        message: str,
        code: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class Invoice(TypedDict):
    """One invoice as the billing page shows it."""

    id: str
    number: str | None  # None while a draft
    status: str | None  # draft, open, paid, uncollectible, void
    amount_due: int  # in the currency's smallest unit (cents for usd), as Stripe gives it
    currency: str  # ISO 4217, lower case
    period_start_utc: datetime
    period_end_utc: datetime
    hosted_invoice_url: str | None  # None while a draft


class StripeGateway:
    """Stripe for one account of ours (`api_key`, a secret or restricted key).

    `api_base` replaces Stripe's API address (a local stripe-mock in tests); `prices` names
    the Stripe price id of each paid tier (`{"starter": "price_..."}`). `http_client` is the
    stripe HTTP client to send with (the library picks one when None)."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        prices: Mapping[str, str] | None = None,
        *,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if not api_key.strip():
            raise ValueError("a Stripe API key is needed")
        unknown = sorted(set(prices or {}) - set(TIERS))
        if unknown:
            raise ValueError(f"prices for unknown tiers {unknown}; tiers are {', '.join(TIERS)}")
        if FREE.name in (prices or {}):
            raise ValueError("the free tier has no Stripe price")
        self._prices = dict(prices or {})
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=http_client,
        )

    def ensure_customer(self, org_id: str, email: str, name: str, idempotency_key: str) -> str:
        """Creates the Stripe customer of organisation `org_id` (its id in the metadata
        `org_id`) and returns the customer's id. The same `idempotency_key` (the command's id)
        returns the customer the first call made; whether the organisation has a customer
        already is the account's to know (`stripe_customer_id`)."""
        customer = self._call(
            f"creating the Stripe customer of organisation {org_id!r}",
            lambda: self._client.v1.customers.create(
                params={"email": email, "name": name, "metadata": {"org_id": org_id}},
                options={"idempotency_key": _key(idempotency_key)},
            ),
        )
        return customer.id

    def checkout_session(
        self,
        customer_id: str,
        org_id: str,
        tier: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> str:
        """The URL of a Checkout session that subscribes `customer_id` to `tier`'s price. The
        session names the organisation (`client_reference_id`) and the subscription carries
        `org_id` and `tier` in its metadata, which is how the webhooks name them
        (`billing.webhooks`). The free tier has no price: BillingGatewayError `no_price`."""
        price = self._price(tier)
        what = f"creating a Checkout session of organisation {org_id!r} for tier {tier!r}"
        session = self._call(
            what,
            lambda: self._client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": org_id,
                    "line_items": [{"price": price, "quantity": 1}],
                    "subscription_data": {"metadata": {"org_id": org_id, "tier": tier}},
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                options={"idempotency_key": _key(idempotency_key)},
            ),
        )
        if not session.url:
            raise BillingGatewayError(f"{what}: session {session.id} came without a URL", "no_url")
        return session.url

    def portal_session(self, customer_id: str, return_url: str, idempotency_key: str) -> str:
        """The URL of a customer portal session for `customer_id` (payment methods, invoices,
        cancelling), which sends the customer back to `return_url`."""
        session = self._call(
            f"creating a portal session of customer {customer_id!r}",
            lambda: self._client.v1.billing_portal.sessions.create(
                params={"customer": customer_id, "return_url": return_url},
                options={"idempotency_key": _key(idempotency_key)},
            ),
        )
        return session.url

    def report_usage(
        self, event_name: str, customer_id: str, value: int, identifier: str, timestamp: datetime
    ) -> None:
        """Reports `value` (a whole number, e.g. rows served) of the Billing Meter
        `event_name` for `customer_id` at `timestamp` (timezone-aware). `identifier` is the
        caller's deterministic name of the usage (an organisation and a usage window): Stripe
        drops an event whose identifier it has seen, so a retry never counts twice; the
        idempotency key is derived from it too."""
        if timestamp.tzinfo is None:
            raise BillingGatewayError(f"meter event {identifier!r}: naive timestamp", "invalid")
        if value < 0:
            raise BillingGatewayError(
                f"meter event {identifier!r}: negative value {value}", "invalid"
            )
        self._call(
            f"reporting {value} {event_name!r} of customer {customer_id!r} as {identifier!r}",
            lambda: self._client.v1.billing.meter_events.create(
                params={
                    "event_name": event_name,
                    "payload": {"stripe_customer_id": customer_id, "value": str(value)},
                    "identifier": identifier,
                    "timestamp": int(timestamp.timestamp()),
                },
                options={"idempotency_key": meter_event_key(identifier)},
            ),
        )

    def invoices(self, customer_id: str, limit: int = 12) -> list[Invoice]:
        """The latest `limit` (1 to 100) invoices of `customer_id`, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise BillingGatewayError(f"invoices: limit {limit} is not 1 to {MAX_PAGE}", "invalid")
        page = self._call(
            f"listing the invoices of customer {customer_id!r}",
            lambda: self._client.v1.invoices.list(params={"customer": customer_id, "limit": limit}),
        )
        return [
            Invoice(
                id=invoice.id,
                number=invoice.number,
                status=invoice.status,
                amount_due=invoice.amount_due,
                currency=invoice.currency,
                period_start_utc=datetime.fromtimestamp(invoice.period_start, tz=UTC),
                period_end_utc=datetime.fromtimestamp(invoice.period_end, tz=UTC),
                hosted_invoice_url=invoice.hosted_invoice_url,
            )
            for invoice in page.data
        ]

    def _price(self, tier: str) -> str:
        if tier not in TIERS:
            raise BillingGatewayError(
                f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}", "unknown_tier"
            )
        if tier == FREE.name:
            raise BillingGatewayError(
                "the free tier has no price: nothing to check out", "no_price"
            )
        price = self._prices.get(tier)
        if price is None:
            raise BillingGatewayError(
                f"no Stripe price is configured for tier {tier!r}", "no_price"
            )
        return price

    @staticmethod
    def _call(what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except stripe.StripeError as exc:
            raise _gateway_error(what, exc) from exc


def meter_event_key(identifier: str) -> str:
    """The idempotency key of the meter event named `identifier`."""
    return _key(f"meter-event:{identifier}")


def _key(idempotency_key: str) -> str:
    # Stripe refuses keys longer than 255 characters; an empty one would send none
    if not idempotency_key or len(idempotency_key) > 255:
        raise BillingGatewayError(
            f"idempotency key {idempotency_key[:40]!r}...: 1 to 255 characters", "invalid"
        )
    return idempotency_key


# what a failure is when Stripe gives no error code, by the library's class for it (the first
# that matches; Stripe answers a bad key with the type invalid_request_error and HTTP 401)
_CLASS_CODES: tuple[tuple[type[stripe.StripeError], str], ...] = (
    (stripe.AuthenticationError, "authentication_error"),
    (stripe.PermissionError, "permission_error"),
    (stripe.RateLimitError, "rate_limit_error"),
    (stripe.IdempotencyError, "idempotency_error"),
    (stripe.CardError, "card_error"),
    (stripe.APIConnectionError, "api_connection_error"),
    (stripe.InvalidRequestError, "invalid_request_error"),
)


def _gateway_error(what: str, exc: stripe.StripeError) -> BillingGatewayError:
    by_class = next((code for cls, code in _CLASS_CODES if isinstance(exc, cls)), None)
    error_type = exc.error.type if exc.error is not None else None
    code = exc.code or by_class or error_type or "api_error"
    reason = " ".join((exc.user_message or type(exc).__name__).split())
    status = f"HTTP {exc.http_status}" if exc.http_status else "no answer"
    request = f", request {exc.request_id}" if exc.request_id else ""
    return BillingGatewayError(
        f"{what} failed ({status}{request}): {reason}",
        code,
        http_status=exc.http_status,
        request_id=exc.request_id,
    )
