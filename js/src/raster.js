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
 * The same picture as `drawPoints` (order kept, no band sort) for opaque
 * points without a ring whose stamp is one pixel or the 5-pixel plus, drawn
 * by rank instead of by stamp: each point's centre pixel gets its draw rank
 * (o + 1) and colour (later points overwrite, so a pixel keeps its highest
 * rank); one pass over the pixels gives each pixel the colour of the highest
 * rank among it and its stamp's neighbours; the misclassified points' stamps
 * then overwrite the pixels where their rank is higher. One scattered store
 * per point (rank and colour side by side, one cache line) and a sequential
 * pass over the pixels, instead of five scattered stores per point
 * (benchmarks/README.md, "Widget", measures both at 1,000,000 points).
 * `scratch`: {rc: Int32Array(2 * width * height), top: Int32Array(width * height)},
 * reused between frames (it also keeps the crosses' sort buffers). Returns false (nothing drawn) for other stamps.
 */
export function drawPointsRanked(words, width, height, xs, ys, order, colors, wrong, stamp, wrongStamp, scratch) {
  const plus = isPlus(stamp, width);
  if (!plus && stamp.fill.length !== 1) return false;
  const { rc, top } = scratch;
  rc.fill(0);
  const reach0 = stamp.reach, reachW = wrongStamp.reach;
  let nWrong = 0;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    if (wrong[i]) {
      nWrong++;
      continue;
    }
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < reach0 || y < reach0 || x >= width - reach0 || y >= height - reach0) continue;
    const q = (y * width + x) << 1;
    rc[q] = o + 1;
    rc[q + 1] = colors[i];
  }
  // A centre never lies on the outer rows or columns (reach >= 1), so reads
  // across a row's end (p - 1 at its first pixel) find rank 0.
  const end = width * (height - 1), w2 = width << 1;
  const anyWrong = nWrong > 0;
  if (anyWrong) {
    top.fill(0, 0, width);
    top.fill(0, end);
  }
  for (let p = width; p < end; p++) {
    const q = p << 1;
    let m = rc[q], c = q;
    if (plus) {
      if (rc[q - 2] > m) (m = rc[q - 2]), (c = q - 2);
      if (rc[q + 2] > m) (m = rc[q + 2]), (c = q + 2);
      if (rc[q - w2] > m) (m = rc[q - w2]), (c = q - w2);
      if (rc[q + w2] > m) (m = rc[q + w2]), (c = q + w2);
    }
    if (m) words[p] = rc[c + 1];
    if (anyWrong) top[p] = m;
  }
  if (!anyWrong) return true;
  if (nWrong * wrongStamp.fill.length > 2 * width * height) {
    crossesByDilation(words, width, height, xs, ys, order, colors, wrong, wrongStamp, scratch);
    return true;
  }
  const nw = crossesByBand(xs, ys, order, colors, wrong, width, height, reachW, scratch);
  const crosses = scratch.crosses, fill = wrongStamp.fill;
  for (let k0 = 0; k0 < 3 * nw; k0 += 3) {
    const base = crosses[k0], r = crosses[k0 + 1], fc = crosses[k0 + 2];
    for (let k = 0; k < fill.length; k++) {
      const q = base + fill[k];
      if (top[q] < r) {
        top[q] = r;
        words[q] = fc;
      }
    }
  }
  return true;
}

/**
 * The crosses when there are so many that their stamps would cover the map
 * several times over: each cross centre's pixel gets a key rank * 2^32 +
 * colour (Float64, exact: ranks stay below 2^21 here), a max filter shaped
 * like the stamp spreads the highest key over the stamp's pixels (the stamp
 * split into horizontal runs; a running max per run length), and a pixel takes
 * the cross's colour where its rank beats the top plain point's (`top`). Work
 * per pixel, whatever the number of crosses.
 */
