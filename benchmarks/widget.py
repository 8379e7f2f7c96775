"""Widget benchmark: the browser side at 50,000, 200,000 and 1,000,000 points, in headless Chromium.

Runs a real JupyterLab with the widget on a synthetic duck-typed Visualization
(tests/browser/fake_vis.py) and measures:

- playback: time to draw each frame while the epochs play (median, worst),
  and the interval between animation frames;
- lasso: time to hit-test a 200-vertex lasso over all points;
- frames at rest, from real mouse input: a drag pan (each move redraws the map and every
  point) and hovering (each move redraws only the overlay);
- latency: from `w.epoch = k` in Python to that epoch's frame drawn, split into kernel to the
  page's change handler and handler to frame; to the next epoch and to one half the run away,
  each after `--rest` ms at rest (the page renders the neighbouring epochs ahead meanwhile),
  with the websocket bytes the page received per jump;
- bytes per epoch: what crosses the websocket when one epoch is added
  (live refresh), against the raw size of that epoch's arrays.

    python benchmarks/widget.py                                  # 50k, 200k, 1M points
    python benchmarks/widget.py --points 50000 --epochs 20 --json out.json

Each size runs in its own notebook (its own kernel) in one JupyterLab, with `max_points=None`
(every point drawn, no display sample). The bytes-per-epoch measure runs at the first size only.
Prints a Markdown table per size and a summary table (the ones in benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from harness import kernel_exec, kernel_json, lab_session, open_notebook, run_all_cells, write_notebook  # noqa: E402


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def _ints(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=_ints, default=[50_000, 200_000, 1_000_000],
                    help="comma-separated point counts (default 50000,200000,1000000)")
    ap.add_argument("--epochs", type=_ints, default=None,
                    help="epochs per size, one value or one per size (default 20 up to 50k, 10 to 200k, 6 beyond)")
    ap.add_argument("--map", type=int, default=256, help="decision map size (pixels per side)")
    ap.add_argument("--rest", type=int, default=1000,
                    help="ms at rest before each `w.epoch = k` (the page renders neighbouring epochs ahead meanwhile)")
    ap.add_argument("--json", type=pathlib.Path, default=None)
    args = ap.parse_args()
    sizes = args.points
    if args.epochs is None:
        epochs = [20 if n <= 50_000 else 10 if n <= 200_000 else 6 for n in sizes]
    elif len(args.epochs) == 1:
        epochs = args.epochs * len(sizes)
    elif len(args.epochs) == len(sizes):
        epochs = args.epochs
    else:
        ap.error("--epochs takes one value or one per --points value")
    all_results = []
    with lab_session("dvi-bench-") as (server, browser):
        for j, (n, e) in enumerate(zip(sizes, epochs)):
            r = measure(browser, server, n, e, args.map, bytes_per_epoch=(j == 0), rest_ms=args.rest)
            print(table(r), flush=True)
            print(flush=True)
            all_results.append(r)
    print(summary(all_results))
    if args.json:
        args.json.write_text(json.dumps(all_results, indent=2))


def profile_frames(page, frames: int = 30, top: int = 12) -> dict:
    """Draw `frames` mid-glide frames under the DevTools sampling profiler. Returns {"functions":
    the functions with the most self time [{function, where, self_ms_per_frame, share}] (share of
    the non-idle profiled time), "per_frame": layouts, style recalculations and their ms per frame
    (DevTools Performance metrics)}."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    metrics = lambda: {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}  # noqa: E731
    before = metrics()
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 200})  # microseconds
    cdp.send("Profiler.start")
    page.evaluate(
        f"""() => {{
          const app = document.querySelector('.dvi-root').dvi;
          const nums = app.store.numbers();
          app.jumpTo(nums[0]);
          for (let k = 0; k < {frames}; k++) {{
            app.transition = {{ from: app.store.get(nums[0]), to: app.store.get(nums[1]), start: performance.now() - 500, duration: 1000 }};
            app.frame();
          }}
          app.transition = null; app.jumpTo(nums[nums.length - 1]);
        }}"""
    )
    prof = cdp.send("Profiler.stop")["profile"]
    after = metrics()
    cdp.detach()
    # layout and style work the frames caused (native time the JS profile shows as "(program)")
    page_work = {k: round((after.get(k, 0) - before.get(k, 0)) / frames * (1000 if k.endswith("Duration") else 1), 2)
                 for k in ("LayoutCount", "RecalcStyleCount", "LayoutDuration", "RecalcStyleDuration", "ScriptDuration",
                           "TaskDuration")}
    by_id = {node["id"]: node for node in prof["nodes"]}
    bundle = (REPO / "dvi_widget" / "widget" / "static" / "widget.js").read_text(encoding="utf-8").splitlines()
    self_us: dict = {}
    for sid, dt in zip(prof.get("samples", []), prof.get("timeDeltas", [])):
        cf = by_id[sid]["callFrame"]
        where = ""
        if cf["url"] and 0 <= cf["lineNumber"] < len(bundle):  # the minified bundle: show the code there
            where = bundle[cf["lineNumber"]][cf["columnNumber"]:cf["columnNumber"] + 70].replace("|", "\\|")
        key = (cf["functionName"] or "(anonymous)", where)
        self_us[key] = self_us.get(key, 0) + dt
    total = sum(v for (name, _), v in self_us.items() if name != "(idle)") or 1
    rows = sorted(((k, v) for k, v in self_us.items() if k[0] != "(idle)"), key=lambda kv: -kv[1])[:top]
    return {"functions": [{"function": name, "where": where, "self_ms_per_frame": round(v / 1000 / frames, 2),
                           "share": round(v / total, 3)} for (name, where), v in rows],
            "per_frame": page_work}


