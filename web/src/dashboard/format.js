/**
 * Human-readable values for the units the collector uses (UCUM as in
 * OpenTelemetry, which is what the collector makes of OTLP units): bytes
 * ("By", "KiBy", "MiBy", "GiBy", "kBy", "MBy", "GBy"), durations ("ns", "us",
 * "ms", "s", "min", "h", "d"), "%", "1" (a plain count), any of these per
 * second ("By/s", "1/s", ...), and anything else verbatim after the number.
 */

const BYTES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * @param {number} n
 * @returns {string}
 */
function bytes(n) {
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < BYTES.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v >= 100 || i === 0 ? 0 : 1;
  return `${n < 0 ? "-" : ""}${v.toFixed(digits)} ${BYTES[i]}`;
}

/**
 * @param {number} seconds
 * @returns {string}
 */
function duration(seconds) {
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 0)} s`;
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

/**
 * @param {number} n
 * @returns {string}
 */
function plain(n) {
  if (Number.isInteger(n)) return n.toLocaleString("en");
  return n.toLocaleString("en", { maximumFractionDigits: Math.abs(n) < 10 ? 2 : 1 });
}

/** Multipliers to bytes and to seconds of the UCUM units that scale them. */
const BYTE_UNITS = /** @type {Record<string, number>} */ ({
  By: 1, kBy: 1e3, MBy: 1e6, GBy: 1e9, KiBy: 1024, MiBy: 1024 ** 2, GiBy: 1024 ** 3,
});
const SECOND_UNITS = /** @type {Record<string, number>} */ ({
  ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600, d: 86400,
});

/**
 * @param {number} seconds
 * @returns {string}
 */
function shortDuration(seconds) {
  const a = Math.abs(seconds);
  if (a !== 0 && a < 1e-3) return `${plain(seconds * 1e6)} µs`;
  if (a !== 0 && a < 1) return `${plain(seconds * 1e3)} ms`;
  return duration(seconds);
}

/**
 * @param {number | null | undefined} value
 * @param {string} unit
 * @returns {string}
 */
export function formatValue(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (unit.endsWith("/s") && unit !== "By/s") {
    const base = unit.slice(0, -2);
    return base === "1" ? `${plain(value)}/s` : `${formatValue(value, base)}/s`;
  }
  if (unit !== "By" && unit in BYTE_UNITS) return bytes(value * BYTE_UNITS[unit]);
  if (unit !== "s" && unit in SECOND_UNITS) return shortDuration(value * SECOND_UNITS[unit]);
  switch (unit) {
    case "By":
      return bytes(value);
    case "By/s":
      return `${bytes(value)}/s`;
    case "%":
      return `${value.toFixed(1)} %`;
    case "s":
      return duration(value);
    case "1":
    case "":
      return plain(value);
    default:
      return `${plain(value)} ${unit}`;
  }
}
