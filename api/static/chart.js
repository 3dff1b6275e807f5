// Panel 2's chart: price series as step lines in inline SVG, a UTC time axis, a price axis, a
// legend and a hover tooltip. An LMP is the price of a whole interval, so each point is drawn
// flat from its interval's start to its end, and a missing interval leaves a gap.

import { h } from "./dom.js";
import { DASH, HOUR_MS, formatLocalShort, formatPrice, formatUtcShort } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 24, right: 14, bottom: 30, left: 52 };
const TIME_STEPS_H = [1, 2, 3, 6, 12, 24, 48];

/**
 * @typedef {{t: number, v: number, minutes: number}} Point  start (ms UTC), price, length
 * @typedef {{id: string, label: string, className: string, points: Point[]}} Series
 */

function svg(tag, attrs = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A round step (1, 2, 2.5 or 5 times a power of ten) near `rough`. */
function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  const unit = rough / power;
  const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 2.5 ? 2.5 : unit <= 5 ? 5 : 10;
  return nice * power;
}

/** Ticks on round values covering [lo, hi] in about `count` steps. */
export function niceTicks(lo, hi, count) {
  const step = niceStep((hi - lo) / Math.max(1, count));
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let value = first; value < hi + step * 0.999; value += step) ticks.push(Number(value.toFixed(10)));
  return ticks;
}

/** The index of the last point starting at or before `t` (-1 when none). */
function lastAtOrBefore(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].t <= t) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** The point whose interval contains `t`, if any. */
export function pointAt(points, t) {
  const i = lastAtOrBefore(points, t);
  if (i < 0) return null;
  const point = points[i];
  return t < point.t + point.minutes * 60_000 ? point : null;
}

export class PriceChart {
  /**
   * @param {SVGSVGElement} root the `<svg>` to draw in (its `data-points` says how many were drawn)
   * @param {{tooltip: HTMLElement, legend: HTMLElement}} parts
   */
  constructor(root, { tooltip, legend }) {
    this.root = root;
    this.tooltip = tooltip;
    this.legend = legend;
    /** @type {Series[]} */
    this.series = [];
    this.start = Number.NaN;
    this.end = Number.NaN;
    this.iso = "";
    this.message = "Choose a location.";
    this.scale = null;
    this.drawnWidth = 0;
    this.drawQueued = false;
    /** Points pushed while data loads, for the series to come; null when not loading. */
    this.arrived = null;
    root.addEventListener("pointermove", (event) => this.hover(event));
    root.addEventListener("pointerdown", (event) => this.hover(event));
    // A finger lifts as soon as it taps: a touch tooltip stays until a tap elsewhere.
    root.addEventListener("pointerleave", (event) => {
      if (event.pointerType !== "touch") this.hideHover();
    });
    document.addEventListener("pointerdown", (event) => {
      if (!root.contains(/** @type {Node} */ (event.target))) this.hideHover();
    });
    // Redraw at the new width (text keeps its size, unlike a scaled drawing).
    new ResizeObserver(() => {
      if (Math.round(this.root.clientWidth) !== this.drawnWidth) this.requestDraw();
    }).observe(root);
  }

  /**
   * Show series over [start, end) (ms UTC); `iso` gives the local time in the tooltip.
   * @param {{series: Series[], start: number, end: number, iso: string}} data
   */
  setData({ series, start, end, iso }) {
    this.series = series.map((s) => ({ ...s, points: [...s.points].sort((a, b) => a.t - b.t) }));
    this.start = start;
    this.end = end;
    this.iso = iso;
    this.message = "";
    const arrived = this.arrived ?? [];
    this.arrived = null;
    for (const [seriesId, point] of arrived) this.upsertPoint(seriesId, point);
    this.requestDraw();
  }

  /** Show a message instead of a chart ("Choose a location"...). */
  setMessage(message) {
    this.series = [];
    this.message = message;
    this.arrived = null;
    this.requestDraw();
  }

  /** Show a message while data loads; points pushed meanwhile are added to the data to come. */
  setLoading(message) {
    this.setMessage(message);
    this.arrived = [];
  }

