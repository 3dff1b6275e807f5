// The plain HTTP pieces every module shares: where the API is, how an answer's body is read and
// how an error answer (RFC 9457 problem details: `title`, `status`, `detail`, and for the
// identity routes a machine-readable `code`) becomes an ApiError that a panel can show.

// The dashboard is served at <api root>/dashboard/, so the API root is one level up from this
// module wherever the API is mounted.
const API_ROOT = new URL("../", import.meta.url);

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the API could not be reached
   * @param {string} title
   * @param {string} detail
   * @param {{code?: string, retryAfter?: number}} [extra] the problem's `code`; for 429 the
   *   seconds of `Retry-After`
   */
  constructor(status, title, detail, { code = "", retryAfter = Number.NaN } = {}) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** A line for people: `Invalid parameter (422): start: required`. */
export function describeError(error) {
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
    return new ApiError(Number(body.status) || response.status, title, detail, { code, retryAfter });
  }
  // A proxy in front of the API may answer with HTML: keep the first words of its text.
  const text = typeof body === "string" ? body.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim() : "";
  return new ApiError(response.status, response.statusText || "Error", text.slice(0, 160), { retryAfter });
}

/** The ApiError of a request that never got an answer. */
export function unreachable(error) {
  return new ApiError(0, "API unreachable", error instanceof Error ? error.message : String(error));
}
