// The plain HTTP pieces every module shares: where the API is, how an answer's body is read and
// how an error answer (RFC 9457 problem details: `title`, `status`, `detail`, and for the
// identity routes a machine-readable `code`) becomes an ApiError that a panel can show.
// A refusal by the organisation's plan (403 `tier_*`, 429 `quota_exhausted`) is described in
// words that say what the plan lacks and which tier has it; a panel showing one also links to
// the Usage & plan page (dom.js `showProblem`).

import { formatNumber, formatUtcFull, parseTime } from "./format.js";

// The dashboard is served at <api root>/dashboard/, so the API root is one level up from this
// module wherever the API is mounted.
const API_ROOT = new URL("../", import.meta.url);

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the API could not be reached
   * @param {string} title
   * @param {string} detail
   * @param {{code?: string, retryAfter?: number, problem?: Record<string, unknown>,
   *   rateLimit?: string}} [extra] the problem's `code`; for 429 the seconds of `Retry-After`;
   *   the whole problem body (its extension members: `tier`, `upgrade_to`, `limit`...); the
   *   `RateLimit` header of the answer
   */
  constructor(status, title, detail, { code = "", retryAfter = Number.NaN, problem = {}, rateLimit = "" } = {}) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.retryAfter = retryAfter;
    this.problem = problem;
    this.rateLimit = rateLimit;
  }
}

/** The codes of a refusal by the organisation's plan: what it does not include, or its quota. */
export const PLAN_CODES = Object.freeze(["tier_dataset", "tier_sse", "tier_csv", "tier_history", "quota_exhausted"]);

/** Whether an error is a refusal that another plan would lift (so worth a link to the plan). */
export function isPlanProblem(error) {
  return error instanceof ApiError && PLAN_CODES.includes(error.code);
}

/** Whether an error is a 429 for the rate: asking later works, and higher tiers allow more. */
export function isRateLimited(error) {
  return error instanceof ApiError && error.status === 429 && error.code === "rate_limited";
}

/** What a `tier_*` refusal says the plan lacks, in words. */
const LACKS = {
  tier_dataset: "this dataset",
  tier_sse: "live updates",
  tier_csv: "CSV export",
  tier_history: "history this far back",
};

function word(value) {
  return typeof value === "string" && value ? value : "";
}

/**
 * A refusal by the plan in words: `Your plan (free) does not include the kpis dataset —
 * upgrade to professional.` or, for the quota, how much was used and when it resets.
 * @param {ApiError} error a plan problem (`isPlanProblem`)
 */
export function describePlanProblem(error) {
  const problem = error.problem ?? {};
  const tier = word(problem.tier);
  const upgradeTo = word(problem.upgrade_to);
  const plan = tier ? `Your plan (${tier})` : "Your plan";
  if (error.code === "quota_exhausted") {
    const limit = problem.limit === null || problem.limit === undefined ? "" : formatNumber(problem.limit);
    const used = problem.used === null || problem.used === undefined ? "" : formatNumber(problem.used);
    const resets = parseTime(problem.resets_at);
    const parts = [
      `${plan} has used ${limit ? `its ${limit} rows` : "its rows"} this month${used ? ` (${used} read)` : ""}`,
      Number.isFinite(resets) ? `; the quota resets ${formatUtcFull(resets)}` : "",
      upgradeTo ? ` \u2014 or upgrade to ${upgradeTo}` : "",
    ];
    return `${parts.join("")}.`;
  }
  // The API's detail reads "the free tier does not include the kpis dataset; the ... includes it".
  const named = /does not include (.+?)(?:; the [\w-]+ tier includes it)?$/.exec(error.detail ?? "");
  const what = named ? named[1] : (LACKS[error.code] ?? "this");
  return `${plan} does not include ${what}${upgradeTo ? ` \u2014 upgrade to ${upgradeTo}` : ""}.`;
}

/** A line for people: `Invalid parameter (422): start: required`. */
export function describeError(error) {
  if (isPlanProblem(error)) return describePlanProblem(/** @type {ApiError} */ (error));
  if (error instanceof ApiError) {
    const status = error.status ? ` (${error.status})` : "";
    return error.detail ? `${error.title}${status}: ${error.detail}` : `${error.title}${status}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export function isAbort(error) {
  return error instanceof DOMException && error.name === "AbortError";
}

/**
 * The URL of an API route with its query; parameters that are null, undefined or empty are
 * left out, arrays repeat the parameter.
 * @param {string} path e.g. `v1/lmp/latest`
 * @param {Record<string, unknown>} [params]
 * @returns {URL}
 */
export function apiUrl(path, params = {}) {
  const url = new URL(path.replace(/^\/+/, ""), API_ROOT);
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== null && item !== undefined && item !== "") {
        url.searchParams.append(name, String(item));
      }
    }
  }
  return url;
}

/** The body of an answer: parsed JSON, else its text, else null when empty. */
export async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or NaN. */
function retryAfterOf(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return Number.NaN;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.round((at - Date.now()) / 1000)) : Number.NaN;
}

/** The ApiError of an answer that is not a success. */
export function problemOf(response, body) {
  const retryAfter = retryAfterOf(response);
  if (body && typeof body === "object") {
    const title = typeof body.title === "string" ? body.title : response.statusText || "Error";
    const detail = typeof body.detail === "string" ? body.detail : "";
    const code = typeof body.code === "string" ? body.code : "";
    const rateLimit = response.headers.get("RateLimit") ?? "";
    return new ApiError(Number(body.status) || response.status, title, detail, {
      code,
      retryAfter,
      problem: body,
      rateLimit,
    });
  }
  // A proxy in front of the API may answer with HTML: keep the first words of its text.
  const text = typeof body === "string" ? body.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim() : "";
  return new ApiError(response.status, response.statusText || "Error", text.slice(0, 160), { retryAfter });
}

/** The ApiError of a request that never got an answer. */
export function unreachable(error) {
  return new ApiError(0, "API unreachable", error instanceof Error ? error.message : String(error));
}
