// The OptiBid dashboard: latest prices, a DA vs RT chart of one location, daily KPIs with their
// benchmarks, data quality and the state of the live stream. Plain modules, no build step; every
// request goes to the query API that serves this page, with the signed-in session's token. The
// dashboard runs from the first time it is shown after signing in until signing out (shell.js
// decides which view is shown).

import { describeError, getAll, getReadiness, isAbort } from "./api.js";
import { PriceChart } from "./chart.js";
import { clearFlashOnEnd, h, showProblem } from "./dom.js";
import {
  HOUR_MS,
  ISO_ORDER,
  RT_MARKETS,
  ceilHour,
  compareIso,
  compareLocationId,
  formatUtcClock,
  formatUtcShort,
  isoParam,
  marketLabel,
  parseTime,
  toNumber,
} from "./format.js";
import { KpiTable } from "./kpis.js";
import { LatestTable, isHub, locationKey } from "./latest.js";
import { LiveStream } from "./live.js";
import { deadLetterTotal, deadLettersByReason, qualitySection, renderGeneric } from "./quality.js";
import { currentRoute, replaceHash, routeHash } from "./router.js";
import { startShell } from "./shell.js";

const CHART_SPAN_MS = 48 * HOUR_MS;
const CHART_MAX_SPAN_MS = 96 * HOUR_MS; // when real time lags far behind day-ahead
const AGE_TICK_MS = 5_000;
const READY_POLL_MS = 15_000;
const QUALITY_POLL_MS = 60_000;
const QUALITY_MAX_PAGES = 20;
const RETRY_MS = 30_000;
const DEFAULT_MINUTES = { DA_HOURLY: 60, RT_5MIN: 5, RT_15MIN: 15, RT_HOURLY: 60 };

const $ = (selector) => document.querySelector(selector);

const ui = {
  latestProblem: $("#latest-problem"),
  latestFilter: $("#latest-filter"),
  locationSelect: $("#location-select"),
  marketSelect: $("#rt-market-select"),
  chartCaption: $("#chart-caption"),
  chartProblem: $("#chart-problem"),
  catalogProblem: $("#catalog-problem"),
  kpiScope: $("#kpi-scope"),
  kpiFilter: $("#kpi-filter"),
  kpiProblem: $("#kpi-problem"),
  kpiNote: $("#kpi-note"),
  liveStatus: $("#live-status"),
  liveDetail: $("#live-detail"),
  liveChosenOnly: $("#live-chosen-only"),
  lastUpdate: $("#last-update"),
  apiReady: $("#api-ready"),
  pageProblem: $("#page-problem"),
};

/** What the page shows: the chosen location and what is known about every location. */
const state = {
  /** @type {{iso: string, locationId: string, rtMarket: string|null} | null} */
  chosen: null,
  /**
   * Every location seen, by `ISO|LOCATION`, with the markets it trades in.
   * @type {Map<string, {iso: string, location_id: string, location_name?: string,
   *   location_type?: string, markets: Set<string>}>}
   */
  locations: new Map(),
  chartRequest: null,
  kpiRequest: null,
  selectTimer: 0,
  /** Whether the dashboard runs (signed in and shown at least once since). */
  running: false,
  /** Whether the first prices since starting are still on their way (start() chooses then). */
  starting: false,
  /** Counts the starts: what a start awaits is dropped when a stop (and another start) came between. */
  run: 0,
  wired: false,
  /** @type {number[]} the polls of a running dashboard */
  intervals: [],
};

const latest = new LatestTable($("#latest-table"), {
  onChoose: (row) => choose(row.iso, row.location_id, row.market),
});
const chart = new PriceChart($("#chart"), { tooltip: $("#chart-tooltip"), legend: $("#chart-legend") });
const kpis = new KpiTable($("#kpi-table"), { describe: describeLocation });
const live = new LiveStream({
  onLmp: guarded(onLmp),
  onKpi: guarded(onKpi),
  onState: showLiveState,
  // Whatever the server could not replay after the loss is read again.
  onResume: () => recover(true),
  // The plan does not include live updates: said once, with the way to a plan that does.
  onRefused: (error) => showProblem(ui.pageProblem, `Live updates: ${describeError(error)}`, error),
});

