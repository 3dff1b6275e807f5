// Panel 1: the latest price of every series, grouped by ISO, hubs first. Rows come from
// `/v1/lmp/latest` and then one at a time from the live stream.

import { flash, h, patch, renderByIso, timeElement } from "./dom.js";
import {
  DASH,
  compareIso,
  compareLocationId,
  compareMarket,
  formatLocalShort,
  formatPrice,
  formatUtcFull,
  formatUtcShort,
  humaniseSeconds,
  marketLabel,
  parseTime,
  toNumber,
} from "./format.js";

const COLUMNS = 5;

/** `ISO|MARKET|LOCATION`: the key of a price series, as on the Kafka topics. */
export function seriesKey(row) {
  return `${row.iso}|${row.market}|${row.location_id}`;
}

/** `ISO|LOCATION`: a location whatever its market. */
export function locationKey(iso, locationId) {
  return `${iso}|${locationId}`;
}

export function isHub(row) {
  return String(row.location_type ?? "").toUpperCase() === "HUB";
}

function isUsable(row) {
  return Boolean(row && typeof row === "object" && row.iso && row.market && row.location_id != null);
}

/** Whether `a` is at least as new as `b`: a later interval, or the same one at a revision as high. */
function isAsNew(a, b) {
  const ta = parseTime(a.interval_start_utc);
  const tb = parseTime(b.interval_start_utc);
  if (ta !== tb) return !(ta < tb);
  return !(toNumber(a.revision) < toNumber(b.revision));
}

/** Hubs first, then by location id, then day-ahead before real-time. */
function compareRows(a, b) {
  return (
    Number(!isHub(a)) - Number(!isHub(b)) ||
    compareLocationId(a.location_id, b.location_id) ||
    compareMarket(a.market, b.market)
  );
}

/** How old the latest interval is: the API's `age_seconds`, aged by the time since it came. */
function ageSeconds(entry, now) {
  const given = toNumber(entry.row.age_seconds);
  if (Number.isFinite(given)) return given + (now - entry.receivedAt) / 1000;
  const start = parseTime(entry.row.interval_start_utc);
  const minutes = toNumber(entry.row.interval_minutes) || 0;
  return (now - start - minutes * 60_000) / 1000;
}

/** Day-ahead prices come once a day; a real-time series is late after a few intervals. */
function isStale(row, age) {
  if (row.market === "DA_HOURLY") return age > 48 * 3600;
  const minutes = toNumber(row.interval_minutes) || 5;
  return age > Math.max(4 * minutes * 60, 3600);
}

function formatAge(age) {
  if (!Number.isFinite(age)) return DASH;
  return age < 0 ? `in ${humaniseSeconds(-age)}` : humaniseSeconds(age);
}

export class LatestTable {
  /**
   * @param {HTMLTableElement} table
   * @param {{onChoose: (row: object) => void}} handlers called when a row is clicked
   */
  constructor(table, { onChoose }) {
    this.table = table;
    this.onChoose = onChoose;
    /** @type {Map<string, {row: object, receivedAt: number}>} */
    this.entries = new Map();
    this.chosen = null;
    this.filterText = "";
    table.addEventListener("click", (event) => {
      const tr = event.target instanceof Element ? event.target.closest("tr[data-series]") : null;
      const entry = tr ? this.entries.get(tr.dataset.series) : undefined;
      if (entry) this.onChoose(entry.row);
    });
  }

  /**
   * Replace the table with an answer of `/v1/lmp/latest`. A row the live stream brought that is
   * newer than the answer (it may have been read before the event) is kept.
   * @param {object[]} rows
   */
  setRows(rows) {
    const now = Date.now();
    const next = new Map();
    for (const row of rows) {
      if (!isUsable(row)) continue;
      const key = seriesKey(row);
      const known = next.get(key);
      if (!known || isAsNew(row, known.row)) next.set(key, { row, receivedAt: now });
    }
    for (const [key, entry] of this.entries) {
      const fetched = next.get(key);
      if (fetched && !isAsNew(fetched.row, entry.row)) next.set(key, entry);
    }
    this.entries = next;
    this.render();
  }

  /**
   * Apply one row from the live stream: update its series' row, or insert a new series in its
   * place, and flash it. An older interval or revision than the one shown is ignored.
   * @param {object} row
   * @returns {"inserted"|"updated"|"ignored"}
   */
  upsert(row) {
    if (!isUsable(row)) return "ignored";
    const key = seriesKey(row);
    const known = this.entries.get(key);
    if (known && !isAsNew(row, known.row)) return "ignored";
    const entry = { row, receivedAt: Date.now() };
    this.entries.set(key, entry);
    const fresh = this.rowElement(entry);
    const shown = this.table.querySelector(`tr[data-series="${CSS.escape(key)}"]`);
    if (shown) {
      patch(shown, fresh);
      flash(shown);
    } else if (!this.table.querySelector("tr[data-series]")) {
      this.render();
      return "inserted";
    } else {
      this.insertSorted(fresh, row);
      flash(fresh);
    }
    return known ? "updated" : "inserted";
  }

  /** Every row shown for one location (one per market). */
  rowsAt(iso, locationId) {
    const rows = [];
    for (const { row } of this.entries.values()) {
      if (row.iso === iso && String(row.location_id) === String(locationId)) rows.push(row);
    }
    return rows.sort(compareRows);
  }

