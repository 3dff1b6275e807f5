// The query API, same origin: JSON pages `{"data": [...], "next_cursor": ...}` and errors as
// RFC 9457 problem details (`title`, `status`, `detail`), which become ApiError here so that
// every panel can show them instead of failing. Every /v1 route needs the signed-in session's
// access token: requests go through `apiFetch` of auth.js, which adds it.

import { apiFetch } from "./auth.js";
import { ApiError, apiUrl, describeError, isAbort, problemOf, readBody } from "./http.js";

export { ApiError, apiUrl, describeError, isAbort };

// A guard against a server that hands out cursors forever; no real answer comes near it.
const MAX_PAGES = 1000;

/**
 * GET a route and parse its JSON; any answer that is not a success throws ApiError.
 * @param {string} path
 * @param {Record<string, unknown>} [params]
 * @param {{signal?: AbortSignal}} [options]
 */
export async function getJson(path, params = {}, { signal } = {}) {
  const response = await apiFetch(apiUrl(path, params), { headers: { Accept: "application/json" }, signal });
  const body = await readBody(response);
  if (!response.ok) throw problemOf(response, body);
  return body;
}

/**
 * Send a request with a JSON body (or none) to a protected route and parse the answer's JSON;
 * null for an answer without a body (204). Any answer that is not a success throws ApiError.
 * @param {string} path
 * @param {{method?: string, body?: unknown, params?: Record<string, unknown>, signal?: AbortSignal}} [options]
 */
export async function sendJson(path, { method = "POST", body, params = {}, signal } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await apiFetch(apiUrl(path, params), init);
  const answer = await readBody(response);
  if (!response.ok) throw problemOf(response, answer);
  return answer;
}

/**
 * Every row of a paged route: follows `next_cursor` until it is null.
 * With `partial`, reading stops after `maxPages` and the rows read so far are returned, marked
 * `truncated`; without it, a route with more pages than that is an error.
 * @param {string} path
 * @param {Record<string, unknown>} [params]
 * @param {{signal?: AbortSignal, maxPages?: number, partial?: boolean}} [options]
 * @returns {Promise<object[] & {truncated?: boolean}>}
 */
export async function getAll(path, params = {}, { signal, maxPages = MAX_PAGES, partial = false } = {}) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const body = await getJson(path, { ...params, cursor }, { signal });
    const data = body && Array.isArray(body.data) ? body.data : [];
    for (const row of data) rows.push(row);
    cursor = body && typeof body.next_cursor === "string" && body.next_cursor ? body.next_cursor : null;
    if (cursor === null) return rows;
  }
  if (partial) return Object.assign(rows, { truncated: true });
  throw new ApiError(0, "Too many pages", `${path} still had more after ${maxPages} pages`);
}

/**
 * The API's readiness: `/ready` answers 200 when ready and 503 naming the dependency that is
 * down. Never throws; the answer is summed up in one line.
 * @returns {Promise<{ready: boolean, text: string}>}
 */
export async function getReadiness({ signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl("ready"), { headers: { Accept: "application/json" }, signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    return { ready: false, text: "unreachable" };
  }
  const body = await readBody(response);
  if (response.ok) return { ready: true, text: "ready" };
  const down = failingDependencies(body);
  if (down.length) return { ready: false, text: `not ready: ${down.join(", ")}` };
  if (body && typeof body === "object" && typeof body.detail === "string") {
    return { ready: false, text: `not ready: ${body.detail}` };
  }
  return { ready: false, text: `not ready (${response.status})` };
}

const HEALTHY = /^(ok|up|ready|true|healthy|pass)$/i;
const NOT_DEPENDENCIES = new Set(["status", "ready", "title", "detail", "type", "instance"]);

/**
 * The dependencies a readiness answer says are down, whatever its exact shape:
 * `{"checks": {"postgres": "ok", "redis": "down"}}`, `{"redis": false}`,
 * `{"dependencies": {"redis": {"ok": false, "detail": "..."}}}` or a list of such objects.
 */
export function failingDependencies(body) {
  if (!body || typeof body !== "object") return [];
  const nested = body.checks ?? body.dependencies ?? body.components;
  const source = nested && typeof nested === "object" ? nested : body;
  const entries = Array.isArray(source)
    ? source.map((item, i) => [item?.name ?? item?.dependency ?? String(i), item])
    : Object.entries(source);
  const down = [];
  for (const [name, value] of entries) {
    if (NOT_DEPENDENCIES.has(name)) continue;
    const state = dependencyState(value);
    if (state !== null) down.push(state ? `${name} ${state}` : name);
  }
  return down;
}

/** null when healthy (or not a dependency at all), else a word on what is wrong ("" if none). */
function dependencyState(value) {
  if (value === true || value === null || value === undefined) return null;
  if (value === false) return "down";
  if (typeof value === "string") return HEALTHY.test(value) ? null : value;
  if (typeof value === "object") {
    if (value.ok === false || value.ready === false || value.healthy === false) {
      return typeof value.detail === "string" ? value.detail : "down";
    }
    if (typeof value.status === "string" && !HEALTHY.test(value.status)) return value.status;
  }
  return null;
}