def _frame_after(page) -> list:
    """[draw ms, kept] of the frame that follows (the app's animation frame runs before this one's)."""
    return page.evaluate("""() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(() => {
        const a = document.querySelector('.dvi-root').dvi;
        res([a.frameTimes.length, a.frameTimes[a.frameTimes.length - 1], !!(a.lastBreakdown && a.lastBreakdown.kept)]); })))""")


def measure_rest(page, moves: int = 30) -> dict:
    """Frames at rest from real mouse input: a drag pan in pan mode (every move redraws the map and
    all points) and hovering (every move redraws only the ring and tooltip)."""
    root = page.locator(".dvi-root").first
    page.evaluate("() => { const a = document.querySelector('.dvi-root').dvi; a.pause(); a.resetView(); a.setMode('pan'); }")
    page.wait_for_function("() => { const r = document.querySelector('.dvi-root'); return r.dataset.drawnEpoch && !r.dvi.transition; }")
    map_el = root.locator(".dvi-map")
    map_el.scroll_into_view_if_needed()  # the mouse reaches only what is in the viewport
    page.wait_for_timeout(200)
    box = map_el.bounding_box()
    vp = page.viewport_size
    if box["y"] < 0 or box["y"] + box["height"] > vp["height"]:
        raise RuntimeError(f"the map is not wholly in the viewport: {box}, viewport {vp}")
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    last = _frame_after(page)[0]

    def step(out):
        nonlocal last
        count, ms, kept = _frame_after(page)
        if count > last:  # a frame was drawn for this move
            out.append((ms, kept))
        last = count

    pan, hover = [], []
    page.mouse.down()
    for k in range(moves):
        page.mouse.move(cx + 4 * (k + 1) * (-1) ** (k // 10), cy + 3 * (k + 1))
        step(pan)
    page.mouse.up()
    page.evaluate("() => document.querySelector('.dvi-root').dvi.resetView()")
    last = _frame_after(page)[0]
    for k in range(moves):
        page.mouse.move(cx - box["width"] * 0.3 + box["width"] * 0.6 * k / moves, cy + box["height"] * 0.1 * (-1) ** k)
        step(hover)
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] - 2)
    full = [t for t, kept in pan if not kept]
    light = [t for t, kept in hover if kept]
    return {"rest_pan_frames": len(full), "rest_pan_ms_median": round(statistics.median(full), 2) if full else None,
            "rest_pan_ms_p95": round(q(full, 0.95), 2) if full else None,
            "rest_hover_frames_kept": f"{len(light)} of {len(hover)}",
            "rest_hover_ms_median": round(statistics.median([t for t, _ in hover]), 2) if hover else None}


