// The JS client against the shared conformance fixtures (conformance/*.json).
//
// Each fixture is a scenario written once for every client (conformance/README.md
// describes the format); tests/bridge/test_conformance.py runs the same files
// through the Python client. Here the steps drive BridgeSession (the protocol
// rules without sockets or clocks) and closeAction (the close-code rule), exactly
// as MetricsBridgeClient calls them.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";
import { fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { closeAction } from "../src/close_codes.js";
import { ClientMessageSchema, ServerMessageSchema } from "../src/gen/metrics_bridge/v1/bridge_pb.js";
import { BridgeSession } from "../src/session.js";

const FIXTURES = new URL("../../conformance/", import.meta.url);
const ACTIONS = [
  "open",
  "receive",
  "receiveBytes",
  "tick",
  "close",
  "subscribe",
  "unsubscribe",
  "refresh",
  "rate",
];

/** @param {any} step */
function actionOf(step) {
  const actions = ACTIONS.filter((a) => a in step);
  assert.equal(actions.length, 1, `one action per step: ${JSON.stringify(step)}`);
  return actions[0];
}

/** @param {Uint8Array[]} frames */
function sent(frames) {
  return frames.map((f) => toJson(ClientMessageSchema, fromBinary(ClientMessageSchema, f)));
}

/** @param {any[]} messages expected ClientMessages, normalized as toJson writes them */
function normalized(messages) {
  return messages.map((m) => toJson(ClientMessageSchema, fromJson(ClientMessageSchema, m)));
}

/** @param {string} hex */
function bytesOf(hex) {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/**
 * @param {BridgeSession} session
 * @param {string} channel
 */
function channelState(session, channel) {
  const state = session.states.get(channel);
  const upstream = session.upstream.get(channel);
  return {
    position: state?.position ?? null,
    values: state ? state.valuesByKey() : {},
    upstream: upstream === undefined || upstream === "unspecified" ? null : upstream,
    resyncs: state ? { ...state.resyncs } : {},
    lastResync: state?.lastResync ?? null,
  };
}

/**
 * Does one step; returns what the client did, in the fixture's terms.
 * @param {BridgeSession} session
 * @param {any} step
 * @param {number} now
 */
function runStep(session, step, now) {
  const action = actionOf(step);
  if (action === "close") {
    session.closed();
    return { reconnect: closeAction(step.close) === "reconnect" };
  }
  let out;
  if (action === "open") out = session.opened(now);
  else if (action === "receive") {
    const message = fromJson(ServerMessageSchema, step.receive);
    out = session.receive(toBinary(ServerMessageSchema, message), now);
  } else if (action === "receiveBytes") out = session.receive(bytesOf(step.receiveBytes), now);
  else if (action === "tick") out = session.tick(now);
  else if (action === "subscribe") out = session.subscribe(step.subscribe);
  else if (action === "refresh") out = session.refresh(step.refresh);
  else if (action === "rate") out = session.setRate(step.rate.channels, step.rate.minIntervalMs ?? 0);
  else out = session.unsubscribe(step.unsubscribe);
  return { send: sent(out.send), drop: out.close !== null };
}

const files = readdirSync(FIXTURES)
  .filter((name) => name.endsWith(".json"))
  .sort();

test("the fixtures are there", () => assert.ok(files.length > 0, "no conformance fixtures"));

for (const name of files) {
  test(`JS client follows the written rules: ${name.replace(/\.json$/, "")}`, () => {
    const fixture = JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));
    const session = new BridgeSession({
      channels: fixture.channels,
      token: fixture.token,
      history: fixture.options?.history ?? false,
      minIntervalMs: fixture.options?.minIntervalMs ?? 0,
    });
    let at = 0;
    fixture.steps.forEach((/** @type {any} */ step, /** @type {number} */ index) => {
      at = step.at ?? at;
      const expect = step.expect ?? {};
      const where = `${name} step ${index + 1} (${step.note ?? actionOf(step)})`;
      const did = runStep(session, step, at);
      if ("reconnect" in did) {
        assert.equal(did.reconnect, expect.reconnect, where);
        return;
      }
      assert.deepEqual(did.send, normalized(expect.send ?? []), where);
      assert.equal(did.drop, expect.drop ?? false, where);
      for (const [channel, wanted] of Object.entries(expect.channels ?? {})) {
        const state = /** @type {Record<string, unknown>} */ (channelState(session, channel));
        const picked = Object.fromEntries(Object.keys(wanted).map((k) => [k, state[k]]));
        assert.deepEqual(picked, wanted, `${where}: ${channel}`);
      }
    });
  });
}
