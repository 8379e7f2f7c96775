/**
 * View transform between data coordinates and screen (CSS pixel) coordinates.
 * One uniform scale k (pixels per data unit) so the map is never stretched;
 * data y grows upwards, screen y downwards.
 *   sx = (x - cx) * k + width / 2,   sy = (cy - y) * k + height / 2
 */

import { STYLE } from "./style.js";

export function makeView(cx, cy, k) {
  return { cx, cy, k };
}

/** A view that fits extent [xmin, xmax, ymin, ymax] in width x height with a margin. */
export function fitView(extent, width, height, margin = STYLE.view.margin) {
  const [x0, x1, y0, y1] = extent;
  const w = Math.max(x1 - x0, 1e-9), h = Math.max(y1 - y0, 1e-9);
  const k = Math.min(width / w, height / h) * (1 - 2 * margin);
  return makeView((x0 + x1) / 2, (y0 + y1) / 2, k);
}

export function toScreen(view, width, height, x, y) {
  return [(x - view.cx) * view.k + width / 2, (view.cy - y) * view.k + height / 2];
}

export function toData(view, width, height, sx, sy) {
  return [(sx - width / 2) / view.k + view.cx, view.cy - (sy - height / 2) / view.k];
}

/** Project flat positions [x0, y0, ...] into separate screen arrays xs, ys. */
export function projectAll(view, width, height, positions, xs, ys) {
  const k = view.k, ox = width / 2 - view.cx * k, oy = height / 2 + view.cy * k;
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    xs[i] = positions[2 * i] * k + ox;
    ys[i] = oy - positions[2 * i + 1] * k;
  }
}

/**
 * projectAll of the positions gliding from `a` to `b` at fraction t (interp.js
 * lerpPositions), in one pass: at 1,000,000 points this saves writing and
 * reading an intermediate array of 2,000,000 floats per frame. `only`:
 * indices of the points to place (the others are left as they are).
 */
export function projectLerp(view, width, height, a, b, t, xs, ys, only = null) {
  const k = view.k, ox = width / 2 - view.cx * k, oy = height / 2 + view.cy * k;
  const n = xs.length;
  if (b.length !== a.length || a.length !== 2 * n) throw new RangeError("positions of different lengths");
  if (only) {
    for (let j = 0; j < only.length; j++) {
      const i = only[j], ax = a[2 * i], ay = a[2 * i + 1];
      xs[i] = (ax + (b[2 * i] - ax) * t) * k + ox;
      ys[i] = oy - (ay + (b[2 * i + 1] - ay) * t) * k;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const ax = a[2 * i], ay = a[2 * i + 1];
    xs[i] = (ax + (b[2 * i] - ax) * t) * k + ox;
    ys[i] = oy - (ay + (b[2 * i + 1] - ay) * t) * k;
  }
}

/** Zoom by `factor` keeping the data point under screen (sx, sy) fixed. */
export function zoomAt(view, width, height, sx, sy, factor) {
  const [x, y] = toData(view, width, height, sx, sy);
  const k = view.k * factor;
  return makeView(x - (sx - width / 2) / k, y + (sy - height / 2) / k, k);
}

/** Pan by a screen-space drag (dx, dy). */
export function panBy(view, dx, dy) {
  return makeView(view.cx - dx / view.k, view.cy + dy / view.k, view.k);
}
