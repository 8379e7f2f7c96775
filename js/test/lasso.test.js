import { test } from "node:test";
import assert from "node:assert/strict";
import { pointInPolygon, pointsInPolygon, combineSelection, polygonBounds } from "../src/lasso.js";

const square = [0, 0, 10, 0, 10, 10, 0, 10];

test("a point inside a square is inside, one outside is not", () => {
  assert.equal(pointInPolygon(5, 5, square), true);
  assert.equal(pointInPolygon(15, 5, square), false);
  assert.equal(pointInPolygon(-0.1, 5, square), false);
});

test("concave polygon: the notch of a U is outside", () => {
  const u = [0, 0, 9, 0, 9, 9, 6, 9, 6, 3, 3, 3, 3, 9, 0, 9];
  assert.equal(pointInPolygon(4.5, 6, u), false); // in the notch
  assert.equal(pointInPolygon(1.5, 6, u), true); // left arm
  assert.equal(pointInPolygon(7.5, 6, u), true); // right arm
  assert.equal(pointInPolygon(4.5, 1.5, u), true); // base
});

test("banded hit test agrees with the plain even-odd rule on random points and a random star", () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const poly = [];
  for (let k = 0; k < 150; k++) {
    const a = (2 * Math.PI * k) / 150, r = 50 + 40 * rnd();
    poly.push(100 + r * Math.cos(a), 100 + r * Math.sin(a));
  }
  const n = 20000;
  const xs = new Float32Array(n), ys = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = 200 * rnd();
    ys[i] = 200 * rnd();
  }
  const hits = pointsInPolygon(xs, ys, poly);
  const expected = [];
  for (let i = 0; i < n; i++) if (pointInPolygon(xs[i], ys[i], poly)) expected.push(i);
  assert.deepEqual(Array.from(hits), expected);
  assert.ok(expected.length > 1000 && expected.length < n);
});

test("the cell grid gives the plain even-odd answer for any cell size, self-crossing lassos and points on grid lines", () => {
  let seed = 3;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const star = [], scribble = [];
  for (let k = 0; k < 200; k++) {
    const a = (2 * Math.PI * k) / 200, r = k % 2 ? 30 : 90;
    star.push(100 + r * Math.cos(a), 100 + r * Math.sin(a));
    scribble.push(200 * rnd(), 200 * rnd()); // crosses itself everywhere
  }
  const n = 30000;
  const xs = new Float32Array(n), ys = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = i % 5 === 0 ? Math.round(200 * rnd()) : 200 * rnd(); // some on whole pixels (cell borders)
    ys[i] = i % 7 === 0 ? Math.round(200 * rnd()) : 200 * rnd();
  }
  const vis = new Uint8Array(n).map((_, i) => (i % 3 ? 1 : 0));
  for (const poly of [star, scribble]) {
    const expected = [];
    for (let i = 0; i < n; i++) if (vis[i] && pointInPolygon(xs[i], ys[i], poly)) expected.push(i);
    assert.ok(expected.length > 500);
    for (const cell of [0.5, 1, 2, 7]) {
      assert.deepEqual(Array.from(pointsInPolygon(xs, ys, poly, vis, cell)), expected, `cell ${cell}`);
    }
  }
});

test("invisible points are never hit, and a degenerate polygon hits nothing", () => {
  const xs = Float32Array.from([5, 6]), ys = Float32Array.from([5, 6]);
  assert.deepEqual(Array.from(pointsInPolygon(xs, ys, square, (i) => i === 1)), [1]);
  assert.equal(pointsInPolygon(xs, ys, [0, 0, 10, 10]).length, 0);
});

test("combineSelection: replace, add (shift), subtract (alt)", () => {
  const cur = new Set([1, 2, 3]);
  assert.deepEqual([...combineSelection(cur, [3, 4], "replace")].sort(), [3, 4]);
  assert.deepEqual([...combineSelection(cur, [3, 4], "add")].sort(), [1, 2, 3, 4]);
  assert.deepEqual([...combineSelection(cur, [3, 4], "subtract")].sort(), [1, 2]);
  assert.deepEqual([...cur].sort(), [1, 2, 3], "the current selection is not modified");
});

test("polygonBounds", () => {
  assert.deepEqual(polygonBounds([1, 5, -2, 3, 4, -1]), { x0: -2, y0: -1, x1: 4, y1: 5 });
});
