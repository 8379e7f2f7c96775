import { test } from "node:test";
import assert from "node:assert/strict";
import { visibilityMask, classCounts, sampleHistory } from "../src/filters.js";
import { makeStamp, disk, drawPoints } from "../src/raster.js";
import { unpack } from "../src/colors.js";

const data = {
  labels: Uint8Array.from([0, 1, 2, 0]),
  isTest: Uint8Array.from([0, 0, 1, 1]),
  predictions: Uint8Array.from([0, 2, 2, 1]),
  previous: Uint8Array.from([0, 1, 2, 0]),
};
const base = { split: "both", hidden: new Set(), onlyMisclassified: false, onlyFlipped: false };

test("split filter: train only, test only, both", () => {
  assert.deepEqual(Array.from(visibilityMask(data, { ...base, split: "train" })), [1, 1, 0, 0]);
  assert.deepEqual(Array.from(visibilityMask(data, { ...base, split: "test" })), [0, 0, 1, 1]);
  assert.deepEqual(Array.from(visibilityMask(data, base)), [1, 1, 1, 1]);
});

test("hidden classes (legend clicks) hide by label", () => {
  assert.deepEqual(Array.from(visibilityMask(data, { ...base, hidden: new Set([0]) })), [0, 1, 1, 0]);
});

test("only misclassified, only flipped at this epoch", () => {
  assert.deepEqual(Array.from(visibilityMask(data, { ...base, onlyMisclassified: true })), [0, 1, 0, 1]);
  assert.deepEqual(Array.from(visibilityMask(data, { ...base, onlyFlipped: true })), [0, 1, 0, 1]);
  const first = { ...data, previous: null };
  assert.deepEqual(Array.from(visibilityMask(first, { ...base, onlyFlipped: true })), [0, 0, 0, 0], "nothing flips at the first epoch");
});

test("class counts respect the split filter", () => {
  assert.deepEqual(classCounts(data.labels, data.isTest, "both", 3), [2, 1, 1]);
  assert.deepEqual(classCounts(data.labels, data.isTest, "test", 3), [1, 0, 1]);
});

test("sample history lists predictions, p(label) and flips per epoch", () => {
  const epochs = [
    { epoch: 1, predictions: Uint8Array.from([3]), labelProb: Float32Array.from([0.1]) },
    { epoch: 2, predictions: Uint8Array.from([7]), labelProb: Float32Array.from([0.6]) },
    { epoch: 5, predictions: Uint8Array.from([7]), labelProb: Float32Array.from([0.9]) },
  ];
  const h = sampleHistory(epochs, 0);
  assert.deepEqual(h.map((r) => [r.epoch, r.prediction, r.flipped]), [[1, 3, false], [2, 7, true], [5, 7, false]]);
  assert.equal(h[1].from, 3);
});

test("rasteriser writes fill and outline words around each point, clipped at the edges", () => {
  const W = 20, H = 20;
  const words = new Uint32Array(W * H);
  const st = makeStamp(2, disk, W);
  const colors = Uint32Array.from([0xff000007, 0xff000007]);
  drawPoints(words, W, H, Float32Array.from([10, 0]), Float32Array.from([10, 0]), Uint32Array.from([0, 1]), colors, 255, 0xff000009, new Uint8Array(2), st, st);
  assert.equal(words[10 * W + 10], 0xff000007, "centre is filled");
  assert.equal(words[10 * W + 13], 0xff000009, "ring is outline");
  assert.equal(words[0], 0, "a point on the edge is skipped");
  assert.equal(words.filter((w) => w === 0xff000007).length, st.fill.length);
  words.fill(0);
  words.fill(0xffffffff); // a white map
  drawPoints(words, W, H, Float32Array.from([10]), Float32Array.from([10]), Uint32Array.from([0]), Uint32Array.from([0xff000000]), 51, 0xff000000, new Uint8Array(1), st, st);
  const [r, g, b, a] = unpack(words[10 * W + 10]);
  assert.ok([r, g, b].every((v) => Math.abs(v - 204) <= 1) && a === 255, "a dimmed black point on white blends to 80% white");
});

test("bandOrder groups points by row band, keeping the original order within a band", async () => {
  const { bandOrder } = await import("../src/raster.js");
  const ys = Float32Array.from([40, 3, 35, 1, 100, -5]);
  const out = bandOrder(Uint32Array.from([0, 1, 2, 3, 4, 5]), ys, 64, 4, new Uint32Array(6), new Uint32Array(16));
  assert.deepEqual(Array.from(out), [1, 3, 5, 0, 2, 4]);
});

test("blend mixes each channel by alpha and stays opaque", async () => {
  const { blend } = await import("../src/raster.js");
  const { pack, unpack } = await import("../src/colors.js");
  const out = unpack(blend(pack(0, 100, 200, 255), pack(255, 0, 100, 255), 128));
  for (const [got, want] of [[out[0], 128], [out[1], 50], [out[2], 150]]) assert.ok(Math.abs(got - want) <= 1, `${got} vs ${want}`);
  assert.equal(out[3], 255);
  assert.deepEqual(unpack(blend(pack(1, 2, 3, 255), pack(9, 9, 9, 255), 0)).slice(0, 3).map((v) => Math.abs(v - [1, 2, 3][0]) <= 2), [true, true, true]);
});
