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
 * points without a ring, drawn by rank instead of by stamp, for counts where
 * the stamps would cover the map several times over. Each point's centre
 * pixel gets a key (draw rank o + 1) << 8 | its colour's index in a table of
 * at most 256 colours; later points overwrite, so a pixel keeps its highest
 * key. A max filter shaped like the stamp (the stamp cut into horizontal runs,
 * a running max per run length) then gives each pixel the highest key among
 * the centres whose stamp covers it, which is the point drawn last there.
 * Plain points and misclassified ones (their own stamp, `wrongStamp`) have a
 * key buffer each; a pixel takes the higher of the two. The cost is one store
 * per point plus a few passes over the pixels, whatever the overdraw
 * (benchmarks/README.md, "Widget", measures both paths at 1,000,000 points).
 * `scratch`: an object kept between frames for the buffers; `colorsKey`: an
 * object that stays the same while `colors` holds the same colours (the
 * palette index is kept until it changes). Returns false
 * (nothing drawn) when the colours need more than 256 entries or the count
 * more than 2^23 ranks; the caller then draws by stamp.
 */
export function drawPointsRanked(words, width, height, xs, ys, order, colors, wrong, stamp, wrongStamp, scratch, colorsKey = colors) {
  if (order.length >= 1 << 23) return false;
  const pal = colorIndex(colors, colorsKey, scratch);
  if (!pal) return false;
  const N = width * height, reach = Math.max(stamp.reach, wrongStamp.reach);
  // `pad` zero keys before and after the map, so the filters read no index outside a buffer
  const pad = (reach + 1) * (width + 1), M = N + 2 * pad;
  if (!scratch.plain || scratch.plain.length !== M) {
    scratch.plain = new Int32Array(M);
    scratch.crosses = new Int32Array(M);
    scratch.runMax = new Map();
  }
  const plain = scratch.plain, crosses = scratch.crosses, index = pal.index;
  if (!scratch.wrongAt || scratch.wrongAt.length < order.length) {
    scratch.wrongAt = new Int32Array(order.length); // misclassified centres (padded pixel), in draw order
    scratch.wrongKey = new Int32Array(order.length); // and their keys
  }
  const wrongAt = scratch.wrongAt, wrongKey = scratch.wrongKey;
  plain.fill(0);
  let nWrong = 0;
  const r0 = stamp.reach, rw = wrongStamp.reach;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (wrong[i]) {
      if (x < rw || y < rw || x >= width - rw || y >= height - rw) continue;
      wrongAt[nWrong] = pad + y * width + x;
      wrongKey[nWrong++] = ((o + 1) << 8) | index[i];
    } else {
      if (x < r0 || y < r0 || x >= width - r0 || y >= height - r0) continue;
      plain[pad + y * width + x] = ((o + 1) << 8) | index[i];
    }
  }
  // plain points: the 5-pixel plus (the stamp at radius 1, what the style rules
  // give at these counts) or a single pixel read directly, other stamps by runs
  const plus = isPlus(stamp, width), single = stamp.fill.length === 1;
  const a = plus || single ? null : stampFilter(plain, stamp, width, M, scratch, "plain");
  if (nWrong) crossKeys(wrongAt, wrongKey, nWrong, wrongStamp, width, M, scratch);
  const table = pal.table, W = width;
  const best = nWrong ? scratch.best : null;
  if (a) filterMax(words, plain, a, pad, N, best, table);
  else if (plus) {
    for (let p = 0, q = pad; p < N; p++, q++) {
      let m = plain[q];
      const l = plain[q - 1], r = plain[q + 1], u = plain[q - W], d = plain[q + W];
      if (l > m) m = l;
      if (r > m) m = r;
      if (u > m) m = u;
      if (d > m) m = d;
      if (best) {
        const c = best[q];
        if (c > m) m = c;
      }
      if (m) words[p] = table[m & 255];
    }
  } else {
    for (let p = 0, q = pad; p < N; p++, q++) {
      let m = plain[q];
      if (best) {
        const c = best[q];
        if (c > m) m = c;
      }
      if (m) words[p] = table[m & 255];
    }
  }
  return true;
}

/**
 * scratch.best[q] = the highest key among the misclassified centres (`at`,
 * `keys`: n of them, in draw order, keys ascending) whose cross covers pixel q.
 * Either stamped (each cross written over the earlier ones, as a painter
 * would: n x the stamp's pixels) or, beyond 8 stamp pixels per map pixel, by
 * the max filter over the stamp's runs. Measured in node at 1,000,000 points on
 * 898 x 898 with crosses of 21 pixels: a quarter of them crosses, stamping
 * 18 ms against filtering 20 ms; half of them, 27 ms against 22 ms.
 */
function crossKeys(at, keys, n, stamp, width, M, scratch) {
  if (!scratch.best || scratch.best.length !== M) scratch.best = new Int32Array(M);
  const best = scratch.best, fill = stamp.fill, F = fill.length;
  best.fill(0);
  if (n * F <= 8 * M) {
    for (let j = 0; j < n; j++) {
      const base = at[j], key = keys[j];
      for (let k = 0; k < F; k++) best[base + fill[k]] = key;
    }
    return;
  }
  const crosses = scratch.crosses;
  crosses.fill(0);
  for (let j = 0; j < n; j++) crosses[at[j]] = keys[j];
  filterInto(crosses, stamp, width, M, scratch);
}