def measure(browser, server, n: int, e: int, map_size: int, bytes_per_epoch: bool, rest_ms: int = 1000) -> dict:
    """Open a notebook showing `n` points x `e` epochs and measure it (see the module docstring)."""
    setup = (
        "import time, numpy as np\n"
        "from fake_vis import FakeVisualization\n"
        "from dvi_widget.widget.widget import DVIWidget\n"
        f"vis = FakeVisualization(n={n}, epochs=range(1, {e} + 1), map_size={map_size})\n"
        "t0 = time.perf_counter(); w = DVIWidget(vis, max_points=None); build_s = time.perf_counter() - t0\n"
        "w"
    )
    cells = [setup]
    if bytes_per_epoch:
        cells.append(
            f"lvis = FakeVisualization(n={n}, epochs=range(1, {e} + 1), map_size={map_size}, visible_epochs={e - 1})\n"
            "lw = DVIWidget(lvis, live=True, max_points=None)\n"
            "lw"
        )
    name = f"bench-{n}.ipynb"
    write_notebook(server.root / name, cells)
    results: dict = {"load_before": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count(), "points": n,
                     "epochs": e, "map": map_size, "chromium": browser.version,
                     "machine": f"{platform.machine()}, {platform.processor() or ''}".strip(", ")}
    page = browser.new_page(viewport={"width": 1920, "height": 1200})
    try:
        frames: list[int] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
            len(payload) if isinstance(payload, (bytes, bytearray)) else len(payload.encode()))))
        open_notebook(page, server, name, workspace=f"bench{n}")  # only this notebook on the page
        t0 = time.perf_counter()
        try:
            run_all_cells(page, timeout_ms=600_000)
        except Exception:
            shot = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"dvi-bench-{n}-stalled.png"
            page.screenshot(path=str(shot))
            print(f"run all cells did not finish at {n:,} points; the page is in {shot}", file=sys.stderr)
            raise
        page.wait_for_function(
            f"() => {{ const r = document.querySelectorAll('.dvi-root'); return r.length >= {len(cells)} && r[0].dataset.drawnEpoch; }}",
            timeout=600_000,
        )
        results["first_render_s"] = round(time.perf_counter() - t0, 2)
        results["canvas_css_px"] = page.evaluate("() => { const a = document.querySelector('.dvi-root').dvi; return [a.renderer.width, a.renderer.height]; }")
        page.evaluate("() => document.querySelectorAll('.dvi-root')[0].scrollIntoView()")

        # 1. playback
        kernel_exec(page, "w.epoch = 1")
        page.wait_for_function("() => document.querySelector('.dvi-root').dataset.drawnEpoch === '1'", timeout=120_000)
        page.locator(".dvi-root").first.locator(".dvi-speed").select_option("2")  # 2 epochs per second
        play = page.evaluate(
            """async (last) => {
              const r = document.querySelector('.dvi-root'), app = r.dvi;
              app.frameTimes.length = 0;
              const intervals = [], parts = []; let prev = performance.now();
              app.play();
              const t0 = performance.now();
              while (performance.now() - t0 < 240000) {
                await new Promise(requestAnimationFrame);
                const now = performance.now(); intervals.push(now - prev); prev = now;
                if (app.lastBreakdown) parts.push(app.lastBreakdown);
                if (!app.playing && !app.transition) break;
              }
              const med = (k) => { const v = parts.map(p => p[k]).sort((a, b) => a - b); return v[v.length >> 1]; };
              const breakdown = Object.fromEntries(['positions', 'background', 'points', 'overlay'].map(k => [k, med(k)]));
              return { draw: app.frameTimes.slice(), intervals, epoch: r.dataset.epoch, breakdown };
            }""",
            e,
        )
        draw = play["draw"]
        results["playback_frames"] = len(draw)
        results["frame_draw_ms_median"] = round(statistics.median(draw), 2)
        results["frame_draw_ms_p95"] = round(q(draw, 0.95), 2)
        results["frame_draw_ms_worst"] = round(max(draw), 2)
        results["frame_breakdown_ms_median"] = {k: round(v, 2) for k, v in play["breakdown"].items()}
        iv = play["intervals"][2:]
        results["frame_interval_ms_median"] = round(statistics.median(iv), 2)
        results["frame_interval_ms_worst"] = round(max(iv), 2)

        # 1b. one mid-glide frame drawn 40 times back to back (no animation frame between)
        best = page.evaluate(
            """() => {
              const app = document.querySelector('.dvi-root').dvi;
              const nums = app.store.numbers();
              app.jumpTo(nums[0]);
              const times = [];
              for (let k = 0; k < 40; k++) {
                app.transition = { from: app.store.get(nums[0]), to: app.store.get(nums[1]), start: performance.now() - 500, duration: 1000 };
                const t0 = performance.now(); app.frame(); times.push(performance.now() - t0);
              }
              app.transition = null; app.jumpTo(nums[nums.length - 1]);
              times.sort((a, b) => a - b);
              return { best: times[0], median: times[times.length >> 1] };
            }"""
        )
        results["frame_draw_ms_best"] = round(best["best"], 2)
        results["frame_draw_ms_repeat_median"] = round(best["median"], 2)

        # 1c. where a glide frame's time goes: the page's own sampling profiler (Chrome DevTools protocol)
        results["profile_top"] = profile_frames(page)

        # 1d. frames at rest, driven by the real mouse: a drag pan (each move redraws the map and
        # every point) and hovering (each move redraws only the overlay)
        results.update(measure_rest(page))

        # 2. lasso hit test over all points (200-vertex star around the centre)
        lasso = page.evaluate(
            """() => {
              const app = document.querySelector('.dvi-root').dvi;
              const W = app.renderer.width, H = app.renderer.height, poly = [];
              for (let k = 0; k < 200; k++) { const a = 2 * Math.PI * k / 200, r = (k % 2 ? 0.25 : 0.42) * Math.min(W, H);
                poly.push(W / 2 + r * Math.cos(a), H / 2 + r * Math.sin(a)); }
              const times = []; let hits = 0;
              for (let rep = 0; rep < 25; rep++) { hits = app.finishLasso(poly, 'replace').length; times.push(app.lastHitTestMs); }
              app.setSelection(new Set());
              return { times, hits };
            }"""
        )
        results["lasso_ms_median"] = round(statistics.median(lasso["times"]), 2)
        results["lasso_ms_worst"] = round(max(lasso["times"]), 2)
        results["lasso_ms_best"] = round(min(lasso["times"]), 2)
        results["lasso_hits"] = lasso["hits"]

        # 3. Python w.epoch = k -> frame drawn: 10 jumps to the next epoch (the last wraps to the
        # first), then 5 to an epoch half the run away, each after `rest_ms` at rest (a person
        # looking at the map; the page renders the neighbouring epochs ahead meanwhile)
        nxt = [(i % e) + 1 for i in range(1, 11)]
        far = [((e // 2 + 1 + 2 * i) % e) + 1 for i in range(5)]
        for name, seq in (("epoch", nxt), ("epoch_far", far)):
            lat, to_page, on_page, jump_frames, ahead, ws = [], [], [], [], [], []
            cur = kernel_json(page, "w.epoch")
            for k in seq:
                if k == cur:
                    continue
                page.wait_for_timeout(rest_ms)
                frames.clear()
                out = kernel_exec(page, f"t = time.time(); w.epoch = {k}; print(repr(t))")
                t_py = float(out.strip().splitlines()[-1])
                page.wait_for_function(
                    f"() => {{ const d = document.querySelector('.dvi-root').dvi.epochDrawn; return d && d.epoch === {k}; }}",
                    timeout=120_000)
                # the first frame at rest showing epoch k (later frames, e.g. a redraw the page's own
                # observers ask for, do not move these figures)
                d = page.evaluate("() => document.querySelector('.dvi-root').dvi.epochDrawn")
                drawn, changed, frame_ms, was_ahead = d["at"], d["changeAt"], d["frameMs"], d["ahead"]
                lat.append(drawn - t_py * 1000)
                to_page.append(changed - t_py * 1000)
                on_page.append(drawn - changed)
                jump_frames.append(frame_ms)
                ahead.append(was_ahead)
                ws.append(sum(frames))
                cur = k
            results[f"{name}_latency_ms_median"] = round(statistics.median(lat), 1)
            results[f"{name}_latency_ms_worst"] = round(max(lat), 1)
            results[f"{name}_to_page_ms_median"] = round(statistics.median(to_page), 1)
            results[f"{name}_on_page_ms_median"] = round(statistics.median(on_page), 1)
            results[f"{name}_jump_frame_ms_median"] = round(statistics.median(jump_frames), 1)
            results[f"{name}_rendered_ahead"] = f"{sum(ahead)} of {len(ahead)}"
            results[f"{name}_ws_bytes_median"] = int(statistics.median(ws))
        results["jump_rest_ms"] = rest_ms

        if bytes_per_epoch:
            # 4. bytes over the websocket for one added epoch (live refresh)
            page.wait_for_timeout(500)
            frames.clear()
            out = kernel_exec(
                page,
                "lvis.reload(); added = lw.refresh(); c = lw.epoch_data[-1]; "
                "print(added, c.payload_bytes(), len(c.background), lvis.background(added[0]).nbytes)",
            )
            page.wait_for_function(f"() => document.querySelectorAll('.dvi-root')[1].dataset.drawnEpoch === '{e}'", timeout=60_000)
            page.wait_for_timeout(300)
            added, payload, png, rgba = out.strip().split("] ")[0] + "]", *map(int, out.strip().split("] ")[1].split())
            sent = sum(frames)
            arrays_raw = n * 2 * 4 + n * 1 + 2 * n * 2  # positions f32, predictions u8, two probabilities u16
            raw = arrays_raw + rgba
            results["epoch_bytes_sent"] = sent
            results["epoch_payload_bytes"] = payload
            results["epoch_raw_bytes"] = raw
            results["epoch_png_bytes"] = png
            results["epoch_rgba_bytes"] = rgba
            results["epoch_sent_over_raw"] = round(sent / raw, 3)
            results["epoch_arrays_sent_over_raw"] = round((sent - png) / arrays_raw, 3)
            results["ws_frames"] = len(frames)
        results["build_s"] = float(kernel_exec(page, "print(build_s)").strip())
        results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    finally:
        page.close()
    return results


def _load(v) -> str:
    return " / ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def table(r: dict) -> str:
    rows = [
        ("playback: draw time per frame, median", f"{r['frame_draw_ms_median']} ms", "< 33 ms at 1M"),
        ("playback: draw time per frame, p95 / worst", f"{r['frame_draw_ms_p95']} / {r['frame_draw_ms_worst']} ms", ""),
        ("one glide frame drawn 40 times in a row: best / median", f"{r['frame_draw_ms_best']} / {r['frame_draw_ms_repeat_median']} ms", ""),
        ("playback: interval between frames, median / worst", f"{r['frame_interval_ms_median']} / {r['frame_interval_ms_worst']} ms", ""),
        ("lasso hit test, all points (200 vertices), median / best / worst of 25", f"{r['lasso_ms_median']} / {r['lasso_ms_best']} / {r['lasso_ms_worst']} ms", ""),
        ("at rest: a drag pan with the mouse, draw time per frame (map and all points), median / p95",
         f"{r['rest_pan_ms_median']} / {r['rest_pan_ms_p95']} ms ({r['rest_pan_frames']} frames)", "< 33 ms at 1M"),
        ("at rest: hovering, draw time per frame, median (frames that kept map and points)",
         f"{r['rest_hover_ms_median']} ms ({r['rest_hover_frames_kept']})", ""),
        (f"`w.epoch = k` (next epoch, after {r['jump_rest_ms']} ms at rest) to frame drawn, median / worst",
         f"{r['epoch_latency_ms_median']} / {r['epoch_latency_ms_worst']} ms", "< 100 ms at 200k"),
        ("  kernel to the page's change handler / handler to frame drawn / the frame itself, medians",
         f"{r['epoch_to_page_ms_median']} / {r['epoch_on_page_ms_median']} / {r['epoch_jump_frame_ms_median']} ms", ""),
        ("  frames that showed the picture rendered ahead; websocket bytes to the page per jump (median)",
         f"{r['epoch_rendered_ahead']}; {r['epoch_ws_bytes_median']:,} B", ""),
        ("`w.epoch = k` to an epoch half the run away: median / worst (kernel to page / on page / frame)",
         f"{r['epoch_far_latency_ms_median']} / {r['epoch_far_latency_ms_worst']} ms ({r['epoch_far_to_page_ms_median']} / "
         f"{r['epoch_far_on_page_ms_median']} / {r['epoch_far_jump_frame_ms_median']} ms; ahead {r['epoch_far_rendered_ahead']})", ""),
    ]
    if "epoch_bytes_sent" in r:
        rows += [
            ("bytes on the websocket per added epoch / raw arrays + RGBA map", f"{r['epoch_bytes_sent']:,} / {r['epoch_raw_bytes']:,} = {r['epoch_sent_over_raw']}x", "<= 1.1x"),
            ("  the same, per-sample arrays only (without the map)", f"{r['epoch_bytes_sent'] - r['epoch_png_bytes']:,} / {r['epoch_raw_bytes'] - r['epoch_rgba_bytes']:,} = {r['epoch_arrays_sent_over_raw']}x", ""),
        ]
    rows += [
        ("  where a frame's draw time goes (median): positions / map / points / overlay",
         " / ".join(f"{r['frame_breakdown_ms_median'][k]}" for k in ("positions", "background", "points", "overlay")) + " ms", ""),
        (f"building the widget in Python ({r['epochs']} epochs: PNG maps, buffers)", f"{r['build_s']:.2f} s", ""),
        ("run all cells to first frame (kernel start included)", f"{r['first_render_s']} s", ""),
    ]
    head = (f"{r['points']:,} points x {r['epochs']} epochs, {r['map']}x{r['map']} maps, canvas "
            f"{r['canvas_css_px'][0]}x{r['canvas_css_px'][1]} CSS px, {r['playback_frames']} playback frames, Chromium {r['chromium']}, "
            f"{r['cpus']} CPUs, load average (1/5/15 min) {_load(r['load_before'])} before, {_load(r['load_after'])} after")
    lines = [head, "", "| measure | result | goal |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if r.get("profile_top"):
        pf = r["profile_top"]["per_frame"]
        lines += ["", "Self time per glide frame (DevTools sampling profiler, 30 frames drawn back to back; "
                  f"per frame: {pf['LayoutCount']} layouts taking {pf['LayoutDuration']} ms, {pf['RecalcStyleCount']} "
                  f"style recalculations taking {pf['RecalcStyleDuration']} ms, script {pf['ScriptDuration']} ms, "
                  f"all tasks {pf['TaskDuration']} ms):", "",
                  "| function | its code in the bundle | ms per frame | share |", "| --- | --- | ---: | ---: |"]
        lines += [f"| `{p['function']}` | `{p['where']}` | {p['self_ms_per_frame']} | {p['share']:.0%} |"
                  for p in r["profile_top"]["functions"]]
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """One line per size: the figures the goals are about."""
    lines = ["| points | epochs | frame at rest: drag pan, median / p95 | hover, median | playback frame, median / p95 | "
             "`w.epoch = k` (next) to frame, median (kernel to page / on page / frame; ahead) | to a far epoch, median | "
             "lasso, median | load before |",
             "| ---: | ---: | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['points']:,} | {r['epochs']} | {r['rest_pan_ms_median']} / {r['rest_pan_ms_p95']} ms | "
                     f"{r['rest_hover_ms_median']} ms | {r['frame_draw_ms_median']} / {r['frame_draw_ms_p95']} ms | "
                     f"{r['epoch_latency_ms_median']} ms ({r['epoch_to_page_ms_median']} / {r['epoch_on_page_ms_median']} / "
                     f"{r['epoch_jump_frame_ms_median']}; {r['epoch_rendered_ahead']}) | {r['epoch_far_latency_ms_median']} ms | "
                     f"{r['lasso_ms_median']} ms | {_load(r['load_before'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
