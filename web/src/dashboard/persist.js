/**
 * Keeps the chosen channel's state and chart window in sessionStorage, so a
 * reload resumes from the last (epoch, seq) instead of starting over: the
 * bridge replays what it still holds and the chart keeps its recent window.
 *
 * One entry per tab, bounded by the window's capacity. A corrupt or foreign
 * entry is discarded, never trusted.
 */

import { ChannelState } from "../channel_state.js";
import { MetricWindow } from "./window.js";

const KEY = "metrics-bridge.dashboard.v1";

/**
 * @typedef {object} Saved
 * @property {string} channel
 * @property {ChannelState} state
 * @property {MetricWindow} window
 */

/**
 * @param {Storage | undefined} storage
 * @param {number} capacity
 * @returns {Saved | null}
 */
export function load(storage, capacity) {
  try {
    const raw = storage?.getItem(KEY);
    if (!raw) return null;
    const json = JSON.parse(raw);
    if (typeof json?.channel !== "string" || !json.state || !json.window) return null;
    const state = ChannelState.fromJSON(json.state);
    if (state.channel !== json.channel) return null;
    return { channel: json.channel, state, window: MetricWindow.fromJSON(json.window, capacity) };
  } catch {
    storage?.removeItem(KEY);
    return null;
  }
}

/**
 * @param {Storage | undefined} storage
 * @param {string} channel
 * @param {ChannelState | undefined} state
 * @param {MetricWindow} window
 */
export function save(storage, channel, state, window) {
  if (!storage || !state || state.epoch === null) return;
  try {
    storage.setItem(KEY, JSON.stringify({ channel, state: state.toJSON(), window: window.toJSON() }));
  } catch {
    // Over quota: the next reload starts from a snapshot, nothing else breaks.
    storage.removeItem(KEY);
  }
}
