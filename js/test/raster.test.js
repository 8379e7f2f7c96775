import { test } from "node:test";
import assert from "node:assert/strict";
import { makeStamp, disk, cross, drawPoints, drawPointsRanked, blend } from "../src/raster.js";

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
const TABLE = Array.from({ length: 12 }, (_, k) => (0xff000000 | (k * 0x151515 + 0x0a0b0c)) >>> 0);
for (const radius of [0, 1, 2]) {
  for (const wrongShare of [0, 0.02, 0.3]) {
    test(`rank path, radius ${radius}, ${wrongShare * 100}% crosses: == stamp loop`, () => {
      const W = 37, H = 23, n = 1500;
      const xs = new Float32Array(n), ys = new Float32Array(n), colors = new Uint32Array(n), wrong = new Uint8Array(n);
      let seed = 11;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      for (let i = 0; i < n; i++) {
        xs[i] = rnd() * (W + 2) - 1;
        ys[i] = rnd() * (H + 2) - 1;
        colors[i] = TABLE[(rnd() * TABLE.length) | 0];
        wrong[i] = rnd() < wrongShare ? 1 : 0;
      }
      const order = Uint32Array.from({ length: n }, (_, i) => (i * 7) % n); // a permutation, not 0..n-1
      const stamp = makeStamp(radius, disk, W), wrongStamp = makeStamp(radius + 1, cross, W);
      const want = new Uint32Array(W * H).fill(0xffeeddcc);
      const got = want.slice();
      drawPoints(want, W, H, xs, ys, order, colors, 255, 0, wrong, stamp, wrongStamp);
      const scratch = {};
      assert.equal(drawPointsRanked(got, W, H, xs, ys, order, colors, wrong, stamp, wrongStamp, scratch, {}), true);
      assert.deepEqual(got, want);
      assert.ok(got.some((w) => w === 0xffeeddcc) && got.some((w) => w !== 0xffeeddcc), "some pixels drawn, some not");
      // the same buffers and colour array, recoloured in place under a new key: the new colours are drawn
      colors.reverse();
      const want2 = new Uint32Array(W * H).fill(0xffeeddcc), got2 = want2.slice();
      drawPoints(want2, W, H, xs, ys, order, colors, 255, 0, wrong, stamp, wrongStamp);
      drawPointsRanked(got2, W, H, xs, ys, order, colors, wrong, stamp, wrongStamp, scratch, {});
      assert.deepEqual(got2, want2);
    });
  }
}

test("rank path: more than 256 colours are refused (the stamp loop draws them)", () => {
  const W = 20, H = 20, n = 300;
  const xs = new Float32Array(n).fill(10), ys = new Float32Array(n).fill(10);
  const colors = Uint32Array.from({ length: n }, (_, i) => (0xff000000 | i) >>> 0);
  const words = new Uint32Array(W * H);
  const r = drawPointsRanked(words, W, H, xs, ys, Uint32Array.from({ length: n }, (_, i) => i), colors,
    new Uint8Array(n), makeStamp(1, disk, W), makeStamp(2, cross, W), {});
  assert.equal(r, false);
  assert.ok(words.every((w) => w === 0));
});

test("a translucent cross blends each of its pixels as blend() does", () => {
  const W = 15, H = 15, stamp = makeStamp(1, disk, W), wrongStamp = makeStamp(3, cross, W);
  const words = Uint32Array.from({ length: W * H }, (_, q) => (0xff000000 | (q * 2654435761)) >>> 0);
  const before = words.slice(), fc = 0xff3366cc, a = 100;
  drawPoints(words, W, H, new Float32Array([7]), new Float32Array([7]), new Uint32Array([0]), new Uint32Array([fc]), a, 0,
    new Uint8Array([1]), stamp, wrongStamp);
  const base = 7 * W + 7;
  for (let q = 0; q < W * H; q++) {
    const inStamp = wrongStamp.fill.includes(q - base);
    assert.equal(words[q], inStamp ? blend(before[q], fc, a) : before[q], `pixel ${q}`);
  }
});
