// How an organisation's usage (`/v1/usage`, and the operators' `/v1/admin/orgs/{org}/usage`) is
// shown, on the Usage & plan page and the operators' page alike: the monthly row quota as a bar,
// the totals, what the tier allows, and rows per day against the day's share of the quota as
// an SVG bar chart.

import { niceTicks } from "./chart.js";
import { h, timeElement } from "./dom.js";
import { DASH, formatNumber, formatUtcFull, formatUtcShort, parseTime, toNumber } from "./format.js";
import { relative } from "./widgets.js";

const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86_400_000;
const MARGIN = { top: 22, right: 12, bottom: 28, left: 56 };
/** Share of the quota from which the bar warns, and from which it is full. */
const WARN_SHARE = 0.8;

/** The tiers in order, cheapest first (as `billing.tiers`). */
export const TIERS = Object.freeze(["free", "starter", "professional", "enterprise"]);
export const PAID_TIERS = Object.freeze(["starter", "professional", "enterprise"]);

/** `1.2 MB`: a number of bytes for people (powers of 1000, as disks and bills count). */
export function formatBytes(value) {
  const n = toNumber(value);
  if (!Number.isFinite(n)) return DASH;
  const units = ["B", "kB", "MB", "GB", "TB"];
  let size = n;
  let unit = 0;
  while (Math.abs(size) >= 1000 && unit < units.length - 1) {
    size /= 1000;
    unit += 1;
  }
  return `${unit ? size.toFixed(size < 10 ? 1 : 0) : String(Math.round(size))} ${units[unit]}`;
}

/** `none`, `active`, `past_due`, `canceled` in words. */
export function statusText(status) {
  const words = { none: "no subscription", active: "active", past_due: "past due", canceled: "canceled" };
  return words[String(status ?? "")] ?? String(status ?? DASH);
}

/** The paid tiers above `tier`: the upgrades on offer. */
export function upgradesFrom(tier) {
  const at = TIERS.indexOf(String(tier ?? ""));
  return PAID_TIERS.filter((paid) => TIERS.indexOf(paid) > at);
}

/** A `<time>` of a UTC instant with how long ago (or until), or `—`. */
function when(value, now = Date.now()) {
  const ms = parseTime(value);
  if (!Number.isFinite(ms)) return DASH;
  return h("span", {}, timeElement(ms, formatUtcFull(ms), formatUtcFull(ms)), ` (${relative(ms, now)})`);
}

function facts(pairs) {
  return pairs
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([term, value, key]) => h("div", { "data-fact": key ?? null }, h("dt", {}, term), h("dd", {}, value)));
}

// ---- the quota ------------------------------------------------------------------------------

/**
 * The month's row quota: a bar of what is used, what is left, when it resets, and where the
 * month's pace leads. An unlimited quota (null limit) is said so, with what was read.
 * @param {HTMLElement} root filled (its children replaced)
 * @param {{quota?: object, tier?: string}} usage
 * @param {number} [now]
 */
export function renderQuota(root, usage, now = Date.now()) {
  const quota = usage?.quota ?? {};
  const used = toNumber(quota.used);
  const limit = quota.limit === null || quota.limit === undefined ? Number.NaN : toNumber(quota.limit);
  const unlimited = !Number.isFinite(limit);
  const start = parseTime(quota.period_start_utc);
  const resets = parseTime(quota.resets_at);
  root.dataset.used = Number.isFinite(used) ? String(used) : "";
  root.dataset.limit = unlimited ? "unlimited" : String(limit);
  const share = unlimited || limit <= 0 ? 0 : Math.max(0, used) / limit;
  const state = unlimited ? "unlimited" : share >= 1 ? "exhausted" : share >= WARN_SHARE ? "warn" : "ok";
  root.dataset.state = state;
  const headline = unlimited
    ? h(
        "p",
        { class: "quota-figures" },
        h("strong", { class: "quota-used" }, formatNumber(used)),
        " rows read this month ",
        h("span", { class: "quota-unlimited" }, `\u00b7 no row quota on the ${usage?.tier ?? "current"} tier`),
      )
    : h(
        "p",
        { class: "quota-figures" },
        h("strong", { class: "quota-used" }, formatNumber(used)),
        " of ",
        h("strong", { class: "quota-limit" }, formatNumber(limit)),
        " rows used this month ",
        h("span", { class: "quota-share" }, `(${(share * 100).toFixed(share < 0.1 && share > 0 ? 1 : 0)}\u202f%)`),
      );
  const bar = unlimited
    ? null
    : h(
        "div",
        {
          class: "quota-bar",
          role: "meter",
          "aria-label": "Rows used of the month's quota",
          "aria-valuemin": 0,
          "aria-valuemax": limit,
          "aria-valuenow": Math.min(Math.max(0, used), limit),
          "aria-valuetext": `${formatNumber(used)} of ${formatNumber(limit)} rows`,
          "data-testid": "quota-bar",
        },
        h("span", { class: "quota-fill" }),
      );
  bar?.style.setProperty("--used", `${Math.min(1, share) * 100}%`);
  // Where this month's pace leads by its end, once a day of it has passed.
  let pace = null;
  if (!unlimited && used > 0 && Number.isFinite(start) && Number.isFinite(resets) && now - start >= DAY_MS && now < resets) {
    const projected = (Math.max(0, used) * (resets - start)) / (now - start);
    pace = h(
      "span",
      { class: projected > limit ? "pace warn" : "pace" },
      `at this pace ${formatNumber(Math.round(projected))} by the end of the month`,
    );
  }
  root.replaceChildren(
    ...[headline, bar].filter(Boolean),
    h(
      "dl",
      { class: "facts quota-facts" },
      facts([
        ["Remaining", unlimited ? "unlimited" : formatNumber(quota.remaining), "remaining"],
        ["Resets", when(quota.resets_at, now), "resets"],
        ["Pace", pace],
      ]),
    ),
  );
}

