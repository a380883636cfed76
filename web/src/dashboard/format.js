/**
 * Human-readable values for the units the collector uses (UCUM as in
 * OpenTelemetry): "By", "By/s", "%", "s", "1" and anything else verbatim.
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

/**
 * @param {number | null | undefined} value
 * @param {string} unit
 * @returns {string}
 */
export function formatValue(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
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
