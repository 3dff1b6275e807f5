"""The SAML 2.0 service provider of single sign-on, on pysaml2: per connection, the SP's
metadata, the signed AuthnRequest that sends the browser to the IdP, and the assertion
consumer service that turns the IdP's Response into an `api.sso.Identity`.

Each connection is an SP of its own, with the entity id
`{public_url}/v1/auth/sso/{connection_id}/saml/metadata` (also where its metadata is served);
all of them share one assertion consumer service, `{public_url}/v1/auth/sso/saml/acs`
(HTTP-POST), and one key pair (`identity.sp_keys`). AuthnRequests go out over HTTP-Redirect,
signed (RSA-SHA256); the request id is kept in Redis (`OneUse`, kind "saml") for `FLOW_TTL_S`.

What a Response must be to be accepted, each refusal naming its reason in `code`:

    in_response_to  its InResponseTo names a request of this connection still outstanding
                    (a second use of a request is refused); its SubjectConfirmationData
                    answer the same request
    unsolicited     without InResponseTo (IdP-initiated) only where the connection allows it
    signature       every signature verifies against the IdP's metadata certificate
    unsigned        the assertion is signed (a signed Response alone is not enough)
    issuer          Response and Assertion are issued by the connection's IdP
    destination     the Response's Destination is the ACS (pysaml2 7.5 does not refuse one)
    recipient       every SubjectConfirmationData Recipient is the ACS (nor this)
    audience        every AudienceRestriction names this SP (one at least)
    expired         within NotBefore/NotOnOrAfter (`ACCEPTED_TIME_DIFF_S` of leeway), and
                    the bearer confirmation has a NotOnOrAfter
    replayed        an assertion id is accepted once (kept in Redis until it expires)
    idp_status      the IdP answered success
    malformed       anything else pysaml2 cannot read (base64, XML, schema, no assertion)

pysaml2 raises many kinds of exceptions, several of them bare `Exception`s told apart by
their message only; `refusal_for` maps each to its code, and anything unknown to
`malformed`, so no SAML input ever ends in a 500. A broken IdP metadata is a 502
(`idp_metadata`).
"""

from __future__ import annotations

import base64
import calendar
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from cryptography import x509
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import (
    DecryptionFailed,
    IncorrectlySigned,
    StatusError,
    UnsolicitedResponse,
    VerificationError,
)
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import DecryptError, MissingKey, SigverError
from saml2.time_util import str_to_time
from saml2.validate import ResponseLifetimeExceed, ToEarly
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from api.problems import ProblemError
from api.sso import FLOW_TTL_S, Identity, OneUse, refused
from identity.sp_keys import SpKeys
from identity.sso import SsoConnection

log = structlog.get_logger(__name__)

ACCEPTED_TIME_DIFF_S = 30
MAX_RESPONSE_CHARS = 1_000_000  # a SAMLResponse form field, base64
MAX_RELAY_STATE_BYTES = 80  # SAML bindings 3.4.3: RelayState MUST NOT exceed 80 bytes
DETAIL_CHARS = 300

# AuthnContextClassRef values that say how the person signed in at the IdP
AMR_BY_CLASS = {
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Password": "pwd",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": "pwd",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract": "mfa",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered": "mfa",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken": "mfa",
    "https://refeds.org/profile/mfa": "mfa",
    "http://schemas.microsoft.com/claims/multipleauthn": "mfa",
}
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
GIVEN_NAME_ATTRIBUTES = (
    "givenName",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
)
SURNAME_ATTRIBUTES = (
    "sn",
    "surname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
)
DISPLAY_NAME_ATTRIBUTES = (
    "displayName",
    "http://schemas.microsoft.com/identity/claims/displayname",
)

STATUS_BY_CODE = {
    "signature": 401,
    "unsigned": 401,
    "issuer": 401,
    "audience": 401,
    "recipient": 401,
    "destination": 401,
    "expired": 401,
    "idp_status": 401,
    "replayed": 400,
    "unsolicited": 400,
    "in_response_to": 400,
    "malformed": 400,
}