  /** All rows, for the location picker and the names of the KPI table. */
  rows() {
    return [...this.entries.values()].map((entry) => entry.row);
  }

  /** End of the newest interval shown, of one ISO or of all (NaN when none). */
  newestEnd(iso) {
    let newest = Number.NaN;
    for (const { row } of this.entries.values()) {
      if (iso && row.iso !== iso) continue;
      const end = parseTime(row.interval_start_utc) + (toNumber(row.interval_minutes) || 0) * 60_000;
      if (Number.isFinite(end) && !(end <= newest)) newest = end;
    }
    return newest;
  }

  isos() {
    return [...new Set(this.rows().map((row) => row.iso))].sort(compareIso);
  }

  markChosen(iso, locationId) {
    this.chosen = iso ? { iso, locationId: String(locationId) } : null;
    for (const tr of this.table.querySelectorAll("tr[data-series]")) this.applyChosen(tr);
  }

  setFilter(text) {
    this.filterText = text.trim().toLowerCase();
    for (const tr of this.table.querySelectorAll("tr[data-series]")) this.applyFilter(tr);
    this.updateCounts();
  }

  /** Age the age column; the API's ages were right when they came. */
  tickAges(now = Date.now()) {
    for (const tr of this.table.querySelectorAll("tr[data-series]")) {
      const entry = this.entries.get(tr.dataset.series);
      const cell = tr.querySelector(".age");
      if (!entry || !cell) continue;
      const age = ageSeconds(entry, now);
      const text = formatAge(age);
      if (cell.textContent !== text) cell.textContent = text;
      cell.classList.toggle("stale", isStale(entry.row, age));
    }
  }

  render() {
    const groups = new Map();
    for (const entry of this.entries.values()) {
      const list = groups.get(entry.row.iso) ?? [];
      list.push(entry);
      groups.set(entry.row.iso, list);
    }
    renderByIso(this.table, groups, COLUMNS, "No prices yet.", (iso, entries) => {
      const body = this.groupBody(iso);
      entries.sort((a, b) => compareRows(a.row, b.row));
      for (const entry of entries) body.append(this.rowElement(entry));
      return body;
    });
    this.updateCounts();
  }

  groupBody(iso) {
    return h(
      "tbody",
      { "data-iso": iso },
      h(
        "tr",
        { class: "group" },
        h("th", { scope: "rowgroup", colspan: COLUMNS }, iso, " ", h("span", { class: "count" })),
      ),
    );
  }

  insertSorted(tr, row) {
    let body = this.table.querySelector(`tbody[data-iso="${CSS.escape(row.iso)}"]`);
    if (!body) {
      body = this.groupBody(row.iso);
      const after = [...this.table.querySelectorAll("tbody[data-iso]")].find(
        (other) => compareIso(other.dataset.iso, row.iso) > 0,
      );
      this.table.insertBefore(body, after ?? null);
    }
    const before = [...body.querySelectorAll("tr[data-series]")].find((other) => {
      const entry = this.entries.get(other.dataset.series);
      return entry && compareRows(entry.row, row) > 0;
    });
    body.insertBefore(tr, before ?? null);
    this.updateCounts();
  }

  rowElement(entry) {
    const { row } = entry;
    const start = parseTime(row.interval_start_utc);
    const price = toNumber(row.lmp_usd_per_mwh);
    const name = row.location_name || String(row.location_id);
    const sub = [row.location_name ? row.location_id : null, row.location_type].filter(Boolean);
    const age = ageSeconds(entry, Date.now());
    const tr = h(
      "tr",
      { "data-series": seriesKey(row), "data-location": locationKey(row.iso, row.location_id) },
      h(
        "th",
        { scope: "row", class: "loc" },
        h("button", { type: "button", class: "pick", title: `Chart ${name}` }, name),
        sub.length ? h("span", { class: "sub" }, sub.join(" \u00b7 ")) : null,
      ),
      h("td", { class: "market" }, marketLabel(row.market)),
      h("td", { class: `num lmp${price < 0 ? " neg" : ""}` }, formatPrice(price)),
      h("td", { class: `num age${isStale(row, age) ? " stale" : ""}` }, formatAge(age)),
      h(
        "td",
        { class: "start" },
        timeElement(start, formatUtcShort(start), formatUtcFull(start)),
        h("span", { class: "sub" }, formatLocalShort(start, row.iso)),
      ),
    );
    if (isHub(row)) tr.classList.add("hub");
    this.applyChosen(tr);
    this.applyFilter(tr);
    return tr;
  }

  applyChosen(tr) {
    const chosen = this.chosen && tr.dataset.location === locationKey(this.chosen.iso, this.chosen.locationId);
    tr.classList.toggle("chosen", Boolean(chosen));
    if (chosen) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }

  applyFilter(tr) {
    tr.hidden = Boolean(this.filterText) && !tr.textContent.toLowerCase().includes(this.filterText);
  }

  updateCounts() {
    for (const body of this.table.querySelectorAll("tbody[data-iso]")) {
      const rows = body.querySelectorAll("tr[data-series]");
      const shown = [...rows].filter((tr) => !tr.hidden).length;
      body.hidden = rows.length > 0 && shown === 0;
      const count = body.querySelector(".count");
      if (!count) continue;
      count.textContent = shown === rows.length ? `${rows.length} series` : `${shown} of ${rows.length} series`;
    }
  }
}
