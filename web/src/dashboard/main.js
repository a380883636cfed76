/**
 * The dashboard at `/` of the bridge: a fleet overview (a tile per channel
 * with its state, the age of its data and sparklines) as the landing view,
 * and a channel view (`#channel=NAME`: live charts, histogram quantiles and
 * buckets, a table of every series), with a status badge.
 *
 * DOM glue only: state lives in the client (ChannelState), one chart window
 * per channel (MetricWindow) and sessionStorage (persist.js); decisions live
 * in badge.js, charts.js, histogram.js, overview.js and window.js.
 *
 * Every channel is subscribed with history, one or two at a time (a history
 * must fit the bridge's outbound buffer for this connection), so tiles and
 * charts are full on first paint; tiles at the tile rate, the chosen channel
 * at full rate, everything at the slowest tier while the tab is hidden (rate
 * changes resume: no snapshot). Rendering happens at most once per animation
 * frame, only for what changed and is on screen; table cells change in place.
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { MetricsBridgeClient } from "../client.js";
import { badge } from "./badge.js";
import { CHARTS, chartLines, chartedValues } from "./charts.js";
import { formatValue } from "./format.js";
import { buckets } from "./histogram.js";
import { TILE_PREFIX, formatAge, matches, rateFor, tileColumns, tileValues } from "./overview.js";
import { load, save } from "./persist.js";
import { drawSparkline } from "./sparkline.js";
import { SeriesTable } from "./table.js";
import { takeToken } from "./token.js";
import { MetricWindow } from "./window.js";

/** Rows kept per channel: 15 minutes at the collector's default 1 s interval, and then some. */
const CAPACITY = 1800;
const SAVE_EVERY_MS = 2000;
const HISTORY_IN_FLIGHT = 2;
const HISTORY_PATIENCE_MS = 3000;
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
/** @type {string | null} the channel view's channel; null: the overview */
let selected = channelFromHash();
const resumed = saved && saved.channel === selected ? saved : null;
/** @type {Map<string, MetricWindow>} */
const windows = new Map();
if (resumed && selected) windows.set(selected, resumed.window);
let windowMinutes = 5;
let hidden = document.visibilityState === "hidden";
/** @type {number[]} the bridge's rate tiers, from Hello */
let tiers = [];

const client = new MetricsBridgeClient(bridgeUrl(), {
  channels: selected ? [selected] : [],
  states: resumed ? [resumed.state] : [],
  history: true,
  // A function, so a token put in this tab's storage later is used on the next connect.
  ...(token ? { token: () => takeToken(location, history, store) ?? token } : {}),
});

/** @type {import("../session.js").ChannelInfo[]} */
let catalog = [];
/** @type {Map<string, import("../session.js").UpstreamState>} */
const upstream = new Map();
/** @type {Map<string, string>} */
const upstreamDetail = new Map();
/** Data events and snapshots per channel, for tests and the console. */
const received = new Map();
const snapshots = new Map();

/** @param {string} channel */
function windowOf(channel) {
  let w = windows.get(channel);
  if (!w) {
    w = new MetricWindow(CAPACITY);
    windows.set(channel, w);
  }
  return w;
}

// ---- subscriptions: history a channel or two at a time, rates by view -----

/** @type {string[]} */
const historyQueue = [];
/** @type {Map<string, {since: number, target: number | null}>} */
const inFlight = new Map();

/** @param {string} channel */
function rate(channel) {
  return rateFor(channel, selected, hidden, tiers);
}

function pumpHistory() {
  const now = Date.now();
  for (const [channel, f] of inFlight) {
    if (now - f.since > HISTORY_PATIENCE_MS) inFlight.delete(channel);
  }
  while (inFlight.size < HISTORY_IN_FLIGHT && historyQueue.length > 0) {
    const channel = /** @type {string} */ (historyQueue.shift());
    if (client.session.wanted.has(channel)) continue;
    inFlight.set(channel, { since: now, target: null });
    client.subscribe([channel], { history: true, minIntervalMs: rate(channel) });
  }
}

/** @param {string} channel */
function historyDone(channel) {
  if (inFlight.delete(channel)) pumpHistory();
}

