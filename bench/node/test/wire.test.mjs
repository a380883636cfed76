// Encodings below were produced by the project's generated Python protobuf code.
import assert from "node:assert/strict";
import { test } from "node:test";

import { channelHeader, routeOf, subscribedChannels, WireError } from "../wire.mjs";

const hex = (text) => Buffer.from(text, "hex");

test("a subscribe's channels are read and resume positions skipped", () => {
  const raw = hex(
    "0a250a170a0763312f6c6f6164120c09050000000000008010ac020a0a0a0863312f68c3b47374",
  );
  assert.deepEqual(subscribedChannels(raw), ["c1/load", "c1/hôst"]);
});

test("a client message that is not a subscribe is refused", () => {
  assert.throws(() => subscribedChannels(hex("1a020807")), WireError);
});

test("a truncated client message is refused", () => {
  assert.throws(() => subscribedChannels(hex("0a250a170a07")), WireError);
});

test("snapshots and updates are routed by their source", () => {
  const snapshot = hex(
    "52300a046c6f616419090000000000000020012880d095ffbc313a160a0201021210000000000000f83f0000000000000440",
  );
  assert.deepEqual(routeOf(snapshot), { kind: "snapshot", source: "load" });
  assert.deepEqual(routeOf(hex("5a120a02766d1909000000000000002002420103")), {
    kind: "update",
    source: "vm",
  });
});

test("a source removal is not routed", () => {
  assert.equal(routeOf(hex("620f0a046c6f6164110900000000000000")), null);
});

test("the channel header is ServerMessage(channel) as protobuf encodes it", () => {
  assert.deepEqual(channelHeader("c1/load"), hex("0a0763312f6c6f6164"));
  const long = `c1/${"x".repeat(200)}`;
  assert.deepEqual(channelHeader(long).subarray(0, 4), hex("0acb0163"));
  assert.equal(channelHeader(long).length, 3 + 203);
});
