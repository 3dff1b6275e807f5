"""Usage, plans and billing: `/v1/usage`, `/v1/billing/...`, the Stripe webhook, feature
flags, and the operators' routes under `/v1/admin`.

An organisation's tier changes only through commands to its account aggregate
(`identity.account`): the webhook turns each verified Stripe event into one
(`billing.webhooks.translate`, its command id a UUIDv5 of the Stripe event's id, so a
delivery Stripe repeats is decided once), and operators send `SetTier`. Every write to
Stripe carries an idempotency key made from the command or request id it serves."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Permission, Principal, require
from api.billing import gateway_problem
from api.deps import Dependencies, DependenciesDep
from api.identity import actor_of
from api.metering import month_of
from api.models.billing import (
    AccountList,
    AccountUsage,
    Billing,
    CheckoutRequest,
    FlagInfo,
    FlagList,
    FlagRule,
    InvoiceInfo,
    InvoiceList,
    MyFlags,
    Quota,
    RedirectUrl,
    TierChange,
    TierRights,
    Usage,
    UsageDay,
    UsageTotals,
    WebhookReceipt,
)
from api.openapi import problems
from api.problems import ProblemError, bad_parameter, not_found, postgres_unavailable
from billing import webhooks
from billing.stripe_gateway import BillingGatewayError
from billing.tiers import TIERS
from identity import provisioning
from projections import identity_reads, usage_reads

router = APIRouter(tags=["usage and billing"], responses=problems(401, 403, 422, 500, 503))

UsageReader = Annotated[Principal, Depends(require(Permission.USAGE_READ))]
BillingReader = Annotated[Principal, Depends(require(Permission.BILLING_READ))]
BillingManager = Annotated[Principal, Depends(require(Permission.BILLING_MANAGE))]
Operator = Annotated[Principal, Depends(require(Permission.MEMBERS_MANAGE))]
SelfPrincipal = Annotated[Principal, Depends(require(Permission.SELF))]
WEBHOOK_IDS = uuid.UUID("0b7f3f9e-2f0a-4b8e-9d0c-6a3f2d1e5b71")  # namespace of webhook commands
MAX_USAGE_DAYS = 400


def _rights(tier: str) -> TierRights:
    t = TIERS[tier]
    return TierRights(
        key_requests_per_minute=t.key_requests_per_minute,
        org_requests_per_minute=t.org_requests_per_minute,
        burst=t.burst,
        monthly_row_quota=t.monthly_row_quota,
        datasets=sorted(t.datasets),
        history_days=t.history_days,
        sse=t.sse,
        export_csv=t.export_csv,
        redis_down=t.redis_down,
    )


def _totals(t: Any) -> UsageTotals:
    return UsageTotals(requests=t.requests, rows=t.rows, bytes=t.bytes, dry_runs=t.dry_runs)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise bad_parameter(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def usage_of(deps: Dependencies, org_id: str, start: date | None, end: date | None) -> Usage:
    now = datetime.now(UTC)
    month_start, month_end = month_of(now)
    first = datetime.combine(start, datetime.min.time(), UTC) if start else month_start
    last = datetime.combine(end, datetime.min.time(), UTC) if end else month_end
    if last <= first:
        raise bad_parameter("end", "must be after start")
    if last - first > timedelta(days=MAX_USAGE_DAYS):
        raise bad_parameter("end", f"at most {MAX_USAGE_DAYS} days of usage in one request")
    schema = deps.settings.schema
    try:
        with deps.pool.connection() as conn:
            account = identity_reads.account(conn, schema, org_id)
            month = usage_reads.totals(conn, schema, org_id, month_start, month_end)
            totals = usage_reads.totals(conn, schema, org_id, first, last)
            daily = usage_reads.daily(conn, schema, org_id, first, last)
            through = usage_reads.metered_through(conn, schema, org_id)
    except psycopg.OperationalError as exc:
        raise postgres_unavailable(exc) from exc
    tier = TIERS[str(account["tier"])]
    quota = deps.metering.quota(tier, month.rows, now)
    return Usage(
        org_id=org_id,
        tier=tier.name,
        plan=account["plan"],
        status=account["status"],
        grace_until=account["grace_until"],
        rights=_rights(tier.name),
        quota=Quota.model_validate(quota),
        totals=_totals(totals),
        daily=[UsageDay(day=day, **_totals(t).model_dump()) for day, t in daily],
        metered_through=through,
    )


@router.get("/v1/usage", summary="This organisation's usage, its quota and what is left")
def usage(
    principal: UsageReader,
    deps: DependenciesDep,
    start: Annotated[str | None, Query(description="First day (UTC), default: the month's.")] = (
        None
    ),
    end: Annotated[str | None, Query(description="Day after the last (UTC), exclusive.")] = None,
) -> Usage:
    return usage_of(deps, principal.org_id, _day(start, "start"), _day(end, "end"))


# --- billing ---------------------------------------------------------------------------------


def _account(deps: Dependencies, org_id: str) -> dict[str, Any]:
    try:
        with deps.pool.connection() as conn:
            return identity_reads.account(conn, deps.settings.schema, org_id)
    except psycopg.OperationalError as exc:
        raise postgres_unavailable(exc) from exc


@router.get("/v1/billing", summary="The organisation's plan and subscription")
def billing(principal: BillingReader, deps: DependenciesDep) -> Billing:
    account = _account(deps, principal.org_id)
    return Billing(
        org_id=principal.org_id,
        tier=account["tier"],
        plan=account["plan"],
        status=account["status"],
        stripe_customer_id=account["stripe_customer_id"],
        period_start=account["period_start"],
        period_end=account["period_end"],
        grace_until=account["grace_until"],
        checkout_available=deps.billing.connected,
    )


def _customer(deps: Dependencies, principal: Principal, request: Request) -> str:
    """The organisation's Stripe customer, made (and linked through the log) the first time."""
    account = _account(deps, principal.org_id)
    existing = account["stripe_customer_id"]
    if existing:
        return str(existing)
    gateway = deps.billing.gateway()
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        org = identity_reads.organization(conn, schema, principal.org_id)
        user = identity_reads.user(conn, schema, principal.user_id) if principal.user_id else None
    name = org["name"] if org else principal.org_id
    email = user["email"] if user else ""
    try:
        # one customer per organisation however often this runs: the key names the org
        customer = gateway.ensure_customer(
            principal.org_id, email, name, f"customer-{principal.org_id}"
        )
    except BillingGatewayError as exc:
        raise gateway_problem(exc) from exc
    command = provisioning.command(
        "LinkStripeCustomer", "account", principal.org_id, actor_of(principal, request),
        org_id=principal.org_id, stripe_customer_id=customer,
    )  # fmt: skip
    deps.identity.send(command)
    return customer