function crossesByDilation(words, width, height, xs, ys, order, colors, wrong, stamp, scratch) {
  const N = width * height, reach = stamp.reach, SHIFT = 4294967296;
  const runs = stampRuns(stamp, width);
  // keys[pad + p] for pixel p: `pad` zeros before and after, so the filter reads
  // no index outside the arrays for any pixel of the map
  const pad = (reach + 1) * (width + 1), M = N + 2 * pad;
  if (!scratch.keys || scratch.keys.length !== M) {
    scratch.keys = new Float64Array(M);
    scratch.runMax = [];
  }
  const keys = scratch.keys;
  keys.fill(0);
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    if (!wrong[i]) continue;
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    keys[pad + y * width + x] = (o + 1) * SHIFT + colors[i];
  }
  // runMax[L][q] = max(keys[q .. q + L - 1]) for the run lengths the stamp has,
  // each from two shorter ones (5 = 3 + 2); a window reaching past a row's end
  // reads the next row's first pixels, where no centre lies (reach > |dx|)
  const runMax = scratch.runMax;
  runMax.length = 0;
  runMax[1] = keys;
  const make = (L) => {
    if (runMax[L]) return runMax[L];
    let a = L - 1;
    while (a > 1 && !runMax[a]) a--;
    const A = make(a), B = make(L - a);
    const key = `max${L}`;
    if (!scratch[key] || scratch[key].length !== M) scratch[key] = new Float64Array(M);
    const cur = scratch[key], last = M - L + 1;
    for (let q = 0; q < last; q++) {
      const u = A[q], v = B[q + a];
      cur[q] = u > v ? u : v;
    }
    return (runMax[L] = cur);
  };
  for (const r of runs) make(r.len);
  const top = scratch.top, nr = runs.length;
  const offs = Int32Array.from(runs, (r) => pad + r.off), lens = runs.map((r) => runMax[r.len]);
  for (let p = 0; p < N; p++) {
    let m = 0;
    for (let k = 0; k < nr; k++) {
      const v = lens[k][p + offs[k]];
      if (v > m) m = v;
    }
    if (m >= (top[p] + 1) * SHIFT) words[p] = m % SHIFT;
  }
}

/** A stamp's fill as horizontal runs: [{off: first pixel's offset, len}]. */
function stampRuns(stamp, width) {
  const cells = Array.from(stamp.fill, (f) => {
    const dy = Math.round(f / width);
    return [dy, f - dy * width];
  }).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const runs = [];
  for (const [dy, dx] of cells) {
    const r = runs[runs.length - 1];
    if (r && r.dy === dy && r.dx + r.len === dx) r.len++;
    else runs.push({ dy, dx, len: 1 });
  }
  return runs.map((r) => ({ off: r.dy * width + r.dx, len: r.len }));
}

/**
 * The misclassified points of `order` whose cross fits the map, as triples
 * (pixel index, draw rank o + 1, colour) sorted by band of 16 rows (a
 * counting sort): drawPointsRanked stamps them in this order, so that
 * neighbouring stamps write to memory still in cache ("highest rank wins"
 * does not depend on the visiting order). Returns the number of triples in
 * scratch.crosses.
 */
function crossesByBand(xs, ys, order, colors, wrong, width, height, reach, scratch) {
  const nb = (height >> 4) + 1;
  if (!scratch.counts || scratch.counts.length < nb + 1) scratch.counts = new Uint32Array(nb + 1);
  const counts = scratch.counts;
  counts.fill(0);
  let nw = 0;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    if (!wrong[i]) continue;
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    counts[(y >> 4) + 1]++;
    nw++;
  }
  for (let b = 0; b < nb; b++) counts[b + 1] += counts[b];
  if (!scratch.crosses || scratch.crosses.length < 3 * nw) scratch.crosses = new Uint32Array(Math.max(3 * nw, 3072));
  const out = scratch.crosses;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    if (!wrong[i]) continue;
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < reach || y < reach || x >= width - reach || y >= height - reach) continue;
    const k = 3 * counts[y >> 4]++;
    out[k] = y * width + x;
    out[k + 1] = o + 1;
    out[k + 2] = colors[i];
  }
  return nw;
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
