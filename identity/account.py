"""The account aggregate: an organisation's plan (its tier) and its Stripe subscription.

One account per organisation, keyed by the organisation's id; an account nothing happened to
is on the free tier. The tier changes only through these commands:

- `SetTier` (an operator's command: a contract, a comp, a correction);
- the billing commands the Stripe webhooks become (`billing.webhooks.translate`):
  `LinkStripeCustomer`, `ActivateSubscription`, `RecordInvoicePaid`, `RecordPaymentFailed`,
  `CancelSubscription`;
- `EnforceGrace`, which the billing sweeper sends for accounts past due: a payment that failed
  more than GRACE_PERIOD ago and no invoice paid since moves the account to the free tier;
  the tier paid for (`plan`) is kept, and an `InvoicePaid` restores it.

A Stripe event counts once: the account keeps the ids of its latest SEEN_EVENTS Stripe events
(bounded; Stripe retries a webhook for three days, far fewer events than that per account),
and a command of an event already seen is accepted with no events (a replayed webhook is a
no-op). Events arriving out of order are answered by state, not by arrival: an invoice paid
for an invoice already recorded as paid is a no-op, a failure of an invoice already paid
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from billing.tiers import TIERS
from identity.aggregate import Command, Event, Rejected, evolve_with, replay_with

FREE = "free"
GRACE_PERIOD = timedelta(days=7)
SEEN_EVENTS = 256
SUBSCRIPTION_COMMANDS = frozenset(
    {
        "LinkStripeCustomer",
        "ActivateSubscription",
        "RecordInvoicePaid",
        "RecordPaymentFailed",
        "CancelSubscription",
    }
)


@dataclass(frozen=True)
class Account:
    """An organisation's plan; `version` counts the events folded into it."""

    org_id: str
    version: int = 0
    tier: str = FREE  # the tier in force
    plan: str = FREE  # the tier paid for or granted (kept through a downgrade for non-payment)
    status: str = "none"  # none, active, past_due, canceled
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    period_start_utc: datetime | None = None
    period_end_utc: datetime | None = None
    grace_until_utc: datetime | None = None
    failed_invoice_id: str | None = None
    paid_invoices: tuple[str, ...] = ()  # the latest SEEN_EVENTS invoices paid
    seen: tuple[str, ...] = ()  # the latest SEEN_EVENTS Stripe event ids


def tier_of(value: object) -> str:
    name = str(value)
    if name not in TIERS:
        known = ", ".join(TIERS)
        raise Rejected("unknown_tier", f"unknown tier {value!r}; one of {known}")
    return name


def _event(kind: str, command: Command, **fields: Any) -> Event:
    stripe_event = command.get("stripe_event_id")
    extra = {"stripe_event_id": stripe_event} if stripe_event is not None else {}
    return {"type": kind, "org_id": command["org_id"], "at_utc": command["at_utc"]} | extra | fields


def _tier_change(state: Account, command: Command, tier: str, reason: str) -> list[Event]:
    if tier == state.tier:
        return []
    return [_event("TierChanged", command, tier=tier, previous_tier=state.tier, reason=reason)]


def decide(state: Account, command: Command) -> list[Event]:
    """The events `command` causes on `state`; raises Rejected when the state forbids it."""
    kind = command["type"]
    decider = _DECIDERS.get(kind)
    if decider is None:
        raise Rejected("unknown_command", f"the account aggregate has no command {kind!r}")
    if kind in SUBSCRIPTION_COMMANDS:
        stripe_event = command.get("stripe_event_id")
        if not stripe_event:
            raise Rejected("invalid", f"{kind} needs the Stripe event it comes from")
        if stripe_event in state.seen:
            return []  # a webhook delivered again
    return decider(state, command)


def _set_tier(state: Account, command: Command) -> list[Event]:
    tier = tier_of(command["tier"])
    reason = str(command.get("reason") or "set by an operator")
    return _tier_change(state, command, tier, reason)


def _link(state: Account, command: Command) -> list[Event]:
    customer = str(command["stripe_customer_id"])
    if state.stripe_customer_id not in (None, customer):
        raise Rejected(
            "conflict",
            f"organisation {state.org_id} is already Stripe customer {state.stripe_customer_id}",
        )
    return [_event("StripeCustomerLinked", command, stripe_customer_id=customer)]


def _activate(state: Account, command: Command) -> list[Event]:
    tier = tier_of(command["tier"])
    if tier == FREE:
        raise Rejected("invalid", "a subscription is to a paid tier, not free")
    activated = _event(
        "SubscriptionActivated",
        command,
        tier=tier,
        stripe_customer_id=command.get("stripe_customer_id") or state.stripe_customer_id,
        stripe_subscription_id=command["stripe_subscription_id"],
        subscription_status=command.get("subscription_status") or "active",
        period_start_utc=command.get("period_start_utc"),
        period_end_utc=command.get("period_end_utc"),
    )
    if state.status == "past_due":  # a plan change while past due: the new plan waits for payment
        return [activated]
    return [activated, *_tier_change(state, command, tier, "subscription")]


