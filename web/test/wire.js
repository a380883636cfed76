// Builds ServerMessage frames and decodes ClientMessage frames for the tests.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ClientMessageSchema, ServerMessageSchema } from "../src/gen/metrics_bridge/v1/bridge_pb.js";
import { SnapshotSchema, UpdateSchema } from "../src/gen/metrics_bridge/v1/metrics_pb.js";

export const EPOCH = "12345678901234567890";

/**
 * @param {number} id
 * @param {string} name
 * @param {Record<string, string>} [labels]
 */
export function series(id, name, labels = {}, unit = "%") {
  return {
    id,
    name,
    labels: Object.entries(labels).map(([n, value]) => ({ name: n, value })),
    kind: 1,
    unit,
  };
}

export function snapshot({ epoch = EPOCH, seq = 0, series: s = [], ids = [], numbers = [] } = {}) {
  return create(SnapshotSchema, {
    source: "host",
    kind: 1,
    epoch,
    seq: BigInt(seq),
    timeUnixMs: BigInt(1_700_000_000_000 + seq * 1000),
    series: s,
    values: { ids, numbers },
  });
}

export function update({ epoch = EPOCH, seq, added = [], ids = [], numbers = [], removed = [] }) {
  return create(UpdateSchema, {
    source: "host",
    epoch,
    seq: BigInt(seq),
    timeUnixMs: BigInt(1_700_000_000_000 + seq * 1000),
    added,
    values: { ids, numbers },
    removed,
  });
}

/**
 * @param {string} channel
 * @param {string} kase oneof case of ServerMessage.body
 * @param {object} value
 * @param {{firstSeq?: number, resync?: number}} [fields] other ServerMessage fields
 */
export function frame(channel, kase, value, fields = {}) {
  const msg = create(ServerMessageSchema, { channel, body: { case: kase, value }, ...fields });
  return toBinary(ServerMessageSchema, msg);
}

export function hello(heartbeatIntervalMs = 1000) {
  return frame("", "hello", {
    sessionId: "s1",
    serverVersion: "test",
    protocol: "metrics-bridge.v1",
    heartbeatIntervalMs,
    limits: { maxMessageBytes: 65536, maxSubscriptions: 64, resumeWindow: 256 },
  });
}

export function heartbeat(positions) {
  return frame("", "heartbeat", {
    serverTimeMs: 1n,
    positions: Object.entries(positions).map(([channel, [epoch, seq]]) => ({
      channel,
      position: { epoch, seq: BigInt(seq) },
    })),
  });
}

/** @param {Uint8Array} bytes */
export function decodeClient(bytes) {
  return fromBinary(ClientMessageSchema, bytes);
}

/**
 * The channel requests of a Subscribe frame as [channel, "epoch:seq" | null].
 * @param {Uint8Array} bytes
 */
export function subscribeRequests(bytes) {
  const msg = decodeClient(bytes);
  if (msg.body.case !== "subscribe") throw new Error(`not a subscribe: ${msg.body.case}`);
  return msg.body.value.channels.map((r) => [
    r.channel,
    r.resume ? `${r.resume.epoch}:${r.resume.seq}` : null,
  ]);
}