/** Every wanted channel at the rate its view and the tab's visibility give it. */
function applyRates() {
  if (client.connection.state !== "live") return;
  /** @type {Map<number, string[]>} */
  const byRate = new Map();
  for (const channel of client.session.wanted) {
    const ms = rate(channel);
    if (client.session.optionsOf(channel).minIntervalMs === ms) continue;
    byRate.set(ms, [...(byRate.get(ms) ?? []), channel]);
  }
  for (const [ms, channels] of byRate) client.setRate(channels, ms);
}

// ---- views ----------------------------------------------------------------

/** @param {string | null} channel */
function show(channel) {
  if (channel === selected && channel !== null) return;
  if (selected) saveNow();
  selected = channel;
  $("overview").hidden = channel !== null;
  $("channel-view").hidden = channel === null;
  table.clear();
  for (const entry of plots.values()) entry.plot.destroy();
  plots.clear();
  if (channel !== null) {
    if (!client.session.wanted.has(channel)) {
      client.subscribe([channel], { history: true, minIntervalMs: rate(channel) });
    }
  }
  applyRates();
  renderList();
  dirty.add(channel ?? "");
  overviewDirty = true;
  scheduleRender();
}

/** @param {string} channel */
function choose(channel) {
  history.pushState(null, "", `#channel=${encodeURIComponent(channel).replaceAll("%2F", "/")}`);
  show(channel);
}

function toOverview() {
  history.pushState(null, "", location.pathname + location.search);
  show(null);
  const tile = selectedTile ? tiles.get(selectedTile)?.el : undefined;
  tile?.focus();
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

/**
 * The series count people see: the channel's own state when this page holds
 * one, else the catalog's (approximate, as of when the catalog was built).
 * @param {import("../session.js").ChannelInfo} info
 */
function seriesCount(info) {
  const state = client.channel(info.channel);
  return state?.epoch ? `${state.series.size} series` : `~${info.seriesCount} series`;
}

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
      meta.textContent = `${info.kind} · ${seriesCount(info)} · ${state}`;
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

// ---- overview tiles -------------------------------------------------------

/**
 * @typedef {object} Tile
 * @property {HTMLButtonElement} el
 * @property {HTMLElement} state
 * @property {HTMLElement} age
 * @property {HTMLElement} count
 * @property {HTMLElement} lines
 * @property {string} signature names of its lines
 * @property {Array<{canvas: HTMLCanvasElement, value: HTMLElement, key: string, unit: string}>} sparks
 */

/** @type {Map<string, Tile>} */
const tiles = new Map();
/** @type {Set<Element>} tiles and charts on screen */
const onScreen = new Set();
let selectedTile = /** @type {string | null} */ (null);
const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting) {
      onScreen.add(entry.target);
      const channel = /** @type {HTMLElement} */ (entry.target).dataset.channel;
      if (channel) dirty.add(channel);
      const chart = /** @type {HTMLElement} */ (entry.target).dataset.chart;
      if (chart && selected) dirty.add(selected);
    } else onScreen.delete(entry.target);
  }
  scheduleRender();
});

/** @param {string} channel */
function makeTile(channel) {
  const el = document.createElement("button");
  el.type = "button";
  el.className = "tile";
  el.dataset.channel = channel;
  el.setAttribute("role", "listitem");
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = channel;
  const meta = document.createElement("div");
  meta.className = "meta";
  const state = document.createElement("span");
  state.className = "state";
  const age = document.createElement("span");
  age.className = "age";
  const count = document.createElement("span");
  count.className = "count";
  meta.append(state, age, count);
  const lines = document.createElement("div");
  lines.className = "lines";
  el.append(name, meta, lines);
  el.addEventListener("click", () => {
    selectedTile = channel;
    choose(channel);
  });
  /** @type {Tile} */
  const tile = { el, state, age, count, lines, signature: "", sparks: [] };
  tiles.set(channel, tile);
  observer.observe(el);
  return tile;
}

function syncTiles() {
  const names = new Set(catalog.map((c) => c.channel));
  for (const [channel, tile] of tiles) {
    // A removed channel keeps its tile (greyed) while the page holds its state.
    if (!names.has(channel) && !client.channel(channel)?.epoch) {
      observer.unobserve(tile.el);
      onScreen.delete(tile.el);
      tile.el.remove();
      tiles.delete(channel);
    }
  }
  const host = $("tiles");
  const order = [...new Set([...catalog.map((c) => c.channel), ...tiles.keys()])].sort();
  const els = order.map((channel) => (tiles.get(channel) ?? makeTile(channel)).el);
  if (els.some((el, i) => host.children[i] !== el) || host.children.length !== els.length) {
    host.replaceChildren(...els);
  }
  applyFilter();
}

