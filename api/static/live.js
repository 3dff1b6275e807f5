// The live stream: server-sent events from `/v1/live`, `event: lmp` and `event: kpi`, one JSON
// row each. The route needs the access token, which EventSource cannot send, so the stream is
// read with fetch() and parsed here as the SSE format says (`data:`, `id:`, `event:`, `retry:`
// lines, an empty line ending an event, `:` comments for heartbeats). After a drop the stream is
// opened again with `Last-Event-ID`, so that the server can replay what was missed; a request
// that fails is tried again less often each time. A stream the organisation's plan does not
// include (403 `tier_sse`) is not asked for again: the caller is told, to show the way to a
// plan that does; one refused for its rate (429) is tried again after `Retry-After`.

import { apiFetch } from "./auth.js";
import { apiUrl, describeError, isAbort, isPlanProblem, problemOf, readBody } from "./http.js";

const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];
/** The server's heartbeats come every 15 s: this long without a byte means a dead connection. */
const SILENCE_MS = 75_000;
const DEFAULT_RETRY_MS = 2000;

/** @typedef {"connecting"|"live"|"reconnecting"|"closed"} LiveState */
/** @typedef {{type: string, data: string, lastEventId: string}} SseEvent */

/**
 * An incremental parser of an event stream: text goes in as it arrives, in pieces of any size,
 * and each complete event comes out. Lines end in CRLF, LF or CR.
 */
export class SseParser {
  /**
   * @param {{onEvent: (event: SseEvent) => void, onRetry?: (ms: number) => void, lastEventId?: string}} handlers
   *   `lastEventId`: the id to start from (kept across connections, as the format says)
   */
  constructor({ onEvent, onRetry = () => {}, lastEventId = "" }) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
    this.eventType = "";
    /** @type {string[]} */
    this.data = [];
    this.buffer = "";
    this.skipLineFeed = false;
  }

  /** Feed decoded text. */
  push(text) {
    if (!text) return;
    let chunk = text;
    if (this.skipLineFeed && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.skipLineFeed = false;
    const buffer = this.buffer + chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i += 1) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(buffer.slice(start, i));
      if (c === 13) {
        // CR LF is one line end; a CR at the end of this piece may have its LF in the next.
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i += 1;
        } else {
          this.skipLineFeed = true;
        }
      }
      start = i + 1;
    }
    this.buffer = buffer.slice(start);
  }

  /** The stream ended: an event without its closing empty line is dropped, as the format says. */
  end() {
    this.buffer = "";
    this.data = [];
    this.eventType = "";
    this.skipLineFeed = false;
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment: the server's heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  dispatch() {
    this.lastEventId = this.idBuffer;
    const { data, eventType } = this;
    this.data = [];
    this.eventType = "";
    if (!data.length) return;
    this.onEvent({ type: eventType || "message", data: data.join("\n"), lastEventId: this.lastEventId });
  }
}

export class LiveStream {
  /**
   * @param {object} handlers
   * @param {(row: object) => void} handlers.onLmp
   * @param {(row: object) => void} handlers.onKpi
   * @param {(state: LiveState, detail?: string) => void} handlers.onState
   * @param {() => void} handlers.onResume called when a connection opens again after a loss:
   *   whatever the server could not replay is fetched again by the caller
   * @param {(error: import("./http.js").ApiError) => void} [handlers.onRefused] called when the
   *   plan does not include the stream (the stream stays closed until opened again)
   */
  constructor({ onLmp, onKpi, onState, onResume, onRefused = () => {} }) {
    this.handlers = { onLmp, onKpi, onState, onResume, onRefused };
    /** @type {AbortController|null} the connection's, null when closed */
    this.controller = null;
    this.locationIds = [];
    this.failures = 0;
    this.retryTimer = 0;
    this.silenceTimer = 0;
    this.retryMs = DEFAULT_RETRY_MS;
    this.lastEventId = "";
    this.lost = false;
  }

  /**
   * (Re)open the stream; with location ids, only their events come. A new stream starts from
   * the server's snapshot, not from where the previous one was.
   * @param {string[]} [locationIds]
   */
  open(locationIds = []) {
    this.locationIds = [...locationIds];
    this.close();
    this.lastEventId = "";
    this.failures = 0;
    this.connect();
  }

