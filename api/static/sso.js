// Single sign-on, the parts without a page: where a connection's sign-on starts, the messages
// of the sign-in form, and the admin form's fields to and from the API's connection
// (`PUT /v1/orgs/{org}/sso/{id}`). Nothing here touches the DOM, so it can be tried on its own.

import { apiUrl } from "./http.js";

export const PROTOCOLS = Object.freeze(["oidc", "saml"]);

/** Where the OpenID provider sends the browser back: registered at the provider. */
export const OIDC_CALLBACK_PATH = "/v1/auth/sso/oidc/callback";

/** A connection's id: what its start and metadata URLs are made of. */
export const CONNECTION_ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._\\-]{0,99}";

/** The domain of an email address (lower case), or "" when it is none. */
export function emailDomain(email) {
  const text = String(email ?? "").trim();
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) return "";
  const domain = text.slice(at + 1).toLowerCase();
  return /^[^\s@]+\.[^\s@.]+$/.test(domain) && !domain.includes("..") ? domain : "";
}

/**
 * The URL that begins a connection's sign-on: its `start_url` (a path of the API, such as
 * `/v1/auth/sso/acme/start`) taken from the API's root; a URL on another origin is not
 * followed, the connection's own start route is used instead.
 * @param {{connection_id?: string, start_url?: string}} option
 * @param {string} [origin] the page's origin
 * @returns {URL}
 */
export function startUrlOf(option, origin = globalThis.location?.origin ?? "") {
  const own = apiUrl(`v1/auth/sso/${encodeURIComponent(String(option?.connection_id ?? ""))}/start`);
  const given = typeof option?.start_url === "string" ? option.start_url.trim() : "";
  if (!given) return own;
  let url;
  try {
    url = /^[a-z][a-z0-9+.-]*:/i.test(given) ? new URL(given) : apiUrl(given);
  } catch {
    return own;
  }
  const sameOrigin = !origin || url.origin === origin;
  return sameOrigin && (url.protocol === "https:" || url.protocol === "http:") ? url : own;
}

/** The redirect URI to register at an OpenID provider for this API. */
export function oidcRedirectUri(origin = globalThis.location?.origin ?? "") {
  return `${origin}${OIDC_CALLBACK_PATH}`;
}

/**
 * What the sign-in form says when a password sign-in is refused because the organisation
 * signs its members in through single sign-on: the API's words without the route it names.
 * @param {{detail?: string, title?: string}} problem
 */
export function ssoRequiredMessage(problem) {
  const detail = String(problem?.detail || "")
    .replace(/\s*\((?:GET\s+)?\/?v1\/auth\/sso[^)]*\)/i, "")
    .trim()
    .replace(/[.:;,]+$/, "");
  const lead = detail || "Your organisation signs its members in through single sign-on";
  return `${lead}. Continue with single sign-on below.`;
}

/** How a connection is named in a list of choices: `Okta (Acme, OpenID Connect)`. */
export function protocolName(protocol) {
  if (protocol === "oidc") return "OpenID Connect";
  if (protocol === "saml") return "SAML";
  return String(protocol ?? "");
}

// ---- the admin form ------------------------------------------------------------------------

/**
 * Email domains from what was typed: commas, semicolons or spaces between them, a leading `@`
 * dropped, lower case, each once, in the order typed.
 * @returns {{domains: string[], invalid: string[]}}
 */
export function parseDomainList(text) {
  const domains = [];
  const invalid = [];
  for (const part of String(text ?? "").split(/[\s,;]+/)) {
    const domain = part.trim().replace(/^@/, "").toLowerCase();
    if (!domain) continue;
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) {
      if (!invalid.includes(part.trim())) invalid.push(part.trim());
    } else if (!domains.includes(domain)) {
      domains.push(domain);
    }
  }
  return { domains, invalid };
}

/**
 * The rows of a role mapping's `values`, in order, whatever form the API keeps them in
 * (`[[value, role], ...]` or `{value: role}`).
 * @returns {{value: string, role: string}[]}
 */
export function mappingRows(mapping) {
  const raw = mapping && typeof mapping === "object" ? mapping.values : null;
  const pairs = Array.isArray(raw) ? raw : raw && typeof raw === "object" ? Object.entries(raw) : [];
  return pairs
    .filter((pair) => Array.isArray(pair) && pair.length === 2)
    .map(([value, role]) => ({ value: String(value ?? ""), role: String(role ?? "") }));
}

/**
 * The form's fields of a connection the API listed (a new connection when none); the client
 * secret and the IdP's metadata are never listed, so they start empty.
 * @param {object | null} connection
 */
