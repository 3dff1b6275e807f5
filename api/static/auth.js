// The signed-in session. The access token (a short-lived JWT) lives only in this module's memory;
// the refresh token lives in sessionStorage, so that a reload of the tab resumes the session and
// closing the tab ends what the browser holds. Every refresh rotates the refresh token (the API
// revokes the whole session when a spent one is presented again), so refreshes are serialised:
// there is never more than one in flight, and callers that need one share it.

import { ApiError, apiUrl, isAbort, problemOf, readBody, unreachable } from "./http.js";

const STORAGE_KEY = "optibid.refresh_token";
/** A token this close to its end is refreshed before it is used. */
const EXPIRY_MARGIN_MS = 15_000;
/** When a scheduled refresh cannot reach the API, it is tried again this much later. */
const RETRY_REFRESH_MS = 10_000;

/**
 * @typedef {{user_id: string, email: string, display_name?: string, mfa?: boolean}} User
 * @typedef {{sessionId: string, orgId: string, role: string, user: User, expiresAt: number}} SessionInfo
 * @typedef {{type: "signed-in"|"refreshed"|"signed-out", reason?: string}} SessionChange
 */

/** @type {(SessionInfo & {accessToken: string}) | null} */
let current = null;
/** @type {Promise<string|null> | null} the refresh in flight */
let refreshing = null;
let refreshTimer = 0;
/** Bumped when the session ends: an answer to a request of an earlier session is dropped. */
let generation = 0;
/** @type {Set<(change: SessionChange) => void>} */
const listeners = new Set();

// ---- storage ---------------------------------------------------------------------------------

function storedRefreshToken() {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return ""; // storage blocked: the session lasts as long as the page
  }
}

function storeRefreshToken(token) {
  try {
    if (token) window.sessionStorage.setItem(STORAGE_KEY, token);
    else window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage blocked: nothing to keep across a reload
  }
}

// In memory too, for when storage is blocked.
let refreshToken = "";

// ---- state -----------------------------------------------------------------------------------

/**
 * Who is signed in (no tokens), or null.
 * @returns {SessionInfo | null}
 */
export function getSession() {
  if (!current) return null;
  const { sessionId, orgId, role, user, expiresAt } = current;
  return { sessionId, orgId, role, user: { ...user }, expiresAt };
}

/** Whether a refresh token is kept from an earlier page of this tab. */
export function hasStoredSession() {
  return Boolean(storedRefreshToken());
}

/**
 * Be told when the session starts, is refreshed (the role may have changed) or ends.
 * @param {(change: SessionChange) => void} listener
 * @returns {() => void} stops telling
 */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(change) {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch (error) {
      console.warn("session listener failed", error);
    }
  }
}

/** Take the answer of a login or a refresh as the session. */
function adopt(body, type) {
  if (!body || typeof body.access_token !== "string" || typeof body.refresh_token !== "string") {
    throw new ApiError(0, "Unexpected answer", "the sign-in answer has no tokens");
  }
  const lifetimeMs = Math.max(1, Number(body.expires_in) || 300) * 1000;
  const user = body.user && typeof body.user === "object" ? body.user : {};
  current = {
    accessToken: body.access_token,
    expiresAt: Date.now() + lifetimeMs,
    sessionId: String(body.session_id ?? current?.sessionId ?? ""),
    orgId: String(body.org_id ?? current?.orgId ?? ""),
    role: String(body.role ?? current?.role ?? ""),
    user: {
      user_id: String(user.user_id ?? current?.user.user_id ?? ""),
      email: String(user.email ?? current?.user.email ?? ""),
      display_name: user.display_name ?? current?.user.display_name,
      mfa: user.mfa ?? current?.user.mfa,
    },
  };
  refreshToken = body.refresh_token;
  storeRefreshToken(refreshToken);
  scheduleRefresh(refreshDelay(lifetimeMs));
  notify({ type });
}

/** Refresh a little before the end: a fifth of the lifetime early, between 5 s and a minute. */
export function refreshDelay(lifetimeMs) {
  const early = Math.min(60_000, Math.max(5_000, lifetimeMs * 0.2));
  return Math.max(1_000, lifetimeMs - early);
}

