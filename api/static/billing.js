// The Usage & plan view (every signed-in user): the organisation's tier, plan and subscription
// status (past due: until when the paid rights last), the month's row quota, rows per day and
// the totals (`/v1/usage`), and the feature flags on for the user. Whoever manages billing
// (owner, admin, billing) also gets the subscription (`/v1/billing`): an upgrade button per
// paid tier above the current one (Stripe Checkout), the customer portal, and the invoices.
// A deployment without Stripe says so and offers none of those.

import { ApiError, describeError, getJson, isAbort, sendJson } from "./api.js";
import { h, showProblem } from "./dom.js";
import { allFlags, flagsLoaded, onFlags } from "./flags.js";
import { DASH, formatUtcFull, parseTime, toNumber } from "./format.js";
import { replaceHash } from "./router.js";
import { UsageChart, renderQuota, renderRights, renderTotals, statusText, upgradesFrom } from "./usage-view.js";
import { emptyRow, isBillingRole, relative, showNotice, text, timeCell } from "./widgets.js";

const INVOICE_COLUMNS = 5;
const NOT_CONNECTED = "Billing is not connected on this deployment: plans are set by the platform's operators.";

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  org: $("#billing-org"),
  reload: /** @type {HTMLButtonElement} */ ($("#billing-reload")),
  notice: $("#billing-notice"),
  problem: $("#billing-problem"),
  tier: $("#plan-tier"),
  plan: $("#plan-plan"),
  status: $("#plan-status"),
  grace: $("#plan-grace"),
  rights: $("#plan-rights"),
  quota: $("#quota"),
  totals: $("#usage-totals"),
  chart: /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("#usage-chart"))),
  chartCaption: $("#usage-chart-caption"),
  subscription: $("#subscription-panel"),
  connection: $("#subscription-connection"),
  subscriptionProblem: $("#subscription-problem"),
  subscriptionFacts: $("#subscription-facts"),
  upgrades: $("#upgrade-buttons"),
  portal: /** @type {HTMLButtonElement} */ ($("#billing-portal")),
  invoices: /** @type {HTMLTableElement} */ ($("#invoices-table")),
  flags: $("#my-flags"),
};

/**
 * @typedef {{orgId: string, orgName?: string, role: string}} BillingContext
 * @type {() => BillingContext | null}
 */
let context = () => null;

const chart = new UsageChart(ui.chart, ui.chartCaption);