/** Run a handler of pushed data so that a bad row shows a message instead of stopping the page. */
function guarded(handler) {
  return (row) => {
    try {
      handler(row);
    } catch (error) {
      showProblem(ui.pageProblem, `Could not show a live update: ${describeError(error)}`);
    }
  };
}

// ---- locations ----------------------------------------------------------------------------

/**
 * Remember a location and a market it trades in, from a latest row or a catalog row.
 * @returns {boolean} whether the location is new
 */
function learnLocation(row) {
  if (!row || !row.iso || row.location_id === null || row.location_id === undefined) return false;
  const key = locationKey(row.iso, row.location_id);
  const known = state.locations.get(key);
  if (known) {
    if (row.market) known.markets.add(row.market);
    known.location_name ||= row.location_name;
    known.location_type ||= row.location_type;
    return false;
  }
  state.locations.set(key, {
    iso: row.iso,
    location_id: String(row.location_id),
    location_name: row.location_name || undefined,
    location_type: row.location_type || undefined,
    markets: new Set(row.market ? [row.market] : []),
  });
  return true;
}

function describeLocation(iso, locationId) {
  const known = state.locations.get(locationKey(iso, locationId));
  return { name: known?.location_name, type: known?.location_type };
}

function locationLabel(iso, locationId) {
  const { name } = describeLocation(iso, locationId);
  return name && name !== String(locationId) ? `${name} (${locationId})` : String(locationId);
}

/** The RT market to chart for a location: the one the latest prices show (finest first). */
function preferredRtMarket(iso, locationId) {
  const shown = new Set(latest.rowsAt(iso, locationId).map((row) => row.market));
  const known = state.locations.get(locationKey(iso, locationId))?.markets ?? new Set();
  return RT_MARKETS.find((m) => shown.has(m)) ?? RT_MARKETS.find((m) => known.has(m)) ?? null;
}

function rtMarketsAt(iso, locationId) {
  const markets = new Set(latest.rowsAt(iso, locationId).map((row) => row.market));
  for (const m of state.locations.get(locationKey(iso, locationId))?.markets ?? []) markets.add(m);
  return RT_MARKETS.filter((m) => markets.has(m));
}

/**
 * Fill the location picker: one group per ISO, hubs first. Options already there are kept and
 * moved, never rebuilt, so that an open picker (or a test holding an option) is not pulled from
 * under its user when the catalog or the stream brings new locations.
 */
function renderLocationSelect() {
  const select = ui.locationSelect;
  const byIso = new Map();
  for (const location of state.locations.values()) {
    const list = byIso.get(location.iso) ?? [];
    list.push(location);
    byIso.set(location.iso, list);
  }
  const placeholder = select.querySelector('option[value=""]') ?? h("option", { value: "", disabled: true });
  placeholder.textContent = byIso.size ? "Choose a location" : "No locations yet";
  if (select.firstElementChild !== placeholder) select.prepend(placeholder);
  const options = new Map([...select.querySelectorAll("optgroup > option")].map((o) => [o.value, o]));
  const groups = new Map([...select.querySelectorAll("optgroup")].map((g) => [g.label, g]));
  let previousGroup = placeholder;
  for (const iso of [...byIso.keys()].sort(compareIso)) {
    const group = groups.get(iso) ?? h("optgroup", { label: iso });
    if (previousGroup.nextElementSibling !== group) previousGroup.after(group);
    previousGroup = group;
    const list = byIso.get(iso).sort(
      (a, b) => Number(!isHub(a)) - Number(!isHub(b)) || compareLocationId(a.location_id, b.location_id),
    );
    let previous = null;
    for (const location of list) {
      const value = locationKey(iso, location.location_id);
      const option = options.get(value) ?? h("option", { value });
      const text = `${locationLabel(iso, location.location_id)}${isHub(location) ? " \u00b7 hub" : ""}`;
      if (option.textContent !== text) option.textContent = text;
      const expected = previous ? previous.nextElementSibling : group.firstElementChild;
      if (expected !== option) {
        if (previous) previous.after(option);
        else group.prepend(option);
      }
      previous = option;
    }
  }
  const chosenValue = state.chosen ? locationKey(state.chosen.iso, state.chosen.locationId) : "";
  if (select.value !== chosenValue) select.value = chosenValue;
  if (select.selectedIndex < 0) select.value = "";
}

