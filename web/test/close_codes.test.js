import assert from "node:assert/strict";
import { test } from "node:test";
import { closeAction } from "../src/close_codes.js";

test("going away, dropped links and server trouble reconnect", () => {
  for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 1014, 4000, 4499]) {
    assert.equal(closeAction(code), "reconnect", String(code));
  }
});

test("client faults and the do-not-retry range stop", () => {
  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4500, 4999]) {
    assert.equal(closeAction(code), "stop", String(code));
  }
});
