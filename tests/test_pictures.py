"""Pictures drawn in Python: w.snapshot(path) and vis.to_gif(path)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from dvi_widget.errors import DVIError
from dvi_widget.outputs.pictures import fit_view, gif_frames, render
from dvi_widget.widget.widget import DVIWidget


def _map_rect(vis, epoch, size):
    """Screen rectangle (left, top, right, bottom) of the epoch's decision map in a default picture."""
    cx, cy, k = fit_view(vis.extent, *size)
    x0, x1, y0, y1 = vis.background_extent(epoch)
    W, H = size
    return ((x0 - cx) * k + W / 2, (cy - y1) * k + H / 2, (x1 - cx) * k + W / 2, (cy - y0) * k + H / 2)


def _map_agreement(frame: np.ndarray, vis, epoch, size, head: int) -> float:
    """Share of map pixels (away from points) whose colour matches the decision map's there."""
    l, t, r, b = _map_rect(vis, epoch, size)
    bg = vis.background(epoch)[..., :3].astype(int)
    bh, bw = bg.shape[:2]
    rng = np.random.default_rng(0)
    xs = rng.uniform(l + 2, r - 2, 400)
    ys = rng.uniform(t + 2, b - 2, 400)
    cx, cy, k = fit_view(vis.extent, *size)
    pts = vis.embedding(epoch)
    sx = (pts[:, 0] - cx) * k + size[0] / 2
    sy = (cy - pts[:, 1]) * k + size[1] / 2
    good = total = 0
    for x, y in zip(xs, ys):
        if np.min((sx - x) ** 2 + (sy - y) ** 2) < 8 ** 2:
            continue  # under or next to a point
        u = min(int((x - l) / (r - l) * bw), bw - 1)
        v = min(int((y - t) / (b - t) * bh), bh - 1)
        # the map is resampled to the picture (and a GIF's palette quantises it): a pixel matches
        # when it is close to the map texel under it or one next to it (fine-textured maps)
        want = bg[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].reshape(-1, 3)
        got = frame[int(y) + head, int(x), :3].astype(int)
        total += 1
        good += int(np.abs(got - want).max(axis=1).min() <= 40)
    assert total > 30
    return good / total


def test_gif_has_one_frame_per_epoch_with_the_map(small_run, tmp_path):
    size = (320, 320)
    path = small_run.to_gif(tmp_path / "run.gif", size=size, legend=False)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(small_run.epochs)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert frames[0].shape == (320 + 24, 320, 3)  # title line above the map
    for e, frame in zip(small_run.epochs, frames):
        assert _map_agreement(frame, small_run, e, size, head=24) > 0.85, f"epoch {e}: map missing"
    assert not np.array_equal(frames[0], frames[-1])


def test_gif_of_chosen_epochs_and_bad_epoch(small_run, tmp_path):
    path = small_run.to_gif(tmp_path / "two.gif", epochs=[1, 3], size=(160, 160), duration=300)
    with Image.open(path) as gif:
        assert gif.n_frames == 2
        assert gif.info.get("loop") == 0
    with pytest.raises(DVIError, match="valid epochs"):
        small_run.to_gif(tmp_path / "bad.gif", epochs=[7])
    assert not (tmp_path / "bad.gif").exists()


