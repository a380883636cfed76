import assert from "node:assert/strict";
import { test } from "node:test";
import { ChannelState } from "../src/channel_state.js";
import { formatAge, matches, rateFor, tileColumns, tileValues } from "../src/dashboard/overview.js";

/**
 * @param {Array<[string, Record<string, string>, string, number | object]>} rows
 *   name, labels, kind, value
 */
function stateOf(rows) {
  const state = new ChannelState("c1/x");
  state.epoch = "1";
  rows.forEach(([name, labels, kind, value], id) => {
    const key = `${name}${JSON.stringify(labels)}`;
    state.series.set(id, { id, name, labels, kind: /** @type {any} */ (kind), unit: "", description: "", startTimeUnixMs: 0, key });
    state.values.set(id, /** @type {any} */ (value));
  });
  return state;
}

test("a host tile draws cpu total, memory used and the network summed", () => {
  const state = stateOf([
    ["system_cpu_percent", {}, "gauge", 12],
    ["system_cpu_percent", { cpu: "0" }, "gauge", 50],
    ["system_memory_bytes", { state: "used" }, "gauge", 1000],
    ["system_memory_bytes", { state: "total" }, "gauge", 4000],
    ["system_network_io_bytes_per_second", { interface: "lo", direction: "rx" }, "gauge", 5],
    ["system_network_io_bytes_per_second", { interface: "lo", direction: "tx" }, "gauge", 7],
  ]);
  assert.deepEqual(tileColumns(state), { "tile:cpu": 12, "tile:memory": 1000, "tile:network": 12 });
});

test("a pushed tile draws its first three gauges by label, else histogram p90s", () => {
  const gauges = stateOf([
    ["z", {}, "gauge", 1],
    ["a", {}, "gauge", 2],
    ["m", {}, "counter", 3],
    ["b", {}, "gauge", 4],
    ["c", {}, "gauge", 5],
  ]);
  assert.deepEqual(tileValues(gauges).map((l) => l.name), ["a", "b", "c"]);
  const hist = { bounds: [1, 2], counts: [0, 10, 0], count: 10, sum: 15 };
  assert.deepEqual(tileValues(stateOf([["latency", {}, "histogram", hist]])), [
    { name: "latency p90", unit: "", value: 1.9 },
  ]);
});

test("ages read as people say them", () => {
  assert.deepEqual([0, 1500, 12_000, 300_000, 9_000_000].map(formatAge), [
    "now",
    "now",
    "12 s ago",
    "5 min ago",
    "2 h ago",
  ]);
});

test("the filter keeps channels with every word of the query", () => {
  assert.ok(matches("web-1/checkout", "WEB check"));
  assert.ok(!matches("web-1/checkout", "web-2"));
  assert.ok(matches("anything", "  "));
});

test("the chosen channel gets every update, tiles the tile rate, a hidden tab the slowest", () => {
  const tiers = [1000, 5000, 10000];
  assert.equal(rateFor("a", "a", false, tiers), 0);
  assert.equal(rateFor("b", "a", false, tiers), 5000);
  assert.equal(rateFor("a", "a", true, tiers), 10000);
  assert.equal(rateFor("b", "a", false, []), 0); // a bridge without tiers
});
