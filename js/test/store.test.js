import { test } from "node:test";
import assert from "node:assert/strict";
import { EpochStore, resolveChild } from "../src/store.js";

function fakeModel(state) {
  const handlers = {};
  return {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; (handlers[`change:${k}`] || []).forEach((f) => f()); },
    on: (ev, f) => { (handlers[ev] = handlers[ev] || []).push(f); },
    save_changes() {},
  };
}

function epochState(epoch, n) {
  return {
    epoch,
    positions: new Float32Array(2 * n).fill(epoch),
    predictions: new Uint8Array(n),
    confidence: new Uint16Array(n).fill(65535),
    label_prob: new Uint16Array(n),
    background: new Uint8Array(0),
    background_extent: [0, 1, 0, 1],
    metrics: { ppr: epoch / 10 },
  };
}

test("child references resolve through the widget manager (Jupyter) or are models already (offline page)", async () => {
  const child = fakeModel(epochState(1, 2));
  const parent = { widget_manager: { get_model: async (id) => (id === "abc" ? child : null) } };
  assert.equal(await resolveChild("IPY_MODEL_abc", parent, null), child);
  assert.equal(await resolveChild(child, {}, null), child);
  const host = { getModel: async (ref) => (ref === "anywidget:abc" ? child : null) };
  assert.equal(await resolveChild("IPY_MODEL_abc", {}, host), child);
});

test("the store decodes each epoch once, keeps them sorted, and picks up added epochs", async () => {
  const c5 = fakeModel(epochState(5, 3)), c2 = fakeModel(epochState(2, 3)), c9 = fakeModel(epochState(9, 3));
  c5.model_id = "m5"; c2.model_id = "m2"; c9.model_id = "m9";
  const parent = fakeModel({ epoch_data: [c5, c2] });
  const loaded = [];
  const store = await new Promise((resolve) => {
    const s = new EpochStore(parent, null, 3, 10, (e) => { loaded.push(e.epoch); if (loaded.length === 2) resolve(s); }, assert.fail);
  });
  assert.deepEqual(store.numbers(), [2, 5]);
  parent.set("epoch_data", [c5, c2, c9]);
  store.sync();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(store.numbers(), [2, 5, 9]);
  assert.deepEqual(loaded.sort(), [2, 5, 9], "earlier epochs are not decoded again");
  assert.equal(store.get(9).metrics.ppr, 0.9);
  assert.equal(store.indexOf(5), 1);
});
