/**
 * The dashboard at `/` of the bridge: the channel list, live charts of the
 * chosen channel, a table of every series, and a status badge.
 *
 * DOM glue only: state lives in the client (ChannelState), the chart window
 * (MetricWindow) and sessionStorage (persist.js); decisions live in badge.js,
 * charts.js and window.js.
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { MetricsBridgeClient } from "../client.js";
import { badge } from "./badge.js";
import { CHARTS, chartLines, chartedValues } from "./charts.js";
import { formatValue } from "./format.js";
import { load, save } from "./persist.js";
import { takeToken } from "./token.js";
import { MetricWindow } from "./window.js";

/** Rows kept per chart: 10 minutes at the collector's default 1 s interval. */
const CAPACITY = 600;
const SAVE_EVERY_MS = 2000;
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#9333ea", "#ca8a04", "#e11d48", "#059669", "#475569"];

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return undefined;
  }
}

function bridgeUrl() {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) return override;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
}

function channelFromHash() {
  const value = new URLSearchParams(location.hash.slice(1)).get("channel");
  return value || null;
}

const store = storage();
// Before anything reads the fragment: `#token=` leaves the address bar at once (token.js).
const token = takeToken(location, history, store);
const saved = load(store, CAPACITY);
/** @type {string | null} */
let selected = channelFromHash() ?? saved?.channel ?? null;
const resumed = saved && saved.channel === selected ? saved : null;
let metricWindow = resumed ? resumed.window : new MetricWindow(CAPACITY);

const client = new MetricsBridgeClient(bridgeUrl(), {
  channels: selected ? [selected] : [],
  states: resumed ? [resumed.state] : [],
  // A function, so a token put in this tab's storage later is used on the next connect.
  ...(token ? { token: () => takeToken(location, history, store) ?? token } : {}),
});

/** @type {import("../session.js").ChannelInfo[]} */
let catalog = [];
/** @type {Map<string, import("../session.js").UpstreamState>} */
const upstream = new Map();

/** @param {string} channel */
function choose(channel) {
  if (channel === selected) return;
  if (selected) client.unsubscribe([selected]);
  selected = channel;
  metricWindow = new MetricWindow(CAPACITY);
  history.replaceState(null, "", `#channel=${encodeURIComponent(channel).replaceAll("%2F", "/")}`);
  client.subscribe([channel]);
  renderList();
  scheduleRender();
}

// ---- status badge -------------------------------------------------------

function renderBadge() {
  const state = selected ? upstream.get(selected) : undefined;
  const channel =
    state !== "removed" && selected && client.session.unknown.has(selected) ? "unknown" : state;
  const b = badge(client.connection, channel, Date.now());
  const el = $("status");
  if (el.dataset.state !== b.state) el.dataset.state = b.state;
  if (el.textContent !== b.text) el.textContent = b.text;
  el.title = b.title;
}

// ---- channel list -------------------------------------------------------

function renderList() {
  const list = $("channels");
  list.replaceChildren(
    ...catalog.map((info) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.channel = info.channel;
      if (info.channel === selected) button.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = info.channel;
      const meta = document.createElement("small");
      const state = upstream.get(info.channel) ?? info.state;
      meta.textContent = `${info.kind} · ${info.seriesCount} series · ${state}`;
      meta.dataset.state = state;
      button.append(name, meta);
      button.addEventListener("click", () => choose(info.channel));
      li.append(button);
      return li;
    }),
  );
  if (catalog.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "no channels yet";
    list.append(li);
  }
}

// ---- charts -------------------------------------------------------------

/** @type {Map<string, {plot: uPlot, signature: string, keys: string[]}>} */
const plots = new Map();

/** @param {HTMLElement} host */
function plotSize(host) {
  return { width: Math.max(240, host.clientWidth), height: 180 };
}

/**
 * @param {ArrayLike<number | null | undefined>} values
 * @returns {number | null}
 */
function latest(values) {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/**
 * @param {import("./charts.js").ChartSpec} spec
 * @param {Array<{key: string, label: string}>} lines
 * @param {HTMLElement} host
 */
function makePlot(spec, lines, host) {
  /** @type {uPlot.Options} */
  const opts = {
    ...plotSize(host),
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: spec.unit === "%" ? { range: [0, 100] } : { auto: true } },
    axes: [
      {},
      { size: 80, values: (_u, splits) => splits.map((v) => formatValue(v, spec.unit)) },
    ],
    series: [
      {
        value: (/** @type {uPlot} */ _u, /** @type {number | null} */ v) =>
          v === null ? "latest" : new Date(v * 1000).toLocaleTimeString(),
      },
      ...lines.map((line, i) => ({
        label: line.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        points: { show: false },
        spanGaps: false,
        // Off the chart the legend shows the latest value instead of a dash.
        value: (
          /** @type {uPlot} */ u,
          /** @type {number | null} */ v,
          /** @type {number} */ seriesIdx,
          /** @type {number | null} */ idx,
        ) => formatValue(idx === null ? latest(u.data[seriesIdx]) : v, spec.unit),
      })),
    ],
  };
  return new uPlot(opts, /** @type {uPlot.AlignedData} */ (metricWindow.series([])), host);
}

