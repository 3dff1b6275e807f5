// Panel 3: the latest operating day's KPIs per location and market, with each location's
// percentile within its ISO and market, and the ISO-wide medians (location `*`). Rows come from
// `/v1/kpis?window_kind=DAY` and then one KPI at a time from the live stream.

import { flash, h, patch, renderByIso } from "./dom.js";
import {
  DASH,
  compareLocationId,
  compareMarket,
  formatLocalDay,
  formatPercentile,
  formatPrice,
  formatShare,
  marketLabel,
  parseTime,
  toNumber,
} from "./format.js";

const ISO_WIDE = "*";
const BENCHMARKED = ["twap_lmp_usd_per_mwh", "volatility_usd_per_mwh", "da_rt_spread_mean_abs_usd_per_mwh"];
const SHARES = ["negative_share", "completeness"];
const SHOWN = new Set([
  ...BENCHMARKED,
  ...BENCHMARKED.map((kpi) => `${kpi}_percentile`),
  ...BENCHMARKED.map((kpi) => `${kpi}_iso_median`),
  ...SHARES,
]);
const COLUMNS = 11;

/** `ISO|MARKET|LOCATION` of a KPI row. */
export function kpiSeriesKey(row) {
  return `${row.iso}|${row.market}|${row.location_id}`;
}

function locationOfKey(key) {
  return key.split("|").slice(2).join("|");
}

function isDayKpi(row) {
  return (
    row &&
    typeof row === "object" &&
    row.iso &&
    row.market &&
    row.location_id != null &&
    String(row.window_kind).toUpperCase() === "DAY" &&
    SHOWN.has(row.kpi)
  );
}

/** Whether `a` is at least as new as `b`: a later window, or the same at a revision as high. */
function isAsNew(a, b) {
  const ta = parseTime(a.window_start_utc);
  const tb = parseTime(b.window_start_utc);
  if (ta !== tb) return !(ta < tb);
  return !(toNumber(a.revision) < toNumber(b.revision));
}

export class KpiTable {
  /**
   * @param {HTMLTableElement} table
   * @param {{describe: (iso: string, locationId: string) => {name?: string, type?: string}}} lookups
   *   names and types of locations (KPI rows carry only ids)
   */
  constructor(table, { describe }) {
    this.table = table;
    this.describe = describe;
    /** @type {Map<string, Map<string, object>>} series key -> KPI name -> row */
    this.entries = new Map();
    this.filterText = "";
    this.renderTimer = 0;
  }

  /** Replace the table with the rows of `/v1/kpis` (any window kind; DAY rows are kept). */
  setRows(rows) {
    this.entries = new Map();
    for (const row of rows) this.put(row);
    this.render();
  }

  /**
   * Apply one KPI from the live stream.
   * @returns {boolean} whether the table changed
   */
  upsert(row) {
    if (!this.put(row)) return false;
    const key = kpiSeriesKey(row);
    const shown = this.table.querySelector(`tr[data-kpi-series="${CSS.escape(key)}"]`);
    if (shown) {
      patch(shown, this.rowElement(key));
      flash(shown);
    } else {
      this.renderSoon();
    }
    return true;
  }

  put(row) {
    if (!isDayKpi(row)) return false;
    const key = kpiSeriesKey(row);
    let kpis = this.entries.get(key);
    if (!kpis) {
      kpis = new Map();
      this.entries.set(key, kpis);
    }
    const known = kpis.get(row.kpi);
    if (known && !isAsNew(row, known)) return false;
    kpis.set(row.kpi, row);
    return true;
  }

  setFilter(text) {
    this.filterText = text.trim().toLowerCase();
    for (const tr of this.table.querySelectorAll("tr[data-kpi-series]")) this.applyFilter(tr);
  }

  /** Names may arrive after the KPIs (the catalog is slower): draw again then. */
  renderSoon() {
    if (this.renderTimer) return;
    this.renderTimer = window.setTimeout(() => {
      this.renderTimer = 0;
      this.render();
    }, 250);
  }

  render() {
    const groups = new Map();
    for (const [key, kpis] of this.entries) {
      const iso = kpis.values().next().value?.iso;
      if (!iso) continue;
      const list = groups.get(iso) ?? [];
      list.push(key);
      groups.set(iso, list);
    }
    renderByIso(this.table, groups, COLUMNS, "No daily KPIs yet.", (iso, keys) => {
      keys.sort((a, b) => this.compareKeys(a, b));
      const ids = new Set(keys.map((key) => locationOfKey(key)).filter((id) => id !== ISO_WIDE));
      const heading = h(
        "th",
        { scope: "rowgroup", colspan: COLUMNS },
        iso,
        " ",
        h("span", { class: "count" }, `${ids.size} locations`),
      );
      const body = h("tbody", { "data-iso": iso }, h("tr", { class: "group" }, heading));
      for (const key of keys) body.append(this.rowElement(key));
      return body;
    });
  }