def test_snapshot_shows_map_points_and_selection(small_run, tmp_path):
    w = DVIWidget(small_run)
    w.epoch = 2
    size = (400, 300)
    plain = np.asarray(Image.open(w.snapshot(tmp_path / "plain.png", size=size, title=False, legend=False)))
    assert plain.shape == (300, 400, 3)
    assert _map_agreement(plain, small_run, 2, size, head=0) > 0.85
    # points: the class colours of the points show where the embedding puts them
    colors = small_run.colors.astype(int)
    cx, cy, k = fit_view(small_run.extent, *size)
    pts = small_run.embedding(2)
    lab = small_run.labels
    pred = small_run.predictions(2)
    hits = 0
    checked = 0
    for i in range(0, 1000, 25):
        if pred[i] != lab[i]:
            continue  # crosses: their centre pixel is the cross's, fine, but keep the check simple
        x = int(round((pts[i, 0] - cx) * k + size[0] / 2))
        y = int(round((cy - pts[i, 1]) * k + size[1] / 2))
        if not (0 <= x < size[0] and 0 <= y < size[1]):
            continue
        checked += 1
        patch = plain[max(0, y - 2):y + 3, max(0, x - 2):x + 3].reshape(-1, 3).astype(int)
        # the point's own colour or another point's drawn over it: some class colour nearby
        if np.min(np.abs(patch[:, None, :] - colors[None]).max(axis=2)) <= 40:
            hits += 1
    assert checked > 10 and hits / checked > 0.8
    # selection: the rest dims (closer to the map), selected points keep full colour
    w.select(list(range(0, 1000, 10)))
    sel = np.asarray(Image.open(w.snapshot(tmp_path / "sel.png", size=size, title=False, legend=False)))
    assert not np.array_equal(plain, sel)
    map_only = np.asarray(render(small_run, 2, size=size, hidden=range(10), legend=False), dtype=int)
    # away from the selected points (drawn larger, with a dark ring), the rest is dimmed towards the map
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    near_sel = np.zeros(size[::-1], dtype=bool)
    for i in range(0, 1000, 10):
        x = (pts[i, 0] - cx) * k + size[0] / 2
        y = (cy - pts[i, 1]) * k + size[1] / 2
        near_sel |= (xx - x) ** 2 + (yy - y) ** 2 <= 7 ** 2
    far = lambda img: np.abs(np.asarray(img, dtype=int) - map_only)[~near_sel].sum()
    assert far(sel) < 0.6 * far(plain)
    for i in range(0, 1000, 10):  # selected points at full colour (a cross or a disk in its class colour)
        if pred[i] != lab[i]:
            continue
        x = int(round((pts[i, 0] - cx) * k + size[0] / 2))
        y = int(round((cy - pts[i, 1]) * k + size[1] / 2))
        if 2 <= x < size[0] - 2 and 2 <= y < size[1] - 2:
            patch = sel[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int)
            assert np.min(np.abs(patch[:, None, :] - colors[None]).max(axis=2)) <= 40


def test_snapshot_follows_view_and_filters(small_run, tmp_path):
    w = DVIWidget(small_run)
    a = np.asarray(Image.open(w.snapshot(tmp_path / "a.png", size=(300, 300), legend=False)))
    w.view = {"cx": 0.0, "cy": 0.0, "zoom": 4.0}
    b = np.asarray(Image.open(w.snapshot(tmp_path / "b.png", size=(300, 300), legend=False)))
    assert not np.array_equal(a, b)
    w.view = {}
    w.hidden_classes = list(range(10))  # every class hidden: only the map is left
    c = render(small_run, w.epoch, size=(300, 300), hidden=w.hidden_classes, legend=False)
    assert (np.asarray(c).sum(axis=2) < 150).sum() == 0  # no point outlines at all


def _spread_samples(vis, epoch, size, count=8):
    """`count` correctly classified samples far from each other on the map, with their pixels."""
    cx, cy, k = fit_view(vis.extent, *size)
    pts = vis.embedding(epoch)
    ok = np.flatnonzero(vis.predictions(epoch) == vis.labels)
    chosen = [int(ok[0])]
    while len(chosen) < count:
        d = np.min(np.linalg.norm(pts[ok][:, None] - pts[chosen][None], axis=2), axis=1)
        chosen.append(int(ok[int(d.argmax())]))
    xy = [(int(round((pts[i, 0] - cx) * k + size[0] / 2)), int(round((cy - pts[i, 1]) * k + size[1] / 2)))
          for i in chosen]
    return np.array(chosen), xy


