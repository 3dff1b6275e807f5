"""Stripe webhooks: verify a delivery, and turn a verified event into one billing command.

No I/O: `verify` checks the `Stripe-Signature` header with stripe-python's own verification
(HMAC-SHA256 over `"{timestamp}.{body}"` with the endpoint's signing secret, and the
timestamp's age), `sign` makes such a header (tests, the simulated month), and `translate` is
a pure function of the event's JSON.

The commands are those of the account aggregate (`identity.account`), as plain dicts with the
keys `type`, `org_id` and `stripe_event_id`, and as the command needs them
`stripe_customer_id`, `stripe_subscription_id`, `tier`, `invoice_id`, `subscription_status`,
`period_start_utc` and `period_end_utc` (timezone-aware UTC datetimes); no other keys:

- `checkout.session.completed`: LinkStripeCustomer;
- `customer.subscription.created` and `.updated`: by the subscription's status,
  ActivateSubscription (active, trialing), CancelSubscription (canceled, incomplete_expired,
  paused: no paid service), none (past_due, unpaid, incomplete: the invoice events say it);
  a status not named here is refused (`unknown_status`);
- `customer.subscription.deleted`: CancelSubscription;
- `invoice.paid`: RecordInvoicePaid; `invoice.payment_failed`: RecordPaymentFailed;
- any other type: none.

The organisation comes from the `org_id` metadata the checkout session puts on the
subscription (`billing.stripe_gateway`): a subscription's own metadata, an invoice's
subscription details (`parent.subscription_details` since API version 2025-03-31, the
top-level `subscription_details` before), a checkout session's `client_reference_id`.
Written against the event shapes of API version 2026-10-28 (stripe 16.1.0), and reading the
older places of the fields that moved (a subscription's period, an invoice's subscription).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from billing.tiers import FREE, TIERS

PAID_TIERS = tuple(name for name in TIERS if name != FREE.name)

# what a subscription's status means for the account (every status Stripe documents)
ACTIVE_STATUSES = frozenset({"active", "trialing"})
# payment is pending or failing: invoice.payment_failed and invoice.paid carry the change
PAYMENT_STATUSES = frozenset({"past_due", "unpaid", "incomplete"})
# no paid service: ended, never started (its first payment expired) or paused after a trial
# without a payment method (resuming it sends an update to active, which activates again)
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired", "paused"})

CHECKOUT_COMPLETED = "checkout.session.completed"
SUBSCRIPTION_CREATED = "customer.subscription.created"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
INVOICE_PAID = "invoice.paid"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
HANDLED_TYPES = frozenset(
    {
        CHECKOUT_COMPLETED,
        SUBSCRIPTION_CREATED,
        SUBSCRIPTION_UPDATED,
        SUBSCRIPTION_DELETED,
        INVOICE_PAID,
        INVOICE_PAYMENT_FAILED,
    }
)


class WebhookRejected(Exception):  # noqa: N818 - a refusal, answered to Stripe as it is
    """A webhook delivery refused: `code` for programs, the message for people.

    Codes: `bad_signature` (no valid v1 signature by the secret), `stale` (signed longer ago
    than the tolerance), `malformed` (not a Stripe event's JSON, or an event of a handled type
    without a field its command needs), `unknown_org` (an event of a handled type that names
    no organisation), `unknown_tier` and `unknown_status` (a subscription with a tier or a
    status this module does not know)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send with `payload` signed by the endpoint's
    `secret` at `timestamp` (Unix seconds): `t=<timestamp>,v1=<hex HMAC-SHA256>`, made by
    stripe-python's `WebhookSignature.generate_signature_header`."""
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp
    )
    return str(header)


