// Pure parts of the analysis views: dynamics colouring and range filter, search parsing,
// the selection breakdown, the cartography layout, and the kernel request channel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VIRIDIS, MISSING_RGB, decodeDynamics, finiteRange, viridis, statColors, applyRangeFilter, isStat } from "../src/dynamics.js";
import { unpack } from "../src/colors.js";
import { parseQuery, selectionBreakdown } from "../src/search.js";
import { cartographyLayout, toScreen, MARGIN } from "../src/cartography.js";
import { KernelChannel, waitingText } from "../src/probe.js";

const info = { columns: ["aum", "first_learned"], descriptions: {}, aum_from: "logits", epochs: [1, 2] };

function buffer(cols) {
  const f = Float32Array.from(cols.flat());
  return new Uint8Array(f.buffer);
}

test("viridis runs from dark purple to yellow (matplotlib's end points)", () => {
  assert.equal(VIRIDIS.length, 768);
  assert.deepEqual(Array.from(VIRIDIS.slice(0, 3)), [0x44, 0x01, 0x54]);
  assert.deepEqual(Array.from(VIRIDIS.slice(765)), [0xfd, 0xe7, 0x24]);
  // luminance rises monotonically (readable in greyscale)
  let prev = -1;
  for (let k = 0; k < 256; k += 15) {
    const [r, g, b] = VIRIDIS.slice(3 * k, 3 * k + 3);
    const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    assert.ok(y > prev, `luminance at ${k}`);
    prev = y;
  }
});

test("decodeDynamics splits the (K, n) float32 buffer into named columns", () => {
  const dyn = decodeDynamics(buffer([[-1, 0.5, 2], [1, NaN, 3]]), info, 3);
  assert.deepEqual(Array.from(dyn.values.aum), [-1, 0.5, 2]);
  assert.ok(Number.isNaN(dyn.values.first_learned[1]));
  assert.deepEqual(dyn.ranges.first_learned, [1, 3]);
  assert.ok(isStat("aum", dyn) && !isStat("label", dyn) && !isStat("aum", null));
  assert.throws(() => decodeDynamics(buffer([[1, 2]]), info, 3), /expected 2 x 3 float32/);
  assert.equal(decodeDynamics(new Uint8Array(0), info, 3), null);
});

test("finiteRange ignores NaN and widens a constant column", () => {
  assert.deepEqual(finiteRange(Float32Array.from([NaN, 2, 5])), [2, 5]);
  assert.deepEqual(finiteRange(Float32Array.from([0, 0])), [-0.5, 0.5]);
  assert.deepEqual(finiteRange(Float32Array.from([NaN])), [0, 1]);
});

test("statColors maps low to viridis' start, high to its end, NaN to grey", () => {
  const words = statColors(Float32Array.from([0, 10, 5, NaN, 20]), 0, 10);
  assert.deepEqual(unpack(words[0]).slice(0, 3), Array.from(VIRIDIS.slice(0, 3)));
  assert.deepEqual(unpack(words[1]).slice(0, 3), Array.from(VIRIDIS.slice(765)));
  assert.deepEqual(unpack(words[2]).slice(0, 3), viridis(5, 0, 10));
  assert.deepEqual(unpack(words[3]).slice(0, 3), MISSING_RGB);
  assert.deepEqual(unpack(words[4]), unpack(words[1]), "clamped above the range");
});

test("applyRangeFilter keeps min <= value <= max, drops NaN, leaves hidden points hidden", () => {
  const dyn = decodeDynamics(buffer([[-1, 0.5, 2, 3], [1, NaN, 3, 2]]), info, 4);
  const mask = Uint8Array.from([1, 1, 1, 0]);
  applyRangeFilter(mask, dyn, { column: "aum", min: 0, max: 2.5 });
  assert.deepEqual(Array.from(mask), [0, 1, 1, 0]);
  const m2 = applyRangeFilter(Uint8Array.from([1, 1, 1, 1]), dyn, { column: "first_learned", min: null, max: 2 });
  assert.deepEqual(Array.from(m2), [1, 0, 0, 1]);
  assert.deepEqual(Array.from(applyRangeFilter(Uint8Array.from([1, 1]), dyn, null)), [1, 1]);
});

