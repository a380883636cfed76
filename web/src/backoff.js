/**
 * Reconnect delays: exponential backoff with full jitter.
 *
 * Attempt n (from 0) waits a uniformly random time in [0, min(maxMs,
 * initialMs * multiplier^n)), so many clients that lost the same bridge do
 * not come back in lockstep. `reset()` after a connection is established
 * again (the client calls it when Hello arrives).
 */
export class Backoff {
  /**
   * @param {object} [options]
   * @param {number} [options.initialMs] ceiling of the first delay (default 500)
   * @param {number} [options.maxMs] largest ceiling (default 30000)
   * @param {number} [options.multiplier] ceiling growth per attempt (default 2)
   * @param {() => number} [options.random] uniform in [0, 1) (default Math.random)
   */
  constructor({ initialMs = 500, maxMs = 30_000, multiplier = 2, random = Math.random } = {}) {
    if (!(initialMs > 0 && maxMs >= initialMs && multiplier >= 1)) {
      throw new RangeError("backoff needs 0 < initialMs <= maxMs and multiplier >= 1");
    }
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.multiplier = multiplier;
    this.random = random;
    this.attempt = 0;
  }

  /** @returns {number} the ceiling of the next delay, in ms */
  ceiling() {
    return Math.min(this.maxMs, this.initialMs * this.multiplier ** this.attempt);
  }

  /** @returns {number} the next delay in ms; each call is one more attempt */
  next() {
    const delay = this.random() * this.ceiling();
    this.attempt += 1;
    return delay;
  }

  reset() {
    this.attempt = 0;
  }
}
