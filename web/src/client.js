/**
 * metrics-bridge browser client: an ES module with no framework.
 *
 * ```js
 * import { MetricsBridgeClient } from "./client.js";
 *
 * const client = new MetricsBridgeClient("ws://127.0.0.1:8765/", { channels: ["myhost/myhost"] });
 * client.addEventListener("connection", (e) => console.log(e.detail.state, e.detail.retryAt));
 * client.addEventListener("data", (e) => {
 *   const { channel, state } = e.detail;           // state: ChannelState
 *   console.log(channel, state.seq, state.valuesByKey()["system_cpu_percent"]);
 * });
 * client.addEventListener("upstream", (e) => console.log(e.detail.channel, e.detail.state));
 * client.connect();
 * ```
 *
 * Events (CustomEvent, payload in `detail`):
 * - `connection` {state: "connecting" | "live" | "reconnecting" | "closed", attempt,
 *   retryAt (ms since epoch, when reconnecting), code, reason}: "live" once Hello arrived;
 *   "closed" after `close()` or a close code that says do not retry.
 * - `catalog` {channels: ChannelInfo[]}: the bridge's channels, on connect and on change.
 * - `data` {channel, kind: "snapshot" | "update", state: ChannelState, seq, timeUnixMs, resync}:
 *   a channel's state changed; series ids are resolved (state.rows(), state.valuesByKey()).
 *   `resync` ("stale" | "overflow" | null) says why the bridge sent this snapshot or merged
 *   update in place of updates; state.resyncs counts them by reason, state.lastResync.
 * - `upstream` {channel, state: "live" | "stale" | "removed", detail}: the collector side.
 * - `subscribed`, `resync` (a gap was found and the channel resubscribed), `hello`,
 *   `heartbeat`, `error` {channel, code, message}: see session.js.
 *
 * Reconnects use exponential backoff with full jitter (backoff.js) and resume each channel
 * from its last (epoch, seq); silence for 2.5 heartbeat intervals counts as a dead link.
 * Node 20 has no global WebSocket: pass one (e.g. the `ws` package) as `options.WebSocket`.
 *
 * Tokens (a bridge run with `--auth jwt`): `options.token` is a string or a function
 * returning one (or a Promise of one). A function is called before every connection,
 * and again before the token's exp (token.js) to send Refresh{token} without
 * reconnecting; the token goes out as Connect{token} as soon as the socket opens,
 * never in the URL. A failing token function counts as a failed connect (backoff).
 */

import { Backoff } from "./backoff.js";
import { ChannelState } from "./channel_state.js";
import { TOKEN_EXPIRED, closeAction } from "./close_codes.js";
import { BridgeSession, SUBPROTOCOL } from "./session.js";
import { refreshDelayMs } from "./token.js";

export { Backoff } from "./backoff.js";
export { ChannelState, seriesKey } from "./channel_state.js";
export { closeAction } from "./close_codes.js";
export { BridgeSession, SUBPROTOCOL } from "./session.js";
export { refreshDelayMs, tokenExpiryMs } from "./token.js";

/** @typedef {"idle" | "connecting" | "live" | "reconnecting" | "closed"} ConnectionState */

/**
 * @typedef {object} ConnectionDetail
 * @property {ConnectionState} state
 * @property {number} attempt reconnect attempts since the last Hello
 * @property {number | null} retryAt when the next attempt starts (ms since epoch)
 * @property {number | null} code close code of the last connection, if any
 * @property {string} reason why the last connection ended, if it did
 */

/**
 * @typedef {object} ClientOptions
 * @property {Iterable<string>} [channels] channels to follow
 * @property {Iterable<import("./channel_state.js").ChannelState>} [states] saved states to resume
 * @property {typeof WebSocket} [WebSocket] constructor (default: globalThis.WebSocket)
 * @property {ConstructorParameters<typeof Backoff>[0]} [backoff] backoff options
 * @property {number} [deadLinkFactor] heartbeat intervals of silence meaning a dead link (2.5)
 * @property {number} [connectTimeoutMs] time allowed from connect to Hello (10000)
 * @property {number} [tickMs] how often the dead-link check runs (250)
 * @property {() => number} [now] clock in ms (default Date.now)
 * @property {string | (() => string | Promise<string>)} [token] sent as Connect{token}
 * @property {boolean} [history] ask every channel's held history on subscribe
 * @property {number} [minIntervalMs] at most one (merged) update per this many ms (0: every one)
 */

