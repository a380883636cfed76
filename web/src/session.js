/**
 * The client side of the metrics-bridge.v1 wire, without sockets or clocks.
 *
 * A `BridgeSession` is fed what happens to a connection (`opened`, `receive`,
 * `tick`, `closed`, each with `now` in ms) and answers with an `Output`: the
 * frames to send, the events to report and, when the link must go, a close.
 * The WebSocket glue in client.js only carries bytes and runs timers.
 *
 * Rules (docs/protocol.md, "Client rules"; conformance/*.json are the same
 * rules as data, and web/test/conformance.test.js runs them):
 * - Channel states (ChannelState) and the set of wanted channels outlive a
 *   connection; everything else is per connection.
 * - With a `token`, Connect{token} is the first frame of every connection,
 *   sent by `opened` (a bridge with --auth jwt greets only after it; one
 *   without ignores it). `refresh(token)` replaces the token: sent as
 *   Refresh{token} once greeted, else kept for the next connection.
 * - Nothing else is sent before Hello. A Hello must name metrics-bridge.v1 and a
 *   heartbeat interval above 0, else the output asks to close (the glue
 *   reconnects with backoff). On Hello every wanted channel is subscribed in
 *   one Subscribe, resuming from its state's position when it has one.
 * - Per channel and connection: "pending" (Subscribe sent) → Subscribed
 *   recovered → "live", or not recovered → "awaiting-snapshot" → Snapshot →
 *   "live". A Snapshot replaces the state in any phase. Frames for a channel
 *   not subscribed on this connection are ignored.
 * - Live: an Update that does not follow the state (a gap) resubscribes the
 *   channel resuming from its position; an Update that breaks the schema
 *   (undeclared ids, ragged values) resubscribes without resume, for a fresh
 *   Snapshot. Outside "live" such Updates are dropped: the answer to our
 *   Subscribe is on its way. Resubscribes found while handling one frame go
 *   out in one Subscribe.
 * - Heartbeats list each channel's position at the bridge. A position ahead
 *   of a live state (or of another epoch) is a suspicion; if the state has
 *   still not reached it at the next heartbeat, updates were missed: the
 *   channel is resubscribed with resume.
 * - The link is dead when nothing arrived for `deadLinkFactor` (2.5) heartbeat
 *   intervals, or for `connectTimeoutMs` before Hello: the output asks to close.
 * - History and rate (`history`, `minIntervalMs`, per channel) go with every
 *   Subscribe of the channel. A merged update (`firstSeq`, from a rate tier)
 *   applies when the state is at firstSeq - 1. `setRate` resubscribes a
 *   subscribed channel resuming from its state: no snapshot.
 * - A frame that does not decode breaks the wire: the output asks to close
 *   (the glue reconnects and resumes).
 * - Status REMOVED ends the subscription at the bridge and Error
 *   unknown_channel refuses one. Either way the channel stays wanted and keeps
 *   its state, and is subscribed again (resuming) once a Catalog lists it, and
 *   on the next connection. `unknown` holds the channels last refused as
 *   unknown.
 * - Any other Error naming a channel (too many subscriptions, bad request, a
 *   code this client does not know) drops it from the wanted set: asking again
 *   would get the same answer.
 * - A Snapshot or merged Update marked with a resync reason (the bridge or
 *   collector replaced stale or overflowing updates with it) applies like any
 *   other; the mark is only told: in the data event (`resync`) and in the
 *   state's counts (ChannelState `resyncs`, `lastResync`).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ClientMessageSchema, ServerMessageSchema } from "./gen/metrics_bridge/v1/bridge_pb.js";
import { ChannelState } from "./channel_state.js";

export const SUBPROTOCOL = "metrics-bridge.v1";

/** @typedef {import("./channel_state.js").Position} Position */
/** @typedef {"unspecified" | "live" | "stale" | "removed"} UpstreamState */
/** @typedef {"unspecified" | "host" | "push" | "otlp"} SourceKindName */
/** @typedef {"pending" | "awaiting-snapshot" | "live"} Phase */
/**
 * Why the bridge sent a Snapshot or merged Update in place of updates
 * (ServerMessage.resync): "stale", "overflow", or the number of a reason this
 * client does not know; null on an unmarked frame.
 * @typedef {"stale" | "overflow" | string} ResyncReason
 */