const state = {
  /** @type {object | null} the `/v1/usage` answer shown */
  usage: null,
  /** @type {object | null} the `/v1/billing` answer shown */
  billing: null,
  /** @type {Map<string, AbortController>} */
  requests: new Map(),
  /** A checkout or portal on its way: the buttons wait. */
  redirecting: false,
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

/** Whether an error is the API saying it has no Stripe connection. */
function notConnected(error) {
  return error instanceof ApiError && error.status === 503 && /stripe|billing/i.test(`${error.title} ${error.detail}`);
}

// ---- usage and plan ---------------------------------------------------------------------------

async function loadUsage() {
  const request = begin("usage");
  ui.quota.setAttribute("aria-busy", "true");
  try {
    const usage = await getJson("v1/usage", {}, { signal: request.signal });
    if (!isLatest("usage", request)) return;
    state.usage = usage && typeof usage === "object" ? usage : null;
    renderUsage();
    showProblem(ui.problem, "");
  } catch (error) {
    if (isAbort(error) || !isLatest("usage", request)) return;
    showProblem(ui.problem, `Usage: ${describeError(error)}`, error);
  } finally {
    if (isLatest("usage", request)) ui.quota.removeAttribute("aria-busy");
  }
}

function renderUsage() {
  const usage = state.usage;
  if (!usage) return;
  const now = Date.now();
  ui.tier.textContent = text(usage.tier);
  ui.tier.dataset.tier = String(usage.tier ?? "");
  ui.plan.textContent = usage.plan && usage.plan !== usage.tier ? `subscribed plan: ${usage.plan}` : "";
  ui.status.textContent = statusText(usage.status);
  ui.status.dataset.status = String(usage.status ?? "");
  renderGrace(usage.status, usage.grace_until, now);
  renderRights(ui.rights, usage.rights);
  renderQuota(ui.quota, usage, now);
  renderTotals(ui.totals, usage, now);
  chart.setData(usage);
  renderUpgrades();
}

/** Past due: how long the paid rights last, highlighted. */
function renderGrace(status, graceUntil, now) {
  if (status !== "past_due") {
    ui.grace.hidden = true;
    ui.grace.replaceChildren();
    return;
  }
  const ms = parseTime(graceUntil);
  const until = Number.isFinite(ms)
    ? [
        " Your plan's rights last until ",
        h("strong", { "data-testid": "grace-until" }, formatUtcFull(ms)),
        ` (${relative(ms, now)}); after that the organisation moves to the free tier.`,
      ]
    : [" The organisation moves to the free tier when the grace period ends."];
  const fix = isBillingRole(context()?.role)
    ? " Update the payment method under Manage billing."
    : " Ask an owner or a billing member to update the payment method.";
  ui.grace.replaceChildren(h("strong", {}, "Payment past due."), ...until, fix);
  ui.grace.hidden = false;
}

// ---- subscription (owner, admin, billing) ---------------------------------------------------

async function loadBilling() {
  const request = begin("billing");
  try {
    const billing = await getJson("v1/billing", {}, { signal: request.signal });
    if (!isLatest("billing", request)) return;
    state.billing = billing && typeof billing === "object" ? billing : null;
    renderBilling();
    showProblem(ui.subscriptionProblem, "");
    if (state.billing?.checkout_available) loadInvoices();
    else renderInvoices(null);
  } catch (error) {
    if (isAbort(error) || !isLatest("billing", request)) return;
    showProblem(ui.subscriptionProblem, `Subscription: ${describeError(error)}`, error);
  }
}

function connected() {
  return Boolean(state.billing?.checkout_available);
}

function renderBilling() {
  const billing = state.billing;
  if (!billing) return;
  const now = Date.now();
  ui.connection.textContent = connected()
    ? "Upgrades go through Stripe Checkout; cards, receipts and cancelling are under Manage billing."
    : NOT_CONNECTED;
  ui.connection.dataset.connected = String(connected());
  const period = [billing.period_start, billing.period_end].map(parseTime);
  ui.subscriptionFacts.replaceChildren(
    ...[
      ["Plan", text(billing.plan)],
      ["Status", statusText(billing.status)],
      [
        "Period",
        Number.isFinite(period[0]) || Number.isFinite(period[1])
          ? `${Number.isFinite(period[0]) ? formatUtcFull(period[0]) : DASH} to ${Number.isFinite(period[1]) ? formatUtcFull(period[1]) : DASH}`
          : "no subscription period",
      ],
      ["Stripe customer", billing.stripe_customer_id ? String(billing.stripe_customer_id) : "none yet"],
    ].map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))),
  );
  if (!state.usage && billing.status) renderGrace(billing.status, billing.grace_until, now);
  renderUpgrades();
  ui.portal.disabled = !connected() || state.redirecting;
  ui.portal.title = connected() ? "Cards, invoices and cancelling, at Stripe" : NOT_CONNECTED;
}

function renderUpgrades() {
  if (!state.billing) {
    ui.upgrades.replaceChildren();
    return;
  }
  const tier = state.usage?.tier ?? state.billing.tier;
  const offers = upgradesFrom(tier);
  if (!offers.length) {
    ui.upgrades.replaceChildren(h("span", { class: "note" }, `The ${text(tier)} tier is the highest.`));
    return;
  }
  ui.upgrades.replaceChildren(
    ...offers.map((paid) => {
      const button = /** @type {HTMLButtonElement} */ (
        h(
          "button",
          {
            type: "button",
            class: "button primary upgrade",
            "data-tier": paid,
            disabled: !connected() || state.redirecting,
            title: connected() ? `Subscribe to the ${paid} tier at Stripe Checkout` : NOT_CONNECTED,
          },
          `Upgrade to ${paid}`,
        )
      );
      button.addEventListener("click", () => checkout(paid));
      return button;
    }),
  );
}

