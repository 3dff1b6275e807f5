// The admin view (owners and admins): the organisation's members and their roles, invitations,
// API keys, single sign-on (sso-admin.js) and the audit log. A new invitation's token and a new API key are shown once, when
// they are made; the API keeps only their hashes.

import { describeError, getAll, getJson, isAbort, sendJson } from "./api.js";
import { h, showProblem } from "./dom.js";
import { DASH, parseTime } from "./format.js";
import { initSsoAdmin, leaveSsoAdmin, resetSsoAdmin, showSsoAdmin } from "./sso-admin.js";
import {
  ROLES,
  confirmButton,
  emptyRow,
  roleOptions,
  showNotice,
  text,
  timeCell,
  wireCopy,
} from "./widgets.js";

const AUDIT_PAGE = 50;

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  org: $("#admin-org"),
  members: /** @type {HTMLTableElement} */ ($("#members-table")),
  membersCount: $("#members-count"),
  membersProblem: $("#members-problem"),
  membersNotice: $("#members-notice"),
  invitations: /** @type {HTMLTableElement} */ ($("#invitations-table")),
  invitationsProblem: $("#invitations-problem"),
  inviteForm: /** @type {HTMLFormElement} */ ($("#new-invitation-form")),
  inviteEmail: /** @type {HTMLInputElement} */ ($("#invite-email")),
  inviteRole: /** @type {HTMLSelectElement} */ ($("#invite-role")),
  inviteSubmit: /** @type {HTMLButtonElement} */ ($("#invite-submit")),
  inviteResult: $("#new-invitation-result"),
  inviteResultEmail: $("#new-invitation-email"),
  inviteToken: $("#new-invitation-token"),
  inviteCopy: /** @type {HTMLButtonElement} */ ($("#new-invitation-copy")),
  inviteDone: /** @type {HTMLButtonElement} */ ($("#new-invitation-done")),
  inviteCopied: $("#new-invitation-copied"),
  keys: /** @type {HTMLTableElement} */ ($("#keys-table")),
  keysProblem: $("#keys-problem"),
  keyForm: /** @type {HTMLFormElement} */ ($("#new-key-form")),
  keyName: /** @type {HTMLInputElement} */ ($("#key-name")),
  keyRole: /** @type {HTMLSelectElement} */ ($("#key-role")),
  keyScope: /** @type {HTMLSelectElement} */ ($("#key-scope")),
  keyExpires: /** @type {HTMLInputElement} */ ($("#key-expires")),
  keySubmit: /** @type {HTMLButtonElement} */ ($("#key-submit")),
  keyResult: $("#new-key-result"),
  keyResultName: $("#new-key-name"),
  keySecret: $("#new-key-secret"),
  keyCopy: /** @type {HTMLButtonElement} */ ($("#new-key-copy")),
  keyDone: /** @type {HTMLButtonElement} */ ($("#new-key-done")),
  keyCopied: $("#new-key-copied"),
  audit: /** @type {HTMLTableElement} */ ($("#audit-table")),
  auditProblem: $("#audit-problem"),
  auditForm: /** @type {HTMLFormElement} */ ($("#audit-filter-form")),
  auditAction: /** @type {HTMLInputElement} */ ($("#audit-action")),
  auditActions: $("#audit-actions"),
  auditOutcome: /** @type {HTMLSelectElement} */ ($("#audit-outcome")),
  auditPage: $("#audit-page"),
  auditNewest: /** @type {HTMLButtonElement} */ ($("#audit-newest")),
  auditNewer: /** @type {HTMLButtonElement} */ ($("#audit-newer")),
  auditOlder: /** @type {HTMLButtonElement} */ ($("#audit-older")),
};

/**
 * @typedef {{orgId: string, orgName?: string, userId: string, role: string}} AdminContext
 * @type {() => AdminContext | null}
 */
let context = () => null;

const state = {
  /** @type {Map<string, {email?: string, display_name?: string}>} user id -> member */
  members: new Map(),
  /** The audit pages' cursors: [null (newest), cursor of page 2, ...]; the last is shown. */
  auditCursors: [null],
  /** @type {string|null} the shown page's next_cursor */
  auditNext: null,
  auditFilter: { action: "", outcome: "" },
  /** @type {Set<string>} actions and outcomes seen, offered in the filters */
  actionsSeen: new Set(),
  outcomesSeen: new Set(["accepted", "rejected"]),
  /** @type {Map<string, AbortController>} */
  requests: new Map(),
};

function orgPath(suffix = "") {
  const ctx = context();
  if (!ctx) throw new Error("not signed in");
  return `v1/orgs/${encodeURIComponent(ctx.orgId)}${suffix}`;
}