/**
 * @typedef {object} ChannelInfo
 * @property {string} channel
 * @property {string} collector
 * @property {string} source
 * @property {SourceKindName} kind
 * @property {Position | null} position
 * @property {number} seriesCount
 * @property {UpstreamState} state
 */

/**
 * @typedef {{type: "hello", sessionId: string, serverVersion: string, heartbeatIntervalMs: number,
 *            limits: {maxMessageBytes: number, maxSubscriptions: number, resumeWindow: number,
 *                     maxClientMessagesPerSecond: number, historyWindow: number,
 *                     rateTiersMs: number[]}}
 *   | {type: "catalog", channels: ChannelInfo[]}
 *   | {type: "subscribed", channel: string, recovered: boolean, position: Position | null,
 *      history: boolean, intervalMs: number}
 *   | {type: "data", channel: string, kind: "snapshot" | "update", state: ChannelState,
 *      seq: number, timeUnixMs: number, resync: ResyncReason | null}
 *   | {type: "upstream", channel: string, state: UpstreamState, detail: string}
 *   | {type: "resync", channel: string, reason: "gap" | "invalid" | "heartbeat", resume: Position | null}
 *   | {type: "heartbeat", serverTimeMs: number}
 *   | {type: "error", channel: string, code: string, message: string}
 * } SessionEvent
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {boolean} history ask for the bridge's held history on a fresh subscription
 * @property {number} minIntervalMs at most one (merged) update per this many ms; 0: every update
 */

/**
 * @typedef {object} Output
 * @property {Uint8Array[]} send frames to send, in order
 * @property {SessionEvent[]} events what to report, in order
 * @property {{reason: string} | null} close set when the connection must be dropped
 */

const UPSTREAM = /** @type {const} */ (["unspecified", "live", "stale", "removed"]);
const SOURCE_KINDS = /** @type {const} */ (["unspecified", "host", "push", "otlp"]);
const ERROR_CODES = ["unspecified", "unknown_channel", "too_many_subscriptions", "bad_request"];
const RESYNC_REASONS = ["unspecified", "stale", "overflow"];

/**
 * @param {number} value ServerMessage.resync
 * @returns {ResyncReason | null}
 */
function resyncReason(value) {
  return value ? (RESYNC_REASONS[value] ?? String(value)) : null;
}

/**
 * @param {{epoch: string, seq: bigint} | undefined} p
 * @returns {Position | null}
 */
function position(p) {
  return p ? { epoch: p.epoch, seq: Number(p.seq) } : null;
}

/** @returns {Output} */
function output() {
  return { send: [], events: [], close: null };
}

export class BridgeSession {
  /**
   * @param {object} [options]
   * @param {Iterable<string>} [options.channels] channels to subscribe on every connection
   * @param {Iterable<ChannelState>} [options.states] saved states to resume from
   * @param {number} [options.deadLinkFactor] silence, in heartbeat intervals, that means a dead link
   * @param {number} [options.connectTimeoutMs] silence before Hello that means a dead link
   * @param {string | null} [options.token] sent as Connect{token} when a connection opens
   * @param {boolean} [options.history] ask every channel's history on subscribe
   * @param {number} [options.minIntervalMs] ask every channel for at most one update per this
   */
  constructor({
    channels = [],
    states = [],
    deadLinkFactor = 2.5,
    connectTimeoutMs = 10_000,
    token = null,
    history = false,
    minIntervalMs = 0,
  } = {}) {
    /** @type {string | null} */
    this.token = token;
    /** @type {SubscribeOptions} defaults for channels without their own */
    this.defaults = { history, minIntervalMs };
    /** @type {Map<string, SubscribeOptions>} */
    this.options = new Map();
    /** @type {Set<string>} */
    this.wanted = new Set(channels);
    /** @type {Map<string, ChannelState>} */
    this.states = new Map();
    for (const state of states) this.states.set(state.channel, state);
    /** @type {Map<string, UpstreamState>} */
    this.upstream = new Map();
    /** @type {Set<string>} refused as unknown; subscribed again when a Catalog lists them */
    this.unknown = new Set();
    this.deadLinkFactor = deadLinkFactor;
    this.connectTimeoutMs = connectTimeoutMs;
    this.open = false;
    // Per connection, reset by #reset:
    /** @type {number | null} heartbeat interval from Hello; null before Hello */
    this.heartbeatIntervalMs = null;
    this.lastReceivedAt = 0;
    /** @type {Map<string, Phase>} channels subscribed on this connection */
    this.phases = new Map();
    /** @type {Map<string, Position>} positions a heartbeat showed ahead of a live state */
    this.suspects = new Map();
  }

