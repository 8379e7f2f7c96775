import { test } from "node:test";
import assert from "node:assert/strict";
import { makeStamp, disk, drawPoints } from "../src/raster.js";

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
