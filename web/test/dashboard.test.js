import assert from "node:assert/strict";
import { test } from "node:test";
import { ChannelState } from "../src/channel_state.js";
import { badge } from "../src/dashboard/badge.js";
import { MAX_LINES, chartLines, chartedValues } from "../src/dashboard/charts.js";
import { formatValue } from "../src/dashboard/format.js";
import { series, snapshot } from "./wire.js";

/** @param {Partial<import("../src/client.js").ConnectionDetail>} c */
function conn(c) {
  return { state: "live", attempt: 0, retryAt: null, code: null, reason: "", ...c };
}

function host() {
  const state = new ChannelState("c/host");
  state.applySnapshot(
    snapshot({
      seq: 1,
      series: [
        series(1, "system_cpu_percent"),
        series(2, "system_cpu_percent", { cpu: "10" }),
        series(3, "system_cpu_percent", { cpu: "9" }),
        series(4, "system_memory_bytes", { state: "used" }, "By"),
        series(5, "system_network_io_bytes_per_second", { interface: "eth0", direction: "receive" }, "By/s"),
        series(6, "system_uptime_seconds", {}, "s"),
      ],
      ids: [1, 2, 3, 4, 5, 6],
      numbers: [50, 10, 9, 1024, 2048, 60],
    }),
  );
  return state;
}

test("host series land on their charts, cores in numeric order", () => {
  const lines = chartLines(host().series.values());
  assert.deepEqual(lines.get("cpu-total")?.map((l) => l.label), ["total"]);
  assert.deepEqual(lines.get("cpu-cores")?.map((l) => l.label), ["cpu 9", "cpu 10"]);
  assert.deepEqual(lines.get("memory")?.map((l) => l.label), ["used"]);
  assert.deepEqual(lines.get("network")?.map((l) => l.label), ["eth0 receive"]);
  assert.deepEqual(lines.get("disk"), []);
});

test("only charted series are recorded in the window", () => {
  assert.equal("system_uptime_seconds" in chartedValues(host()), false);
  assert.equal(chartedValues(host()).system_cpu_percent, 50);
});

test("a pushed gauge goes to the gauges chart, host series do not", () => {
  const state = new ChannelState("c/svc");
  state.applySnapshot(
    snapshot({
      series: [series(1, "queue_depth", { queue: "emails" }, "1"), series(2, "system_processes", {}, "1")],
      ids: [1, 2],
      numbers: [7, 90],
    }),
  );
  assert.deepEqual(chartLines(state.series.values()).get("gauges")?.map((l) => l.label), [
    'queue_depth{queue="emails"}',
  ]);
});

test("a chart draws at most MAX_LINES lines and only those are recorded", () => {
  const state = new ChannelState("c/svc");
  const many = Array.from({ length: MAX_LINES + 5 }, (_, i) => series(i + 1, "load", { i: String(i) }));
  state.applySnapshot(snapshot({ series: many, ids: many.map((s) => s.id), numbers: many.map(() => 1) }));
  assert.equal(chartLines(state.series.values()).get("gauges")?.length, MAX_LINES);
  assert.equal(Object.keys(chartedValues(state)).length, MAX_LINES);
});

test("badge says live when connected and upstream is live", () => {
  assert.equal(badge(conn({}), "live", 0).state, "live");
});

test("badge says upstream stale when the collector is unreachable", () => {
  assert.deepEqual(
    [badge(conn({}), "stale", 0).state, badge(conn({}), "stale", 0).text],
    ["stale", "upstream stale"],
  );
});

test("badge counts down to the next retry while reconnecting", () => {
  const b = badge(conn({ state: "reconnecting", retryAt: 10_000, attempt: 2 }), "live", 7_200);
  assert.deepEqual([b.state, b.text], ["reconnecting", "reconnecting in 3s"]);
});

test("badge says channel unknown when the bridge refused the channel", () => {
  assert.equal(badge(conn({}), "unknown", 0).text, "channel unknown");
});

test("a reconnect attempt in progress still reads reconnecting", () => {
  assert.equal(badge(conn({ state: "connecting", attempt: 3 }), "stale", 0).state, "reconnecting");
  assert.equal(badge(conn({ state: "connecting", attempt: 0 }), undefined, 0).state, "connecting");
});

test("values are formatted by unit", () => {
  assert.equal(formatValue(1536, "By"), "1.5 KiB");
  assert.equal(formatValue(2048, "By/s"), "2.0 KiB/s");
  assert.equal(formatValue(12.345, "%"), "12.3 %");
  assert.equal(formatValue(7200, "s"), "2h 0m");
  assert.equal(formatValue(1234, "1"), "1,234");
  assert.equal(formatValue(null, "%"), "–");
});

test("replicas are one line each, labelled by instance, without the resource labels", () => {
  const state = new ChannelState("c/checkout");
  const scope = { otel_scope_name: "shop", service_version: "1.2" };
  state.applySnapshot(
    snapshot({
      series: [
        series(1, "inflight", { instance: "pod-b", ...scope }, "1"),
        series(2, "inflight", { instance: "pod-a", ...scope }, "1"),
        series(3, "queue_depth", { queue: "emails", instance: "pod-a" }, "1"),
      ],
      ids: [1, 2, 3],
      numbers: [222, 111, 4],
    }),
  );
  assert.deepEqual(chartLines(state.series.values()).get("gauges")?.map((l) => l.label), [
    "inflight · pod-a",
    "inflight · pod-b",
    'queue_depth{queue="emails"} · pod-a',
  ]);
});

test("UCUM units from OTLP are formatted", () => {
  assert.equal(formatValue(250, "ms"), "250 ms");
  assert.equal(formatValue(1500, "ms"), "1.50 s");
  assert.equal(formatValue(0.5, "s"), "0.50 s");
  assert.equal(formatValue(2, "KiBy"), "2.0 KiB");
  assert.equal(formatValue(3, "1/s"), "3/s");
  assert.equal(formatValue(2048, "By/s"), "2.0 KiB/s");
  assert.equal(formatValue(90, "min"), "1h 30m");
  assert.equal(formatValue(7, "{request}"), "7 {request}");
});
