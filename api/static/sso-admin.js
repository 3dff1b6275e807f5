// The admin view's single sign-on section: the organisation's connections (`/v1/orgs/{org}/sso`)
// with Edit, Test and Remove, and the form that configures one (PUT). The client secret is
// never shown, only whether one is set; a blank secret keeps the stored one. The IdP's SAML
// metadata is not listed either, so saving a SAML connection takes it pasted again.

import { describeError, getJson, isAbort, sendJson } from "./api.js";
import { h, showProblem } from "./dom.js";
import { DASH } from "./format.js";
import {
  CONNECTION_ID_PATTERN,
  connectionBody,
  formFields,
  oidcRedirectUri,
  protocolName,
} from "./sso.js";
import { ROLES, confirmButton, emptyRow, roleOptions, showNotice, text, wireCopy } from "./widgets.js";

const COLUMNS = 7;

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  count: $("#sso-count"),
  table: /** @type {HTMLTableElement} */ ($("#sso-table")),
  notice: $("#sso-admin-notice"),
  problem: $("#sso-admin-problem"),
  testResult: $("#sso-test-result"),
  newButton: /** @type {HTMLButtonElement} */ ($("#sso-new")),
  form: /** @type {HTMLFormElement} */ ($("#sso-connection-form")),
  formTitle: $("#sso-form-title"),
  connectionId: /** @type {HTMLInputElement} */ ($("#sso-connection-id")),
  name: /** @type {HTMLInputElement} */ ($("#sso-name")),
  protocol: /** @type {HTMLSelectElement} */ ($("#sso-protocol")),
  oidcFields: $("#sso-oidc-fields"),
  issuer: /** @type {HTMLInputElement} */ ($("#sso-issuer")),
  clientId: /** @type {HTMLInputElement} */ ($("#sso-client-id")),
  clientSecret: /** @type {HTMLInputElement} */ ($("#sso-client-secret")),
  secretState: $("#sso-secret-state"),
  secretHelp: $("#sso-secret-help"),
  redirectUri: $("#sso-redirect-uri"),
  redirectCopy: /** @type {HTMLButtonElement} */ ($("#sso-redirect-copy")),
  redirectCopied: $("#sso-redirect-copied"),
  samlFields: $("#sso-saml-fields"),
  idpMetadata: /** @type {HTMLTextAreaElement} */ ($("#sso-idp-metadata")),
  spMetadataUrl: $("#sso-sp-metadata-url"),
  spMetadataNone: $("#sso-sp-metadata-none"),
  domains: /** @type {HTMLInputElement} */ ($("#sso-domains")),
  claim: /** @type {HTMLInputElement} */ ($("#sso-role-claim")),
  roleRows: $("#sso-role-rows"),
  roleAdd: /** @type {HTMLButtonElement} */ ($("#sso-role-add")),
  roleDefault: /** @type {HTMLSelectElement} */ ($("#sso-role-default")),
  jit: /** @type {HTMLInputElement} */ ($("#sso-jit")),
  ssoRequired: /** @type {HTMLInputElement} */ ($("#sso-required")),
  idpInitiated: /** @type {HTMLInputElement} */ ($("#sso-idp-initiated")),
  formProblem: $("#sso-form-problem"),
  cancel: /** @type {HTMLButtonElement} */ ($("#sso-cancel")),
  save: /** @type {HTMLButtonElement} */ ($("#sso-save")),
};

/** @type {() => {orgId: string, role: string} | null} */
let context = () => null;

const state = {
  /** @type {object[]} the connections listed */
  connections: [],
  /** @type {object | null} the listed connection the form edits; null: a new one */
  editing: null,
  /** @type {AbortController | null} */
  request: null,
  /** Bumped by every test run and reset: a late answer of an older one is dropped. */
  testRun: 0,
};

function orgPath(suffix = "") {
  const ctx = context();
  if (!ctx) throw new Error("not signed in");
  return `v1/orgs/${encodeURIComponent(ctx.orgId)}/sso${suffix}`;
}

