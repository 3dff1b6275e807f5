"""The SAML identity provider of the single sign-on tests, checked against a minimal service
provider built here on pysaml2's Saml2Client: a signed AuthnRequest over the redirect binding
gets a signed Response the SP accepts, and each fault the IdP can inject is refused by the SP.
Needs no local stack, only the xmlsec1 binary."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import SignatureError
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.integration.saml_peer import (
    LoginRefusedError,
    SamlPeer,
    free_port,
    log_in,
    make_sp_credentials,
    saml_post_form,
)

RELAY_STATE = "/after-login?tab=prices"
ENTITY_DESCRIPTOR = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor"


@dataclass(frozen=True)
class ServiceProvider:
    entity_id: str
    acs_url: str
    cert: Path
    key: Path

    def config(self, peer: SamlPeer | None = None, metadata_cert: Path | None = None) -> Any:
        """The SP's pysaml2 config; with `peer`, trusting that IdP's metadata, signed by the
        IdP's key (or by the key of `metadata_cert`)."""
        settings: dict[str, Any] = {
            "entityid": self.entity_id,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]
                    },
                    "authn_requests_signed": True,
                    "want_assertions_signed": True,
                    "want_response_signed": True,
                    "allow_unsolicited": False,
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                },
            },
            "key_file": str(self.key),
            "cert_file": str(self.cert),
            "xmlsec_binary": shutil.which("xmlsec1"),
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "allow_unknown_attributes": True,
        }
        if peer is not None:
            settings["metadata"] = {
                "remote": [
                    {
                        "url": peer.metadata_url,
                        "cert": str(metadata_cert or peer.cert_path),
                        "node_name": ENTITY_DESCRIPTOR,
                    }
                ]
            }
        config = SPConfig()
        config.load(settings)
        return config

    def metadata_xml(self) -> str:
        text = create_metadata_string(None, config=self.config())
        return text.decode() if isinstance(text, bytes) else str(text)


@pytest.fixture(scope="module")
def sp(tmp_path_factory: pytest.TempPathFactory) -> ServiceProvider:
    if shutil.which("xmlsec1") is None:
        pytest.fail("the xmlsec1 binary is missing (Debian: apt-get install xmlsec1)")
    cert, key = make_sp_credentials(tmp_path_factory.mktemp("saml-sp"))
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the test plays the SP
    return ServiceProvider(f"{base}/saml/metadata", f"{base}/saml/acs", cert, key)


@pytest.fixture(scope="module")
def peer(sp: ServiceProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlPeer]:
    idp = SamlPeer(tmp_path_factory.mktemp("saml-idp"))
    idp.start(sp.metadata_xml())
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def client(sp: ServiceProvider, peer: SamlPeer) -> Saml2Client:
    return Saml2Client(config=sp.config(peer))


@pytest.fixture(autouse=True)
def no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "peer" in request.fixturenames:
        request.getfixturevalue("peer").set_faults()


def authn_request(client: Saml2Client, peer: SamlPeer, *, sign: bool = True) -> tuple[str, str]:
    """(request id, the redirect URL to the IdP) of a fresh AuthnRequest."""
    request_id, info = client.prepare_for_authenticate(
        entityid=peer.entity_id,
        relay_state=RELAY_STATE,
        binding=BINDING_HTTP_REDIRECT,
        sign=sign,
        sigalg=SIG_RSA_SHA256 if sign else None,
    )
    return str(request_id), str(dict(info["headers"])["Location"])


def sign_in(client: Saml2Client, peer: SamlPeer, login: str = "ada") -> tuple[str, str, str]:
    """(request id, ACS URL, SAMLResponse) of a login through the IdP."""
    request_id, url = authn_request(client, peer)
    acs_url, fields = log_in(url, login, peer.account(login).password)
    assert fields["RelayState"] == RELAY_STATE
    return request_id, acs_url, fields["SAMLResponse"]


class RefusedError(Exception):
    pass


