"""The SAML service provider's pure parts, without an IdP process or Redis: its keys and
certificate, the pysaml2 configuration and metadata of a connection, the signed AuthnRequest's
redirect, the refusals a Response gets before pysaml2 reads it, and which exception pysaml2
raises stands for which refusal."""

from __future__ import annotations

import base64
import shutil
import stat
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.response import (
    DecryptionFailed,
    IncorrectlySigned,
    StatusAuthnFailed,
    StatusRequestDenied,
    UnsolicitedResponse,
    VerificationError,
)
from saml2.sigver import (
    BadSignature,
    CertificateTooOld,
    DecryptError,
    MissingKey,
    SignatureError,
    SigverError,
)
from saml2.validate import ResponseLifetimeExceed, ToEarly
from saml2.xmldsig import SIG_RSA_SHA256

from api import saml
from api.problems import ProblemError
from api.sso import FLOW_TTL_S, OneUse
from identity.sp_keys import SpKeys, generate
from identity.sso import RoleMapping, SsoConnection

PUBLIC_URL = "https://optibid.example/"  # a trailing slash is not doubled
ACS = "https://optibid.example/v1/auth/sso/saml/acs"
IDP = "https://idp.example/saml"
IDP_SSO = "https://idp.example/saml/sso"

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 is missing")