function scheduleRefresh(delayMs) {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(async () => {
    try {
      await refresh();
    } catch {
      // The API could not be reached: try again while the access token still lasts.
      if (current) scheduleRefresh(RETRY_REFRESH_MS);
    }
  }, delayMs);
}

/** Forget the session here (the API is told by `logout`). */
function endSession(reason) {
  const wasSignedIn = Boolean(current) || Boolean(refreshToken) || hasStoredSession();
  generation += 1;
  current = null;
  refreshToken = "";
  refreshing = null;
  window.clearTimeout(refreshTimer);
  refreshTimer = 0;
  storeRefreshToken("");
  if (wasSignedIn) notify({ type: "signed-out", reason });
}

// ---- login, refresh, logout ------------------------------------------------------------------

async function postJson(path, body, headers = {}) {
  try {
    return await fetch(apiUrl(path), {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    throw unreachable(error);
  }
}

/**
 * Sign in. A 401 with code `otp_required` means the password was right and a second factor is
 * needed: send the same request again with `otp` (or `recovery_code`).
 * @param {{email: string, password: string, otp?: string, recovery_code?: string, org_id?: string}} request
 * @returns {Promise<SessionInfo>}
 * @throws {ApiError} with the problem's `code` (invalid_credentials, otp_required, invalid_otp, locked...)
 */
export async function login(request) {
  const body = Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined && value !== ""));
  const startedIn = generation;
  const response = await postJson("v1/auth/login", body);
  const answer = await readBody(response);
  if (!response.ok) throw problemOf(response, answer);
  if (startedIn !== generation) throw new ApiError(0, "Signed out", "the sign-in was overtaken by a sign-out");
  return adoptSignIn(answer);
}

/**
 * Take the token answer of a sign-in (a password's `POST /v1/auth/login`, or a single sign-on's
 * ticket traded by `exchangeSsoTicket`) as the tab's session, as a password sign-in does.
 * @param {unknown} answer `{access_token, refresh_token, expires_in, session_id, org_id, role, user}`
 * @returns {SessionInfo}
 * @throws {ApiError} when the answer holds no tokens
 */
export function adoptSignIn(answer) {
  // A new session replaces whatever this tab held: a refresh of the old one still in flight
  // is dropped rather than taken over the new tokens.
  window.clearTimeout(refreshTimer);
  if (refreshing) generation += 1;
  refreshing = null;
  adopt(answer, "signed-in");
  return /** @type {SessionInfo} */ (getSession());
}

/**
 * Finish a single sign-on: trade the ticket the API put in the dashboard's address for the
 * session's tokens (a ticket works once, within a minute) and sign in with them.
 * @param {string} ticket
 * @returns {Promise<SessionInfo>}
 * @throws {ApiError} the problem of a refused ticket (`code` "ticket"), or status 0 when unreachable
 */
export async function exchangeSsoTicket(ticket) {
  const startedIn = generation;
  const response = await postJson("v1/auth/sso/exchange", { ticket });
  const answer = await readBody(response);
  if (!response.ok) throw problemOf(response, answer);
  if (startedIn !== generation) throw new ApiError(0, "Signed out", "the sign-in was overtaken by a sign-out");
  return adoptSignIn(answer);
}

/**
 * The single sign-on connections that serve an email's domain (a public route).
 * @param {string} email
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<{connection_id: string, name: string, protocol: string, org_name: string, start_url: string}[]>}
 * @throws {ApiError} the problem (422 for an address that is no email), or status 0 when unreachable
 */
