"""billing.webhooks: Stripe's signature scheme both ways, and every event type it turns into a
billing command (or deliberately not). The payloads follow Stripe's documented JSON of API
version 2026-10-28, cut to the fields that matter plus a few that do not."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from billing.webhooks import WebhookRejected, sign, translate, verify

SECRET = "whsec_test_8d7f2c1b9a6e4f3d"
ORG = "org_7c9e6679"
CUSTOMER = "cus_RfX1Ajm5mW4b2c"
SUBSCRIPTION = "sub_1QdC2kLkdIwHu7ix"
INVOICE = "in_1QdC3BLkdIwHu7ixZ5pq"
PERIOD_START = datetime(2026, 12, 1, tzinfo=UTC)
PERIOD_END = datetime(2027, 1, 1, tzinfo=UTC)
START_S = int(PERIOD_START.timestamp())
END_S = int(PERIOD_END.timestamp())


def event(kind: str, obj: dict[str, Any], event_id: str = "evt_1QdC4ELkdIwHu7ix") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": START_S + 60,
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_8Jk2mQ", "idempotency_key": "cmd-3f2a"},
        "type": kind,
    }


def checkout_session(**fields: Any) -> dict[str, Any]:
    return {
        "id": "cs_test_a1YS1URlnyQCN5fU",
        "object": "checkout.session",
        "client_reference_id": ORG,
        "customer": CUSTOMER,
        "metadata": {},
        "mode": "subscription",
        "payment_status": "paid",
        "status": "complete",
        "subscription": SUBSCRIPTION,
        "url": None,
    } | fields


def price(lookup_key: str | None = "professional") -> dict[str, Any]:
    return {
        "id": "price_1QdBzzLkdIwHu7ixPro",
        "object": "price",
        "currency": "usd",
        "lookup_key": lookup_key,
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        "unit_amount": 49900,
    }


def subscription(
    status: str = "active", metadata: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """A subscription as API 2026-10-28 has it: the current period on its items."""
    item = {
        "id": "si_RfX2xYz",
        "object": "subscription_item",
        "current_period_start": START_S,
        "current_period_end": END_S,
        "price": price(),
        "quantity": 1,
        "subscription": SUBSCRIPTION,
    }
    return {
        "id": SUBSCRIPTION,
        "object": "subscription",
        "cancel_at_period_end": False,
        "customer": CUSTOMER,
        "items": {"object": "list", "data": [item], "has_more": False},
        "metadata": {"org_id": ORG, "tier": "professional"} if metadata is None else metadata,
        "status": status,
    } | fields


def invoice(status: str = "paid", **fields: Any) -> dict[str, Any]:
    """An invoice as API 2026-10-28 has it: the subscription under `parent`."""
    line = {
        "id": "il_1QdC3BLkdIwHu7ix",
        "object": "line_item",
        "amount": 49900,
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": SUBSCRIPTION,
                "subscription_item": "si_RfX2xYz",
                "proration": False,
            },
        },
        "period": {"start": START_S, "end": END_S},
    }
    return {
        "id": INVOICE,
        "object": "invoice",
        "amount_due": 49900,
        "amount_paid": 49900 if status == "paid" else 0,
        "currency": "usd",
        "customer": CUSTOMER,
        "lines": {"object": "list", "data": [line], "has_more": False},
        "metadata": {},
        "number": "7FE1103-0004",
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": {"org_id": ORG, "tier": "professional"},
                "subscription": SUBSCRIPTION,
            },
        },
        # the earlier period whose pending items the invoice collected: not the period paid for
        "period_start": START_S - 30 * 86400,
        "period_end": START_S,
        "status": status,
    } | fields


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# --- signatures -------------------------------------------------------------------------------


def test_a_signed_event_verifies_and_translates() -> None:
    payload = body(event("checkout.session.completed", checkout_session()))
    header = sign(payload, SECRET, int(time.time()))
    verified = verify(payload, header, SECRET)
    assert isinstance(verified, stripe.Event)
    assert verified.id == "evt_1QdC4ELkdIwHu7ix"
    assert verified.type == "checkout.session.completed"
    assert translate(verified.to_dict()) == {
        "type": "LinkStripeCustomer",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
    }


def test_sign_follows_stripes_documented_scheme() -> None:
    payload = b'{"id":"evt_1","object":"event"}'
    expected = hmac.new(
        SECRET.encode(), b"1765000000." + payload, hashlib.sha256
    ).hexdigest()  # HMAC-SHA256 of "{t}.{body}" with the endpoint's secret
    assert sign(payload, SECRET, 1_765_000_000) == f"t=1765000000,v1={expected}"


def test_a_tampered_body_is_a_bad_signature() -> None:
    payload = body(event("invoice.paid", invoice()))
    header = sign(payload, SECRET, int(time.time()))
    tampered = payload.replace(b'"amount_due":49900', b'"amount_due":1')
    with pytest.raises(WebhookRejected) as rejected:
        verify(tampered, header, SECRET)
    assert rejected.value.code == "bad_signature"


def test_another_secret_is_a_bad_signature() -> None:
    payload = body(event("invoice.paid", invoice()))
    header = sign(payload, "whsec_someone_else", int(time.time()))
    with pytest.raises(WebhookRejected) as rejected:
        verify(payload, header, SECRET)
    assert rejected.value.code == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "",  # no Stripe-Signature header at all
        "garbage",  # no t=
        f"t={int(time.time())}",  # a timestamp and no signature
        f"t={int(time.time())},v0=abc",  # only a scheme other than v1
    ],
)
def test_a_missing_or_unreadable_header_is_a_bad_signature(header: str) -> None:
    payload = body(event("invoice.paid", invoice()))
    with pytest.raises(WebhookRejected) as rejected:
        verify(payload, header, SECRET)
    assert rejected.value.code == "bad_signature"


def test_a_signature_older_than_the_tolerance_is_stale() -> None:
    payload = body(event("invoice.paid", invoice()))
    now = int(time.time())
    assert verify(payload, sign(payload, SECRET, now - 240), SECRET).id  # within 300 s
    with pytest.raises(WebhookRejected) as rejected:
        verify(payload, sign(payload, SECRET, now - 400), SECRET)
    assert rejected.value.code == "stale"
    assert verify(payload, sign(payload, SECRET, now - 400), SECRET, tolerance_s=600).id


def test_a_forged_old_delivery_is_a_bad_signature_not_stale() -> None:
    payload = body(event("invoice.paid", invoice()))
    header = sign(payload, "whsec_someone_else", int(time.time()) - 3600)
    with pytest.raises(WebhookRejected) as rejected:
        verify(payload, header, SECRET)
    assert rejected.value.code == "bad_signature"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id": "evt_1", "object": "event", "type": ',  # cut off
        b"[]",  # JSON, not an object
        b'{"id": "cus_1", "object": "customer"}',  # an object, not an event
        b'{"id": "evt_1", "object": "event", "type": "invoice.paid"}',  # no data.object
        b"\xff\xfe{}",  # not UTF-8
    ],
)
def test_a_signed_body_that_is_no_event_is_malformed(payload: bytes) -> None:
    header = sign(payload, SECRET, int(time.time())) if payload.isascii() else "t=1,v1=00"
    with pytest.raises(WebhookRejected) as rejected:
        verify(payload, header, SECRET)
    assert rejected.value.code == "malformed"


def test_no_secret_is_a_configuration_error() -> None:
    payload = body(event("invoice.paid", invoice()))
    with pytest.raises(ValueError, match="signing secret"):
        verify(payload, sign(payload, SECRET, int(time.time())), " ")


# --- translation ------------------------------------------------------------------------------


def test_checkout_completed_links_the_customer() -> None:
    assert translate(event("checkout.session.completed", checkout_session())) == {
        "type": "LinkStripeCustomer",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
    }


def test_checkout_names_the_org_by_metadata_without_a_client_reference() -> None:
    session = checkout_session(client_reference_id=None, metadata={"org_id": ORG})
    command = translate(event("checkout.session.completed", session))
    assert command is not None
    assert command["org_id"] == ORG


def test_checkout_with_an_expanded_customer_uses_its_id() -> None:
    session = checkout_session(customer={"id": CUSTOMER, "object": "customer"})
    command = translate(event("checkout.session.completed", session))
    assert command is not None
    assert command["stripe_customer_id"] == CUSTOMER


@pytest.mark.parametrize("kind", ["customer.subscription.created", "customer.subscription.updated"])
@pytest.mark.parametrize("status", ["active", "trialing"])
def test_an_active_subscription_activates(kind: str, status: str) -> None:
    assert translate(event(kind, subscription(status))) == {
        "type": "ActivateSubscription",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
        "stripe_subscription_id": SUBSCRIPTION,
        "tier": "professional",
        "subscription_status": status,
        "period_start_utc": PERIOD_START,  # from the item, where API 2026-10-28 has it
        "period_end_utc": PERIOD_END,
    }


def test_the_tier_falls_back_to_the_prices_lookup_key() -> None:
    sub = subscription(metadata={"org_id": ORG})  # made outside Checkout: no tier in metadata
    sub["items"]["data"][0]["price"] = price(lookup_key="starter")
    command = translate(event("customer.subscription.created", sub))
    assert command is not None
    assert command["tier"] == "starter"


def test_an_older_subscription_carries_its_period_itself() -> None:
    sub = subscription()
    item = sub["items"]["data"][0]
    del item["current_period_start"], item["current_period_end"]  # API versions before 2025-03-31
    sub |= {"current_period_start": START_S, "current_period_end": END_S}
    command = translate(event("customer.subscription.updated", sub))
    assert command is not None
    assert (command["period_start_utc"], command["period_end_utc"]) == (PERIOD_START, PERIOD_END)
    assert command["period_start_utc"].tzinfo is UTC


@pytest.mark.parametrize("status", ["past_due", "unpaid", "incomplete"])
def test_a_subscription_waiting_for_payment_is_left_to_the_invoices(status: str) -> None:
    assert translate(event("customer.subscription.updated", subscription(status))) is None


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired", "paused"])
def test_a_subscription_that_ended_cancels(status: str) -> None:
    assert translate(event("customer.subscription.updated", subscription(status))) == {
        "type": "CancelSubscription",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
        "stripe_subscription_id": SUBSCRIPTION,
        "subscription_status": status,
    }


def test_a_deleted_subscription_cancels() -> None:
    deleted = subscription("canceled", canceled_at=END_S, ended_at=END_S)
    assert translate(event("customer.subscription.deleted", deleted)) == {
        "type": "CancelSubscription",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
        "stripe_subscription_id": SUBSCRIPTION,
        "subscription_status": "canceled",
    }


def test_a_paid_invoice_is_recorded_with_the_period_it_pays_for() -> None:
    assert translate(event("invoice.paid", invoice())) == {
        "type": "RecordInvoicePaid",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
        "stripe_subscription_id": SUBSCRIPTION,
        "invoice_id": INVOICE,
        "period_start_utc": PERIOD_START,  # the line's period, not the invoice's own
        "period_end_utc": PERIOD_END,
    }


def test_a_failed_payment_is_recorded() -> None:
    assert translate(event("invoice.payment_failed", invoice("open"))) == {
        "type": "RecordPaymentFailed",
        "org_id": ORG,
        "stripe_event_id": "evt_1QdC4ELkdIwHu7ix",
        "stripe_customer_id": CUSTOMER,
        "stripe_subscription_id": SUBSCRIPTION,
        "invoice_id": INVOICE,
    }


def test_an_older_invoice_has_its_subscription_details_at_the_top() -> None:
    older = invoice(
        parent=None,  # API versions before 2025-03-31
        subscription=SUBSCRIPTION,
        subscription_details={"metadata": {"org_id": ORG, "tier": "professional"}},
    )
    command = translate(event("invoice.payment_failed", older))
    assert command is not None
    assert (command["org_id"], command["stripe_subscription_id"]) == (ORG, SUBSCRIPTION)


@pytest.mark.parametrize(
    "kind",
    [
        "customer.created",
        "customer.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.upcoming",
        "payment_intent.succeeded",
        "checkout.session.expired",
        "billing.meter.error_report_triggered",
    ],
)
def test_other_event_types_are_ignored(kind: str) -> None:
    assert translate(event(kind, {"id": "obj_1", "object": kind.partition(".")[0]})) is None


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("checkout.session.completed", checkout_session(client_reference_id=None)),
        ("customer.subscription.created", subscription(metadata={"tier": "starter"})),
        ("customer.subscription.deleted", subscription("canceled", metadata={})),
        ("invoice.paid", invoice(parent={"type": "subscription_details",
                                         "subscription_details": {"metadata": {}}})),
        ("invoice.payment_failed", invoice("open", parent=None)),
    ],
)  # fmt: skip
def test_a_handled_event_without_an_org_is_refused(kind: str, obj: dict[str, Any]) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        translate(event(kind, obj))
    assert rejected.value.code == "unknown_org"
    assert str(obj["id"]) in str(rejected.value)


@pytest.mark.parametrize("tier", ["free", "platinum"])
def test_a_subscription_to_no_paid_tier_is_refused(tier: str) -> None:
    sub = subscription(metadata={"org_id": ORG, "tier": tier})
    with pytest.raises(WebhookRejected) as rejected:
        translate(event("customer.subscription.created", sub))
    assert rejected.value.code == "unknown_tier"


def test_a_subscription_naming_no_tier_is_refused() -> None:
    sub = subscription(metadata={"org_id": ORG})
    sub["items"]["data"][0]["price"] = price(lookup_key=None)
    with pytest.raises(WebhookRejected) as rejected:
        translate(event("customer.subscription.created", sub))
    assert rejected.value.code == "unknown_tier"


def test_an_unknown_subscription_status_is_refused() -> None:
    with pytest.raises(WebhookRejected) as rejected:
        translate(event("customer.subscription.updated", subscription("suspended")))
    assert rejected.value.code == "unknown_status"


def test_a_checkout_without_a_customer_is_malformed() -> None:
    with pytest.raises(WebhookRejected) as rejected:
        translate(event("checkout.session.completed", checkout_session(customer=None)))
    assert rejected.value.code == "malformed"