  /**
   * Add or replace (a revision) one point of a series, moving the window on when the point is
   * past its end so that it keeps its length.
   * @returns {boolean} whether the series is shown (else the point waits for it while loading)
   */
  upsertPoint(seriesId, point) {
    const series = this.series.find((s) => s.id === seriesId);
    if (!series) {
      this.arrived?.push([seriesId, point]);
      return false;
    }
    const { points } = series;
    const i = lastAtOrBefore(points, point.t);
    if (i >= 0 && points[i].t === point.t) points[i] = point;
    else points.splice(i + 1, 0, point);
    const pointEnd = point.t + point.minutes * 60_000;
    if (pointEnd > this.end) {
      const span = this.end - this.start;
      this.end = Math.ceil(pointEnd / HOUR_MS) * HOUR_MS;
      this.start = this.end - span;
      for (const s of this.series) {
        while (s.points.length && s.points[0].t + s.points[0].minutes * 60_000 <= this.start) s.points.shift();
      }
    }
    this.requestDraw();
    return true;
  }

  /** Draw on the next frame; a burst of updates costs one drawing. */
  requestDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.draw();
    });
  }

  draw() {
    const width = Math.max(260, Math.round(this.root.clientWidth || 600));
    const height = width < 560 ? 230 : 300;
    this.drawnWidth = Math.round(this.root.clientWidth);
    this.root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.root.replaceChildren();
    this.hideHover();
    this.scale = null;
    const visible = this.visibleSeries();
    const count = visible.reduce((sum, s) => sum + s.points.length, 0);
    this.root.dataset.points = String(count);
    this.renderLegend(visible);
    if (!count) {
      const text = this.message || "No prices in this window.";
      const at = { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-message" };
      this.root.append(svg("text", at, text));
      return;
    }
    const scale = this.makeScale(visible, width, height);
    this.scale = scale;
    this.drawPriceAxis(scale);
    this.drawTimeAxis(scale);
    // The first series is drawn last, on top: day-ahead's steps stay visible over real time.
    for (const s of [...visible].reverse()) {
      this.root.append(svg("path", { d: stepPath(s.points, scale), class: `line ${s.className}` }));
    }
    this.cursor = svg("g", { class: "cursor", visibility: "hidden" });
    this.root.append(this.cursor);
  }

  /** Each series with only the points that overlap the window. */
  visibleSeries() {
    if (!Number.isFinite(this.start) || !Number.isFinite(this.end)) return [];
    return this.series.map((s) => ({
      ...s,
      points: s.points.filter(
        (p) => Number.isFinite(p.v) && p.t < this.end && p.t + p.minutes * 60_000 > this.start,
      ),
    }));
  }

  makeScale(visible, width, height) {
    let min = Infinity;
    let max = -Infinity;
    for (const s of visible) {
      for (const p of s.points) {
        min = Math.min(min, p.v);
        max = Math.max(max, p.v);
      }
    }
    const pad = (max - min || Math.max(1, Math.abs(max) * 0.1)) * 0.08;
    const ticks = niceTicks(min - pad, max + pad, height < 260 ? 4 : 6);
    const lo = ticks[0];
    const hi = ticks[ticks.length - 1];
    const left = MARGIN.left;
    const right = width - MARGIN.right;
    const top = MARGIN.top;
    const bottom = height - MARGIN.bottom;
    const { start, end } = this;
    return {
      width,
      height,
      left,
      right,
      top,
      bottom,
      ticks,
      start,
      end,
      x: (t) => left + ((t - start) / (end - start)) * (right - left),
      y: (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top),
      t: (x) => start + ((x - left) / (right - left)) * (end - start),
    };
  }

  drawPriceAxis(scale) {
    const axis = svg("g", { class: "axis axis-price" });
    for (const value of scale.ticks) {
      const y = scale.y(value).toFixed(1);
      axis.append(
        svg("line", { x1: scale.left, x2: scale.right, y1: y, y2: y, class: value ? "grid" : "grid zero" }),
        svg("text", { x: scale.left - 6, y, dy: "0.32em", "text-anchor": "end" }, formatTick(value)),
      );
    }
    axis.append(svg("text", { x: 4, y: 12, class: "axis-title" }, "$/MWh"));
    this.root.append(axis);
  }

  drawTimeAxis(scale) {
    const axis = svg("g", { class: "axis axis-time" });
    const room = Math.max(1, Math.floor((scale.right - scale.left) / 64));
    const stepH = TIME_STEPS_H.find((hours) => (scale.end - scale.start) / (hours * HOUR_MS) <= room) ?? 48;
    const step = stepH * HOUR_MS;
    const y = scale.bottom;
    axis.append(svg("line", { x1: scale.left, x2: scale.right, y1: y, y2: y, class: "baseline" }));
    for (let t = Math.ceil(scale.start / step) * step; t <= scale.end; t += step) {
      const x = scale.x(t).toFixed(1);
      const midnight = t % (24 * HOUR_MS) === 0;
      const text = new Date(t).toISOString();
      const label = midnight ? text.slice(5, 10) : `${text.slice(11, 13)}h`;
      // Labels at the ends are anchored inside the plot so that they are not cut off.
      const anchor = x < scale.left + 16 ? "start" : x > scale.right - 16 ? "end" : "middle";
      axis.append(
        svg("line", { x1: x, x2: x, y1: scale.bottom, y2: scale.bottom + 4, class: "tick" }),
        svg("text", { x, y: scale.bottom + 16, "text-anchor": anchor, class: midnight ? "day" : "" }, label),
      );
    }
    axis.append(svg("text", { x: scale.right, y: 12, "text-anchor": "end", class: "axis-title" }, "time UTC"));
    this.root.append(axis);
  }

  renderLegend(visible) {
    this.legend.replaceChildren(
      ...visible.map((s) => {
        const last = s.points[s.points.length - 1];
        const value = last ? `${formatPrice(last.v)} at ${formatUtcShort(last.t)}` : "no prices";
        return h(
          "li",
          { "data-series-id": s.id },
          h("span", { class: `swatch ${s.className}`, "aria-hidden": "true" }),
          h("span", { class: "legend-label" }, s.label),
          " ",
          h("span", { class: "legend-value" }, `${value} (${s.points.length} points)`),
        );
      }),
    );
  }

  hover(event) {
    const scale = this.scale;
    if (!scale || !this.cursor) return;
    const rect = this.root.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * scale.width) / rect.width;
    if (x < scale.left || x > scale.right) {
      this.hideHover();
      return;
    }
    const t = scale.t(x);
    const rows = [];
    this.cursor.replaceChildren(svg("line", { x1: x, x2: x, y1: scale.top, y2: scale.bottom }));
    let start = Number.NaN;
    for (const s of this.visibleSeries()) {
      const point = pointAt(s.points, t);
      if (point) {
        this.cursor.append(svg("circle", { cx: x, cy: scale.y(point.v), r: 3.5, class: s.className }));
        if (!(point.t <= start)) start = point.t;
      }
      rows.push(
        h(
          "div",
          {},
          h("span", { class: `swatch ${s.className}`, "aria-hidden": "true" }),
          `${s.label}: `,
          h("strong", {}, point ? formatPrice(point.v) : DASH),
        ),
      );
    }
    this.cursor.setAttribute("visibility", "visible");
    const at = Number.isFinite(start) ? start : t;
    this.tooltip.replaceChildren(
      h("div", { class: "tip-time" }, `${formatUtcShort(at)} UTC`),
      h("div", { class: "tip-local" }, formatLocalShort(at, this.iso)),
      ...rows,
    );
    this.tooltip.hidden = false;
    const box = this.tooltip.offsetParent?.getBoundingClientRect() ?? rect;
    const left = event.clientX - box.left;
    const flip = left + this.tooltip.offsetWidth + 16 > box.width;
    this.tooltip.style.left = `${Math.max(0, flip ? left - this.tooltip.offsetWidth - 12 : left + 12)}px`;
    this.tooltip.style.top = `${Math.max(0, event.clientY - box.top - this.tooltip.offsetHeight - 8)}px`;
  }

  hideHover() {
    this.tooltip.hidden = true;
    this.cursor?.setAttribute("visibility", "hidden");
  }
}

function formatTick(value) {
  const digits = Math.abs(value) < 10 && !Number.isInteger(value) ? 1 : 0;
  return value.toFixed(digits);
}

/** A step line over the points, broken where an interval is missing. */
function stepPath(points, scale) {
  const parts = [];
  let previousEnd = Number.NaN;
  for (const p of points) {
    const end = p.t + p.minutes * 60_000;
    const x0 = scale.x(Math.max(p.t, scale.start)).toFixed(1);
    const x1 = scale.x(Math.min(end, scale.end)).toFixed(1);
    const y = scale.y(p.v).toFixed(1);
    parts.push(p.t > previousEnd + 1000 || !Number.isFinite(previousEnd) ? `M${x0},${y}` : `L${x0},${y}`);
    parts.push(`H${x1}`);
    previousEnd = end;
  }
  return parts.join("");
}
