// Prototype rasterisers for benchmarks/raster_micro.py: alternatives to js/src/raster.js drawPoints,
// measured against it in the same page. Not used by the widget (js/ is the widget's code).
// Density path: one scattered write per point, then per-pixel passes (O(points) + O(pixels)).
// Accumulate per-pixel count and colour sums of the point centres; dilate by the stamp (a plus of
// radius 1 here, as style.json's rule gives at 1M points); compose: alpha_eff = 1 - (1 - a)^count,
// colour = mean colour of the points there (order-independent; exact when they share a colour).
export function drawDensity(words, bg, W, H, xs, ys, n, colors, alpha, acc) {
  const { cnt, r, g, b } = acc;
  cnt.fill(0); r.fill(0); g.fill(0); b.fill(0);
  for (let i = 0; i < n; i++) {
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < 2 || y < 2 || x >= W - 2 || y >= H - 2) continue;
    const p = y * W + x, c = colors[i];
    cnt[p]++; r[p] += c & 255; g[p] += (c >>> 8) & 255; b[p] += (c >>> 16) & 255;
  }
  const la = Math.log(1 - alpha);
  const lut = new Float32Array(256);  // 1 - (1 - a)^k for k < 256
  for (let k = 0; k < 256; k++) lut[k] = 1 - Math.exp(la * k);
  for (let y = 1; y < H - 1; y++) {
    let p = y * W + 1;
    for (let x = 1; x < W - 1; x++, p++) {
      const k = cnt[p] + cnt[p - 1] + cnt[p + 1] + cnt[p - W] + cnt[p + W];
      const d = bg[p];
      if (k === 0) { words[p] = d; continue; }
      const R = r[p] + r[p - 1] + r[p + 1] + r[p - W] + r[p + W];
      const G = g[p] + g[p - 1] + g[p + 1] + g[p - W] + g[p + W];
      const B = b[p] + b[p - 1] + b[p + 1] + b[p - W] + b[p + W];
      const a = lut[k > 255 ? 255 : k], ia = 1 - a, inv = a / k;
      words[p] = (0xff000000 | ((B * inv + ((d >>> 16) & 255) * ia) << 16) | ((G * inv + ((d >>> 8) & 255) * ia) << 8) | (R * inv + (d & 255) * ia)) >>> 0;
    }
  }
}

// Same, interleaved accumulator (one cache line per point) and 16-bit class colour sums.
export function drawDensity2(words, bg, W, H, xs, ys, n, colors, alpha, acc4, lut) {
  acc4.fill(0);
  for (let i = 0; i < n; i++) {
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < 2 || y < 2 || x >= W - 2 || y >= H - 2) continue;
    const q = (y * W + x) << 2, c = colors[i];
    acc4[q]++; acc4[q + 1] += c & 255; acc4[q + 2] += (c >>> 8) & 255; acc4[q + 3] += (c >>> 16) & 255;
  }
  const W4 = W << 2;
  for (let y = 1; y < H - 1; y++) {
    let p = y * W + 1, q = p << 2;
    for (let x = 1; x < W - 1; x++, p++, q += 4) {
      const k = acc4[q] + acc4[q - 4] + acc4[q + 4] + acc4[q - W4] + acc4[q + W4];
      if (k === 0) { words[p] = bg[p]; continue; }
      const d = bg[p];
      const R = acc4[q + 1] + acc4[q - 3] + acc4[q + 5] + acc4[q + 1 - W4] + acc4[q + 1 + W4];
      const G = acc4[q + 2] + acc4[q - 2] + acc4[q + 6] + acc4[q + 2 - W4] + acc4[q + 2 + W4];
      const B = acc4[q + 3] + acc4[q - 1] + acc4[q + 7] + acc4[q + 3 - W4] + acc4[q + 3 + W4];
      const a = lut[k > 255 ? 255 : k], ia = 1 - a, inv = a / k;
      words[p] = (0xff000000 | ((B * inv + ((d >>> 16) & 255) * ia) << 16) | ((G * inv + ((d >>> 8) & 255) * ia) << 8) | (R * inv + (d & 255) * ia)) >>> 0;
    }
  }
}

// The current stamp loop specialised for the 5-pixel plus (radius 1, no ring) and (x + 0.5) | 0 rounding.
export function drawPlus(words, W, H, xs, ys, order, colors) {
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < 2 || y < 2 || x >= W - 2 || y >= H - 2) continue;
    const p = y * W + x, c = colors[i];
    words[p] = c; words[p - 1] = c; words[p + 1] = c; words[p - W] = c; words[p + W] = c;
  }
}

// Specialised blended plus (alpha a of 256), the blend inlined.
export function drawPlusBlend(words, W, H, xs, ys, order, colors, a) {
  const b = 256 - a;
  for (let o = 0; o < order.length; o++) {
    const i = order[o];
    const x = (xs[i] + 0.5) | 0, y = (ys[i] + 0.5) | 0;
    if (x < 2 || y < 2 || x >= W - 2 || y >= H - 2) continue;
    const p = y * W + x, c = colors[i];
    const crb = (c & 0xff00ff) * a, cg = (c & 0xff00) * a;
    let d = words[p]; words[p] = (0xff000000 | ((crb + (d & 0xff00ff) * b) >>> 8 & 0xff00ff) | ((cg + (d & 0xff00) * b) >>> 8 & 0xff00)) >>> 0;
    d = words[p - 1]; words[p - 1] = (0xff000000 | ((crb + (d & 0xff00ff) * b) >>> 8 & 0xff00ff) | ((cg + (d & 0xff00) * b) >>> 8 & 0xff00)) >>> 0;
    d = words[p + 1]; words[p + 1] = (0xff000000 | ((crb + (d & 0xff00ff) * b) >>> 8 & 0xff00ff) | ((cg + (d & 0xff00) * b) >>> 8 & 0xff00)) >>> 0;
    d = words[p - W]; words[p - W] = (0xff000000 | ((crb + (d & 0xff00ff) * b) >>> 8 & 0xff00ff) | ((cg + (d & 0xff00) * b) >>> 8 & 0xff00)) >>> 0;
    d = words[p + W]; words[p + W] = (0xff000000 | ((crb + (d & 0xff00ff) * b) >>> 8 & 0xff00ff) | ((cg + (d & 0xff00) * b) >>> 8 & 0xff00)) >>> 0;
  }
}
