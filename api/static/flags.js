// The signed-in user's feature flags (`/v1/me/flags`: every flag, on or off for this user's
// organisation and role), read once after signing in and forgotten on signing out. Pages ask
// `isOn(name)`; a flag not known (not read yet, or the read failed) is off, so nothing may
// depend on a flag for what it needs to work.

import { getJson } from "./api.js";

/** @type {Map<string, boolean>} */
let flags = new Map();
let loaded = false;
/** Bumped by every load and reset: a late answer of an older one is dropped. */
let generation = 0;
/** @type {Set<() => void>} */
const listeners = new Set();

function notify() {
  for (const listener of [...listeners]) {
    try {
      listener();
    } catch (error) {
      console.warn("flags listener failed", error);
    }
  }
}

/**
 * Read the user's flags (after signing in). Never throws: without an answer every flag is off.
 * @returns {Promise<boolean>} whether they were read
 */
export async function loadFlags() {
  generation += 1;
  const mine = generation;
  try {
    const body = await getJson("v1/me/flags");
    if (mine !== generation) return false;
    const read = body && typeof body.flags === "object" && body.flags ? body.flags : {};
    flags = new Map(Object.entries(read).map(([name, on]) => [String(name), on === true]));
    loaded = true;
    notify();
    return true;
  } catch {
    return false;
  }
}

/** Whether the flag `name` is on for the signed-in user (off when unknown). */
export function isOn(name) {
  return flags.get(String(name)) === true;
}

/** The names of the flags that are on, sorted. */
export function flagsOn() {
  return [...flags].filter(([, on]) => on).map(([name]) => name).sort();
}

/** Every flag known and whether it is on, sorted by name. */
export function allFlags() {
  return [...flags].sort(([a], [b]) => a.localeCompare(b));
}

/** Whether the flags have been read since signing in. */
export function flagsLoaded() {
  return loaded;
}

/**
 * Be told when the flags have been read (or forgotten).
 * @param {() => void} listener
 * @returns {() => void} stops telling
 */
export function onFlags(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Forget the flags (signed out). */
export function resetFlags() {
  generation += 1;
  flags = new Map();
  loaded = false;
  notify();
}