def test_snapshot_and_gif_colour_by_a_training_statistic_and_filter_by_its_range(small_run, tmp_path):
    """Leftover of the analysis issue: pictures ignored the dynamics colouring and range filter."""
    from dvi_widget.outputs.pictures import stat_colors

    size, e = (320, 320), small_run.epochs[-1]
    idx, xy = _spread_samples(small_run, e, size)
    aum = np.asarray(small_run.dynamics(pandas=False, progress=False)["aum"], dtype=np.float64)
    kw = dict(size=size, indices=idx, point_radius=4, point_opacity=1.0, legend=False, scale=1)
    img = np.asarray(render(small_run, e, color_by="aum", **kw), dtype=int)
    want = stat_colors(aum[idx]).astype(int)   # viridis over the drawn samples' range, as the page
    got = np.array([img[y, x] for x, y in xy])
    assert np.abs(got - want).max() <= 2
    assert len({tuple(c) for c in want}) > 3    # not one flat colour
    by_label = np.array([np.asarray(render(small_run, e, **kw), dtype=int)[y, x] for x, y in xy])
    assert np.abs(by_label - small_run.colors[small_run.labels[idx]].astype(int)).max() <= 2

    # the range filter: samples below the median AUM are not drawn (the map shows where they were)
    cut = float(np.median(aum[idx]))
    filt = np.asarray(render(small_run, e, color_by="aum", dynamics_filter={"column": "aum", "min": cut, "max": None},
                             **kw), dtype=int)
    for (x, y), v, c in zip(xy, aum[idx], want):
        drawn = np.abs(filt[y, x] - c).max() <= 2
        assert drawn == (v >= cut), (v, cut)

    # the widget's snapshot and a GIF follow the same colouring
    w = DVIWidget(small_run)
    w.epoch = e
    w.color_by = "aum"
    w.dynamics_filter = {"column": "aum", "min": cut, "max": None}
    lab = np.asarray(Image.open(w.snapshot(tmp_path / "aum.png", size=size, title=False, legend=False)))
    w.dynamics_filter = {}
    w.color_by = "label"
    plain = np.asarray(Image.open(w.snapshot(tmp_path / "label.png", size=size, title=False, legend=False)))
    assert not np.array_equal(lab, plain)
    frames = gif_frames(small_run, [e], size=(200, 200), color_by="aum", title=False, legend=False)
    frames_label = gif_frames(small_run, [e], size=(200, 200), title=False, legend=False)
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames_label[0]))
    with pytest.raises(DVIError, match="color_by must be one of"):
        render(small_run, e, color_by="bogus", size=(64, 64))


def test_snapshot_unwritable_path(small_run, tmp_path):
    w = DVIWidget(small_run)
    with pytest.raises(DVIError, match="does not exist"):
        w.snapshot(tmp_path / "missing" / "x.png")
    assert os.listdir(tmp_path) == []


def test_frames_render_hostile_class_names_as_text(small_run):
    class Named:
        def __getattr__(self, name):
            return getattr(small_run, name)
        classes = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"] + [str(i) for i in range(2, 10)]
    frames = gif_frames(Named(), [1], size=(200, 200))
    assert frames[0].size[0] == 200 and frames[0].size[1] > 200 + 24  # legend rows added


# ---------------------------------------------------------------- the rules and the rasteriser

import json as _json
import pathlib as _pathlib
import shutil as _shutil
import subprocess as _subprocess

from dvi_widget.outputs.pictures import composite, map_aspect, point_opacity, point_radius, stamp, style

_REPO = _pathlib.Path(__file__).resolve().parents[1]


def _node(script: str):
    node = _shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    res = _subprocess.run([node, "--input-type=module", "-e", script], cwd=_REPO, capture_output=True, text=True,
                          timeout=60)
    assert res.returncode == 0, res.stderr
    return _json.loads(res.stdout)


def test_rules_are_read_from_style_json():
    st = style()
    assert st is style() and st["points"]["dim"] == _json.loads((_REPO / "dvi_widget" / "style.json").read_text())["points"]["dim"]
    # denser maps, smaller points; zoom enlarges them; the user's size multiplies
    assert point_radius(50_000, 1000, 700) < point_radius(1_000, 1000, 700)
    assert point_radius(50_000, 1000, 700, zoom=4) > point_radius(50_000, 1000, 700)
    assert point_radius(5_000, 1000, 700, size=2) == pytest.approx(2 * point_radius(5_000, 1000, 700))
    # heavy overdraw makes points translucent, never below the floor
    assert point_opacity(400_000, 1.0, 1000, 700) == st["points"]["opacity"]["min"]
    assert point_opacity(st["points"]["opacity"]["opaque_above"] + 1, 1.0, 1000, 700) == 1.0  # opaque beyond it
    assert point_opacity(100, 2.0, 1000, 700) == 1.0
    assert map_aspect([0, 30, 0, 10]) == st["view"]["aspect_max"]


