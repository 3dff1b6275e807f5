"""The SAML service provider (api/saml.py) against the pysaml2 IdP of the tests
(tests/peers/saml/idp.py), with the stack's Redis keeping the one-use values and its
PostgreSQL the SP's keys: the IdP trusts the metadata the SP serves, a login gives the person,
and each fault the IdP can inject, a replay, a response to another connection's request and
an unsolicited response are refused with the code naming why."""

from __future__ import annotations

import base64
import dataclasses
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
import redis
from psycopg import sql
from saml2 import samlp

from api import saml
from api.problems import ProblemError
from api.sso import OneUse
from identity import sp_keys
from identity.sp_keys import SpKeys
from identity.sso import RoleMapping, SsoConnection
from optibid.settings import Settings
from tests.integration.saml_peer import SamlPeer, free_port, log_in, saml_post_form

RELAY_STATE = "rs-after-login"


@pytest.fixture(scope="module")
def keys_schema(stack_settings: Settings) -> Iterator[str]:
    """A schema of this module's own for the SP keys (production uses identity_keys)."""
    schema = f"t{uuid.uuid4().hex[:10]}_keys"
    yield schema
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def keys(stack_settings: Settings, keys_schema: str) -> SpKeys:
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        return sp_keys.load_or_create(conn, keys_schema)


@pytest.fixture(scope="module")
def redis_client(stack_settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack_settings.redis_dsn)
    yield client
    client.close()


@pytest.fixture
def flows(redis_client: redis.Redis) -> Iterator[OneUse]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield OneUse(redis_client, namespace)
    for key in redis_client.scan_iter(f"optibid:{namespace}:*"):
        redis_client.delete(key)


@pytest.fixture(scope="module")
def public_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: the test plays the browser


@pytest.fixture(scope="module")
def base_connection() -> SsoConnection:
    return SsoConnection(
        connection_id=f"conn-{uuid.uuid4().hex[:8]}",
        name="Example",
        protocol="saml",
        allowed_domains=("example.com",),
        role_mapping=RoleMapping("groups", (("optibid-analysts", "analyst"),)),
    )


@pytest.fixture(scope="module")
def peer(
    base_connection: SsoConnection,
    keys: SpKeys,
    public_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SamlPeer]:
    idp = SamlPeer(tmp_path_factory.mktemp("saml-idp"))
    idp.start(saml.metadata(base_connection, keys, public_url))  # what the SP serves
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def connection(base_connection: SsoConnection, peer: SamlPeer) -> SsoConnection:
    idp_metadata = httpx.get(peer.metadata_url, timeout=10).text
    return dataclasses.replace(base_connection, idp_metadata=idp_metadata)


@pytest.fixture(autouse=True)
def no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "peer" in request.fixturenames:
        request.getfixturevalue("peer").set_faults()