/**
 * scratch.best[q] = the highest key among the centres in `keys` whose stamp
 * covers pixel q (q padded as in drawPointsRanked).
 */
function filterInto(keys, stamp, width, M, scratch) {
  const runs = stampFilter(keys, stamp, width, M, scratch, "crosses");
  if (!scratch.best || scratch.best.length !== M) scratch.best = new Int32Array(M);
  const best = scratch.best;
  const offs = runs.map((r) => r.off), bufs = runs.map((r) => r.buf);
  // run by run over the whole buffer (sequential reads), not run by run per pixel
  const lo = -Math.min(...offs), hi = M - Math.max(...offs, 0);
  best.fill(0);
  for (let k = 0; k < runs.length; k++) {
    const buf = bufs[k], off = offs[k];
    for (let q = lo; q < hi; q++) {
      const v = buf[q + off];
      if (v > best[q]) best[q] = v;
    }
  }
}

/** Pixels from plain keys filtered by `runs`, and `best` (or null) on top. */
function filterMax(words, plain, runs, pad, N, best, table) {
  for (let p = 0, q = pad; p < N; p++, q++) {
    let m = best ? best[q] : 0;
    for (let k = 0; k < runs.length; k++) {
      const v = runs[k].buf[q + runs[k].off];
      if (v > m) m = v;
    }
    if (m) words[p] = table[m & 255];
  }
}

/**
 * The stamp's runs ({off, buf}) for the max filter over `keys`: buf[q] is the
 * max of keys[q .. q + len - 1] (each length made from two shorter ones,
 * 5 = 3 + 2), off the run's first pixel relative to the centre. A window
 * reaching past a row's end reads the next row's first pixels, where no
 * centre lies (a stamp's reach exceeds its |dx|).
 */
function stampFilter(keys, stamp, width, M, scratch, name) {
  const made = new Map([[1, keys]]);
  const make = (L) => {
    if (made.has(L)) return made.get(L);
    let a = L - 1;
    while (a > 1 && !made.has(a)) a--;
    const A = make(a), B = make(L - a);
    const id = `${name}${L}`;
    let cur = scratch.runMax.get(id);
    if (!cur || cur.length !== M) scratch.runMax.set(id, (cur = new Int32Array(M)));
    const last = M - L + 1;
    for (let q = 0; q < last; q++) {
      const u = A[q], v = B[q + a];
      cur[q] = u > v ? u : v;
    }
    cur.fill(0, last); // windows past the end hold only padding
    made.set(L, cur);
    return cur;
  };
  return stampRuns(stamp, width).map((r) => ({ off: r.off, buf: make(r.len) }));
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
 * Each point's colour as an index into a table of the distinct colour words
 * ({index: Uint8Array, table: Uint32Array}), or null beyond 256 colours.
 * Kept in `scratch` while `key` is the same object (the caller's token for
 * "these colours": the renderer passes the draw pass, which frame.js makes
 * anew whenever the colours may have changed).
 */
function colorIndex(colors, key, scratch) {
  const n = colors.length;
  // kept on the key object (a draw pass), so passes drawn alternately (the frame shown and one
  // rendered ahead) keep theirs; a key that is not an object is kept in `scratch`
  const holder = key && typeof key === "object" ? key : scratch;
  const c = holder.__colorIndex;
  if (c && c.key === key && c.colors === colors) return c.pal;
  // an open-addressing table of the colours seen (slot: colour + 1, 0 = empty): a Map lookup
  // per point cost ~15 ms at 1,000,000 points whose colours change from one point to the next
  const SLOTS = 1024, slotKey = new Int32Array(SLOTS), slotIdx = new Uint8Array(SLOTS);
  const index = new Uint8Array(n), table = [];
  let last = -1, lastIdx = 0;
  for (let i = 0; i < n; i++) {
    const w = colors[i];
    if (w !== last) {
      const k1 = (w & 0xffffff) + 1; // the ranked path draws opaque colours: the RGB is the key
      let h = (Math.imul(k1, 0x9e3779b1) >>> 22) & (SLOTS - 1);
      while (slotKey[h] !== 0 && slotKey[h] !== k1) h = (h + 1) & (SLOTS - 1);
      if (slotKey[h] === 0) {
        if (table.length === 256) return (holder.__colorIndex = null);
        slotKey[h] = k1;
        slotIdx[h] = table.length;
        table.push(w);
      }
      last = w;
      lastIdx = slotIdx[h];
    }
    index[i] = lastIdx;
  }
  const pal = { index, table: Uint32Array.from(table) };
  Object.defineProperty(holder, "__colorIndex", { value: { key, colors, pal }, writable: true, configurable: true, enumerable: false });
  return pal;
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
    // blend inlined (the colour's part is the same for every pixel of the stamp): crosses at
    // 200,000 points are a third of a frame's writes
    const srb = (fc & 0xff00ff) * a, sg = (fc & 0xff00) * a;
    for (let k = 0; k < fill.length; k++) {
      const q = base + fill[k], d = words[q];
      words[q] = (0xff000000 | ((((srb + (d & 0xff00ff) * b) >>> 8) & 0xff00ff) | (((sg + (d & 0xff00) * b) >>> 8) & 0xff00))) >>> 0;
    }
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
