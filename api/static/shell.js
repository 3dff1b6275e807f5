// The page around the views: which view the address asks for (router.js), whether anyone is
// signed in (auth.js), the header bar with the signed-in user, their organisation and role, and
// the links between the views. Without a session only the sign-in form is shown; the address
// asked for is kept and opened after signing in. The way back from a single sign-on
// (`#/sso/<ticket>`) shows the sign-in form while the ticket is traded, then the prices.
// The user's feature flags are read once after signing in (flags.js). The Operators link shows
// once the operators' accounts route has answered 200, which is asked when an owner or admin
// opens the admin view (or the operators' address): nobody else is asked, so nobody else is
// refused. A billing member, who reads no prices, starts on the Usage & plan view.

import { describeError, getJson } from "./api.js";
import { getSession, logout, onSessionChange, restoreSession } from "./auth.js";
import { initAdmin, leaveAdmin, loadAdmin, renderAdminTitle, resetAdmin } from "./admin.js";
import { initBilling, leaveBilling, loadBillingView, renderBillingTitle, resetBilling } from "./billing.js";
import { showProblem } from "./dom.js";
import { loadFlags, resetFlags } from "./flags.js";
import { finishSso, focusLogin, initLogin, resetLogin } from "./login.js";
import { initOperators, isOperator, leaveOperators, loadOperators, probeOperator, resetOperators } from "./operators.js";
import { currentRoute, parseRoute, replaceHash } from "./router.js";
import { initSessions, loadSessions, resetSessions } from "./sessions.js";
import { isAdminRole, readsMarket } from "./widgets.js";

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

/** @type {Record<import("./router.js").View, {view: HTMLElement, title: string, focus: string|null, skip: string}>} */
const VIEWS = {
  login: { view: $("#login-view"), title: "Sign in", focus: null, skip: "#login-view" },
  dashboard: { view: $("#dashboard-view"), title: "", focus: null, skip: "#latest-panel" },
  sessions: { view: $("#sessions-view"), title: "Sessions", focus: "#sessions-title", skip: "#sessions-view" },
  admin: { view: $("#admin-view"), title: "Admin", focus: "#admin-title", skip: "#admin-view" },
  billing: { view: $("#billing-view"), title: "Usage & plan", focus: "#billing-title", skip: "#billing-view" },
  operators: { view: $("#operators-view"), title: "Operators", focus: "#operators-title", skip: "#operators-view" },
};

const ui = {
  boot: $("#boot-view"),
  userbar: $("#userbar"),
  signedInAs: $("#signed-in-as"),
  org: $("#signed-in-org"),
  role: $("#signed-in-role"),
  navDashboard: $("#nav-dashboard"),
  navSessions: $("#nav-sessions"),
  navAdmin: $("#nav-admin"),
  navBilling: $("#nav-billing"),
  navOperators: $("#nav-operators"),
  signOut: /** @type {HTMLButtonElement} */ ($("#sign-out")),
  statusLine: $("#status-line"),
  footer: $("#page-footer"),
  skip: /** @type {HTMLAnchorElement} */ ($("#skip-link")),
  pageProblem: $("#page-problem"),
};

const BASE_TITLE = document.title;

/**
 * @typedef {{start: () => void, stop: () => void,
 *   show: (location: {iso: string, locationId: string} | null) => void}} Dashboard
 * @type {Dashboard}
 */
let dashboard;
/** @type {{display_name?: string, memberships?: {org_id: string, name?: string, role?: string}[]} | null} */
let profile = null;
/** @type {import("./router.js").View | null} */
let shown = null;
/** Where a visitor without a session was going: opened after signing in. */
let pendingHash = "";
let booted = false;
let signingOut = false;

function orgName(session) {
  const membership = profile?.memberships?.find((m) => String(m.org_id) === session.orgId);
  return membership?.name || "";
}

function adminContext() {
  const session = getSession();
  if (!session) return null;
  return { orgId: session.orgId, orgName: orgName(session), userId: session.user.user_id, role: session.role };
}

function renderHeader() {
  const session = getSession();
  ui.userbar.hidden = !session || shown === "login";
  if (!session) {
    ui.signedInAs.textContent = "";
    ui.org.textContent = "";
    ui.role.textContent = "";
    ui.navAdmin.hidden = true;
    ui.navOperators.hidden = true;
    return;
  }
  const name = profile?.display_name || session.user.display_name;
  ui.signedInAs.textContent = session.user.email || name || session.user.user_id;
  ui.signedInAs.title = name ? `${name} (${session.user.email})` : session.user.email;
  ui.org.textContent = orgName(session) || session.orgId;
  ui.org.title = session.orgId;
  ui.role.textContent = session.role;
  ui.role.dataset.role = session.role;
  ui.navAdmin.hidden = !isAdminRole(session.role);
  ui.navOperators.hidden = !isAdminRole(session.role) || isOperator() !== true;
  ui.navDashboard.hidden = !readsMarket(session.role);
}

/** The user's name and organisations (`/v1/me`), for the header; the header works without. */
async function loadProfile() {
  try {
    const me = await getJson("v1/me");
    if (!getSession() || !me || typeof me !== "object") return;
    profile = me;
    renderHeader();
    renderAdminTitle();
    renderBillingTitle();
  } catch {
    // The header shows the organisation id instead of its name.
  }
}