def entity_id(public_url: str, connection_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/auth/sso/{connection_id}/saml/metadata"


def acs_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/v1/auth/sso/saml/acs"


def xmlsec_binary() -> str:
    found = shutil.which("xmlsec1")
    if found is None:
        raise RuntimeError(
            "SAML needs the xmlsec1 binary on PATH (Debian/Ubuntu: apt-get install xmlsec1)"
        )
    return found


def _refusal(detail: str, code: str) -> ProblemError:
    return refused(detail, code, STATUS_BY_CODE.get(code, 400))


def _metadata_problem(connection: SsoConnection, why: str) -> ProblemError:
    return refused(
        f"the IdP metadata of SSO connection {connection.connection_id} cannot be used: "
        f"{why[:DETAIL_CHARS]}",
        "idp_metadata",
        502,
    )


def _settings(
    connection: SsoConnection, keys: SpKeys, public_url: str, *, with_idp: bool
) -> dict[str, Any]:
    files = keys.files()
    settings: dict[str, Any] = {
        "entityid": entity_id(public_url, connection.connection_id),
        "name": f"OptiBid ({connection.name})",
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(acs_url(public_url), BINDING_HTTP_POST)]
                },
                "authn_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": connection.allow_idp_initiated,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            },
        },
        "key_file": files.key_file,
        "cert_file": files.cert_file,
        "encryption_keypairs": [{"key_file": files.key_file, "cert_file": files.cert_file}],
        "xmlsec_binary": xmlsec_binary(),
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "allow_unknown_attributes": True,
        "accepted_time_diff": ACCEPTED_TIME_DIFF_S,
    }
    if with_idp:
        if not connection.idp_metadata:
            raise _metadata_problem(connection, "the connection has no IdP metadata")
        settings["metadata"] = {"inline": [connection.idp_metadata]}
    return settings


def sp_config(connection: SsoConnection, keys: SpKeys, public_url: str) -> SPConfig:
    """pysaml2's configuration of the connection's SP, trusting the IdP of its metadata.
    A metadata pysaml2 cannot read is a ProblemError `idp_metadata` (502)."""
    config = SPConfig()
    try:
        config.load(_settings(connection, keys, public_url, with_idp=True))
    except ProblemError:
        raise
    except Exception as exc:  # pysaml2 raises many kinds for a metadata it cannot read
        raise _metadata_problem(connection, f"{type(exc).__name__}: {exc}") from None
    return config


def metadata(connection: SsoConnection, keys: SpKeys, public_url: str) -> str:
    """The SP metadata XML of the connection: what its IdP is given (it does not depend on the
    IdP's own metadata, so it can be served before that is right)."""
    config = SPConfig()
    config.load(_settings(connection, keys, public_url, with_idp=False))
    text = create_metadata_string(None, config=config)
    return text.decode() if isinstance(text, bytes) else str(text)


def idp_entity_id(idp_metadata: str) -> str:
    """The entity id of the one IdP a metadata document describes; ValueError saying what is
    wrong (no IdP or several, no signing certificate, no HTTP-Redirect single sign-on
    service). For checking a connection's metadata when it is configured."""
    config = SPConfig()
    try:
        config.load({"entityid": "urn:optibid:check", "metadata": {"inline": [idp_metadata]}})
    except Exception as exc:  # pysaml2 raises many kinds for a metadata it cannot read
        raise ValueError(f"the metadata cannot be read: {type(exc).__name__}: {exc}") from None
    return _the_idp(config.metadata)


def _the_idp(store: Any) -> str:
    idps = list(store.identity_providers()) if store is not None else []
    if len(idps) != 1:
        raise ValueError(f"the metadata must describe exactly one IdP, not {len(idps)}")
    idp = str(idps[0])
    if not store.certs(idp, "idpsso", "signing"):
        raise ValueError(f"the metadata of {idp} has no signing certificate")
    if not store.single_sign_on_service(idp, BINDING_HTTP_REDIRECT):
        raise ValueError(f"the metadata of {idp} has no HTTP-Redirect SingleSignOnService")
    return idp


def _client(connection: SsoConnection, keys: SpKeys, public_url: str) -> tuple[Saml2Client, str]:
    """A client for one exchange (pysaml2's keeps what it reads about people in memory), and
    the IdP's entity id."""
    config = sp_config(connection, keys, public_url)
    try:
        idp = _the_idp(config.metadata)
        return Saml2Client(config=config), idp
    except Exception as exc:
        raise _metadata_problem(connection, f"{type(exc).__name__}: {exc}") from None


