// Panel 4: data quality. The rows of the quality routes are drawn generically, every field they
// have, so that a column added to a read model shows up without a change here; fields whose
// names say what they hold (`_utc`, `_seconds`, `_share`) get a readable form.

import { h, timeElement } from "./dom.js";
import {
  DASH,
  formatNumber,
  formatPrice,
  formatShare,
  formatUtcFull,
  formatUtcShort,
  humaniseSeconds,
  parseTime,
  toNumber,
} from "./format.js";

// Fields read first, and bookkeeping fields read last; everything else keeps the API's order.
const FIRST = ["iso", "dataset", "series_key", "reason_code", "reason_codes", "records", "count", "status"];
const LAST = ["event_id", "source", "occurred_at_utc", "recorded_at_utc"];
const MAX_ROWS = 500;
const COUNT_FIELDS = ["records", "count", "dead_letters", "total"];

/** The columns of a set of rows: the union of their fields. */
export function columnsOf(rows) {
  const seen = new Set();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  const first = FIRST.filter((key) => seen.has(key));
  const last = LAST.filter((key) => seen.has(key));
  const middle = [...seen].filter((key) => !first.includes(key) && !last.includes(key));
  return [...first, ...middle, ...last];
}

const TIME_TEXT = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;

/**
 * A table cell for one field, formatted by what its name says it holds.
 * @param {string} key
 * @param {unknown} value
 * @param {number} now
 * @returns {HTMLTableCellElement}
 */
export function fieldCell(key, value, now = Date.now()) {
  if (value === null || value === undefined || value === "") return h("td", { class: "none" }, DASH);
  if (Array.isArray(value)) {
    const items = value.map((item) => (typeof item === "object" ? JSON.stringify(item) : String(item)));
    return h("td", {}, items.join(", "));
  }
  if (typeof value === "object") return h("td", { class: "json" }, JSON.stringify(value));
  if (typeof value === "boolean") return h("td", {}, value ? "yes" : "no");
  if (/(_utc|_at)$|^day/.test(key) || (typeof value === "string" && TIME_TEXT.test(value))) {
    const ms = parseTime(String(value));
    if (Number.isFinite(ms)) {
      const ago = (now - ms) / 1000;
      return h(
        "td",
        { class: "time" },
        timeElement(ms, formatUtcShort(ms), formatUtcFull(ms)),
        ago >= 0 ? h("span", { class: "sub" }, `${humaniseSeconds(ago)} ago`) : null,
      );
    }
  }
  const n = toNumber(value);
  if (typeof value === "number" || (typeof value === "string" && value.trim() !== "" && Number.isFinite(n))) {
    if (/(_seconds|_s)$/.test(key)) return h("td", { class: "num", title: `${n} s` }, humaniseSeconds(n));
    if (/(share|completeness|_ratio)$/.test(key)) {
      return h("td", { class: `num${n < 0.98 ? " warn" : ""}` }, formatShare(n));
    }
    if (/_usd_per_mwh$/.test(key)) return h("td", { class: "num" }, formatPrice(n));
    if (/^errors?_|_errors?$|error_count/.test(key) && n > 0) {
      return h("td", { class: "num warn" }, formatNumber(n));
    }
    return h("td", { class: "num" }, formatNumber(n));
  }
  return h("td", {}, String(value));
}

/**
 * The section of one quality table (`quality-<name>`): its title with a count, a problem line
 * and the table, empty until `renderGeneric` fills it.
 * @param {string} name
 * @param {string} title
 * @returns {HTMLElement}
 */
export function qualitySection(name, title) {
  const heading = `${name}-title`;
  return h(
    "section",
    { id: `quality-${name}`, "aria-labelledby": heading },
    h("h3", { id: heading }, `${title} `, h("span", { class: "count note" })),
    h("p", { class: "problem", role: "alert", hidden: true }),
    h(
      "div",
      { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": heading },
      h("table", { class: "data generic", "data-testid": `quality-${name}` }),
    ),
  );
}

/**
 * Fill a table with rows, every field a column.
 * @param {HTMLTableElement} table
 * @param {object[]} rows
 * @param {string} empty what to say when there are none
 */
export function renderGeneric(table, rows, empty) {
  const columns = columnsOf(rows);
  const now = Date.now();
  const shown = rows.slice(0, MAX_ROWS);
  table.replaceChildren(
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map((key) => h("th", { scope: "col", "data-field": key, title: key }, key.replaceAll("_", " "))),
      ),
    ),
    h(
      "tbody",
      {},
      shown.length
        ? shown.map((row) => h("tr", {}, columns.map((key) => fieldCell(key, row[key], now))))
        : h("tr", { class: "empty" }, h("td", { colspan: Math.max(1, columns.length) }, empty)),
    ),
  );
  if (rows.length > shown.length) {
    table.append(
      h("tfoot", {}, h("tr", {}, h("td", { colspan: columns.length }, `First ${shown.length} of ${rows.length}`))),
    );
  }
}

/**
 * Dead letters by reason. A summary (rows with a count) is shown as it is, most first; single
 * dead letters (rows with `reason_codes`) are counted here per ISO, dataset and reason.
 * @param {object[]} rows
 * @returns {object[]}
 */
export function deadLettersByReason(rows) {
  const countField = COUNT_FIELDS.find((field) => rows.some((row) => Number.isFinite(toNumber(row[field]))));
  if (countField) {
    return [...rows].sort((a, b) => (toNumber(b[countField]) || 0) - (toNumber(a[countField]) || 0));
  }
  if (!rows.some((row) => Array.isArray(row.reason_codes) || row.reason_code)) return rows;
  const groups = new Map();
  for (const row of rows) {
    const reasons = Array.isArray(row.reason_codes) ? row.reason_codes : [row.reason_code ?? "UNKNOWN"];
    for (const reason of reasons) {
      const key = `${row.iso}|${row.dataset}|${reason}`;
      const group = groups.get(key) ?? {
        iso: row.iso,
        dataset: row.dataset,
        reason_code: reason,
        records: 0,
        last_at_utc: null,
      };
      group.records += 1;
      const at = row.occurred_at_utc ?? row.recorded_at_utc;
      if (at && (!group.last_at_utc || parseTime(at) > parseTime(group.last_at_utc))) group.last_at_utc = at;
      groups.set(key, group);
    }
  }
  return [...groups.values()].sort((a, b) => b.records - a.records);
}

/** The number of dead letters the rows stand for. */
export function deadLetterTotal(rows) {
  const countField = COUNT_FIELDS.find((field) => rows.some((row) => Number.isFinite(toNumber(row[field]))));
  if (!countField) return rows.length;
  return rows.reduce((sum, row) => sum + (toNumber(row[countField]) || 0), 0);
}