def test_rules_match_the_js_bundle_sources():
    """The same inputs through js/src/style.js and pictures.py give the same radius, alpha and aspect."""
    cases = [(n, w, h, z, s) for n in (500, 10_000, 50_000, 200_000, 1_000_000)
             for (w, h) in ((800, 533), (1272, 847)) for z in (1, 3.5) for s in (1, 0.5)]
    js = _node(
        "import * as S from './js/src/style.js';"
        f"const cases = {_json.dumps(cases)};"
        "console.log(JSON.stringify(cases.map(([n, w, h, z, s]) => { const r = S.pointRadius(n, w, h, z, s);"
        " return [r, S.pointOpacity(n, r, w, h)]; }).concat([[S.mapAspect([0, 3, 0, 1]), S.mapAspect([0, 1, 0, 5])]])));")
    for (n, w, h, z, s), (r, a) in zip(cases, js[:-1]):
        assert point_radius(n, w, h, z, s) == pytest.approx(r, rel=1e-9)
        assert point_opacity(n, r, w, h) == pytest.approx(a, rel=1e-9)
    assert [map_aspect([0, 3, 0, 1]), map_aspect([0, 1, 0, 5])] == pytest.approx(js[-1])


def test_stamps_match_the_js_rasteriser():
    """Disk and cross stamps, fill and ring, pixel for pixel as js/src/raster.js makeStamp."""
    width = 64
    js = _node(
        "import * as R from './js/src/raster.js';"
        f"const out = {{}}; for (const r of [0, 1, 2, 3, 5]) for (const s of ['disk', 'cross']) {{"
        f" const st = R.makeStamp(r, R[s], {width}); out[s + r] = [Array.from(st.fill), Array.from(st.outline)]; }}"
        "console.log(JSON.stringify(out));")
    for key, (fill_js, ring_js) in js.items():
        shape = key.rstrip("0123456789")
        r = int(key[len(shape):])
        fill, ring = stamp(r, shape)
        as_offsets = lambda a: sorted(int(dy) * width + int(dx) for dy, dx in a)  # noqa: E731
        assert as_offsets(fill) == sorted(fill_js), key
        assert as_offsets(ring) == sorted(ring_js), key


def test_composite_blends_in_drawing_order():
    """Overlapping stamps: the vectorised compositing equals drawing them one after another."""
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, size=(4, 5, 3))
    pix = rng.integers(0, 20, size=60)
    seq = np.arange(60)
    col = rng.uniform(0, 255, size=(60, 3))
    alpha = rng.choice([0.3, 0.75, 1.0], size=60)
    want = img.reshape(-1, 3).copy()
    for p, c, a in zip(pix, col, alpha):
        want[p] = c * a + want[p] * (1 - a)
    perm = rng.permutation(60)  # the entries' order in the list must not matter, only their sequence
    got = img.copy()
    composite(got, [(pix[perm], seq[perm], col[perm], alpha[perm])])
    np.testing.assert_allclose(got.reshape(-1, 3), want, atol=1e-6)


# ---------------------------------------------------------------- parity with the browser

#: Intersection over union of the two point masks that the parity test requires.
PARITY_IOU = 0.9


