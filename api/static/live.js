// The live stream: server-sent events from `/v1/live`, `event: lmp` and `event: kpi`, one JSON
// row each. The browser's EventSource reconnects by itself after a dropped connection and sends
// Last-Event-ID so the server can resume; it gives up only when the server answers with an error
// status or another content type, and then a new EventSource is made here after a backoff.

import { apiUrl } from "./api.js";

const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];

/** @typedef {"connecting"|"live"|"reconnecting"|"closed"} LiveState */

export class LiveStream {
  /**
   * @param {object} handlers
   * @param {(row: object) => void} handlers.onLmp
   * @param {(row: object) => void} handlers.onKpi
   * @param {(state: LiveState, detail?: string) => void} handlers.onState
   * @param {() => void} handlers.onResume called when a connection opens again after a loss:
   *   whatever the server could not replay is fetched again by the caller
   */
  constructor({ onLmp, onKpi, onState, onResume }) {
    this.handlers = { onLmp, onKpi, onState, onResume };
    this.source = null;
    this.locationIds = [];
    this.failures = 0;
    this.retryTimer = 0;
    this.lost = false;
  }

  /**
   * (Re)open the stream; with location ids, only their events come.
   * @param {string[]} [locationIds]
   */
  open(locationIds = []) {
    this.locationIds = [...locationIds];
    this.close();
    this.connect();
  }

  close() {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  connect() {
    const url = apiUrl("v1/live", { topics: "lmp,kpis", location_id: this.locationIds });
    const source = new EventSource(url);
    this.source = source;
    this.handlers.onState(this.lost ? "reconnecting" : "connecting");
    source.addEventListener("open", () => {
      this.failures = 0;
      this.handlers.onState("live");
      if (this.lost) {
        this.lost = false;
        this.handlers.onResume();
      }
    });
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      this.lost = true;
      if (source.readyState === EventSource.CONNECTING) {
        this.handlers.onState("reconnecting");
        return;
      }
      // Closed for good by the browser: try again ourselves, less often each time.
      source.close();
      this.source = null;
      const wait = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
      this.failures += 1;
      this.handlers.onState("reconnecting", `retry in ${Math.round(wait / 1000)} s`);
      this.retryTimer = window.setTimeout(() => this.connect(), wait);
    });
    source.addEventListener("lmp", (event) => this.dispatch(event, this.handlers.onLmp));
    source.addEventListener("kpi", (event) => this.dispatch(event, this.handlers.onKpi));
  }

  dispatch(event, handler) {
    let row;
    try {
      row = JSON.parse(event.data);
    } catch {
      return; // not a row: nothing to show
    }
    if (row && typeof row === "object") handler(row);
  }
}
