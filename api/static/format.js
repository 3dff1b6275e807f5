// Formatting of the API's values for display: UTC and market-local times, prices, shares and
// durations. Everything the API sends is UTC; local time is derived here, only for display.

/** Market-local time zones (the same as schemas/timeutil.py): each ISO's operating day. */
export const ISO_ZONES = Object.freeze({
  PJM: "America/New_York",
  CAISO: "America/Los_Angeles",
  ERCOT: "America/Chicago",
});

/** Display order of the ISOs; any other ISO the API names comes after, alphabetically. */
export const ISO_ORDER = Object.freeze(["PJM", "CAISO", "ERCOT"]);

/** Display order of the markets, day-ahead first. */
export const MARKET_ORDER = Object.freeze(["DA_HOURLY", "RT_5MIN", "RT_15MIN", "RT_HOURLY"]);

export const RT_MARKETS = Object.freeze(["RT_5MIN", "RT_15MIN", "RT_HOURLY"]);

const MARKET_LABELS = {
  DA_HOURLY: "DA hourly",
  RT_5MIN: "RT 5-min",
  RT_15MIN: "RT 15-min",
  RT_HOURLY: "RT hourly",
};

export const DASH = "\u2014";
const HOUR_MS = 3_600_000;

export function marketLabel(market) {
  return MARKET_LABELS[market] ?? String(market ?? DASH);
}

export function compareIso(a, b) {
  const ia = ISO_ORDER.indexOf(a);
  const ib = ISO_ORDER.indexOf(b);
  if (ia !== ib) return (ia < 0 ? ISO_ORDER.length : ia) - (ib < 0 ? ISO_ORDER.length : ib);
  return String(a).localeCompare(String(b));
}

export function compareMarket(a, b) {
  const ia = MARKET_ORDER.indexOf(a);
  const ib = MARKET_ORDER.indexOf(b);
  if (ia !== ib) return (ia < 0 ? MARKET_ORDER.length : ia) - (ib < 0 ? MARKET_ORDER.length : ib);
  return String(a).localeCompare(String(b));
}

/** Location ids are numbers in PJM and names elsewhere: compare digits as numbers. */
export function compareLocationId(a, b) {
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Milliseconds since the epoch of an ISO-8601 time from the API, or NaN.
 * Python writes microseconds (six fraction digits), which not every browser parses, so the
 * fraction is cut to milliseconds; a time without an offset is UTC, as everywhere in OptiBid.
 * @param {unknown} text
 * @returns {number}
 */
export function parseTime(text) {
  if (typeof text !== "string") return Number.NaN;
  const match = ISO_TIME.exec(text.trim());
  if (!match) return Number.NaN;
  const [, day, clock = "00:00:00", fraction = "", offset = "Z"] = match;
  const zone = /^[+-]\d{4}$/.test(offset) ? `${offset.slice(0, 3)}:${offset.slice(3)}` : offset;
  return Date.parse(`${day}T${clock}${fraction.slice(0, 4)}${zone}`);
}

/** `2025-05-01T04:00:00Z`: the form the API's time parameters take. */
export function isoParam(ms) {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/** `05-01 04:00` in UTC: compact enough for a phone, the full time goes in a title. */
export function formatUtcShort(ms) {
  if (!Number.isFinite(ms)) return DASH;
  const text = new Date(ms).toISOString();
  return `${text.slice(5, 10)} ${text.slice(11, 16)}`;
}

/** `2025-05-01 04:00:00 UTC`. */
export function formatUtcFull(ms) {
  if (!Number.isFinite(ms)) return DASH;
  const text = new Date(ms).toISOString();
  return `${text.slice(0, 10)} ${text.slice(11, 19)} UTC`;
}

/** `04:00:12 UTC`: the clock of the status line. */
export function formatUtcClock(ms) {
  if (!Number.isFinite(ms)) return DASH;
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

const localFormats = new Map();

function localFormat(zone) {
  let format = localFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    });
    localFormats.set(zone, format);
  }
  return format;
}

function localParts(ms, iso) {
  const zone = ISO_ZONES[iso];
  if (!zone || !Number.isFinite(ms)) return null;
  const parts = {};
  for (const part of localFormat(zone).formatToParts(ms)) parts[part.type] = part.value;
  return parts;
}

/** `05-01 00:00 EDT` in the ISO's own zone (prevailing time, as the ISOs publish). */
export function formatLocalShort(ms, iso) {
  const p = localParts(ms, iso);
  return p ? `${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}` : "";
}

/** The ISO's operating day containing `ms`, `2025-05-01`. */
export function formatLocalDay(ms, iso) {
  const p = localParts(ms, iso);
  if (p) return `${p.year}-${p.month}-${p.day}`;
  return Number.isFinite(ms) ? new Date(ms).toISOString().slice(0, 10) : DASH;
}

export function toNumber(value) {
  if (value === null || value === undefined || value === "") return Number.NaN;
  return typeof value === "number" ? value : Number(value);
}

/** Price with two decimals; never `-0.00`. */
export function formatPrice(value) {
  const n = toNumber(value);
  if (!Number.isFinite(n)) return DASH;
  const text = n.toFixed(2);
  return text === "-0.00" ? "0.00" : text;
}

/** A share (0..1) as a percentage. */
export function formatShare(value, digits = 1) {
  const n = toNumber(value);
  return Number.isFinite(n) ? `${(n * 100).toFixed(digits)}\u202f%` : DASH;
}

/** A percentile rank (0..1) on the 0-100 scale traders read. */
export function formatPercentile(value) {
  const n = toNumber(value);
  return Number.isFinite(n) ? String(Math.round(n * 100)) : DASH;
}

export function formatNumber(value) {
  const n = toNumber(value);
  if (!Number.isFinite(n)) return DASH;
  return n.toLocaleString("en-US", { maximumFractionDigits: Number.isInteger(n) ? 0 : 3 });
}

/**
 * A duration for people: `42 s`, `7 min 5 s`, `3 h 12 min`, `2 d 4 h`.
 * @param {unknown} seconds
 * @returns {string}
 */
export function humaniseSeconds(seconds) {
  const n = toNumber(seconds);
  if (!Number.isFinite(n)) return DASH;
  const sign = n < 0 ? "-" : "";
  const s = Math.abs(n);
  if (s < 1) return `${sign}${s.toFixed(s < 0.1 ? 2 : 1)} s`;
  if (s < 60) return `${sign}${Math.round(s)} s`;
  const total = Math.round(s);
  const minutes = Math.floor(total / 60);
  if (minutes < 10) return `${sign}${minutes} min ${total % 60} s`;
  if (minutes < 60) return `${sign}${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${sign}${hours} h ${minutes % 60} min`;
  return `${sign}${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** The whole hour at or after `ms`. */
export function ceilHour(ms) {
  return Math.ceil(ms / HOUR_MS) * HOUR_MS;
}

export { HOUR_MS };