/** @param {import("./router.js").View} view */
function show(view) {
  if (shown === "admin" && view !== "admin") leaveAdmin();
  if (shown === "billing" && view !== "billing") leaveBilling();
  if (shown === "operators" && view !== "operators") leaveOperators();
  const changed = shown !== view;
  shown = view;
  for (const [name, { view: element }] of Object.entries(VIEWS)) element.hidden = name !== view;
  ui.boot.hidden = true;
  ui.statusLine.hidden = view !== "dashboard";
  ui.footer.hidden = view !== "dashboard";
  ui.pageProblem.hidden = view !== "dashboard" || !ui.pageProblem.textContent;
  renderHeader();
  for (const [link, name] of [
    [ui.navDashboard, "dashboard"],
    [ui.navSessions, "sessions"],
    [ui.navAdmin, "admin"],
    [ui.navBilling, "billing"],
    [ui.navOperators, "operators"],
  ]) {
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const { title, focus, skip } = VIEWS[view];
  document.title = title ? `${title} \u00b7 ${BASE_TITLE}` : BASE_TITLE;
  ui.skip.href = skip;
  ui.skip.textContent = view === "dashboard" ? "Skip to prices" : "Skip to content";
  if (changed && focus && booted) $(focus)?.focus();
}

/** Show the view the address asks for, as far as the session allows. */
function route() {
  const asked = currentRoute();
  // An anchor within the page (the skip link) is no route; before the first view it is the dashboard.
  if (!asked && shown) return;
  const target = asked ?? { view: "dashboard", location: null };
  if (target.view === "sso") {
    completeSso(target.ticket ?? "");
    return;
  }
  const session = getSession();
  if (!session) {
    if (target.view !== "login") {
      pendingHash = target.view === "dashboard" && !target.location ? "" : window.location.hash;
      replaceHash("#/login");
    }
    show("login");
    focusLogin();
    return;
  }
  if (target.view === "login") {
    const next = pendingHash && parseRoute(pendingHash)?.view !== "login" ? pendingHash : "#/";
    pendingHash = "";
    replaceHash(next);
    route();
    return;
  }
  if ((target.view === "admin" || target.view === "operators") && !isAdminRole(session.role)) {
    replaceHash("#/");
    route();
    return;
  }
  if (target.view === "dashboard" && !readsMarket(session.role)) {
    // A billing member reads no prices: the plan is what there is for them.
    replaceHash("#/billing");
    route();
    return;
  }
  show(target.view);
  if (target.view === "dashboard") {
    dashboard.start();
    dashboard.show(target.location);
  } else if (target.view === "sessions") {
    loadSessions();
  } else if (target.view === "admin") {
    loadAdmin();
    probeOperator();
  } else if (target.view === "billing") {
    loadBillingView(target.query);
  } else if (target.view === "operators") {
    loadOperators();
  }
}

/**
 * Back from the identity provider: the ticket leaves the address (and the tab's history) at
 * once, is traded for a session, and the prices follow as after a password sign-in; a refused
 * ticket is explained on the sign-in form.
 */
async function completeSso(ticket) {
  pendingHash = "";
  replaceHash("#/login");
  show("login");
  const signedIn = await finishSso(ticket);
  if (signedIn) {
    // The session's listener has routed already; this only makes sure of where it went.
    if (getSession() && currentRoute()?.view === "login") {
      replaceHash("#/");
      route();
    }
  } else if (shown === "login") {
    focusLogin();
  }
}

/** @param {import("./auth.js").SessionChange} change */
function onChange(change) {
  if (change.type === "signed-in") {
    profile = null;
    resetOperators();
    renderHeader();
    loadProfile();
    loadFlags();
    if (booted) route();
  } else if (change.type === "refreshed") {
    // The role may have changed: the admin and operators' links and views follow it.
    const admin = isAdminRole(getSession()?.role);
    if (!admin && isOperator() !== null) resetOperators();
    if (!readsMarket(getSession()?.role)) dashboard.stop();
    renderHeader();
    if ((shown === "admin" || shown === "operators") && !admin) route();
    else if (shown === "dashboard" && !readsMarket(getSession()?.role)) route();
  } else {
    dashboard.stop();
    resetSessions();
    resetAdmin();
    resetBilling();
    resetOperators();
    resetFlags();
    profile = null;
    showProblem(ui.pageProblem, "");
    resetLogin(change.reason);
    // Signing out on purpose starts afresh; a session that ended comes back where it was.
    if (signingOut) replaceHash("#/login");
    renderHeader();
    if (booted) route();
  }
}

async function signOut() {
  ui.signOut.disabled = true;
  signingOut = true;
  try {
    await logout();
  } finally {
    signingOut = false;
    ui.signOut.disabled = false;
  }
}

/**
 * Start the page: resume the tab's session if it has one, then show what the address asks for.
 * @param {Dashboard} handlers the dashboard's start (idempotent), stop and location
 */
export async function startShell(handlers) {
  dashboard = handlers;
  initLogin();
  initSessions();
  initAdmin({ context: adminContext });
  initBilling({ context: adminContext });
  initOperators({ onStatus: () => renderHeader() });
  ui.signOut.addEventListener("click", signOut);
  onSessionChange(onChange);
  window.addEventListener("hashchange", () => route());
  ui.boot.hidden = false;
  let problem = "";
  try {
    await restoreSession();
  } catch (error) {
    // The API could not be reached: the refresh token is kept, a reload tries again.
    problem = `Could not resume your session: ${describeError(error)}. Reload to try again, or sign in.`;
  }
  booted = true;
  if (problem && !getSession()) resetLogin(problem);
  route();
}
