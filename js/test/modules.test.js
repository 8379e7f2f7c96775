// Unit tests of the pure modules the app is made of: playback, input routing
// (shadow DOM), frame composition rules, faithfulness assessment, trail sampling, axis ticks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Playback, STEP_MS } from "../src/playback.js";
import { originOf, fromInside, isWidgetKey, keyAction } from "../src/input.js";
import { pointStyle, buildPasses, FrameComposer } from "../src/frame.js";
import { METRICS, assess, runRange, warnings } from "../src/faith.js";
import { trailPoints } from "../src/overlay.js";
import { epochTicks } from "../src/panels.js";
import { OPTIONS } from "../src/sync.js";
import { STYLE } from "../src/style.js";
import { unpack } from "../src/colors.js";

const nums = [1, 3, 7];
const playback = () => {
  const events = [];
  const pb = new Playback(() => nums, (k) => events.push(k));
  return { pb, events };
};

test("playback: jump, seek by slider index (pausing first keeps the sought epoch), step glides", () => {
  const { pb, events } = playback();
  assert.equal(pb.jumpTo(7), true);
  assert.equal(pb.current, 7);
  pb.play(0);
  assert.equal(pb.playing, true, "play from the last epoch restarts at the first");
  assert.equal(pb.current, 1);
  assert.equal(pb.transition.to, 3);
  pb.pause();
  pb.transition = null;
  assert.equal(pb.jumpTo(99), false);
  assert.equal(pb.pending, 99, "an epoch not loaded yet is remembered");
  pb.playing = true;
  assert.equal(pb.seekIndex(1), true);
  assert.equal(pb.current, 3, "the slider's index wins over playback");
  assert.equal(pb.playing, false);
  pb.step(1, 1000);
  assert.deepEqual(pb.transition, { from: 3, to: 7, start: 1000, duration: STEP_MS });
  assert.equal(pb.target(), 7);
  const mid = pb.advance(1000 + STEP_MS / 2);
  assert.ok(mid.moving && mid.t > 0 && mid.t < 1);
  pb.advance(1000 + STEP_MS);
  assert.equal(pb.current, 7);
  assert.equal(pb.transition, null);
  assert.ok(events.includes("glide") && events.includes("epoch"));
  assert.equal(pb.step(1, 0), false, "no step past the last epoch");
});

test("playback: playing glides through every epoch and stops at the last", () => {
  const { pb } = playback();
  pb.jumpTo(1);
  pb.speed = 2;
  pb.play(0);
  const seen = [pb.current];
  for (let t = 0; t <= 5000; t += 50) {
    pb.advance(t);
    if (seen[seen.length - 1] !== pb.current) seen.push(pb.current);
  }
  assert.deepEqual(seen, nums);
  assert.equal(pb.playing, false);
});

// A fake DOM: the root inside a shadow root, as marimo renders it.
const el = (tag, parent = null) => ({ tagName: tag, parent, contains(x) { for (let n = x; n; n = n.parent) if (n === this) return true; return false; } });
const host = el("DIV");
const root = el("DIV");
const slider = el("INPUT", root);
slider.type = "range";
const button = el("BUTTON", root);
const keyEvent = (key, origin, extra = {}) => ({
  key, code: key === " " ? "Space" : key, ctrlKey: false, metaKey: false, shiftKey: false,
  target: host, // what a window listener sees for an event from inside a shadow root
  composedPath: () => [origin, root, "shadow-root", host, "body", "document", "window"],
  ...extra,
});

test("keys from inside a shadow root are the widget's (the target is the host)", () => {
  const ev = keyEvent("ArrowLeft", root);
  assert.equal(originOf(ev), root);
  assert.equal(fromInside(ev, root), true);
  assert.equal(root.contains(ev.target), false, "the old check (target inside root) fails here");
  assert.equal(isWidgetKey(ev, root), true);
  assert.equal(keyAction(ev, originOf(ev), root, slider), "step-1");
  assert.equal(keyAction(keyEvent(" ", root), root, root, slider), "toggle");
  assert.equal(isWidgetKey(keyEvent("s", root, { ctrlKey: true }), root), false, "Ctrl chords reach the notebook");
  assert.equal(isWidgetKey(keyEvent("Enter", root, { shiftKey: true }), root), false, "Shift+Enter runs the cell");
  const outside = { key: "ArrowLeft", target: el("DIV"), composedPath: () => ["x", "body"] };
  assert.equal(isWidgetKey(outside, root), false);
});

test("the slider keeps its own arrows; a button keeps its own space", () => {
  assert.equal(keyAction(keyEvent("ArrowRight", slider), slider, root, slider), null);
  assert.equal(keyAction(keyEvent(" ", button), button, root, slider), null);
  assert.equal(keyAction(keyEvent(" ", slider), slider, root, slider), "toggle");
  assert.equal(keyAction(keyEvent("Escape", root), root, root, slider), "escape");
});