/** Roles this user may hand out: only an owner makes owners. */
function grantable() {
  const role = context()?.role;
  return role === "owner" ? [...ROLES] : ROLES.filter((r) => r !== "owner");
}

/** Abort the previous load of the same kind; the new one's signal. */
function begin(kind) {
  state.requests.get(kind)?.abort();
  const controller = new AbortController();
  state.requests.set(kind, controller);
  return controller;
}

function isLatest(kind, controller) {
  return state.requests.get(kind) === controller;
}

function replaceBody(table, rows, columns, empty) {
  for (const old of table.querySelectorAll("tbody")) old.remove();
  table.append(h("tbody", {}, rows.length ? rows : emptyRow(columns, empty)));
}

/** `Ada Lovelace` over `ada@example.com`, or the id when the user is not a member (any more). */
function personCell(userId, kind) {
  const member = userId ? state.members.get(String(userId)) : undefined;
  const name = member?.display_name || member?.email || text(userId);
  const sub = [member?.display_name ? member.email : null, kind && kind !== "user" ? kind : null].filter(Boolean);
  return h(
    "td",
    { class: "person", title: userId ? String(userId) : null },
    name,
    sub.length ? h("span", { class: "sub" }, sub.join(" \u00b7 ")) : null,
  );
}

// ---- members ---------------------------------------------------------------------------------

async function loadMembers() {
  const request = begin("members");
  try {
    const rows = await getAll(orgPath("/members"), {}, { signal: request.signal });
    if (!isLatest("members", request)) return;
    state.members = new Map(rows.map((row) => [String(row.user_id), row]));
    renderMembers(rows);
    showProblem(ui.membersProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("members", request)) return;
    showProblem(ui.membersProblem, `Members: ${describeError(error)}`);
  }
}

function renderMembers(rows) {
  const ctx = context();
  const sorted = [...rows].sort(
    (a, b) =>
      ROLES.indexOf(a.role) - ROLES.indexOf(b.role) || String(a.email ?? "").localeCompare(String(b.email ?? "")),
  );
  ui.membersCount.textContent = `${sorted.length} member${sorted.length === 1 ? "" : "s"}`;
  replaceBody(ui.members, sorted.map((row) => memberRow(row, ctx)), 4, "No members.");
}

function memberRow(member, ctx) {
  const userId = String(member.user_id);
  const self = ctx?.userId === userId;
  const select = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      {
        class: "role-select",
        "data-user-id": userId,
        "aria-label": `Role of ${member.email ?? userId}`,
        disabled: self,
        title: self ? "Your own role is changed by another owner or admin" : null,
      },
      roleOptions(member.role, grantable()),
    )
  );
  select.addEventListener("change", () => changeRole(member, select));
  const remove = self
    ? h("span", { class: "badge" }, "you")
    : confirmButton("Remove", {
        class: "remove danger",
        confirm: "Remove?",
        title: `Remove ${member.email ?? userId} from the organisation`,
        data: { "user-id": userId },
        action: () => removeMember(member),
        onError: (error) => showProblem(ui.membersProblem, `Remove ${member.email ?? userId}: ${describeError(error)}`),
      });
  return h(
    "tr",
    { "data-user-id": userId, class: self ? "current" : null },
    h(
      "th",
      { scope: "row", class: "person" },
      member.display_name || member.email || userId,
      h("span", { class: "sub" }, member.display_name ? text(member.email) : userId),
    ),
    h("td", { class: "role" }, select),
    timeCell(member.since),
    h("td", { class: "action" }, remove),
  );
}

async function changeRole(member, select) {
  const previous = member.role;
  const role = select.value;
  select.disabled = true;
  showNotice(ui.membersNotice, "");
  try {
    const answer = await sendJson(
      orgPath(`/members/${encodeURIComponent(member.user_id)}/role`),
      { method: "PUT", body: { role } },
    );
    member.role = answer && typeof answer.role === "string" ? answer.role : role;
    select.value = member.role;
    showProblem(ui.membersProblem, "");
    showNotice(ui.membersNotice, `${member.email ?? member.user_id} is now ${member.role}.`);
  } catch (error) {
    select.value = previous;
    showProblem(ui.membersProblem, `Role of ${member.email ?? member.user_id}: ${describeError(error)}`);
  } finally {
    select.disabled = false;
  }
}

async function removeMember(member) {
  await sendJson(orgPath(`/members/${encodeURIComponent(member.user_id)}`), { method: "DELETE" });
  showProblem(ui.membersProblem, "");
  showNotice(ui.membersNotice, `${member.email ?? member.user_id} was removed.`);
  await loadMembers();
}

