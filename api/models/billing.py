"""Request and response bodies of usage, billing and the operators' routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TierName = Literal["free", "starter", "professional", "enterprise"]
PaidTier = Literal["starter", "professional", "enterprise"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UsageTotals(BaseModel):
    requests: int
    rows: int
    bytes: int
    dry_runs: int = 0


class UsageDay(UsageTotals):
    day: date


class Quota(BaseModel):
    quota: Literal["monthly_rows"] = "monthly_rows"
    limit: int | None = Field(description="Rows per calendar month; null: unlimited.")
    used: int
    remaining: int | None
    period_start_utc: datetime
    resets_at: datetime


class TierRights(BaseModel):
    key_requests_per_minute: int
    org_requests_per_minute: int
    burst: int
    monthly_row_quota: int | None
    datasets: list[str]
    history_days: int | None
    sse: bool
    export_csv: bool
    redis_down: Literal["open", "closed"]


class Usage(BaseModel):
    """An organisation's usage this period, its quota and what is left."""

    org_id: str
    tier: TierName
    plan: TierName
    status: str = Field(description="none, active, past_due or canceled.")
    grace_until: datetime | None = None
    rights: TierRights
    quota: Quota
    totals: UsageTotals
    daily: list[UsageDay]
    metered_through: datetime | None = Field(
        None, description="End of the latest metering window counted (usage trails by one)."
    )


class CheckoutRequest(_Strict):
    tier: PaidTier
    success_path: str = Field("/dashboard/#/billing?checkout=done", max_length=200)
    cancel_path: str = Field("/dashboard/#/billing", max_length=200)


class RedirectUrl(BaseModel):
    url: str


class InvoiceInfo(BaseModel):
    id: str
    number: str | None = None
    status: str | None = None
    amount_due: int
    currency: str
    period_start_utc: datetime | None = None
    period_end_utc: datetime | None = None
    hosted_invoice_url: str | None = None


class Billing(BaseModel):
    org_id: str
    tier: TierName
    plan: TierName
    status: str
    stripe_customer_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    grace_until: datetime | None = None
    checkout_available: bool = Field(description="Whether this API is connected to Stripe.")


class InvoiceList(BaseModel):
    data: list[InvoiceInfo]


class WebhookReceipt(BaseModel):
    received: bool = True
    command: str | None = Field(None, description="The billing command the event became.")
    outcome: str | None = None


class TierChange(_Strict):
    tier: TierName
    reason: str = Field("set by an operator", max_length=200)


class AccountUsage(BaseModel):
    org_id: str
    name: str
    tier: TierName
    plan: TierName
    status: str
    rows_this_month: int
    requests_this_month: int
    monthly_row_quota: int | None


class AccountList(BaseModel):
    data: list[AccountUsage]


class FlagRule(_Strict):
    enabled: bool = False
    percentage: int = Field(100, ge=0, le=100)
    roles: list[str] = Field(default_factory=list)
    org_ids_on: list[str] = Field(default_factory=list)
    org_ids_off: list[str] = Field(default_factory=list)


class FlagInfo(FlagRule):
    model_config = ConfigDict(extra="ignore")
    flag: str


class FlagList(BaseModel):
    data: list[FlagInfo]


class MyFlags(BaseModel):
    flags: dict[str, bool] = Field(description="Every feature flag, on or off for the caller.")
