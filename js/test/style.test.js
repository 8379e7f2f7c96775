import { test } from "node:test";
import assert from "node:assert/strict";
import { STYLE, pointRadius, pointOpacity, hasOutline, mapAspect, trailSample, trailAlpha } from "../src/style.js";

test("style.json carries every documented section", () => {
  for (const k of ["view", "points", "colors", "filters", "trails", "map", "interaction", "playback"]) assert.ok(STYLE[k], k);
  assert.ok(STYLE._doc["points.radius"].includes("sqrt"));
});

test("more points give smaller points, clamped; zoom enlarges them; the user's size multiplies", () => {
  const few = pointRadius(500, 900, 600), many = pointRadius(50000, 900, 600), huge = pointRadius(1e6, 900, 600);
  assert.ok(few > many, `${few} > ${many}`);
  assert.equal(huge, STYLE.points.radius.min);
  assert.ok(few <= STYLE.points.radius.max);
  assert.ok(pointRadius(50000, 900, 600, 4) > many, "zooming in enlarges points");
  assert.ok(pointRadius(50000, 900, 600, 4) < many * 4, "but less than the zoom");
  assert.equal(pointRadius(50000, 900, 600, 1, 2), 2 * many);
  assert.equal(pointRadius(1e6, 900, 600, 1, 0.01), STYLE.points.radius.floor);
});

test("opacity drops when points cover the map many times over, within its bounds", () => {
  assert.equal(pointOpacity(100, 2, 900, 600), STYLE.points.opacity.max);
  const dense = pointOpacity(STYLE.points.opacity.opaque_above, 1, 900, 600);
  assert.equal(dense, STYLE.points.opacity.min);
  assert.equal(pointOpacity(STYLE.points.opacity.opaque_above + 1, 1, 900, 600), 1, "opaque beyond opaque_above");
  const mid = pointOpacity(300000, 1, 900, 600);
  assert.ok(mid < 1 && mid >= STYLE.points.opacity.min);
  assert.ok(pointOpacity(300000, 1, 900, 600, 2) > mid, "zooming in spreads points: more opaque");
});

test("small points have no outline", () => {
  assert.equal(hasOutline(1), false);
  assert.equal(hasOutline(STYLE.points.outline.min_radius), true);
});

test("the map takes the extent's aspect ratio within bounds", () => {
  assert.equal(mapAspect([0, 10, 0, 10]), 1);
  assert.equal(mapAspect([0, 100, 0, 1]), STYLE.view.aspect_max);
  assert.equal(mapAspect([0, 1, 0, 100]), STYLE.view.aspect_min);
  assert.equal(mapAspect(null), 1.5);
});

test("trail sample: evenly spaced, deterministic, at most the cap", () => {
  const all = Uint32Array.from({ length: 1000 }, (_, i) => i * 2);
  const s = trailSample(all, 100);
  assert.equal(s.length, 100);
  assert.equal(s[0], 0);
  assert.equal(s[1], 20);
  assert.deepEqual(Array.from(trailSample(all.subarray(0, 5), 100)), [0, 2, 4, 6, 8]);
});

test("trail segments fade from old to new", () => {
  assert.ok(trailAlpha(0, 5) < trailAlpha(4, 5));
  assert.equal(trailAlpha(4, 5), STYLE.trails.alpha);
});
