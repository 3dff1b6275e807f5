"""The account aggregate: tiers change only through its commands; Stripe events count once; a
failed payment downgrades after the grace period and a paid invoice restores the plan."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from identity import account, state
from identity.account import GRACE_PERIOD, SEEN_EVENTS, Account, decide, evolve, replay
from identity.aggregate import Rejected
from identity.handler import COMMAND_SCHEMA, EVENT_SCHEMA, Stored, field_names, handle
from schemas.contracts import ContractSet

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def cmd(kind: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "org_id": "org_1", "at_utc": at, **fields}


def apply(acc: Account, command: dict[str, Any]) -> tuple[Account, list[dict[str, Any]]]:
    events = decide(acc, command)
    for event in events:
        acc = evolve(acc, event)
    return acc, events


def subscribed(tier: str = "professional") -> Account:
    acc = Account("org_1")
    acc, _ = apply(
        acc, cmd("LinkStripeCustomer", stripe_event_id="evt_1", stripe_customer_id="cus_1")
    )
    acc, _ = apply(
        acc,
        cmd(
            "ActivateSubscription",
            stripe_event_id="evt_2",
            stripe_subscription_id="sub_1",
            tier=tier,
            period_start_utc=T0,
            period_end_utc=T0 + timedelta(days=31),
        ),
    )
    return acc


def test_a_new_account_is_free_and_a_subscription_moves_it_to_its_tier() -> None:
    assert Account("org_1").tier == "free"
    acc = subscribed("starter")
    assert (acc.tier, acc.plan, acc.status) == ("starter", "starter", "active")
    assert acc.stripe_customer_id == "cus_1"
    assert acc.period_end_utc == T0 + timedelta(days=31)


def test_a_stripe_event_seen_before_is_a_no_op() -> None:
    acc = subscribed()
    again = cmd(
        "ActivateSubscription",
        stripe_event_id="evt_2",
        stripe_subscription_id="sub_1",
        tier="starter",
    )
    assert decide(acc, again) == []


def test_the_seen_events_are_bounded() -> None:
    acc = subscribed()
    for n in range(SEEN_EVENTS + 50):
        acc, _ = apply(
            acc, cmd("RecordInvoicePaid", stripe_event_id=f"evt_p{n}", invoice_id=f"in_{n}")
        )
    assert len(acc.seen) == SEEN_EVENTS
    assert len(acc.paid_invoices) == SEEN_EVENTS
    assert acc.seen[-1] == f"evt_p{SEEN_EVENTS + 49}"


def test_a_failed_payment_downgrades_after_the_grace_period_and_a_paid_invoice_restores() -> None:
    acc = subscribed("professional")
    failed_at = T0 + timedelta(days=31)
    acc, events = apply(
        acc, cmd("RecordPaymentFailed", failed_at, stripe_event_id="evt_f", invoice_id="in_9")
    )
    assert [e["type"] for e in events] == ["PaymentFailed"]
    assert acc.grace_until_utc == failed_at + GRACE_PERIOD
    assert acc.tier == "professional"  # still served during the grace period
    with pytest.raises(Rejected) as early:
        decide(acc, cmd("EnforceGrace", failed_at + GRACE_PERIOD - timedelta(seconds=1)))
    assert early.value.code == "not_due"
    # a second failure (Stripe's retry) does not push the grace period out
    acc, _ = apply(
        acc,
        cmd(
            "RecordPaymentFailed",
            failed_at + timedelta(days=3),
            stripe_event_id="evt_f2",
            invoice_id="in_9",
        ),
    )
    assert acc.grace_until_utc == failed_at + GRACE_PERIOD
    acc, events = apply(acc, cmd("EnforceGrace", failed_at + GRACE_PERIOD))
    assert [e["type"] for e in events] == ["DowngradedForNonPayment", "TierChanged"]
    assert (acc.tier, acc.plan, acc.status) == ("free", "professional", "past_due")
    assert decide(acc, cmd("EnforceGrace", failed_at + GRACE_PERIOD * 2)) == []
    acc, events = apply(acc, cmd("RecordInvoicePaid", stripe_event_id="evt_p", invoice_id="in_9"))
    assert [e["type"] for e in events] == ["InvoicePaid", "TierChanged"]
    assert (acc.tier, acc.status, acc.grace_until_utc) == ("professional", "active", None)


def test_a_failure_of_an_invoice_already_paid_changes_nothing() -> None:
    acc = subscribed()
    acc, _ = apply(acc, cmd("RecordInvoicePaid", stripe_event_id="evt_p", invoice_id="in_1"))
    assert decide(acc, cmd("RecordPaymentFailed", stripe_event_id="evt_f", invoice_id="in_1")) == []


def test_cancelling_moves_to_free_and_an_operator_sets_any_tier() -> None:
    acc, events = apply(subscribed(), cmd("CancelSubscription", stripe_event_id="evt_c"))
    assert [e["type"] for e in events] == ["SubscriptionCanceled", "TierChanged"]
    assert (acc.tier, acc.plan, acc.status) == ("free", "free", "canceled")
    acc, events = apply(acc, cmd("SetTier", tier="enterprise", reason="contract 42"))
    assert events[0]["previous_tier"] == "free"
    assert events[0]["reason"] == "contract 42"
    assert (acc.tier, acc.plan) == ("enterprise", "enterprise")
    assert decide(acc, cmd("SetTier", tier="enterprise")) == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (cmd("SetTier", tier="platinum"), "unknown_tier"),
        (
            cmd(
                "ActivateSubscription", stripe_event_id="e", stripe_subscription_id="s", tier="free"
            ),
            "invalid",
        ),
        (cmd("RecordInvoicePaid", invoice_id="in_1"), "invalid"),  # no Stripe event
        (cmd("EnforceGrace"), "not_due"),
        (cmd("Refund"), "unknown_command"),
    ],
)
def test_refusals_name_what_was_wrong(command: dict[str, Any], code: str) -> None:
    with pytest.raises(Rejected) as refused:
        decide(Account("org_1"), command)
    assert refused.value.code == code


def test_another_customer_cannot_be_linked() -> None:
    with pytest.raises(Rejected) as refused:
        decide(
            subscribed(),
            cmd("LinkStripeCustomer", stripe_event_id="e9", stripe_customer_id="cus_2"),
        )
    assert refused.value.code == "conflict"


def test_replay_and_the_stored_state_round_trip() -> None:
    acc = subscribed()
    acc, _ = apply(acc, cmd("RecordPaymentFailed", stripe_event_id="evt_f", invoice_id="in_1"))
    assert load_dump(acc) == acc
    events: list[dict[str, Any]] = []
    again = Account("org_1")
    for command in (
        cmd("LinkStripeCustomer", stripe_event_id="evt_1", stripe_customer_id="cus_1"),
        cmd("SetTier", tier="starter"),
    ):
        again, decided = apply(again, command)
        events += decided
    assert replay("org_1", events) == again


def load_dump(acc: Account) -> Account:
    loaded = state.load(state.dump(Stored(acc))).state
    assert isinstance(loaded, Account)
    return loaded


def test_the_handler_decides_account_commands_into_contract_records() -> None:
    values = {
        "event_id": "cmd-1", "occurred_at_utc": T0, "recorded_at_utc": T0, "source": "api",
        "schema_version": 1, "type": "RecordPaymentFailed", "aggregate_type": "account",
        "aggregate_id": "org_9", "org_id": "org_9", "actor_id": "stripe", "actor_kind": "system",
        "stripe_event_id": "evt_x", "invoice_id": "in_x",
    }  # fmt: skip
    record = {name: values.get(name) for name in field_names(COMMAND_SCHEMA)}
    decision = handle(None, record, T0)
    assert decision.outcome is not None
    assert decision.outcome["accepted"]
    [event] = decision.events
    assert (event["type"], event["org_id"], event["grace_until_utc"]) == (
        "PaymentFailed", "org_9", T0 + GRACE_PERIOD,
    )  # fmt: skip
    parsed = ContractSet().get(EVENT_SCHEMA).parsed
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event)
    assert decision.stored is not None
    assert isinstance(decision.stored.state, account.Account)
    assert decision.stored.state.status == "past_due"
