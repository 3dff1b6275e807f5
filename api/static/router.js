// The page's addresses: hash routes, so that the static files need no server-side routing.
//   #/login     the sign-in form
//   #/          the dashboard; #/PJM%7C51288 the dashboard charting a location
//   #/sessions  the signed-in user's sessions
//   #/admin     the organisation's members, invitations, API keys, single sign-on and audit log
//   #/billing   the organisation's usage, quota and plan (and, for whoever manages billing,
//               upgrades, the customer portal and invoices); `#/billing?checkout=done` is where
//               Stripe Checkout sends the browser back
//   #/operators every organisation's tier and usage, and the feature flags (the platform's
//               operators only)
//   #/sso/<ticket>  where the API sends the browser back after a single sign-on: the ticket is
//               traded for the session's tokens (once) and the address moves on at once
// The dashboard's older addresses (#PJM|51288) still open the dashboard at that location. A hash
// that is neither (#latest-panel, the skip link's) is an anchor within the page, not a route.

/** @typedef {"login"|"dashboard"|"sessions"|"admin"|"billing"|"operators"} View */
/** @typedef {View|"sso"} RouteView the views, and the single sign-on's return (no view of its own) */
/**
 * @typedef {{view: RouteView, location: {iso: string, locationId: string} | null, ticket?: string,
 *   query?: URLSearchParams}} Route  `query`: what follows `?` in a named view's hash
 */

const NAMED = new Set(["login", "sessions", "admin", "billing", "operators"]);

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `PJM|51288` as a location, or null. */
function parseLocation(text) {
  const bar = text.indexOf("|");
  return bar > 0 && bar < text.length - 1 ? { iso: text.slice(0, bar), locationId: text.slice(bar + 1) } : null;
}

/**
 * The route of a hash, or null when the hash is an anchor within the page.
 * @param {string} hash `location.hash`, with or without its `#`
 * @returns {Route | null}
 */
export function parseRoute(hash) {
  const text = decode(String(hash ?? "").replace(/^#/, ""));
  if (!text || text === "/") return { view: "dashboard", location: null };
  if (text.startsWith("/")) {
    const rest = text.slice(1);
    const name = rest.split(/[/?]/)[0];
    if (name === "sso") return { view: "sso", location: null, ticket: rest.slice("sso/".length).trim() };
    if (NAMED.has(name)) {
      const at = rest.indexOf("?");
      const query = new URLSearchParams(at < 0 ? "" : rest.slice(at + 1));
      return { view: /** @type {View} */ (name), location: null, query };
    }
    return { view: "dashboard", location: parseLocation(rest) };
  }
  const location = parseLocation(text);
  return location ? { view: "dashboard", location } : null;
}

/** The hash of a view (and, for the dashboard, of its location). */
export function routeHash(view, location = null) {
  if (view !== "dashboard") return `#/${view}`;
  return location ? `#/${encodeURIComponent(`${location.iso}|${location.locationId}`)}` : "#/";
}

/** The route of the page's address now. */
export function currentRoute() {
  return parseRoute(window.location.hash);
}

/** Change the address without a `hashchange` (the caller shows the view itself). */
export function replaceHash(hash) {
  if (window.location.hash !== hash) window.history.replaceState(window.history.state, "", hash);
}
