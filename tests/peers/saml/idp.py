"""A SAML 2.0 identity provider for the single sign-on tests, built on pysaml2.

Run as a process of its own: `python tests/peers/saml/idp.py CONFIG.json`, where the JSON
holds

    port         the loopback port to listen on
    entity_id    the IdP's entity id, which is also its base URL (http://127.0.0.1:PORT)
    sp_metadata  path of the trusted service provider's metadata XML
    cert, key    PEM paths of the IdP's signing certificate and RSA key
    accounts     [{login, password, attributes: {email, givenName, sn, groups: [...]}}]
    faults       {name: true} for the faults below, applied to every response until changed
    sign_metadata  whether GET /metadata serves a signed EntityDescriptor (default true)

Endpoints on 127.0.0.1:

    GET  /metadata       the IdP's metadata
    GET  /sso/redirect   an AuthnRequest over the HTTP-Redirect binding; its signature must
                         verify against the SP's metadata certificate (else 400); answers a
                         login form
    POST /sso/login      login, password, key (the form's hidden field): on the right
                         password, an auto-submitting HTML form that POSTs SAMLResponse (and
                         RelayState) to the SP's assertion consumer service; else 401 and the
                         form again
    POST /idp-initiated  login, password, optional relay_state: the same, unsolicited (no
                         InResponseTo)
    POST /faults         a JSON object {name: bool}; replaces the faults in force
    GET  /faults         the faults in force

Faults (see FAULTS) break one thing in each response while keeping the rest right, so a
service provider's refusal can only be for that one thing.

Attributes go out under their own names (email, givenName, sn, groups) with the name format
`unspecified`; a pysaml2 service provider reads them with `allow_unknown_attributes`.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import logging
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, md, saml
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAME_FORMAT_UNSPECIFIED, NAMEID_FORMAT_EMAILADDRESS
from saml2.server import Server
from saml2.sigver import pre_signature_part, signed_instance_factory
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("saml-idp")

FAULTS = frozenset(
    {
        "unsigned_assertion",  # neither the assertion nor the response is signed
        "response_only_signed",  # the response is signed, the assertion inside it is not
        "tamper",  # an attribute value altered after signing
        "wrong_audience",  # AudienceRestriction names another entity
        "wrong_recipient",  # SubjectConfirmationData Recipient is not the ACS
        "wrong_destination",  # the Response's Destination is not the ACS
        "expired",  # NotOnOrAfter (conditions and subject confirmation) in the past
    }
)
LIFETIME = timedelta(minutes=5)
ELSEWHERE = "https://elsewhere.invalid/saml"  # the audience/recipient of the wrong_* faults
TAMPERED_GROUP = "tampered-admins"
TAMPERED_EMAIL = "tampered@example.invalid"


@dataclass(frozen=True)
class Account:
    login: str
    password: str
    attributes: dict[str, list[str]]

    @property
    def email(self) -> str:
        return self.attributes["email"][0]


@dataclass(frozen=True)
class Pending:
    """An AuthnRequest that passed its checks, waiting for the login form."""

    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str | None


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def load_accounts(raw: list[dict[str, Any]]) -> dict[str, Account]:
    accounts = {}
    for item in raw:
        attributes = {k: _values(v) for k, v in item["attributes"].items()}
        if not attributes.get("email"):
            raise ValueError(f"account {item['login']!r} has no email attribute")
        accounts[item["login"]] = Account(item["login"], item["password"], attributes)
    return accounts


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class IdentityProvider:
    def __init__(self, settings: dict[str, Any]) -> None:
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise RuntimeError(
                "the xmlsec1 binary is not on PATH (Debian: apt-get install xmlsec1)"
            )
        self.entity_id: str = settings["entity_id"]
        self.base_url = self.entity_id.rstrip("/")
        self.sso_url = f"{self.base_url}/sso/redirect"
        sp_metadata = Path(settings["sp_metadata"])
        self.sp_entity_id: str = md.entity_descriptor_from_string(sp_metadata.read_text()).entity_id
        self.accounts = load_accounts(settings.get("accounts", []))
        self.faults: dict[str, bool] = {}
        self.set_faults(settings.get("faults", {}))
        self.pending: dict[str, Pending] = {}
        self.config = IdPConfig()
        self.config.load(
            {
                "entityid": self.entity_id,
                "name": "OptiBid test IdP",
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                        },
                        "want_authn_requests_signed": True,
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "policy": {"default": {"lifetime": {"minutes": 5}}},
                    },
                },
                "key_file": settings["key"],
                "cert_file": settings["cert"],
                "xmlsec_binary": xmlsec,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "metadata": {"local": [str(sp_metadata)]},
            }
        )
        self.server = Server(config=self.config)
        self.sign_metadata = bool(settings.get("sign_metadata", True))

    # faults

    def set_faults(self, flags: dict[str, Any]) -> None:
        unknown = set(flags) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        self.faults = {name: bool(on) for name, on in flags.items() if on}

    # metadata

    def metadata(self) -> str:
        text = create_metadata_string(None, config=self.config, sign=self.sign_metadata)
        return text.decode() if isinstance(text, bytes) else str(text)

    # AuthnRequest

    def accept_request(self, params: dict[str, str]) -> Pending:
        """Parses and checks a redirect-binding AuthnRequest; ValueError says why it is refused."""
        if "SAMLRequest" not in params:
            raise ValueError("no SAMLRequest")
        if "Signature" not in params or "SigAlg" not in params:
            raise ValueError("AuthnRequest not signed: Signature and SigAlg are required")
        try:
            parsed = self.server.parse_authn_request(
                params["SAMLRequest"],
                BINDING_HTTP_REDIRECT,
                relay_state=params.get("RelayState"),
                sigalg=params["SigAlg"],
                signature=params["Signature"],
            )
        except Exception as exc:  # pysaml2 raises many kinds; all mean "refused"
            raise ValueError(
                f"AuthnRequest refused (signature or content): {type(exc).__name__}: {exc}"
            ) from exc
        if parsed is None:
            raise ValueError("AuthnRequest could not be parsed")
        request = parsed.message
        issuer = request.issuer.text if request.issuer is not None else None
        if issuer != self.sp_entity_id:
            raise ValueError(f"AuthnRequest from unknown issuer {issuer!r}")
        acs_url = self.acs_url(request.assertion_consumer_service_url)
        binding = request.protocol_binding
        if binding and binding != BINDING_HTTP_POST:
            raise ValueError(f"unsupported ProtocolBinding {binding}")
        return Pending(str(request.id), issuer, acs_url, params.get("RelayState"))

    def acs_url(self, requested: str | None) -> str:
        """The SP's HTTP-POST assertion consumer service from its metadata; a URL asked for in
        the request must be one of those."""
        services = self.server.metadata.assertion_consumer_service(
            self.sp_entity_id, BINDING_HTTP_POST
        )
        locations = [str(s["location"]) for s in services]
        if not locations:
            raise ValueError("the SP's metadata has no HTTP-POST AssertionConsumerService")
        if requested:
            if requested not in locations:
                raise ValueError(f"AssertionConsumerServiceURL {requested} not in SP metadata")
            return requested
        return locations[0]

    def authenticate(self, login: str, password: str) -> Account | None:
        account = self.accounts.get(login)
        if account is None:
            return None
        if hmac.compare_digest(account.password.encode(), password.encode()):
            return account
        return None

    # Response

    def response_xml(self, account: Account, pending: Pending) -> str:
        """A Response for `pending`, signed (assertion and response) unless a fault says
        otherwise."""
        faults = self.faults
        response = self.server.create_authn_response(
            identity={},
            in_response_to=pending.request_id or None,
            destination=pending.acs_url,
            sp_entity_id=pending.sp_entity_id,
            name_id=saml.NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=account.email),
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_response=False,
            sign_assertion=False,
            encrypt_assertion=False,
        )
        assertion = response.assertion
        assertion.attribute_statement = [attribute_statement(account.attributes)]
        now = datetime.now(UTC)
        not_on_or_after = _timestamp(now + LIFETIME)
        conditions = assertion.conditions
        confirmation = assertion.subject.subject_confirmation[0].subject_confirmation_data
        if faults.get("expired"):
            not_on_or_after = _timestamp(now - timedelta(minutes=10))
            conditions.not_before = _timestamp(now - timedelta(minutes=20))
        conditions.not_on_or_after = not_on_or_after
        confirmation.not_on_or_after = not_on_or_after
        if faults.get("wrong_audience"):
            conditions.audience_restriction[0].audience[0].text = ELSEWHERE
        if faults.get("wrong_recipient"):
            confirmation.recipient = ELSEWHERE
        if faults.get("wrong_destination"):
            response.destination = ELSEWHERE
        to_sign: list[tuple[str, str]] = []
        if not faults.get("unsigned_assertion") and not faults.get("response_only_signed"):
            assertion.signature = self._signature_part(assertion.id, 2)
            to_sign.append((class_name(assertion), assertion.id))
        if not faults.get("unsigned_assertion"):
            response.signature = self._signature_part(response.id, 1)
            to_sign.append((class_name(response), response.id))
        if to_sign:
            xml = str(signed_instance_factory(response, self.server.sec, to_sign))
        else:
            xml = response.to_string().decode()
        if faults.get("tamper"):
            xml = tamper(xml, account)
        return xml

    def _signature_part(self, ident: str, number: int) -> Any:
        return pre_signature_part(
            ident,
            self.server.sec.my_cert,
            number,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )


def attribute_statement(attributes: dict[str, list[str]]) -> Any:
    items = []
    for name, values in attributes.items():
        attribute_values = []
        for value in values:
            attribute_value = saml.AttributeValue()
            attribute_value.set_text(value)
            attribute_values.append(attribute_value)
        items.append(
            saml.Attribute(
                name=name,
                name_format=NAME_FORMAT_UNSPECIFIED,
                friendly_name=name,
                attribute_value=attribute_values,
            )
        )
    return saml.AttributeStatement(attribute=items)


def tamper(xml: str, account: Account) -> str:
    """Alters one attribute value of a signed Response in place, leaving every other byte as
    signed: the first `groups` value if there is one, else the `email` value."""
    target, replacement = (
        ("groups", TAMPERED_GROUP)
        if account.attributes.get("groups")
        else ("email", TAMPERED_EMAIL)
    )
    pattern = re.compile(
        rf'(<(?:\w+:)?Attribute\b[^>]*\bName="{target}"[^>]*>\s*<(?:\w+:)?AttributeValue\b[^>]*>)'
        r"([^<]*)(<)"
    )
    altered, count = pattern.subn(lambda m: m.group(1) + replacement + m.group(3), xml, count=1)
    if count != 1:
        raise RuntimeError(f"tamper: no {target} attribute value found in the response")
    return altered


# HTTP


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body>{body}</body></html>",
        status_code=status,
    )


def login_page(key: str, message: str = "", status: int = 200) -> HTMLResponse:
    notice = f"<p class='error'>{html.escape(message)}</p>" if message else ""
    return _page(
        "Sign in",
        f"<h1>Sign in</h1>{notice}"
        "<form method='post' action='/sso/login'>"
        f"<input type='hidden' name='key' value='{html.escape(key, quote=True)}'>"
        "<label>Login <input type='text' name='login'></label>"
        "<label>Password <input type='password' name='password'></label>"
        "<button type='submit'>Sign in</button></form>",
        status,
    )


def post_page(acs_url: str, xml: str, relay_state: str | None) -> HTMLResponse:
    """The HTTP-POST binding: a form the browser submits on load."""
    encoded = base64.b64encode(xml.encode()).decode()
    fields = f"<input type='hidden' name='SAMLResponse' value='{encoded}'>"
    if relay_state is not None:
        relay = html.escape(relay_state, quote=True)
        fields += f"<input type='hidden' name='RelayState' value='{relay}'>"
    return _page(
        "Signing in",
        f"<form id='saml' method='post' action='{html.escape(acs_url, quote=True)}'>{fields}"
        "<noscript><button type='submit'>Continue</button></noscript></form>"
        "<script>document.getElementById('saml').submit();</script>",
    )


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, first value of each field."""
    parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def make_app(idp: IdentityProvider) -> Starlette:
    async def metadata(request: Request) -> Response:
        return Response(idp.metadata(), media_type="application/samlmetadata+xml")

    async def sso_redirect(request: Request) -> Response:
        try:
            pending = idp.accept_request(dict(request.query_params))
        except ValueError as exc:
            log.warning("refused AuthnRequest: %s", exc)
            return PlainTextResponse(str(exc), status_code=400)
        key = secrets.token_urlsafe(24)
        idp.pending[key] = pending
        return login_page(key)

    async def sso_login(request: Request) -> Response:
        form = await _form(request)
        key = form.get("key", "")
        pending = idp.pending.get(key)
        if pending is None:
            return PlainTextResponse("unknown or spent login request", status_code=400)
        account = idp.authenticate(form.get("login", ""), form.get("password", ""))
        if account is None:
            return login_page(key, "Wrong login or password.", status=401)
        del idp.pending[key]
        return post_page(pending.acs_url, idp.response_xml(account, pending), pending.relay_state)

    async def idp_initiated(request: Request) -> Response:
        form = await _form(request)
        account = idp.authenticate(form.get("login", ""), form.get("password", ""))
        if account is None:
            return PlainTextResponse("wrong login or password", status_code=401)
        pending = Pending("", idp.sp_entity_id, idp.acs_url(None), form.get("relay_state"))
        return post_page(pending.acs_url, idp.response_xml(account, pending), pending.relay_state)

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                flags = json.loads(await request.body() or b"{}")
                if not isinstance(flags, dict):
                    raise ValueError("faults must be a JSON object")
                idp.set_faults(flags)
            except ValueError as exc:
                return PlainTextResponse(str(exc), status_code=400)
        return JSONResponse(idp.faults)

    return Starlette(
        routes=[
            Route("/metadata", metadata),
            Route("/sso/redirect", sso_redirect),
            Route("/sso/login", sso_login, methods=["POST"]),
            Route("/idp-initiated", idp_initiated, methods=["POST"]),
            Route("/faults", faults, methods=["GET", "POST"]),
        ]
    )


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python tests/peers/saml/idp.py CONFIG.json")
    settings = json.loads(Path(argv[1]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("saml2").setLevel(logging.WARNING)
    idp = IdentityProvider(settings)
    uvicorn.run(make_app(idp), host="127.0.0.1", port=int(settings["port"]), log_level="warning")


if __name__ == "__main__":
    main(sys.argv)