/** New locations may arrive in bursts from the stream: refill the picker once for them. */
function renderLocationSelectSoon() {
  if (state.selectTimer) return;
  state.selectTimer = window.setTimeout(() => {
    state.selectTimer = 0;
    renderLocationSelect();
  }, 1000);
}

function renderMarketSelect() {
  const markets = state.chosen ? rtMarketsAt(state.chosen.iso, state.chosen.locationId) : [];
  const current = state.chosen?.rtMarket;
  if (current && !markets.includes(current)) markets.push(current);
  ui.marketSelect.replaceChildren(
    ...(markets.length
      ? markets.map((m) => h("option", { value: m }, marketLabel(m)))
      : [h("option", { value: "" }, "none")]),
  );
  ui.marketSelect.value = current ?? "";
  ui.marketSelect.disabled = markets.length < 2;
}

/**
 * Choose the location of the chart (and of the KPIs and the stream when they follow it).
 * @param {string} iso
 * @param {string} locationId
 * @param {string} [market] the market of the clicked row; an RT market is charted as is
 */
function choose(iso, locationId, market) {
  const id = String(locationId);
  const rtMarket = market && RT_MARKETS.includes(market) ? market : preferredRtMarket(iso, id);
  const previous = state.chosen;
  const sameLocation = previous && previous.iso === iso && previous.locationId === id;
  if (sameLocation && previous.rtMarket === rtMarket) return;
  state.chosen = { iso, locationId: id, rtMarket };
  latest.markChosen(iso, id);
  if (!state.locations.has(locationKey(iso, id))) {
    learnLocation({ iso, location_id: id, market });
    renderLocationSelect();
  }
  ui.locationSelect.value = locationKey(iso, id);
  renderMarketSelect();
  showChosenInAddress();
  loadChart();
  if (!sameLocation) {
    if (ui.liveChosenOnly.checked) openLive();
    if (ui.kpiScope.value === "chosen") loadKpis();
  }
}

/** The location in the address (`#/PJM%7C51288`, or the older `#PJM|51288`), if any. */
function locationFromHash() {
  const route = currentRoute();
  return route?.view === "dashboard" ? route.location : null;
}

/** Put the chosen location in the address, while the dashboard is the view shown. */
function showChosenInAddress() {
  if (!state.chosen || currentRoute()?.view !== "dashboard") return;
  replaceHash(routeHash("dashboard", state.chosen));
}

/** The first hub of the first ISO: something worth seeing before anyone chooses. */
function defaultLocation() {
  const rows = latest
    .rows()
    .sort(
      (a, b) =>
        compareIso(a.iso, b.iso) ||
        Number(!isHub(a)) - Number(!isHub(b)) ||
        compareLocationId(a.location_id, b.location_id),
    );
  return rows.length ? { iso: rows[0].iso, locationId: rows[0].location_id } : null;
}

/** `KPIs (PJM, ERCOT): Service unavailable (503): ...`: one line per distinct error. */
function summariseProblems(what, failures) {
  const byMessage = new Map();
  for (const { label, error } of failures) {
    const message = describeError(error);
    byMessage.set(message, (byMessage.get(message) ?? new Set()).add(label));
  }
  return [...byMessage]
    .map(([message, labels]) => `${what} (${[...labels].join(", ")}): ${message}`)
    .join("\n");
}

