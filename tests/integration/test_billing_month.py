"""A billing month, end to end on the local stack and stripe-mock: three organisations on three
tiers send requests through the API; the meter's windows, the usage read model, `/v1/usage`
and the Billing Meters events sent to Stripe all equal an independent count kept from the
answers. Stripe's webhooks (signed as Stripe signs them) move the tiers: a replayed one
changes nothing, a failed payment downgrades only after the grace period, and a paid invoice
restores the plan."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis

from billing import webhooks
from billing.stripe_gateway import StripeGateway
from identity import provisioning
from identity.account import GRACE_PERIOD
from optibid.billing_jobs import GraceSweeper, UsageReporter
from optibid.settings import Settings
from projections import identity_reads
from projections.redis_sink import values_key
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from tests.integration.identity_util import IdentityPath, api_up, identity_path, wait_until
from tests.integration.kafka_util import read_topic
from tests.integration.streams_util import ChildProcess, WorkerProcess, free_port
from tests.integration.stripe_peer import API_KEY, stripe_mock  # noqa: F401  # the fixture

WEBHOOK_KEY = "whsec_optibidMonthTest"
LOCATIONS = [f"LOC{n:02d}" for n in range(12)]
REFUSALS: list[str] = []  # the bodies of refused requests under load, for a failure's message


@pytest.fixture(scope="module")
def month(
    stack_settings: Settings,
    stripe_mock: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IdentityPath]:
    test_id = f"t{uuid.uuid4().hex[:10]}"
    logs = tmp_path_factory.mktemp("month")
    env = {
        "OPTIBID_STRIPE_API_KEY": API_KEY,
        "OPTIBID_STRIPE_API_BASE": stripe_mock,
        "OPTIBID_STRIPE_WEBHOOK_KEY": WEBHOOK_KEY,
        "OPTIBID_STRIPE_PRICES": json.dumps(
            {"starter": "price_starter", "professional": "price_pro"}
        ),
        "OPTIBID_METER_WINDOW_S": "10",
        "OPTIBID_METER_LATENESS_S": "1",
    }
    with identity_path(stack_settings, test_id, logs, env) as path:
        meter = WorkerProcess(test_id, logs, command="meter")
        meter.start(env)
        projector = ChildProcess(logs / f"{test_id}-project-usage.log")
        projector.spawn(
            [sys.executable, "-m", "optibid", "project-usage", "--metrics-port", "0"], path.env
        )
        path.processes["meter"] = meter
        path.processes["project-usage"] = projector
        _latest_prices(stack_settings, path.schema)
        try:
            yield path
        except Exception:
            print(path.logs())
            raise


def _latest_prices(settings: Settings, schema: str) -> None:
    """Latest LMPs in Redis, as the projector writes them: what the requests read."""
    client = redis.Redis.from_url(settings.redis_dsn)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for location in LOCATIONS:
        value = {
            "iso": "PJM", "market": "RT_5MIN", "location_id": location,
            "interval_start_utc": (now - timedelta(minutes=5)).isoformat(),
            "interval_minutes": 5, "location_name": location, "location_type": "NODE",
            "lmp_usd_per_mwh": 31.5, "energy_usd_per_mwh": None,
            "congestion_usd_per_mwh": None, "loss_usd_per_mwh": None, "revision": 1,
            "supersedes_revision": None, "run_id": "run-1", "source_dataset": "lmp_rt_5min",
            "event_id": f"event-{location}", "occurred_at_utc": now.isoformat(),
            "recorded_at_utc": now.isoformat(), "source": "connector.pjm",
        }  # fmt: skip
        client.hset(values_key(schema, "lmp"), f"PJM|RT_5MIN|{location}", json.dumps(value))
    client.close()


def _org(path: IdentityPath, name: str) -> tuple[str, str, str]:
    """A new organisation with an owner and an analyst's API key: (org_id, owner, key)."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@{path.test_id}.example.com"
    owner = path.register(email, "marmalade-quartz-lantern-8")
    org = provisioning.create_organization(path.bus, name=name, owner_user_id=owner, timeout_s=30)
    actor = provisioning.Actor(owner, "user", "test", org_id=org)
    key = provisioning.create_api_key(
        path.bus, org_id=org, name="desk", role="analyst", scope="read", actor=actor,
        timeout_s=30,
    )  # fmt: skip
    path.member(org, owner)
    return org, owner, key.api_key


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
        "api_version": "2026-10-28.endive", "created": int(time.time()),
        "data": {"object": obj}, "livemode": False, "type": kind,
    }  # fmt: skip


