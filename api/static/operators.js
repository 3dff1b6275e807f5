// The operators' view (owners and admins of the platform's own organisation; the API refuses
// everyone else with 403 `operators_only`): every organisation's tier and usage this month
// (`/v1/admin/accounts`), sortable by usage, with one organisation's usage in detail; setting
// an organisation's tier with a reason (`PUT /v1/admin/orgs/{org}/tier`); and the feature flags
// (`/v1/admin/flags`) with an editor and delete. Whether the signed-in user is an operator is
// learnt from the accounts route itself: a 200 shows the view (and its link), a 403 does not.

import { ApiError, describeError, getJson, isAbort, sendJson } from "./api.js";
import { h, showProblem } from "./dom.js";
import { loadFlags } from "./flags.js";
import { DASH, formatNumber, toNumber } from "./format.js";
import { TIERS, UsageChart, renderQuota, renderTotals, statusText } from "./usage-view.js";
import { ROLES, confirmButton, emptyRow, showNotice, text } from "./widgets.js";

const ACCOUNT_COLUMNS = 9;
const FLAG_COLUMNS = 7;
const FLAG_NAME = /^[a-z][a-z0-9_.-]{1,63}$/;

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  denied: $("#operators-denied"),
  panels: /** @type {HTMLElement[]} */ ([...document.querySelectorAll("#operators-view .operators-only")]),
  accounts: /** @type {HTMLTableElement} */ ($("#accounts-table")),
  accountsCount: $("#accounts-count"),
  accountsNotice: $("#accounts-notice"),
  accountsProblem: $("#accounts-problem"),
  accountsReload: /** @type {HTMLButtonElement} */ ($("#accounts-reload")),
  tierForm: /** @type {HTMLFormElement} */ ($("#tier-form")),
  tierOrg: /** @type {HTMLSelectElement} */ ($("#tier-org")),
  tierTier: /** @type {HTMLSelectElement} */ ($("#tier-tier")),
  tierReason: /** @type {HTMLInputElement} */ ($("#tier-reason")),
  tierSubmit: /** @type {HTMLButtonElement} */ ($("#tier-submit")),
  orgUsage: $("#org-usage-panel"),
  orgUsageTitle: $("#org-usage-title"),
  orgUsageTier: $("#org-usage-tier"),
  orgUsageClose: /** @type {HTMLButtonElement} */ ($("#org-usage-close")),
  orgUsageProblem: $("#org-usage-problem"),
  orgQuota: $("#org-quota"),
  orgTotals: $("#org-usage-totals"),
  orgChart: /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("#org-usage-chart"))),
  orgChartCaption: $("#org-usage-chart-caption"),
  flags: /** @type {HTMLTableElement} */ ($("#flags-table")),
  flagsCount: $("#flags-count"),
  flagsNotice: $("#flags-notice"),
  flagsProblem: $("#flags-problem"),
  flagNew: /** @type {HTMLButtonElement} */ ($("#flag-new")),
  flagForm: /** @type {HTMLFormElement} */ ($("#flag-form")),
  flagFormTitle: $("#flag-form-title"),
  flagName: /** @type {HTMLInputElement} */ ($("#flag-name")),
  flagEnabled: /** @type {HTMLInputElement} */ ($("#flag-enabled")),
  flagPercentage: /** @type {HTMLInputElement} */ ($("#flag-percentage")),
  flagRoles: $("#flag-roles"),
  flagOrgsOn: /** @type {HTMLInputElement} */ ($("#flag-orgs-on")),
  flagOrgsOnNames: $("#flag-orgs-on-names"),
  flagOrgsOff: /** @type {HTMLInputElement} */ ($("#flag-orgs-off")),
  flagOrgsOffNames: $("#flag-orgs-off-names"),
  flagOrgList: $("#flag-org-list"),
  flagFormProblem: $("#flag-form-problem"),
  flagCancel: /** @type {HTMLButtonElement} */ ($("#flag-cancel")),
  flagSave: /** @type {HTMLButtonElement} */ ($("#flag-save")),
};