class MemoryRedis:
    """What OneUse asks of Redis, in a dict (expiry ignored)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.ttls: dict[str, int | None] = {}

    def set(self, key: str, value: str, ex: int | None = None, nx: bool = False) -> bool | None:
        if nx and key in self.values:
            return None
        self.values[key], self.ttls[key] = value.encode(), ex
        return True

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    def getdel(self, key: str) -> bytes | None:
        return self.values.pop(key, None)


def flows_in(store: MemoryRedis) -> OneUse:
    return OneUse(cast(redis.Redis, store), "t")


@pytest.fixture(scope="module")
def keys() -> SpKeys:
    return generate()


@pytest.fixture(scope="module")
def idp_metadata(tmp_path_factory: pytest.TempPathFactory) -> str:
    return idp_metadata_xml(tmp_path_factory.mktemp("idp"), IDP)


def idp_metadata_xml(
    directory: Path, entity_id: str, sso: str = IDP_SSO, now: datetime | None = None
) -> str:
    idp_keys = generate(now, common_name="test idp")
    (directory / "idp.crt.pem").write_text(idp_keys.cert_pem)
    (directory / "idp.key.pem").write_text(idp_keys.key_pem)
    config = IdPConfig()
    config.load(
        {
            "entityid": entity_id,
            "service": {
                "idp": {"endpoints": {"single_sign_on_service": [(sso, BINDING_HTTP_REDIRECT)]}}
            },
            "key_file": str(directory / "idp.key.pem"),
            "cert_file": str(directory / "idp.crt.pem"),
            "xmlsec_binary": shutil.which("xmlsec1"),
        }
    )
    text = create_metadata_string(None, config=config, sign=False)
    return text.decode() if isinstance(text, bytes) else str(text)


def connection(idp_metadata: str | None, **overrides: Any) -> SsoConnection:
    fields: dict[str, Any] = {
        "connection_id": "conn-1",
        "name": "Contoso",
        "protocol": "saml",
        "allowed_domains": ("contoso.example",),
        "role_mapping": RoleMapping("groups", (("traders", "analyst"),)),
        "idp_metadata": idp_metadata,
        **overrides,
    }
    return SsoConnection(**fields)


# keys


def test_keys_are_rsa_2048_self_signed_sha256_for_ten_years(keys: SpKeys) -> None:
    cert = x509.load_pem_x509_certificate(keys.cert_pem.encode())
    key = serialization.load_pem_private_key(keys.key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == cert.subject
    lifetime = cert.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=3640) < lifetime < timedelta(days=3660)
    assert cert.not_valid_before_utc < datetime.now(UTC)


def test_key_files_are_private_and_written_once(keys: SpKeys) -> None:
    first = keys.files()
    again = keys.files()
    assert first == again
    assert Path(first.cert_file).read_text() == keys.cert_pem
    assert Path(first.key_file).read_text() == keys.key_pem
    directory = Path(first.key_file).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(first.key_file).stat().st_mode) == 0o600
    other = generate().files()
    assert other.key_file != first.key_file
    assert Path(other.key_file).parent == directory  # one directory per process


def test_key_files_come_back_when_deleted(keys: SpKeys) -> None:
    Path(keys.files().key_file).unlink()
    assert Path(keys.files().key_file).read_text() == keys.key_pem


# configuration and metadata


def test_config_is_one_signing_sp_per_connection(keys: SpKeys, idp_metadata: str) -> None:
    config = saml.sp_config(connection(idp_metadata), keys, PUBLIC_URL)
    assert config.entityid == "https://optibid.example/v1/auth/sso/conn-1/saml/metadata"
    assert config.endpoint("assertion_consumer_service", BINDING_HTTP_POST, "sp") == [ACS]
    assert config.getattr("authn_requests_signed", "sp") is True
    assert config.getattr("want_assertions_signed", "sp") is True
    assert config.getattr("want_response_signed", "sp") is False
    assert config.getattr("allow_unsolicited", "sp") is False
    assert config.allow_unknown_attributes is True
    assert config.signing_algorithm == SIG_RSA_SHA256
    assert config.accepted_time_diff == saml.ACCEPTED_TIME_DIFF_S <= 60
    assert config.xmlsec_binary == shutil.which("xmlsec1")
    assert Path(config.cert_file).read_text() == keys.cert_pem
    assert Path(config.key_file).read_text() == keys.key_pem
    assert list(config.metadata.identity_providers()) == [IDP]
    assert config.metadata.certs(IDP, "idpsso", "signing")


def test_config_allows_idp_initiated_only_when_the_connection_does(
    keys: SpKeys, idp_metadata: str
) -> None:
    allowed = connection(idp_metadata, allow_idp_initiated=True)
    assert saml.sp_config(allowed, keys, PUBLIC_URL).getattr("allow_unsolicited", "sp") is True


@pytest.mark.parametrize("bad", [None, "", "<not-metadata/>", "garbage <"])
def test_an_unusable_idp_metadata_is_a_502_naming_it(keys: SpKeys, bad: str | None) -> None:
    with pytest.raises(ProblemError) as caught:
        saml.start(connection(bad), keys, PUBLIC_URL, flows_in(MemoryRedis()), "r")
    assert (caught.value.status, caught.value.code) == (502, "idp_metadata")


def test_metadata_names_the_entity_the_acs_and_the_signing_certificate(keys: SpKeys) -> None:
    xml = saml.metadata(connection(None), keys, PUBLIC_URL)  # needs no IdP metadata
    assert 'entityID="https://optibid.example/v1/auth/sso/conn-1/saml/metadata"' in xml
    assert f'Location="{ACS}"' in xml
    assert f'Binding="{BINDING_HTTP_POST}"' in xml
    assert 'AuthnRequestsSigned="true"' in xml
    assert 'WantAssertionsSigned="true"' in xml
    assert 'use="signing"' in xml
    body = "".join(keys.cert_pem.strip().splitlines()[1:-1])
    assert body in "".join(xml.split())


def test_idp_entity_id_reads_one_idp_or_says_what_is_wrong(
    idp_metadata: str, tmp_path: Path
) -> None:
    assert saml.idp_entity_id(idp_metadata) == IDP
    with pytest.raises(ValueError, match="cannot be read"):
        saml.idp_entity_id("<EntityDescriptor")
    sp_only = saml.metadata(connection(None), generate(), PUBLIC_URL)
    with pytest.raises(ValueError, match="exactly one IdP"):
        saml.idp_entity_id(sp_only)


def test_check_describes_a_usable_connection(keys: SpKeys, idp_metadata: str) -> None:
    detail = saml.check(connection(idp_metadata), keys, PUBLIC_URL)
    assert IDP in detail
    assert f"single sign-on at {IDP_SSO}" in detail
    assert "1 valid signing certificate" in detail


def test_check_refuses_an_idp_whose_certificates_expired(keys: SpKeys, tmp_path: Path) -> None:
    old = idp_metadata_xml(tmp_path, IDP, now=datetime(2010, 1, 1, tzinfo=UTC))
    with pytest.raises(ProblemError, match="expired") as caught:
        saml.check(connection(old), keys, PUBLIC_URL)
    assert (caught.value.status, caught.value.code) == (502, "idp_metadata")


@pytest.mark.parametrize("bad", [None, "<not-metadata/>"])
def test_check_refuses_an_unusable_metadata(keys: SpKeys, bad: str | None) -> None:
    with pytest.raises(ProblemError) as caught:
        saml.check(connection(bad), keys, PUBLIC_URL)
    assert caught.value.code == "idp_metadata"


# the AuthnRequest


def test_start_redirects_to_the_idp_with_a_signed_request_kept_for_the_acs(
    keys: SpKeys, idp_metadata: str
) -> None:
    store = MemoryRedis()
    url = saml.start(connection(idp_metadata), keys, PUBLIC_URL, flows_in(store), "rs-1")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == IDP_SSO
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["RelayState"] == "rs-1"
    assert query["SigAlg"] == SIG_RSA_SHA256
    assert query["Signature"]
    request = samlp.authn_request_from_string(
        zlib.decompress(base64.b64decode(query["SAMLRequest"]), -15)
    )
    assert request.issuer.text == "https://optibid.example/v1/auth/sso/conn-1/saml/metadata"
    assert request.destination == IDP_SSO
    assert request.assertion_consumer_service_url == ACS
    assert request.protocol_binding == BINDING_HTTP_POST
    key = f"optibid:t:sso:saml:{request.id}"
    assert store.values[key] == b'{"connection_id": "conn-1"}'
    assert store.ttls[key] == FLOW_TTL_S


def test_relay_state_is_at_most_80_bytes(keys: SpKeys, idp_metadata: str) -> None:
    flows = flows_in(MemoryRedis())
    with pytest.raises(ValueError, match="80 bytes"):
        saml.start(connection(idp_metadata), keys, PUBLIC_URL, flows, "x" * 81)


# refusals before pysaml2 reads the response


def response_b64(in_response_to: str | None = None) -> str:
    answer = samlp.Response(
        id="_r1",
        version="2.0",
        issue_instant="2026-12-07T09:00:00Z",
        destination=ACS,
        in_response_to=in_response_to,
        status=samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS)),
    )
    return base64.b64encode(str(answer).encode()).decode()


def refusal(
    keys: SpKeys, idp_metadata: str, saml_response: str, store: MemoryRedis | None = None, **kw: Any
) -> ProblemError:
    flows = flows_in(store or MemoryRedis())
    with pytest.raises(ProblemError) as caught:
        saml.acs(connection(idp_metadata, **kw), keys, PUBLIC_URL, flows, saml_response)
    return caught.value


def test_a_response_to_no_request_is_unsolicited(keys: SpKeys, idp_metadata: str) -> None:
    refused = refusal(keys, idp_metadata, response_b64())
    assert (refused.code, refused.status) == ("unsolicited", 400)


def test_a_response_to_an_unknown_request_is_refused(keys: SpKeys, idp_metadata: str) -> None:
    refused = refusal(keys, idp_metadata, response_b64("_unknown"), allow_idp_initiated=True)
    assert refused.code == "in_response_to"


def test_a_response_to_another_connections_request_is_refused(
    keys: SpKeys, idp_metadata: str
) -> None:
    store = MemoryRedis()
    flows_in(store).put("saml", "_req", {"connection_id": "conn-2"}, 60)
    assert refusal(keys, idp_metadata, response_b64("_req"), store).code == "in_response_to"
    assert "optibid:t:sso:saml:_req" in store.values  # not spent by a refusal


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "!!!",
        base64.b64encode(b"<foo/>").decode(),
        base64.b64encode(b"not xml at all").decode(),
        base64.b64encode(b'<!DOCTYPE r [<!ENTITY e "boom">]><r>&e;</r>').decode(),
        "A" * (saml.MAX_RESPONSE_CHARS + 4),
    ],
)
def test_what_is_not_a_response_is_malformed(keys: SpKeys, idp_metadata: str, junk: str) -> None:
    refused = refusal(keys, idp_metadata, junk, allow_idp_initiated=True)
    assert (refused.code, refused.status) == ("malformed", 400)


def test_an_unsigned_response_to_a_kept_request_is_refused_not_a_500(
    keys: SpKeys, idp_metadata: str
) -> None:
    store = MemoryRedis()
    flows_in(store).put("saml", "_req", {"connection_id": "conn-1"}, 60)
    refused = refusal(keys, idp_metadata, response_b64("_req"), store)
    assert refused.code == "malformed"  # no assertion in it
    assert "optibid:t:sso:saml:_req" in store.values


# exception mapping


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SignatureError("Failed to verify signature"), "signature"),
        (SignatureError({"message": "Signature verification failed."}), "signature"),
        (BadSignature("bad"), "signature"),
        (CertificateTooOld("old"), "signature"),
        (SigverError("xmlsec said no"), "signature"),
        (IncorrectlySigned(), "signature"),
        (SignatureError("Signature missing for assertion"), "unsigned"),
        (SignatureError("Signature missing for response"), "unsigned"),
        (SigverError("Neither the response nor the assertions are signed"), "unsigned"),
        (MissingKey("https://other.example"), "issuer"),
        (
            Exception("AudienceRestrictions conditions not satisfied! (Local entity_id=x)"),
            "audience",
        ),
        (VerificationError("No valid recipient"), "recipient"),
        (ResponseLifetimeExceed("Can't use response, too old"), "expired"),
        (ToEarly("Can't use response yet"), "expired"),
        (VerificationError("Came from"), "unsolicited"),
        (Exception("Combination of session id and requestURI I don't recall"), "in_response_to"),
        (StatusAuthnFailed("Unsuccessful operation"), "idp_status"),
        (StatusRequestDenied("denied"), "idp_status"),
        (DecryptError("cannot decrypt"), "malformed"),
        (DecryptionFailed("cannot decrypt"), "malformed"),
        (VerificationError("Condition not OK"), "malformed"),
        (VerificationError("No valid subject confirmation"), "malformed"),
        (ValueError("Invalid number of AuthnStatement"), "malformed"),
        (TypeError("Not a Response"), "malformed"),
        (AttributeError("'NoneType' object has no attribute 'version'"), "malformed"),
        (Exception("Unknown condition"), "malformed"),
    ],
)
def test_each_pysaml2_exception_is_its_refusal(exc: Exception, code: str) -> None:
    refused = saml.refusal_for(exc)
    assert refused.code == code
    assert refused.status == saml.STATUS_BY_CODE[code]
    assert len(refused.detail) < 500


def test_unsolicited_depends_on_whether_the_response_names_a_request() -> None:
    exc = UnsolicitedResponse("Unsolicited response: _x")
    assert saml.refusal_for(exc, solicited=True).code == "in_response_to"
    assert saml.refusal_for(exc, solicited=False).code == "unsolicited"


def test_a_problem_is_passed_through() -> None:
    problem = ProblemError(400, "t", "d", code="x")
    assert saml.refusal_for(problem) is problem


def test_a_long_message_does_not_end_up_in_the_detail() -> None:
    exc = SignatureError({"message": "failed", "document": "<Response>" + "x" * 10_000})
    assert len(saml.refusal_for(exc).detail) < 500
    assert len(saml.refusal_for(ValueError("y" * 10_000)).detail) < 500


@pytest.mark.parametrize(
    ("classes", "amr"),
    [
        ([], ("saml",)),
        (["urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"], ("saml",)),
        (["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"], ("pwd",)),
        (["urn:oasis:names:tc:SAML:2.0:ac:classes:Password"], ("pwd",)),
        (["http://schemas.microsoft.com/claims/multipleauthn"], ("mfa",)),
        (["https://refeds.org/profile/mfa"], ("mfa",)),
    ],
)
def test_amr_from_the_authn_context(classes: list[str], amr: tuple[str, ...]) -> None:
    assert saml._amr([(c, [], "2026-12-07T09:00:00Z") for c in classes]) == amr