def _url(deps: Dependencies, path: str) -> str:
    if not path.startswith("/") or path.startswith("//"):
        raise bad_parameter("path", "a path on this API, starting with one '/'")
    return deps.identity.settings.public_url.rstrip("/") + path


@router.post("/v1/billing/checkout", summary="A Stripe Checkout page to subscribe to a tier")
def checkout(
    body: CheckoutRequest, principal: BillingManager, request: Request, deps: DependenciesDep
) -> RedirectUrl:
    customer = _customer(deps, principal, request)
    request_id = str(uuid.uuid4())
    try:
        url = deps.billing.gateway().checkout_session(
            customer, principal.org_id, body.tier, _url(deps, body.success_path),
            _url(deps, body.cancel_path), request_id,
        )  # fmt: skip
    except BillingGatewayError as exc:
        raise gateway_problem(exc) from exc
    return RedirectUrl(url=url)


@router.post("/v1/billing/portal", summary="A Stripe customer portal page (cards, invoices)")
def portal(principal: BillingManager, request: Request, deps: DependenciesDep) -> RedirectUrl:
    customer = _customer(deps, principal, request)
    try:
        url = deps.billing.gateway().portal_session(
            customer, _url(deps, "/dashboard/#/billing"), str(uuid.uuid4())
        )
    except BillingGatewayError as exc:
        raise gateway_problem(exc) from exc
    return RedirectUrl(url=url)