test("frame: point style follows style.json; user size and opacity apply", () => {
  const many = pointStyle(50000, 900, 600, 1);
  assert.equal(many.outline, false, "no outline on small points");
  const few = pointStyle(200, 900, 600, 1);
  assert.ok(few.radius > many.radius);
  assert.equal(pointStyle(200, 900, 600, 1, 2).radius, 2 * few.radius);
  assert.equal(pointStyle(200, 900, 600, 1, 1, 0.3).alpha, 0.3);
});

test("frame: passes put selected points on top, opaque; the rest dimmed without outline", () => {
  const n = 5;
  const visible = Uint8Array.from([1, 1, 0, 1, 1]);
  const selMask = Uint8Array.from([0, 1, 1, 0, 0]);
  const colors = new Uint32Array(n), wrong = new Uint8Array(n);
  const ps = { radius: 3, alpha: 1, outline: true };
  const [rest, sel] = buildPasses({ n, visible, selMask, colors, wrong, ps, anySelected: true });
  assert.deepEqual(Array.from(rest.order), [0, 3, 4]);
  assert.deepEqual(Array.from(sel.order), [1], "hidden points are not drawn even when selected");
  assert.equal(rest.alpha, Math.round(255 * STYLE.points.dim));
  assert.equal(unpack(rest.outline)[3], 0, "no outline while dimmed");
  assert.equal(sel.alpha, 255);
  const [plain] = buildPasses({ n, visible, selMask: new Uint8Array(n), colors, wrong, ps, anySelected: false });
  assert.ok(unpack(plain.outline)[3] > 0, "large points keep an outline");
});

test("faithfulness: scales, the run's range, and the low-nn / high-ppr warning", () => {
  const nn = METRICS.find((m) => m.key === "nn_rate@15");
  assert.equal(assess(nn, 0.1), "poor");
  assert.equal(assess(nn, 0.2), "fair");
  assert.equal(assess(nn, 0.35), "good");
  const icd = METRICS.find((m) => m.key === "inv_conf_diff");
  assert.equal(assess(icd, 0.01), "good", "lower is better");
  assert.equal(assess(METRICS.find((m) => m.key === "accuracy/test"), 0.9), null);
  assert.deepEqual(runRange([{ ppr: 0.9 }, {}, { ppr: 0.99 }, null], "ppr"), { min: 0.9, max: 0.99, count: 2 });
  assert.equal(runRange([{}], "ppr"), null);
  const w = warnings({ "nn_rate@15": 0.1, ppr: 0.996 });
  assert.equal(w.length, 1);
  assert.match(w[0], /Neighbours kept is low \(0\.10\) while predictions kept is high \(1\.00\)/);
  assert.deepEqual(warnings({ "nn_rate@15": 0.35, ppr: 0.99, map_consistency: 0.97 }), []);
  for (const m of METRICS) assert.ok(m.meaning.length > 20, m.key);
});

test("trails: visible selected points, by global index, thinned to the cap", () => {
  const localOf = Int32Array.from([2, 0, 1, -1]); // global -> display position
  const visible = Uint8Array.from([1, 0, 1]);
  const { chosen, total } = trailPoints(new Set([0, 1, 2, 3]), localOf, visible, 10);
  assert.equal(total, 2);
  assert.deepEqual(Array.from(chosen), [2, 0], "global 0 (at 2), global 1 (at 0); global 2 is hidden, 3 not drawn");
  const big = trailPoints(new Set(Array.from({ length: 1000 }, (_, i) => i)), Int32Array.from({ length: 1000 }, (_, i) => i), new Uint8Array(1000).fill(1));
  assert.equal(big.chosen.length, STYLE.trails.max_samples);
  assert.equal(big.total, 1000);
});

test("axis ticks keep the first and last epoch", () => {
  assert.deepEqual(epochTicks([1, 2, 3]), [1, 2, 3]);
  const t = epochTicks(Array.from({ length: 50 }, (_, i) => i + 1));
  assert.equal(t[0], 1);
  assert.equal(t[t.length - 1], 50);
  assert.ok(t.length <= 5);
});

test("view options map to traits both ways", () => {
  const [trait, from, to] = OPTIONS.hidden;
  assert.equal(trait, "hidden_classes");
  assert.deepEqual(to(from([3, 1])), [1, 3]);
  assert.equal(OPTIONS.colorBy[1]("rainbow"), "label", "an unknown value falls back");
  assert.equal(OPTIONS.pointOpacity[1](null), null);
});

