"""The dashboard's Usage & plan and Operators views in headless Chromium, on the identity path
(`identity_util.identity_path`: the identity handler, the identity projector and an API) with
a second API of the same stack that names org A the platform's organisation
(`OPTIBID_PLATFORM_ORG_ID`), so that org A's owner is an operator there.

- org A's owner sees the tier of the read model, the month's quota, the totals, rows per day
  and their feature flags (as `/v1/me/flags` has them) on `#/billing`; on the first API, where
  nobody is an operator, the Operators view says it is not for them;
- on the second API the same owner finds the Operators link, sets a feature flag with the
  editor (stored through the log: `GET /v1/admin/flags` has it), deletes one, and changes org
  B's tier (`GET /v1/admin/accounts` has it);
- org B's owner, on a tier without KPIs or live updates, is told so by the dashboard, with a
  link to the plan, which offers the upgrades.

No meter runs here, so the usage numbers are zeros: the tests check what is shown and where
it comes from, not the counting."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from optibid.settings import Settings
from projections import identity_reads
from tests.integration.conftest import _cleanup, _delete_internal
from tests.integration.identity_util import IdentityPath, Person, api_up, identity_path, wait_until
from tests.integration.streams_util import ChildProcess, free_port

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WAIT_S = 60
FLAG_ON, FLAG_OFF, FLAG_MADE = "dash-beta", "dash-dormant", "dash-ui-made"


@pytest.fixture(scope="module")
def path(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityPath]:
    test_id = f"t{uuid.uuid4().hex[:10]}"
    with identity_path(stack_settings, test_id, tmp_path_factory.mktemp("billing")) as running:
        try:
            yield running
        except Exception:
            print(running.logs())
            raise
    _cleanup(stack_settings, list(running.catalog))
    _delete_internal(stack_settings, test_id)


@pytest.fixture(scope="module")
def operators_url(path: IdentityPath, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second API on the same schema and topics, org A being the platform's organisation."""
    org_a = path.people["owner"].org_id
    port = free_port()
    env = {**path.env, "OPTIBID_API_PORT": str(port), "OPTIBID_PLATFORM_ORG_ID": org_a}
    api = ChildProcess(tmp_path_factory.mktemp("operators") / "operators-api.log")
    api.spawn([sys.executable, "-m", "optibid", "api"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: api_up(url), 60, "the operators' API to answer")
        yield url
    except Exception:
        print(api.logs()[-4000:])
        raise
    finally:
        api.stop()


def bearer(url: str, person: Person) -> dict[str, str]:
    """A fresh access token of `person` from the API at `url` (each API issues its own)."""
    body = {"email": person.email, "password": person.password}
    answer = httpx.post(f"{url}/v1/auth/login", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def api_get(url: str, route: str, headers: dict[str, str]) -> Any:
    answer = httpx.get(f"{url}{route}", headers=headers, timeout=30)
    assert answer.status_code == 200, f"{route}: {answer.status_code} {answer.text}"
    return answer.json()


def put_flag(url: str, headers: dict[str, str], flag: str, **rule: Any) -> None:
    answer = httpx.put(f"{url}/v1/admin/flags/{flag}", json=rule, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text


def put_tier(url: str, headers: dict[str, str], org_id: str, tier: str) -> None:
    body = {"tier": tier, "reason": "dashboard test"}
    answer = httpx.put(f"{url}/v1/admin/orgs/{org_id}/tier", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium "
                    "chromium-driver; CI installs them)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    except Exception:
        print(driver.find_element(By.TAG_NAME, "body").text[:4000])
        print(driver.get_log("browser"))  # type: ignore[no-untyped-call]
        raise
    finally:
        driver.quit()


def sign_in(
    driver: webdriver.Chrome, url: str, person: Person, address: str
) -> WebDriverWait[webdriver.Chrome]:
    """Open the dashboard at `address` (signed out: the sign-in form, then that address)."""
    driver.get(f"{url}/dashboard/{address}")
    wait = WebDriverWait(driver, WAIT_S)
    wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
    driver.find_element(By.ID, "login-email").send_keys(person.email)
    driver.find_element(By.ID, "login-password").send_keys(person.password)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "signed-in-as").text == person.email)
    return wait


def content(driver: webdriver.Chrome, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent") or "")


def attribute(driver: webdriver.Chrome, selector: str, name: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return str(found[0].get_attribute(name) or "") if found else ""


def read_model_tier(path: IdentityPath, org_id: str) -> str:
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        return str(identity_reads.account(conn, path.schema, org_id)["tier"])


def test_usage_page_shows_the_tier_of_the_read_model_the_quota_and_the_flags(
    path: IdentityPath, operators_url: str
) -> None:
    owner = path.people["owner"]
    # two flags, one on and one off for everyone, set by the operator on the other API
    operator = bearer(operators_url, owner)
    put_flag(operators_url, operator, FLAG_ON, enabled=True, percentage=100)
    put_flag(operators_url, operator, FLAG_OFF, enabled=False)
    mine = bearer(path.url, owner)
    wanted = {FLAG_ON: True, FLAG_OFF: False}

    def flags_read() -> bool:  # the API reads the flags again every few seconds
        flags = api_get(path.url, "/v1/me/flags", mine)["flags"]
        return all(flags.get(name) is on for name, on in wanted.items())

    wait_until(flags_read, 30, "the flags in /v1/me/flags")
    flags: dict[str, bool] = api_get(path.url, "/v1/me/flags", mine)["flags"]
    tier = read_model_tier(path, owner.org_id)
    assert tier == "enterprise"  # identity_path puts both organisations there
    usage = api_get(path.url, "/v1/usage", mine)
    billing = api_get(path.url, "/v1/billing", mine)
    with chromium() as driver:
        wait = sign_in(driver, path.url, owner, "#/billing")
        # after signing in, the address asked for: the Usage & plan view
        wait.until(lambda d: d.find_element(By.ID, "billing-view").is_displayed())
        assert driver.find_element(By.ID, "nav-billing").get_attribute("aria-current") == "page"
        wait.until(lambda d: attribute(d, "#plan-tier", "data-tier") == tier)
        assert content(driver, "#plan-tier") == tier
        assert attribute(driver, "#plan-status", "data-status") == usage["status"]
        rights = content(driver, "#plan-rights")
        assert "kpis" in rights  # the tier's datasets
        assert "lmp" in rights
        # the quota: enterprise has no row limit, and says so; the numbers are the API's
        quota = driver.find_element(By.ID, "quota")
        limit = usage["quota"]["limit"]
        assert quota.get_attribute("data-limit") == ("unlimited" if limit is None else str(limit))
        assert quota.get_attribute("data-used") == str(usage["quota"]["used"])
        assert "rows read this month" in quota.text
        assert "Resets" in quota.text
        totals = driver.find_element(By.ID, "usage-totals")
        for fact in ("requests", "rows", "bytes", "dry_runs", "metered_through"):
            assert totals.find_elements(By.CSS_SELECTOR, f'[data-fact="{fact}"]'), fact
        # rows per day: one bar per day of the month
        start = datetime.fromisoformat(usage["quota"]["period_start_utc"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(usage["quota"]["resets_at"].replace("Z", "+00:00"))
        days = (end - start).days
        wait.until(lambda d: attribute(d, "#usage-chart", "data-days") == str(days))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#usage-chart rect.bar")) == days
        # the flags, as /v1/me/flags has them
        wait.until(lambda d: attribute(d, "#my-flags", "data-loaded") == "true")
        for name, on in flags.items():
            badge = f'#my-flags [data-flag="{name}"]'
            assert attribute(driver, badge, "data-on") == str(on).lower(), name
        # the owner manages billing: the subscription, and no Stripe on this deployment
        wait.until(lambda d: d.find_element(By.ID, "subscription-panel").is_displayed())
        connection = driver.find_element(By.ID, "subscription-connection")
        wait.until(lambda d: connection.text != "")
        if not billing["checkout_available"]:
            assert "not connected" in connection.text
            assert driver.find_element(By.ID, "billing-portal").get_attribute("disabled")
        # the highest tier has nothing to upgrade to
        wait.until(lambda d: "highest" in d.find_element(By.ID, "upgrade-buttons").text)
        assert not driver.find_elements(By.CSS_SELECTOR, "#upgrade-buttons button")
        # nobody is an operator on this API: the view says so, and no link leads there
        driver.get(f"{path.url}/dashboard/#/operators")
        wait.until(lambda d: d.find_element(By.ID, "operators-denied").is_displayed())
        assert not driver.find_element(By.ID, "accounts-panel").is_displayed()
        assert not driver.find_element(By.ID, "nav-operators").is_displayed()


def test_operators_set_a_flag_delete_one_and_change_a_tier_in_the_browser(
    path: IdentityPath, operators_url: str
) -> None:
    owner, other = path.people["owner"], path.other
    assert other is not None
    operator = bearer(operators_url, owner)
    put_tier(operators_url, operator, other.org_id, "enterprise")  # as identity_path left it
    put_flag(operators_url, operator, FLAG_OFF, enabled=False)  # the one to delete
    with chromium() as driver:
        wait = sign_in(driver, operators_url, owner, "#/admin")
        # the admin view asks the accounts route: it answers 200, so the link shows
        wait.until(lambda d: d.find_element(By.ID, "nav-operators").is_displayed())
        driver.find_element(By.ID, "nav-operators").click()
        wait.until(lambda d: d.find_element(By.ID, "accounts-panel").is_displayed())
        row_b = f'#accounts-table tr[data-org-id="{other.org_id}"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row_b))
        assert driver.find_elements(
            By.CSS_SELECTOR, f'#accounts-table tr[data-org-id="{owner.org_id}"]'
        )
        assert not driver.find_element(By.ID, "operators-denied").is_displayed()
        # sorted by rows this month, most first; a click on the heading turns it round
        rows_heading = driver.find_element(By.CSS_SELECTOR, '#accounts-table th[data-sort="rows"]')
        assert rows_heading.get_attribute("aria-sort") == "descending"
        rows_heading.find_element(By.TAG_NAME, "button").click()
        assert rows_heading.get_attribute("aria-sort") == "ascending"

        # a new flag through the editor: enabled, half the organisations, analysts only,
        # always on for org B
        driver.find_element(By.ID, "flag-new").click()
        driver.find_element(By.ID, "flag-name").send_keys(FLAG_MADE)
        driver.find_element(By.ID, "flag-enabled").click()
        percentage = driver.find_element(By.ID, "flag-percentage")
        percentage.clear()
        percentage.send_keys("50")
        driver.find_element(By.CSS_SELECTOR, '#flag-roles input[value="analyst"]').click()
        driver.find_element(By.ID, "flag-orgs-on").send_keys(other.org_id)
        wait.until(lambda d: "Desk B" in d.find_element(By.ID, "flag-orgs-on-names").text)
        driver.find_element(By.ID, "flag-save").click()
        made = f'#flags-table tr[data-flag="{FLAG_MADE}"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, made))
        assert "Desk B" in driver.find_element(By.CSS_SELECTOR, made).text
        stored = {f["flag"]: f for f in api_get(operators_url, "/v1/admin/flags", operator)["data"]}
        assert stored[FLAG_MADE]["enabled"] is True
        assert stored[FLAG_MADE]["percentage"] == 50
        assert stored[FLAG_MADE]["roles"] == ["analyst"]
        assert stored[FLAG_MADE]["org_ids_on"] == [other.org_id]
        assert stored[FLAG_MADE]["org_ids_off"] == []

        # delete a flag: a first click arms the button, a second deletes
        delete = f'#flags-table tr[data-flag="{FLAG_OFF}"] button.remove'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, delete))
        driver.find_element(By.CSS_SELECTOR, delete).click()
        driver.find_element(By.CSS_SELECTOR, delete).click()
        wait.until(
            lambda d: (
                not d.find_elements(By.CSS_SELECTOR, f'#flags-table tr[data-flag="{FLAG_OFF}"]')
            )
        )
        stored = {f["flag"]: f for f in api_get(operators_url, "/v1/admin/flags", operator)["data"]}
        assert FLAG_OFF not in stored
        assert FLAG_MADE in stored

        # org B to the starter tier, with a reason
        Select(driver.find_element(By.ID, "tier-org")).select_by_value(other.org_id)
        Select(driver.find_element(By.ID, "tier-tier")).select_by_value("starter")
        driver.find_element(By.ID, "tier-reason").send_keys("trial ended")
        driver.find_element(By.ID, "tier-submit").click()
        wait.until(lambda d: "starter" in d.find_element(By.ID, "accounts-notice").text)
        wait.until(lambda d: attribute(d, row_b, "data-tier") == "starter")
        accounts = {
            a["org_id"]: a for a in api_get(operators_url, "/v1/admin/accounts", operator)["data"]
        }
        assert accounts[other.org_id]["tier"] == "starter"
        assert accounts[other.org_id]["monthly_row_quota"] == 2_000_000
        assert read_model_tier(path, other.org_id) == "starter"

        # org B's usage in detail: the starter tier's quota
        driver.find_element(By.CSS_SELECTOR, f"{row_b} button.usage").click()
        wait.until(lambda d: attribute(d, "#org-quota", "data-limit") == "2000000")
        assert driver.find_element(By.ID, "org-usage-panel").is_displayed()
        assert "Desk B" in driver.find_element(By.ID, "org-usage-title").text
        logs: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
        assert [e for e in logs if e["level"] == "SEVERE"] == []  # an operator is refused nothing


def test_a_plan_without_kpis_or_live_updates_says_so_and_links_to_the_plan(
    path: IdentityPath, operators_url: str
) -> None:
    other = path.other
    assert other is not None
    put_tier(operators_url, bearer(operators_url, path.people["owner"]), other.org_id, "starter")
    with chromium() as driver:
        wait = sign_in(driver, path.url, other, "#/")
        # the KPIs are not in the starter tier: the panel says which tier has them
        wait.until(lambda d: "does not include" in d.find_element(By.ID, "kpi-problem").text)
        problem = driver.find_element(By.ID, "kpi-problem").text
        assert "Your plan (starter)" in problem, problem
        assert "upgrade to professional" in problem, problem
        assert driver.find_element(By.ID, "kpi-problem").get_attribute("data-plan") == "true"
        # nor are live updates: the stream stops asking, and says why
        wait.until(
            lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "closed"
        )
        wait.until(lambda d: "live updates" in d.find_element(By.ID, "page-problem").text)
        # the problem's link leads to the plan, which offers the tiers above
        driver.find_element(By.CSS_SELECTOR, "#kpi-problem a.upgrade-link").click()
        wait.until(lambda d: d.find_element(By.ID, "billing-view").is_displayed())
        wait.until(lambda d: attribute(d, "#plan-tier", "data-tier") == "starter")
        wait.until(lambda d: attribute(d, "#quota", "data-limit") == "2000000")
        assert driver.find_element(By.CSS_SELECTOR, '#quota [data-testid="quota-bar"]')
        upgrades = "#upgrade-buttons button.upgrade"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, upgrades)) == 2)
        offered = [
            b.get_attribute("data-tier") for b in driver.find_elements(By.CSS_SELECTOR, upgrades)
        ]
        assert offered == ["professional", "enterprise"]