test("parseQuery: sample indices, class names, prefixes, and what it cannot match", () => {
  const classes = ["airplane", "automobile", "bird", "cat"];
  assert.deepEqual(parseQuery("42", classes, 100), { kind: "index", index: 42 });
  assert.deepEqual(parseQuery(" #7 ", classes, 100), { kind: "index", index: 7 });
  assert.deepEqual(parseQuery("BIRD", classes, 100), { kind: "class", cls: 2 });
  assert.deepEqual(parseQuery("ca", classes, 100), { kind: "class", cls: 3 });
  assert.match(parseQuery("a", classes, 100).message, /matches 2 classes: airplane, automobile/);
  assert.match(parseQuery("100", classes, 100).message, /no sample 100: this run has 100 samples/);
  assert.match(parseQuery("dog", classes, 100).message, /no sample index or class matches/);
  assert.equal(parseQuery("  ", classes, 100), null);
  // a class literally named by digits is a class first
  assert.deepEqual(parseQuery("3", ["0", "1", "2", "3"], 100), { kind: "class", cls: 3 });
  assert.deepEqual(parseQuery("#3", ["0", "1", "2", "3"], 100), { kind: "index", index: 3 });
});

test("selectionBreakdown counts the selection by label and correct / wrong", () => {
  const sel = Uint8Array.from([1, 1, 1, 0, 1]);
  const labels = Uint8Array.from([0, 1, 1, 1, 2]);
  const preds = Uint8Array.from([0, 0, 1, 1, 2]);
  const b = selectionBreakdown(sel, labels, preds, 3);
  assert.deepEqual([b.total, b.correct, b.wrong], [4, 3, 1]);
  assert.deepEqual(b.rows, [{ cls: 1, count: 2, correct: 1, wrong: 1 }, { cls: 0, count: 1, correct: 1, wrong: 0 }, { cls: 2, count: 1, correct: 1, wrong: 0 }]);
  const none = selectionBreakdown(sel, labels, null, 3);
  assert.equal(none.correct, null);
});

test("cartography: confidence 1 at the top, variability 0 at the left", () => {
  const v = Float32Array.from([0, 0.2, 0.4]), c = Float32Array.from([1, 0.5, 0]);
  const layout = cartographyLayout(v);
  assert.equal(layout.x0, 0);
  assert.ok(Math.abs(layout.x1 - 0.42) < 1e-6);
  const { xs, ys } = toScreen(v, c, layout, 200, 100);
  assert.equal(xs[0], MARGIN.left);
  assert.equal(ys[0], MARGIN.top);
  assert.equal(ys[2], 100 - MARGIN.bottom);
  assert.ok(xs[2] < 200 - MARGIN.right && xs[2] > xs[1]);
});

function fakeModel() {
  const handlers = [];
  return {
    sent: [],
    send(msg) { this.sent.push(msg); },
    on(ev, cb) { if (ev === "msg:custom") handlers.push(cb); },
    off() {},
    reply(msg) { for (const h of handlers) h(msg); },
  };
}

test("KernelChannel: a reply answers the request it names", () => {
  const model = fakeModel();
  const ch = new KernelChannel(model, true, 50);
  const seen = [];
  const id = ch.request("probe", { epoch: 3, x: 1, y: 2 }, (s) => seen.push(s));
  assert.deepEqual(model.sent[0], { type: "dvi_request", request: "probe", id, epoch: 3, x: 1, y: 2 });
  model.reply({ type: "dvi_reply", id: id + 99, reply: {} });   // someone else's
  model.reply({ type: "dvi_reply", id, reply: { prediction: 4 } });
  assert.deepEqual(seen, [{ status: "pending" }, { status: "ok", reply: { prediction: 4 } }]);
  ch.dispose();
});

test("KernelChannel: a busy kernel is reported, and its late reply still lands", async () => {
  const model = fakeModel();
  const ch = new KernelChannel(model, true, 20);
  const seen = [];
  const id = ch.request("neighbours", { epoch: 1, index: 5 }, (s) => seen.push(s.status));
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(seen, ["pending", "busy"]);
  model.reply({ type: "dvi_reply", id, error: "DVIError: boom" });
  assert.deepEqual(seen, ["pending", "busy", "error"]);
  ch.dispose();
});

test("KernelChannel: without a kernel it says so at once and sends nothing", () => {
  const model = fakeModel();
  const ch = new KernelChannel(model, false);
  const seen = [];
  assert.equal(ch.request("probe", {}, (s) => seen.push(s.status)), null);
  assert.deepEqual(seen, ["offline"]);
  assert.equal(model.sent.length, 0);
  assert.match(waitingText("offline", "Probing the map"), /needs the Python kernel; this page has none/);
  assert.match(waitingText("busy", "Probing the map"), /busy/);
});
