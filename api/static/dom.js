// Small DOM helpers. Text from the API only ever enters the page as text nodes or attribute
// values, never as HTML.

import { compareIso } from "./format.js";
import { isPlanProblem, isRateLimited } from "./http.js";

/** Where a refusal by the organisation's plan points: the Usage & plan page. */
export const PLAN_HASH = "#/billing";

/**
 * Create an element: `h("td", {class: "num"}, "12.30")`. Attributes that are null, undefined
 * or false are left out; `true` sets an empty attribute.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node|string|number|null|undefined)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replace the bodies of a table grouped by ISO: one per ISO of `groups`, in ISO order, made by
 * `body`; with no groups, one row across `columns` saying `empty`.
 * @template T
 * @param {HTMLTableElement} table
 * @param {Map<string, T[]>} groups
 * @param {number} columns
 * @param {string} empty
 * @param {(iso: string, items: T[]) => HTMLElement} body
 */
export function renderByIso(table, groups, columns, empty, body) {
  for (const old of table.querySelectorAll("tbody")) old.remove();
  if (!groups.size) {
    table.append(h("tbody", {}, h("tr", { class: "empty" }, h("td", { colspan: columns }, empty))));
    return;
  }
  for (const iso of [...groups.keys()].sort(compareIso)) table.append(body(iso, groups.get(iso)));
}

/** A `<time>` holding a UTC instant, its full value in the title. */
export function timeElement(ms, text, title) {
  const valid = Number.isFinite(ms);
  return h("time", { datetime: valid ? new Date(ms).toISOString() : null, title: title ?? null }, text);
}

/**
 * Show an error in a panel's problem line, or hide the line when `message` is empty. When the
 * error (or one of the errors) behind the message is a refusal by the organisation's plan, the
 * line links to the Usage & plan page and is marked `data-plan` (retrying will not help; an
 * upgrade will); a refusal for the rate links there too (higher tiers allow more), unmarked
 * (it passes).
 * @param {HTMLElement|null} element
 * @param {string} [message]
 * @param {unknown} [cause] the error, or a list of errors, the message describes
 */
export function showProblem(element, message, cause) {
  if (!element) return;
  const causes = Array.isArray(cause) ? cause : [cause];
  const plan = Boolean(message) && causes.some(isPlanProblem);
  const rate = Boolean(message) && causes.some(isRateLimited);
  element.replaceChildren(message ?? "");
  if (plan || rate) {
    element.append(
      " ",
      h("a", { class: "upgrade-link", href: PLAN_HASH, "data-testid": "upgrade-link" }, "See Usage & plan"),
    );
  }
  if (plan) element.dataset.plan = "true";
  else delete element.dataset.plan;
  element.hidden = !message;
}

/**
 * Make `target` look like `source` while keeping `target`'s elements: a row updated in place
 * keeps keyboard focus on its button, and anyone holding a reference to it still sees it.
 * Elements that differ in kind, or children that differ in number, are replaced.
 * @param {Element} target
 * @param {Element} source
 */
export function patch(target, source) {
  for (const { name } of [...target.attributes]) {
    if (!source.hasAttribute(name)) target.removeAttribute(name);
  }
  for (const { name, value } of source.attributes) {
    if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  }
  if (source instanceof HTMLElement && target instanceof HTMLElement) {
    target.style.cssText = source.style.cssText;
  }
  const next = [...source.childNodes];
  const current = [...target.childNodes];
  if (next.length !== current.length) {
    target.replaceChildren(...next);
    return;
  }
  next.forEach((node, i) => {
    const old = current[i];
    if (old.nodeType === Node.TEXT_NODE && node.nodeType === Node.TEXT_NODE) {
      if (old.nodeValue !== node.nodeValue) old.nodeValue = node.nodeValue;
    } else if (old instanceof Element && node instanceof Element && old.tagName === node.tagName) {
      patch(old, node);
    } else {
      old.replaceWith(node);
    }
  });
}

/** Briefly highlight an element that has just changed (restarting a running highlight). */
export function flash(element) {
  element.classList.remove("flash");
  // Reading the layout between removing and adding the class restarts the animation.
  void element.offsetWidth;
  element.classList.add("flash");
}

/** Remove the highlight once its animation ends, so that the next change can run it again. */
export function clearFlashOnEnd(root) {
  root.addEventListener("animationend", (event) => {
    // The animation runs on the cells of a flashed row; the class sits on the row.
    const flashed = event.target instanceof Element ? event.target.closest(".flash") : null;
    if (flashed && event.animationName === "flash") flashed.classList.remove("flash");
  });
}
