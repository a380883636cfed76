import assert from "node:assert/strict";
import { test } from "node:test";
import { ChannelState, seriesKey } from "../src/channel_state.js";
import { EPOCH, series, snapshot, update } from "./wire.js";

function seeded() {
  const state = new ChannelState("c/host");
  state.applySnapshot(
    snapshot({
      seq: 5,
      series: [series(1, "system_cpu_percent"), series(2, "system_cpu_percent", { cpu: "0" })],
      ids: [1, 2],
      numbers: [10, 20],
    }),
  );
  return state;
}

test("snapshot replaces the whole state and sets the position", () => {
  const state = seeded();
  state.applySnapshot(snapshot({ epoch: "7", seq: 9, series: [series(3, "x")], ids: [3], numbers: [1] }));
  assert.deepEqual(state.position, { epoch: "7", seq: 9 });
  assert.deepEqual(state.valuesByKey(), { x: 1 });
});

test("series ids resolve to names and labels", () => {
  const state = seeded();
  assert.deepEqual(state.valuesByKey(), {
    system_cpu_percent: 10,
    'system_cpu_percent{cpu="0"}': 20,
  });
  assert.equal(state.rows()[1].labels.cpu, "0");
});

test("update that follows is applied and advances seq", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ seq: 6, ids: [1], numbers: [11] })), "applied");
  assert.equal(state.seq, 6);
  assert.equal(state.valuesByKey().system_cpu_percent, 11);
  assert.equal(state.timeUnixMs, 1_700_000_006_000);
});

test("update declares added series and drops removed ones", () => {
  const state = seeded();
  const outcome = state.applyUpdate(
    update({ seq: 6, added: [series(3, "system_processes", {}, "1")], ids: [3], numbers: [42], removed: [2] }),
  );
  assert.equal(outcome, "applied");
  assert.deepEqual(state.valuesByKey(), { system_cpu_percent: 10, system_processes: 42 });
});

test("update with seq already applied is a duplicate and changes nothing", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ seq: 5, ids: [1], numbers: [99] })), "duplicate");
  assert.equal(state.valuesByKey().system_cpu_percent, 10);
});

test("update that skips a seq is a gap and changes nothing", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ seq: 7, ids: [1], numbers: [99] })), "gap");
  assert.equal(state.seq, 5);
  assert.equal(state.valuesByKey().system_cpu_percent, 10);
});

test("update of another epoch is a gap", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ epoch: "1", seq: 6 })), "gap");
});

test("update before any snapshot is a gap", () => {
  assert.equal(new ChannelState("c/h").applyUpdate(update({ seq: 1 })), "gap");
});

test("update naming an undeclared id is invalid and changes nothing", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ seq: 6, ids: [1, 77], numbers: [1, 2] })), "invalid");
  assert.equal(state.seq, 5);
});

test("update with ragged ids and numbers is invalid", () => {
  const state = seeded();
  assert.equal(state.applyUpdate(update({ seq: 6, ids: [1, 2], numbers: [1] })), "invalid");
});

test("state survives a JSON round trip and keeps applying updates", () => {
  const state = ChannelState.fromJSON(JSON.parse(JSON.stringify(seeded().toJSON())));
  assert.deepEqual(state.position, { epoch: EPOCH, seq: 5 });
  assert.equal(state.applyUpdate(update({ seq: 6, ids: [2], numbers: [21] })), "applied");
  assert.equal(state.valuesByKey()['system_cpu_percent{cpu="0"}'], 21);
});

test("series key sorts labels like Prometheus", () => {
  assert.equal(seriesKey("m", { b: "2", a: "1" }), 'm{a="1",b="2"}');
});

test("applied snapshots and merged updates marked with a reason are counted by it", () => {
  const state = seeded();
  assert.deepEqual([state.resyncs, state.lastResync], [{}, null], "an unmarked snapshot is no resync");
  state.applySnapshot(snapshot({ seq: 9, series: [series(1, "x")], ids: [1], numbers: [1] }), "stale");
  assert.equal(state.applyUpdate(update({ seq: 12, ids: [1], numbers: [2] }), 10, "stale"), "applied");
  state.applySnapshot(snapshot({ seq: 20, series: [series(1, "x")], ids: [1], numbers: [3] }), "overflow");
  assert.deepEqual(state.resyncs, { stale: 2, overflow: 1 });
  assert.equal(state.lastResync, "overflow");
  assert.deepEqual(state.valuesByKey(), { x: 3 });
});

test("a marked update that does not apply is not counted; unmarked snapshots keep the counts", () => {
  const state = seeded();
  state.applySnapshot(snapshot({ seq: 9, series: [series(1, "x")], ids: [1], numbers: [1] }), "stale");
  assert.equal(state.applyUpdate(update({ seq: 14, ids: [1], numbers: [2] }), 12, "stale"), "gap");
  assert.equal(state.applyUpdate(update({ seq: 9, ids: [1], numbers: [2] }), 7, "stale"), "duplicate");
  state.applySnapshot(snapshot({ seq: 14, series: [series(1, "x")], ids: [1], numbers: [2] }));
  assert.deepEqual([state.resyncs, state.lastResync], [{ stale: 1 }, "stale"]);
});
