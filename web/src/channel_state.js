/**
 * One channel's state: the last Snapshot with every following Update applied.
 *
 * Rules (metrics.proto and bridge.proto are the contract):
 * - A Snapshot replaces everything: epoch, seq, series and values.
 * - An Update applies only when it follows the state: same epoch and
 *   seq === state.seq + 1. Then its `added` series are declared (a re-declared
 *   id replaces its descriptor, e.g. a counter reset), its values are set, its
 *   deltas are added (`deltaIds[i]` changed by the whole number `deltas[i]`),
 *   its `removed` ids are dropped (a removed series is gone, not zero) and seq
 *   advances. Outcome "applied". A Snapshot's values are all in full.
 * - An Update of the same epoch with seq <= state.seq was already applied (it
 *   can arrive twice around a resubscribe): ignored. Outcome "duplicate".
 * - Any other Update (no snapshot yet, another epoch, seq jumped) leaves the
 *   state untouched. Outcome "gap": the caller resubscribes with `position`.
 * - A following Update whose values name an undeclared id, whose ids and
 *   numbers (or deltaIds and deltas) differ in length, or with a delta for a
 *   series that holds no number, contradicts the schema: the state is left
 *   untouched and the outcome is "invalid": the caller asks for a fresh
 *   Snapshot (resuming would replay the same update).
 * - A resync reason (ServerMessage.resync: the bridge or collector sent this
 *   Snapshot or merged Update in place of updates; docs/protocol.md
 *   "Freshness") changes nothing in how it applies. Once applied, it counts
 *   in `resyncs` (by reason: "stale", "overflow", or the number of a reason
 *   this client does not know) and becomes `lastResync`. Unmarked Snapshots
 *   (the answer to a subscribe or resume) do not count. The counts outlive
 *   Snapshots and connections; toJSON does not keep them.
 *
 * Positions are {epoch: string, seq: number}: epoch is a fixed64 carried as a
 * decimal string, seq a uint64 that stays far below 2^53 in practice.
 */

/** @typedef {"gauge" | "counter" | "histogram" | "unspecified"} SeriesKind */

/**
 * @typedef {object} Position
 * @property {string} epoch
 * @property {number} seq
 */

/**
 * @typedef {object} Series
 * @property {number} id
 * @property {string} name
 * @property {Record<string, string>} labels
 * @property {SeriesKind} kind
 * @property {string} unit
 * @property {string} description
 * @property {number} startTimeUnixMs
 * @property {string} key Prometheus-style identity, e.g. `cpu{core="0"}`.
 */

/**
 * @typedef {object} HistogramValue
 * @property {number[]} bounds
 * @property {number[]} counts
 * @property {number} count
 * @property {number} sum
 * @property {number | undefined} min
 * @property {number | undefined} max
 */

/** @typedef {number | HistogramValue} Value */

/** @typedef {"applied" | "duplicate" | "gap" | "invalid"} UpdateOutcome */

/**
 * @typedef {object} ChannelStateJSON
 * @property {string} channel
 * @property {string} epoch
 * @property {number} seq
 * @property {number} timeUnixMs
 * @property {number} sourceKind
 * @property {Series[]} series
 * @property {Array<[number, Value]>} values
 */

const KINDS = /** @type {const} */ (["unspecified", "gauge", "counter", "histogram"]);

/**
 * @param {string} name
 * @param {Record<string, string>} labels
 * @returns {string}
 */
export function seriesKey(name, labels) {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return name;
  const inner = names.map((n) => `${n}=${JSON.stringify(labels[n])}`).join(",");
  return `${name}{${inner}}`;
}

/**
 * Plain series from a decoded SeriesDescriptor.
 * @param {import("./gen/metrics_bridge/v1/metrics_pb.js").SeriesDescriptor} d
 * @returns {Series}
 */
export function seriesFromDescriptor(d) {
  /** @type {Record<string, string>} */
  const labels = {};
  for (const label of d.labels) labels[label.name] = label.value;
  return {
    id: d.id,
    name: d.name,
    labels,
    kind: KINDS[d.kind] ?? "unspecified",
    unit: d.unit,
    description: d.description,
    startTimeUnixMs: Number(d.startTimeUnixMs),
    key: seriesKey(d.name, labels),
  };
}

/**
 * @param {import("./gen/metrics_bridge/v1/metrics_pb.js").Values | undefined} values
 * @returns {Array<[number, Value]>}
 */
export function valuesFromMessage(values) {
  /** @type {Array<[number, Value]>} */
  const out = [];
  if (!values) return out;
  const n = Math.min(values.ids.length, values.numbers.length);
  for (let i = 0; i < n; i++) out.push([values.ids[i], values.numbers[i]]);
  for (const h of values.histograms) {
    const hist = h.histogram;
    out.push([
      h.id,
      {
        bounds: hist ? [...hist.bounds] : [],
        counts: hist ? hist.counts.map(Number) : [],
        count: hist ? Number(hist.count) : 0,
        sum: hist ? hist.sum : 0,
        min: hist?.min,
        max: hist?.max,
      },
    ]);
  }
  return out;
}