// ---- invitations -----------------------------------------------------------------------------

/** pending, accepted or expired. */
export function invitationStatus(invitation, now = Date.now()) {
  if (invitation.accepted_at || invitation.accepted_by) return "accepted";
  if (invitation.revoked_at) return "revoked";
  const expires = parseTime(invitation.expires_at);
  return Number.isFinite(expires) && expires <= now ? "expired" : "pending";
}

async function loadInvitations() {
  const request = begin("invitations");
  try {
    const rows = await getAll(orgPath("/invitations"), {}, { signal: request.signal });
    if (!isLatest("invitations", request)) return;
    const now = Date.now();
    const sorted = [...rows].sort((a, b) => (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0));
    replaceBody(
      ui.invitations,
      sorted.map((row) => {
        const status = invitationStatus(row, now);
        return h(
          "tr",
          { "data-invitation-id": text(row.invitation_id), "data-status": status },
          h("td", {}, text(row.email)),
          h("td", {}, text(row.role)),
          timeCell(row.created_at, now),
          timeCell(row.expires_at, now),
          h("td", { class: `status status-${status}` }, status),
        );
      }),
      5,
      "No invitations.",
    );
    showProblem(ui.invitationsProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("invitations", request)) return;
    showProblem(ui.invitationsProblem, `Invitations: ${describeError(error)}`);
  }
}

async function invite(event) {
  event.preventDefault();
  const email = ui.inviteEmail.value.trim();
  if (!email) return;
  ui.inviteSubmit.disabled = true;
  try {
    const answer = await sendJson(orgPath("/invitations"), { body: { email, role: ui.inviteRole.value } });
    ui.inviteResultEmail.textContent = `${text(answer?.email ?? email)} (${text(answer?.role ?? ui.inviteRole.value)})`;
    ui.inviteToken.textContent = text(answer?.token);
    ui.inviteCopied.textContent = "";
    ui.inviteResult.hidden = false;
    ui.inviteForm.reset();
    fillRoleSelect(ui.inviteRole, "viewer");
    showProblem(ui.invitationsProblem, "");
    await loadInvitations();
  } catch (error) {
    showProblem(ui.invitationsProblem, `Invite ${email}: ${describeError(error)}`);
  } finally {
    ui.inviteSubmit.disabled = false;
  }
}

function hideInvitationToken() {
  ui.inviteResult.hidden = true;
  ui.inviteToken.textContent = "";
  ui.inviteResultEmail.textContent = "";
  ui.inviteCopied.textContent = "";
}

// ---- API keys --------------------------------------------------------------------------------

/** active, revoked or expired. */
export function keyStatus(key, now = Date.now()) {
  if (key.revoked_at) return "revoked";
  const expires = parseTime(key.expires_at);
  return Number.isFinite(expires) && expires <= now ? "expired" : "active";
}

async function loadKeys() {
  const request = begin("keys");
  try {
    const rows = await getAll(orgPath("/api-keys"), {}, { signal: request.signal });
    if (!isLatest("keys", request)) return;
    const now = Date.now();
    const sorted = [...rows].sort(
      (a, b) =>
        Number(keyStatus(a, now) !== "active") - Number(keyStatus(b, now) !== "active") ||
        (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0),
    );
    replaceBody(ui.keys, sorted.map((row) => keyRow(row, now)), 8, "No API keys.");
    showProblem(ui.keysProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("keys", request)) return;
    showProblem(ui.keysProblem, `API keys: ${describeError(error)}`);
  }
}

function keyRow(key, now) {
  const keyId = text(key.key_id);
  const status = keyStatus(key, now);
  const action =
    status === "active"
      ? confirmButton("Revoke", {
          class: "revoke danger",
          confirm: "Revoke?",
          title: `Revoke ${key.name ?? keyId}: requests with it are refused from then on`,
          data: { "key-id": keyId },
          action: () => revokeKey(key),
          onError: (error) => showProblem(ui.keysProblem, `Revoke ${key.name ?? keyId}: ${describeError(error)}`),
        })
      : null;
  return h(
    "tr",
    { "data-key-id": keyId, "data-status": status },
    h("th", { scope: "row" }, text(key.name), h("span", { class: "sub" }, key.created_by ? `by ${personName(key.created_by)}` : null)),
    h("td", { class: "mono" }, text(key.prefix)),
    h("td", {}, text(key.role)),
    h("td", {}, text(key.scope)),
    timeCell(key.created_at, now),
    key.expires_at ? timeCell(key.expires_at, now) : h("td", { class: "none" }, "never"),
    h("td", { class: `status status-${status}` }, status, key.revoked_at ? h("span", { class: "sub" }, `${text(key.revoked_at).slice(0, 10)}`) : null),
    h("td", { class: "action" }, action),
  );
}