def _canvas_pixels(browser, path, dpr: int = 1, probe: str | None = None, timeout_ms: int = 60_000):
    """The map canvas (map and points) of an exported page, as an (H, W, 3) array, read in the page;
    with `probe` (a JS expression of the debug handle `app`), (array, its value)."""
    import base64 as _b64
    import io as _io

    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=dpr, bypass_csp=True)
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
    try:
        page = ctx.new_page()
        page.goto(path.resolve().as_uri())
        page.wait_for_function("() => { const r = document.querySelector('.dvi-root');"
                               " return r && r.dataset.drawnEpoch && r.dataset.playing !== 'true'; }", timeout=timeout_ms)
        page.wait_for_timeout(300)  # a resize or late map paint settles
        url = page.evaluate("() => document.querySelector('.dvi-canvas-points').toDataURL('image/png')")
        value = page.evaluate(f"() => {{ const app = document.querySelector('.dvi-root').dvi; return {probe}; }}") if probe else None
    finally:
        ctx.close()
    img = np.asarray(Image.open(_io.BytesIO(_b64.b64decode(url.split(",", 1)[1]))).convert("RGB"), dtype=int)
    return (img, value) if probe else img


def _point_mask(img: np.ndarray, map_only: np.ndarray) -> np.ndarray:
    return np.abs(img - map_only).max(axis=2) > 24


@pytest.mark.browser
def test_python_picture_and_browser_agree_on_where_points_are(small_run, tmp_path, browser):
    """A Python snapshot and the browser's canvas of the same state (epoch, selection, view, size)
    put points on the same pixels: IoU of the point masks >= PARITY_IOU. The masks are the pixels
    that differ from the same picture with every class hidden (map only), in each renderer."""
    w = DVIWidget(small_run)
    w.epoch = small_run.epochs[1]
    w.select(range(0, 1000, 7))
    pages = {}
    for name, hidden in (("points", []), ("map", list(range(len(small_run.classes))))):
        w.hidden_classes = hidden
        pages[name] = _canvas_pixels(browser, w.export_html(tmp_path / f"{name}.html", thumbnails="none"))
    H, W = pages["points"].shape[:2]
    assert pages["map"].shape == (H, W, 3)
    w.hidden_classes = []
    py_points = np.asarray(render_widget(w, (W, H)), dtype=int)
    w.hidden_classes = list(range(len(small_run.classes)))
    py_map = np.asarray(render_widget(w, (W, H)), dtype=int)
    # the decision maps agree too (bilinear scaling in both; allow for the resampling)
    assert np.mean(np.abs(py_map - pages["map"]).max(axis=2) <= 24) > 0.97, "the map under the points is the same"
    browser_mask = _point_mask(pages["points"], pages["map"])
    python_mask = _point_mask(py_points, py_map)
    iou = (browser_mask & python_mask).sum() / max((browser_mask | python_mask).sum(), 1)
    Image.fromarray(np.concatenate([pages["points"], py_points], axis=1).astype(np.uint8)).save(
        tmp_path / "parity.png")
    assert browser_mask.sum() > 500, "the browser drew points"
    shifted = np.roll(browser_mask, 3, axis=1)  # the measure is sharp: 3 px off fails it
    assert (shifted & python_mask).sum() / max((shifted | python_mask).sum(), 1) < PARITY_IOU
    assert iou >= PARITY_IOU, (f"point masks: IoU {iou:.3f} (browser {browser_mask.sum()} px, Python "
                               f"{python_mask.sum()} px); side by side in {tmp_path / 'parity.png'}")


def render_widget(w, size):
    from dvi_widget.outputs.pictures import widget_picture

    return widget_picture(w, size=size, title=False, legend=False, scale=1)


def test_widget_output_carries_a_static_picture_of_its_view(small_run):
    """Bug 5: beside the live view, the output bundle holds a PNG of the current view and one line
    on how to get the live map; a live view with no epoch yet says so, without a picture."""
    import base64
    import io

    from dvi_widget.outputs.pictures import fallback_bundle

    w = DVIWidget(small_run)
    w.epoch = small_run.epochs[0]
    data, meta = w._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    png = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert png.size == (meta["image/png"]["width"], meta["image/png"]["height"])
    assert f"epoch {small_run.epochs[0]}" in data["text/plain"] and "export_html" in data["text/plain"]
    assert data["image/png"] in data["text/html"] and "kernel" in data["text/html"]
    # the picture is the current view: another epoch gives another picture
    w.epoch = small_run.epochs[-1]
    assert w._repr_mimebundle_()[0]["image/png"] != data["image/png"]

    class Waiting:  # a live widget before its first epoch
        epoch = None
    out, _ = fallback_bundle(Waiting(), ({"text/plain": "DVIWidget()"}, {}))
    assert "image/png" not in out and "waiting for the first epoch" in out["text/plain"]