function applyFilter() {
  const query = /** @type {HTMLInputElement} */ ($("filter")).value;
  let shown = 0;
  for (const [channel, tile] of tiles) {
    const keep = matches(channel, query);
    if (tile.el.hidden === keep) tile.el.hidden = !keep;
    if (keep) shown += 1;
  }
  $("overview-count").textContent = `${shown} of ${tiles.size} channels`;
}

/** @param {string} channel */
function tileState(channel) {
  const state = upstream.get(channel) ?? catalog.find((c) => c.channel === channel)?.state;
  return state === "stale" || state === "removed" ? state : "live";
}

/**
 * @param {string} channel
 * @param {Tile} tile
 * @param {boolean} data whether its window changed
 */
function renderTile(channel, tile, data) {
  const state = client.channel(channel);
  const s = tileState(channel);
  if (tile.el.dataset.state !== s) tile.el.dataset.state = s;
  if (tile.state.textContent !== s) tile.state.textContent = s;
  const age = state?.epoch ? formatAge(Date.now() - state.timeUnixMs) : "no data yet";
  if (tile.age.textContent !== age) tile.age.textContent = age;
  if (!data || !state?.epoch) return;
  const count = `${state.series.size} series`;
  if (tile.count.textContent !== count) tile.count.textContent = count;
  const lines = tileValues(state);
  const signature = lines.map((l) => l.name).join("\u0000");
  if (signature !== tile.signature) {
    tile.signature = signature;
    /** @type {HTMLElement[]} */
    const blocks = [];
    tile.sparks = lines.map((line) => {
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = line.name;
      const value = document.createElement("span");
      value.className = "value";
      const text = document.createElement("div");
      text.className = "line";
      text.append(label, value);
      const canvas = document.createElement("canvas");
      canvas.className = "spark";
      const block = document.createElement("div");
      block.append(text, canvas);
      blocks.push(block);
      return { canvas, value, key: TILE_PREFIX + line.name, unit: line.unit };
    });
    tile.lines.replaceChildren(...blocks);
  }
  const w = windowOf(channel);
  tile.sparks.forEach((spark, i) => {
    const column = w.columns.get(spark.key) ?? [];
    drawSparkline(spark.canvas, w.times, column, sparkSpan(w), PALETTE[i]);
    const text = formatValue(lines[i]?.value ?? null, spark.unit);
    if (spark.value.textContent !== text) spark.value.textContent = text;
  });
  spark(tile);
}

/**
 * What a sparkline spans: the data held, from one to fifteen minutes.
 * @param {MetricWindow} w
 */
function sparkSpan(w) {
  const held = w.length ? /** @type {number} */ (w.lastTime) - w.times[0] : 0;
  return Math.min(15 * 60_000, Math.max(60_000, held));
}

/** For tests: points drawn by each sparkline of a tile. @param {Tile} tile */
function spark(tile) {
  const channel = tile.el.dataset.channel ?? "";
  const w = windowOf(channel);
  const points = Math.min(...tile.sparks.map((s) => (w.columns.get(s.key) ?? []).filter((v) => v !== null).length));
  tile.el.dataset.points = String(Number.isFinite(points) ? points : 0);
}

/** Tiles are moved between with the arrow keys; Enter opens one. @param {KeyboardEvent} event */
function tileKeys(event) {
  const target = /** @type {HTMLElement} */ (event.target);
  if (!target.classList?.contains("tile")) return;
  const visible = [...tiles.values()].map((t) => t.el).filter((el) => !el.hidden);
  const i = visible.indexOf(/** @type {HTMLButtonElement} */ (target));
  if (i < 0) return;
  const top = visible[0].offsetTop;
  const perRow = Math.max(1, visible.filter((el) => el.offsetTop === top).length);
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  visible[Math.min(visible.length - 1, Math.max(0, i + step))].focus();
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
 * @param {string} unit
 */
function makePlot(spec, lines, host, unit) {
  /** @type {uPlot.Options} */
  const opts = {
    ...plotSize(host),
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: unit === "%" ? { range: [0, 100] } : { auto: true } },
    axes: [{}, { size: 80, values: (_u, splits) => splits.map((v) => formatValue(v, unit)) }],
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
        ) => formatValue(idx === null ? latest(u.data[seriesIdx]) : v, unit),
      })),
    ],
  };
  return new uPlot(opts, [[]], host);
}

