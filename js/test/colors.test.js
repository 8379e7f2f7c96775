import { test } from "node:test";
import assert from "node:assert/strict";
import { parseHex, pack, unpack, pointColors, withAlpha, CORRECT_RGB, WRONG_RGB } from "../src/colors.js";

test("parseHex reads #rrggbb and rejects anything else", () => {
  assert.deepEqual(parseHex("#1f77b4"), [31, 119, 180]);
  assert.throws(() => parseHex("red"));
});

test("pack/unpack round-trip in ImageData byte order (r first in memory)", () => {
  const w = pack(10, 20, 30, 40);
  assert.deepEqual(unpack(w), [10, 20, 30, 40]);
  const bytes = new Uint8Array(Uint32Array.from([w]).buffer);
  assert.deepEqual(Array.from(bytes), [10, 20, 30, 40]);
});

test("colour by label, by prediction, by correct/incorrect", () => {
  const rgb = [[255, 0, 0], [0, 0, 255]];
  const labels = Uint8Array.from([0, 1, 1]);
  const preds = Uint8Array.from([0, 0, 1]);
  assert.deepEqual(Array.from(pointColors("label", rgb, labels, preds), unpack), [[255, 0, 0, 255], [0, 0, 255, 255], [0, 0, 255, 255]]);
  assert.deepEqual(Array.from(pointColors("prediction", rgb, labels, preds), unpack), [[255, 0, 0, 255], [255, 0, 0, 255], [0, 0, 255, 255]]);
  assert.deepEqual(Array.from(pointColors("correct", rgb, labels, preds), unpack), [[...CORRECT_RGB, 255], [...WRONG_RGB, 255], [...CORRECT_RGB, 255]]);
});

test("without predictions every mode falls back to labels", () => {
  const rgb = [[1, 2, 3], [4, 5, 6]];
  const labels = Uint8Array.from([1, 0]);
  assert.deepEqual(Array.from(pointColors("correct", rgb, labels, null), unpack), [[4, 5, 6, 255], [1, 2, 3, 255]]);
});

test("withAlpha keeps the colour and replaces the alpha", () => {
  assert.deepEqual(unpack(withAlpha(pack(9, 8, 7, 255), 70)), [9, 8, 7, 70]);
});