// ---- totals and rights ----------------------------------------------------------------------

/**
 * The totals of the period asked for and how far the meter has counted.
 * @param {HTMLElement} root a `<dl>`
 * @param {{totals?: object, metered_through?: string|null}} usage
 */
export function renderTotals(root, usage, now = Date.now()) {
  const totals = usage?.totals ?? {};
  root.replaceChildren(
    ...facts([
      ["Requests", formatNumber(totals.requests), "requests"],
      ["Rows", formatNumber(totals.rows), "rows"],
      ["Data served", formatBytes(totals.bytes), "bytes"],
      ["Dry runs", formatNumber(totals.dry_runs ?? 0), "dry_runs"],
      [
        "Counted up to",
        usage?.metered_through ? when(usage.metered_through, now) : "nothing metered yet this period",
        "metered_through",
      ],
    ]),
  );
}

function days(value) {
  const n = toNumber(value);
  return Number.isFinite(n) ? `${formatNumber(n)} days` : "all of it";
}

/**
 * What the tier allows: datasets, history, live updates, CSV, rates.
 * @param {HTMLElement} root a `<dl>`
 * @param {object} rights `Usage.rights`
 */
export function renderRights(root, rights) {
  const r = rights ?? {};
  const datasets = Array.isArray(r.datasets) ? r.datasets.join(", ") : DASH;
  root.replaceChildren(
    ...facts([
      ["Datasets", datasets, "datasets"],
      ["History", days(r.history_days), "history_days"],
      ["Live updates", r.sse ? "yes" : "no", "sse"],
      ["CSV export", r.export_csv ? "yes" : "no", "export_csv"],
      [
        "Rate",
        `${formatNumber(r.key_requests_per_minute)}/min a key, ${formatNumber(r.org_requests_per_minute)}/min the organisation, burst ${formatNumber(r.burst)}`,
        "rate",
      ],
      [
        "Rows a month",
        r.monthly_row_quota === null || r.monthly_row_quota === undefined ? "unlimited" : formatNumber(r.monthly_row_quota),
        "monthly_row_quota",
      ],
    ]),
  );
}

// ---- rows per day ---------------------------------------------------------------------------

