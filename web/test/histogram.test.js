import assert from "node:assert/strict";
import { test } from "node:test";
import { buckets, quantile } from "../src/dashboard/histogram.js";

/** @param {number[]} bounds @param {number[]} counts @param {object} [extra] */
const hist = (bounds, counts, extra = {}) => ({
  bounds,
  counts,
  count: counts.reduce((a, b) => a + b, 0),
  sum: 0,
  min: undefined,
  max: undefined,
  ...extra,
});

test("a quantile interpolates inside the bucket its rank falls in", () => {
  const h = hist([10, 20, 40], [10, 10, 20, 0]);
  assert.equal(quantile(h, 0.5), 20); // rank 20: the end of (10, 20]
  assert.equal(quantile(h, 0.375), 15); // rank 15: half way through (10, 20]
  assert.equal(quantile(h, 0.75), 30); // rank 30: half way through (20, 40]
  assert.equal(quantile(h, 0.1), 4); // rank 4 in (0, 10], from 0 without a min
});

test("the overflow bucket ends at max when known, and min and max clamp", () => {
  const h = hist([1, 2], [0, 0, 10], { min: 3, max: 7 });
  assert.equal(quantile(h, 0.5), 2 + 5 * 0.5);
  assert.equal(quantile(h, 0), 3);
  assert.equal(quantile(hist([1, 2], [0, 0, 10]), 0.99), 2);
});

test("an empty histogram has no quantile", () => {
  assert.equal(quantile(hist([1], [0, 0]), 0.5), null);
});

test("buckets of the latest value skip empty ones and name the overflow +Inf", () => {
  assert.deepEqual(buckets(hist([1, 5], [2, 0, 3])), [
    { le: "1", count: 2 },
    { le: "+Inf", count: 3 },
  ]);
});
