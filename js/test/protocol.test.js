import { test } from "node:test";
import assert from "node:assert/strict";
import { asTyped, decodeClasses, decodeProbabilities, decodeIndices, encodeIndices, decodeEpoch } from "../src/protocol.js";

test("float32 positions decode from an aligned DataView without copying", () => {
  const src = Float32Array.from([1.5, -2, 3.25, 4]);
  const dv = new DataView(src.buffer);
  const out = asTyped(dv, Float32Array);
  assert.deepEqual(Array.from(out), [1.5, -2, 3.25, 4]);
  assert.equal(out.buffer, src.buffer);
});

test("an unaligned DataView (as inside a websocket message) is copied and decoded correctly", () => {
  const msg = new Uint8Array(1 + 8);
  msg.set(new Uint8Array(Float32Array.from([7.5, -1]).buffer), 1);
  const out = asTyped(new DataView(msg.buffer, 1, 8), Float32Array);
  assert.deepEqual(Array.from(out), [7.5, -1]);
});

test("a buffer that is not a whole number of elements fails loudly", () => {
  assert.throws(() => asTyped(new Uint8Array(7), Float32Array), /whole number/);
});

test("classes are uint8 up to 256 classes and uint16 beyond", () => {
  assert.ok(decodeClasses(new Uint8Array([1, 2]), 10) instanceof Uint8Array);
  const wide = decodeClasses(new DataView(Uint16Array.from([300, 2]).buffer), 500);
  assert.deepEqual(Array.from(wide), [300, 2]);
});

test("uint16-quantised probabilities decode to [0, 1]", () => {
  const p = decodeProbabilities(Uint16Array.from([0, 65535, 32768]));
  assert.equal(p[0], 0);
  assert.equal(p[1], 1);
  assert.ok(Math.abs(p[2] - 0.5) < 1e-4);
});

test("selection indices: encode sorts and dedups into uint32; decode reads buffers and lists", () => {
  const dv = encodeIndices([5, 1, 5, 70000]);
  assert.equal(dv.byteLength, 12);
  assert.deepEqual(Array.from(decodeIndices(dv)), [1, 5, 70000]);
  assert.deepEqual(Array.from(decodeIndices([3, 4])), [3, 4]);
  assert.equal(decodeIndices(null).length, 0);
});

test("decodeEpoch checks every array's length against the point count", () => {
  const state = {
    epoch: 3,
    positions: new DataView(Float32Array.from([0, 1, 2, 3]).buffer),
    predictions: new DataView(Uint8Array.from([1, 0]).buffer),
    confidence: new DataView(Uint16Array.from([65535, 0]).buffer),
    label_prob: new DataView(Uint16Array.from([0, 65535]).buffer),
    background: new DataView(new Uint8Array(0).buffer),
    background_extent: [0, 1, 0, 1],
    metrics: { ppr: 0.9 },
  };
  const e = decodeEpoch((k) => state[k], 2, 10);
  assert.equal(e.epoch, 3);
  assert.deepEqual(Array.from(e.predictions), [1, 0]);
  assert.deepEqual(Array.from(e.labelProb), [0, 1]);
  assert.equal(e.metrics.ppr, 0.9);
  assert.throws(() => decodeEpoch((k) => state[k], 3, 10), /positions for 3 points/);
});