def _subscription(org: str, tier: str, customer: str) -> dict[str, Any]:
    start = int(time.time())
    return {
        "id": f"sub_{org[-8:]}", "object": "subscription", "customer": customer,
        "status": "active", "metadata": {"org_id": org, "tier": tier},
        "items": {"object": "list", "has_more": False, "data": [{
            "id": "si_1", "object": "subscription_item", "current_period_start": start,
            "current_period_end": start + 31 * 86400,
            "price": {"id": f"price_{tier}", "object": "price", "lookup_key": tier},
        }]},
    }  # fmt: skip


def _invoice(org: str, invoice_id: str, customer: str, status: str) -> dict[str, Any]:
    return {
        "id": invoice_id, "object": "invoice", "customer": customer, "status": status,
        "amount_due": 4900, "currency": "usd", "metadata": {},
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": f"sub_{org[-8:]}", "metadata": {"org_id": org}}},
        "lines": {"object": "list", "has_more": False, "data": []},
    }  # fmt: skip


def _deliver(path: IdentityPath, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    signature = webhooks.sign(body, WEBHOOK_KEY, int(time.time()))
    return httpx.post(
        f"{path.url}/v1/billing/stripe/webhook", content=body, timeout=30,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )  # fmt: skip


def _account(path: IdentityPath, org: str) -> dict[str, Any]:
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        return identity_reads.account(conn, path.schema, org)


def _version(path: IdentityPath, org: str) -> int:
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        return identity_reads.version(conn, path.schema, "account", org) or 0


class Recording:
    """The real gateway (on stripe-mock), with every meter event it sent remembered."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.gateway = gateway
        self.sent: list[tuple[str, int, str]] = []

    def report_usage(
        self, event_name: str, customer_id: str, value: int, identifier: str, timestamp: datetime
    ) -> None:
        self.gateway.report_usage(event_name, customer_id, value, identifier, timestamp)
        self.sent.append((customer_id, value, identifier))


def test_a_month_of_three_organisations_on_three_tiers(month: IdentityPath) -> None:
    path = month
    free, _, free_key = _org(path, "Free Desk")
    starter, _, starter_key = _org(path, "Starter Desk")
    pro, _, pro_key = _org(path, "Pro Desk")
    # the starter desk subscribes through Stripe (the webhooks as Stripe sends them); the
    # professional desk has a contract an operator enters
    customer = f"cus_{starter[-10:]}"
    checkout = _event("checkout.session.completed", {
        "id": "cs_1", "object": "checkout.session", "client_reference_id": starter,
        "customer": customer, "metadata": {}, "mode": "subscription", "status": "complete",
        "subscription": f"sub_{starter[-8:]}",
    })  # fmt: skip
    assert _deliver(path, checkout).json()["command"] == "LinkStripeCustomer"
    created = _event("customer.subscription.created", _subscription(starter, "starter", customer))
    answer = _deliver(path, created)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "command": "ActivateSubscription",
                             "outcome": "accepted"}  # fmt: skip
    provisioning.set_tier(path.bus, org_id=pro, tier="professional", timeout_s=30)
    wait_until(lambda: _account(path, starter)["tier"] == "starter", 30, "the starter tier")
    wait_until(lambda: _account(path, pro)["tier"] == "professional", 30, "the pro tier")

    # a webhook delivered again is decided once: no event, the same version
    version = _version(path, starter)
    again = _deliver(path, created)
    assert again.status_code == 200
    assert again.json()["outcome"] == "accepted"
    time.sleep(1.0)
    assert _version(path, starter) == version

    # the month's requests: an independent count from the answers
    rows: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    with httpx.Client(base_url=path.url, timeout=30) as client:
        for org, key, count in ((free, free_key, 30), (starter, starter_key, 40),
                                (pro, pro_key, 60)):  # fmt: skip
            for n in range(count):
                chosen = LOCATIONS[: 1 + (n * 7) % len(LOCATIONS)]
                answer = client.get("/v1/lmp/latest", params={"location_id": chosen},
                                    headers={"X-API-Key": key})  # fmt: skip
                if answer.status_code == 200:
                    rows[org] += len(answer.json()["data"])
                    requests[org] += 1
                    assert "ratelimit-policy" in answer.headers
                else:
                    assert answer.status_code == 429, answer.text
                    assert answer.json()["code"] == "rate_limited"
                    assert int(answer.headers["retry-after"]) >= 1
                    refused[org] += 1
            today = datetime.now(UTC).date()
            estimate = client.get(
                "/v1/lmp", headers={"X-API-Key": key},
                params={"dry_run": "true", "start": str(today), "end": str(today + timedelta(1))},
            )  # fmt: skip
            if org != free:  # the free desk is over its burst by now
                assert estimate.status_code == 200, estimate.text
                cost = estimate.json()
                assert (cost["dry_run"], cost["rows"], cost["quota"]["within"]) == (True, 0, True)
    # the free tier's burst is 20 (a request more per second refills): nothing else was limited
    assert 5 <= refused[free] <= 10
    assert refused[starter] == refused[pro] == 0
    assert all(rows[o] > 0 for o in (free, starter, pro))

    # the meter's windows close (10 s windows, 1 s lateness) and reach the read model
    def usage_of(org: str, key: str) -> dict[str, Any]:
        answer = httpx.get(f"{path.url}/v1/usage", headers={"X-API-Key": key}, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    for org, key in ((free, free_key), (starter, starter_key), (pro, pro_key)):
        wait_until(lambda o=org, k=key: usage_of(o, k)["totals"]["rows"] == rows[o], 90,
                   f"the usage of {org}")  # fmt: skip
        usage = usage_of(org, key)
        assert usage["totals"]["requests"] >= requests[org]  # + /v1/usage's own requests
        assert usage["quota"]["used"] == rows[org]
        assert usage["tier"] == {free: "free", starter: "starter", pro: "professional"}[org]
        limit = usage["quota"]["limit"]
        assert usage["quota"]["remaining"] == limit - rows[org]

    # the topic of closed windows says the same
    serde = AvroSerde(RegistryClient(path.settings.schema_registry_url), ContractSet())
    windows = [w for _, w in read_topic(path.settings, path.catalog.usage("windows").name, serde)]
    by_org: Counter[str] = Counter()
    for window in windows:
        by_org[window["org_id"]] += window["rows"]
    assert {o: by_org[o] for o in (free, starter, pro)} == {
        o: rows[o] for o in (free, starter, pro)
    }

    # Stripe's Billing Meters: the starter desk (the one Stripe customer) is billed its rows,
    # once per window; reading the windows again sends the same identifiers
    gateway = Recording(StripeGateway(API_KEY, path.env["OPTIBID_STRIPE_API_BASE"]))
    reporter = UsageReporter(
        path.settings.bootstrap_servers, serde, path.catalog, path.settings.postgres_dsn,
        path.schema, gateway, "optibid_rows",
    )  # fmt: skip
    reporter.run(threading.Event(), until_caught_up=True)
    billed = [s for s in gateway.sent if s[0] == customer]
    assert sum(value for _, value, _ in billed) == rows[starter]
    assert {c for c, _, _ in gateway.sent} == {customer}  # free and contract desks: not metered
    starter_windows = {w["event_id"] for w in windows if w["org_id"] == starter and w["rows"]}
    assert {identifier for _, _, identifier in billed} == starter_windows
    again_gateway = Recording(StripeGateway(API_KEY, path.env["OPTIBID_STRIPE_API_BASE"]))
    reporter.group += "-again"  # a second reporter from the start: a retry, as Stripe sees it
    reporter.gateway = again_gateway
    reporter.run(threading.Event(), until_caught_up=True)
    assert sorted(again_gateway.sent) == sorted(gateway.sent)

    # a failed payment: still starter during the grace period, free after it
    failed = _event("invoice.payment_failed", _invoice(starter, "in_1", customer, "open"))
    assert _deliver(path, failed).json()["command"] == "RecordPaymentFailed"
    wait_until(lambda: _account(path, starter)["status"] == "past_due", 30, "past due")
    assert _account(path, starter)["tier"] == "starter"
    sweeper = GraceSweeper(path.bus, path.settings.postgres_dsn, path.schema, timeout_s=30)
    assert sweeper.sweep(datetime.now(UTC)) == []  # within the grace period: nobody is due
    later = datetime.now(UTC) + GRACE_PERIOD + timedelta(minutes=1)
    assert sweeper.sweep(later) == [(starter, "downgraded")]
    wait_until(lambda: _account(path, starter)["tier"] == "free", 30, "the downgrade")
    owner_view = httpx.get(f"{path.url}/v1/usage", headers={"X-API-Key": starter_key}, timeout=30)
    assert owner_view.json()["plan"] == "starter"  # the plan paid for is kept
    # the invoice paid after all: the plan is back
    paid = _event("invoice.paid", _invoice(starter, "in_1", customer, "paid"))
    assert _deliver(path, paid).json() == {"received": True, "command": "RecordInvoicePaid",
                                           "outcome": "accepted"}  # fmt: skip
    wait_until(lambda: _account(path, starter)["tier"] == "starter", 30, "the restored tier")
    assert _account(path, starter)["status"] == "active"


def test_webhooks_that_do_not_verify_are_refused_by_name(month: IdentityPath) -> None:
    event = _event("invoice.paid", _invoice("org_x", "in_9", "cus_x", "paid"))
    body = json.dumps(event).encode()
    forged = webhooks.sign(body, "whsec_someone_else", int(time.time()))
    stale = webhooks.sign(body, WEBHOOK_KEY, int(time.time()) - 3600)
    for signature, code in ((forged, "bad_signature"), (stale, "stale")):
        answer = httpx.post(
            f"{month.url}/v1/billing/stripe/webhook", content=body, timeout=30,
            headers={"Stripe-Signature": signature},
        )  # fmt: skip
        assert (answer.status_code, answer.json()["code"]) == (400, code)
    unknown = _deliver(month, event)  # signed well, but for an organisation nobody knows
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_org")
    ignored = _deliver(month, _event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert ignored.json() == {"received": True, "command": None, "outcome": "ignored"}


def test_the_free_tier_is_refused_what_its_plan_lacks(month: IdentityPath) -> None:
    _, _, key = _org(month, "Another Free Desk")
    headers = {"X-API-Key": key}
    kpis = httpx.get(f"{month.url}/v1/kpis/latest", headers=headers, timeout=30)
    assert (kpis.status_code, kpis.json()["code"], kpis.json()["upgrade_to"]) == (
        403, "tier_dataset", "professional")  # fmt: skip
    today = datetime.now(UTC).date()
    day = {"start": str(today), "end": str(today + timedelta(days=1))}
    csv = httpx.get(f"{month.url}/v1/lmp", params={**day, "format": "csv"}, headers=headers,
                    timeout=30)  # fmt: skip
    assert (csv.status_code, csv.json()["code"]) == (403, "tier_csv")
    old = httpx.get(f"{month.url}/v1/lmp", headers=headers, timeout=30,
                    params={"start": "2024-01-01", "end": "2024-01-02"})  # fmt: skip
    assert (old.status_code, old.json()["code"]) == (403, "tier_history")


def _drive(url: str, key: str, per_s: float, seconds: float, out: list[tuple[float, int]]) -> None:
    """Requests at `per_s` for `seconds`, each (time sent, status) into `out`."""
    with httpx.Client(base_url=url, timeout=30) as client:
        began = time.monotonic()
        n = 0
        while (now := time.monotonic()) - began < seconds:
            answer = client.get("/v1/lmp/latest", headers={"X-API-Key": key},
                                params={"location_id": "LOC00"})  # fmt: skip
            out.append((now, answer.status_code))
            if answer.status_code != 200:
                REFUSALS.append(answer.text)
            n += 1
            pause = began + n / per_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def test_each_key_is_held_to_its_rate_and_the_others_are_unaffected(month: IdentityPath) -> None:
    """The load test: two keys (of two organisations) at twice their tier's rate are each held
    to it within 5 %; a key of a third organisation, sent alongside, is served in full."""
    desks = [_org(month, name) for name in ("Busy Desk", "Busier Desk", "Quiet Desk")]
    for org, _, _ in desks:
        provisioning.set_tier(month.bus, org_id=org, tier="professional", timeout_s=30)
    for org, _, _ in desks:
        wait_until(lambda o=org: _account(month, o)["tier"] == "professional", 30, "the tier")
    time.sleep(6)  # the API's tier cache (5 s) has seen it
    tier_rate = 1200 / 60  # professional: 1,200 requests a minute per key
    hot = [desks[0][2], desks[1][2]]
    calm = desks[2][2]
    # each hot key's burst first, as fast as it goes, until it is refused once: from then on
    # (its allowance empty) it earns one request per 1/rate seconds, whatever it sends
    empty_at: dict[str, float] = {}
    for key in hot:
        drained: list[tuple[float, int]] = []
        while not drained or drained[-1][1] == 200:
            _drive(month.url, key, 1000.0, 0.05, drained)
        assert sum(1 for _, status in drained if status == 200) >= 200, REFUSALS[-1:]
        empty_at[key] = drained[-1][0]
    seconds = 10.0
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in [*hot, calm]}
    rates = {hot[0]: 2 * tier_rate, hot[1]: 2 * tier_rate, calm: 3.0}
    threads = [
        threading.Thread(target=_drive, args=(month.url, k, rates[k], seconds, results[k]))
        for k in results
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key in hot:
        sent = results[key]
        elapsed = sent[-1][0] - empty_at[key]
        allowed = sum(1 for _, status in sent if status == 200)
        expected = tier_rate * elapsed
        print(f"key held: {allowed} allowed of {len(sent)} sent, {expected:.1f} expected")
        assert abs(allowed - expected) <= 0.05 * expected, (allowed, expected, len(sent))
        assert len(sent) >= 1.5 * expected  # it was driven well past its rate
        assert all(status in (200, 429) for _, status in sent)
    assert {status for _, status in results[calm]} == {200}, REFUSALS[-3:]


def test_while_redis_is_away_free_is_refused_and_professional_served(
    month: IdentityPath, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The tiers' Redis-down rule, on an API whose Redis does not answer: the free tier is
    refused with 503 (fail closed), the professional tier served unmetered (fail open)."""
    _, _, free_key = _org(month, "Closed Desk")
    pro, _, pro_key = _org(month, "Open Desk")
    provisioning.set_tier(month.bus, org_id=pro, tier="professional", timeout_s=30)
    wait_until(lambda: _account(month, pro)["tier"] == "professional", 30, "the tier")
    port = free_port()
    env = {**month.env, "OPTIBID_API_PORT": str(port), "OPTIBID_REDIS_URL": "redis://127.0.0.1:1/0"}
    api = ChildProcess(tmp_path_factory.mktemp("no-redis") / "api.log")
    api.spawn([sys.executable, "-m", "optibid", "api"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: api_up(url), 60, "the API without Redis")
        today = datetime.now(UTC).date()
        day = {"start": str(today), "end": str(today + timedelta(days=1))}
        closed = httpx.get(f"{url}/v1/lmp", params=day, headers={"X-API-Key": free_key}, timeout=30)
        assert closed.status_code == 503, closed.text
        assert closed.json()["code"] == "limiter_unavailable"
        assert int(closed.headers["retry-after"]) >= 1
        opened = httpx.get(f"{url}/v1/lmp", params=day, headers={"X-API-Key": pro_key}, timeout=30)
        assert opened.status_code == 200, opened.text
        assert "ratelimit" not in opened.headers  # served unmetered: nothing counted
    finally:
        api.stop()
