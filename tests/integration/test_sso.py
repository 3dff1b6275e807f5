"""Single sign-on end to end against real identity providers: three oidc-provider instances
shaped like Azure AD, Okta and Google Workspace, and a pysaml2 identity provider, on loopback.
The browser's part is played over HTTP: the API's start redirect, the provider's login and
consent pages, the callback (or the SAML POST), and the ticket traded for tokens.

- logins through all four produce sessions with the mapped roles, and just-in-time
  provisioning makes the member once;
- refused, each a test: a wrong state, a wrong nonce, an ID token of another issuer or for
  another audience, an expired one, a tampered SAML assertion, an unsigned one, a replayed one,
  a wrong audience or recipient, an email outside the allowed domains, a password sign-in to an
  organisation that requires single sign-on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.saml import entity_id
from api.saml import metadata as sp_metadata
from api.sso import OidcConnection, OidcProviders, verify_id_token
from identity.sp_keys import load_or_create
from identity.sso import SsoConnection, parse_mapping
from optibid.settings import Settings
from tests.integration.conftest import _cleanup, _delete_internal
from tests.integration.identity_util import IdentityPath, identity_path
from tests.integration.oidc_peers import (
    AZURE_APP_ROLES,
    DOMAINS,
    OKTA_GROUPS,
    OidcPeer,
    log_in,
    new_peer,
    start_peers,
    stop_peers,
)
from tests.integration.saml_peer import SamlPeer
from tests.integration.saml_peer import log_in as saml_log_in

CALLBACK = "/v1/auth/sso/oidc/callback"
MAPPINGS: dict[str, dict[str, Any]] = {
    "azure": {"claim": "roles", "values": [[AZURE_APP_ROLES["admin"], "admin"]],
              "default": "viewer"},
    "okta": {"claim": "groups", "values": [[OKTA_GROUPS["admin"], "admin"]], "default": "viewer"},
    "google": {"claim": "email", "values": [[f"alice@{DOMAINS['google']}", "admin"]],
               "default": "viewer"},
}  # fmt: skip


@pytest.fixture(scope="module")
def path(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityPath]:
    test_id = f"t{uuid.uuid4().hex[:10]}"
    with identity_path(stack_settings, test_id, tmp_path_factory.mktemp("sso")) as running:
        try:
            yield running
        except Exception:
            print(running.logs())
            raise
    _cleanup(stack_settings, list(running.catalog))
    _delete_internal(stack_settings, test_id)


@pytest.fixture(scope="module")
def peers(
    path: IdentityPath, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, OidcPeer]]:
    started = start_peers(tmp_path_factory.mktemp("oidc"), path.url + CALLBACK)
    try:
        owner = path.people["owner"]
        for profile, peer in started.items():
            configured = httpx.put(
                f"{path.url}/v1/orgs/{owner.org_id}/sso/{profile}",
                json={
                    "name": f"{profile} directory", "protocol": "oidc", "issuer": peer.issuer,
                    "client_id": peer.client_id, "client_secret": peer.client_secret,
                    "allowed_domains": [DOMAINS[profile]], "role_mapping": MAPPINGS[profile],
                    "jit": True,
                },
                headers=owner.bearer(), timeout=30,
            )  # fmt: skip
            assert configured.status_code == 200, configured.text
            assert configured.json()["has_client_secret"] is True
        yield started
    finally:
        stop_peers(started)


def start_url(path: IdentityPath, connection_id: str) -> str:
    answer = httpx.get(f"{path.url}/v1/auth/sso/{connection_id}/start", timeout=30)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def finish(path: IdentityPath, callback: str) -> httpx.Response:
    """The browser coming back to the API: the callback, then the ticket for tokens."""
    parts = urlsplit(callback)
    back = httpx.get(f"{path.url}{parts.path}?{parts.query}", timeout=60)
    if back.status_code != 303:
        return back
    ticket = back.headers["location"].rsplit("/", 1)[-1]
    return httpx.post(f"{path.url}/v1/auth/sso/exchange", json={"ticket": ticket}, timeout=30)


def oidc_sign_on(path: IdentityPath, peer: OidcPeer, login: str) -> httpx.Response:
    account = peer.accounts[login]
    return finish(path, log_in(start_url(path, peer.profile), account.login, account.password))


def me(path: IdentityPath, token: str) -> dict[str, Any]:
    answer = httpx.get(f"{path.url}/v1/me", headers={"Authorization": f"Bearer {token}"},
                       timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("profile", ["azure", "okta", "google"])
def test_an_oidc_sign_on_gives_a_session_with_the_mapped_role_and_provisions_once(
    path: IdentityPath, peers: dict[str, OidcPeer], profile: str
) -> None:
    peer = peers[profile]
    signed = oidc_sign_on(path, peer, "alice")
    assert signed.status_code == 200, signed.text
    tokens = signed.json()
    assert tokens["role"] == "admin"  # from the directory's group, role or address
    profile_of = me(path, tokens["access_token"])
    assert profile_of["email"] == peer.accounts["alice"].email
    if profile == "azure":
        assert profile_of["amr"] == ["pwd", "mfa"]  # the provider's factors kept
    sessions = httpx.get(
        f"{path.url}/v1/me/sessions",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert tokens["session_id"] in {s["session_id"] for s in sessions.json()["data"]}
    bob = oidc_sign_on(path, peer, "bob")
    assert bob.status_code == 200, bob.text
    assert bob.json()["role"] == "viewer"
    again = oidc_sign_on(path, peer, "alice")  # just in time, once
    assert again.status_code == 200
    assert again.json()["user"]["user_id"] == tokens["user"]["user_id"]
    owner = path.people["owner"]
    members = httpx.get(f"{path.url}/v1/orgs/{owner.org_id}/members", headers=owner.bearer(),
                        timeout=10).json()["data"]  # fmt: skip
    emails = [m["email"] for m in members]
    assert emails.count(peer.accounts["alice"].email) == 1
    # the refresh token works like a password sign-in's
    refreshed = httpx.post(f"{path.url}/v1/auth/refresh",
                           json={"refresh_token": tokens["refresh_token"]}, timeout=30)  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text


def test_discovery_finds_the_connection_by_email_domain(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    found = httpx.get(f"{path.url}/v1/auth/sso/discover",
                      params={"email": f"someone@{DOMAINS['okta']}"}, timeout=10)  # fmt: skip
    assert [c["connection_id"] for c in found.json()["data"]] == ["okta"]
    none = httpx.get(f"{path.url}/v1/auth/sso/discover", params={"email": "x@nowhere.example"},
                     timeout=10)  # fmt: skip
    assert none.json()["data"] == []


def test_a_wrong_or_replayed_state_is_refused(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    peer = peers["okta"]
    callback = log_in(start_url(path, "okta"), "alice", peer.accounts["alice"].password)
    query = parse_qs(urlsplit(callback).query)
    forged = httpx.get(
        f"{path.url}{CALLBACK}",
        params={"code": query["code"][0], "state": "not-the-state"},
        timeout=30,
    )
    assert forged.status_code == 400
    assert forged.json()["code"] == "state"
    assert finish(path, callback).status_code == 200  # the genuine one still works, once
    replayed = finish(path, callback)
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "state"


def test_an_email_outside_the_allowed_domains_is_refused(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    answer = oidc_sign_on(path, peers["azure"], "mallory")
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "domain"


def _real_id_token(peer: OidcPeer, nonce: str) -> str:
    """An ID token the peer issues for alice, through its own flow (PKCE, state, nonce)."""
    verifier = "v" * 64
    document = peer.metadata()
    url = prepare_grant_uri(
        document["authorization_endpoint"], client_id=peer.client_id, response_type="code",
        redirect_uri=peer.redirect_uri, scope=peer.scope, state="s", nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256",
    )  # fmt: skip
    callback = log_in(url, "alice", peer.accounts["alice"].password)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = httpx.post(
        document["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code,
              "redirect_uri": peer.redirect_uri, "code_verifier": verifier},
        auth=(peer.client_id, peer.client_secret), timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["id_token"]
    return token


def test_id_tokens_of_another_issuer_audience_nonce_or_time_are_refused(
    peers: dict[str, OidcPeer], tmp_path: Path
) -> None:
    providers = OidcProviders()
    azure, okta = peers["azure"], peers["okta"]
    token = _real_id_token(azure, nonce="n-1")
    own = OidcConnection("azure", azure.issuer, azure.client_id, azure.client_secret)
    document = providers.discovery(azure.issuer)
    claims = verify_id_token(providers, own, document, token, "n-1")
    assert claims["tid"]  # the genuine token passes
    cases = {
        "nonce": (own, document, "n-2"),
        "another audience": (
            OidcConnection("azure", azure.issuer, "someone-else", "x"), document, "n-1"
        ),
        "another issuer": (
            OidcConnection("okta", okta.issuer, azure.client_id, "x"),
            providers.discovery(okta.issuer), "n-1",
        ),
    }  # fmt: skip
    for name, (connection, doc, nonce) in cases.items():
        with pytest.raises(Exception) as refused:  # noqa: PT011 - the problem's code is checked
            verify_id_token(providers, connection, doc, token, nonce)
        assert getattr(refused.value, "status", None) == 401, name
        assert getattr(refused.value, "code", None) in ("nonce", "id_token"), name
    # a provider whose ID tokens live one second: after it, refused
    short = new_peer("google", tmp_path, azure.redirect_uri)
    short.id_token_ttl = 1
    short.start()
    try:
        stale = _real_id_token(short, nonce="n-3")
        time.sleep(2.5)
        connection = OidcConnection("google", short.issuer, short.client_id, short.client_secret)
        with pytest.raises(Exception) as expired:  # noqa: PT011 - the problem's code is checked
            verify_id_token(providers, connection, providers.discovery(short.issuer), stale,
                            "n-3", leeway_s=0)  # fmt: skip
        assert "expired" in str(getattr(expired.value, "detail", expired.value)).lower()
    finally:
        short.stop()


def test_a_rotated_provider_key_is_read_again(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    peer = peers["google"]
    before = peer.kid
    assert peer.rotate_keys() != before
    answer = oidc_sign_on(path, peer, "bob")
    assert answer.status_code == 200, answer.text


def test_an_organisation_that_requires_sso_refuses_password_sign_ins_but_its_owners(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    owner, analyst = path.people["owner"], path.people["analyst"]
    current = httpx.get(f"{path.url}/v1/orgs/{owner.org_id}/sso", headers=owner.bearer(),
                        timeout=10).json()["data"]  # fmt: skip
    okta = next(c for c in current if c["connection_id"] == "okta")
    required = {k: okta[k] for k in ("name", "protocol", "issuer", "client_id", "allowed_domains",
                                     "role_mapping", "jit")}  # fmt: skip
    updated = httpx.put(
        f"{path.url}/v1/orgs/{owner.org_id}/sso/okta",
        json={**required, "sso_required": True},
        headers=owner.bearer(),
        timeout=30,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["has_client_secret"] is True  # kept without being sent again
    try:
        refused = path.login(analyst)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "sso_required"
        assert path.login(owner).status_code == 200  # break-glass
        assert oidc_sign_on(path, peers["okta"], "alice").status_code == 200
    finally:
        httpx.put(
            f"{path.url}/v1/orgs/{owner.org_id}/sso/okta",
            json={**required, "sso_required": False},
            headers=owner.bearer(),
            timeout=30,
        )
    assert path.login(analyst).status_code == 200


# --- SAML ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saml(path: IdentityPath, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlPeer]:
    owner = path.people["owner"]
    mapping = {"claim": "groups", "values": [["optibid-analysts", "analyst"]], "default": "viewer"}
    # the IdP is given the SP's metadata as the API will serve it (the same SP keys, from
    # the same database), then the connection is configured with the IdP's own metadata
    with psycopg.connect(path.settings.postgres_dsn, autocommit=True) as conn:
        keys = load_or_create(conn)
    planned = SsoConnection(
        connection_id="saml-idp", name="SAML directory", protocol="saml",
        allowed_domains=("example.com",), role_mapping=parse_mapping(json.dumps(mapping)),
        jit=True,
    )  # fmt: skip
    sp_xml = sp_metadata(planned, keys, path.url)
    peer = SamlPeer(tmp_path_factory.mktemp("saml"))
    peer.start(sp_xml)
    try:
        idp_xml = httpx.get(peer.metadata_url, timeout=10).text
        configured = httpx.put(
            f"{path.url}/v1/orgs/{owner.org_id}/sso/saml-idp",
            json={"name": "SAML directory", "protocol": "saml", "idp_metadata": idp_xml,
                  "allowed_domains": ["example.com"], "role_mapping": mapping, "jit": True},
            headers=owner.bearer(), timeout=30,
        )  # fmt: skip
        assert configured.status_code == 200, configured.text
        served = httpx.get(configured.json()["sp_metadata_url"], timeout=30)
        assert served.status_code == 200, served.text
        assert entity_id(path.url, "saml-idp") in served.text  # a stable URL, its own address
        tested = httpx.post(f"{path.url}/v1/orgs/{owner.org_id}/sso/saml-idp/test",
                            headers=owner.bearer(), timeout=30)  # fmt: skip
        assert tested.json()["ok"] is True, tested.text
        yield peer
    finally:
        peer.stop()


def saml_post(path: IdentityPath, saml: SamlPeer, login: str = "ada") -> tuple[str, dict[str, str]]:
    account = saml.account(login)
    return saml_log_in(start_url(path, "saml-idp"), account.login, account.password)


def post_acs(path: IdentityPath, acs: str, form: dict[str, str]) -> httpx.Response:
    back = httpx.post(acs, data=form, timeout=60)
    if back.status_code != 303:
        return back
    ticket = back.headers["location"].rsplit("/", 1)[-1]
    return httpx.post(f"{path.url}/v1/auth/sso/exchange", json={"ticket": ticket}, timeout=30)


def test_a_saml_sign_on_gives_a_session_with_the_mapped_role_and_a_replay_is_refused(
    path: IdentityPath, saml: SamlPeer
) -> None:
    saml.set_faults()
    acs, form = saml_post(path, saml)
    signed = post_acs(path, acs, form)
    assert signed.status_code == 200, signed.text
    tokens = signed.json()
    assert me(path, tokens["access_token"])["email"] == saml.account("ada").email
    assert tokens["role"] == "analyst"  # from the IdP's groups attribute
    replayed = post_acs(path, acs, form)
    assert replayed.status_code in (400, 401), replayed.text
    assert replayed.json()["code"] in ("replayed", "in_response_to")


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("tamper", "signature"),
        ("unsigned_assertion", "unsigned"),
        ("wrong_audience", "audience"),
        ("wrong_recipient", "recipient"),
    ],
)
def test_a_bad_saml_response_is_refused(
    path: IdentityPath, saml: SamlPeer, fault: str, code: str
) -> None:
    saml.set_faults(**{fault: True})
    try:
        acs, form = saml_post(path, saml)
        answer = post_acs(path, acs, form)
    finally:
        saml.set_faults()
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["code"] == code, answer.text


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_the_dashboard_signs_in_through_the_okta_peer_in_headless_chromium(
    path: IdentityPath, peers: dict[str, OidcPeer]
) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium "
                    "chromium-driver; CI installs them)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    alice = peers["okta"].accounts["alice"]
    try:
        driver.get(f"{path.url}/dashboard/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "sso-form").is_displayed())
        driver.find_element(By.ID, "sso-email").send_keys(alice.email)
        driver.find_element(By.ID, "sso-submit").click()
        # the provider's own pages: sign in, then allow
        wait.until(lambda d: d.find_elements(By.NAME, "password"))
        login = driver.find_element(By.NAME, "login")
        login.clear()
        login.send_keys(alice.login)
        driver.find_element(By.NAME, "password").send_keys(alice.password)
        driver.find_element(By.CSS_SELECTOR, "form[action$='/login'] button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form[action$='/confirm'] button"))
        driver.find_element(By.CSS_SELECTOR, "form[action$='/confirm'] button").click()
        # back at the dashboard, signed in with the directory's role
        wait.until(lambda d: d.find_element(By.ID, "signed-in-as").text == alice.email)
        assert driver.find_element(By.ID, "nav-admin").is_displayed()  # OptiBid Admins: admin
        assert "/sso/" not in driver.current_url  # the ticket left the address
        driver.find_element(By.ID, "nav-admin").click()
        wait.until(lambda d: "okta" in d.find_element(By.ID, "sso-table").text)
    finally:
        driver.quit()