def consume(client: Saml2Client, sp: ServiceProvider, request_id: str, saml_response: str) -> Any:
    """The minimal SP's assertion consumer: pysaml2's parse plus the checks pysaml2 7.5 leaves
    to its caller. pysaml2 logs a Response whose Destination is not the ACS but hands it back
    all the same (with its assertion unread), and checks SubjectConfirmationData Recipient
    only when given conv_info."""
    result = client.parse_authn_request_response(
        saml_response, BINDING_HTTP_POST, outstanding={request_id: RELAY_STATE}
    )
    if result is None:
        raise RefusedError("pysaml2 found no valid response")
    if result.response.destination != sp.acs_url:
        raise RefusedError(f"Destination {result.response.destination} is not the ACS")
    if result.assertion is None or result.name_id is None:
        raise RefusedError("no assertion read")
    recipients = {
        confirmation.subject_confirmation_data.recipient
        for confirmation in result.assertion.subject.subject_confirmation
    }
    if recipients != {sp.acs_url}:
        raise RefusedError(f"Recipient {sorted(recipients)} is not the ACS")
    return result


def assert_refused(
    client: Saml2Client, sp: ServiceProvider, request_id: str, saml_response: str, reason: str
) -> None:
    """The SP refuses the response, for `reason` (a pattern of the error's message)."""
    with pytest.raises(Exception, match=reason):  # pysaml2 raises errors of many kinds
        consume(client, sp, request_id, saml_response)


