#!/usr/bin/env node
// Follows channels of a bridge with the JS client and prints one JSON line per
// applied Snapshot or Update: {channel, kind, epoch, seq, timeUnixMs, numbers,
// histograms}, numbers and histograms keyed like `name{label="value"}`.
// Connection, upstream, subscribed, resync and error events go to stderr as
// `TYPE {json}` lines.
//
//   node web/tools/follow.mjs ws://127.0.0.1:8765/ CHANNEL... [--count N] [--timeout SECONDS]
//
// Exits 0 after --count lines, 1 on timeout or when the bridge refuses us.
// A token (bridge run with --auth jwt) comes from METRICS_BRIDGE_TOKEN_FILE (read
// again before every connection and refresh) or METRICS_BRIDGE_TOKEN; for wss://
// with a private CA, set NODE_EXTRA_CA_CERTS.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { MetricsBridgeClient } from "../src/client.js";

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help || positionals.length < 2) {
  console.error("usage: follow.mjs WS_URL CHANNEL... [--count N] [--timeout SECONDS]");
  process.exit(flags.help ? 0 : 2);
}
const [url, ...channels] = positionals;
const count = Number(flags.count);
const timeout = Number(flags.timeout);

const tokenFile = process.env.METRICS_BRIDGE_TOKEN_FILE;
const fixedToken = process.env.METRICS_BRIDGE_TOKEN;
const token = tokenFile
  ? () => readFileSync(tokenFile, "utf8").trim()
  : fixedToken || undefined;

const client = new MetricsBridgeClient(url, {
  channels,
  token,
  WebSocket: /** @type {typeof globalThis.WebSocket} */ (/** @type {unknown} */ (WebSocket)),
});
let printed = 0;

/** @param {number} code */
function finish(code) {
  client.close();
  process.exitCode = code;
  setTimeout(() => process.exit(code), 50);
}

client.addEventListener("data", (event) => {
  const { channel, kind, state } = /** @type {CustomEvent} */ (event).detail;
  /** @type {Record<string, number>} */
  const numbers = {};
  /** @type {Record<string, {count: number, sum: number}>} */
  const histograms = {};
  for (const row of state.rows()) {
    if (typeof row.value === "number") numbers[row.key] = row.value;
    else if (row.value) histograms[row.key] = { count: row.value.count, sum: row.value.sum };
  }
  const line = { channel, kind, epoch: state.epoch, seq: state.seq, timeUnixMs: state.timeUnixMs };
  process.stdout.write(`${JSON.stringify({ ...line, numbers, histograms })}\n`);
  printed += 1;
  if (count > 0 && printed >= count) finish(0);
});
client.addEventListener("connection", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  process.stderr.write(`connection ${JSON.stringify(detail)}\n`);
  if (detail.state === "closed" && detail.reason !== "client closed") finish(1);
});
for (const type of ["upstream", "subscribed", "resync", "error"]) {
  client.addEventListener(type, (event) => {
    process.stderr.write(`${type} ${JSON.stringify(/** @type {CustomEvent} */ (event).detail)}\n`);
  });
}
if (timeout > 0) {
  setTimeout(() => {
    process.stderr.write(`timed out after ${timeout}s with ${printed} lines\n`);
    finish(1);
  }, timeout * 1000).unref();
}
client.connect();