// ---- panel 1: latest prices -----------------------------------------------------------------

async function loadLatest() {
  try {
    const rows = await getAll("v1/lmp/latest");
    latest.setRows(rows);
    for (const row of rows) learnLocation(row);
    renderLocationSelect();
    if (state.chosen) {
      latest.markChosen(state.chosen.iso, state.chosen.locationId);
      renderMarketSelect();
    }
    showProblem(ui.latestProblem, "");
    markUpdated();
    return true;
  } catch (error) {
    showProblem(ui.latestProblem, `Latest prices: ${describeError(error)}`, error);
    if (!latest.rows().length) latest.render();
    return false;
  }
}

// ---- panel 2: DA vs RT chart ------------------------------------------------------------------

/**
 * The chart's window: the last two days of real-time prices up to the newest interval, and the
 * day-ahead hours published beyond it (tomorrow's DA is known by the afternoon). Without a
 * real-time price the two days end at the newest interval of the location, or of its ISO.
 */
function chartWindow(iso, locationId, rtMarket) {
  let end = Number.NaN;
  let rtEnd = Number.NaN;
  for (const row of latest.rowsAt(iso, locationId)) {
    const rowEnd = parseTime(row.interval_start_utc) + (toNumber(row.interval_minutes) || 0) * 60_000;
    if (!(rowEnd <= end)) end = rowEnd;
    if (row.market === rtMarket && !(rowEnd <= rtEnd)) rtEnd = rowEnd;
  }
  if (!Number.isFinite(end)) end = latest.newestEnd(iso);
  if (!Number.isFinite(end)) end = Date.now();
  end = ceilHour(end);
  const start = ceilHour(Number.isFinite(rtEnd) ? rtEnd : end) - CHART_SPAN_MS;
  return { start: Math.max(start, end - CHART_MAX_SPAN_MS), end };
}

function toPoints(rows, market) {
  const points = [];
  for (const row of rows) {
    const t = parseTime(row.interval_start_utc);
    const v = toNumber(row.lmp_usd_per_mwh);
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    points.push({ t, v, minutes: toNumber(row.interval_minutes) || DEFAULT_MINUTES[market] || 60 });
  }
  return points;
}

function seriesClass(market) {
  return market === "DA_HOURLY" ? "series-da" : "series-rt";
}

/** Fetch the last two days of DA and RT prices of the chosen location and draw them. */
async function loadChart() {
  state.chartRequest?.abort();
  const chosen = state.chosen;
  if (!chosen) {
    chart.setMessage("Choose a location.");
    return;
  }
  const request = new AbortController();
  state.chartRequest = request;
  const { iso, locationId, rtMarket } = chosen;
  const { start, end } = chartWindow(iso, locationId, rtMarket);
  const markets = ["DA_HOURLY", ...(rtMarket ? [rtMarket] : [])];
  const label = locationLabel(iso, locationId);
  const span = `${formatUtcShort(start)} to ${formatUtcShort(end)} UTC`;
  const compared = rtMarket ? markets.map(marketLabel).join(" vs ") : "DA hourly (no real-time market known)";
  const caption = `${label}, ${iso}: ${compared}, ${span}`;
  ui.chartCaption.textContent = caption;
  $("#chart").setAttribute("aria-label", `LMP chart, ${caption}`);
  $("#chart-figure").setAttribute("aria-busy", "true");
  chart.setLoading("Loading\u2026");
  const params = { iso, location_id: locationId, start: isoParam(start), end: isoParam(end) };
  const results = await Promise.allSettled(
    markets.map((market) => getAll("v1/lmp", { ...params, market }, { signal: request.signal })),
  );
  if (request.signal.aborted) return;
  $("#chart-figure").removeAttribute("aria-busy");
  const problems = [];
  const errors = [];
  const series = markets.map((market, i) => {
    const result = results[i];
    if (result.status === "rejected") {
      problems.push(`${marketLabel(market)}: ${describeError(result.reason)}`);
      errors.push(result.reason);
    }
    const points = result.status === "fulfilled" ? toPoints(result.value, market) : [];
    return { id: market, label: marketLabel(market), className: seriesClass(market), points };
  });
  showProblem(ui.chartProblem, problems.join("\n"), errors);
  chart.setData({ series, start, end, iso });
}