@router.get("/v1/billing/invoices", summary="The organisation's invoices, newest first")
def invoices(principal: BillingReader, deps: DependenciesDep) -> InvoiceList:
    account = _account(deps, principal.org_id)
    customer = account["stripe_customer_id"]
    if not customer:
        return InvoiceList(data=[])
    try:
        found = deps.billing.gateway().invoices(str(customer), 24)
    except BillingGatewayError as exc:
        raise gateway_problem(exc) from exc
    return InvoiceList(data=[InvoiceInfo.model_validate(dict(i)) for i in found])


@router.post(
    "/v1/billing/stripe/webhook",
    summary="Stripe's events (signed); each becomes one billing command",
    responses=problems(400, 404),
)
async def stripe_webhook(request: Request) -> WebhookReceipt:
    deps = Dependencies.of(request)
    settings = deps.billing.settings
    if not settings.webhook_key:  # no endpoint to Stripe on this deployment
        raise ProblemError(
            404, "Not found", "Stripe webhooks are not configured on this API"
            " (OPTIBID_STRIPE_WEBHOOK_KEY)", code="billing_not_configured",
        )  # fmt: skip
    payload = await request.body()
    signature = request.headers.get("stripe-signature", "")
    try:
        event = webhooks.verify(payload, signature, settings.webhook_key,
                                settings.webhook_tolerance_s)  # fmt: skip
        command = webhooks.translate(event.to_dict())
    except webhooks.WebhookRejected as exc:
        raise ProblemError(400, "Webhook refused", exc.message, code=exc.code) from None
    if command is None:
        return WebhookReceipt(command=None, outcome="ignored")
    return await _decide_webhook(deps, command)


async def _decide_webhook(deps: Dependencies, fields: dict[str, Any]) -> WebhookReceipt:
    kind = str(fields.pop("type"))
    org_id = str(fields["org_id"])
    known = await run_in_threadpool(_organization_exists, deps, org_id)
    if not known:
        raise ProblemError(
            400, "Webhook refused", f"the event names no organisation known here: {org_id}",
            code="unknown_org",
        )  # fmt: skip
    stripe_event = str(fields["stripe_event_id"])
    command = provisioning.command(
        kind, "account", org_id, provisioning.Actor("stripe", "system", "stripe"), **fields
    )
    command["event_id"] = str(uuid.uuid5(WEBHOOK_IDS, stripe_event))
    outcome = await run_in_threadpool(deps.identity.send, command)
    deps.metering.forget(org_id)
    accepted = "accepted" if outcome.get("accepted") else "rejected"
    return WebhookReceipt(command=kind, outcome=accepted)


def _organization_exists(deps: Dependencies, org_id: str) -> bool:
    try:
        with deps.pool.connection() as conn:
            return identity_reads.organization(conn, deps.settings.schema, org_id) is not None
    except psycopg.OperationalError as exc:
        raise postgres_unavailable(exc) from exc


# --- feature flags ---------------------------------------------------------------------------


@router.get("/v1/me/flags", summary="Every feature flag, on or off for the signed-in user")
def my_flags(principal: SelfPrincipal, deps: DependenciesDep) -> MyFlags:
    try:
        return MyFlags(flags=deps.billing.flags_for(principal))
    except psycopg.OperationalError as exc:
        raise postgres_unavailable(exc) from exc


# --- operators ---------------------------------------------------------------------------------