/**
 * @typedef {{org_id: string, name: string, tier: string, plan: string, status: string,
 *   rows_this_month: number, requests_this_month: number, monthly_row_quota: number|null}} Account
 * @typedef {{flag: string, enabled: boolean, percentage: number, roles: string[],
 *   org_ids_on: string[], org_ids_off: string[]}} FlagRule
 */

/** @type {(isOperator: boolean) => void} */
let onStatus = () => {};

const orgChart = new UsageChart(ui.orgChart, ui.orgChartCaption);

const state = {
  /** null: not known yet; else whether the accounts route answered 200 */
  operator: /** @type {boolean|null} */ (null),
  /** @type {Account[]} */
  accounts: [],
  sort: { key: "rows", descending: true },
  /** @type {FlagRule[]} */
  flags: [],
  /** @type {FlagRule | null} the flag the form edits; null: a new one */
  editing: null,
  /** @type {string | null} the organisation whose usage is shown in detail */
  usageOrg: null,
  /** @type {Map<string, AbortController>} */
  requests: new Map(),
};

function begin(kind) {
  state.requests.get(kind)?.abort();
  const controller = new AbortController();
  state.requests.set(kind, controller);
  return controller;
}

function isLatest(kind, controller) {
  return state.requests.get(kind) === controller;
}

function setOperator(value) {
  if (state.operator === value) return;
  state.operator = value;
  onStatus(value);
}

function isOperatorsOnly(error) {
  return error instanceof ApiError && error.status === 403;
}

function accountOf(orgId) {
  return state.accounts.find((account) => account.org_id === orgId);
}

function orgLabel(orgId) {
  const account = accountOf(orgId);
  return account ? `${account.name} (${orgId})` : orgId;
}

// ---- accounts --------------------------------------------------------------------------------

/**
 * Read every organisation's account; whether the user is an operator follows from the answer.
 * @returns {Promise<boolean|null>} whether an operator (null: could not tell)
 */
async function loadAccounts() {
  const request = begin("accounts");
  ui.accounts.setAttribute("aria-busy", "true");
  try {
    const body = await getJson("v1/admin/accounts", {}, { signal: request.signal });
    if (!isLatest("accounts", request)) return state.operator;
    state.accounts = (Array.isArray(body?.data) ? body.data : []).filter((row) => row && typeof row === "object");
    setOperator(true);
    renderAccounts();
    renderOrgOptions();
    showProblem(ui.accountsProblem, "");
    return true;
  } catch (error) {
    if (isAbort(error) || !isLatest("accounts", request)) return state.operator;
    if (isOperatorsOnly(error)) {
      setOperator(false);
      return false;
    }
    showProblem(ui.accountsProblem, `Organisations: ${describeError(error)}`, error);
    return null;
  } finally {
    if (isLatest("accounts", request)) ui.accounts.removeAttribute("aria-busy");
  }
}

/** The share of the quota an account has used this month (NaN when unlimited). */
function quotaShare(account) {
  const quota = toNumber(account.monthly_row_quota);
  return Number.isFinite(quota) && quota > 0 ? toNumber(account.rows_this_month) / quota : Number.NaN;
}

const SORTS = {
  name: (a, b) => String(a.name).localeCompare(String(b.name)) || String(a.org_id).localeCompare(String(b.org_id)),
  rows: (a, b) => toNumber(a.rows_this_month) - toNumber(b.rows_this_month),
  requests: (a, b) => toNumber(a.requests_this_month) - toNumber(b.requests_this_month),
  share: (a, b) => (Number.isFinite(quotaShare(a)) ? quotaShare(a) : -1) - (Number.isFinite(quotaShare(b)) ? quotaShare(b) : -1),
  tier: (a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier),
};

