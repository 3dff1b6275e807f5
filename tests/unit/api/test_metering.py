"""api.metering's pure parts: the month a quota counts, upgrade hints, a history request's
rights, and the usage record of a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.auth import Principal
from api.metering import Served, check_history, month_of, upgrade_to, usage_record
from api.problems import ProblemError, body
from billing.tiers import TIERS
from identity.organization import Role
from schemas.contracts import ContractSet

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def served(tier: str = "free", **fields: object) -> Served:
    principal = Principal("api_key", "key_1", "org_1", Role.VIEWER, frozenset({"read"}))
    return Served(principal, TIERS[tier], "/v1/lmp", "lmp", 0.0, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (NOW, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2027, 2, 28, 23, 59, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC),
         datetime(2027, 3, 1, tzinfo=UTC)),
        (datetime(2028, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC),
         datetime(2028, 2, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_quota_counts_the_calendar_month_in_utc(
    now: datetime, start: datetime, end: datetime
) -> None:
    assert month_of(now) == (start, end)


def test_the_upgrade_hint_is_the_first_tier_that_has_the_right() -> None:
    assert upgrade_to(TIERS["free"], lambda t: t.sse) == "professional"
    assert upgrade_to(TIERS["free"], lambda t: t.export_csv) == "starter"
    assert upgrade_to(TIERS["enterprise"], lambda t: True) is None


def test_csv_and_old_history_are_refused_by_tier_with_the_upgrade() -> None:
    with pytest.raises(ProblemError) as csv:
        check_history(served("free"), NOW - timedelta(days=1), True, NOW)
    assert (csv.value.status, csv.value.code) == (403, "tier_csv")
    assert body(csv.value, "/v1/lmp")["upgrade_to"] == "starter"
    with pytest.raises(ProblemError) as old:
        check_history(served("free"), NOW - timedelta(days=40), False, NOW)
    assert old.value.code == "tier_history"
    assert "31 days" in old.value.detail
    check_history(served("free"), NOW - timedelta(days=30), False, NOW)  # within: no error
    check_history(served("enterprise"), NOW - timedelta(days=4000), True, NOW)
    check_history(served("free", enforced=False), NOW - timedelta(days=400), True, NOW)


def test_the_usage_record_fits_its_contract_and_a_dry_run_uses_no_rows() -> None:
    record = usage_record(served("starter", rows=42), 200, 1234, 0.004)
    names = ContractSet().get("energy.optibid.usage.RequestServed").field_names
    assert set(record) == set(names)
    assert (record["rows"], record["tier"], record["dataset"]) == (42, "starter", "lmp")
    dry = usage_record(served("starter", rows=42, dry_run=True), 200, 10, 0.001)
    assert (dry["rows"], dry["dry_run"]) == (0, True)