export async function discoverSso(email, { signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl("v1/auth/sso/discover", { email }), {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw unreachable(error);
  }
  const answer = await readBody(response);
  if (!response.ok) throw problemOf(response, answer);
  return answer && Array.isArray(answer.data) ? answer.data.filter((row) => row && typeof row === "object") : [];
}

/**
 * Resume the session of an earlier page of this tab from its refresh token.
 * @returns {Promise<boolean>} whether a session is on
 * @throws {ApiError} when the API cannot be reached (the refresh token is kept for a retry)
 */
export async function restoreSession() {
  if (current) return true;
  refreshToken = storedRefreshToken();
  if (!refreshToken) return false;
  return Boolean(await refresh());
}

/**
 * Get a new access token with the refresh token; one refresh at a time, shared by every caller.
 * When the API refuses the refresh token (spent, reused, expired or revoked) the session ends.
 * @returns {Promise<string|null>} the new access token, or null when there is no session
 * @throws {ApiError} when the API could not be reached or failed (the session is kept)
 */
export function refresh() {
  if (!refreshing) {
    const run = doRefresh();
    refreshing = run;
    const clear = () => {
      if (refreshing === run) refreshing = null;
    };
    run.then(clear, clear);
  }
  return refreshing;
}

async function doRefresh() {
  const token = refreshToken || storedRefreshToken();
  if (!token) {
    endSession("Your session has ended. Sign in again.");
    return null;
  }
  const startedIn = generation;
  const response = await postJson("v1/auth/refresh", { refresh_token: token });
  const answer = await readBody(response);
  if (startedIn !== generation) return null;
  if (response.ok) {
    adopt(answer, current ? "refreshed" : "signed-in");
    return current ? current.accessToken : null;
  }
  const problem = problemOf(response, answer);
  if (response.status === 400 || response.status === 401 || response.status === 403) {
    const why = problem.detail || problem.title;
    endSession(`Your session has ended${why ? ` (${why})` : ""}. Sign in again.`);
    return null;
  }
  throw problem; // 429, 5xx: the refresh token may still be good
}

/** A usable access token: refreshed first when it is about to end. */
async function accessToken() {
  if (current && current.expiresAt - Date.now() > EXPIRY_MARGIN_MS) return current.accessToken;
  if (!current && !refreshToken && !storedRefreshToken()) return null;
  return refresh();
}

/** Sign out: the API ends the session, then this tab forgets it (even when the API cannot be told). */
export async function logout() {
  if (current || refreshToken || hasStoredSession()) {
    try {
      const response = await apiFetch("v1/auth/logout", { method: "POST", retry: false });
      await response.body?.cancel();
    } catch {
      // Unreachable or already ended: forgetting it here is all that is left.
    }
  }
  endSession("You have signed out.");
}

// ---- requests --------------------------------------------------------------------------------

function withToken(init, token) {
  const headers = new Headers(init.headers ?? {});
  headers.set("Authorization", `Bearer ${token}`);
  const { retry: _retry, ...rest } = init;
  return { credentials: "same-origin", ...rest, headers };
}

async function send(url, init, token) {
  try {
    return await fetch(url, withToken(init, token));
  } catch (error) {
    if (isAbort(error)) throw error;
    throw unreachable(error);
  }
}

/**
 * `fetch` for the API's protected routes: adds `Authorization: Bearer <access token>`, refreshes
 * the token when it is about to end, and after a 401 refreshes once and sends the request again.
 * The answer is returned whatever its status; when the session cannot be saved it has ended (the
 * listeners are told) and the 401 is returned.
 * @param {string|URL} path a route (`v1/me`) or a URL made by `apiUrl`
 * @param {RequestInit & {retry?: boolean}} [options] `retry: false` leaves out the retry after a 401;
 *   a body must be one that can be sent twice (a string, not a stream)
 * @returns {Promise<Response>}
 * @throws {ApiError} 401 `signed_out` when there is no session; status 0 when unreachable
 */
export async function apiFetch(path, options = {}) {
  const url = typeof path === "string" ? apiUrl(path) : path;
  const startedIn = generation;
  const token = await accessToken();
  if (!token) throw new ApiError(401, "Signed out", "Sign in to continue.", { code: "signed_out" });
  const response = await send(url, options, token);
  if (response.status !== 401 || options.retry === false || startedIn !== generation) return response;
  // Another call may have refreshed meanwhile; else this token was refused: refresh now.
  const fresh = current && current.accessToken !== token ? current.accessToken : await refresh();
  if (!fresh) return response;
  await response.body?.cancel();
  return send(url, options, fresh);
}