def decoded(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def signatures_hold(client: Saml2Client, peer: SamlPeer, saml_response: str) -> bool:
    """Whether the Response and its Assertion are both signed, by the IdP's key, intact."""
    xml = decoded(saml_response)
    response = samlp.response_from_string(xml)
    assertion = response.assertion[0]
    if response.signature is None or assertion.signature is None:
        return False
    try:
        return all(
            client.sec.verify_signature(
                xml, cert_file=str(peer.cert_path), node_name=class_name(node), node_id=node.id
            )
            for node in (response, assertion)
        )
    except SignatureError:
        return False


def test_metadata_is_signed_and_asks_for_signed_requests(peer: SamlPeer) -> None:
    metadata = httpx.get(peer.metadata_url, timeout=10)
    assert metadata.status_code == 200
    assert f'entityID="{peer.entity_id}"' in metadata.text
    assert 'WantAuthnRequestsSigned="true"' in metadata.text
    assert "SignatureValue" in metadata.text
    assert peer.sso_url in metadata.text


def test_metadata_signature_is_checked(sp: ServiceProvider, peer: SamlPeer) -> None:
    with pytest.raises(SignatureError):
        Saml2Client(config=sp.config(peer, metadata_cert=sp.cert))  # not the IdP's key


def test_signed_request_gets_a_response_the_sp_accepts(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider
) -> None:
    request_id, acs_url, saml_response = sign_in(client, peer)
    assert acs_url == sp.acs_url
    assert signatures_hold(client, peer, saml_response)
    result = consume(client, sp, request_id, saml_response)
    assert result is not None
    assert result.in_response_to == request_id
    assert result.name_id.text == "ada@example.com"
    assert result.name_id.format == NAMEID_FORMAT_EMAILADDRESS
    assert result.ava["email"] == ["ada@example.com"]
    assert result.ava["groups"] == ["optibid-analysts", "optibid-viewers"]
    assert result.ava["givenName"] == ["Ada"]
    assert result.ava["sn"] == ["Lovelace"]
    xml = decoded(saml_response)
    assert f'Recipient="{sp.acs_url}"' in xml
    assert f'Destination="{sp.acs_url}"' in xml
    assert f">{sp.entity_id}</" in xml  # the audience


def test_account_without_groups(client: Saml2Client, peer: SamlPeer, sp: ServiceProvider) -> None:
    request_id, _, saml_response = sign_in(client, peer, "grace")
    result = consume(client, sp, request_id, saml_response)
    assert result.name_id.text == "grace@example.com"
    assert result.ava.get("groups", []) == []


def test_tampered_attribute_breaks_the_signature(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider
) -> None:
    peer.set_faults(tamper=True)
    request_id, _, saml_response = sign_in(client, peer)
    assert "tampered-admins" in decoded(saml_response)
    assert not signatures_hold(client, peer, saml_response)
    assert_refused(client, sp, request_id, saml_response, "Failed to verify signature")


def test_unsigned_response_is_refused(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider
) -> None:
    peer.set_faults(unsigned_assertion=True)
    request_id, _, saml_response = sign_in(client, peer)
    assert "SignatureValue" not in decoded(saml_response)
    assert_refused(client, sp, request_id, saml_response, "Signature missing for response")


def test_unsigned_assertion_in_signed_response_is_refused(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider
) -> None:
    peer.set_faults(response_only_signed=True)
    request_id, _, saml_response = sign_in(client, peer)
    xml = decoded(saml_response)
    response = samlp.response_from_string(xml)
    assert response.signature is not None
    assert response.assertion[0].signature is None
    assert_refused(client, sp, request_id, saml_response, "Signature missing for assertion")


@pytest.mark.parametrize(
    ("fault", "mark", "reason"),
    [
        ("wrong_audience", ">https://elsewhere.invalid/saml</", "AudienceRestrictions"),
        ("wrong_recipient", 'Recipient="https://elsewhere.invalid/saml"', "Recipient"),
        ("wrong_destination", 'Destination="https://elsewhere.invalid/saml"', "Destination"),
        ("expired", "NotOnOrAfter=", "too old"),
    ],
)
def test_validly_signed_fault_is_refused(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider, fault: str, mark: str, reason: str
) -> None:
    peer.set_faults(**{fault: True})
    request_id, _, saml_response = sign_in(client, peer)
    assert mark in decoded(saml_response)
    assert signatures_hold(client, peer, saml_response)  # refused for the fault alone
    assert_refused(client, sp, request_id, saml_response, reason)


def test_unsigned_request_is_refused_by_the_idp(client: Saml2Client, peer: SamlPeer) -> None:
    _, url = authn_request(client, peer, sign=False)
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 400
    assert "not signed" in answer.text
    with pytest.raises(LoginRefusedError) as refused:
        log_in(url, "ada", peer.account("ada").password)
    assert refused.value.status == 400


def test_altered_signed_request_is_refused_by_the_idp(client: Saml2Client, peer: SamlPeer) -> None:
    _, url = authn_request(client, peer)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["RelayState"] = "/somewhere-else"  # covered by the signature
    altered = (parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)
    answer = httpx.get(urlunsplit(altered), timeout=10)
    assert answer.status_code == 400
    assert "refused" in answer.text


def test_request_for_an_unlisted_acs_is_refused_by_the_idp(
    client: Saml2Client, peer: SamlPeer
) -> None:
    _, info = client.prepare_for_authenticate(
        entityid=peer.entity_id,
        relay_state=RELAY_STATE,
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIG_RSA_SHA256,
        assertion_consumer_service_url="http://127.0.0.1:9/elsewhere/acs",
    )
    answer = httpx.get(dict(info["headers"])["Location"], timeout=10)
    assert answer.status_code == 400
    assert "not in SP metadata" in answer.text


def test_wrong_password_yields_no_saml_response(client: Saml2Client, peer: SamlPeer) -> None:
    _, url = authn_request(client, peer)
    with pytest.raises(LoginRefusedError) as refused:
        log_in(url, "ada", "not-her-password")
    assert refused.value.status == 401
    assert "SAMLResponse" not in refused.value.text


def test_idp_initiated_response_is_refused_by_default(
    client: Saml2Client, peer: SamlPeer, sp: ServiceProvider
) -> None:
    answer = httpx.post(
        peer.idp_initiated_url,
        data={"login": "ada", "password": peer.account("ada").password},
        timeout=10,
    )
    assert answer.status_code == 200
    form = saml_post_form(answer.text)
    assert form is not None
    acs_url, fields = form
    assert acs_url == sp.acs_url
    saml_response = fields["SAMLResponse"]
    assert "InResponseTo" not in decoded(saml_response)
    assert signatures_hold(client, peer, saml_response)
    with pytest.raises(Exception, match=r"[Uu]nsolicited"):
        client.parse_authn_request_response(saml_response, BINDING_HTTP_POST)
