// Small pieces shared by the account views (sessions, admin): time cells, buttons that ask for a
// second click before something that cannot be undone, copying a secret, notices.

import { h, timeElement } from "./dom.js";
import { DASH, formatUtcFull, formatUtcShort, humaniseSeconds, parseTime } from "./format.js";

export const ROLES = Object.freeze(["owner", "admin", "analyst", "viewer", "billing"]);
export const ADMIN_ROLES = Object.freeze(["owner", "admin"]);
/** The roles that manage the organisation's subscription: checkout, the portal, invoices. */
export const BILLING_ROLES = Object.freeze(["owner", "admin", "billing"]);
/** The roles that read market data (billing does not: it only pays for it). */
export const MARKET_ROLES = Object.freeze(["owner", "admin", "analyst", "viewer"]);

export function isAdminRole(role) {
  return ADMIN_ROLES.includes(String(role ?? ""));
}

export function isBillingRole(role) {
  return BILLING_ROLES.includes(String(role ?? ""));
}

/** Whether a role reads prices; an unknown role is given the benefit of the doubt. */
export function readsMarket(role) {
  const name = String(role ?? "");
  return !ROLES.includes(name) || MARKET_ROLES.includes(name);
}

/** `3 h 12 min ago` or `in 2 d 4 h` from now. */
export function relative(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "";
  const seconds = (now - ms) / 1000;
  return seconds >= 0 ? `${humaniseSeconds(seconds)} ago` : `in ${humaniseSeconds(-seconds)}`;
}

/** A cell with a UTC time, how long ago (or until) under it, the full time in its title. */
export function timeCell(value, now = Date.now()) {
  const ms = parseTime(value);
  if (!Number.isFinite(ms)) return h("td", { class: "time none" }, DASH);
  return h(
    "td",
    { class: "time" },
    timeElement(ms, formatUtcShort(ms), formatUtcFull(ms)),
    h("span", { class: "sub" }, relative(ms, now)),
  );
}

/** Text of a value for a cell: `—` when there is none, lists joined, objects as JSON. */
export function text(value) {
  if (value === null || value === undefined || value === "") return DASH;
  if (Array.isArray(value)) return value.map(text).join(" ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

const ARM_MS = 4000;

/**
 * A button for an action that cannot be undone: the first click arms it (`Confirm?`,
 * `data-armed`), a second click within a few seconds runs `action`. While the action runs the
 * button is disabled; an error re-enables it and goes to `onError`.
 * @param {string} label
 * @param {{class?: string, title?: string, data?: Record<string, string>, confirm?: string,
 *   action: () => Promise<unknown>, onError: (error: unknown) => void}} options
 * @returns {HTMLButtonElement}
 */
export function confirmButton(label, { action, onError, confirm = `${label}?`, ...options }) {
  const attrs = { type: "button", class: `button ${options.class ?? ""}`.trim(), title: options.title ?? null };
  for (const [name, value] of Object.entries(options.data ?? {})) attrs[`data-${name}`] = value;
  const button = /** @type {HTMLButtonElement} */ (h("button", attrs, label));
  let timer = 0;
  const disarm = () => {
    window.clearTimeout(timer);
    delete button.dataset.armed;
    button.textContent = label;
  };
  button.addEventListener("click", async () => {
    if (button.dataset.armed === undefined) {
      button.dataset.armed = "true";
      button.textContent = confirm;
      timer = window.setTimeout(disarm, ARM_MS);
      return;
    }
    disarm();
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      onError(error);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  button.addEventListener("blur", () => {
    if (button.dataset.armed !== undefined) disarm();
  });
  return button;
}

/**
 * Copy the text of `source` to the clipboard; where the Clipboard API is not allowed (a page
 * that is not a secure context) the text is selected and copied the older way.
 * @param {HTMLElement} source
 * @returns {Promise<boolean>} whether it was copied
 */
export async function copyText(source) {
  const value = source.textContent ?? "";
  try {
    await navigator.clipboard.writeText(value);
    return true;
  } catch {
    const selection = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(source);
    selection?.removeAllRanges();
    selection?.addRange(range);
    try {
      return document.execCommand("copy");
    } catch {
      return false; // selected at least: the user can copy it
    }
  }
}

/**
 * Wire a copy button to the element holding a secret; its status line says whether it worked.
 * @param {HTMLButtonElement} button
 * @param {HTMLElement} source
 * @param {HTMLElement} status
 */
export function wireCopy(button, source, status) {
  button.addEventListener("click", async () => {
    const copied = await copyText(source);
    status.textContent = copied ? "Copied." : "Selected: copy it with Ctrl+C (\u2318C).";
  });
}

/**
 * Show a notice (a success message) or hide it with an empty message.
 * @param {HTMLElement|null} element
 * @param {string} [message]
 */
export function showNotice(element, message) {
  if (!element) return;
  element.textContent = message ?? "";
  element.hidden = !message;
}

/** Options of a role select, the current role chosen; roles outside `allowed` are disabled. */
export function roleOptions(current, allowed = ROLES) {
  const roles = ROLES.includes(current) || !current ? [...ROLES] : [...ROLES, current];
  return roles.map((role) =>
    h("option", { value: role, selected: role === current, disabled: !allowed.includes(role) && role !== current }, role),
  );
}

/** One row across a table saying there is nothing (or that it is loading). */
export function emptyRow(columns, message) {
  return h("tr", { class: "empty" }, h("td", { colspan: columns }, message));
}
