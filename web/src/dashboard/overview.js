/**
 * The fleet overview's decisions: what a tile draws, how it reads its state
 * and age, which tiles a filter keeps, and how a tab's visibility sets rates.
 *
 * Rules:
 * - A host channel's tile draws CPU (total), memory used and network (every
 *   interface and direction summed); a pushed channel's draws its first three
 *   gauges by label, else its first histograms' p90. Values are recorded under
 *   `TILE_PREFIX + name`, next to the charted series, in the channel's window.
 * - A tile's state is its channel's upstream state (live, stale, removed);
 *   its age is the time since the channel's last data.
 * - The filter keeps channels whose name contains every word of the query
 *   (case-insensitive).
 * - Rates: the chosen channel gets every update; other channels (tiles) the
 *   tile rate; while the tab is hidden, every channel the slowest tier.
 */

import { lineLabel } from "./charts.js";
import { quantile } from "./histogram.js";

export const TILE_PREFIX = "tile:";
export const TILE_RATE_MS = 5000;

/**
 * @typedef {object} TileLine
 * @property {string} name short label under the sparkline
 * @property {string} unit
 */

/**
 * @param {import("../channel_state.js").ChannelState} state
 * @returns {Array<TileLine & {value: number}>}
 */
export function tileValues(state) {
  const series = [...state.series.values()];
  const value = (/** @type {number} */ id) => state.values.get(id);
  if (series.some((s) => s.name.startsWith("system_"))) {
    let cpu = null;
    let memory = null;
    let network = 0;
    let sawNetwork = false;
    for (const s of series) {
      const v = value(s.id);
      if (typeof v !== "number") continue;
      if (s.name === "system_cpu_percent" && !("cpu" in s.labels)) cpu = v;
      else if (s.name === "system_memory_bytes" && s.labels.state === "used") memory = v;
      else if (s.name === "system_network_io_bytes_per_second") {
        network += v;
        sawNetwork = true;
      }
    }
    const out = [];
    if (cpu !== null) out.push({ name: "cpu", unit: "%", value: cpu });
    if (memory !== null) out.push({ name: "memory", unit: "By", value: memory });
    if (sawNetwork) out.push({ name: "network", unit: "By/s", value: network });
    return out;
  }
  const collator = new Intl.Collator("en", { numeric: true });
  const labelled = series.map((s) => ({ s, label: lineLabel(s) }));
  labelled.sort((a, b) => collator.compare(a.label, b.label));
  const gauges = labelled.filter(({ s }) => s.kind === "gauge" && typeof value(s.id) === "number");
  if (gauges.length > 0) {
    return gauges.slice(0, 3).map(({ s, label }) => ({
      name: label,
      unit: s.unit,
      value: /** @type {number} */ (value(s.id)),
    }));
  }
  const out = [];
  for (const { s, label } of labelled) {
    const v = value(s.id);
    if (s.kind !== "histogram" || v === undefined || typeof v === "number") continue;
    const p90 = quantile(v, 0.9);
    if (p90 !== null) out.push({ name: `${label} p90`, unit: s.unit, value: p90 });
    if (out.length === 3) break;
  }
  return out;
}

/**
 * The tile values as window columns.
 * @param {import("../channel_state.js").ChannelState} state
 * @returns {Record<string, number>}
 */
export function tileColumns(state) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const line of tileValues(state)) out[TILE_PREFIX + line.name] = line.value;
  return out;
}

/**
 * "now", "12 s ago", "3 min ago", "2 h ago".
 * @param {number} ms
 * @returns {string}
 */
export function formatAge(ms) {
  if (!(ms >= 0)) return "no data yet";
  const s = Math.floor(ms / 1000);
  if (s < 2) return "now";
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/**
 * @param {string} channel
 * @param {string} query
 * @returns {boolean}
 */
export function matches(channel, query) {
  const name = channel.toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((word) => name.includes(word));
}

/**
 * The rate a channel asks for.
 * @param {string} channel
 * @param {string | null} chosen the channel view's channel
 * @param {boolean} hidden whether the tab is hidden
 * @param {number[]} tiers the bridge's rate tiers (Hello)
 * @returns {number} min interval in ms (0: every update)
 */
export function rateFor(channel, chosen, hidden, tiers) {
  const slowest = tiers.length ? tiers[tiers.length - 1] : 0;
  if (hidden) return slowest;
  if (channel === chosen) return 0;
  return tiers.length ? TILE_RATE_MS : 0;
}
