import assert from "node:assert/strict";
import { test } from "node:test";
import { ChannelState } from "../src/channel_state.js";
import { BridgeSession } from "../src/session.js";
import {
  EPOCH,
  decodeClient,
  frame,
  heartbeat,
  hello,
  series,
  snapshot,
  subscribeRequests,
  update,
} from "./wire.js";

const C = "c/host";

/** A session that has had Hello, Subscribed and a Snapshot at seq 5 for C. */
function live() {
  const session = new BridgeSession({ channels: [C] });
  session.opened(0);
  session.receive(hello(1000), 0);
  session.receive(frame(C, "subscribed", { recovered: false }), 1);
  session.receive(
    frame(C, "snapshot", snapshot({ seq: 5, series: [series(1, "m")], ids: [1], numbers: [1] })),
    2,
  );
  return session;
}

test("nothing is sent before hello; hello subscribes every wanted channel", () => {
  const session = new BridgeSession({ channels: [C, "c/svc"] });
  assert.deepEqual(session.opened(0).send, []);
  const out = session.receive(hello(), 1);
  assert.equal(out.send.length, 1);
  assert.deepEqual(subscribeRequests(out.send[0]), [
    [C, null],
    ["c/svc", null],
  ]);
  assert.equal(out.events[0].type, "hello");
});

test("reconnect resumes every channel from its position", () => {
  const session = live();
  session.closed();
  session.opened(10);
  const out = session.receive(hello(), 11);
  assert.deepEqual(subscribeRequests(out.send[0]), [[C, `${EPOCH}:5`]]);
});

test("saved states resume on the first connection", () => {
  const saved = live().states.get(C);
  assert.ok(saved);
  const restored = ChannelState.fromJSON(JSON.parse(JSON.stringify(saved.toJSON())));
  const session = new BridgeSession({ channels: [C], states: [restored] });
  session.opened(0);
  assert.deepEqual(subscribeRequests(session.receive(hello(), 1).send[0]), [[C, `${EPOCH}:5`]]);
});

test("applied update is reported as data with the new seq", () => {
  const out = live().receive(frame(C, "update", update({ seq: 6, ids: [1], numbers: [2] })), 3);
  assert.deepEqual(
    out.events.map((e) => [e.type, e.type === "data" ? e.seq : null]),
    [["data", 6]],
  );
  assert.equal(out.send.length, 0);
});

test("gap resubscribes once with resume from the current position", () => {
  const session = live();
  const out = session.receive(frame(C, "update", update({ seq: 8 })), 3);
  assert.deepEqual(subscribeRequests(out.send[0]), [[C, `${EPOCH}:5`]]);
  assert.equal(out.events[0].type, "resync");
  const again = session.receive(frame(C, "update", update({ seq: 9 })), 4);
  assert.equal(again.send.length, 0, "a pending channel is not resubscribed twice");
});

test("recovered updates after a resubscribe apply in order", () => {
  const session = live();
  session.receive(frame(C, "update", update({ seq: 8 })), 3);
  session.receive(frame(C, "subscribed", { recovered: true, position: { epoch: EPOCH, seq: 8n } }), 4);
  for (const seq of [6, 7, 8]) {
    const out = session.receive(frame(C, "update", update({ seq, ids: [1], numbers: [seq] })), 5);
    assert.equal(out.events[0]?.type, "data");
  }
  assert.equal(session.states.get(C)?.seq, 8);
});

test("invalid update asks for a fresh snapshot without resume", () => {
  const session = live();
  const out = session.receive(frame(C, "update", update({ seq: 6, ids: [99], numbers: [1] })), 3);
  assert.deepEqual(subscribeRequests(out.send[0]), [[C, null]]);
});

test("heartbeat ahead of us for a whole interval resubscribes with resume", () => {
  const session = live();
  assert.equal(session.receive(heartbeat({ [C]: [EPOCH, 7] }), 1000).send.length, 0);
  const out = session.receive(heartbeat({ [C]: [EPOCH, 7] }), 2000);
  assert.deepEqual(subscribeRequests(out.send[0]), [[C, `${EPOCH}:5`]]);
});

