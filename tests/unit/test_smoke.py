"""The smoke test's judgements: freshness per ISO and the security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from optibid.smoke import missing_security_headers, stale_isos

NOW = datetime(2026, 3, 8, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _run(iso: str, minutes_ago: float) -> dict[str, str]:
    finished = NOW - timedelta(minutes=minutes_ago)
    return {"iso": iso, "last_run_finished_utc": finished.isoformat().replace("+00:00", "Z")}


def test_an_iso_is_fresh_when_its_freshest_dataset_ran_within_the_age() -> None:
    rows = [_run("PJM", 300), _run("PJM", 5), _run("CAISO", 59), _run("ERCOT", 1)]
    assert stale_isos(rows, NOW, HOUR, ("PJM", "CAISO", "ERCOT")) == {}


def test_a_stale_or_silent_iso_is_named_with_why() -> None:
    rows = [_run("pjm", 61), _run("CAISO", 10)]
    stale = stale_isos(rows, NOW, HOUR, ("PJM", "CAISO", "ERCOT"))
    assert stale == {
        "PJM": "last run 61 min ago (more than 60)",
        "ERCOT": "no connector run recorded",
    }


def test_security_headers_are_checked_by_value_whatever_their_case() -> None:
    good = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}  # fmt: skip
    assert missing_security_headers(good) == []
    assert missing_security_headers({**good, "X-Frame-Options": "SAMEORIGIN"}) == [
        "x-frame-options: DENY"
    ]
    assert missing_security_headers({}) == [
        "x-content-type-options: nosniff", "x-frame-options: DENY", "referrer-policy: no-referrer"
    ]  # fmt: skip