def check(connection: SsoConnection, keys: SpKeys, public_url: str) -> str:
    """Whether the connection can sign people on, in words: its IdP, signing certificates
    and single sign-on service. ProblemError `idp_metadata` saying what is wrong otherwise
    (unreadable metadata, not one IdP, no signing certificate or none still valid, no
    HTTP-Redirect single sign-on service)."""
    client, idp = _client(connection, keys, public_url)
    store = client.config.metadata
    expiries: list[datetime] = []
    for _, cert in store.certs(idp, "idpsso", "signing"):
        try:
            der = base64.b64decode("".join(str(cert).split()))
            expiries.append(x509.load_der_x509_certificate(der).not_valid_after_utc)
        except ValueError as exc:
            why = f"a signing certificate cannot be read: {exc}"
            raise _metadata_problem(connection, why) from None
    now = datetime.now(UTC)
    valid = [e for e in expiries if e > now]
    if not valid:
        latest = max(expiries).date().isoformat()
        raise _metadata_problem(connection, f"the IdP's signing certificates expired ({latest})")
    location = store.single_sign_on_service(idp, BINDING_HTTP_REDIRECT)[0]["location"]
    return (
        f"IdP {idp}: {len(valid)} valid signing certificate(s), the latest until"
        f" {max(valid).date().isoformat()}; single sign-on at {location}"
    )


