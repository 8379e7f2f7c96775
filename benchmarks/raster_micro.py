"""Micro-benchmark of the point rasteriser in headless Chromium: js/src/raster.js `drawPoints` (as
committed) against prototypes in benchmarks/raster_micro.js (a loop specialised for the 5-pixel plus
stamp, opaque and blended, and a density path), on a 1272 x 847 ImageData buffer with clustered
random points, the variants interleaved, each repeated; prints best / median ms per variant.

    python benchmarks/raster_micro.py [--points 200000,1000000] [--reps 21]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from harness import launch_browser  # noqa: E402

PAGE = """<!doctype html><html><body><canvas id="c"></canvas>
<script type="module">
import { makeStamp, disk, cross, drawPoints, bandOrder } from "./js/src/raster.js";
import { drawDensity, drawDensity2, drawPlus, drawPlusBlend } from "./benchmarks/raster_micro.js";
window.run = (n, reps) => {
  const W = 1272, H = 847, c = document.getElementById('c'); c.width = W; c.height = H;
  const ctx = c.getContext('2d', { alpha: false }); const img = ctx.createImageData(W, H);
  const words = new Uint32Array(img.data.buffer), bg = new Uint32Array(W * H).fill(0xfff0f0f0);
  let s = 1; const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const xs = new Float32Array(n), ys = new Float32Array(n), colors = new Uint32Array(n), wrong = new Uint8Array(n);
  for (let i = 0; i < n; i++) { const k = i % 10, a = k / 10 * 2 * Math.PI; const g = () => (rnd() + rnd() + rnd() - 1.5) * 90;
    xs[i] = W / 2 + Math.cos(a) * 280 + g(); ys[i] = H / 2 + Math.sin(a) * 280 + g(); colors[i] = (0xff000000 | (k * 25) | ((255 - k * 20) << 8) | (k * 13 << 16)) >>> 0; wrong[i] = rnd() < 0.1 ? 1 : 0; }
  const order = new Uint32Array(n); for (let i = 0; i < n; i++) order[i] = i;
  const sorted = new Uint32Array(n), counts = new Uint32Array((H >> 4) + 3);
  const st = makeStamp(1, disk, W), wst = makeStamp(2, cross, W);
  const acc = { cnt: new Uint16Array(W * H), r: new Uint32Array(W * H), g: new Uint32Array(W * H), b: new Uint32Array(W * H) };
  const time = (f) => { const t = []; for (let k = 0; k < reps; k++) { const t0 = performance.now(); f(); t.push(performance.now() - t0); } t.sort((a, b) => a - b); return [t[0], t[t.length >> 1]].map(v => Math.round(v * 10) / 10); };
  const acc4 = new Uint32Array(W * H * 4), lut = new Float32Array(256); for (let k = 0; k < 256; k++) lut[k] = 1 - Math.pow(0.55, k);
  const so = bandOrder(order, ys, H, 4, sorted, counts).slice();
  const stNoRing = { fill: st.fill, outline: new Int32Array(0), reach: st.reach };
  const variants = {
    current_stamp_ring_banded: () => { words.set(bg); drawPoints(words, W, H, xs, ys, so, colors, 255, 0xff2d2d2d, wrong, st, wst); },
    current_stamp_noring_banded: () => { words.set(bg); drawPoints(words, W, H, xs, ys, so, colors, 255, 0, wrong, stNoRing, wst); },
    current_blend045_banded: () => { words.set(bg); drawPoints(words, W, H, xs, ys, so, colors, 115, 0, wrong, stNoRing, wst); },
    plus_specialised_banded: () => { words.set(bg); drawPlus(words, W, H, xs, ys, so, colors); },
    plus_blend045_specialised: () => { words.set(bg); drawPlusBlend(words, W, H, xs, ys, so, colors, 115); },
    band_order: () => bandOrder(order, ys, H, 4, sorted, counts),
    density_blend045: () => drawDensity2(words, bg, W, H, xs, ys, n, colors, 0.45, acc4, lut),
  };
  const times = Object.fromEntries(Object.keys(variants).map(k => [k, []]));
  for (let rep = 0; rep < reps; rep++) for (const [k, f] of Object.entries(variants)) { const t0 = performance.now(); f(); times[k].push(performance.now() - t0); }
  const out = {};
  for (const [k, t] of Object.entries(times)) { t.sort((a, b) => a - b); out[k] = [t[0], t[t.length >> 1]].map(v => Math.round(v * 10) / 10); }
  return out;
};
window.ready = true;
</script></body></html>
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="200000,1000000")
    ap.add_argument("--reps", type=int, default=21)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    def serve(route):
        rel = route.request.url.split("http://raster.local/", 1)[1]
        if rel == "page.html":
            return route.fulfill(body=PAGE, content_type="text/html")
        path = (REPO / rel).resolve()
        if REPO not in path.parents or not path.is_file():
            return route.abort()
        return route.fulfill(path=str(path), content_type="text/javascript")

    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page()
        page.route("http://raster.local/**", serve)
        page.goto("http://raster.local/page.html")
        page.wait_for_function("() => window.ready")
        print(f"Chromium {browser.version}, {os.cpu_count()} CPUs")
        for n in (int(v) for v in args.points.split(",")):
            load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
            out = page.evaluate(f"() => run({n}, {args.reps})")
            print(f"{n:,} points (load average {load}): best / median ms")
            print(json.dumps(out, indent=1))
        browser.close()


if __name__ == "__main__":
    main()
