#!/usr/bin/env node
// The `ws` baseline of `python -m bench`: a Node fan-out written the way a Node
// developer writes one with the `ws` package, fed by the same collector.
//
// It follows the collector's Subscribe stream (every source) with @grpc/grpc-js,
// keeping each CollectorEvent's raw bytes, and serves WebSocket clients with
// `ws` (subprotocol metrics-bridge.v1). A client's first message is the
// bridge's ClientMessage with a subscribe; it gets each channel's latest
// snapshot, then every Snapshot/Update of those channels as
// encode(ServerMessage(channel)) + the collector's bytes, the same bytes the
// bridge and bench.baselines send. The frame is built once per event and given
// to each subscriber with client.send(frame) (ws has no broadcast); a client
// whose bufferedAmount is over --max-buffered is skipped for that frame
// (fanout.mjs has the rules). permessage-deflate is negotiated when a client
// offers it, with ws's defaults (perMessageDeflate: {threshold: 1024}); every
// compressed frame is compressed once per client, on libuv's thread pool, at
// most 10 at a time. ws applies the threshold only when the server's context
// is reset per message (server_no_context_takeover, which browsers do not
// ask for): with context takeover, as negotiated here, it compresses every
// frame, however small.
// Exits 0 on SIGTERM or SIGINT, 1 if the collector's stream fails.

import { renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import { WebSocketServer } from "ws";

import { Fanout } from "./fanout.mjs";
import { subscribedChannels, WireError } from "./wire.mjs";

const PROTOCOL = "metrics-bridge.v1";
const SUBSCRIBE = "/metrics_bridge.v1.MetricsCollector/Subscribe";

const HELP = `usage: node bench/node/ws_baseline.mjs --collector HOST:PORT [options]

The Node \`ws\` fan-out baseline of \`python -m bench\` (see the top of this file).
Each option can also be set with the environment variable in brackets.

  --collector HOST:PORT   the collector to follow (required) [BENCH_WS_COLLECTOR]
  --name NAME             collector name used in channel names (default c1) [BENCH_WS_NAME]
  --listen HOST:PORT      where to serve WebSocket clients (default 127.0.0.1:0) [BENCH_WS_LISTEN]
  --wait-source SOURCE    serve once this source is known; repeatable
                          [BENCH_WS_WAIT_SOURCE, comma-separated]
  --ready-file FILE       write {"ws", "url"} here once serving [BENCH_WS_READY_FILE]
  --max-buffered BYTES    skip a client for a frame while more than this is queued for it
                          (default 262144, the bridge's --client-buffer-bytes) [BENCH_WS_MAX_BUFFERED]
  --max-message BYTES     largest message accepted from a client (default 65536) [BENCH_WS_MAX_MESSAGE]
  --subscribe-timeout S   close a client that sends no subscribe within S seconds (default 10)
                          [BENCH_WS_SUBSCRIBE_TIMEOUT]
  -h, --help              show this help
`;

function log(message) {
  process.stderr.write(`${new Date().toISOString()} bench.ws: ${message}\n`);
}

class UsageError extends Error {}

function parseAddress(text, flag) {
  const at = text.lastIndexOf(":");
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${flag}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  }
  return { host: text.slice(0, at), port };
}

function positive(text, flag) {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`${flag}: expected a positive number, got ${JSON.stringify(text)}`);
  }
  return value;
}

