import assert from "node:assert/strict";
import { test } from "node:test";
import { MetricWindow } from "../src/dashboard/window.js";

test("rows append in time order with one column per key", () => {
  const w = new MetricWindow(10);
  w.record(1000, { a: 1 });
  w.record(2000, { a: 2, b: 5 });
  assert.deepEqual(w.series(["a", "b"]), [
    [1, 2],
    [1, 2],
    [null, 5],
  ]);
});

test("a key absent from a row gets a null there", () => {
  const w = new MetricWindow(10);
  w.record(1000, { a: 1 });
  w.record(2000, {});
  assert.deepEqual(w.series(["a"])[1], [1, null]);
});

test("a row at the last time replaces it and an older row is dropped", () => {
  const w = new MetricWindow(10);
  w.record(2000, { a: 1 });
  assert.equal(w.record(2000, { a: 3 }), true);
  assert.equal(w.record(1000, { a: 9 }), false);
  assert.deepEqual(w.series(["a"]), [[2], [3]]);
});

test("the window keeps at most capacity rows, oldest out first", () => {
  const w = new MetricWindow(3);
  for (let t = 1; t <= 5; t++) w.record(t * 1000, { a: t });
  assert.deepEqual(w.series(["a"]), [
    [3, 4, 5],
    [3, 4, 5],
  ]);
});

test("a column with only nulls leaves with the rows that held it", () => {
  const w = new MetricWindow(2);
  w.record(1000, { gone: 1 });
  w.record(2000, { a: 1 });
  w.record(3000, { a: 2 });
  assert.deepEqual([...w.columns.keys()], ["a"]);
});

test("the window survives a JSON round trip, trimmed to the new capacity", () => {
  const w = new MetricWindow(5);
  for (let t = 1; t <= 4; t++) w.record(t * 1000, { a: t });
  const back = MetricWindow.fromJSON(JSON.parse(JSON.stringify(w.toJSON())), 3);
  assert.deepEqual(back.series(["a"]), [
    [2, 3, 4],
    [2, 3, 4],
  ]);
  back.record(5000, { a: 5 });
  assert.equal(back.length, 3);
});