@router.get("/v1/admin/accounts", summary="Every organisation's plan and usage this month")
def accounts(principal: Operator, deps: DependenciesDep) -> AccountList:
    deps.billing.require_operator(principal)
    start, end = month_of(datetime.now(UTC))
    schema = deps.settings.schema
    with deps.pool.connection() as conn:
        rows = identity_reads.accounts(conn, schema)
        used = dict(usage_reads.by_org(conn, schema, start, end))
    data = []
    for row in rows:
        totals = used.get(row["org_id"])
        data.append(
            AccountUsage(
                org_id=row["org_id"], name=row["name"], tier=row["tier"], plan=row["plan"],
                status=row["status"], rows_this_month=totals.rows if totals else 0,
                requests_this_month=totals.requests if totals else 0,
                monthly_row_quota=TIERS[row["tier"]].monthly_row_quota,
            )
        )  # fmt: skip
    return AccountList(data=data)


@router.get("/v1/admin/orgs/{org_id}/usage", summary="One organisation's usage (operators)")
def org_usage(
    org_id: str,
    principal: Operator,
    deps: DependenciesDep,
    start: Annotated[str | None, Query()] = None,
    end: Annotated[str | None, Query()] = None,
) -> Usage:
    deps.billing.require_operator(principal)
    with deps.pool.connection() as conn:
        if identity_reads.organization(conn, deps.settings.schema, org_id) is None:
            raise not_found(f"no organisation {org_id}")
    return usage_of(deps, org_id, _day(start, "start"), _day(end, "end"))


@router.put("/v1/admin/orgs/{org_id}/tier", summary="Set an organisation's tier (operators)")
def set_tier(
    org_id: str, body: TierChange, principal: Operator, request: Request, deps: DependenciesDep
) -> Billing:
    deps.billing.require_operator(principal)
    with deps.pool.connection() as conn:
        if identity_reads.organization(conn, deps.settings.schema, org_id) is None:
            raise not_found(f"no organisation {org_id}")
    command = provisioning.command(
        "SetTier", "account", org_id, actor_of(principal, request), org_id=org_id,
        tier=body.tier, reason=body.reason,
    )  # fmt: skip
    deps.identity.send(command)
    deps.metering.forget(org_id)
    account = _account(deps, org_id)
    return Billing(
        org_id=org_id, tier=account["tier"], plan=account["plan"], status=account["status"],
        stripe_customer_id=account["stripe_customer_id"], period_start=account["period_start"],
        period_end=account["period_end"], grace_until=account["grace_until"],
        checkout_available=deps.billing.connected,
    )  # fmt: skip


@router.get("/v1/admin/flags", summary="Every feature flag and its rules (operators)")
def flags(principal: Operator, deps: DependenciesDep) -> FlagList:
    deps.billing.require_operator(principal)
    with deps.pool.connection() as conn:
        rows = identity_reads.feature_flags(conn, deps.settings.schema)
    return FlagList(data=[FlagInfo.model_validate(row) for row in rows])


@router.put("/v1/admin/flags/{flag}", summary="Set a feature flag's rules (operators)")
def set_flag(
    flag: str, body: FlagRule, principal: Operator, request: Request, deps: DependenciesDep
) -> FlagInfo:
    deps.billing.require_operator(principal)
    command = provisioning.command(
        "SetFeatureFlag", "flag", flag, actor_of(principal, request), flag=flag,
        enabled=body.enabled, percentage=body.percentage, roles=",".join(body.roles),
        org_ids_on=",".join(body.org_ids_on), org_ids_off=",".join(body.org_ids_off),
    )  # fmt: skip
    deps.identity.send(command)
    deps.billing.forget_flags()
    return FlagInfo(flag=flag, **body.model_dump())


@router.delete("/v1/admin/flags/{flag}", summary="Remove a feature flag (operators)",
               status_code=204)  # fmt: skip
def remove_flag(flag: str, principal: Operator, request: Request, deps: DependenciesDep) -> None:
    deps.billing.require_operator(principal)
    command = provisioning.command(
        "RemoveFeatureFlag", "flag", flag, actor_of(principal, request), flag=flag
    )
    deps.identity.send(command)
    deps.billing.forget_flags()