export function formFields(connection) {
  const c = connection && typeof connection === "object" ? connection : {};
  const mapping = c.role_mapping && typeof c.role_mapping === "object" ? c.role_mapping : {};
  return {
    connectionId: String(c.connection_id ?? ""),
    name: String(c.name ?? ""),
    protocol: PROTOCOLS.includes(c.protocol) ? c.protocol : "oidc",
    issuer: String(c.issuer ?? ""),
    clientId: String(c.client_id ?? ""),
    clientSecret: "",
    idpMetadata: "",
    domains: Array.isArray(c.allowed_domains) ? c.allowed_domains.join(", ") : "",
    claim: typeof mapping.claim === "string" && mapping.claim ? mapping.claim : connection ? "" : "groups",
    rows: mappingRows(mapping),
    defaultRole: typeof mapping.default === "string" ? mapping.default : "",
    jit: Boolean(c.jit),
    ssoRequired: Boolean(c.sso_required),
    allowIdpInitiated: Boolean(c.allow_idp_initiated),
  };
}

/**
 * The body of `PUT /v1/orgs/{org}/sso/{id}` from the form's fields, or the first thing wrong.
 * A blank client secret is left out (the stored one is kept); the fields of the other
 * protocol are left out; mapping rows without a value are skipped.
 * @param {ReturnType<typeof formFields>} fields
 * @param {{editing?: boolean}} [options] editing a stored connection (whose metadata is not listed)
 * @returns {{body: object, error: ""} | {body: null, error: string}}
 */
export function connectionBody(fields, { editing = false } = {}) {
  const fail = (error) => ({ body: null, error });
  const connectionId = String(fields.connectionId ?? "").trim();
  if (!connectionId) return fail("Give the connection an id (letters, digits, dots, dashes).");
  if (!new RegExp(`^${CONNECTION_ID_PATTERN}$`).test(connectionId)) {
    return fail(`The id ${JSON.stringify(connectionId)} may hold only letters, digits, dots, dashes and underscores.`);
  }
  const name = String(fields.name ?? "").trim();
  if (!name) return fail("Give the connection a name, as people will see it when they sign in.");
  const protocol = String(fields.protocol ?? "");
  if (!PROTOCOLS.includes(protocol)) return fail("Choose the protocol: OpenID Connect or SAML.");
  const { domains, invalid } = parseDomainList(fields.domains);
  if (invalid.length) return fail(`Not an email domain: ${invalid.join(", ")}.`);
  if (!domains.length) return fail("Name at least one email domain the connection signs in (example.com).");
  const claim = String(fields.claim ?? "").trim();
  if (!claim) return fail("Name the claim (OIDC) or attribute (SAML) the roles come from, such as groups.");
  const values = [];
  for (const row of fields.rows ?? []) {
    const value = String(row.value ?? "").trim();
    if (!value) continue;
    if (!row.role) return fail(`Choose the role that ${JSON.stringify(value)} gives.`);
    values.push([value, String(row.role)]);
  }
  const body = {
    name,
    protocol,
    allowed_domains: domains,
    role_mapping: { claim, values, default: fields.defaultRole ? String(fields.defaultRole) : null },
    jit: Boolean(fields.jit),
    sso_required: Boolean(fields.ssoRequired),
    allow_idp_initiated: Boolean(fields.allowIdpInitiated),
  };
  if (protocol === "oidc") {
    const issuer = String(fields.issuer ?? "").trim();
    const clientId = String(fields.clientId ?? "").trim();
    if (!issuer) return fail("An OpenID Connect connection needs the provider's issuer URL.");
    if (!/^https?:\/\/\S+$/i.test(issuer)) return fail("The issuer is a URL, such as https://login.example.com.");
    if (!clientId) return fail("An OpenID Connect connection needs the client id the provider gave.");
    body.issuer = issuer;
    body.client_id = clientId;
    // Blank keeps the stored secret; a public client has none at all.
    const secret = String(fields.clientSecret ?? "");
    if (secret) body.client_secret = secret;
  } else {
    const metadata = String(fields.idpMetadata ?? "").trim();
    if (!metadata) {
      return fail(
        editing
          ? "Paste the identity provider's metadata XML again: the stored metadata is not shown, and saving needs it."
          : "A SAML connection needs the identity provider's metadata XML.",
      );
    }
    if (!metadata.startsWith("<")) return fail("The IdP metadata is XML: it starts with <.");
    body.idp_metadata = metadata;
  }
  return { body, error: "" };
}
