import assert from "node:assert/strict";
import { test } from "node:test";

import { Fanout } from "../fanout.mjs";
import { channelHeader } from "../wire.mjs";

const SNAPSHOT = Buffer.from("52060a046c6f6164", "hex"); // CollectorEvent(snapshot(source="load"))
const UPDATE = Buffer.from("5a080a046c6f61642001", "hex"); // CollectorEvent(update(source="load", seq=1))
const OTHER = Buffer.from("5a060a04686f7374", "hex"); // an update of source "host"

class FakeClient {
  constructor(bufferedAmount = 0) {
    this.readyState = 1;
    this.bufferedAmount = bufferedAmount;
    this.sent = [];
  }

  send(frame) {
    this.sent.push(frame);
  }
}

const framed = (raw) => Buffer.concat([channelHeader("c1/load"), raw]);

test("each subscriber of the channel gets the event framed with the channel", () => {
  const fanout = new Fanout("c1", 1024);
  const clients = [new FakeClient(), new FakeClient()];
  for (const client of clients) fanout.subscribe(client, ["c1/load"]);
  const routed = fanout.publish(UPDATE);
  assert.equal(routed.sent, 2);
  for (const client of clients) assert.deepEqual(client.sent, [framed(UPDATE)]);
});

test("a subscriber of another channel gets nothing", () => {
  const fanout = new Fanout("c1", 1024);
  const client = new FakeClient();
  fanout.subscribe(client, ["c1/load"]);
  fanout.publish(OTHER);
  assert.deepEqual(client.sent, []);
});

test("a new subscriber gets the latest snapshot first", () => {
  const fanout = new Fanout("c1", 1024);
  fanout.publish(SNAPSHOT);
  const client = new FakeClient();
  fanout.subscribe(client, ["c1/load", "c1/unknown"]);
  fanout.publish(UPDATE);
  assert.deepEqual(client.sent, [framed(SNAPSHOT), framed(UPDATE)]);
});

test("a client over the buffer bound is skipped, the others still get the frame", () => {
  const fanout = new Fanout("c1", 1024);
  const slow = new FakeClient(4096);
  const fast = new FakeClient();
  fanout.subscribe(slow, ["c1/load"]);
  fanout.subscribe(fast, ["c1/load"]);
  const routed = fanout.publish(UPDATE);
  assert.deepEqual([routed.sent, routed.skipped, fanout.skipped], [1, 1, 1]);
  assert.deepEqual(slow.sent, []);
  assert.equal(fast.sent.length, 1);
});

test("a removed client gets nothing more", () => {
  const fanout = new Fanout("c1", 1024);
  const client = new FakeClient();
  fanout.subscribe(client, ["c1/load"]);
  fanout.remove(client);
  assert.equal(fanout.publish(UPDATE).sent, 0);
  assert.deepEqual(client.sent, []);
});

test("a source is new only the first time it is seen", () => {
  const fanout = new Fanout("c1", 1024);
  assert.equal(fanout.publish(SNAPSHOT).newSource, true);
  assert.equal(fanout.publish(UPDATE).newSource, false);
});

test("routed events are counted by kind; a source removal is not routed", () => {
  const fanout = new Fanout("c1", 1024);
  fanout.publish(SNAPSHOT);
  fanout.publish(UPDATE);
  assert.equal(fanout.publish(Buffer.from("62060a046c6f6164", "hex")), null);
  assert.deepEqual(fanout.routed, { snapshot: 1, update: 1 });
});