def request_id_of(redirect_url: str) -> str:
    query = parse_qs(urlsplit(redirect_url).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return str(samlp.authn_request_from_string(xml).id)


def sign_in(
    connection: SsoConnection,
    keys: SpKeys,
    public_url: str,
    flows: OneUse,
    peer: SamlPeer,
    login: str = "ada",
) -> tuple[str, str]:
    """(request id, SAMLResponse) of a login at the IdP the SP sent the browser to."""
    url = saml.start(connection, keys, public_url, flows, RELAY_STATE)
    acs_url, fields = log_in(url, login, peer.account(login).password)
    assert acs_url == saml.acs_url(public_url)
    assert fields["RelayState"] == RELAY_STATE
    return request_id_of(url), fields["SAMLResponse"]


def refused(call: Any, *args: Any) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        call(*args)
    return caught.value


def idp_initiated(peer: SamlPeer, login: str = "ada") -> str:
    answer = httpx.post(
        peer.idp_initiated_url,
        data={"login": login, "password": peer.account(login).password},
        timeout=10,
    )
    assert answer.status_code == 200
    form = saml_post_form(answer.text)
    assert form is not None
    return form[1]["SAMLResponse"]


def test_the_keys_are_made_once_and_kept(
    stack_settings: Settings, keys: SpKeys, keys_schema: str
) -> None:
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        assert sp_keys.load_or_create(conn, keys_schema) == keys
        assert sp_keys.load(conn, keys_schema) == keys


def test_two_processes_making_the_keys_at_once_get_the_same(stack_settings: Settings) -> None:
    schema = f"t{uuid.uuid4().hex[:10]}_keys"
    made: list[SpKeys] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        try:
            with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
                barrier.wait()
                made.append(sp_keys.load_or_create(conn, schema))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=make) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        assert len(made) == 4
        assert len({k.cert_pem for k in made}) == 1
        with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
            assert sp_keys.load(conn, schema) == made[0]
    finally:
        with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_the_idp_trusts_the_metadata_the_sp_serves(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    served = saml.metadata(connection, keys, public_url)
    trusted = (peer.directory / "sp-metadata.xml").read_text()
    entity = saml.entity_id(public_url, connection.connection_id)
    for text in (served, trusted):
        assert f'entityID="{entity}"' in text
        assert f'Location="{saml.acs_url(public_url)}"' in text
        assert "".join(keys.cert_pem.strip().splitlines()[1:-1]) in "".join(text.split())
    # the IdP verifies the AuthnRequest's signature against that metadata's certificate
    url = saml.start(connection, keys, public_url, flows, RELAY_STATE)
    assert httpx.get(url, timeout=10).status_code == 200
    assert saml.idp_entity_id(connection.idp_metadata or "") == peer.entity_id
    assert f"single sign-on at {peer.sso_url}" in saml.check(connection, keys, public_url)


def test_a_login_gives_the_person_and_spends_the_request(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    request_id, saml_response = sign_in(connection, keys, public_url, flows, peer)
    assert flows.peek("saml", request_id) == {"connection_id": connection.connection_id}
    person = saml.acs(connection, keys, public_url, flows, saml_response)
    assert person.connection_id == connection.connection_id
    assert person.email == "ada@example.com"
    assert person.display_name == "Ada Lovelace"
    assert person.claims["groups"] == ["optibid-analysts", "optibid-viewers"]
    assert person.claims["email"] == ["ada@example.com"]
    assert person.subject == f"{peer.entity_id}|ada@example.com"
    assert person.amr == ("pwd",)  # PasswordProtectedTransport
    assert connection.role_mapping.role_for(person.claims) == "analyst"
    assert flows.peek("saml", request_id) is None


def test_an_account_without_groups(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    _, saml_response = sign_in(connection, keys, public_url, flows, peer, "grace")
    person = saml.acs(connection, keys, public_url, flows, saml_response)
    assert person.email == "grace@example.com"
    assert person.claims.get("groups", []) == []
    assert connection.role_mapping.role_for(person.claims) is None


def test_the_same_response_twice_is_refused(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    request_id, saml_response = sign_in(connection, keys, public_url, flows, peer)
    saml.acs(connection, keys, public_url, flows, saml_response)
    again = refused(saml.acs, connection, keys, public_url, flows, saml_response)
    assert again.code in {"replayed", "in_response_to"}
    assert again.status == 400
    # were the request still outstanding, its assertion is spent all the same
    flows.put("saml", request_id, {"connection_id": connection.connection_id}, 60)
    replayed = refused(saml.acs, connection, keys, public_url, flows, saml_response)
    assert replayed.code == "replayed"


def test_a_response_to_another_connections_request_is_refused(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    _, saml_response = sign_in(connection, keys, public_url, flows, peer)
    other = dataclasses.replace(connection, connection_id=f"{connection.connection_id}-other")
    problem = refused(saml.acs, other, keys, public_url, flows, saml_response)
    assert problem.code == "in_response_to"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("tamper", "signature"),
        ("unsigned_assertion", "unsigned"),
        ("response_only_signed", "unsigned"),
        ("wrong_audience", "audience"),
        ("wrong_recipient", "recipient"),
        ("wrong_destination", "destination"),
        ("expired", "expired"),
    ],
)
def test_each_fault_is_refused_with_its_code(
    connection: SsoConnection,
    keys: SpKeys,
    public_url: str,
    flows: OneUse,
    peer: SamlPeer,
    fault: str,
    code: str,
) -> None:
    peer.set_faults(**{fault: True})
    request_id, saml_response = sign_in(connection, keys, public_url, flows, peer)
    problem = refused(saml.acs, connection, keys, public_url, flows, saml_response)
    assert (problem.code, problem.status) == (code, 401), problem.detail
    assert flows.peek("saml", request_id) is not None  # a refused response spends nothing


def test_idp_initiated_is_refused_unless_the_connection_allows_it(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    saml_response = idp_initiated(peer)
    problem = refused(saml.acs, connection, keys, public_url, flows, saml_response)
    assert problem.code == "unsolicited"
    allowing = dataclasses.replace(connection, allow_idp_initiated=True)
    person = saml.acs(allowing, keys, public_url, flows, saml_response)
    assert person.email == "ada@example.com"
    assert person.claims["groups"] == ["optibid-analysts", "optibid-viewers"]
    again = refused(saml.acs, allowing, keys, public_url, flows, saml_response)
    assert again.code == "replayed"


def test_idp_initiated_faults_are_refused_too(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, peer: SamlPeer
) -> None:
    allowing = dataclasses.replace(connection, allow_idp_initiated=True)
    for fault, code in (("tamper", "signature"), ("wrong_recipient", "recipient")):
        peer.set_faults(**{fault: True})
        problem = refused(saml.acs, allowing, keys, public_url, flows, idp_initiated(peer))
        assert problem.code == code


def test_another_idps_response_is_refused(
    connection: SsoConnection,
    keys: SpKeys,
    public_url: str,
    flows: OneUse,
    peer: SamlPeer,
    tmp_path: Path,
) -> None:
    """A second IdP trusting the same SP: its signed response does not verify against the
    connection's IdP."""
    stranger = SamlPeer(tmp_path / "stranger")
    stranger.start(saml.metadata(connection, keys, public_url))
    try:
        _, saml_response = sign_in(connection, keys, public_url, flows, peer)
        answer = idp_initiated(stranger)
        allowing = dataclasses.replace(connection, allow_idp_initiated=True)
        problem = refused(saml.acs, allowing, keys, public_url, flows, answer)
        assert problem.code in {"issuer", "signature"}
        assert saml_response  # the connection's own IdP still works
        assert saml.acs(connection, keys, public_url, flows, saml_response).email
    finally:
        stranger.stop()