function personName(userId) {
  const member = state.members.get(String(userId));
  return member?.email || String(userId);
}

/** `2025-06-30` from a date input as the end of that UTC day. */
export function endOfUtcDay(day) {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? `${day}T23:59:59Z` : null;
}

async function createKey(event) {
  event.preventDefault();
  const name = ui.keyName.value.trim();
  if (!name) return;
  const body = { name, role: ui.keyRole.value, scope: ui.keyScope.value };
  const expires = endOfUtcDay(ui.keyExpires.value);
  if (expires) {
    if (parseTime(expires) <= Date.now()) {
      showProblem(ui.keysProblem, "The expiry date has passed: choose a later day, or none.");
      return;
    }
    body.expires_at = expires;
  }
  ui.keySubmit.disabled = true;
  try {
    const answer = await sendJson(orgPath("/api-keys"), { body });
    ui.keyResultName.textContent = `${text(answer?.name ?? name)} (${text(answer?.role ?? body.role)}, ${text(answer?.scope ?? body.scope)})`;
    ui.keySecret.textContent = text(answer?.api_key);
    ui.keyCopied.textContent = "";
    ui.keyResult.hidden = false;
    ui.keyForm.reset();
    fillRoleSelect(ui.keyRole, "viewer");
    showProblem(ui.keysProblem, "");
    ui.keyCopy.focus();
    await loadKeys();
  } catch (error) {
    showProblem(ui.keysProblem, `Create key ${name}: ${describeError(error)}`);
  } finally {
    ui.keySubmit.disabled = false;
  }
}

function hideKeySecret() {
  ui.keyResult.hidden = true;
  ui.keySecret.textContent = "";
  ui.keyResultName.textContent = "";
  ui.keyCopied.textContent = "";
}

async function revokeKey(key) {
  await sendJson(orgPath(`/api-keys/${encodeURIComponent(key.key_id)}`), { method: "DELETE" });
  showProblem(ui.keysProblem, "");
  await loadKeys();
}

// ---- audit log -------------------------------------------------------------------------------

async function loadAudit() {
  const request = begin("audit");
  const cursor = state.auditCursors[state.auditCursors.length - 1];
  const { action, outcome } = state.auditFilter;
  ui.audit.setAttribute("aria-busy", "true");
  setPager(false);
  try {
    const body = await getJson(
      orgPath("/audit"),
      { action, outcome, limit: AUDIT_PAGE, cursor },
      { signal: request.signal },
    );
    if (!isLatest("audit", request)) return;
    const rows = Array.isArray(body?.data) ? body.data : [];
    state.auditNext = typeof body?.next_cursor === "string" && body.next_cursor ? body.next_cursor : null;
    renderAudit(rows);
    showProblem(ui.auditProblem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("audit", request)) return;
    state.auditNext = null;
    showProblem(ui.auditProblem, `Audit log: ${describeError(error)}`);
  } finally {
    if (isLatest("audit", request)) {
      ui.audit.removeAttribute("aria-busy");
      setPager(true);
    }
  }
}

function setPager(enabled) {
  const page = state.auditCursors.length;
  ui.auditNewest.disabled = !enabled || page === 1;
  ui.auditNewer.disabled = !enabled || page === 1;
  ui.auditOlder.disabled = !enabled || !state.auditNext;
  const filters = [state.auditFilter.action, state.auditFilter.outcome].filter(Boolean).join(", ");
  ui.auditPage.textContent = `page ${page}${filters ? ` \u00b7 ${filters}` : ""}`;
}

function renderAudit(rows) {
  const now = Date.now();
  for (const row of rows) {
    if (row.action) state.actionsSeen.add(String(row.action));
    if (row.outcome) state.outcomesSeen.add(String(row.outcome));
  }
  ui.auditActions.replaceChildren(...[...state.actionsSeen].sort().map((action) => h("option", { value: action })));
  const known = new Set([...ui.auditOutcome.options].map((o) => o.value));
  for (const outcome of [...state.outcomesSeen].sort()) {
    if (!known.has(outcome)) ui.auditOutcome.append(h("option", { value: outcome }, outcome));
  }
  replaceBody(
    ui.audit,
    rows.map((row) => {
      const outcome = text(row.outcome);
      const target = [row.target_type, row.target_id].filter((part) => part !== null && part !== undefined && part !== "");
      return h(
        "tr",
        { "data-event-id": text(row.event_id), "data-outcome": outcome },
        timeCell(row.occurred_at, now),
        h("td", { class: "mono" }, text(row.action)),
        h("td", { class: `status outcome-${outcome}` }, outcome),
        personCell(row.actor_id, row.actor_kind),
        h(
          "td",
          { class: "target" },
          target.length ? text(row.target_type) : DASH,
          row.target_id ? h("span", { class: "sub", title: String(row.target_id) }, targetName(row)) : null,
        ),
        h(
          "td",
          { class: "agent", title: row.user_agent ?? null },
          text(row.ip),
        ),
        h("td", { class: "detail" }, text(row.detail)),
      );
    }),
    7,
    state.auditFilter.action || state.auditFilter.outcome ? "No entries match." : "No entries.",
  );
}