test("heartbeat ahead of us is fine when the updates arrive before the next one", () => {
  const session = live();
  session.receive(heartbeat({ [C]: [EPOCH, 7] }), 1000);
  session.receive(frame(C, "update", update({ seq: 6 })), 1100);
  session.receive(frame(C, "update", update({ seq: 7 })), 1200);
  assert.equal(session.receive(heartbeat({ [C]: [EPOCH, 8] }), 2000).send.length, 0);
});

test("heartbeat of a new epoch without a snapshot resubscribes", () => {
  const session = live();
  session.receive(heartbeat({ [C]: ["42", 1] }), 1000);
  const out = session.receive(heartbeat({ [C]: ["42", 1] }), 2000);
  assert.equal(out.send.length, 1);
});

test("silence of 2.5 heartbeat intervals is a dead link", () => {
  const session = live();
  assert.equal(session.tick(2 + 2499).close, null);
  assert.match(session.tick(2 + 2500).close?.reason ?? "", /dead link/);
});

test("before hello the connect timeout decides the dead link", () => {
  const session = new BridgeSession({ connectTimeoutMs: 5000 });
  session.opened(0);
  assert.equal(session.tick(4999).close, null);
  assert.ok(session.tick(5000).close);
});

test("status changes are reported as upstream events", () => {
  const out = live().receive(frame(C, "status", { state: 2, detail: "collector unreachable" }), 3);
  assert.deepEqual(out.events, [
    { type: "upstream", channel: C, state: "stale", detail: "collector unreachable" },
  ]);
});

test("catalog lists channels and reports their upstream state once", () => {
  const session = live();
  const catalog = frame("", "catalog", {
    channels: [{ channel: C, collector: "c", source: "host", kind: 1, state: 1, seriesCount: 3 }],
  });
  const out = session.receive(catalog, 3);
  assert.equal(out.events[0].type, "catalog");
  assert.equal(out.events[0].type === "catalog" && out.events[0].channels[0].kind, "host");
  assert.deepEqual(out.events[1], { type: "upstream", channel: C, state: "live", detail: "" });
  assert.equal(session.receive(catalog, 4).events.length, 1);
});

test("undecodable frame asks to close the connection", () => {
  const out = live().receive(new Uint8Array([0xff, 0xff, 0xff]), 3);
  assert.match(out.close?.reason ?? "", /protocol violation/);
});

test("text frame asks to close the connection", () => {
  assert.ok(live().receive("hello", 3).close);
});

test("hello of another protocol asks to close the connection", () => {
  const session = new BridgeSession({ channels: [C] });
  session.opened(0);
  const out = session.receive(frame("", "hello", { protocol: "other.v9", heartbeatIntervalMs: 1 }), 1);
  assert.ok(out.close);
  assert.equal(out.send.length, 0);
});

test("a channel refused as unknown stays wanted and is asked for on the next connection", () => {
  const session = live();
  const out = session.receive(frame(C, "error", { code: 1, message: "no such channel" }), 3);
  assert.deepEqual(out.events, [
    { type: "error", channel: C, code: "unknown_channel", message: "no such channel" },
  ]);
  assert.equal(out.send.length, 0);
  assert.ok(session.unknown.has(C));
  session.closed();
  session.opened(4);
  assert.deepEqual(subscribeRequests(session.receive(hello(), 5).send[0]), [[C, `${EPOCH}:5`]]);
});

test("hello without a heartbeat interval asks to close the connection", () => {
  const session = new BridgeSession({ channels: [C] });
  session.opened(0);
  const out = session.receive(hello(0), 1);
  assert.match(out.close?.reason ?? "", /heartbeat/);
  assert.equal(out.send.length, 0);
  assert.equal(session.heartbeatIntervalMs, null);
});

test("updates between a non-recovered subscribed and its snapshot are dropped", () => {
  const session = live();
  session.receive(frame(C, "update", update({ seq: 9 })), 3);
  session.receive(frame(C, "subscribed", { recovered: false }), 4);
  const out = session.receive(frame(C, "update", update({ seq: 6, ids: [1], numbers: [6] })), 5);
  assert.deepEqual(out.events, []);
  assert.equal(session.states.get(C)?.seq, 5);
});