function renderCharts() {
  const state = selected ? client.channel(selected) : undefined;
  const lines = chartLines(state ? state.series.values() : []);
  for (const spec of CHARTS) {
    const panel = $(`chart-${spec.id}`);
    const specLines = lines.get(spec.id) ?? [];
    const host = /** @type {HTMLElement} */ (panel.querySelector(".plot"));
    panel.hidden = specLines.length === 0;
    const signature = specLines.map((l) => `${l.key}\u0000${l.label}`).join("\u0001");
    let entry = plots.get(spec.id);
    if (entry && (entry.signature !== signature || specLines.length === 0)) {
      entry.plot.destroy();
      plots.delete(spec.id);
      entry = undefined;
    }
    if (specLines.length === 0) continue;
    if (!entry) {
      entry = { plot: makePlot(spec, specLines, host), signature, keys: specLines.map((l) => l.key) };
      plots.set(spec.id, entry);
    }
    entry.plot.setData(/** @type {uPlot.AlignedData} */ (metricWindow.series(entry.keys)));
  }
  $("charts").dataset.points = String(metricWindow.length);
}

// ---- series table -------------------------------------------------------

/** @param {import("../channel_state.js").Value | undefined} value */
function valueText(value, unit = "") {
  if (value === undefined) return "–";
  if (typeof value === "number") return formatValue(value, unit);
  return `count ${value.count.toLocaleString("en")}, sum ${formatValue(value.sum, unit)}`;
}

function renderTable() {
  const state = selected ? client.channel(selected) : undefined;
  const body = $("series").querySelector("tbody");
  if (!body) return;
  const rows = state ? state.rows() : [];
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.key = row.key;
      const name = document.createElement("td");
      name.className = "key";
      name.textContent = row.key;
      if (row.description) name.title = row.description;
      const value = document.createElement("td");
      value.className = "value";
      value.textContent = valueText(row.value, row.unit);
      if (typeof row.value === "number") value.dataset.raw = String(row.value);
      const unit = document.createElement("td");
      unit.textContent = row.unit;
      const kind = document.createElement("td");
      kind.textContent = row.kind;
      tr.append(name, value, unit, kind);
      return tr;
    }),
  );
  $("channel-title").textContent = selected ?? "No channel chosen";
  $("channel-meta").textContent = state?.epoch
    ? `seq ${state.seq} · epoch ${state.epoch} · ${rows.length} series · at ${new Date(
        state.timeUnixMs,
      ).toLocaleTimeString()}`
    : selected
      ? "waiting for a snapshot…"
      : "";
}

// ---- scheduling ---------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCharts();
    renderTable();
  });
}

let lastSave = 0;
function saveNow() {
  if (selected) save(store, selected, client.channel(selected), metricWindow);
  lastSave = Date.now();
}

client.addEventListener("catalog", (event) => {
  catalog = /** @type {CustomEvent} */ (event).detail.channels;
  if (!selected && catalog.length > 0) {
    choose((catalog.find((c) => c.kind === "host") ?? catalog[0]).channel);
  }
  renderList();
});
client.addEventListener("data", (event) => {
  const { channel, state } = /** @type {CustomEvent} */ (event).detail;
  if (channel !== selected) return;
  $("notice").textContent = "";
  metricWindow.record(state.timeUnixMs, chartedValues(state));
  scheduleRender();
  if (Date.now() - lastSave >= SAVE_EVERY_MS) saveNow();
});
client.addEventListener("upstream", (event) => {
  const { channel, state } = /** @type {CustomEvent} */ (event).detail;
  upstream.set(channel, state);
  renderBadge();
  renderList();
});
client.addEventListener("connection", renderBadge);
/** @type {Record<string, unknown> | null} the last Subscribed of the chosen channel */
let lastSubscribed = null;
client.addEventListener("subscribed", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  if (detail.channel === selected) lastSubscribed = detail;
});
client.addEventListener("error", (event) => {
  const { channel, message } = /** @type {CustomEvent} */ (event).detail;
  $("notice").textContent = channel ? `${channel}: ${message}` : message;
  renderBadge();
});

window.addEventListener("pagehide", saveNow);
window.addEventListener("hashchange", () => {
  const channel = channelFromHash();
  if (channel) choose(channel);
});
new ResizeObserver(() => {
  for (const { plot } of plots.values()) {
    const host = plot.root.parentElement;
    if (host) plot.setSize(plotSize(host));
  }
}).observe($("charts"));
setInterval(renderBadge, 250);

renderBadge();
renderList();
scheduleRender();
client.connect();

/** For tests and the console: the live objects behind the page. */
Object.assign(globalThis, {
  metricsBridgeDashboard: {
    client,
    window: () => metricWindow,
    selected: () => selected,
    lastSubscribed: () => lastSubscribed,
  },
});