  /** @param {number} now */
  #reset(now) {
    this.heartbeatIntervalMs = null;
    this.lastReceivedAt = now;
    this.phases = new Map();
    this.suspects = new Map();
  }

  /**
   * @param {number} now
   * @returns {Output}
   */
  opened(now) {
    this.#reset(now);
    this.open = true;
    const out = output();
    if (this.token) {
      const msg = create(ClientMessageSchema, {
        body: { case: "connect", value: { token: this.token } },
      });
      out.send.push(toBinary(ClientMessageSchema, msg));
    }
    return out;
  }

  /**
   * A new token: sent in-band (Refresh) once greeted, else used by the next connection.
   * @param {string} token
   * @returns {Output}
   */
  refresh(token) {
    this.token = token;
    const out = output();
    if (this.open && this.heartbeatIntervalMs !== null) {
      const msg = create(ClientMessageSchema, { body: { case: "refresh", value: { token } } });
      out.send.push(toBinary(ClientMessageSchema, msg));
    }
    return out;
  }

  closed() {
    this.open = false;
    this.#reset(this.lastReceivedAt);
  }

  /**
   * Silence after which the link counts as dead, in ms.
   * @returns {number}
   */
  get deadAfterMs() {
    return this.heartbeatIntervalMs === null
      ? this.connectTimeoutMs
      : this.heartbeatIntervalMs * this.deadLinkFactor;
  }

  /**
   * @param {number} now
   * @returns {Output}
   */
  tick(now) {
    const out = output();
    if (this.open && now - this.lastReceivedAt >= this.deadAfterMs) {
      const silent = ((now - this.lastReceivedAt) / 1000).toFixed(1);
      out.close = { reason: `dead link: nothing received for ${silent}s` };
    }
    return out;
  }

  /**
   * Adds channels to the wanted set and subscribes those not yet subscribed.
   * @param {Iterable<string>} channels
   * @param {Partial<SubscribeOptions>} [options] history and rate of these channels
   * @returns {Output}
   */
  subscribe(channels, options = {}) {
    const out = output();
    const fresh = [];
    for (const channel of channels) {
      this.wanted.add(channel);
      if (options.history !== undefined || options.minIntervalMs !== undefined) {
        this.options.set(channel, { ...this.optionsOf(channel), ...options });
      }
      if (!this.phases.has(channel)) fresh.push(channel);
    }
    if (this.heartbeatIntervalMs !== null) this.#sendSubscribe(out, fresh, new Set());
    return out;
  }

  /**
   * The history and rate a channel is subscribed with.
   * @param {string} channel
   * @returns {SubscribeOptions}
   */
  optionsOf(channel) {
    return this.options.get(channel) ?? this.defaults;
  }

  /**
   * A new rate for these channels: those subscribed on this connection
   * resubscribe resuming from their state, so no snapshot is needed.
   * @param {Iterable<string>} channels
   * @param {number} minIntervalMs 0: every update
   * @returns {Output}
   */
  setRate(channels, minIntervalMs) {
    const out = output();
    const again = [];
    for (const channel of channels) {
      if (!this.wanted.has(channel)) continue;
      this.options.set(channel, { ...this.optionsOf(channel), minIntervalMs });
      if (this.phases.has(channel)) again.push(channel);
    }
    if (this.heartbeatIntervalMs !== null) this.#sendSubscribe(out, again, new Set());
    return out;
  }

  /**
   * Drops channels from the wanted set (their states are forgotten).
   * @param {Iterable<string>} channels
   * @returns {Output}
   */
  unsubscribe(channels) {
    const out = output();
    const gone = [];
    for (const channel of channels) {
      if (!this.wanted.delete(channel)) continue;
      gone.push(channel);
      this.unknown.delete(channel);
      this.options.delete(channel);
      this.states.delete(channel);
      this.phases.delete(channel);
      this.suspects.delete(channel);
    }
    if (gone.length > 0 && this.heartbeatIntervalMs !== null) {
      const msg = create(ClientMessageSchema, {
        body: { case: "unsubscribe", value: { channels: gone } },
      });
      out.send.push(toBinary(ClientMessageSchema, msg));
    }
    return out;
  }

  /**
   * @param {Uint8Array | string} data one WebSocket message
   * @param {number} now
   * @returns {Output}
   */
  receive(data, now) {
    const out = output();
    this.lastReceivedAt = now;
    if (typeof data === "string") {
      out.close = { reason: "protocol violation: text frame" };
      return out;
    }
    let msg;
    try {
      msg = fromBinary(ServerMessageSchema, data);
    } catch (err) {
      out.close = { reason: `protocol violation: undecodable frame (${String(err)})` };
      return out;
    }
    /** @type {string[]} */
    const resume = [];
    /** @type {Set<string>} */
    const fresh = new Set();
    const channel = msg.channel;
    const body = msg.body;
    switch (body.case) {
      case "hello": {
        const h = body.value;
        if (h.protocol !== SUBPROTOCOL) {
          out.close = { reason: `bridge speaks ${h.protocol || "no protocol"}, not ${SUBPROTOCOL}` };
          return out;
        }
        if (!(h.heartbeatIntervalMs > 0)) {
          out.close = { reason: "protocol violation: Hello without a heartbeat interval" };
          return out;
        }
        this.heartbeatIntervalMs = h.heartbeatIntervalMs;
        const limits = h.limits;
        out.events.push({
          type: "hello",
          sessionId: h.sessionId,
          serverVersion: h.serverVersion,
          heartbeatIntervalMs: this.heartbeatIntervalMs,
          limits: {
            maxMessageBytes: limits?.maxMessageBytes ?? 0,
            maxSubscriptions: limits?.maxSubscriptions ?? 0,
            resumeWindow: limits?.resumeWindow ?? 0,
            maxClientMessagesPerSecond: limits?.maxClientMessagesPerSecond ?? 0,
            historyWindow: limits?.historyWindow ?? 0,
            rateTiersMs: [...(limits?.rateTiersMs ?? [])],
          },
        });
        resume.push(...this.wanted);
        break;
      }
      case "catalog": {
        const channels = body.value.channels.map((c) => ({
          channel: c.channel,
          collector: c.collector,
          source: c.source,
          kind: SOURCE_KINDS[c.kind] ?? "unspecified",
          position: position(c.position),
          seriesCount: c.seriesCount,
          state: UPSTREAM[c.state] ?? "unspecified",
        }));
        out.events.push({ type: "catalog", channels });
        for (const c of channels) {
          this.#setUpstream(out, c.channel, c.state, "");
          if (this.heartbeatIntervalMs !== null && this.wanted.has(c.channel)) {
            if (!this.phases.has(c.channel)) resume.push(c.channel);
          }
        }
        break;
      }
      case "subscribed": {
        if (!this.phases.has(channel)) break;
        this.unknown.delete(channel);
        const recovered = body.value.recovered && this.states.get(channel)?.position != null;
        this.phases.set(channel, recovered ? "live" : "awaiting-snapshot");
        out.events.push({
          type: "subscribed",
          channel,
          recovered: body.value.recovered,
          position: position(body.value.position),
          history: body.value.history,
          intervalMs: body.value.intervalMs,
        });
        break;
      }
      case "snapshot": {
        if (!this.phases.has(channel)) break;
        let state = this.states.get(channel);
        if (!state) {
          state = new ChannelState(channel);
          this.states.set(channel, state);
        }
        const resync = resyncReason(msg.resync);
        state.applySnapshot(body.value, resync);
        this.phases.set(channel, "live");
        this.suspects.delete(channel);
        out.events.push({
          type: "data",
          channel,
          kind: "snapshot",
          state,
          seq: state.seq,
          timeUnixMs: state.timeUnixMs,
          resync,
        });
        break;
      }
      case "update": {
        const phase = this.phases.get(channel);
        const state = this.states.get(channel);
        if (phase === undefined || phase === "awaiting-snapshot" || !state) break;
        const resync = resyncReason(msg.resync);
        const outcome = state.applyUpdate(body.value, Number(msg.firstSeq), resync);
        if (outcome === "applied") {
          out.events.push({
            type: "data",
            channel,
            kind: "update",
            state,
            seq: state.seq,
            timeUnixMs: state.timeUnixMs,
            resync,
          });
        } else if (outcome === "gap" && phase === "live") {
          out.events.push({ type: "resync", channel, reason: "gap", resume: state.position });
          resume.push(channel);
        } else if (outcome === "invalid" && phase === "live") {
          out.events.push({ type: "resync", channel, reason: "invalid", resume: null });
          fresh.add(channel);
        }
        break;
      }
      case "heartbeat": {
        const suspects = this.suspects;
        this.suspects = new Map();
        for (const [c, claimed] of suspects) {
          if (this.phases.get(c) !== "live") continue;
          const mine = this.states.get(c)?.position ?? null;
          if (isBehind(mine, claimed)) {
            out.events.push({ type: "resync", channel: c, reason: "heartbeat", resume: mine });
            resume.push(c);
            this.phases.set(c, "pending");
          }
        }
        for (const cp of body.value.positions) {
          const claimed = position(cp.position);
          if (!claimed || this.phases.get(cp.channel) !== "live") continue;
          if (isBehind(this.states.get(cp.channel)?.position ?? null, claimed)) {
            this.suspects.set(cp.channel, claimed);
          }
        }
        out.events.push({ type: "heartbeat", serverTimeMs: Number(body.value.serverTimeMs) });
        break;
      }
      case "status": {
        if (!this.phases.has(channel)) break;
        const state = UPSTREAM[body.value.state] ?? "unspecified";
        this.#setUpstream(out, channel, state, body.value.detail, true);
        if (state === "removed") this.#endSubscription(channel);
        break;
      }
      case "error": {
        const code = ERROR_CODES[body.value.code] ?? String(body.value.code);
        out.events.push({ type: "error", channel, code, message: body.value.message });
        if (channel) {
          this.#endSubscription(channel);
          if (code === "unknown_channel") this.unknown.add(channel);
          else this.wanted.delete(channel);
        }
        break;
      }
      default:
        break;
    }
    this.#sendSubscribe(out, resume, fresh);
    return out;
  }

  /**
   * The bridge no longer serves the channel on this connection; its state is kept.
   * @param {string} channel
   */
  #endSubscription(channel) {
    this.phases.delete(channel);
    this.suspects.delete(channel);
  }

  /**
   * @param {Output} out
   * @param {string} channel
   * @param {UpstreamState} state
   * @param {string} detail
   * @param {boolean} [always] report even when unchanged (a Status message)
   */
  #setUpstream(out, channel, state, detail, always = false) {
    if (!always && this.upstream.get(channel) === state) return;
    this.upstream.set(channel, state);
    out.events.push({ type: "upstream", channel, state, detail });
  }

  /**
   * One Subscribe for `resume` (from their positions) and `fresh` (no resume).
   * @param {Output} out
   * @param {string[]} resume
   * @param {Set<string>} fresh
   */
  #sendSubscribe(out, resume, fresh) {
    const requests = [];
    for (const channel of new Set([...resume, ...fresh])) {
      if (!this.wanted.has(channel)) continue;
      const p = fresh.has(channel) ? null : (this.states.get(channel)?.position ?? null);
      const { history, minIntervalMs } = this.optionsOf(channel);
      requests.push({
        channel,
        resume: p ? { epoch: p.epoch, seq: BigInt(p.seq) } : undefined,
        history,
        minIntervalMs,
      });
      this.phases.set(channel, "pending");
      this.suspects.delete(channel);
    }
    if (requests.length === 0) return;
    const msg = create(ClientMessageSchema, {
      body: { case: "subscribe", value: { channels: requests } },
    });
    out.send.push(toBinary(ClientMessageSchema, msg));
  }
}

/**
 * Whether a heartbeat's position shows updates a state has not applied.
 * @param {Position | null} mine
 * @param {Position} claimed
 * @returns {boolean}
 */
function isBehind(mine, claimed) {
  return mine === null || mine.epoch !== claimed.epoch || mine.seq < claimed.seq;
}
