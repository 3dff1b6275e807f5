// The sessions view: where the signed-in user is signed in (`/v1/me/sessions`), this device
// marked, a Revoke button for each other session and "Sign out everywhere else".

import { describeError, getJson, isAbort, sendJson } from "./api.js";
import { h, showProblem } from "./dom.js";
import { parseTime } from "./format.js";
import { confirmButton, emptyRow, showNotice, text, timeCell } from "./widgets.js";

const COLUMNS = 7;

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  table: /** @type {HTMLTableElement} */ ($("#sessions-table")),
  problem: $("#sessions-problem"),
  notice: $("#sessions-notice"),
  reload: /** @type {HTMLButtonElement} */ ($("#sessions-reload")),
  revokeOthers: /** @type {HTMLButtonElement} */ ($("#revoke-others")),
};

/** @type {AbortController|null} */
let request = null;

/** Authentication methods (`pwd otp`, or a list) in words. */
export function describeAmr(amr) {
  const list = Array.isArray(amr) ? amr : String(amr ?? "").split(/\s+/);
  const words = { pwd: "password", otp: "authenticator", mfa: "two-step", rec: "recovery code", recovery: "recovery code" };
  const shown = list.filter(Boolean).map((method) => words[method] ?? method);
  return shown.length ? shown.join(" + ") : "";
}

/** A user agent shortened for the table (the whole string is in the cell's title). */
export function shortAgent(agent) {
  const ua = String(agent ?? "");
  if (!ua) return "";
  const browser =
    /Edg\/(\d+)/.exec(ua)?.[0].replace("Edg/", "Edge ") ??
    /Firefox\/(\d+)/.exec(ua)?.[0].replace("/", " ") ??
    /Chrome\/(\d+)/.exec(ua)?.[0].replace("/", " ") ??
    (/Version\/(\d+).*Safari/.exec(ua) ? `Safari ${/Version\/(\d+)/.exec(ua)?.[1]}` : null);
  const system = /Windows|Android|iPhone|iPad|Mac OS X|Linux/.exec(ua)?.[0].replace("Mac OS X", "macOS");
  if (browser && system) return `${browser} on ${system}`;
  return ua.length > 60 ? `${ua.slice(0, 57)}\u2026` : ua;
}

/** Newest first; this device on top. */
function compareSessions(a, b) {
  return Number(Boolean(b.current)) - Number(Boolean(a.current)) || (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0);
}

function rowOf(session, now) {
  const current = Boolean(session.current);
  const id = String(session.session_id ?? "");
  const action = current
    ? h("span", { class: "badge current-badge", "data-current": "true" }, "This device")
    : confirmButton("Revoke", {
        class: "revoke danger",
        confirm: "Revoke?",
        title: "Sign this session out",
        data: { "session-id": id },
        action: () => revoke(id),
        onError: (error) => showProblem(ui.problem, `Revoke: ${describeError(error)}`),
      });
  const tr = h(
    "tr",
    { "data-session-id": id, class: current ? "current" : null, "aria-current": current ? "true" : null },
    timeCell(session.created_at, now),
    timeCell(session.last_used_at, now),
    timeCell(session.expires_at, now),
    h("td", { class: "ip" }, text(session.ip)),
    h("td", { class: "agent", title: session.user_agent ?? null }, text(shortAgent(session.user_agent))),
    h("td", { class: "amr", title: text(session.amr) }, text(describeAmr(session.amr))),
    h("td", { class: "action" }, action),
  );
  return tr;
}

function render(rows) {
  const now = Date.now();
  const sorted = [...rows].sort(compareSessions);
  const body = h("tbody", {}, sorted.length ? sorted.map((row) => rowOf(row, now)) : emptyRow(COLUMNS, "No sessions."));
  for (const old of ui.table.querySelectorAll("tbody")) old.remove();
  ui.table.append(body);
  ui.revokeOthers.disabled = !sorted.some((row) => !row.current);
}

/** Read the sessions again and show them. */
export async function loadSessions() {
  request?.abort();
  const mine = new AbortController();
  request = mine;
  ui.table.setAttribute("aria-busy", "true");
  try {
    const body = await getJson("v1/me/sessions", {}, { signal: mine.signal });
    if (request !== mine) return;
    render(Array.isArray(body?.data) ? body.data : []);
    showProblem(ui.problem, "");
  } catch (error) {
    if (isAbort(error) || request !== mine) return;
    showProblem(ui.problem, `Sessions: ${describeError(error)}`);
  } finally {
    if (request === mine) ui.table.removeAttribute("aria-busy");
  }
}

async function revoke(sessionId) {
  await sendJson(`v1/me/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE" });
  ui.table.querySelector(`tr[data-session-id="${CSS.escape(sessionId)}"]`)?.remove();
  showProblem(ui.problem, "");
  showNotice(ui.notice, "Session revoked.");
  await loadSessions();
}

async function revokeOthers() {
  const answer = await sendJson("v1/me/sessions/revoke-others", { method: "POST" });
  const count = Number(answer?.revoked);
  showProblem(ui.problem, "");
  showNotice(
    ui.notice,
    Number.isFinite(count)
      ? `Signed out ${count} other session${count === 1 ? "" : "s"}.`
      : "Signed out everywhere else.",
  );
  await loadSessions();
}

export function initSessions() {
  ui.reload.addEventListener("click", () => {
    showNotice(ui.notice, "");
    loadSessions();
  });
  ui.revokeOthers.addEventListener("click", async () => {
    ui.revokeOthers.disabled = true;
    try {
      await revokeOthers();
    } catch (error) {
      showProblem(ui.problem, `Sign out everywhere else: ${describeError(error)}`);
      ui.revokeOthers.disabled = false;
    }
  });
}

/** Forget what was shown (signed out). */
export function resetSessions() {
  request?.abort();
  request = null;
  for (const old of ui.table.querySelectorAll("tbody")) old.remove();
  ui.table.append(h("tbody", {}, emptyRow(COLUMNS, "Loading\u2026")));
  showProblem(ui.problem, "");
  showNotice(ui.notice, "");
}
