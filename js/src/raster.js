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

/** True when a stamp fills exactly the 5-pixel plus (radius 1 at this row width). */
function isPlus(stamp, width) {
  const f = stamp.fill;
  if (f.length !== 5) return false;
  const want = [-width, -1, 0, 1, width];
  return want.every((v) => f.includes(v));
}

/**
 * Draw points into `words` (Uint32Array over an ImageData of width x height).
 * xs, ys: device-pixel coordinates; order: indices to draw (later on top);
 * colors: a word per point; alpha: 0-255, below 255 the fill is blended into
 * what is already there (the map); outline: the ring's word (alpha 0: no
 * ring; below 255 it blends likewise); wrong: Uint8Array, 1 = misclassified
 * (drawn with `wrongStamp`, else `stamp`). Points whose stamp would cross the
 * edge are skipped. Plain arrays and no callbacks: this loop runs up to a
 * million times a frame, so the small stamps the style rules give for many
 * points (one pixel; the 5-pixel plus) have loops of their own (measured 7-20x
 * faster than the generic stamp loop at 1M points, benchmarks/README.md).
 */
export function drawPoints(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp) {
  const oa = outline >>> 24;
  if (alpha < 255 || (oa > 0 && oa < 255)) {
    return drawPointsBlended(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp);
  }
  const ring = oa === 255;
  const plus = !ring && isPlus(stamp, width);
  const single = !ring && stamp.fill.length === 1;
  const reach0 = stamp.reach;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    const fc = colors[i];
    if (!wrong[i] && (plus || single)) {
      if (x < reach0 || y < reach0 || x >= width - reach0 || y >= height - reach0) continue;
      const base = y * width + x;
      words[base] = fc;
      if (plus) {
        words[base - 1] = fc;
        words[base + 1] = fc;
        words[base - width] = fc;
        words[base + width] = fc;
      }
      continue;
    }
    const st = wrong[i] ? wrongStamp : stamp;
    const reach = st.reach;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const base = y * width + x;
    const out = st.outline, fill = st.fill;
    if (ring) for (let k = 0; k < out.length; k++) words[base + out[k]] = outline;
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

/** drawPoints for translucent passes (dimmed or many points): blends into what is there. */
function drawPointsBlended(words, width, height, xs, ys, order, colors, alpha, outline, wrong, stamp, wrongStamp) {
  const oa = outline >>> 24;
  const plus = oa === 0 && isPlus(stamp, width);
  const single = oa === 0 && stamp.fill.length === 1;
  const reach0 = stamp.reach;
  const a = alpha, b = 255 - alpha;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    const fc = colors[i];
    if (!wrong[i] && (plus || single)) {
      if (x < reach0 || y < reach0 || x >= width - reach0 || y >= height - reach0) continue;
      const base = y * width + x;
      // blend inlined (see blend()): the colour's part is the same for the five pixels
      const srb = (fc & 0xff00ff) * a, sg = (fc & 0xff00) * a;
      let d = words[base];
      words[base] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
      if (plus) {
        d = words[base - 1];
        words[base - 1] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
        d = words[base + 1];
        words[base + 1] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
        d = words[base - width];
        words[base - width] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
        d = words[base + width];
        words[base + width] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
      }
      continue;
    }
    const st = wrong[i] ? wrongStamp : stamp;
    const reach = st.reach;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const base = y * width + x;
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