def start(
    connection: SsoConnection, keys: SpKeys, public_url: str, flows: OneUse, relay_state: str
) -> str:
    """Where to send the browser: the IdP's single sign-on service with a signed AuthnRequest
    (HTTP-Redirect binding); the request id is kept for the ACS."""
    if len(relay_state.encode()) > MAX_RELAY_STATE_BYTES:
        raise ValueError(f"a RelayState has at most {MAX_RELAY_STATE_BYTES} bytes")
    client, idp = _client(connection, keys, public_url)
    try:
        request_id, info = client.prepare_for_authenticate(
            entityid=idp,
            relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT,
            sign=True,
            sigalg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        location = str(dict(info["headers"])["Location"])
    except Exception as exc:  # no usable SSO endpoint in the metadata, mostly
        raise _metadata_problem(connection, f"{type(exc).__name__}: {exc}") from None
    flows.put("saml", str(request_id), {"connection_id": connection.connection_id}, FLOW_TTL_S)
    return location


# (exception types, a word its message has or "", code, detail): the first that fits wins
REFUSALS: tuple[tuple[tuple[type[BaseException], ...], str, str, str], ...] = (
    ((StatusError,), "", "idp_status", "the IdP did not sign you in ({text})"),
    ((ResponseLifetimeExceed,), "", "expired", "the SAML assertion has expired ({text})"),
    ((ToEarly,), "", "expired", "the SAML assertion is not valid yet ({text})"),
    (
        (MissingKey,),
        "",
        "issuer",
        "the SAML response is from an issuer the IdP metadata does not name ({text})",
    ),
    (
        (DecryptError, DecryptionFailed),
        "",
        "malformed",
        "the SAML assertion cannot be decrypted with this service's key",
    ),
    ((SigverError,), "missing", "unsigned", "the SAML assertion is not signed ({text})"),
    ((SigverError,), "neither", "unsigned", "the SAML response and assertion are not signed"),
    (
        (SigverError, IncorrectlySigned),
        "",
        "signature",
        "a signature of the SAML response does not verify",
    ),
    (
        (Exception,),
        "audiencerestriction",
        "audience",
        "the SAML assertion is meant for another service provider",
    ),
    ((VerificationError,), "recipient", "recipient", "the SAML assertion is for another recipient"),
    (
        (VerificationError,),
        "came from",
        "unsolicited",
        "the SAML response answers no request of this service",
    ),
    (
        (Exception,),
        "session id and requesturi",
        "in_response_to",
        "the SAML assertion answers another request",
    ),
)


def refusal_for(exc: BaseException, *, solicited: bool = True) -> ProblemError:
    """The refusal an exception pysaml2 raised while parsing a Response stands for; anything
    not known is `malformed`. `solicited`: the Response has an InResponseTo."""
    if isinstance(exc, ProblemError):
        return exc
    text = " ".join(str(exc).split())[:DETAIL_CHARS]
    if isinstance(exc, UnsolicitedResponse):
        if solicited:
            return _refusal(
                "the SAML response answers no sign-on request of this service", "in_response_to"
            )
        return _refusal(
            "the SAML response was not asked for (IdP-initiated sign-on is not allowed)",
            "unsolicited",
        )
    for types, word, code, detail in REFUSALS:
        if isinstance(exc, types) and word in text.lower():
            return _refusal(detail.format(text=text), code)
    return _refusal(f"the SAML response cannot be read ({type(exc).__name__}: {text})", "malformed")


def _decoded(saml_response: str) -> Any:
    """The Response element, read without checking anything (to find what it answers)."""
    if not saml_response or len(saml_response) > MAX_RESPONSE_CHARS:
        raise _refusal("the SAMLResponse is missing or too long", "malformed")
    try:
        outer = samlp.response_from_string(base64.b64decode(saml_response, validate=False))
    except Exception as exc:  # base64 and XML errors of several kinds
        raise refusal_for(exc) from None
    if outer is None:
        raise _refusal("the SAMLResponse is not a SAML 2.0 Response", "malformed")
    return outer


def _epoch(timestamp: str) -> int:
    return calendar.timegm(str_to_time(timestamp))


def _text(node: Any) -> str | None:
    text = getattr(node, "text", None) if node is not None else None
    return text.strip() if isinstance(text, str) else None


def _check_confirmations(
    assertions: Iterable[Any], acs: str, in_response_to: str | None
) -> list[int]:
    """Every bearer SubjectConfirmationData: Recipient the ACS, the same InResponseTo as the
    Response, a NotOnOrAfter (whose epochs are returned)."""
    expiries: list[int] = []
    for assertion in assertions:
        subject = getattr(assertion, "subject", None)
        confirmations = list(getattr(subject, "subject_confirmation", None) or [])
        if not confirmations:
            raise _refusal("the SAML assertion has no subject confirmation", "malformed")
        for confirmation in confirmations:
            data = confirmation.subject_confirmation_data
            if data is None or data.recipient != acs:
                recipient = data.recipient if data is not None else None
                raise _refusal(
                    f"the SAML assertion is for recipient {recipient!r}, not {acs}", "recipient"
                )
            if (data.in_response_to or None) != in_response_to:
                raise _refusal(
                    "the SAML assertion's subject confirmation answers another request",
                    "in_response_to",
                )
            if not data.not_on_or_after:
                raise _refusal(
                    "the SAML assertion's subject confirmation never expires", "malformed"
                )
            expiries.append(_epoch(data.not_on_or_after))
    return expiries


def _check_audience(assertion: Any, sp_entity_id: str) -> None:
    restrictions = list(getattr(assertion.conditions, "audience_restriction", None) or [])
    if not restrictions:
        raise _refusal("the SAML assertion names no audience", "audience")
    for restriction in restrictions:
        if sp_entity_id not in {_text(a) for a in restriction.audience or []}:
            raise _refusal("the SAML assertion is meant for another service provider", "audience")


def _values(ava: dict[str, Any], names: Iterable[str]) -> list[str]:
    for name in names:
        found = ava.get(name)
        if found:
            return [str(v) for v in found] if isinstance(found, list | tuple) else [str(found)]
    return []


def _amr(authn_info: list[Any]) -> tuple[str, ...]:
    methods = {AMR_BY_CLASS[c] for c, *_ in authn_info if c in AMR_BY_CLASS}
    if "mfa" in methods:
        return ("mfa",)
    return ("pwd",) if "pwd" in methods else ("saml",)


def acs(
    connection: SsoConnection,
    keys: SpKeys,
    public_url: str,
    flows: OneUse,
    saml_response: str,
) -> Identity:
    """The person a SAMLResponse (the ACS's form field, base64) names, after every check;
    ProblemError (`api.sso.refused`) naming the reason otherwise. A request id is spent by the
    first response accepted for it, an assertion by its first acceptance."""
    outer = _decoded(saml_response)
    in_response_to: str | None = outer.in_response_to or None
    outstanding: dict[str, str] = {}
    if in_response_to is not None:
        flow = flows.peek("saml", in_response_to)
        if flow is None or flow.get("connection_id") != connection.connection_id:
            raise _refusal(
                "the SAML response answers a sign-on request that is unknown, expired or used"
                " already; start again",
                "in_response_to",
            )
        outstanding[in_response_to] = connection.connection_id
    elif not connection.allow_idp_initiated:
        raise _refusal(
            "the SAML response was not asked for: IdP-initiated sign-on is not allowed for this"
            " connection; start at OptiBid",
            "unsolicited",
        )
    client, idp = _client(connection, keys, public_url)
    try:
        result = client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding=outstanding
        )
    except Exception as exc:  # pysaml2 raises many kinds; each is a refusal
        refusal = refusal_for(exc, solicited=in_response_to is not None)
        log.info(
            "saml_refused",
            connection_id=connection.connection_id,
            code=refusal.code,
            error=type(exc).__name__,
            message=str(exc)[:DETAIL_CHARS],
        )
        raise refusal from None
    if result is None or result.response is None:
        raise _refusal("the SAML response cannot be read", "malformed")
    try:
        identity, expiries = _checked(connection, idp, public_url, result, outer, in_response_to)
    except ProblemError:
        raise
    except Exception as exc:  # a value pysaml2 let through that cannot be read (a timestamp)
        raise refusal_for(exc) from None
    if in_response_to is not None and flows.take("saml", in_response_to) is None:
        raise _refusal("the sign-on request was answered already", "replayed")
    assertion_id = str(result.assertion.id)
    ttl = max(expiries) + ACCEPTED_TIME_DIFF_S + 1 - int(time.time())
    if not flows.first("saml-assertion", assertion_id, max(ttl, 1)):
        raise _refusal("the SAML assertion was used already", "replayed")
    return identity


