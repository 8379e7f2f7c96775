import { test } from "node:test";
import assert from "node:assert/strict";
import { makeStamp, disk, cross, drawPoints, drawPointsRanked } from "../src/raster.js";

// The fast loops for the small stamps draw exactly what the generic stamp loop draws.
for (const radius of [0, 1]) {
  for (const alpha of [255, 115]) {
    test(`radius ${radius}, alpha ${alpha}: fast loop == generic loop`, () => {
      const W = 40, H = 30, n = 200;
      const xs = new Float32Array(n), ys = new Float32Array(n), colors = new Uint32Array(n);
      let seed = 7;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      for (let i = 0; i < n; i++) {
        xs[i] = rnd() * W;
        ys[i] = rnd() * H;
        colors[i] = (0xff000000 | (rnd() * 0xffffff)) >>> 0;
      }
      const order = Uint32Array.from({ length: n }, (_, i) => i);
      const stamp = makeStamp(radius, disk, W);
      const fast = new Uint32Array(W * H).fill(0xffeeddcc);
      const slow = fast.slice();
      drawPoints(fast, W, H, xs, ys, order, colors, alpha, 0, new Uint8Array(n), stamp, stamp);
      drawPoints(slow, W, H, xs, ys, order, colors, alpha, 0, new Uint8Array(n).fill(1), stamp, stamp); // "wrong": generic path
      assert.deepEqual(fast, slow);
      assert.ok(fast.some((w) => w !== 0xffeeddcc), "something was drawn");
    });
  }
}

// The rank path (huge counts) draws exactly what the stamp loop draws in the same order: crowded
// points (many overlaps), misclassified crosses mixed in, points at the edges (skipped by both).
for (const radius of [0, 1]) {
  for (const wrongShare of [0, 0.02, 0.3]) { // 2%: crosses stamped one by one; 30%: by the max filter
    test(`rank path, radius ${radius}, ${wrongShare * 100}% crosses: == stamp loop`, () => {
      const W = 37, H = 23, n = 1500;
      const xs = new Float32Array(n), ys = new Float32Array(n), colors = new Uint32Array(n), wrong = new Uint8Array(n);
      let seed = 11;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      for (let i = 0; i < n; i++) {
        xs[i] = rnd() * (W + 2) - 1;
        ys[i] = rnd() * (H + 2) - 1;
        colors[i] = (0xff000000 | (rnd() * 0xffffff)) >>> 0;
        wrong[i] = rnd() < wrongShare ? 1 : 0;
      }
      const order = Uint32Array.from({ length: n }, (_, i) => (i * 7) % n); // a permutation, not 0..n-1
      const stamp = makeStamp(radius, disk, W), wrongStamp = makeStamp(radius + 1, cross, W);
      const want = new Uint32Array(W * H).fill(0xffeeddcc);
      const got = want.slice();
      drawPoints(want, W, H, xs, ys, order, colors, 255, 0, wrong, stamp, wrongStamp);
      const scratch = { rc: new Int32Array(2 * W * H), top: new Int32Array(W * H), counts: null, crosses: null };
      assert.equal(drawPointsRanked(got, W, H, xs, ys, order, colors, wrong, stamp, wrongStamp, scratch), true);
      assert.deepEqual(got, want);
      assert.ok(got.some((w) => w === 0xffeeddcc) && got.some((w) => w !== 0xffeeddcc), "some pixels drawn, some not");
    });
  }
}

test("rank path refuses stamps it does not draw (radius 2)", () => {
  const W = 20, H = 20, scratch = { rc: new Int32Array(2 * W * H), top: new Int32Array(W * H), counts: null, crosses: null };
  const words = new Uint32Array(W * H);
  const r = drawPointsRanked(words, W, H, new Float32Array([10]), new Float32Array([10]), new Uint32Array([0]),
    new Uint32Array([0xff0000ff]), new Uint8Array(1), makeStamp(2, disk, W), makeStamp(3, cross, W), scratch);
  assert.equal(r, false);
  assert.ok(words.every((w) => w === 0));
});