def _paid(state: Account, command: Command) -> list[Event]:
    invoice = str(command["invoice_id"])
    if invoice in state.paid_invoices:
        return []
    paid = _event(
        "InvoicePaid",
        command,
        invoice_id=invoice,
        period_start_utc=command.get("period_start_utc"),
        period_end_utc=command.get("period_end_utc"),
    )
    restore = state.plan if state.status in ("past_due", "active") else state.tier
    return [paid, *_tier_change(state, command, restore, "invoice paid")]


def _failed(state: Account, command: Command) -> list[Event]:
    invoice = str(command["invoice_id"])
    if invoice in state.paid_invoices:
        return []  # paid meanwhile (a retry succeeded before this failure arrived)
    grace = state.grace_until_utc if state.status == "past_due" else None
    grace_until = grace or command["at_utc"] + GRACE_PERIOD
    return [_event("PaymentFailed", command, invoice_id=invoice, grace_until_utc=grace_until)]


def _cancel(state: Account, command: Command) -> list[Event]:
    if state.status in ("none", "canceled"):
        return []
    canceled = _event(
        "SubscriptionCanceled", command, stripe_subscription_id=state.stripe_subscription_id
    )
    return [canceled, *_tier_change(state, command, FREE, "subscription canceled")]


def _enforce(state: Account, command: Command) -> list[Event]:
    due = state.grace_until_utc
    if state.status != "past_due" or due is None:
        raise Rejected("not_due", f"account {state.org_id} is not past due")
    if command["at_utc"] < due:
        raise Rejected("not_due", f"account {state.org_id} is in its grace period until {due}")
    if state.tier == FREE:
        return []
    downgraded = _event("DowngradedForNonPayment", command, invoice_id=state.failed_invoice_id)
    return [downgraded, *_tier_change(state, command, FREE, "payment failed")]


_DECIDERS = {
    "SetTier": _set_tier,
    "LinkStripeCustomer": _link,
    "ActivateSubscription": _activate,
    "RecordInvoicePaid": _paid,
    "RecordPaymentFailed": _failed,
    "CancelSubscription": _cancel,
    "EnforceGrace": _enforce,
}
COMMANDS = frozenset(_DECIDERS)


def _seen(state: Account, event: Event) -> tuple[str, ...]:
    stripe_event = event.get("stripe_event_id")
    if stripe_event is None or stripe_event in state.seen:
        return state.seen
    return (*state.seen, str(stripe_event))[-SEEN_EVENTS:]


def _tier_changed(state: Account, event: Event) -> Account:
    tier = str(event["tier"])
    # an operator's tier or a subscription's is the plan; a downgrade for non-payment is not
    plan = state.plan if event.get("reason") == "payment failed" else tier
    return replace(state, tier=tier, plan=plan, seen=_seen(state, event))


def _linked(state: Account, event: Event) -> Account:
    return replace(state, stripe_customer_id=event["stripe_customer_id"], seen=_seen(state, event))


def _activated(state: Account, event: Event) -> Account:
    return replace(
        state,
        plan=str(event["tier"]),
        status="past_due" if state.status == "past_due" else "active",
        stripe_customer_id=event.get("stripe_customer_id") or state.stripe_customer_id,
        stripe_subscription_id=event["stripe_subscription_id"],
        period_start_utc=event.get("period_start_utc") or state.period_start_utc,
        period_end_utc=event.get("period_end_utc") or state.period_end_utc,
        seen=_seen(state, event),
    )


def _invoice_paid(state: Account, event: Event) -> Account:
    return replace(
        state,
        status="active" if state.status in ("past_due", "active") else state.status,
        grace_until_utc=None,
        failed_invoice_id=None,
        paid_invoices=(*state.paid_invoices, str(event["invoice_id"]))[-SEEN_EVENTS:],
        period_start_utc=event.get("period_start_utc") or state.period_start_utc,
        period_end_utc=event.get("period_end_utc") or state.period_end_utc,
        seen=_seen(state, event),
    )


def _payment_failed(state: Account, event: Event) -> Account:
    return replace(
        state,
        status="past_due",
        grace_until_utc=event["grace_until_utc"],
        failed_invoice_id=event["invoice_id"],
        seen=_seen(state, event),
    )


def _canceled(state: Account, event: Event) -> Account:
    return replace(
        state,
        status="canceled",
        plan=FREE,
        stripe_subscription_id=None,
        grace_until_utc=None,
        failed_invoice_id=None,
        seen=_seen(state, event),
    )


def _downgraded(state: Account, event: Event) -> Account:
    return replace(state, seen=_seen(state, event))


_FOLDS = {
    "TierChanged": _tier_changed,
    "StripeCustomerLinked": _linked,
    "SubscriptionActivated": _activated,
    "InvoicePaid": _invoice_paid,
    "PaymentFailed": _payment_failed,
    "SubscriptionCanceled": _canceled,
    "DowngradedForNonPayment": _downgraded,
}


def evolve(state: Account, event: Event) -> Account:
    return evolve_with(_FOLDS, state, event)


def replay(org_id: str, events: Iterable[Mapping[str, Any]]) -> Account:
    return replay_with(Account(org_id), evolve, [dict(e) for e in events])