/** Leave for a Stripe page (Checkout or the portal) the API made for this organisation. */
async function redirect(path, body, what) {
  if (state.redirecting) return;
  state.redirecting = true;
  renderBilling();
  showProblem(ui.subscriptionProblem, "");
  try {
    const answer = await sendJson(path, { body });
    const url = typeof answer?.url === "string" ? answer.url : "";
    if (!/^https?:\/\//i.test(url)) throw new ApiError(0, "Unexpected answer", `${what}: the API gave no page to go to`);
    showNotice(ui.notice, `Opening ${what}\u2026`);
    window.location.assign(url);
  } catch (error) {
    state.redirecting = false;
    if (notConnected(error)) {
      if (state.billing) state.billing.checkout_available = false;
      showNotice(ui.notice, "");
      ui.connection.textContent = NOT_CONNECTED;
    } else {
      showProblem(ui.subscriptionProblem, `${what}: ${describeError(error)}`, error);
    }
    renderBilling();
  }
}

function checkout(tier) {
  return redirect("v1/billing/checkout", { tier }, `checkout for ${tier}`);
}

function portal() {
  return redirect("v1/billing/portal", undefined, "the billing portal");
}

// ---- invoices -------------------------------------------------------------------------------

async function loadInvoices() {
  const request = begin("invoices");
  ui.invoices.setAttribute("aria-busy", "true");
  try {
    const body = await getJson("v1/billing/invoices", {}, { signal: request.signal });
    if (!isLatest("invoices", request)) return;
    renderInvoices(Array.isArray(body?.data) ? body.data : []);
  } catch (error) {
    if (isAbort(error) || !isLatest("invoices", request)) return;
    if (notConnected(error)) renderInvoices(null);
    else showProblem(ui.subscriptionProblem, `Invoices: ${describeError(error)}`, error);
  } finally {
    if (isLatest("invoices", request)) ui.invoices.removeAttribute("aria-busy");
  }
}

/** `$12.50`: an amount in the currency's smallest unit (cents), as Stripe gives it. */
export function formatAmount(amount, currency) {
  const n = toNumber(amount);
  const code = String(currency ?? "").toUpperCase();
  if (!Number.isFinite(n)) return DASH;
  try {
    const format = new Intl.NumberFormat("en-US", { style: "currency", currency: code || "USD" });
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(n / 10 ** digits);
  } catch {
    return `${(n / 100).toFixed(2)} ${code}`;
  }
}

/** @param {object[] | null} rows null: no invoices to read (billing not connected) */
function renderInvoices(rows) {
  for (const old of ui.invoices.querySelectorAll("tbody")) old.remove();
  if (rows === null) {
    ui.invoices.append(h("tbody", {}, emptyRow(INVOICE_COLUMNS, connected() ? "Loading\u2026" : "No invoices here: billing is not connected.")));
    return;
  }
  const now = Date.now();
  const sorted = [...rows].sort((a, b) => (parseTime(b.period_end) || 0) - (parseTime(a.period_end) || 0));
  const body = sorted.map((invoice) => {
    const link = typeof invoice.hosted_invoice_url === "string" && /^https:\/\//i.test(invoice.hosted_invoice_url)
      ? h("a", { href: invoice.hosted_invoice_url, target: "_blank", rel: "noopener noreferrer" }, "View")
      : DASH;
    return h(
      "tr",
      { "data-invoice-id": text(invoice.id), "data-status": text(invoice.status) },
      h("th", { scope: "row", class: "mono" }, text(invoice.number ?? invoice.id)),
      h("td", { class: `status status-${text(invoice.status)}` }, text(invoice.status)),
      h("td", { class: "num" }, formatAmount(invoice.amount_due, invoice.currency)),
      timeCell(invoice.period_end, now),
      h("td", { class: "action" }, link),
    );
  });
  ui.invoices.append(h("tbody", {}, body.length ? body : emptyRow(INVOICE_COLUMNS, "No invoices yet.")));
}

// ---- feature flags --------------------------------------------------------------------------

/** The flags the user has, on the page's foot: visible, though nothing here depends on them. */
function renderFlags() {
  const flags = allFlags();
  ui.flags.dataset.loaded = String(flagsLoaded());
  if (!flagsLoaded()) {
    ui.flags.replaceChildren("Feature flags: ", h("span", { class: "note" }, "not read"));
    return;
  }
  if (!flags.length) {
    ui.flags.replaceChildren("Feature flags: ", h("span", { class: "note" }, "none on this platform"));
    return;
  }
  ui.flags.replaceChildren(
    "Feature flags: ",
    ...flags.map(([name, on]) =>
      h(
        "span",
        { class: `badge flag ${on ? "flag-on" : "flag-off"}`, "data-flag": name, "data-on": String(on), title: on ? "on for you" : "off for you" },
        name,
        on ? null : h("span", { class: "visually-hidden" }, " (off)"),
      ),
    ),
  );
}

// ---- the view -------------------------------------------------------------------------------

/**
 * @param {{context: () => BillingContext | null}} options who is signed in, and where
 */
export function initBilling(options) {
  context = options.context;
  ui.reload.addEventListener("click", () => {
    showNotice(ui.notice, "");
    readAll();
  });
  ui.portal.addEventListener("click", () => portal());
  onFlags(renderFlags);
  renderFlags();
}

function readAll() {
  const ctx = context();
  if (!ctx) return;
  loadUsage();
  ui.subscription.hidden = !isBillingRole(ctx.role);
  if (isBillingRole(ctx.role)) loadBilling();
}

/** The organisation in the view's title: its name once known. */
export function renderBillingTitle() {
  const ctx = context();
  ui.org.textContent = ctx ? `of ${ctx.orgName || ctx.orgId}` : "";
}

/**
 * Show the view: everything read again.
 * @param {URLSearchParams} [query] `checkout=done` when Stripe Checkout sent the browser back
 */
export function loadBillingView(query) {
  renderBillingTitle();
  renderFlags();
  const checkout = query?.get("checkout");
  if (checkout === "done") {
    showNotice(
      ui.notice,
      "Thank you. The new plan shows here as soon as Stripe confirms the payment; reload in a minute if it does not.",
    );
    // A reload of the page later is no return from Checkout.
    replaceHash("#/billing");
  }
  state.redirecting = false;
  readAll();
}

/** The view is left: nothing more to read for it. */
export function leaveBilling() {
  for (const controller of state.requests.values()) controller.abort();
  state.requests.clear();
  ui.quota.removeAttribute("aria-busy");
  ui.invoices.removeAttribute("aria-busy");
}

/** Forget everything shown (signed out). */
export function resetBilling() {
  leaveBilling();
  state.usage = null;
  state.billing = null;
  state.redirecting = false;
  ui.org.textContent = "";
  ui.tier.textContent = DASH;
  delete ui.tier.dataset.tier;
  ui.plan.textContent = "";
  ui.status.textContent = "";
  delete ui.status.dataset.status;
  ui.grace.hidden = true;
  ui.grace.replaceChildren();
  ui.rights.replaceChildren();
  ui.quota.replaceChildren(h("p", { class: "note" }, "Loading\u2026"));
  delete ui.quota.dataset.used;
  delete ui.quota.dataset.limit;
  delete ui.quota.dataset.state;
  ui.totals.replaceChildren();
  ui.subscriptionFacts.replaceChildren();
  ui.upgrades.replaceChildren();
  ui.connection.textContent = "";
  ui.subscription.hidden = true;
  chart.setData(null);
  for (const old of ui.invoices.querySelectorAll("tbody")) old.remove();
  ui.invoices.append(h("tbody", {}, emptyRow(INVOICE_COLUMNS, "Loading\u2026")));
  showProblem(ui.problem, "");
  showProblem(ui.subscriptionProblem, "");
  showNotice(ui.notice, "");
  renderFlags();
}