/**
 * The chosen window's rows of a channel's window: the first row shown and
 * the x values (seconds), computed once per frame for every chart.
 * @param {MetricWindow} w
 * @returns {{first: number, x: number[]}}
 */
function windowRows(w) {
  const last = w.lastTime;
  const start = last === null ? 0 : last - windowMinutes * 60_000;
  let first = 0;
  while (first < w.times.length && w.times[first] < start) first++;
  return { first, x: w.times.slice(first).map((t) => t / 1000) };
}

function renderCharts() {
  const state = selected ? client.channel(selected) : undefined;
  const w = selected ? windowOf(selected) : new MetricWindow(1);
  const lines = chartLines(state ? state.series.values() : []);
  const rows = windowRows(w);
  for (const spec of CHARTS) {
    const panel = $(`chart-${spec.id}`);
    const specLines = lines.get(spec.id) ?? [];
    const host = /** @type {HTMLElement} */ (panel.querySelector(".plot"));
    if (panel.hidden !== (specLines.length === 0)) panel.hidden = specLines.length === 0;
    const signature = specLines.map((l) => `${l.key}\u0000${l.label}`).join("\u0001");
    let entry = plots.get(spec.id);
    if (entry && (entry.signature !== signature || specLines.length === 0)) {
      entry.plot.destroy();
      plots.delete(spec.id);
      entry = undefined;
    }
    if (specLines.length === 0) continue;
    if (!entry) {
      const unit = spec.unit || unitOf(state, specLines[0].key);
      entry = { plot: makePlot(spec, specLines, host, unit), signature, keys: specLines.map((l) => l.key) };
      plots.set(spec.id, entry);
    } else if (!onScreen.has(panel)) continue;
    const data = [rows.x, ...entry.keys.map((k) => (w.columns.get(k) ?? []).slice(rows.first))];
    entry.plot.setData(/** @type {uPlot.AlignedData} */ (data));
  }
  renderBuckets(state);
  const charts = $("charts");
  charts.dataset.points = String(w.length);
  const stale = selected !== null && tileState(selected) !== "live";
  if (charts.dataset.stale !== String(stale)) charts.dataset.stale = String(stale);
}

/**
 * @param {import("../channel_state.js").ChannelState | undefined} state
 * @param {string} key a line key (a histogram's ends with its quantile)
 */
function unitOf(state, key) {
  for (const s of state?.series.values() ?? []) if (key.startsWith(s.key)) return s.unit;
  return "";
}

/** The latest buckets of up to four histograms, as bars. @param {import("../channel_state.js").ChannelState | undefined} state */
function renderBuckets(state) {
  const panel = $("chart-buckets");
  const hists = [];
  for (const s of state?.series.values() ?? []) {
    const v = state?.values.get(s.id);
    if (s.kind === "histogram" && v !== undefined && typeof v !== "number") hists.push({ s, v });
  }
  hists.sort((a, b) => (a.s.key < b.s.key ? -1 : 1));
  panel.hidden = hists.length === 0;
  if (hists.length === 0) return;
  const host = /** @type {HTMLElement} */ (panel.querySelector(".buckets"));
  host.replaceChildren(
    ...hists.slice(0, 4).map(({ s, v }) => {
      const div = document.createElement("div");
      div.className = "hist";
      div.dataset.key = s.key;
      const title = document.createElement("h4");
      title.textContent = `${s.key} · ${v.count.toLocaleString("en")} values`;
      const bars = document.createElement("div");
      bars.className = "bars";
      const axis = document.createElement("div");
      axis.className = "axis";
      const list = buckets(v);
      const top = Math.max(1, ...list.map((b) => b.count));
      for (const b of list) {
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.style.height = `${(100 * b.count) / top}%`;
        bar.title = `≤ ${b.le}: ${b.count}`;
        bars.append(bar);
        const le = document.createElement("span");
        le.textContent = b.le;
        axis.append(le);
      }
      div.append(title, bars, axis);
      return div;
    }),
  );
}