test("a channel refused as unknown is subscribed again once a catalog lists it", () => {
  const session = live();
  session.receive(frame(C, "error", { code: 1, message: "no such channel" }), 3);
  const other = frame("", "catalog", { channels: [{ channel: "c/other", state: 1 }] });
  assert.equal(session.receive(other, 4).send.length, 0);
  const listed = frame("", "catalog", { channels: [{ channel: C, state: 1 }] });
  assert.deepEqual(subscribeRequests(session.receive(listed, 5).send[0]), [[C, `${EPOCH}:5`]]);
});

test("a channel refused for too many subscriptions is not asked for again", () => {
  const session = live();
  session.receive(frame(C, "error", { code: 2, message: "limit" }), 3);
  const listed = frame("", "catalog", { channels: [{ channel: C, state: 1 }] });
  assert.equal(session.receive(listed, 4).send.length, 0);
});

test("a removed channel keeps its state and comes back when the catalog lists it", () => {
  const session = live();
  const out = session.receive(frame(C, "status", { state: 3, detail: "source gone" }), 3);
  assert.equal(out.events[0].type === "upstream" && out.events[0].state, "removed");
  assert.equal(session.states.get(C)?.seq, 5);
  assert.equal(session.receive(frame(C, "update", update({ seq: 6 })), 4).events.length, 0);
  const listed = frame("", "catalog", { channels: [{ channel: C, state: 1 }] });
  assert.deepEqual(subscribeRequests(session.receive(listed, 5).send[0]), [[C, `${EPOCH}:5`]]);
});

test("unsubscribe sends the channels and forgets their state", () => {
  const session = live();
  const out = session.unsubscribe([C]);
  const msg = decodeClient(out.send[0]);
  assert.equal(msg.body.case, "unsubscribe");
  assert.deepEqual(msg.body.case === "unsubscribe" && msg.body.value.channels, [C]);
  assert.equal(session.states.has(C), false);
  assert.equal(session.receive(frame(C, "update", update({ seq: 6 })), 3).events.length, 0);
});

test("subscribe after hello sends only the new channels", () => {
  const session = live();
  assert.deepEqual(subscribeRequests(session.subscribe([C, "c/svc"]).send[0]), [["c/svc", null]]);
});

test("a snapshot marked stale applies, is reported with its reason and counted", () => {
  const session = live();
  const marked = frame(C, "snapshot", snapshot({ seq: 20, series: [series(1, "m")], ids: [1], numbers: [9] }), {
    resync: 1,
  });
  const out = session.receive(marked, 3);
  assert.equal(out.send.length, 0, "the mark asks nothing of the client");
  assert.deepEqual(
    out.events.map((e) => e.type === "data" && [e.kind, e.seq, e.resync]),
    [["snapshot", 20, "stale"]],
  );
  const state = session.states.get(C);
  assert.deepEqual([state?.resyncs, state?.lastResync], [{ stale: 1 }, "stale"]);
  const next = session.receive(frame(C, "update", update({ seq: 21, ids: [1], numbers: [10] })), 4);
  assert.deepEqual(next.events.map((e) => e.type === "data" && e.resync), [null]);
});

test("a merged update marked stale applies at firstSeq - 1; an unknown reason is named by its number", () => {
  const session = live();
  const merged = frame(C, "update", update({ seq: 9, ids: [1], numbers: [4] }), { firstSeq: 6, resync: 1 });
  assert.deepEqual(
    session.receive(merged, 3).events.map((e) => e.type === "data" && [e.seq, e.resync]),
    [[9, "stale"]],
  );
  const future = frame(C, "snapshot", snapshot({ seq: 12, series: [series(1, "m")], ids: [1], numbers: [5] }), {
    resync: 7,
  });
  assert.deepEqual(
    session.receive(future, 4).events.map((e) => e.type === "data" && e.resync),
    ["7"],
  );
  assert.deepEqual(session.states.get(C)?.resyncs, { stale: 1, 7: 1 });
});

test("the snapshot answering a subscribe is not a resync", () => {
  const session = live();
  const state = session.states.get(C);
  assert.deepEqual([state?.resyncs, state?.lastResync], [{}, null]);
});