@pytest.mark.browser
def test_browser_rank_path_draws_the_python_picture_at_scale(tmp_path, browser):
    """Beyond a quarter of the map's pixels in opaque points the page draws by rank
    (js/src/raster.js drawPointsRanked); its canvas shows the same points in the same colours
    as the Python picture, which stamps every point in order."""
    from browser.fake_vis import FakeVisualization

    vis = FakeVisualization(n=150_000, epochs=range(1, 3), map_size=64, thumbnails=False)
    w = DVIWidget(vis, max_points=None)
    w.epoch = 2
    w.point_opacity = 1.0  # opaque: the rank path's condition (the automatic opacity is below 1 here)
    path = w.export_html(tmp_path / "scale.html", thumbnails="none")
    canvas, ranked = _canvas_pixels(browser, path, probe="!!app.renderer.scratch", timeout_ms=120_000)
    assert ranked, "the page took the rank path"
    H, W = canvas.shape[:2]
    py = np.asarray(render_widget(w, (W, H)), dtype=int)
    w.hidden_classes = list(range(len(vis.classes)))
    py_map = np.asarray(render_widget(w, (W, H)), dtype=int)
    on_points = np.abs(py - py_map).max(axis=2) > 24
    assert on_points.mean() > 0.2, "the points cover much of the map"
    same = np.abs(canvas - py).max(axis=2) <= 8
    assert same[on_points].mean() > 0.97, f"point pixels in the same colour: {same[on_points].mean():.3f}"


def test_picture_coloured_by_a_statistic_has_a_colour_bar_not_the_class_legend():
    """Coloured by a training statistic, the picture's legend is the statistic's colour bar (its
    name, its range's ends, the viridis ramp, "no value" grey when some samples have none), as
    the page shows it, not the list of classes, whose colours no point then has."""
    import sys
    sys.path.insert(0, str(_pathlib.Path(__file__).parent / "browser"))
    from fake_vis import FakeVisualization
    from dvi_widget.outputs.pictures import _viridis, fmt_stat, stat_range, MISSING_RGB

    vis = FakeVisualization(n=400, n_classes=5, epochs=(1, 2), map_size=32)
    stat = np.linspace(-0.25, 3.5, 400)
    stat[1::50] = np.nan
    size = (360, 300)
    img = np.asarray(render(vis, 2, size=size, color_by="aum", dynamics={"aum": stat}, title=None, scale=1), dtype=int)
    foot = img[size[1]:]
    assert foot.shape[0] > 10, "a legend row below the map"
    vir = _viridis().astype(int)
    # the ramp: one row of the footer runs from viridis' first colour to its last, in order
    best = 0
    for row in foot:
        k = [int(np.argmin(np.abs(vir - px).sum(1))) for px in row]
        close = [np.abs(vir[j] - px).sum() <= 6 for j, px in zip(k, row)]
        run = [j for j, c in zip(k, close) if c]
        if len(run) > best and run == sorted(run) and run[0] <= 2 and run[-1] >= 253:
            best = len(run)
    assert best >= 100, "no viridis ramp from its first to its last colour in the legend"
    assert (np.abs(foot - np.array(MISSING_RGB)).sum(-1) == 0).sum() >= 100, "no 'no value' swatch"
    for c in vis.colors.astype(int):
        assert (np.abs(foot - c).sum(-1) == 0).sum() < 20, "a class swatch in a statistic's legend"
    assert stat_range(stat) == (-0.25, 3.5)
    assert [fmt_stat(v) for v in (-0.25, 3.5, 0.123456, 1234.5, 0.001234, 0.0)] == \
        ["-0.25", "3.5", "0.123", "1.23e+3", "1.23e-3", "0"]

    by_label = np.asarray(render(vis, 2, size=size, title=None, scale=1), dtype=int)[size[1]:]
    for c in vis.colors.astype(int):
        assert (np.abs(by_label - c).sum(-1) == 0).sum() >= 100, "coloured by label: each class has its swatch"