// ---- series table and meta --------------------------------------------------

const table = new SeriesTable(/** @type {HTMLTableSectionElement} */ ($("series").querySelector("tbody")));

function renderChannel() {
  const state = selected ? client.channel(selected) : undefined;
  table.update(state ? state.rows() : []);
  const title = selected ?? "No channel chosen";
  if ($("channel-title").textContent !== title) $("channel-title").textContent = title;
  renderMeta();
  renderCharts();
}

function renderMeta() {
  const state = selected ? client.channel(selected) : undefined;
  const resynced = Object.entries(state?.resyncs ?? {})
    .map(([reason, n]) => `${reason} ×${n}`)
    .join(", ");
  const meta = state?.epoch
    ? `seq ${state.seq} · epoch ${state.epoch} · ${state.series.size} series · at ${new Date(
        state.timeUnixMs,
      ).toLocaleTimeString()}${resynced ? ` · resynced: ${resynced}` : ""}`
    : selected
      ? "waiting for a snapshot…"
      : "";
  if ($("channel-meta").textContent !== meta) $("channel-meta").textContent = meta;
  $("channel-meta").title = resynced
    ? "resynced: the bridge sent the latest state in place of updates that were too old (stale) or did not fit (overflow)"
    : "";
  const stale = $("channel-stale");
  const s = selected ? tileState(selected) : "live";
  stale.hidden = s === "live";
  if (s !== "live" && selected) {
    const age = state?.epoch ? formatAge(Date.now() - state.timeUnixMs) : "no data";
    const text = `${s}: ${upstreamDetail.get(selected) || "upstream unavailable"} · last data ${age}`;
    if (stale.textContent !== text) stale.textContent = text;
  }
}

// ---- scheduling ---------------------------------------------------------

/** @type {Set<string>} channels whose window changed since the last frame */
const dirty = new Set();
let overviewDirty = true;
let renderQueued = false;
let renders = 0;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

/**
 * The channel view redraws at most every CHANNEL_REDRAW_MS: charts spanning
 * minutes gain nothing from 10 redraws a second, and a redraw of every chart
 * and the table is the page's main cost.
 */
const CHANNEL_REDRAW_MS = 500;
let lastChannelRender = 0;
/** @type {ReturnType<typeof setTimeout> | null} */
let redrawTimer = null;

function render() {
  renderQueued = false;
  const now = performance.now();
  if (selected !== null && now - lastChannelRender < CHANNEL_REDRAW_MS) {
    redrawTimer ??= setTimeout(() => {
      redrawTimer = null;
      scheduleRender();
    }, CHANNEL_REDRAW_MS - (now - lastChannelRender));
    return;
  }
  renders += 1;
  if (selected === null) {
    if (overviewDirty) {
      syncTiles();
      overviewDirty = false;
    }
    for (const [channel, tile] of tiles) {
      if (!onScreen.has(tile.el)) continue;
      renderTile(channel, tile, dirty.has(channel));
    }
  } else if (dirty.has(selected) || dirty.has("")) {
    lastChannelRender = now;
    renderChannel();
  }
  dirty.clear();
}

let lastSave = 0;
function saveNow() {
  if (selected) save(store, selected, client.channel(selected), windowOf(selected));
  lastSave = Date.now();
}

