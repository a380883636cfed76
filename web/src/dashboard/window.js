/**
 * The chart's recent window: a bounded table of points, one row per applied
 * Snapshot or Update, one column per charted series key.
 *
 * Rules:
 * - `record(time, values)` appends a row at `time` (ms). A row at the time of
 *   the last row replaces it; a row older than the last one is dropped (the
 *   window only moves forward, so a replayed update cannot bend a line back).
 * - A key seen for the first time gets a column filled with nulls before it;
 *   a key absent from a row gets null there (uPlot draws a break).
 * - At most `capacity` rows: the oldest row goes first, and a column left
 *   with only nulls goes with it. Nothing else grows.
 * - toJSON/fromJSON carry the window across a page reload (sessionStorage).
 */

/**
 * @typedef {object} WindowJSON
 * @property {number} capacity
 * @property {number[]} times
 * @property {Record<string, Array<number | null>>} columns
 */

export class MetricWindow {
  /** @param {number} capacity rows kept */
  constructor(capacity) {
    if (!(capacity > 0)) throw new RangeError("window capacity must be positive");
    this.capacity = capacity;
    /** @type {number[]} */
    this.times = [];
    /** @type {Map<string, Array<number | null>>} */
    this.columns = new Map();
  }

  get length() {
    return this.times.length;
  }

  /** @returns {number | null} */
  get lastTime() {
    return this.times.length ? this.times[this.times.length - 1] : null;
  }

  /**
   * @param {number} time ms since epoch
   * @param {Record<string, number>} values by series key
   * @returns {boolean} whether the window changed
   */
  record(time, values) {
    const last = this.lastTime;
    if (last !== null && time < last) return false;
    const replace = last !== null && time === last;
    if (!replace) {
      this.times.push(time);
      for (const column of this.columns.values()) column.push(null);
    }
    const row = this.times.length - 1;
    for (const [key, value] of Object.entries(values)) {
      let column = this.columns.get(key);
      if (!column) {
        column = new Array(this.times.length).fill(null);
        this.columns.set(key, column);
      }
      column[row] = Number.isFinite(value) ? value : null;
    }
    while (this.times.length > this.capacity) this.#dropOldest();
    return true;
  }

  #dropOldest() {
    this.times.shift();
    for (const [key, column] of this.columns) {
      column.shift();
      if (column.every((v) => v === null)) this.columns.delete(key);
    }
  }

  clear() {
    this.times = [];
    this.columns.clear();
  }

  /**
   * uPlot's data layout: x in seconds, then one array per key.
   * @param {string[]} keys
   * @returns {Array<Array<number | null>>}
   */
  series(keys) {
    const x = this.times.map((t) => t / 1000);
    const empty = () => new Array(this.times.length).fill(null);
    return [x, ...keys.map((k) => this.columns.get(k) ?? empty())];
  }

  /** @returns {WindowJSON} */
  toJSON() {
    return { capacity: this.capacity, times: this.times, columns: Object.fromEntries(this.columns) };
  }

  /**
   * @param {WindowJSON} json
   * @param {number} capacity
   * @returns {MetricWindow}
   */
  static fromJSON(json, capacity) {
    const window = new MetricWindow(capacity);
    const n = json.times.length;
    const skip = Math.max(0, n - capacity);
    window.times = json.times.slice(skip).map(Number);
    for (const [key, column] of Object.entries(json.columns)) {
      if (column.length !== n) continue;
      window.columns.set(key, column.slice(skip));
    }
    return window;
  }
}