function svg(tag, attrs = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function dayKey(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The days of the period and the rows of each (zero where the meter has none), from
 * `period_start_utc` to `resets_at` (the whole month, days to come included).
 * @returns {{days: {day: string, t: number, rows: number, requests: number}[], share: number}}
 *   `share`: the quota spread evenly over the days (NaN when unlimited)
 */
export function dailySeries(usage) {
  const quota = usage?.quota ?? {};
  const byDay = new Map();
  for (const row of Array.isArray(usage?.daily) ? usage.daily : []) {
    const day = String(row?.day ?? "").slice(0, 10);
    if (day) byDay.set(day, row);
  }
  let start = parseTime(quota.period_start_utc);
  let end = parseTime(quota.resets_at);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    const known = [...byDay.keys()].sort();
    start = known.length ? parseTime(known[0]) : Math.floor(Date.now() / DAY_MS) * DAY_MS;
    end = known.length ? parseTime(known[known.length - 1]) + DAY_MS : start + DAY_MS;
  }
  const list = [];
  for (let t = Math.floor(start / DAY_MS) * DAY_MS; t < end && list.length < 400; t += DAY_MS) {
    const row = byDay.get(dayKey(t));
    list.push({ day: dayKey(t), t, rows: toNumber(row?.rows) || 0, requests: toNumber(row?.requests) || 0 });
  }
  const limit = quota.limit === null || quota.limit === undefined ? Number.NaN : toNumber(quota.limit);
  return { days: list, share: Number.isFinite(limit) && list.length ? limit / list.length : Number.NaN };
}

/** Rows per day of the month as bars, the day's share of the quota as a dashed line. */
export class UsageChart {
  /**
   * @param {SVGSVGElement} root the `<svg>` to draw in (`data-days`: how many days it shows)
   * @param {HTMLElement} caption the figure's caption
   */
  constructor(root, caption) {
    this.root = root;
    this.caption = caption;
    /** @type {object | null} */
    this.usage = null;
    this.drawnWidth = 0;
    new ResizeObserver(() => {
      if (this.usage && Math.round(this.root.clientWidth) !== this.drawnWidth) this.draw();
    }).observe(root);
  }

  /** @param {object | null} usage a `/v1/usage` answer; null clears the chart */
  setData(usage) {
    this.usage = usage;
    this.draw();
  }

  draw() {
    const width = Math.max(260, Math.round(this.root.clientWidth || 600));
    const height = width < 560 ? 200 : 240;
    this.drawnWidth = Math.round(this.root.clientWidth);
    this.root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.root.replaceChildren();
    if (!this.usage) {
      this.root.dataset.days = "0";
      this.caption.textContent = "";
      return;
    }
    const { days: list, share } = dailySeries(this.usage);
    this.root.dataset.days = String(list.length);
    const todayKey = dayKey(Date.now());
    const most = list.reduce((max, d) => Math.max(max, d.rows), 0);
    // Rows are whole: at least a few of them on the axis, so that its ticks are whole too.
    const top = Math.max(most, Number.isFinite(share) ? share : 0, 4);
    const ticks = niceTicks(0, top * 1.05, height < 220 ? 3 : 4).filter((tick) => Number.isInteger(tick));
    const hi = ticks[ticks.length - 1] || 1;
    const left = MARGIN.left;
    const right = width - MARGIN.right;
    const bottom = height - MARGIN.bottom;
    const y = (v) => bottom - (v / hi) * (bottom - MARGIN.top);
    const slot = (right - left) / Math.max(1, list.length);
    const axis = svg("g", { class: "axis" });
    for (const value of ticks) {
      const at = y(value).toFixed(1);
      axis.append(
        svg("line", { x1: left, x2: right, y1: at, y2: at, class: value ? "grid" : "baseline" }),
        svg("text", { x: left - 6, y: at, dy: "0.32em", "text-anchor": "end" }, compact(value)),
      );
    }
    axis.append(svg("text", { x: 4, y: 12, class: "axis-title" }, "rows"));
    // A label every few days, so that they never crowd.
    const every = Math.max(1, Math.ceil(list.length / Math.max(1, Math.floor((right - left) / 34))));
    list.forEach((d, i) => {
      if (i % every !== 0 && i !== list.length - 1) return;
      const x = left + slot * (i + 0.5);
      axis.append(svg("text", { x: x.toFixed(1), y: bottom + 16, "text-anchor": "middle" }, d.day.slice(8, 10)));
    });
    axis.append(svg("text", { x: right, y: 12, "text-anchor": "end", class: "axis-title" }, "day of the month, UTC"));
    this.root.append(axis);
    const bars = svg("g", { class: "bars" });
    list.forEach((d, i) => {
      const x = left + slot * i + slot * 0.15;
      const barTop = y(d.rows);
      const classes = ["bar"];
      if (Number.isFinite(share) && d.rows > share) classes.push("over");
      if (d.day === todayKey) classes.push("today");
      if (d.day > todayKey) classes.push("future");
      const bar = svg("rect", {
        x: x.toFixed(1),
        y: barTop.toFixed(1),
        width: Math.max(1, slot * 0.7).toFixed(1),
        height: Math.max(0, bottom - barTop).toFixed(1),
        class: classes.join(" "),
        "data-day": d.day,
        "data-rows": d.rows,
      });
      bar.append(svg("title", {}, `${d.day}: ${formatNumber(d.rows)} rows, ${formatNumber(d.requests)} requests`));
      bars.append(bar);
    });
    this.root.append(bars);
    if (Number.isFinite(share)) {
      const at = y(share).toFixed(1);
      this.root.append(
        svg("line", { x1: left, x2: right, y1: at, y2: at, class: "share", "data-share": Math.round(share) }),
        svg(
          "text",
          { x: right - 4, y: (Number(at) - 5).toFixed(1), "text-anchor": "end", class: "share-label" },
          `daily share ${compact(share)}`,
        ),
      );
    }
    const total = list.reduce((sum, d) => sum + d.rows, 0);
    if (!total) {
      const middle = { x: (left + right) / 2, y: (MARGIN.top + bottom) / 2, "text-anchor": "middle", class: "chart-message" };
      this.root.append(svg("text", middle, "No rows metered this month yet."));
    }
    const first = list[0]?.t;
    const last = list[list.length - 1]?.t;
    const span = list.length ? `${formatUtcShort(first).slice(0, 5)} to ${formatUtcShort(last).slice(0, 5)}` : "";
    const text = Number.isFinite(share)
      ? `Rows per day, ${span}: ${formatNumber(total)} in all; the dashed line is the quota spread evenly over the month (${formatNumber(Math.round(share))} a day), days above it in orange.`
      : `Rows per day, ${span}: ${formatNumber(total)} in all; this tier has no row quota.`;
    this.caption.textContent = text;
    this.root.setAttribute("aria-label", text);
  }
}

/** `1.2M`, `35k`, `800`: an axis label. */
function compact(value) {
  const n = Math.abs(value);
  if (n >= 1e9) return `${+(value / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}
