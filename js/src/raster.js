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
 * xs, ys: device-pixel coordinates; order: indices to draw (later on top);
 * colors: a word per point; alpha: 0-255, below 255 the fill is blended into
 * what is already there (the map); outline: the ring's word (its alpha blends
 * likewise); wrong: Uint8Array, 1 = misclassified (drawn with
 * `wrongStamp`, else `stamp`). Points whose stamp would cross the edge are skipped.
 * Plain arrays and no callbacks: this loop runs 50,000 times a frame.
 */
export function drawPoints(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp) {
  if (alpha < 255 || outline >>> 24 < 255) {
    return drawPointsBlended(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp);
  }
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = Math.round(xs[i]), y = Math.round(ys[i]);
    const st = wrong[i] ? wrongStamp : stamp;
    const reach = st.reach;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const base = y * width + x;
    const fc = colors[i];
    const out = st.outline, fill = st.fill;
    for (let k = 0; k < out.length; k++) words[base + out[k]] = outline;
    for (let k = 0; k < fill.length; k++) words[base + fill[k]] = fc;
  }
}

/**
 * a * src + (1 - a) * dst per channel (a in 0..255), result opaque. Red and
 * blue are blended together in one multiply (packed), green in another; the
 * /256 makes it up to one step darker than exact, invisible and much faster.
 */
export function blend(dst, src, a) {
  const b = 255 - a;
  const rb = ((((src & 0xff00ff) * a + (dst & 0xff00ff) * b) >>> 8) & 0xff00ff) >>> 0;
  const g = ((((src & 0xff00) * a + (dst & 0xff00) * b) >>> 8) & 0xff00) >>> 0;
  return (0xff000000 | rb | g) >>> 0;
}

/** drawPoints for translucent passes (dimmed points): blends into what is there. */
function drawPointsBlended(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp) {
  const oa = outline >>> 24;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = Math.round(xs[i]), y = Math.round(ys[i]);
    const st = wrong[i] ? wrongStamp : stamp;
    const reach = st.reach;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const base = y * width + x;
    const fc = colors[i];
    const out = st.outline, fill = st.fill;
    if (oa > 0) for (let k = 0; k < out.length; k++) words[base + out[k]] = blend(words[base + out[k]], outline, oa);
    for (let k = 0; k < fill.length; k++) words[base + fill[k]] = blend(words[base + fill[k]], fc, alpha);
  }
}

/**
 * Reorder `order` by horizontal bands of 2^shift rows (a stable counting sort),
 * so consecutive points write to nearby memory: at 50,000 points this keeps
 * the stamp writes in cache. Within a band the original order is kept, so the
 * picture only changes where points of different bands overlap.
 */
export function bandOrder(order, ys, height, shift, out, counts) {
  const nb = (height >> shift) + 2;
  counts.fill(0, 0, nb + 1);
  const band = (y) => {
    const b = (y | 0) >> shift;
    return b < 0 ? 0 : b > nb - 1 ? nb - 1 : b;
  };
  for (let k = 0; k < order.length; k++) counts[band(ys[order[k]]) + 1]++;
  for (let b = 0; b < nb; b++) counts[b + 1] += counts[b];
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    out[counts[band(ys[i])]++] = i;
  }
  return out;
}
