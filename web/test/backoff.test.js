import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff } from "../src/backoff.js";

test("ceiling doubles per attempt up to the maximum", () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  const delays = Array.from({ length: 6 }, () => Math.round(backoff.next()));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
});

test("delay is full jitter: anywhere from zero to the ceiling", () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  assert.equal(backoff.next(), 0);
  const half = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
  half.next();
  assert.equal(half.next(), 100);
});

test("reset starts again from the first ceiling", () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
  backoff.next();
  backoff.next();
  backoff.reset();
  assert.equal(backoff.next(), 50);
});

test("nonsense options are refused", () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
});