  /** ISO medians first, then hubs, then by location id and market. */
  compareKeys(a, b) {
    const [isoA, marketA] = a.split("|");
    const [isoB, marketB] = b.split("|");
    const idA = locationOfKey(a);
    const idB = locationOfKey(b);
    return (
      this.rank(isoA, idA) - this.rank(isoB, idB) ||
      compareLocationId(idA, idB) ||
      compareMarket(marketA, marketB)
    );
  }

  rank(iso, locationId) {
    if (locationId === ISO_WIDE) return 0;
    return String(this.describe(iso, locationId).type).toUpperCase() === "HUB" ? 1 : 2;
  }

  /** One row: a location and market (or the ISO median of a market) on its latest day. */
  rowElement(key) {
    const kpis = this.entries.get(key) ?? new Map();
    const first = kpis.values().next().value ?? {};
    const { iso, market } = first;
    const locationId = String(first.location_id);
    const wide = locationId === ISO_WIDE;
    let day = Number.NaN;
    for (const row of kpis.values()) {
      const start = parseTime(row.window_start_utc);
      if (!(start <= day)) day = start;
    }
    const price = (kpi) => {
      const name = wide ? `${kpi}_iso_median` : kpi;
      return this.valueCell(kpis.get(name), name, formatPrice, "num", day, iso);
    };
    const percentile = (kpi) => {
      if (wide) return h("td", { class: "num pct" });
      return this.percentileCell(kpis.get(`${kpi}_percentile`), `${kpi}_percentile`, day, iso);
    };
    const share = (kpi, digits, className) => {
      if (wide) return h("td", { class: "num" });
      return this.valueCell(kpis.get(kpi), kpi, (value) => formatShare(value, digits), className, day, iso);
    };
    const tr = h(
      "tr",
      { "data-kpi-series": key, class: wide ? "median" : null },
      this.locationCell(iso, locationId),
      h("td", { class: "market" }, marketLabel(market)),
      price("twap_lmp_usd_per_mwh"),
      percentile("twap_lmp_usd_per_mwh"),
      price("volatility_usd_per_mwh"),
      percentile("volatility_usd_per_mwh"),
      price("da_rt_spread_mean_abs_usd_per_mwh"),
      percentile("da_rt_spread_mean_abs_usd_per_mwh"),
      share("negative_share", 1, "num"),
      share("completeness", 0, "num completeness"),
      h("td", { class: "day" }, Number.isFinite(day) ? formatLocalDay(day, iso) : DASH),
    );
    this.applyFilter(tr);
    return tr;
  }

  locationCell(iso, locationId) {
    if (locationId === ISO_WIDE) {
      return h("th", { scope: "row", class: "loc" }, h("span", { class: "name" }, "ISO median"));
    }
    const about = this.describe(iso, locationId);
    const sub = [about.name && about.name !== locationId ? locationId : null, about.type].filter(Boolean);
    return h(
      "th",
      { scope: "row", class: "loc" },
      h("span", { class: "name" }, about.name || locationId),
      sub.length ? h("span", { class: "sub" }, sub.join(" \u00b7 ")) : null,
    );
  }

  /** A KPI's value; one from an earlier day than the row's is marked as such. */
  valueCell(row, kpi, format, className, day, iso) {
    if (!row) return h("td", { class: className, "data-kpi": kpi }, DASH);
    const td = h("td", { class: className, "data-kpi": kpi }, format(row.value));
    this.markWindow(td, row, day, iso);
    if (kpi === "completeness" && toNumber(row.value) < 0.98) td.classList.add("warn");
    const received = toNumber(row.intervals_received);
    const expected = toNumber(row.intervals_expected);
    if (Number.isFinite(received) && Number.isFinite(expected) && !td.title) {
      td.title = `${received} of ${expected} intervals`;
    }
    return td;
  }

  /** A percentile on the 0-100 scale, with a bar showing where it sits. */
  percentileCell(row, kpi, day, iso) {
    const share = toNumber(row?.value);
    if (!Number.isFinite(share)) return h("td", { class: "num pct", "data-kpi": kpi }, DASH);
    const bar = h("span", { class: "bar", "aria-hidden": "true" });
    bar.style.setProperty("--p", `${Math.max(0, Math.min(1, share)) * 100}%`);
    const td = h(
      "td",
      { class: "num pct", "data-kpi": kpi },
      h("span", { class: "pct-value" }, formatPercentile(share)),
      bar,
    );
    this.markWindow(td, row, day, iso);
    return td;
  }

  markWindow(td, row, day, iso) {
    const start = parseTime(row.window_start_utc);
    if (Number.isFinite(day) && start < day) {
      td.classList.add("older");
      td.title = `from ${formatLocalDay(start, iso)}`;
    }
  }

  applyFilter(tr) {
    tr.hidden = Boolean(this.filterText) && !tr.textContent.toLowerCase().includes(this.filterText);
  }
}