async function loadCatalog() {
  const isos = [...new Set([...ISO_ORDER, ...latest.isos()])];
  const results = await Promise.allSettled(isos.map((iso) => getAll("v1/catalog/locations", { iso })));
  const failures = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") for (const row of result.value) learnLocation(row);
    else failures.push({ label: isos[i], error: result.reason });
  });
  showProblem(
    ui.catalogProblem,
    summariseProblems("Location catalog", failures),
    failures.map((failure) => failure.error),
  );
  renderLocationSelect();
  if (state.chosen) renderMarketSelect();
  kpis.renderSoon(); // names for the ids of the KPI table
}

// ---- panel 3: KPIs ----------------------------------------------------------------------------

/** Daily KPIs around the newest day of each ISO: all locations, or the chosen one and the ISO medians. */
async function loadKpis() {
  state.kpiRequest?.abort();
  const request = new AbortController();
  state.kpiRequest = request;
  const chosenOnly = ui.kpiScope.value === "chosen";
  if (chosenOnly && !state.chosen) {
    kpis.setRows([]);
    ui.kpiNote.textContent = "Choose a location.";
    return;
  }
  const isos = chosenOnly ? [state.chosen.iso] : latest.isos().length ? latest.isos() : [...ISO_ORDER];
  const queries = [];
  for (const iso of isos) {
    const newest = latest.newestEnd(iso);
    // A day window starts at local midnight, up to a day before the newest interval ends.
    const end = ceilHour(Number.isFinite(newest) ? newest : Date.now()) + 24 * HOUR_MS;
    const base = { iso, window_kind: "DAY", start: isoParam(end - 72 * HOUR_MS), end: isoParam(end) };
    if (chosenOnly) {
      queries.push({ iso, params: { ...base, location_id: state.chosen.locationId } });
      queries.push({ iso, params: { ...base, location_id: "*" } });
    } else {
      queries.push({ iso, params: base });
    }
  }
  ui.kpiNote.textContent = "Loading\u2026";
  const results = await Promise.allSettled(
    queries.map((query) => getAll("v1/kpis", query.params, { signal: request.signal })),
  );
  if (request.signal.aborted) return;
  const rows = [];
  const failures = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") for (const row of result.value) rows.push(row);
    else if (!isAbort(result.reason)) failures.push({ label: queries[i].iso, error: result.reason });
  });
  kpis.setRows(rows);
  showProblem(ui.kpiProblem, summariseProblems("KPIs", failures), failures.map((failure) => failure.error));
  if (failures.length < queries.length) markUpdated();
  ui.kpiNote.textContent = chosenOnly
    ? `${locationLabel(state.chosen.iso, state.chosen.locationId)} and the ISO medians`
    : `All locations of ${isos.join(", ")}`;
}

// ---- panel 4: data quality --------------------------------------------------------------------

/**
 * The quality tables, in page order: the section of each (`quality-<name>`, titled `title`), how
 * its rows are fetched, what its heading counts and what it says without rows.
 * @type {{name: string, title: string, fetchRows: (paging: object) => Promise<object[]>,
 *   count: (rows: object[]) => string, empty: string}[]}
 */