test("a glide over more than playback.glide_points points moves and draws every k-th unselected one and every selected one", () => {
  const n = 1000, style = { ...STYLE, playback: { ...STYLE.playback, glide_points: 300 } };
  const c = new FrameComposer(n);
  const visible = new Uint8Array(n).fill(1), selMask = new Uint8Array(n);
  for (const i of [5, 6, 500]) selMask[i] = 1;
  c.passes = buildPasses({ n, visible, selMask, colors: new Uint32Array(n), wrong: new Uint8Array(n),
    ps: { radius: 1, alpha: 1, outline: false }, anySelected: true });
  const g = c.glidePasses(style);
  assert.equal(g.every, Math.ceil(997 / 300));
  assert.ok(g.passes[0].order.length <= 300 && g.passes[0].order.length >= 250);
  assert.deepEqual(Array.from(g.passes[1].order), [5, 6, 500], "every selected point");
  assert.equal(g.indices.length, g.passes[0].order.length + 3);
  assert.equal(c.glidePasses(style), g, "kept while the passes are the same");
  // place moves the subset only; placeAll (a lasso mid-glide) moves the rest
  const a = new Float32Array(2 * n), b = new Float32Array(2 * n).fill(1);
  const view = { cx: 0, cy: 0, k: 10 };
  c.place({ positions: a }, { positions: b }, 0.5, view, 100, 100, g.indices);
  assert.equal(c.partial, true);
  const moved = g.indices[0], still = 1; // index 1 is neither in the subset (k > 1) nor selected
  assert.equal(c.xs[moved], 55);
  assert.equal(c.xs[still], 0);
  c.placeAll();
  assert.equal(c.partial, false);
  assert.equal(c.xs[still], 55);
  const few = new FrameComposer(10);
  few.passes = buildPasses({ n: 10, visible: new Uint8Array(10).fill(1), selMask: new Uint8Array(10), colors: new Uint32Array(10),
    wrong: new Uint8Array(10), ps: { radius: 1, alpha: 1, outline: false }, anySelected: false });
  assert.equal(few.glidePasses(style), null, "few points: all of them glide");
});

test("a composer's drawn() token changes whenever colours and order are recomputed, even to an equal key", () => {
  const n = 6, labels = Uint8Array.from([0, 1, 2, 0, 1, 2]);
  const data = { labels, isTest: new Uint8Array(n), classRGB: [[255, 0, 0], [0, 255, 0], [0, 0, 255]], dynamics: null };
  const opts = { colorBy: "label", split: "both", hidden: new Set(), onlyMisclassified: false, onlyFlipped: false, dynFilter: null };
  const e = { epoch: 3, predictions: labels.slice() };
  const sel = { mask: new Uint8Array(n), size: 0, version: 0 };
  const ps = { radius: 1, alpha: 1, outline: false };
  const c = new FrameComposer(n), other = new FrameComposer(n);
  c.countVisible(e, data, opts, null);
  assert.equal(c.order(e, data, opts, null, sel, ps), true);
  const first = c.drawn();
  assert.equal(c.order(e, data, opts, null, sel, ps), false, "nothing changed: cached");
  assert.equal(c.drawn(), first);
  c.orderKey = null; // new data behind the same options (app.js: the dynamics trait changed)
  assert.equal(c.order(e, data, opts, null, sel, ps), true);
  assert.notEqual(c.drawn(), first, "recomputed to the same key: the picture must be drawn again");
  other.countVisible(e, data, opts, null);
  other.order(e, data, opts, null, sel, ps);
  assert.notEqual(other.drawn(), c.drawn(), "another composer's picture is another picture");
});

test("colours by label are kept across epochs (same token); by prediction they follow the epoch", () => {
  const n = 4, labels = Uint8Array.from([0, 1, 0, 1]);
  const data = { labels, isTest: new Uint8Array(n), classRGB: [[255, 0, 0], [0, 0, 255]], dynamics: null };
  const opts = { colorBy: "label", split: "both", hidden: new Set(), onlyMisclassified: false, onlyFlipped: false, dynFilter: null };
  const e1 = { epoch: 1, predictions: Uint8Array.from([1, 1, 1, 1]) }, e2 = { epoch: 2, predictions: Uint8Array.from([0, 1, 0, 1]) };
  const sel = { mask: new Uint8Array(n), size: 0, version: 0 }, ps = { radius: 1, alpha: 1, outline: false };
  const c = new FrameComposer(n);
  c.order(e1, data, opts, null, sel, ps);
  const token = c.passes[0].colorsKey, byLabel = Array.from(c.colors);
  assert.deepEqual(Array.from(c.wrong), [1, 0, 1, 0]);
  c.order(e2, data, opts, e1.predictions, sel, ps);
  assert.equal(c.passes[0].colorsKey, token, "label colours: the same token, the colour index is kept");
  assert.deepEqual(Array.from(c.colors), byLabel);
  assert.deepEqual(Array.from(c.wrong), [0, 0, 0, 0], "misclassified follows the epoch");
  const pred = { ...opts, colorBy: "prediction" };
  c.order(e1, data, pred, null, sel, ps);
  const red = c.colors[0];
  c.order(e2, data, pred, e1.predictions, sel, ps);
  assert.notEqual(c.colors[0], red, "prediction colours follow the epoch");
  assert.notEqual(c.passes[0].colorsKey, token);
});
