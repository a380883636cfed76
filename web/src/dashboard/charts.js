/**
 * Which series each dashboard chart shows, and under which label.
 *
 * A chart's `label(series)` returns the line's label for a series it shows,
 * or null. The collector's host series names are the contract for the host
 * charts (system_cpu_percent, system_memory_bytes, ...); any other gauge (a
 * pushing service's) goes to the "Gauges" chart. A chart draws at most
 * MAX_LINES lines, the first by label; the table still lists every series.
 * Only drawn lines are recorded in the chart window, which bounds it.
 * Histograms are drawn as three lines each (p50, p90, p99 estimated from
 * their buckets, histogram.js), keyed `<series key> p50` and so on.
 */

import { QUANTILES, quantile } from "./histogram.js";

export const MAX_LINES = 16;

/** @typedef {import("../channel_state.js").Series} Series */

/**
 * @typedef {object} ChartSpec
 * @property {string} id
 * @property {string} title
 * @property {string} unit
 * @property {(s: Series) => string | null} label
 * @property {boolean} [quantiles] each series is drawn as its p50, p90 and p99
 */

/** @type {ChartSpec[]} */
export const CHARTS = [
  {
    id: "cpu-total",
    title: "CPU (total)",
    unit: "%",
    label: (s) => (s.name === "system_cpu_percent" && !("cpu" in s.labels) ? "total" : null),
  },
  {
    id: "cpu-cores",
    title: "CPU per core",
    unit: "%",
    label: (s) => (s.name === "system_cpu_percent" && "cpu" in s.labels ? `cpu ${s.labels.cpu}` : null),
  },
  {
    id: "memory",
    title: "Memory",
    unit: "By",
    label: (s) =>
      s.name === "system_memory_bytes" && ["used", "available", "total"].includes(s.labels.state)
        ? s.labels.state
        : null,
  },
  {
    id: "network",
    title: "Network",
    unit: "By/s",
    label: (s) =>
      s.name === "system_network_io_bytes_per_second"
        ? `${s.labels.interface ?? "?"} ${s.labels.direction ?? ""}`.trim()
        : null,
  },
  {
    id: "disk",
    title: "Disk",
    unit: "By/s",
    label: (s) =>
      s.name === "system_disk_io_bytes_per_second"
        ? `${s.labels.device ?? "?"} ${s.labels.direction ?? ""}`.trim()
        : null,
  },
  {
    id: "gauges",
    title: "Gauges",
    unit: "",
    label: (s) => (s.kind === "gauge" && !s.name.startsWith("system_") ? lineLabel(s) : null),
  },
  {
    id: "histograms",
    title: "Histograms (p50, p90, p99)",
    unit: "",
    quantiles: true,
    label: (s) => (s.kind === "histogram" ? lineLabel(s) : null),
  },
];

/**
 * Labels every series of an OTLP resource carries (collector/otlp_instances.py):
 * the same on every line of a service, so a chart's line label leaves them out
 * (the table still shows them).
 */
const RESOURCE_LABELS = new Set([
  "otel_scope_name",
  "otel_scope_version",
  "service_namespace",
  "service_version",
  "deployment_environment",
  "deployment_environment_name",
]);

/**
 * A chart line's label: `name{labels} · instance`. Replicas of a service
 * are drawn as one line each, labelled by their instance, rather than summed:
 * summing is only right for additive gauges and the wire does not say which
 * are, and separate lines show a replica that lags or stops at a glance.
 * Lines sort by label, so one metric's instances sit together.
 * @param {Series} s
 * @returns {string}
 */
export function lineLabel(s) {
  const rest = Object.keys(s.labels)
    .filter((name) => name !== "instance" && !RESOURCE_LABELS.has(name))
    .sort()
    .map((name) => `${name}="${s.labels[name]}"`);
  const base = rest.length ? `${s.name}{${rest.join(",")}}` : s.name;
  return "instance" in s.labels ? `${base} · ${s.labels.instance}` : base;
}

/**
 * The charted series of a state: chart id -> [{key, label}] sorted by label
 * (numerically, so cpu 10 comes after cpu 9).
 * @param {Iterable<Series>} series
 * @returns {Map<string, Array<{key: string, label: string}>>}
 */
export function chartLines(series) {
  /** @type {Map<string, Array<{key: string, label: string}>>} */
  const lines = new Map(CHARTS.map((c) => [c.id, []]));
  for (const s of series) {
    for (const chart of CHARTS) {
      const label = chart.label(s);
      if (label === null) continue;
      if (chart.quantiles) {
        for (const [name] of QUANTILES) {
          lines.get(chart.id)?.push({ key: `${s.key} ${name}`, label: `${label} ${name}` });
        }
      } else {
        lines.get(chart.id)?.push({ key: s.key, label });
      }
    }
  }
  const collator = new Intl.Collator("en", { numeric: true });
  for (const [id, list] of lines) {
    list.sort((a, b) => collator.compare(a.label, b.label));
    lines.set(id, list.slice(0, MAX_LINES));
  }
  return lines;
}

/**
 * Current values of every drawn line, by series key.
 * @param {import("../channel_state.js").ChannelState} state
 * @returns {Record<string, number>}
 */
export function chartedValues(state) {
  const drawn = drawnKeys(state);
  /** @type {Record<string, number>} */
  const out = {};
  for (const [id, s] of state.series) {
    const v = state.values.get(id);
    if (typeof v === "number") {
      if (drawn.has(s.key)) out[s.key] = v;
    } else if (v !== undefined) {
      for (const [name, q] of QUANTILES) {
        const key = `${s.key} ${name}`;
        const value = drawn.has(key) ? quantile(v, q) : null;
        if (value !== null) out[key] = value;
      }
    }
  }
  return out;
}

/** @type {WeakMap<object, {signature: string, keys: Set<string>}>} */
const drawnCache = new WeakMap();

/**
 * The keys of every drawn line, recomputed only when the series change
 * (`chartedValues` runs once per applied message, on every channel).
 * @param {import("../channel_state.js").ChannelState} state
 * @returns {Set<string>}
 */
function drawnKeys(state) {
  let idSum = 0;
  for (const id of state.series.keys()) idSum += id;
  const signature = `${state.series.size}:${idSum}`;
  const cached = drawnCache.get(state.series);
  if (cached && cached.signature === signature) return cached.keys;
  const keys = new Set();
  for (const list of chartLines(state.series.values()).values()) {
    for (const line of list) keys.add(line.key);
  }
  drawnCache.set(state.series, { signature, keys });
  return keys;
}