client.addEventListener("hello", (event) => {
  tiers = /** @type {CustomEvent} */ (event).detail.limits.rateTiersMs;
  applyRates();
});
client.addEventListener("catalog", (event) => {
  catalog = /** @type {CustomEvent} */ (event).detail.channels;
  for (const info of catalog) {
    const channel = info.channel;
    if (!client.session.wanted.has(channel) && !inFlight.has(channel) && !historyQueue.includes(channel)) {
      historyQueue.push(channel);
    }
  }
  pumpHistory();
  overviewDirty = true;
  scheduleRender();
  renderList();
});
client.addEventListener("data", (event) => {
  const { channel, state, kind } = /** @type {CustomEvent} */ (event).detail;
  received.set(channel, (received.get(channel) ?? 0) + 1);
  if (kind === "snapshot") snapshots.set(channel, (snapshots.get(channel) ?? 0) + 1);
  if (channel === selected) $("notice").textContent = "";
  windowOf(channel).record(state.timeUnixMs, { ...chartedValues(state), ...tileColumns(state) });
  dirty.add(channel);
  const f = inFlight.get(channel);
  if (f && f.target !== null && state.seq >= f.target) historyDone(channel);
  scheduleRender();
  if (channel === selected && Date.now() - lastSave >= SAVE_EVERY_MS) saveNow();
});
client.addEventListener("upstream", (event) => {
  const { channel, state, detail } = /** @type {CustomEvent} */ (event).detail;
  upstream.set(channel, state);
  upstreamDetail.set(channel, detail);
  dirty.add(channel);
  if (channel === selected) dirty.add("");
  renderBadge();
  renderList();
  scheduleRender();
});
client.addEventListener("connection", () => {
  renderBadge();
  if (client.connection.state !== "live") inFlight.clear();
});
/** @type {Record<string, unknown> | null} the last Subscribed of the chosen channel */
let lastSubscribed = null;
client.addEventListener("subscribed", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  if (detail.channel === selected) lastSubscribed = detail;
  const f = inFlight.get(detail.channel);
  if (f) {
    if (detail.history && detail.position) f.target = detail.position.seq;
    else historyDone(detail.channel);
  }
});
client.addEventListener("error", (event) => {
  const { channel, message } = /** @type {CustomEvent} */ (event).detail;
  $("notice").textContent = channel ? `${channel}: ${message}` : message;
  if (channel) historyDone(channel);
  renderBadge();
});

document.addEventListener("visibilitychange", () => {
  hidden = document.visibilityState === "hidden";
  applyRates();
});
$("filter").addEventListener("input", applyFilter);
$("tiles").addEventListener("keydown", tileKeys);
$("to-overview").addEventListener("click", (event) => {
  event.preventDefault();
  toOverview();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && selected !== null) toOverview();
});
for (const button of Array.from($("window-choice").querySelectorAll("button"))) {
  const minutes = Number(button.dataset.minutes);
  button.setAttribute("aria-pressed", String(minutes === windowMinutes));
  button.addEventListener("click", () => {
    windowMinutes = minutes;
    for (const b of Array.from($("window-choice").querySelectorAll("button"))) {
      b.setAttribute("aria-pressed", String(Number(/** @type {HTMLElement} */ (b).dataset.minutes) === minutes));
    }
    dirty.add("");
    scheduleRender();
  });
}
for (const spec of CHARTS) {
  const panel = $(`chart-${spec.id}`);
  panel.dataset.chart = spec.id;
  observer.observe(panel);
}
window.addEventListener("pagehide", saveNow);
window.addEventListener("popstate", () => show(channelFromHash()));
new ResizeObserver(() => {
  for (const { plot } of plots.values()) {
    const host = plot.root.parentElement;
    if (host) plot.setSize(plotSize(host));
  }
}).observe($("charts"));
/** The channel list's counts and states, in place. */
function refreshList() {
  for (const meta of Array.from($("channels").querySelectorAll("button"))) {
    const info = catalog.find((c) => c.channel === meta.dataset.channel);
    const small = meta.querySelector("small");
    if (!info || !small) continue;
    const state = upstream.get(info.channel) ?? info.state;
    const text = `${info.kind} · ${seriesCount(info)} · ${state}`;
    if (small.textContent !== text) small.textContent = text;
  }
}

setInterval(() => {
  renderBadge();
  refreshList();
  pumpHistory();
  // Ages and stale text move with the clock even when no data comes.
  if (selected !== null) renderMeta();
  for (const [channel, tile] of tiles) if (onScreen.has(tile.el)) renderTile(channel, tile, false);
}, 1000);

$("overview").hidden = selected !== null;
$("channel-view").hidden = selected === null;
renderBadge();
renderList();
dirty.add("");
scheduleRender();
client.connect();

/** For tests and the console: the live objects behind the page. */
Object.assign(globalThis, {
  metricsBridgeDashboard: {
    client,
    window: () => (selected ? windowOf(selected) : new MetricWindow(1)),
    windowOf,
    selected: () => selected,
    lastSubscribed: () => lastSubscribed,
    received: () => Object.fromEntries(received),
    snapshots: () => Object.fromEntries(snapshots),
    renders: () => renders,
    windowMinutes: () => windowMinutes,
  },
});