export class ChannelState {
  /** @param {string} channel */
  constructor(channel) {
    this.channel = channel;
    /** @type {string | null} null until the first Snapshot */
    this.epoch = null;
    this.seq = 0;
    this.timeUnixMs = 0;
    this.sourceKind = 0;
    /** @type {Map<number, Series>} */
    this.series = new Map();
    /** @type {Map<number, Value>} */
    this.values = new Map();
    /** @type {Record<string, number>} applied Snapshots and Updates marked with a resync reason, by reason */
    this.resyncs = {};
    /** @type {string | null} the reason of the last one; null before any */
    this.lastResync = null;
  }

  /** @returns {Position | null} where to resume from, null before any Snapshot */
  get position() {
    return this.epoch === null ? null : { epoch: this.epoch, seq: this.seq };
  }

  /**
   * @param {import("./gen/metrics_bridge/v1/metrics_pb.js").Snapshot} snapshot
   * @param {string | null} [resync] the frame's resync reason, when the bridge marked it
   */
  applySnapshot(snapshot, resync = null) {
    this.epoch = snapshot.epoch;
    this.seq = Number(snapshot.seq);
    this.timeUnixMs = Number(snapshot.timeUnixMs);
    this.sourceKind = snapshot.kind;
    this.series = new Map(snapshot.series.map((d) => [d.id, seriesFromDescriptor(d)]));
    this.values = new Map();
    for (const [id, value] of valuesFromMessage(snapshot.values)) {
      if (this.series.has(id)) this.values.set(id, value);
    }
    this.#countResync(resync);
  }

  /**
   * @param {import("./gen/metrics_bridge/v1/metrics_pb.js").Update} update
   * @param {number} [firstSeq] a merged update (a rate tier) covers firstSeq..seq
   * @param {string | null} [resync] the frame's resync reason; counted only if it applies
   * @returns {UpdateOutcome}
   */
  applyUpdate(update, firstSeq = 0, resync = null) {
    const seq = Number(update.seq);
    if (this.epoch === null || update.epoch !== this.epoch) return "gap";
    if (seq <= this.seq) return "duplicate";
    if ((firstSeq || seq) !== this.seq + 1) return "gap";
    if (update.values && update.values.ids.length !== update.values.numbers.length) return "invalid";
    const deltaIds = update.values?.deltaIds ?? [];
    const deltas = update.values?.deltas ?? [];
    if (deltaIds.length !== deltas.length) return "invalid";
    if (deltaIds.some((id) => typeof this.values.get(id) !== "number")) return "invalid";
    const added = update.added.map(seriesFromDescriptor);
    const values = valuesFromMessage(update.values);
    const declared = new Set(added.map((s) => s.id));
    if (values.some(([id]) => !declared.has(id) && !this.series.has(id))) return "invalid";
    for (const s of added) this.series.set(s.id, s);
    for (const [id, value] of values) this.values.set(id, value);
    for (let i = 0; i < deltaIds.length; i++) {
      this.values.set(deltaIds[i], /** @type {number} */ (this.values.get(deltaIds[i])) + Number(deltas[i]));
    }
    for (const id of update.removed) {
      this.series.delete(id);
      this.values.delete(id);
    }
    this.seq = seq;
    this.timeUnixMs = Number(update.timeUnixMs);
    this.#countResync(resync);
    return "applied";
  }

  /** @param {string | null} resync */
  #countResync(resync) {
    if (resync === null) return;
    this.resyncs[resync] = (this.resyncs[resync] ?? 0) + 1;
    this.lastResync = resync;
  }

  /**
   * Every live series with its current value, sorted by key.
   * @returns {Array<Series & {value: Value | undefined}>}
   */
  rows() {
    return [...this.series.values()]
      .map((s) => ({ ...s, value: this.values.get(s.id) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Current numeric values by series key (histograms give their count).
   * @returns {Record<string, number>}
   */
  valuesByKey() {
    /** @type {Record<string, number>} */
    const out = {};
    for (const [id, s] of this.series) {
      const v = this.values.get(id);
      if (v === undefined) continue;
      out[s.key] = typeof v === "number" ? v : v.count;
    }
    return out;
  }

  /** @returns {ChannelStateJSON} */
  toJSON() {
    return {
      channel: this.channel,
      epoch: this.epoch ?? "",
      seq: this.seq,
      timeUnixMs: this.timeUnixMs,
      sourceKind: this.sourceKind,
      series: [...this.series.values()],
      values: [...this.values.entries()],
    };
  }

  /**
   * Rebuilds a state saved with toJSON (e.g. across a page reload), so the
   * client can resume from its position instead of starting over.
   * @param {ChannelStateJSON} json
   * @returns {ChannelState}
   */
  static fromJSON(json) {
    const state = new ChannelState(json.channel);
    if (!json.epoch) return state;
    state.epoch = String(json.epoch);
    state.seq = Number(json.seq);
    state.timeUnixMs = Number(json.timeUnixMs);
    state.sourceKind = Number(json.sourceKind);
    state.series = new Map(json.series.map((s) => [s.id, s]));
    state.values = new Map(json.values.filter(([id]) => state.series.has(id)));
    return state;
  }
}