const QUALITY_TABLES = [
  {
    name: "freshness",
    title: "Freshness",
    fetchRows: async (paging) =>
      (await getAll("v1/quality/freshness", {}, paging)).sort((a, b) => compareIso(a.iso, b.iso)),
    count: (rows) => `${rows.length} datasets`,
    empty: "No freshness reported yet.",
  },
  {
    name: "gaps",
    title: "Open gaps",
    fetchRows: (paging) => getAll("v1/quality/gaps", { status: "open" }, paging),
    count: (rows) => `${rows.length} open`,
    empty: "No open gaps.",
  },
  {
    name: "retired",
    title: "Retired series",
    fetchRows: (paging) => getAll("v1/quality/series", { status: "retired" }, paging),
    count: (rows) => `${rows.length} retired`,
    empty: "No retired series: every series is reporting.",
  },
  {
    name: "dead-letters",
    title: "Dead letters by reason",
    fetchRows: async (paging) => {
      const rows = await getAll("v1/quality/dead-letters", {}, paging);
      const total = deadLetterTotal(rows);
      return Object.assign(deadLettersByReason(rows), { total, truncated: rows.truncated });
    },
    count: (rows) => `${rows.total} records`,
    empty: "No dead letters.",
  },
];

$("#quality .quality-grid").append(...QUALITY_TABLES.map(({ name, title }) => qualitySection(name, title)));

/**
 * Load one quality table; its section says how many rows and shows its own errors.
 * @param {(typeof QUALITY_TABLES)[number]} table
 * @param {object} paging
 */
async function loadQualitySection({ name, fetchRows, count, empty }, paging) {
  const section = document.getElementById(`quality-${name}`);
  const problem = section.querySelector(".problem");
  try {
    const rows = await fetchRows(paging);
    renderGeneric(section.querySelector("table"), rows, empty);
    section.querySelector(".count").textContent = count(rows) + (rows.truncated ? "+" : "");
    showProblem(problem, "");
  } catch (error) {
    showProblem(problem, describeError(error), error);
  }
}

function loadQuality() {
  const paging = { partial: true, maxPages: QUALITY_MAX_PAGES };
  return Promise.all(QUALITY_TABLES.map((table) => loadQualitySection(table, paging)));
}

// ---- panel 5: status line ---------------------------------------------------------------------

const LIVE_TEXT = { connecting: "connecting", live: "live", reconnecting: "reconnecting", closed: "off" };

function showLiveState(liveState, detail) {
  ui.liveStatus.textContent = LIVE_TEXT[liveState] ?? liveState;
  ui.liveStatus.dataset.state = liveState;
  ui.liveDetail.textContent = detail ? `(${detail})` : "";
}

function markUpdated() {
  const now = Date.now();
  ui.lastUpdate.textContent = formatUtcClock(now);
  ui.lastUpdate.dateTime = new Date(now).toISOString();
}

async function checkReady() {
  const { ready, text } = await getReadiness();
  ui.apiReady.textContent = text;
  ui.apiReady.dataset.state = ready ? "ready" : "down";
}

// ---- live updates -----------------------------------------------------------------------------

function openLive() {
  live.open(ui.liveChosenOnly.checked && state.chosen ? [state.chosen.locationId] : []);
}

function onLmp(row) {
  markUpdated();
  latest.upsert(row);
  if (learnLocation(row)) renderLocationSelectSoon();
  const chosen = state.chosen;
  if (!chosen || row.iso !== chosen.iso || String(row.location_id) !== chosen.locationId) return;
  if (!chosen.rtMarket && RT_MARKETS.includes(row.market)) {
    choose(chosen.iso, chosen.locationId, row.market);
    return;
  }
  if (row.market !== "DA_HOURLY" && row.market !== chosen.rtMarket) return;
  const [point] = toPoints([row], row.market);
  if (point) chart.upsertPoint(row.market, point);
}

function onKpi(row) {
  markUpdated();
  if (ui.kpiScope.value === "chosen") {
    const chosen = state.chosen;
    const id = String(row.location_id);
    if (!chosen || row.iso !== chosen.iso || (id !== chosen.locationId && id !== "*")) return;
  }
  kpis.upsert(row);
}