function parseSettings(argv, env) {
  const { values } = parseArgs({
    args: argv,
    options: {
      collector: { type: "string" },
      name: { type: "string" },
      listen: { type: "string" },
      "wait-source": { type: "string", multiple: true },
      "ready-file": { type: "string" },
      "max-buffered": { type: "string" },
      "max-message": { type: "string" },
      "subscribe-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return null;
  const collector = values.collector ?? env.BENCH_WS_COLLECTOR;
  if (!collector) throw new UsageError("--collector is required");
  const waitSources =
    values["wait-source"] ?? (env.BENCH_WS_WAIT_SOURCE ?? "").split(",").filter(Boolean);
  return {
    collector,
    name: values.name ?? env.BENCH_WS_NAME ?? "c1",
    listen: parseAddress(values.listen ?? env.BENCH_WS_LISTEN ?? "127.0.0.1:0", "--listen"),
    waitSources: new Set(waitSources),
    readyFile: values["ready-file"] ?? env.BENCH_WS_READY_FILE ?? null,
    maxBuffered: positive(
      values["max-buffered"] ?? env.BENCH_WS_MAX_BUFFERED ?? "262144",
      "--max-buffered",
    ),
    maxMessage: positive(
      values["max-message"] ?? env.BENCH_WS_MAX_MESSAGE ?? "65536",
      "--max-message",
    ),
    subscribeTimeout: positive(
      values["subscribe-timeout"] ?? env.BENCH_WS_SUBSCRIBE_TIMEOUT ?? "10",
      "--subscribe-timeout",
    ),
  };
}

/** Atomically, so a reader never sees half the JSON. */
function writeReady(path, addresses) {
  const partial = `${path}.partial`;
  writeFileSync(partial, JSON.stringify(addresses));
  renameSync(partial, path);
}

function serveClient(ws, fanout, settings) {
  ws.on("error", (err) => log(`client error: ${err.message}`));
  ws.on("close", () => fanout.remove(ws));
  const timer = setTimeout(
    () => ws.close(1008, "no subscribe received"),
    settings.subscribeTimeout * 1000,
  );
  ws.once("message", (data, isBinary) => {
    clearTimeout(timer);
    if (!isBinary) {
      ws.close(1003, "expected a binary ClientMessage");
      return;
    }
    let channels;
    try {
      channels = subscribedChannels(data);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      ws.close(1007, `bad ClientMessage: ${err.message}`.slice(0, 120));
      return;
    }
    fanout.subscribe(ws, channels);
  });
}

function follow(settings, fanout, onSource, onEnd) {
  const client = new grpc.Client(settings.collector, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  });
  const call = client.makeServerStreamRequest(
    SUBSCRIBE,
    // SubscribeRequest{value_deltas: true}: the same compact updates the bridge forwards.
    () => Buffer.from([0x20, 0x01]),
    (raw) => raw,
    {},
  );
  call.on("data", (raw) => {
    let routed;
    try {
      routed = fanout.publish(raw);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      log(`skipped a malformed collector event: ${err.message}`);
      return;
    }
    if (routed?.newSource) onSource(routed.source);
  });
  call.on("error", (err) => onEnd(err));
  call.on("end", () => onEnd(null));
  return () => {
    call.cancel();
    client.close();
  };
}

function main() {
  let settings;
  try {
    settings = parseSettings(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${HELP.split("\n")[0]}\nerror: ${err.message} (--help for more)\n`);
    return 2;
  }
  if (settings === null) {
    process.stdout.write(HELP);
    return 0;
  }
  const fanout = new Fanout(settings.name, settings.maxBuffered);
  const waiting = new Set(settings.waitSources);
  let stopping = false;
  let address = null;
  let ready = false;

  const wss = new WebSocketServer({
    host: settings.listen.host,
    port: settings.listen.port,
    // ws's defaults, its threshold spelled out (see the top of this file).
    perMessageDeflate: { threshold: 1024 },
    maxPayload: settings.maxMessage,
    handleProtocols: (offered) => (offered.has(PROTOCOL) ? PROTOCOL : false),
  });

  const announce = () => {
    if (ready || address === null || waiting.size > 0) return;
    ready = true;
    const addresses = { ws: address, url: `ws://${address}/` };
    if (settings.readyFile) writeReady(settings.readyFile, addresses);
    log(`serving ${addresses.url}`);
  };

  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    const { snapshot, update } = fanout.routed;
    log(
      `stopping: routed ${snapshot} snapshots and ${update} updates; sent ${fanout.delivered}` +
        ` frames, skipped ${fanout.skipped} (client over --max-buffered)`,
    );
    cancel();
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => process.exit(code));
    setTimeout(() => process.exit(code), 2000).unref();
  };

  const cancel = follow(
    settings,
    fanout,
    (source) => {
      waiting.delete(source);
      announce();
    },
    (err) => {
      if (stopping) return;
      log(err ? `collector stream failed: ${err.message}` : "collector stream ended");
      stop(err ? 1 : 0);
    },
  );
  wss.on("connection", (ws) => serveClient(ws, fanout, settings));
  wss.on("error", (err) => {
    log(`cannot serve: ${err.message}`);
    stop(1);
  });
  wss.on("listening", () => {
    const bound = wss.address();
    address = `${bound.address}:${bound.port}`;
    announce();
  });
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  return null;
}

const code = main();
if (code !== null) process.exitCode = code;
