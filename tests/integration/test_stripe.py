"""billing.stripe_gateway against stripe-mock (tests/integration/stripe_peer.py): the requests
it sends (parameters, idempotency keys) and what it makes of the answers and the errors.

stripe-mock answers with fixture objects and keeps no state, so these tests check what the
gateway sends and how it reads Stripe's shapes, not what Stripe would store. Every request
goes through a recording HTTP client of the stripe library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from billing.stripe_gateway import BillingGatewayError, StripeGateway, meter_event_key
from tests.integration.streams_util import free_port
from tests.integration.stripe_peer import (
    API_KEY,
    StripeMockError,
    start_stripe_mock,
    stripe_mock,  # noqa: F401  # the fixture
)

ORG = "org_7c9e6679"
PRICES = {
    "starter": "price_optibid_starter",
    "professional": "price_optibid_professional",
    "enterprise": "price_optibid_enterprise",
}
PAID_TIERS = tuple(PRICES)


@dataclass(frozen=True)
class Exchange:
    """One request the gateway sent and stripe-mock's answer."""

    method: str
    path: str
    headers: Mapping[str, str]
    form: dict[str, list[str]]  # the form body (POST) or the query (GET)
    status: int
    response_headers: Mapping[str, str]


class RecordingClient(stripe.UrllibClient):
    """The stripe library's standard-library HTTP client, keeping every exchange."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        sent_headers = dict(headers or {})
        body, status, response_headers = super().request(method, url, sent_headers, post_data)
        parts = urlsplit(url)
        sent = post_data.decode() if isinstance(post_data, bytes) else post_data or parts.query
        self.exchanges.append(
            Exchange(
                method=method.upper(),
                path=parts.path,
                headers={k.lower(): v for k, v in sent_headers.items()},
                form=parse_qs(str(sent)),
                status=status,
                response_headers={k.lower(): v for k, v in response_headers.items()},
            )
        )
        return body, status, response_headers

    def only(self) -> Exchange:
        assert len(self.exchanges) == 1, self.exchanges
        return self.exchanges[0]


@pytest.fixture
def recorder() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def gateway(stripe_mock: str, recorder: RecordingClient) -> StripeGateway:  # noqa: F811
    return StripeGateway(API_KEY, api_base=stripe_mock, prices=PRICES, http_client=recorder)


def test_a_customer_is_created_under_the_commands_idempotency_key(
    gateway: StripeGateway, recorder: RecordingClient
) -> None:
    customer_id = gateway.ensure_customer(ORG, "billing@acme.example", "Acme Power", "cmd-0001")
    assert customer_id.startswith("cus_")
    sent = recorder.only()
    assert (sent.method, sent.path, sent.status) == ("POST", "/v1/customers", 200)
    assert sent.form == {
        "email": ["billing@acme.example"],
        "name": ["Acme Power"],
        "metadata[org_id]": [ORG],
    }
    assert sent.headers["idempotency-key"] == "cmd-0001"
    assert sent.response_headers["idempotency-key"] == "cmd-0001"  # stripe-mock echoes it


@pytest.mark.parametrize("tier", PAID_TIERS)
def test_checkout_subscribes_to_the_tiers_price_and_names_org_and_tier(
    gateway: StripeGateway, recorder: RecordingClient, tier: str
) -> None:
    url = gateway.checkout_session(
        "cus_RfX1Ajm5mW4b2c",
        ORG,
        tier,
        "https://app.optibid.example/billing/done",
        "https://app.optibid.example/billing",
        f"cmd-checkout-{tier}",
    )
    assert url.startswith("https://")
    sent = recorder.only()
    assert (sent.method, sent.path, sent.status) == ("POST", "/v1/checkout/sessions", 200)
    assert sent.form == {
        "mode": ["subscription"],
        "customer": ["cus_RfX1Ajm5mW4b2c"],
        "client_reference_id": [ORG],
        "line_items[0][price]": [PRICES[tier]],
        "line_items[0][quantity]": ["1"],
        "subscription_data[metadata][org_id]": [ORG],
        "subscription_data[metadata][tier]": [tier],
        "success_url": ["https://app.optibid.example/billing/done"],
        "cancel_url": ["https://app.optibid.example/billing"],
    }
    assert sent.headers["idempotency-key"] == f"cmd-checkout-{tier}"


@pytest.mark.parametrize(
    ("tier", "code"),
    [
        ("free", "no_price"),  # nothing to pay for
        ("platinum", "unknown_tier"),  # no tier of ours
    ],
)
def test_checkout_refuses_a_tier_without_a_price_before_calling_stripe(
    gateway: StripeGateway, recorder: RecordingClient, tier: str, code: str
) -> None:
    with pytest.raises(BillingGatewayError) as refused:
        gateway.checkout_session("cus_1", ORG, tier, "https://a.example", "https://b.example", "c")
    assert refused.value.code == code
    assert tier in str(refused.value)
    assert recorder.exchanges == []


def test_checkout_refuses_a_paid_tier_with_no_price_configured(
    stripe_mock: str,  # noqa: F811
    recorder: RecordingClient,
) -> None:
    gateway = StripeGateway(API_KEY, stripe_mock, {"starter": "price_s"}, http_client=recorder)
    with pytest.raises(BillingGatewayError) as refused:
        gateway.checkout_session(
            "cus_1", ORG, "enterprise", "https://a.example", "https://b.example", "c"
        )
    assert refused.value.code == "no_price"
    assert "'enterprise'" in str(refused.value)
    assert recorder.exchanges == []


def test_a_portal_session_returns_its_url(
    gateway: StripeGateway, recorder: RecordingClient
) -> None:
    url = gateway.portal_session(
        "cus_RfX1Ajm5mW4b2c", "https://app.optibid.example/billing", "cmd-portal-1"
    )
    assert url.startswith("https://")
    sent = recorder.only()
    assert (sent.method, sent.path) == ("POST", "/v1/billing_portal/sessions")
    assert sent.form == {
        "customer": ["cus_RfX1Ajm5mW4b2c"],
        "return_url": ["https://app.optibid.example/billing"],
    }
    assert sent.headers["idempotency-key"] == "cmd-portal-1"


def test_usage_is_a_meter_event_whose_identifier_makes_a_retry_the_same_request(
    gateway: StripeGateway, recorder: RecordingClient
) -> None:
    window_end = datetime(2026, 12, 7, 10, 1, tzinfo=UTC)
    identifier = f"{ORG}:2026-12-07T10:00:00Z"
    for _ in range(2):  # a retry after a lost answer
        gateway.report_usage("optibid_rows", "cus_RfX1Ajm5mW4b2c", 1_250, identifier, window_end)
    first, retry = recorder.exchanges
    assert (first.method, first.path, first.status) == ("POST", "/v1/billing/meter_events", 200)
    assert first.form == {
        "event_name": ["optibid_rows"],
        "payload[stripe_customer_id]": ["cus_RfX1Ajm5mW4b2c"],
        "payload[value]": ["1250"],
        "identifier": [identifier],
        "timestamp": [str(int(window_end.timestamp()))],
    }
    assert first.headers["idempotency-key"] == meter_event_key(identifier)
    assert (retry.form, retry.headers["idempotency-key"]) == (
        first.form,
        first.headers["idempotency-key"],
    )


def test_usage_needs_an_aware_timestamp_and_a_whole_positive_count(
    gateway: StripeGateway, recorder: RecordingClient
) -> None:
    with pytest.raises(BillingGatewayError) as naive:
        gateway.report_usage("optibid_rows", "cus_1", 1, "w1", datetime(2026, 12, 7, 10))
    assert naive.value.code == "invalid"
    with pytest.raises(BillingGatewayError) as negative:
        gateway.report_usage("optibid_rows", "cus_1", -1, "w1", datetime(2026, 12, 7, tzinfo=UTC))
    assert negative.value.code == "invalid"
    assert recorder.exchanges == []


def test_invoices_are_listed_with_the_fields_the_billing_page_shows(
    gateway: StripeGateway, recorder: RecordingClient
) -> None:
    invoices = gateway.invoices("cus_RfX1Ajm5mW4b2c", limit=5)
    assert invoices  # stripe-mock's fixture list holds one invoice
    for invoice in invoices:
        assert set(invoice) == {
            "id",
            "number",
            "status",
            "amount_due",
            "currency",
            "period_start_utc",
            "period_end_utc",
            "hosted_invoice_url",
        }
        assert invoice["id"].startswith("in_")
        assert isinstance(invoice["amount_due"], int)
        assert invoice["period_start_utc"].tzinfo is UTC
        assert invoice["period_start_utc"] <= invoice["period_end_utc"]
    sent = recorder.only()
    assert (sent.method, sent.path) == ("GET", "/v1/invoices")
    assert sent.form == {"customer": ["cus_RfX1Ajm5mW4b2c"], "limit": ["5"]}
    assert "idempotency-key" not in sent.headers  # a read carries none


def test_a_key_stripe_refuses_is_a_gateway_error_naming_the_call(
    stripe_mock: str,  # noqa: F811
) -> None:
    gateway = StripeGateway("sk_live_not_for_tests", api_base=stripe_mock, prices=PRICES)
    with pytest.raises(BillingGatewayError) as failed:
        gateway.ensure_customer(ORG, "billing@acme.example", "Acme Power", "cmd-0002")
    assert failed.value.code == "authentication_error"
    assert failed.value.http_status == 401
    message = str(failed.value)
    assert f"creating the Stripe customer of organisation '{ORG}' failed (HTTP 401)" in message
    assert "testmode secret API key" in message  # stripe-mock's own words


def test_a_request_stripe_does_not_know_is_a_gateway_error(
    stripe_mock: str,  # noqa: F811
) -> None:
    gateway = StripeGateway(API_KEY, api_base=f"{stripe_mock}/wrong-prefix", prices=PRICES)
    with pytest.raises(BillingGatewayError) as failed:
        gateway.portal_session("cus_RfX1Ajm5mW4b2c", "https://a.example", "cmd-portal-2")
    assert failed.value.code == "invalid_request_error"
    assert failed.value.http_status == 404
    assert "creating a portal session of customer 'cus_RfX1Ajm5mW4b2c' failed" in str(failed.value)
    assert "Unrecognized request URL" in str(failed.value)


def test_an_unreachable_stripe_is_a_connection_error(recorder: RecordingClient) -> None:
    closed = free_port()  # a port nothing listens on: the connection is refused
    gateway = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{closed}", prices=PRICES)
    with pytest.raises(BillingGatewayError) as failed:
        gateway.invoices("cus_RfX1Ajm5mW4b2c")
    assert failed.value.code == "api_connection_error"
    assert failed.value.http_status is None
    assert "listing the invoices of customer 'cus_RfX1Ajm5mW4b2c' failed (no answer)" in str(
        failed.value
    )


def test_a_missing_build_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(StripeMockError, match=r"not built at .*: run `sh ops/setup.sh test`"):
        start_stripe_mock(tmp_path / "stripe-mock.log")