/**
 * Read again what failed to load (the API may have been down), and the latest prices after the
 * stream was lost.
 * @param {boolean} streamLost
 */
async function recover(streamLost) {
  const latestFailed = retryable(ui.latestProblem);
  if ((streamLost || latestFailed) && !(await loadLatest())) return;
  if (!state.chosen) {
    const wanted = locationFromHash() ?? defaultLocation();
    if (wanted) choose(wanted.iso, wanted.locationId);
  } else if (latestFailed || retryable(ui.chartProblem)) {
    loadChart();
  }
  if (latestFailed || retryable(ui.catalogProblem)) loadCatalog();
  if (latestFailed || retryable(ui.kpiProblem)) loadKpis();
  if ([...document.querySelectorAll("#quality .problem")].some(retryable)) loadQuality();
}

/** A problem shown that asking again may clear: not one of the plan's (an upgrade clears those). */
function retryable(problem) {
  return !problem.hidden && problem.dataset.plan !== "true";
}

// ---- start ------------------------------------------------------------------------------------

function wireControls() {
  clearFlashOnEnd(document.body);
  ui.latestFilter.addEventListener("input", () => latest.setFilter(ui.latestFilter.value));
  ui.kpiFilter.addEventListener("input", () => kpis.setFilter(ui.kpiFilter.value));
  ui.locationSelect.addEventListener("change", () => {
    const value = ui.locationSelect.value;
    const bar = value.indexOf("|");
    if (bar > 0) choose(value.slice(0, bar), value.slice(bar + 1));
  });
  ui.marketSelect.addEventListener("change", () => {
    const market = ui.marketSelect.value;
    if (state.chosen && market) choose(state.chosen.iso, state.chosen.locationId, market);
  });
  ui.kpiScope.addEventListener("change", () => loadKpis());
  ui.liveChosenOnly.addEventListener("change", () => openLive());
}

/** Start the dashboard (once: later calls while it runs do nothing). */
async function start() {
  if (state.running) return;
  state.running = true;
  state.run += 1;
  const run = state.run;
  if (!state.wired) {
    wireControls();
    state.wired = true;
  }
  showLiveState("connecting");
  checkReady();
  loadQuality();
  state.intervals = [
    window.setInterval(() => latest.tickAges(), AGE_TICK_MS),
    window.setInterval(checkReady, READY_POLL_MS),
    window.setInterval(() => recover(false), RETRY_MS),
    window.setInterval(loadQuality, QUALITY_POLL_MS),
  ];
  state.starting = true;
  await loadLatest();
  if (state.run !== run || !state.running) return; // signed out meanwhile
  state.starting = false;
  // After signing in again the location chosen before is charted afresh.
  const previous = state.chosen;
  state.chosen = null;
  const asked = locationFromHash();
  const same = asked && previous && asked.iso === previous.iso && asked.locationId === previous.locationId;
  const wanted = (same ? previous : asked) ?? previous ?? defaultLocation();
  if (wanted) choose(wanted.iso, wanted.locationId, wanted.rtMarket ?? undefined);
  else chart.setMessage("Choose a location.");
  openLive();
  loadCatalog();
  if (ui.kpiScope.value !== "chosen" || !wanted) loadKpis();
}

/** Stop the dashboard (signed out): no stream, no polls, no requests in flight. */
function stop() {
  if (!state.running) return;
  state.running = false;
  state.starting = false;
  for (const id of state.intervals) window.clearInterval(id);
  state.intervals = [];
  state.chartRequest?.abort();
  state.kpiRequest?.abort();
  window.clearTimeout(state.selectTimer);
  state.selectTimer = 0;
  live.stop("signed out");
}

/**
 * The dashboard is shown at an address: chart the location it names, or put the chosen one in it.
 * @param {{iso: string, locationId: string} | null} location
 */
function show(location) {
  if (location && state.running && !state.starting) choose(location.iso, location.locationId);
  else if (!location) showChosenInAddress();
}

startShell({ start, stop, show });
