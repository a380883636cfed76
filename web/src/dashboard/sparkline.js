/**
 * A sparkline on a canvas: one line over the last `spanMs` of a window
 * column, scaled to its own min and max. Drawing is cheap (one path), so a
 * tile redraws it whenever its window changed and it is on screen.
 */

/**
 * @param {HTMLCanvasElement} canvas
 * @param {number[]} times ms
 * @param {Array<number | null>} values
 * @param {number} spanMs
 * @param {string} color
 */
export function drawSparkline(canvas, times, values, spanMs, color) {
  const ratio = globalThis.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, width, height);
  const n = times.length;
  if (n === 0) return;
  const end = times[n - 1];
  const start = end - spanMs;
  let lo = Infinity;
  let hi = -Infinity;
  let first = n;
  for (let i = n - 1; i >= 0 && times[i] >= start; i--) {
    first = i;
    const v = values[i];
    if (v === null || v === undefined) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return;
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.2 * ratio;
  ctx.beginPath();
  let drawing = false;
  for (let i = first; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      drawing = false;
      continue;
    }
    const x = ((times[i] - start) / spanMs) * (width - 2) + 1;
    const y = height - 2 - ((v - lo) / (hi - lo)) * (height - 4);
    if (drawing) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    drawing = true;
  }
  ctx.stroke();
}