def _checked(
    connection: SsoConnection,
    idp: str,
    public_url: str,
    result: Any,
    outer: Any,
    in_response_to: str | None,
) -> tuple[Identity, list[int]]:
    """The checks pysaml2 leaves to its caller; the Identity and the assertion's expiries."""
    acs = acs_url(public_url)
    response = result.response
    if response.destination != acs:
        raise _refusal(
            f"the SAML response is for destination {response.destination!r}, not {acs}",
            "destination",
        )
    if (response.in_response_to or None) != in_response_to:
        raise _refusal("the SAML response answers another request", "in_response_to")
    assertion = result.assertion
    if assertion is None:  # pysaml2 hands back a response it did not verify in full
        if not result.issue_instant_ok():
            raise _refusal("the SAML response was issued too long ago (or ahead)", "expired")
        raise _refusal("the SAML response carries no assertion that could be read", "malformed")
    if assertion.signature is None:
        raise _refusal("the SAML assertion is not signed", "unsigned")
    issuers = {_text(response.issuer), _text(assertion.issuer)} - {None}
    if issuers != {idp}:
        raise _refusal(
            f"the SAML response is issued by {sorted(i or '' for i in issuers)}, not {idp}",
            "issuer",
        )
    _check_audience(assertion, entity_id(public_url, connection.connection_id))
    expiries = _check_confirmations([assertion], acs, in_response_to)
    expiries += _check_confirmations(outer.assertion or [], acs, in_response_to)
    conditions = assertion.conditions
    if conditions is not None and conditions.not_on_or_after:
        expiries.append(_epoch(conditions.not_on_or_after))
    name_id = result.name_id
    name = _text(name_id)
    if not name:
        raise _refusal("the SAML assertion names no subject (NameID)", "malformed")
    ava: dict[str, Any] = dict(result.ava or {})
    claims = {
        str(k): [str(v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
        for k, vs in ava.items()
    }
    email = name if name_id.format == NAMEID_FORMAT_EMAILADDRESS else None
    email = email or next(iter(_values(claims, EMAIL_ATTRIBUTES)), None)
    if not email or "@" not in email:
        raise refused("the identity provider sent no email address", "no_email", 403)
    email = email.strip().lower()
    parts = _values(claims, GIVEN_NAME_ATTRIBUTES)[:1] + _values(claims, SURNAME_ATTRIBUTES)[:1]
    given = " ".join(parts)
    display = given.strip() or next(iter(_values(claims, DISPLAY_NAME_ATTRIBUTES)), "") or email
    identity = Identity(
        connection_id=connection.connection_id,
        email=email,
        display_name=display,
        claims=claims,
        amr=_amr(list(result.authn_info())),
        subject=f"{idp}|{name}",
    )
    return identity, expiries