  close() {
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.silenceTimer);
    this.retryTimer = 0;
    this.silenceTimer = 0;
    const controller = this.controller;
    this.controller = null;
    controller?.abort();
  }

  /** Stop for good (signed out): closed, and said so. */
  stop(detail) {
    this.close();
    this.lost = false;
    this.handlers.onState("closed", detail);
  }

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    const current = () => this.controller === controller;
    this.handlers.onState(this.lost ? "reconnecting" : "connecting");
    const url = apiUrl("v1/live", { topics: "lmp,kpis", location_id: this.locationIds });
    const headers = { Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response;
    try {
      response = await apiFetch(url, { headers, signal: controller.signal, cache: "no-store" });
    } catch (error) {
      if (!current()) return;
      if (error?.code === "signed_out") {
        this.stop("signed out");
        return;
      }
      this.retryLater(isAbort(error) ? "aborted" : describeError(error));
      return;
    }
    if (!current()) {
      response.body?.cancel().catch(() => {});
      return;
    }
    if (response.status === 401) {
      // The token was refused even after a refresh: the session has ended.
      this.stop("signed out");
      return;
    }
    const type = response.headers.get("Content-Type") ?? "";
    if (!response.ok) {
      const problem = problemOf(response, await readBody(response).catch(() => null));
      if (!current()) return;
      if (isPlanProblem(problem)) {
        this.close();
        this.lost = false;
        this.handlers.onState("closed", "not in your plan");
        this.handlers.onRefused(problem);
        return;
      }
      const wait = response.status === 429 && problem.retryAfter > 0 ? problem.retryAfter * 1000 : 0;
      this.retryLater(`HTTP ${response.status}`, wait);
      return;
    }
    if (!response.body || !type.startsWith("text/event-stream")) {
      response.body?.cancel().catch(() => {});
      this.retryLater(`not an event stream (${type || "no type"})`);
      return;
    }
    this.failures = 0;
    this.handlers.onState("live");
    if (this.lost) {
      this.lost = false;
      this.handlers.onResume();
    }
    await this.read(response.body, controller);
    if (!current()) return;
    // The server ended the stream or the connection dropped: resume where it stopped.
    this.lost = true;
    this.handlers.onState("reconnecting");
    this.retryTimer = window.setTimeout(() => this.connect(), this.retryMs);
  }

  /** Read events until the stream ends, drops, goes silent or is closed. */
  async read(body, controller) {
    const parser = new SseParser({
      lastEventId: this.lastEventId,
      onEvent: (event) => this.dispatch(event),
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const watch = () => {
      window.clearTimeout(this.silenceTimer);
      this.silenceTimer = window.setTimeout(() => reader.cancel().catch(() => {}), SILENCE_MS);
    };
    try {
      watch();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.controller !== controller) break;
        watch();
        parser.push(decoder.decode(value, { stream: true }));
        this.lastEventId = parser.lastEventId;
      }
    } catch {
      // A dropped connection (or our own abort): the caller decides what comes next.
    } finally {
      window.clearTimeout(this.silenceTimer);
      this.silenceTimer = 0;
      parser.end();
      if (this.controller === controller) this.lastEventId = parser.lastEventId;
    }
  }

  /**
   * A request failed: try again after a backoff that grows with each failure.
   * @param {string} reason
   * @param {number} [atLeastMs] the server's `Retry-After`, when it gave one
   */
  retryLater(reason, atLeastMs = 0) {
    this.lost = true;
    this.controller = null;
    const wait = Math.max(atLeastMs, BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)]);
    this.failures += 1;
    this.handlers.onState("reconnecting", `${reason}; retry in ${Math.round(wait / 1000)} s`);
    this.retryTimer = window.setTimeout(() => this.connect(), wait);
  }

  dispatch(event) {
    const handler =
      event.type === "lmp" ? this.handlers.onLmp : event.type === "kpi" ? this.handlers.onKpi : null;
    if (!handler) return;
    let row;
    try {
      row = JSON.parse(event.data);
    } catch {
      return; // not a row: nothing to show
    }
    if (row && typeof row === "object") handler(row);
  }
}