def verify(
    payload: bytes, signature_header: str, secret: str, tolerance_s: int = 300
) -> stripe.Event:
    """The Stripe event in `payload` (the request body, unchanged bytes) once its
    `signature_header` (`Stripe-Signature`) is shown to be by `secret` and no older than
    `tolerance_s` seconds; WebhookRejected (`bad_signature`, `stale`, `malformed`) otherwise.
    An empty secret or a tolerance below one second is a configuration error (ValueError).

    `translate(event.to_dict())` makes its command."""
    if not secret.strip():
        raise ValueError("no webhook signing secret: the endpoint's whsec_... key is needed")
    if tolerance_s < 1:
        raise ValueError(f"tolerance_s must be at least 1 second, not {tolerance_s}")
    try:
        body = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected("malformed", f"the body is not UTF-8: {exc}") from None
    # the signature alone first (no tolerance), so that a stale delivery is told apart from a
    # forged one without reading the library's messages
    try:
        stripe.WebhookSignature.verify_header(body, signature_header, secret, None)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected("bad_signature", str(exc)) from None
    try:
        stripe.WebhookSignature.verify_header(body, signature_header, secret, tolerance_s)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected("stale", f"{exc}; the tolerance is {tolerance_s} s") from None
    _check_shape(body)
    try:
        event = stripe.Webhook.construct_event(body, signature_header, secret, tolerance_s)
    except stripe.SignatureVerificationError as exc:  # the tolerance ran out meanwhile
        raise WebhookRejected("stale", f"{exc}; the tolerance is {tolerance_s} s") from None
    except ValueError as exc:  # a thin (v2) event notification
        raise WebhookRejected("malformed", str(exc)) from None
    if not isinstance(event, stripe.Event):
        raise WebhookRejected("malformed", f"not a Stripe event: {type(event).__name__}")
    return event


def _check_shape(body: str) -> None:
    """WebhookRejected (`malformed`) unless `body` is a snapshot event's JSON: an object with
    `object` "event", an `id`, a `type` and `data.object`."""
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WebhookRejected("malformed", f"the body is not JSON: {exc}") from None
    if not isinstance(parsed, dict) or parsed.get("object") != "event":
        raise WebhookRejected("malformed", "the body is not a Stripe event (object 'event')")
    data = parsed.get("data")
    if not (
        isinstance(parsed.get("id"), str)
        and isinstance(parsed.get("type"), str)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    ):
        raise WebhookRejected("malformed", "a Stripe event needs id, type and data.object")


