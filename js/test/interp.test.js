import { test } from "node:test";
import assert from "node:assert/strict";
import { ease, lerpPositions, transitionProgress } from "../src/interp.js";
import { fitView, toScreen, toData, zoomAt, panBy, projectAll, projectLerp } from "../src/view.js";

test("ease runs from 0 to 1, symmetric, clamped", () => {
  assert.equal(ease(0), 0);
  assert.equal(ease(1), 1);
  assert.equal(ease(0.5), 0.5);
  assert.equal(ease(-1), 0);
  assert.equal(ease(2), 1);
  assert.ok(ease(0.25) < 0.25, "slow start");
});

test("positions glide linearly between epochs and land exactly", () => {
  const a = Float32Array.from([0, 0, 10, 10]), b = Float32Array.from([10, -10, 10, 20]);
  assert.deepEqual(Array.from(lerpPositions(a, b, 0.5)), [5, -5, 10, 15]);
  assert.deepEqual(Array.from(lerpPositions(a, b, 0)), Array.from(a));
  assert.deepEqual(Array.from(lerpPositions(a, b, 1)), Array.from(b));
  assert.throws(() => lerpPositions(a, Float32Array.from([1, 2])));
});

test("transitionProgress reports done at the end of the duration", () => {
  assert.deepEqual(transitionProgress(1000, 500), { t: 1, done: true });
  assert.equal(transitionProgress(250, 500).done, false);
  assert.equal(transitionProgress(0, 0).done, true);
});

test("view: fit puts the extent's centre at the canvas centre; screen<->data round-trips", () => {
  const v = fitView([0, 10, 0, 5], 200, 100, 0);
  assert.deepEqual(toScreen(v, 200, 100, 5, 2.5), [100, 50]);
  assert.deepEqual(toScreen(v, 200, 100, 0, 5), [0, 0], "top-left of the extent; y grows upwards in data");
  const [x, y] = toData(v, 200, 100, 37, 81);
  const [sx, sy] = toScreen(v, 200, 100, x, y);
  assert.ok(Math.abs(sx - 37) < 1e-9 && Math.abs(sy - 81) < 1e-9);
});

test("zoom keeps the point under the cursor fixed; pan moves by the drag", () => {
  const v = fitView([0, 10, 0, 10], 100, 100, 0);
  const before = toData(v, 100, 100, 30, 70);
  const z = zoomAt(v, 100, 100, 30, 70, 2);
  const after = toData(z, 100, 100, 30, 70);
  assert.ok(Math.abs(before[0] - after[0]) < 1e-9 && Math.abs(before[1] - after[1]) < 1e-9);
  assert.equal(z.k, 2 * v.k);
  const p = panBy(v, 10, 0);
  assert.deepEqual(toScreen(p, 100, 100, 5, 5), [60, 50]);
});

test("projectAll matches toScreen point by point", () => {
  const v = fitView([-1, 1, -1, 1], 80, 60);
  const pos = Float32Array.from([0.5, -0.25, -1, 1]);
  const xs = new Float32Array(2), ys = new Float32Array(2);
  projectAll(v, 80, 60, pos, xs, ys);
  for (let i = 0; i < 2; i++) {
    const [sx, sy] = toScreen(v, 80, 60, pos[2 * i], pos[2 * i + 1]);
    assert.ok(Math.abs(xs[i] - sx) < 1e-4 && Math.abs(ys[i] - sy) < 1e-4);
  }
});

test("projectLerp equals lerpPositions then projectAll", () => {
  const v = fitView([-2, 3, -1, 1], 90, 50);
  const a = Float32Array.from([0.5, -0.25, -1, 1, 2, 0]), b = Float32Array.from([-1.5, 0.75, 3, -1, 0, 0.5]);
  for (const t of [0, 0.3, 1]) {
    const xs = new Float32Array(3), ys = new Float32Array(3), wx = new Float32Array(3), wy = new Float32Array(3);
    projectLerp(v, 90, 50, a, b, t, xs, ys);
    projectAll(v, 90, 50, lerpPositions(a, b, t), wx, wy);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(xs[i] - wx[i]) < 1e-3 && Math.abs(ys[i] - wy[i]) < 1e-3, `t ${t}, point ${i}`);
  }
  assert.throws(() => projectLerp(v, 90, 50, a, b.subarray(0, 4), 0.5, new Float32Array(3), new Float32Array(3)));
});