export class MetricsBridgeClient extends EventTarget {
  /**
   * @param {string} url ws:// or wss:// address of the bridge
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new TypeError("no WebSocket: pass options.WebSocket (e.g. the ws package)");
    this.WebSocket = WS;
    this.now = options.now ?? Date.now;
    this.tickMs = options.tickMs ?? 250;
    this.backoff = new Backoff(options.backoff);
    this.session = new BridgeSession({
      channels: options.channels,
      states: options.states,
      deadLinkFactor: options.deadLinkFactor,
      connectTimeoutMs: options.connectTimeoutMs,
      history: options.history,
      minIntervalMs: options.minIntervalMs,
    });
    /** @type {ConnectionDetail} */
    this.connection = { state: "idle", attempt: 0, retryAt: null, code: null, reason: "" };
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.tickTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.refreshTimer = null;
    this.tokenSource = options.token ?? null;
    if (typeof this.tokenSource === "string") this.session.token = this.tokenSource;
    // Bumped on every open and close, so a token that arrives late opens nothing.
    this.generation = 0;
  }

  /** Opens the connection; from then on the client reconnects by itself until close(). */
  connect() {
    if (this.connection.state !== "idle" && this.connection.state !== "closed") return;
    this.backoff.reset();
    this.#open();
  }

  /**
   * Follows more channels (sent now if connected, else on the next Hello).
   * @param {Iterable<string>} channels
   * @param {Partial<import("./session.js").SubscribeOptions>} [options] history and rate
   */
  subscribe(channels, options) {
    this.#apply(this.session.subscribe(channels, options));
  }

  /**
   * At most one (merged) update per `minIntervalMs` for these channels (0: every
   * update); subscribed channels resume at the new rate without a snapshot.
   * @param {Iterable<string>} channels
   * @param {number} minIntervalMs
   */
  setRate(channels, minIntervalMs) {
    this.#apply(this.session.setRate(channels, minIntervalMs));
  }

  /**
   * Stops following channels and forgets their state.
   * @param {Iterable<string>} channels
   */
  unsubscribe(channels) {
    this.#apply(this.session.unsubscribe(channels));
  }

  /**
   * @param {string} channel
   * @returns {ChannelState | undefined} the channel's current state
   */
  channel(channel) {
    return this.session.states.get(channel);
  }

  /** Closes the connection for good (no reconnect). */
  close() {
    this.generation += 1;
    this.#clearTimers();
    this.#drop(1000, "client closed");
    this.#setConnection({ state: "closed", retryAt: null, reason: "client closed" });
  }

  #open() {
    this.#clearTimers();
    this.#setConnection({ state: "connecting", retryAt: null });
    const generation = ++this.generation;
    const source = this.tokenSource;
    if (typeof source !== "function") {
      this.#openSocket();
      return;
    }
    Promise.resolve()
      .then(() => source())
      .then(
        (token) => {
          if (generation !== this.generation) return;
          this.session.token = token;
          this.#openSocket();
        },
        (err) => {
          if (generation === this.generation) this.#lost(null, `no token: ${String(err)}`);
        },
      );
  }

  /** Replaces the token in-band before its exp; only a token function can. */
  #scheduleRefresh() {
    const source = this.tokenSource;
    const token = this.session.token;
    if (typeof source !== "function" || !token) return;
    const delay = refreshDelayMs(token, this.now());
    if (delay === null) return;
    const socket = this.socket;
    // At least 1 s apart, so a source that keeps returning a token near its exp cannot spin.
    this.refreshTimer = setTimeout(async () => {
      let fresh;
      try {
        fresh = await source();
      } catch {
        fresh = null;
      }
      if (this.socket !== socket) return;
      if (fresh) this.#apply(this.session.refresh(fresh));
      this.#scheduleRefresh();
    }, Math.max(1000, delay));
  }

  #openSocket() {
    let socket;
    try {
      socket = new this.WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.#lost(null, `cannot connect: ${String(err)}`);
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    // Connect{token}, if any, can only leave once the socket is open.
    const opening = this.session.opened(this.now());
    this.#apply({ ...opening, send: [] });
    socket.onopen = () => {
      if (this.socket === socket) this.#apply({ ...opening, events: [] });
    };
    socket.onmessage = (event) => {
      const data = typeof event.data === "string" ? event.data : new Uint8Array(event.data);
      const wasLive = this.session.heartbeatIntervalMs !== null;
      this.#apply(this.session.receive(data, this.now()));
      if (!wasLive && this.session.heartbeatIntervalMs !== null && this.socket === socket) {
        this.backoff.reset();
        this.#setConnection({ state: "live", attempt: 0, retryAt: null, code: null, reason: "" });
        this.#scheduleRefresh();
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.session.closed();
      const reason = event.reason || `closed with ${event.code}`;
      // After 4001 a fixed token would only be refused again: only a function renews it.
      const expiredForGood = event.code === TOKEN_EXPIRED && typeof this.tokenSource === "string";
      if (closeAction(event.code) === "stop" || expiredForGood) {
        this.#clearTimers();
        this.#setConnection({ state: "closed", retryAt: null, code: event.code, reason });
      } else {
        this.#lost(event.code, reason);
      }
    };
    socket.onerror = () => {
      // A close event always follows; it carries the code.
    };
    this.tickTimer = setInterval(() => this.#apply(this.session.tick(this.now())), this.tickMs);
  }

  /**
   * @param {number | null} code
   * @param {string} reason
   */
  #lost(code, reason) {
    this.#clearTimers();
    const delay = this.backoff.next();
    this.#setConnection({
      state: "reconnecting",
      attempt: this.backoff.attempt,
      retryAt: this.now() + delay,
      code,
      reason,
    });
    this.retryTimer = setTimeout(() => this.#open(), delay);
  }

  /**
   * Detaches and closes the socket without waiting for its close handshake.
   * @param {number} code
   * @param {string} reason
   */
  #drop(code, reason) {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    this.session.closed();
    try {
      socket.close(code, reason.slice(0, 100));
    } catch {
      // Already closing.
    }
  }

  /** @param {import("./session.js").Output} out */
  #apply(out) {
    const socket = this.socket;
    if (socket && socket.readyState === 1) {
      for (const frame of out.send) socket.send(frame);
    }
    for (const event of out.events) {
      const { type, ...detail } = event;
      this.dispatchEvent(new CustomEvent(type, { detail: { ...detail } }));
    }
    if (out.close && socket && this.socket === socket) {
      this.#drop(1000, out.close.reason);
      this.#lost(null, out.close.reason);
    }
  }

  /** @param {Partial<ConnectionDetail>} change */
  #setConnection(change) {
    this.connection = { ...this.connection, ...change };
    this.dispatchEvent(new CustomEvent("connection", { detail: { ...this.connection } }));
  }

  #clearTimers() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.retryTimer = null;
    this.tickTimer = null;
    this.refreshTimer = null;
  }
}