def translate(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The billing command a verified Stripe `event` (its JSON as a dict) stands for, or None
    for an event that changes no account (see the module's table). WebhookRejected when an
    event of a handled type lacks what its command needs."""
    kind = str(event.get("type", ""))
    if kind not in HANDLED_TYPES:
        return None
    event_id = event.get("id")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(obj, Mapping):
        raise WebhookRejected("malformed", f"{kind} event without id or data.object")
    if kind == CHECKOUT_COMPLETED:
        return _checkout_completed(event_id, obj)
    if kind == SUBSCRIPTION_DELETED:
        return _canceled(event_id, obj)
    if kind in (SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED):
        return _subscription_changed(kind, event_id, obj)
    return _invoice(kind, event_id, obj)


def _checkout_completed(event_id: str, session: Mapping[str, Any]) -> dict[str, Any]:
    org_id = _text(session.get("client_reference_id")) or _metadata_org(session)
    what = f"checkout session {session.get('id')!r} ({event_id})"
    return {
        "type": "LinkStripeCustomer",
        "org_id": _need_org(org_id, what),
        "stripe_event_id": event_id,
        "stripe_customer_id": _need(_id_of(session.get("customer")), "customer", what),
    }


def _subscription_changed(
    kind: str, event_id: str, subscription: Mapping[str, Any]
) -> dict[str, Any] | None:
    status = _text(subscription.get("status"))
    what = f"subscription {subscription.get('id')!r} ({kind} {event_id})"
    if status in PAYMENT_STATUSES:
        return None
    if status in ENDED_STATUSES:
        return _canceled(event_id, subscription)
    if status not in ACTIVE_STATUSES:
        raise WebhookRejected("unknown_status", f"{what}: unknown status {status!r}")
    org_id = _need_org(_metadata_org(subscription), what)
    period = _subscription_period(subscription)
    command: dict[str, Any] = {
        "type": "ActivateSubscription",
        "org_id": org_id,
        "stripe_event_id": event_id,
        "stripe_customer_id": _need(_id_of(subscription.get("customer")), "customer", what),
        "stripe_subscription_id": _need(_text(subscription.get("id")), "id", what),
        "tier": _subscription_tier(subscription, what),
        "subscription_status": status,
    }
    if period is not None:
        command["period_start_utc"] = period[0]
        command["period_end_utc"] = period[1]
    return command


def _canceled(event_id: str, subscription: Mapping[str, Any]) -> dict[str, Any]:
    what = f"subscription {subscription.get('id')!r} ({event_id})"
    command = {
        "type": "CancelSubscription",
        "org_id": _need_org(_metadata_org(subscription), what),
        "stripe_event_id": event_id,
        "stripe_subscription_id": _need(_text(subscription.get("id")), "id", what),
    }
    if status := _text(subscription.get("status")):
        command["subscription_status"] = status
    if customer := _id_of(subscription.get("customer")):
        command["stripe_customer_id"] = customer
    return command


def _invoice(kind: str, event_id: str, invoice: Mapping[str, Any]) -> dict[str, Any]:
    what = f"invoice {invoice.get('id')!r} ({kind} {event_id})"
    details = _subscription_details(invoice)
    org_id = _metadata_org(details) or _metadata_org(invoice)
    command: dict[str, Any] = {
        "type": "RecordInvoicePaid" if kind == INVOICE_PAID else "RecordPaymentFailed",
        "org_id": _need_org(org_id, what),
        "stripe_event_id": event_id,
        "invoice_id": _need(_text(invoice.get("id")), "id", what),
    }
    if customer := _id_of(invoice.get("customer")):
        command["stripe_customer_id"] = customer
    if subscription := _id_of(details.get("subscription")) or _id_of(invoice.get("subscription")):
        command["stripe_subscription_id"] = subscription
    period = _invoice_period(invoice) if kind == INVOICE_PAID else None
    if period is not None:
        command["period_start_utc"] = period[0]
        command["period_end_utc"] = period[1]
    return command


def _subscription_details(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    """An invoice's subscription details: `parent.subscription_details` (API 2025-03-31 on),
    else the older top-level `subscription_details`; empty when it has neither."""
    parent = invoice.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping):
            return details
    details = invoice.get("subscription_details")
    return details if isinstance(details, Mapping) else {}


def _subscription_tier(subscription: Mapping[str, Any], what: str) -> str:
    """The tier a subscription is to: its metadata `tier` (set at checkout), else its first
    item's price `lookup_key`. A free or unknown tier is refused."""
    metadata = subscription.get("metadata")
    tier = _text(metadata.get("tier")) if isinstance(metadata, Mapping) else None
    if tier is None:
        price = _first_item(subscription).get("price")
        tier = _text(price.get("lookup_key")) if isinstance(price, Mapping) else None
    if tier is None:
        raise WebhookRejected("unknown_tier", f"{what} names no tier (metadata or lookup_key)")
    if tier not in PAID_TIERS:
        paid = ", ".join(PAID_TIERS)
        raise WebhookRejected("unknown_tier", f"{what}: tier {tier!r} is none of {paid}")
    return tier


def _subscription_period(subscription: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The current period: on the first item since API version 2025-03-31, on the
    subscription itself before."""
    for holder in (_first_item(subscription), subscription):
        start = holder.get("current_period_start")
        end = holder.get("current_period_end")
        if isinstance(start, int) and isinstance(end, int):
            return _utc(start), _utc(end)
    return None


def _invoice_period(invoice: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The service period an invoice bills: its first line's period (the subscription's
    period paid for). Its own period_start/period_end are the earlier period whose pending
    items it collected, so they are not used."""
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, Mapping) else None
    for line in data if isinstance(data, list) else []:
        period = line.get("period") if isinstance(line, Mapping) else None
        if isinstance(period, Mapping):
            start, end = period.get("start"), period.get("end")
            if isinstance(start, int) and isinstance(end, int):
                return _utc(start), _utc(end)
    return None


def _first_item(subscription: Mapping[str, Any]) -> Mapping[str, Any]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    return {}


def _metadata_org(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _text(metadata.get("org_id")) if isinstance(metadata, Mapping) else None


def _need_org(org_id: str | None, what: str) -> str:
    if org_id is None:
        raise WebhookRejected("unknown_org", f"{what} names no organisation (metadata org_id)")
    return org_id


def _need(value: str | None, field: str, what: str) -> str:
    if value is None:
        raise WebhookRejected("malformed", f"{what} has no {field}")
    return value


def _id_of(value: object) -> str | None:
    """An id field, whether Stripe sent the id or the expanded object."""
    if isinstance(value, Mapping):
        return _text(value.get("id"))
    return _text(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
