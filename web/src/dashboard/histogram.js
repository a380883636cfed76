/**
 * Quantiles of an explicit-bucket histogram, as Prometheus's
 * histogram_quantile estimates them.
 *
 * Rules:
 * - `counts[i]` counts values in (bounds[i-1], bounds[i]]; the last count is
 *   above the last bound. The rank q·count falls in one bucket; the estimate
 *   interpolates linearly inside it.
 * - The first bucket starts at `min` when known, else at 0 (or at its bound
 *   when that is negative); the overflow bucket ends at `max` when known, else
 *   at the last bound. The result is clamped to [min, max] when they are known.
 * - An empty histogram has no quantile (null).
 */

/** @typedef {import("../channel_state.js").HistogramValue} HistogramValue */

export const QUANTILES = /** @type {const} */ ([
  ["p50", 0.5],
  ["p90", 0.9],
  ["p99", 0.99],
]);

/**
 * @param {HistogramValue} h
 * @param {number} q in [0, 1]
 * @returns {number | null}
 */
export function quantile(h, q) {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return null;
  const rank = q * total;
  const last = h.bounds.length;
  let below = 0;
  for (let i = 0; i <= last; i++) {
    const n = h.counts[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      const lower =
        i === 0 ? (h.min ?? Math.min(0, h.bounds[0] ?? 0)) : h.bounds[i - 1];
      const upper = i < last ? h.bounds[i] : (h.max ?? h.bounds[last - 1] ?? lower);
      const value = lower + ((upper - lower) * (rank - below)) / n;
      return clamp(value, h.min, h.max);
    }
    below += n;
  }
  return clamp(h.bounds[last - 1] ?? 0, h.min, h.max);
}

/**
 * @param {number} v
 * @param {number | undefined} min
 * @param {number | undefined} max
 */
function clamp(v, min, max) {
  if (min !== undefined && v < min) return min;
  if (max !== undefined && v > max) return max;
  return v;
}

/**
 * The latest value's buckets for a bar chart: one entry per bucket that is
 * not empty, labelled by its upper bound ("+Inf" for the overflow).
 * @param {HistogramValue} h
 * @returns {Array<{le: string, count: number}>}
 */
export function buckets(h) {
  return h.counts
    .map((count, i) => ({ le: i < h.bounds.length ? String(h.bounds[i]) : "+Inf", count }))
    .filter((b) => b.count > 0);
}
