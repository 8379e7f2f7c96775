// The golden vectors in tests/protocol_vectors.json (written from the Python codecs):
// JS must decode them to the same values and encode the selection to the same bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  WIDGET_TRAITS, EPOCH_TRAITS, META_FIELDS, asTyped, decodeClasses, decodeProbabilities, decodeIndices,
  encodeIndices, decodeEpoch, pngSize, readMeta,
} from "../src/protocol.js";

const V = JSON.parse(readFileSync(new URL("../../tests/protocol_vectors.json", import.meta.url), "utf8"));
const bytes = (b64) => {
  const buf = Buffer.from(b64, "base64");
  // an odd offset on purpose: Jupyter's DataViews sit anywhere in a message
  const host = new Uint8Array(buf.length + 1);
  host.set(buf, 1);
  return new DataView(host.buffer, 1, buf.length);
};

test("both sides have the same trait tables and meta fields", () => {
  assert.deepEqual(WIDGET_TRAITS, V.widget_traits);
  assert.deepEqual(EPOCH_TRAITS, V.epoch_traits);
  assert.deepEqual(Object.keys(META_FIELDS).sort(), V.meta_fields);
});

test("float32 positions", () => {
  const got = Array.from(asTyped(bytes(V.positions.bytes), Float32Array));
  assert.deepEqual(got, V.positions.xy.flat().map(Math.fround));
});

test("uint16 probabilities", () => {
  const got = Array.from(decodeProbabilities(bytes(V.probabilities.bytes)));
  got.forEach((v, i) => assert.ok(Math.abs(v - V.probabilities.decoded[i]) < 1e-7, `${v} vs ${V.probabilities.decoded[i]}`));
});

test("class indices: uint8 up to 256 classes, uint16 beyond", () => {
  for (const k of ["classes_uint8", "classes_uint16"]) {
    const c = V[k];
    assert.deepEqual(Array.from(decodeClasses(bytes(c.bytes), c.n_classes)), c.values, k);
  }
});

test("selected: JS encodes the same uint32 bytes (sorted, unique) and decodes them", () => {
  const enc = encodeIndices(V.selected.input);
  assert.equal(Buffer.from(enc.buffer, enc.byteOffset, enc.byteLength).toString("base64"), V.selected.bytes);
  assert.deepEqual(Array.from(decodeIndices(bytes(V.selected.bytes))), V.selected.decoded);
});

test("PNG map payload: size from the header; anything else is refused", () => {
  assert.deepEqual(pngSize(bytes(V.png.bytes)), [V.png.width, V.png.height]);
  assert.throws(() => pngSize(bytes(V.not_png.bytes)), /not a PNG/);
});

test("an epoch's child state decodes to the same arrays", () => {
  const { n, n_classes, state, decoded } = V.epoch;
  const get = (k) => (["positions", "predictions", "confidence", "label_prob", "background"].includes(k) ? bytes(state[k]) : state[k]);
  const e = decodeEpoch(get, n, n_classes);
  assert.equal(e.epoch, decoded.epoch);
  assert.deepEqual(Array.from(e.positions), decoded.positions.map(Math.fround));
  assert.deepEqual(Array.from(e.predictions), decoded.predictions);
  Array.from(e.confidence).forEach((v, i) => assert.ok(Math.abs(v - decoded.confidence[i]) < 1e-7));
  Array.from(e.labelProb).forEach((v, i) => assert.ok(Math.abs(v - decoded.label_prob[i]) < 1e-7));
  assert.deepEqual(e.metrics, decoded.metrics);
  const bad = (k) => (k === "background" ? bytes(V.not_png.bytes) : get(k));
  assert.throws(() => decodeEpoch(bad, n, n_classes), /not a PNG/);
});

test("meta: every field is read as sent", () => {
  assert.deepEqual(readMeta(V.meta), V.meta);
  const empty = readMeta(undefined);
  assert.deepEqual(Object.keys(empty).sort(), V.meta_fields);
});