function connectionPath(connectionId, suffix = "") {
  return orgPath(`/${encodeURIComponent(connectionId)}${suffix}`);
}

/** Roles a mapping may give: only an owner hands out owner. */
function grantable() {
  return context()?.role === "owner" ? [...ROLES] : ROLES.filter((role) => role !== "owner");
}

function yesNo(value) {
  return value ? "yes" : "no";
}

// ---- the list --------------------------------------------------------------------------------

/** Read the connections again and show them. */
export async function loadSsoAdmin() {
  state.request?.abort();
  const mine = new AbortController();
  state.request = mine;
  ui.table.setAttribute("aria-busy", "true");
  try {
    const body = await getJson(orgPath(), {}, { signal: mine.signal });
    if (state.request !== mine) return;
    state.connections = Array.isArray(body?.data) ? body.data.filter((row) => row && typeof row === "object") : [];
    renderTable();
    refreshEditing();
    showProblem(ui.problem, "");
  } catch (error) {
    if (isAbort(error) || state.request !== mine) return;
    showProblem(ui.problem, `Single sign-on: ${describeError(error)}`);
  } finally {
    if (state.request === mine) {
      state.request = null;
      ui.table.removeAttribute("aria-busy");
    }
  }
}

function renderTable() {
  const rows = [...state.connections].sort((a, b) => String(a.name ?? "").localeCompare(String(b.name ?? "")));
  ui.count.textContent = rows.length ? `${rows.length} connection${rows.length === 1 ? "" : "s"}` : "";
  for (const old of ui.table.querySelectorAll("tbody")) old.remove();
  ui.table.append(
    h("tbody", {}, rows.length ? rows.map(connectionRow) : emptyRow(COLUMNS, "No single sign-on connections.")),
  );
}

function connectionRow(connection) {
  const id = String(connection.connection_id ?? "");
  const label = String(connection.name || id);
  const domains = Array.isArray(connection.allowed_domains) ? connection.allowed_domains : [];
  const oidc = connection.protocol === "oidc";
  const edit = h(
    "button",
    { type: "button", class: "button edit", "data-connection-id": id, title: `Edit ${label}` },
    "Edit",
  );
  edit.addEventListener("click", () => editConnection(connection));
  const test = /** @type {HTMLButtonElement} */ (
    h(
      "button",
      { type: "button", class: "button test", "data-connection-id": id, title: `Check that ${label}'s provider answers` },
      "Test",
    )
  );
  test.addEventListener("click", () => testConnection(connection, test));
  const remove = confirmButton("Remove", {
    class: "remove danger",
    confirm: "Remove?",
    title: `Remove ${label}: its members sign in with a password again`,
    data: { "connection-id": id },
    action: () => removeConnection(connection),
    onError: (error) => showProblem(ui.problem, `Remove ${label}: ${describeError(error)}`),
  });
  const editing = state.editing && String(state.editing.connection_id) === id;
  return h(
    "tr",
    { "data-connection-id": id, "data-protocol": text(connection.protocol), class: editing ? "current" : null },
    h("th", { scope: "row" }, label, h("span", { class: "sub mono" }, id)),
    h("td", {}, protocolName(connection.protocol) || DASH),
    h("td", { class: "domains" }, domains.length ? domains.join(", ") : DASH),
    h("td", { class: `flag flag-${yesNo(connection.jit)}` }, yesNo(connection.jit)),
    h("td", { class: `flag flag-${yesNo(connection.sso_required)}` }, yesNo(connection.sso_required)),
    oidc
      ? h("td", { class: `flag flag-${yesNo(connection.has_client_secret)}` }, yesNo(connection.has_client_secret))
      : h("td", { class: "none", title: "SAML connections have no client secret" }, DASH),
    h("td", { class: "action" }, h("span", { class: "actions" }, edit, test, remove)),
  );
}

