/**
 * Point rasteriser: writes points straight into an ImageData's 32-bit words.
 * No WebGL and no per-point canvas calls: each point is a precomputed stamp
 * (fill pixels plus an outline ring), so 50,000 points cost a few million
 * word writes per frame.
 */

/**
 * Pixel offsets of a stamp for a canvas row width. `shape(dx, dy)` says
 * whether a pixel is filled; the outline is the ring of pixels next to the fill.
 */
export function makeStamp(radius, shape, rowWidth) {
  const fill = [], outline = [];
  const r = radius + 1;
  const inside = (dx, dy) => Math.abs(dx) <= radius && Math.abs(dy) <= radius && shape(dx, dy, radius);
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (inside(dx, dy)) fill.push(dy * rowWidth + dx);
      else if (inside(dx - 1, dy) || inside(dx + 1, dy) || inside(dx, dy - 1) || inside(dx, dy + 1)) {
        outline.push(dy * rowWidth + dx);
      }
    }
  }
  return { fill: Int32Array.from(fill), outline: Int32Array.from(outline), reach: r };
}

export const disk = (dx, dy, r) => dx * dx + dy * dy <= r * r + r * 0.8;
export const cross = (dx, dy, r) => Math.abs(Math.abs(dx) - Math.abs(dy)) <= Math.max(1, r / 2.5);

/**
 * Draw points into `words` (Uint32Array over an ImageData of width x height).
 * xs, ys: device-pixel coordinates; order: indices to draw in this pass;
 * color(i), outlineColor(i): words; stampFor(i): a stamp.
 */
export function drawPoints(words, width, height, xs, ys, order, color, outlineColor, stampFor) {
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = Math.round(xs[i]), y = Math.round(ys[i]);
    const st = stampFor(i);
    const reach = st.reach;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const base = y * width + x;
    const oc = outlineColor(i), fc = color(i);
    const out = st.outline, fill = st.fill;
    for (let k = 0; k < out.length; k++) words[base + out[k]] = oc;
    for (let k = 0; k < fill.length; k++) words[base + fill[k]] = fc;
  }
}
