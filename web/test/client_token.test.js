// MetricsBridgeClient after 4001 (token expired): a token function gets a new
// token and reconnects; a fixed token would be refused again, so the client stops.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MetricsBridgeClient } from "../src/client.js";

/** A WebSocket that never connects anywhere: the test closes it by hand. */
class FakeSocket {
  /** @type {FakeSocket[]} */
  static opened = [];

  constructor() {
    this.binaryType = "";
    /** @type {((event: {code: number, reason: string}) => void) | null} */
    this.onclose = null;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    FakeSocket.opened.push(this);
  }

  send() {}

  close() {}
}

/** @param {string | (() => string)} token */
function clientWith(token) {
  FakeSocket.opened = [];
  const client = new MetricsBridgeClient("ws://127.0.0.1:1/", {
    channels: ["c1/host"],
    token,
    // @ts-ignore: a stand-in for the WebSocket constructor
    WebSocket: FakeSocket,
    backoff: { initialMs: 1, maxMs: 1, multiplier: 1 },
  });
  /** @type {string[]} */
  const states = [];
  client.addEventListener("connection", (e) => {
    states.push(/** @type {CustomEvent} */ (e).detail.state);
  });
  client.connect();
  return { client, states };
}

test("an expired fixed token stops the client instead of retrying it", () => {
  const { client, states } = clientWith("fixed.token.value");
  try {
    assert.equal(FakeSocket.opened.length, 1);
    FakeSocket.opened[0].onclose?.({ code: 4001, reason: "token expired" });
    assert.equal(states.at(-1), "closed");
    assert.equal(client.connection.code, 4001);
  } finally {
    client.close();
  }
});

test("an expired token from a function is followed by a reconnect", () => {
  const { client, states } = clientWith(() => "fresh.token.value");
  return new Promise((resolve) => {
    setTimeout(() => {
      try {
        FakeSocket.opened[0].onclose?.({ code: 4001, reason: "token expired" });
        assert.equal(states.at(-1), "reconnecting");
      } finally {
        client.close();
        resolve(undefined);
      }
    }, 10);
  });
});