/** A target that is a member is named by email. */
function targetName(row) {
  const member = state.members.get(String(row.target_id));
  return member?.email ?? String(row.target_id);
}

function filterAudit(event) {
  event.preventDefault();
  state.auditFilter = { action: ui.auditAction.value.trim(), outcome: ui.auditOutcome.value };
  state.auditCursors = [null];
  loadAudit();
}

// ---- the view --------------------------------------------------------------------------------

function fillRoleSelect(select, chosen) {
  select.replaceChildren(...roleOptions(chosen, grantable()));
  select.value = chosen;
}

/**
 * @param {{context: () => AdminContext | null}} options who is signed in, and in which organisation
 */
export function initAdmin(options) {
  context = options.context;
  initSsoAdmin({ context: options.context });
  ui.inviteForm.addEventListener("submit", invite);
  ui.keyForm.addEventListener("submit", createKey);
  ui.auditForm.addEventListener("submit", filterAudit);
  ui.auditOutcome.addEventListener("change", () => ui.auditForm.requestSubmit());
  ui.auditOlder.addEventListener("click", () => {
    if (!state.auditNext) return;
    state.auditCursors.push(state.auditNext);
    loadAudit();
  });
  ui.auditNewer.addEventListener("click", () => {
    if (state.auditCursors.length > 1) state.auditCursors.pop();
    loadAudit();
  });
  ui.auditNewest.addEventListener("click", () => {
    state.auditCursors = [null];
    loadAudit();
  });
  wireCopy(ui.keyCopy, ui.keySecret, ui.keyCopied);
  wireCopy(ui.inviteCopy, ui.inviteToken, ui.inviteCopied);
  ui.keyDone.addEventListener("click", hideKeySecret);
  ui.inviteDone.addEventListener("click", hideInvitationToken);
}

/** The organisation in the view's title: its name once known, its id until then. */
export function renderAdminTitle() {
  const ctx = context();
  ui.org.textContent = ctx ? `of ${ctx.orgName || ctx.orgId}` : "";
}

/** Show the view: everything read again (members first, to name the people in the rest). */
export async function loadAdmin() {
  const ctx = context();
  if (!ctx) return;
  renderAdminTitle();
  fillRoleSelect(ui.inviteRole, ui.inviteRole.value || "viewer");
  fillRoleSelect(ui.keyRole, ui.keyRole.value || "viewer");
  const members = loadMembers();
  loadInvitations();
  showSsoAdmin();
  await members;
  loadKeys();
  loadAudit();
}

/** The view is left: a secret shown once does not wait on a hidden page. */
export function leaveAdmin() {
  hideKeySecret();
  hideInvitationToken();
  leaveSsoAdmin();
}

/** Forget everything shown, secrets first (signed out, or another organisation). */
export function resetAdmin() {
  for (const controller of state.requests.values()) controller.abort();
  state.requests.clear();
  resetSsoAdmin();
  hideKeySecret();
  hideInvitationToken();
  state.members = new Map();
  state.auditCursors = [null];
  state.auditNext = null;
  state.auditFilter = { action: "", outcome: "" };
  state.actionsSeen = new Set();
  ui.auditActions.replaceChildren();
  ui.auditForm.reset();
  ui.inviteForm.reset();
  ui.keyForm.reset();
  ui.org.textContent = "";
  ui.membersCount.textContent = "";
  ui.auditPage.textContent = "";
  replaceBody(ui.members, [], 4, "Loading\u2026");
  replaceBody(ui.invitations, [], 5, "Loading\u2026");
  replaceBody(ui.keys, [], 8, "Loading\u2026");
  replaceBody(ui.audit, [], 7, "Loading\u2026");
  for (const element of [ui.membersProblem, ui.invitationsProblem, ui.keysProblem, ui.auditProblem]) {
    showProblem(element, "");
  }
  showNotice(ui.membersNotice, "");
}