/** After a reload, the connection being edited is the listed one (its secret state, its URLs). */
function refreshEditing() {
  if (!state.editing) return;
  const id = String(state.editing.connection_id);
  const fresh = state.connections.find((c) => String(c.connection_id) === id);
  if (fresh) {
    state.editing = fresh;
    renderEditingState();
  }
}

// ---- test and remove -------------------------------------------------------------------------

function showTestResult(connection, result) {
  const label = String(connection.name || connection.connection_id);
  if (!result) {
    ui.testResult.hidden = true;
    ui.testResult.textContent = "";
    delete ui.testResult.dataset.ok;
    delete ui.testResult.dataset.connectionId;
    return;
  }
  ui.testResult.dataset.ok = String(result.ok);
  ui.testResult.dataset.connectionId = String(connection.connection_id ?? "");
  ui.testResult.replaceChildren(
    h("strong", { class: "test-verdict" }, result.ok ? `${label}: OK` : `${label}: failed`),
    " \u2014 ",
    h("span", { class: "test-detail" }, result.detail || (result.ok ? "the provider answered" : "no detail given")),
  );
  ui.testResult.hidden = false;
}

async function testConnection(connection, button) {
  const run = ++state.testRun;
  button.disabled = true;
  ui.testResult.dataset.ok = "pending";
  ui.testResult.replaceChildren(`Testing ${String(connection.name || connection.connection_id)}\u2026`);
  ui.testResult.hidden = false;
  try {
    const answer = await sendJson(connectionPath(String(connection.connection_id), "/test"), { method: "POST" });
    if (run !== state.testRun) return;
    showTestResult(connection, { ok: Boolean(answer?.ok), detail: typeof answer?.detail === "string" ? answer.detail : "" });
  } catch (error) {
    if (run !== state.testRun) return;
    showTestResult(connection, { ok: false, detail: describeError(error) });
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

async function removeConnection(connection) {
  const id = String(connection.connection_id);
  await sendJson(connectionPath(id), { method: "DELETE" });
  showProblem(ui.problem, "");
  showNotice(ui.notice, `${String(connection.name || id)} was removed.`);
  if (ui.testResult.dataset.connectionId === id) showTestResult(connection, null);
  if (state.editing && String(state.editing.connection_id) === id) clearForm();
  await loadSsoAdmin();
}

// ---- the form --------------------------------------------------------------------------------

function roleRow(value = "", role = "viewer") {
  const index = ui.roleRows.children.length + 1;
  const input = h("input", {
    type: "text",
    class: "role-value",
    value,
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "300",
    placeholder: "claim value, such as desk-admins",
    "aria-label": `Claim value ${index}`,
  });
  const select = h("select", { class: "role-role", "aria-label": `Role for claim value ${index}` }, roleOptions(role, grantable()));
  /** @type {HTMLSelectElement} */ (select).value = role;
  const remove = h("button", { type: "button", class: "button remove-row", title: "Remove this value" }, "Remove");
  const item = h("li", { class: "role-row" }, input, h("span", { class: "arrow", "aria-hidden": "true" }, "\u2192"), select, remove);
  remove.addEventListener("click", () => {
    const next = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    renumberRows();
    /** @type {HTMLElement|null} */ (next?.querySelector("input") ?? ui.roleAdd).focus();
  });
  return item;
}

function renumberRows() {
  [...ui.roleRows.children].forEach((item, i) => {
    item.querySelector("input")?.setAttribute("aria-label", `Claim value ${i + 1}`);
    item.querySelector("select")?.setAttribute("aria-label", `Role for claim value ${i + 1}`);
  });
}

function fillDefaultRole(chosen) {
  ui.roleDefault.replaceChildren(
    h("option", { value: "" }, "no access"),
    ...roleOptions(chosen || "", grantable()).filter((option) => /** @type {HTMLOptionElement} */ (option).value),
  );
  ui.roleDefault.value = chosen || "";
}

/** The OIDC or the SAML fields, as the protocol chosen asks; the others are not required. */
function showProtocol() {
  const saml = ui.protocol.value === "saml";
  ui.oidcFields.hidden = saml;
  ui.samlFields.hidden = !saml;
  ui.issuer.required = !saml;
  ui.clientId.required = !saml;
  ui.idpMetadata.required = saml;
}

/** What the form says about the stored connection: the secret set or not, the SP metadata URL. */
function renderEditingState() {
  const c = state.editing;
  const hasSecret = Boolean(c?.has_client_secret);
  ui.secretState.textContent = c ? (hasSecret ? "a secret is set" : "none set") : "";
  ui.clientSecret.placeholder = hasSecret ? "\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022 (unchanged)" : "";
  ui.secretHelp.textContent = hasSecret
    ? "Left blank, the stored secret is kept; type a new one to replace it."
    : "Leave blank for a public client without a secret.";
  const metadataUrl = c && typeof c.sp_metadata_url === "string" ? c.sp_metadata_url : "";
  ui.spMetadataUrl.textContent = metadataUrl;
  ui.spMetadataUrl.hidden = !metadataUrl;
  ui.spMetadataNone.hidden = Boolean(metadataUrl);
  ui.spMetadataNone.textContent =
    c && c.protocol !== "saml" ? "Shown once the connection is saved as SAML." : "Shown once the connection is saved.";
  ui.idpMetadata.placeholder = c?.protocol === "saml" ? "The stored metadata is not shown: paste it again to save." : "<EntityDescriptor \u2026>";
  for (const row of ui.table.querySelectorAll("tbody tr[data-connection-id]")) {
    row.classList.toggle("current", Boolean(c) && row.getAttribute("data-connection-id") === String(c.connection_id));
  }
}

/** Put a connection's fields in the form (a new connection for null). */
function fillForm(connection) {
  const fields = formFields(connection);
  state.editing = connection;
  ui.formTitle.textContent = connection ? `Edit ${fields.name || fields.connectionId}` : "New connection";
  ui.connectionId.value = fields.connectionId;
  ui.connectionId.readOnly = Boolean(connection);
  ui.connectionId.title = connection ? "The id of a saved connection stays; remove it and make another to change it" : "";
  ui.name.value = fields.name;
  ui.protocol.value = fields.protocol;
  ui.issuer.value = fields.issuer;
  ui.clientId.value = fields.clientId;
  ui.clientSecret.value = "";
  ui.idpMetadata.value = "";
  ui.domains.value = fields.domains;
  ui.claim.value = fields.claim;
  ui.roleRows.replaceChildren();
  for (const row of fields.rows) ui.roleRows.append(roleRow(row.value, row.role));
  if (!fields.rows.length) ui.roleRows.append(roleRow("", "viewer"));
  fillDefaultRole(fields.defaultRole);
  ui.jit.checked = fields.jit;
  ui.ssoRequired.checked = fields.ssoRequired;
  ui.idpInitiated.checked = fields.allowIdpInitiated;
  ui.redirectCopied.textContent = "";
  showProblem(ui.formProblem, "");
  showProtocol();
  renderEditingState();
}

function clearForm() {
  fillForm(null);
}

function editConnection(connection) {
  showNotice(ui.notice, "");
  fillForm(connection);
  ui.form.scrollIntoView?.({ block: "start", behavior: "smooth" });
  ui.formTitle.focus({ preventScroll: true });
}

/** The form's fields as typed. */
function readForm() {
  return {
    connectionId: ui.connectionId.value,
    name: ui.name.value,
    protocol: ui.protocol.value,
    issuer: ui.issuer.value,
    clientId: ui.clientId.value,
    clientSecret: ui.clientSecret.value,
    idpMetadata: ui.idpMetadata.value,
    domains: ui.domains.value,
    claim: ui.claim.value,
    rows: [...ui.roleRows.children].map((item) => ({
      value: /** @type {HTMLInputElement} */ (item.querySelector("input.role-value"))?.value ?? "",
      role: /** @type {HTMLSelectElement} */ (item.querySelector("select.role-role"))?.value ?? "",
    })),
    defaultRole: ui.roleDefault.value,
    jit: ui.jit.checked,
    ssoRequired: ui.ssoRequired.checked,
    allowIdpInitiated: ui.idpInitiated.checked,
  };
}

async function save(event) {
  event.preventDefault();
  if (ui.save.disabled) return;
  const fields = readForm();
  const { body, error } = connectionBody(fields, { editing: Boolean(state.editing) });
  if (!body) {
    showProblem(ui.formProblem, error);
    return;
  }
  const id = fields.connectionId.trim();
  const isNew = !state.editing;
  if (isNew && state.connections.some((c) => String(c.connection_id) === id)) {
    showProblem(ui.formProblem, `A connection ${id} exists already: edit it, or choose another id.`);
    ui.connectionId.focus();
    return;
  }
  ui.save.disabled = true;
  ui.form.setAttribute("aria-busy", "true");
  showProblem(ui.formProblem, "");
  showNotice(ui.notice, "");
  try {
    const answer = await sendJson(connectionPath(id), { method: "PUT", body });
    const saved = answer && typeof answer === "object" && answer.connection_id ? answer : { ...body, connection_id: id };
    showNotice(ui.notice, `${String(saved.name || id)} was ${isNew ? "added" : "saved"}.`);
    fillForm(saved);
    await loadSsoAdmin();
  } catch (failure) {
    showProblem(ui.formProblem, `Save ${id}: ${describeError(failure)}`);
  } finally {
    ui.save.disabled = false;
    ui.form.removeAttribute("aria-busy");
  }
}

// ---- the section -----------------------------------------------------------------------------

/** @param {{context: () => {orgId: string, role: string} | null}} options */
export function initSsoAdmin(options) {
  context = options.context;
  ui.connectionId.pattern = CONNECTION_ID_PATTERN;
  ui.redirectUri.textContent = oidcRedirectUri(window.location.origin);
  wireCopy(ui.redirectCopy, ui.redirectUri, ui.redirectCopied);
  ui.protocol.addEventListener("change", showProtocol);
  ui.form.addEventListener("submit", save);
  ui.roleAdd.addEventListener("click", () => {
    const row = roleRow("", "viewer");
    ui.roleRows.append(row);
    row.querySelector("input")?.focus();
  });
  ui.cancel.addEventListener("click", () => {
    clearForm();
    ui.connectionId.focus();
  });
  ui.newButton.addEventListener("click", () => {
    showNotice(ui.notice, "");
    clearForm();
    ui.form.scrollIntoView?.({ block: "start", behavior: "smooth" });
    ui.connectionId.focus({ preventScroll: true });
  });
  clearForm();
}

/** The view is shown: an empty form gets the roles this user may hand out. */
export function showSsoAdmin() {
  if (!state.editing && !ui.name.value && !ui.connectionId.value) clearForm();
  loadSsoAdmin();
}

/** Forget everything shown (signed out, or another organisation); no secret stays in the form. */
export function resetSsoAdmin() {
  state.request?.abort();
  state.request = null;
  state.connections = [];
  state.testRun += 1;
  ui.form.reset();
  clearForm();
  showTestResult({}, null);
  ui.count.textContent = "";
  for (const old of ui.table.querySelectorAll("tbody")) old.remove();
  ui.table.append(h("tbody", {}, emptyRow(COLUMNS, "Loading\u2026")));
  ui.table.removeAttribute("aria-busy");
  showProblem(ui.problem, "");
  showNotice(ui.notice, "");
}

/** The view is left: no secret typed stays waiting in a hidden form. */
export function leaveSsoAdmin() {
  ui.clientSecret.value = "";
}