/** The accounts in the order the table's sort says (ties by name). */
export function sortAccounts(accounts, { key, descending }) {
  const compare = SORTS[key] ?? SORTS.rows;
  const sign = descending ? -1 : 1;
  return [...accounts].sort((a, b) => sign * compare(a, b) || SORTS.name(a, b));
}

function renderAccounts() {
  const rows = sortAccounts(state.accounts, state.sort);
  ui.accountsCount.textContent = `${rows.length} organisation${rows.length === 1 ? "" : "s"}`;
  for (const th of ui.accounts.querySelectorAll("thead th[data-sort]")) {
    const key = /** @type {HTMLElement} */ (th).dataset.sort;
    if (key === state.sort.key) th.setAttribute("aria-sort", state.sort.descending ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  for (const old of ui.accounts.querySelectorAll("tbody")) old.remove();
  ui.accounts.append(h("tbody", {}, rows.length ? rows.map(accountRow) : emptyRow(ACCOUNT_COLUMNS, "No organisations.")));
}

function accountRow(account) {
  const orgId = String(account.org_id);
  const share = quotaShare(account);
  const shareCell = Number.isFinite(share)
    ? h("td", { class: `num share${share >= 1 ? " over" : share >= 0.8 ? " warn" : ""}` }, `${(share * 100).toFixed(share > 0 && share < 0.1 ? 1 : 0)}\u202f%`, shareBar(share))
    : h("td", { class: "num none" }, DASH);
  const usage = h("button", { type: "button", class: "button usage", "data-org-id": orgId, title: `Usage of ${account.name} this month` }, "Usage");
  usage.addEventListener("click", () => showOrgUsage(orgId));
  const change = h("button", { type: "button", class: "button change-tier", "data-org-id": orgId, title: `Set the tier of ${account.name}` }, "Set tier");
  change.addEventListener("click", () => chooseTierOrg(orgId));
  return h(
    "tr",
    { "data-org-id": orgId, "data-tier": text(account.tier), class: state.usageOrg === orgId ? "current" : null },
    h("th", { scope: "row", class: "person" }, text(account.name), h("span", { class: "sub mono" }, orgId)),
    h("td", {}, h("span", { class: "tier-badge small", "data-tier": text(account.tier) }, text(account.tier))),
    h("td", {}, text(account.plan)),
    h("td", { class: `plan-status status-${text(account.status)}` }, statusText(account.status)),
    h("td", { class: "num rows" }, formatNumber(account.rows_this_month)),
    shareCell,
    h("td", { class: "num requests" }, formatNumber(account.requests_this_month)),
    h("td", { class: "num" }, account.monthly_row_quota === null || account.monthly_row_quota === undefined ? "unlimited" : formatNumber(account.monthly_row_quota)),
    h("td", { class: "action" }, h("span", { class: "actions" }, usage, change)),
  );
}

function shareBar(share) {
  const bar = h("span", { class: "share-bar", "aria-hidden": "true" });
  bar.style.setProperty("--p", `${Math.min(1, Math.max(0, share)) * 100}%`);
  return bar;
}

function sortBy(key) {
  const same = state.sort.key === key;
  // Usage sorts the most first; names from A.
  state.sort = { key, descending: same ? !state.sort.descending : key !== "name" };
  renderAccounts();
}

// ---- one organisation's usage ---------------------------------------------------------------

async function showOrgUsage(orgId) {
  state.usageOrg = orgId;
  ui.orgUsage.hidden = false;
  ui.orgUsage.dataset.orgId = orgId;
  ui.orgUsageTitle.textContent = `Usage of ${accountOf(orgId)?.name ?? orgId}`;
  ui.orgUsageTier.textContent = "";
  for (const row of ui.accounts.querySelectorAll("tbody tr[data-org-id]")) {
    row.classList.toggle("current", /** @type {HTMLElement} */ (row).dataset.orgId === orgId);
  }
  const request = begin("org-usage");
  ui.orgQuota.setAttribute("aria-busy", "true");
  try {
    const usage = await getJson(`v1/admin/orgs/${encodeURIComponent(orgId)}/usage`, {}, { signal: request.signal });
    if (!isLatest("org-usage", request) || state.usageOrg !== orgId) return;
    ui.orgUsageTier.textContent = `${text(usage?.tier)} tier \u00b7 ${statusText(usage?.status)}`;
    renderQuota(ui.orgQuota, usage);
    renderTotals(ui.orgTotals, usage);
    orgChart.setData(usage);
    showProblem(ui.orgUsageProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("org-usage", request)) return;
    showProblem(ui.orgUsageProblem, `Usage of ${orgLabel(orgId)}: ${describeError(error)}`, error);
  } finally {
    if (isLatest("org-usage", request)) ui.orgQuota.removeAttribute("aria-busy");
  }
  ui.orgUsage.scrollIntoView({ block: "nearest" });
}

function hideOrgUsage() {
  state.requests.get("org-usage")?.abort();
  state.usageOrg = null;
  ui.orgUsage.hidden = true;
  delete ui.orgUsage.dataset.orgId;
  ui.orgQuota.replaceChildren();
  ui.orgTotals.replaceChildren();
  orgChart.setData(null);
  showProblem(ui.orgUsageProblem, "");
  for (const row of ui.accounts.querySelectorAll("tbody tr.current")) row.classList.remove("current");
}

// ---- setting a tier --------------------------------------------------------------------------

function renderOrgOptions() {
  const chosen = ui.tierOrg.value;
  const sorted = [...state.accounts].sort(SORTS.name);
  ui.tierOrg.replaceChildren(
    h("option", { value: "", disabled: true }, sorted.length ? "Choose an organisation" : "No organisations"),
    ...sorted.map((account) => h("option", { value: account.org_id }, `${account.name} \u00b7 ${account.tier}`)),
  );
  ui.tierOrg.value = sorted.some((account) => account.org_id === chosen) ? chosen : "";
  ui.flagOrgList.replaceChildren(
    ...sorted.map((account) => h("option", { value: account.org_id }, account.name)),
  );
}

function chooseTierOrg(orgId) {
  ui.tierOrg.value = orgId;
  const account = accountOf(orgId);
  if (account) ui.tierTier.value = account.tier;
  ui.tierTier.focus();
}

async function setTier(event) {
  event.preventDefault();
  const orgId = ui.tierOrg.value;
  const tier = ui.tierTier.value;
  const reason = ui.tierReason.value.trim();
  if (!orgId) {
    showProblem(ui.accountsProblem, "Choose the organisation whose tier to set.");
    ui.tierOrg.focus();
    return;
  }
  if (!reason) {
    showProblem(ui.accountsProblem, "Say why the tier changes: the reason is kept in the log.");
    ui.tierReason.focus();
    return;
  }
  ui.tierSubmit.disabled = true;
  showNotice(ui.accountsNotice, "");
  try {
    const answer = await sendJson(`v1/admin/orgs/${encodeURIComponent(orgId)}/tier`, {
      method: "PUT",
      body: { tier, reason },
    });
    const name = accountOf(orgId)?.name ?? orgId;
    showProblem(ui.accountsProblem, "");
    showNotice(ui.accountsNotice, `${name} is now on the ${text(answer?.tier ?? tier)} tier.`);
    ui.tierReason.value = "";
    await loadAccounts();
    if (state.usageOrg === orgId) showOrgUsage(orgId);
  } catch (error) {
    showProblem(ui.accountsProblem, `Tier of ${orgLabel(orgId)}: ${describeError(error)}`, error);
  } finally {
    ui.tierSubmit.disabled = false;
  }
}

// ---- feature flags ---------------------------------------------------------------------------

function list(value) {
  return Array.isArray(value) ? value.map(String) : [];
}

async function loadFlagRules() {
  const request = begin("flags");
  ui.flags.setAttribute("aria-busy", "true");
  try {
    const body = await getJson("v1/admin/flags", {}, { signal: request.signal });
    if (!isLatest("flags", request)) return;
    state.flags = (Array.isArray(body?.data) ? body.data : [])
      .filter((row) => row && typeof row === "object")
      .map((row) => ({
        flag: String(row.flag),
        enabled: row.enabled === true,
        percentage: Number.isFinite(toNumber(row.percentage)) ? toNumber(row.percentage) : 100,
        roles: list(row.roles),
        org_ids_on: list(row.org_ids_on),
        org_ids_off: list(row.org_ids_off),
      }));
    renderFlagRules();
    showProblem(ui.flagsProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("flags", request)) return;
    showProblem(ui.flagsProblem, `Feature flags: ${describeError(error)}`, error);
  } finally {
    if (isLatest("flags", request)) ui.flags.removeAttribute("aria-busy");
  }
}

function orgNames(ids) {
  if (!ids.length) return h("span", { class: "none" }, DASH);
  return h(
    "span",
    {},
    ...ids.flatMap((id, i) => [
      i ? ", " : null,
      h("span", { title: id, "data-org-id": id }, accountOf(id)?.name ?? id),
    ]),
  );
}

function renderFlagRules() {
  const rows = [...state.flags].sort((a, b) => a.flag.localeCompare(b.flag));
  ui.flagsCount.textContent = rows.length ? `${rows.length} flag${rows.length === 1 ? "" : "s"}` : "";
  for (const old of ui.flags.querySelectorAll("tbody")) old.remove();
  ui.flags.append(h("tbody", {}, rows.length ? rows.map(flagRow) : emptyRow(FLAG_COLUMNS, "No feature flags.")));
}

function flagRow(rule) {
  const edit = h("button", { type: "button", class: "button edit", "data-flag": rule.flag, title: `Edit ${rule.flag}` }, "Edit");
  edit.addEventListener("click", () => editFlag(rule));
  const remove = confirmButton("Delete", {
    class: "remove danger",
    confirm: "Delete?",
    title: `Delete ${rule.flag}: it is off for everyone from then on`,
    data: { flag: rule.flag },
    action: () => deleteFlag(rule.flag),
    onError: (error) => showProblem(ui.flagsProblem, `Delete ${rule.flag}: ${describeError(error)}`, error),
  });
  return h(
    "tr",
    { "data-flag": rule.flag, "data-enabled": String(rule.enabled), class: state.editing?.flag === rule.flag ? "current" : null },
    h("th", { scope: "row", class: "mono" }, rule.flag),
    h("td", { class: rule.enabled ? "flag-yes" : "flag-no" }, rule.enabled ? "on" : "off"),
    h("td", { class: "num percentage" }, `${rule.percentage}\u202f%`),
    h("td", { class: "roles" }, rule.roles.length ? rule.roles.join(", ") : h("span", { class: "none" }, "every role")),
    h("td", { class: "orgs orgs-on" }, orgNames(rule.org_ids_on)),
    h("td", { class: "orgs orgs-off" }, orgNames(rule.org_ids_off)),
    h("td", { class: "action" }, h("span", { class: "actions" }, edit, remove)),
  );
}

function renderRoleChecks(chosen = []) {
  ui.flagRoles.replaceChildren(
    ...ROLES.map((role) =>
      h(
        "label",
        { class: "field check" },
        h("input", { type: "checkbox", name: "roles", value: role, checked: chosen.includes(role), "data-role": role }),
        h("span", {}, role),
      ),
    ),
  );
}

/** Organisation ids from a comma- or space-separated field; a known organisation's name works too. */
export function parseOrgIds(value, accounts = state.accounts) {
  const byName = new Map(accounts.map((account) => [String(account.name).toLowerCase(), account.org_id]));
  const ids = [];
  for (const part of String(value ?? "").split(/[,\n]/)) {
    const token = part.trim();
    if (!token) continue;
    const id = accounts.some((account) => account.org_id === token) ? token : (byName.get(token.toLowerCase()) ?? token);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** Under an organisations field: who its ids are, and which are not known here. */
function renderOrgPreview(input, target) {
  const ids = parseOrgIds(input.value);
  if (!ids.length) {
    target.textContent = "";
    return;
  }
  target.replaceChildren(
    ...ids.flatMap((id, i) => {
      const account = accountOf(id);
      return [
        i ? ", " : null,
        account ? h("span", {}, account.name) : h("span", { class: "warn" }, `${id} (not an organisation here)`),
      ];
    }),
  );
}

function fillFlagForm(rule) {
  state.editing = rule;
  ui.flagFormTitle.textContent = rule ? `Edit ${rule.flag}` : "New flag";
  ui.flagName.value = rule?.flag ?? "";
  ui.flagName.readOnly = Boolean(rule);
  ui.flagEnabled.checked = rule ? rule.enabled : false;
  ui.flagPercentage.value = String(rule ? rule.percentage : 100);
  renderRoleChecks(rule?.roles ?? []);
  ui.flagOrgsOn.value = (rule?.org_ids_on ?? []).join(", ");
  ui.flagOrgsOff.value = (rule?.org_ids_off ?? []).join(", ");
  renderOrgPreview(ui.flagOrgsOn, ui.flagOrgsOnNames);
  renderOrgPreview(ui.flagOrgsOff, ui.flagOrgsOffNames);
  showProblem(ui.flagFormProblem, "");
  for (const row of ui.flags.querySelectorAll("tbody tr[data-flag]")) {
    row.classList.toggle("current", Boolean(rule) && /** @type {HTMLElement} */ (row).dataset.flag === rule?.flag);
  }
}

function editFlag(rule) {
  fillFlagForm(rule);
  ui.flagFormTitle.focus();
}

/** The form as the body of `PUT /v1/admin/flags/{flag}`, or a reason it is not one. */
function flagBody() {
  const name = ui.flagName.value.trim();
  if (!FLAG_NAME.test(name)) {
    return { error: "Flag name: 2 to 64 of a-z, 0-9, '_', '.', '-', starting with a letter.", focus: ui.flagName };
  }
  const percentage = Number(ui.flagPercentage.value);
  if (!Number.isInteger(percentage) || percentage < 0 || percentage > 100) {
    return { error: "Percentage: a whole number from 0 to 100.", focus: ui.flagPercentage };
  }
  const roles = [...ui.flagRoles.querySelectorAll("input[name=roles]:checked")].map((input) => /** @type {HTMLInputElement} */ (input).value);
  const on = parseOrgIds(ui.flagOrgsOn.value);
  const off = parseOrgIds(ui.flagOrgsOff.value);
  const both = on.filter((id) => off.includes(id));
  if (both.length) {
    return { error: `Organisations both on and off: ${both.map(orgLabel).join(", ")}.`, focus: ui.flagOrgsOn };
  }
  return { name, body: { enabled: ui.flagEnabled.checked, percentage, roles, org_ids_on: on, org_ids_off: off } };
}

async function saveFlag(event) {
  event.preventDefault();
  const made = flagBody();
  if (made.error) {
    showProblem(ui.flagFormProblem, made.error);
    made.focus?.focus();
    return;
  }
  const { name, body } = made;
  ui.flagSave.disabled = true;
  showNotice(ui.flagsNotice, "");
  try {
    await sendJson(`v1/admin/flags/${encodeURIComponent(name)}`, { method: "PUT", body });
    showProblem(ui.flagFormProblem, "");
    showNotice(ui.flagsNotice, `Flag ${name} saved.`);
    fillFlagForm(null);
    await loadFlagRules();
    loadFlags(); // the user's own flags may have changed with it
  } catch (error) {
    showProblem(ui.flagFormProblem, `Save ${name}: ${describeError(error)}`, error);
  } finally {
    ui.flagSave.disabled = false;
  }
}

async function deleteFlag(name) {
  await sendJson(`v1/admin/flags/${encodeURIComponent(name)}`, { method: "DELETE" });
  showProblem(ui.flagsProblem, "");
  showNotice(ui.flagsNotice, `Flag ${name} deleted.`);
  if (state.editing?.flag === name) fillFlagForm(null);
  await loadFlagRules();
  loadFlags();
}

// ---- the view --------------------------------------------------------------------------------

/**
 * @param {{onStatus: (isOperator: boolean) => void}} options told when it is learnt whether
 *   the signed-in user is an operator
 */
export function initOperators(options) {
  onStatus = options.onStatus;
  for (const th of ui.accounts.querySelectorAll("thead th[data-sort]")) {
    const key = /** @type {HTMLElement} */ (th).dataset.sort ?? "rows";
    th.querySelector("button")?.addEventListener("click", () => sortBy(key));
  }
  ui.accountsReload.addEventListener("click", () => {
    showNotice(ui.accountsNotice, "");
    loadAccounts();
  });
  ui.tierForm.addEventListener("submit", setTier);
  ui.tierTier.replaceChildren(...TIERS.map((tier) => h("option", { value: tier }, tier)));
  ui.orgUsageClose.addEventListener("click", hideOrgUsage);
  ui.flagForm.addEventListener("submit", saveFlag);
  ui.flagNew.addEventListener("click", () => {
    fillFlagForm(null);
    ui.flagName.focus();
  });
  ui.flagCancel.addEventListener("click", () => fillFlagForm(null));
  ui.flagOrgsOn.addEventListener("input", () => renderOrgPreview(ui.flagOrgsOn, ui.flagOrgsOnNames));
  ui.flagOrgsOff.addEventListener("input", () => renderOrgPreview(ui.flagOrgsOff, ui.flagOrgsOffNames));
  fillFlagForm(null);
}

/** Whether the signed-in user is an operator: null until the accounts route has answered. */
export function isOperator() {
  return state.operator;
}

/**
 * Ask the accounts route whether the signed-in user is an operator (once per sign-in; the
 * owners and admins of other organisations are told no with a 403).
 * @returns {Promise<boolean|null>}
 */
export async function probeOperator() {
  if (state.operator !== null) return state.operator;
  return loadAccounts();
}

/** Show the view: the accounts first (they say whether the user may see it), then the flags. */
export async function loadOperators() {
  ui.denied.hidden = true;
  const operator = await loadAccounts();
  if (operator === false) {
    for (const panel of ui.panels) panel.hidden = true;
    ui.denied.hidden = false;
    return;
  }
  for (const panel of ui.panels) panel.hidden = false;
  if (operator) {
    loadFlagRules();
    if (state.usageOrg) showOrgUsage(state.usageOrg);
  }
}

/** The view is left: its requests stop. */
export function leaveOperators() {
  for (const [kind, controller] of state.requests) {
    if (kind !== "accounts") controller.abort();
  }
}

/** Forget everything shown and whether the user is an operator (signed out, or the role changed). */
export function resetOperators() {
  for (const controller of state.requests.values()) controller.abort();
  state.requests.clear();
  state.operator = null;
  state.accounts = [];
  state.flags = [];
  state.sort = { key: "rows", descending: true };
  hideOrgUsage();
  fillFlagForm(null);
  ui.tierForm.reset();
  ui.accountsCount.textContent = "";
  ui.flagsCount.textContent = "";
  for (const old of ui.accounts.querySelectorAll("tbody")) old.remove();
  ui.accounts.append(h("tbody", {}, emptyRow(ACCOUNT_COLUMNS, "Loading\u2026")));
  for (const old of ui.flags.querySelectorAll("tbody")) old.remove();
  ui.flags.append(h("tbody", {}, emptyRow(FLAG_COLUMNS, "Loading\u2026")));
  renderOrgOptions();
  for (const element of [ui.accountsProblem, ui.flagsProblem, ui.flagFormProblem]) showProblem(element, "");
  showNotice(ui.accountsNotice, "");
  showNotice(ui.flagsNotice, "");
  ui.denied.hidden = true;
}
