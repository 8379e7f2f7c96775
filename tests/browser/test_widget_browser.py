"""The widget in a real JupyterLab 4 and Notebook 7 (headless Chromium).

Each test runs in both front ends (the `nb` fixture is parametrised) on a
small real MNIST run; kernel-side state is read back by running code in the
notebook's kernel. Screenshots go to test-output/browser/.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.browser


def points_in_polygon(xs: np.ndarray, ys: np.ndarray, poly: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule, vectorised over points: the specification the lasso must meet."""
    inside = np.zeros(len(xs), dtype=bool)
    m = len(poly)
    for i in range(m):
        xi, yi = poly[i]
        xj, yj = poly[i - 1]
        crosses = (yi > ys) != (yj > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (ys - yi) / (yj - yi) + xi
        inside ^= crosses & (xs < x_at)
    return inside


def kernel(nb, expr: str):
    out = nb.exec(f"import json as _j; print('@@' + _j.dumps({expr}))")
    return json.loads([l for l in out.splitlines() if l.startswith("@@")][-1][2:])


def map_box(nb, k: int = 0):
    return nb.root(k).locator(".dvi-map").bounding_box()


def canvas_signature(nb, k: int = 0) -> str:
    """A digest of the points canvas, to tell frames apart."""
    return nb.page.evaluate(
        """(k) => { const c = document.querySelectorAll('.dvi-root')[k].querySelector('.dvi-canvas-points');
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let h = 0, n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) { n++; h = (h * 31 + i + d[i - 3]) | 0; }
             return n + ':' + h; }""",
        k,
    )


def screen_positions(nb, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = nb.js("[Array.from(app.xs), Array.from(app.ys)]", k=k)
    return np.array(xs), np.array(ys)


@pytest.fixture
def reset(nb):
    """Each test starts from the last epoch, no selection, no filters, pan mode, fitted view."""
    nb.exec(
        "w.select([]); w.color_by = 'label'; w.split_filter = 'both'; w.hidden_classes = []; "
        "w.only_misclassified = False; w.only_flipped = False; w.show_trails = False; w.epoch = vis.epochs[-1]"
    )
    nb.js("(app.pause(), app.setMode('pan'), app.resetView(), app.inspect(null), true)")
    last = kernel(nb, "vis.epochs[-1]")
    nb.wait_drawn(last)
    return nb


def test_map_shows_points_on_the_decision_map_with_legend_and_faithfulness(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    assert nb.root().get_attribute("data-drawn-epoch") == str(epochs[-1]), "a new widget opens on the last epoch"
    assert nb.root().locator(".dvi-epoch-label").inner_text() == f"epoch {epochs[-1]}"
    # legend: every class with its count
    counts = kernel(nb, "np.bincount(vis.labels, minlength=len(vis.classes)).tolist()")
    classes = kernel(nb, "vis.classes")
    items = nb.root().locator(".dvi-legend-item")
    assert items.count() == len(classes)
    for c in range(len(classes)):
        assert items.nth(c).locator(".dvi-legend-name").inner_text() == classes[c]
        assert items.nth(c).locator(".dvi-legend-count").inner_text() == str(counts[c])
    # faithfulness panel: this epoch's figures
    m = kernel(nb, "vis.metrics[vis.epochs[-1]]")
    for key in ("nn_rate@15", "ppr", "map_consistency", "accuracy/train", "accuracy/test"):
        cell = nb.root().locator(f'[data-metric="{key}"] .dvi-num')
        assert cell.inner_text() == f"{m[key]:.3f}", key
    # the background map is painted and points are drawn on top of it
    painted = nb.js(
        """(() => { const r = app.renderer, bg = r.bgWords, px = r.words; let coloured = 0, changed = 0;
             for (let i = 0; i < bg.length; i++) {
               const w = bg[i], R = w & 255, G = (w >>> 8) & 255, B = (w >>> 16) & 255;
               if (Math.max(R, G, B) - Math.min(R, G, B) > 12) coloured++;
               if (px[i] !== w) changed++; }
             return { colouredBg: coloured / bg.length, points: changed / bg.length }; })()"""
    )
    assert painted["colouredBg"] > 0.3, "the decision map covers the view"
    # the points' size now follows their number (Widget v2): the small run's ~2k points cover ~1.7%
    assert painted["points"] > 0.005, "points are drawn over it"
    nb.shot("map")
    unexpected = [e for e in nb.console_errors if "dvi" in e.lower() and "positions for" not in e]
    assert not unexpected, "only the deliberately broken widget reports an error"


def test_playback_steps_through_every_epoch_and_points_glide(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    nb.exec(f"w.epoch = {epochs[0]}")
    nb.wait_drawn(epochs[0])
    first = canvas_signature(nb)
    assert nb.root().locator(".dvi-slider").input_value() == "0"
    nb.root().locator(".dvi-speed").select_option("4")
    assert nb.js("app.state.speed") == 4
    seen, glides = nb.page.evaluate(
        """async (last) => {
          const r = document.querySelector('.dvi-root'); const app = r.dvi;
          const seen = [], glides = new Set();
          r.querySelector('.dvi-play').click();
          const t0 = performance.now();
          while (performance.now() - t0 < 15000) {
            await new Promise(requestAnimationFrame);
            if (app.transition) glides.add(app.transition.to);
            const e = Number(r.dataset.epoch);
            if (seen[seen.length - 1] !== e) seen.push(e);
            if (e === last && !app.transition) break;
          }
          return [seen, [...glides]];
        }""",
        epochs[-1],
    )
    assert seen == epochs, "playback visits every epoch in order"
    assert sorted(glides) == epochs[1:], "each step is a glide (interpolated frames), not a jump"
    nb.wait_drawn(epochs[-1])
    assert nb.root().locator(".dvi-slider").input_value() == str(len(epochs) - 1)
    assert nb.root().get_attribute("data-playing") == "false", "playback stops at the last epoch"
    assert canvas_signature(nb) != first, "the picture changed"
    assert kernel(nb, "w.epoch") == epochs[-1], "w.epoch follows playback"
    nb.shot("after-playback")


def test_python_sets_epoch_and_keys_step_without_notebook_shortcuts(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    nb.exec(f"w.epoch = {epochs[1]}")
    nb.wait_drawn(epochs[1])
    assert nb.root().locator(".dvi-epoch-label").inner_text() == f"epoch {epochs[1]}"
    with pytest.raises(AssertionError, match="unknown epoch 999; valid epochs"):
        nb.exec("w.epoch = 999")

    nb.root().focus()  # focusing the output makes its cell the active one, as any click would
    cells_before = nb.page.locator(".jp-Cell").count()
    active_before = nb.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    nb.page.keyboard.press("ArrowLeft")
    nb.wait_drawn(epochs[0])
    assert kernel(nb, "w.epoch") == epochs[0]
    nb.page.keyboard.press("ArrowRight")
    nb.wait_drawn(epochs[1])
    # keys the notebook would act on in command mode: they must stay in the widget
    for key in ("a", "b", "ArrowDown", "ArrowUp", "j", "k"):
        nb.page.keyboard.press(key)
    nb.page.keyboard.press("Space")
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dataset.playing === 'true'")
    nb.page.keyboard.press("Space")
    assert nb.page.locator(".jp-Cell").count() == cells_before, "no cell was inserted"
    active_after = nb.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    assert active_after == active_before, "the notebook's active cell did not move"


def test_lasso_selects_exactly_the_points_inside_and_syncs_to_python(reset):
    nb = reset
    box = map_box(nb)
    nb.root().locator(".dvi-mode-lasso").click()
    xs, ys = screen_positions(nb)
    # a pentagon around the centre of the map, in map-local pixels
    cx, cy = box["width"] / 2, box["height"] / 2
    r = min(box["width"], box["height"]) * 0.3
    poly = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 6)[:-1] + 0.3]
    poly = [(round(x), round(y)) for x, y in poly]

    def drawn_polygon(dragged):
        """The polygon the widget recorded, checked to be the one dragged (to a pixel)."""
        flat = nb.js("app.lastLasso")
        got = list(zip(flat[0::2], flat[1::2]))
        for x, y in dragged:
            assert min(abs(x - gx) + abs(y - gy) for gx, gy in got) <= 2, (x, y)
        return got

    def drag(points, modifier=None):
        m = nb.page.mouse
        box = map_box(nb)  # screenshots may scroll the page: take the map's place afresh
        if modifier:
            nb.page.keyboard.down(modifier)
        m.move(box["x"] + points[0][0], box["y"] + points[0][1])
        m.down()
        for x, y in points[1:] + [points[0]]:
            m.move(box["x"] + x, box["y"] + y, steps=4)
        m.up()
        if modifier:
            nb.page.keyboard.up(modifier)

    drag(poly)
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.lastLasso")
    expected = np.flatnonzero(points_in_polygon(xs, ys, drawn_polygon(poly))).tolist()
    assert len(expected) > 5
    nb.page.wait_for_function(f"() => document.querySelector('.dvi-root').dvi.selected.size === {len(expected)}")
    assert kernel(nb, "w.selected") == expected, "w.selected holds exactly the points inside the lasso"
    assert nb.root().locator(".dvi-sel-count").inner_text() == f"{len(expected)} selected"
    nb.shot("lasso")

    # shift adds a second region; alt removes part of it again
    box2 = [(20, 20), (int(box["width"] * 0.35), 20), (int(box["width"] * 0.35), int(box["height"] * 0.4)), (20, int(box["height"] * 0.4))]
    drag(box2, "Shift")
    added = set(expected) | set(np.flatnonzero(points_in_polygon(xs, ys, drawn_polygon(box2))).tolist())
    nb.page.wait_for_function(f"() => document.querySelector('.dvi-root').dvi.selected.size === {len(added)}")
    assert set(kernel(nb, "w.selected")) == added
    drag(poly, "Alt")
    left = added - set(np.flatnonzero(points_in_polygon(xs, ys, drawn_polygon(poly))).tolist())
    nb.page.wait_for_function(f"() => document.querySelector('.dvi-root').dvi.selected.size === {len(left)}")
    assert set(kernel(nb, "w.selected")) == left
    nb.root().locator(".dvi-clear").click()
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.selected.size === 0")
    assert kernel(nb, "w.selected") == []


def test_select_in_python_highlights_in_the_page(reset):
    nb = reset
    nb.exec("w.select([3, 1, 4, 15])")
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.selected.size === 4")
    assert sorted(nb.js("[...app.selected]")) == [1, 3, 4, 15]
    assert nb.root().locator(".dvi-sel-count").inner_text() == "4 selected"
    # selected points drawn last and opaque; the rest dimmed
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.passes[1].order.length === 4")
    passes = nb.js("app.passes.map(p => p.order.length)")
    n = kernel(nb, "len(vis.labels)")
    assert passes == [n - 4, 4]
    with pytest.raises(AssertionError, match="out of range"):
        nb.exec("w.select([10**6])")
    nb.shot("python-select")


def test_hover_tooltip_and_click_inspector_show_the_sample(reset):
    nb = reset
    # a misclassified sample with no other sample of its class within 4 px on screen,
    # so the point under the cursor is unambiguous
    wrong = kernel(nb, "np.flatnonzero(vis.predictions(vis.epochs[-1]) != vis.labels)[:200].tolist()")
    assert wrong, "the small run has misclassified samples"
    i = nb.js(
        """(() => { for (const i of arg) {
               let near = Infinity;
               for (let j = 0; j < app.n; j++) if (j !== i && app.labels[j] === app.labels[i])
                 near = Math.min(near, Math.hypot(app.xs[j] - app.xs[i], app.ys[j] - app.ys[i]));
               if (near > 4) return i; }
             return arg[0]; })()""",
        wrong,
    )
    facts = kernel(
        nb,
        f"""{{'label': vis.classes[int(vis.labels[{i}])],
             'pred': vis.classes[int(vis.predictions(vis.epochs[-1])[{i}])],
             'conf': float(vis.probabilities(vis.epochs[-1])[{i}].max()),
             'history': [int(vis.predictions(e)[{i}]) for e in vis.epochs], 'epochs': vis.epochs}}""",
    )
    # isolate the sample so the nearest point under the cursor is this one
    nb.exec(f"w.hidden_classes = [c for c in range(len(vis.classes)) if c != int(vis.labels[{i}])]")
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.state.hidden.size > 0")
    nb.page.wait_for_timeout(200)
    nb.root().locator(".dvi-map").scroll_into_view_if_needed()
    box = map_box(nb)
    x, y = nb.js(f"[app.xs[{i}], app.ys[{i}]]")
    nb.page.mouse.move(box["x"] + x, box["y"] + y)
    tip = nb.root().locator(".dvi-tooltip")
    tip.wait_for(state="visible")
    assert tip.get_attribute("data-index") == str(i)
    text = tip.inner_text()
    assert f"#{i}" in text
    assert f"label: {facts['label']}" in text
    assert f"prediction: {facts['pred']}" in text
    assert f"confidence: {facts['conf']:.2f}" in text
    assert tip.locator("canvas.dvi-thumb").count() == 1, "the thumbnail is shown"
    nb.shot("tooltip")

    box = map_box(nb)
    nb.page.mouse.click(box["x"] + x, box["y"] + y)
    insp = nb.root().locator(".dvi-inspector")
    insp.wait_for(state="visible")
    assert insp.get_attribute("data-index") == str(i)
    itext = insp.inner_text()
    assert f"Sample #{i}" in itext and f"label: {facts['label']}" in itext
    assert insp.locator(".dvi-pred-cell").count() == len(facts["epochs"]), "one prediction per epoch"
    hist, eps = facts["history"], facts["epochs"]
    flips = [eps[k] for k in range(1, len(hist)) if hist[k] != hist[k - 1]]
    assert insp.locator(".dvi-pred-cell.dvi-flip").count() == len(flips)
    if flips:
        assert f"flipped at epoch {flips[0]}" in itext
    else:
        assert "no flips" in itext
    assert insp.locator("canvas.dvi-thumb-large").count() == 1
    assert insp.locator("polyline.dvi-history-line").count() == 1
    nb.shot("inspector")


def test_trails_and_filters(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    last = epochs[-1]
    nb.exec("w.select(list(range(0, 60, 3)))")
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.selected.size === 20")
    nb.root().locator(".dvi-trails").check()
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dataset.trails === '20'")
    assert kernel(nb, "w.show_trails") is True
    nb.shot("trails")
    nb.root().locator(".dvi-trails").uncheck()

    def visible_is(expected: int) -> bool:
        """Wait (frames are drawn asynchronously) until `expected` points are visible."""
        try:
            nb.page.wait_for_function(
                "(n) => document.querySelector('.dvi-root').dvi.visible.reduce((a, b) => a + b, 0) === n",
                arg=expected, timeout=15_000,
            )
        except Exception:
            pass
        got = nb.js("app.visible.reduce((a, b) => a + b, 0)")
        assert got == expected, f"{got} points visible, expected {expected}"
        return True

    # colour by prediction / correctness: the picture changes, the trait follows
    before = canvas_signature(nb)
    nb.root().locator(".dvi-color-by").select_option("correct")
    nb.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.passes[0].colors && "
                              "document.querySelector('.dvi-root').dvi.orderKey.includes('|correct|')")
    nb.page.wait_for_timeout(100)
    assert kernel(nb, "w.color_by") == "correct"
    assert canvas_signature(nb) != before
    nb.shot("colour-correct")
    nb.root().locator(".dvi-color-by").select_option("prediction")
    assert kernel(nb, "w.color_by") == "prediction"
    nb.root().locator(".dvi-color-by").select_option("label")

    nb.root().locator(".dvi-split").select_option("test")
    assert visible_is(kernel(nb, "int((vis.split == 'test').sum())"))
    assert kernel(nb, "w.split_filter") == "test"
    nb.root().locator(".dvi-split").select_option("both")

    nb.root().locator('.dvi-legend-item[data-class="0"]').click()
    assert visible_is(kernel(nb, "int((vis.labels != 0).sum())"))
    assert kernel(nb, "w.hidden_classes") == [0]
    nb.shot("class-filter")
    nb.root().locator('.dvi-legend-item[data-class="0"]').click()

    nb.root().locator(".dvi-only-mis").check()
    assert visible_is(kernel(nb, f"int((vis.predictions({last}) != vis.labels).sum())"))
    nb.root().locator(".dvi-only-mis").uncheck()

    nb.root().locator(".dvi-only-flip").check()
    assert visible_is(kernel(nb, f"int((vis.predictions({last}) != vis.predictions({epochs[-2]})).sum())"))
    assert kernel(nb, "w.only_flipped") is True
    nb.root().locator(".dvi-only-flip").uncheck()
    assert visible_is(kernel(nb, "len(vis.labels)"))


def test_wheel_zooms_the_map_not_the_notebook_and_reset_restores(reset):
    nb = reset
    k0 = nb.js("app.view.k")
    scroller = ".jp-WindowedPanel-outer" if nb.kind == "lab" else ".jp-WindowedPanel-outer"
    top0 = nb.page.evaluate(f"() => {{ const s = document.querySelector('{scroller}'); return s ? s.scrollTop : window.scrollY; }}")
    box = map_box(nb)
    nb.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    nb.page.mouse.wheel(0, -400)
    nb.page.wait_for_timeout(300)
    assert nb.js("app.view.k") > k0 * 1.5, "wheel up zooms in"
    top1 = nb.page.evaluate(f"() => {{ const s = document.querySelector('{scroller}'); return s ? s.scrollTop : window.scrollY; }}")
    assert top1 == top0, "the notebook did not scroll"
    # pan by dragging in pan mode
    cx0 = nb.js("app.view.cx")
    box = map_box(nb)
    nb.page.mouse.move(box["x"] + 200, box["y"] + 200)
    nb.page.mouse.down()
    nb.page.mouse.move(box["x"] + 300, box["y"] + 220, steps=5)
    nb.page.mouse.up()
    assert nb.js("app.view.cx") < cx0, "dragging right moves the view left"
    nb.shot("zoomed")
    nb.root().locator(".dvi-reset").click()
    nb.page.wait_for_timeout(200)
    assert abs(nb.js("app.view.k") - k0) < 1e-6


def test_a_browser_failure_shows_a_message_in_the_cell(nb):
    broken = nb.page.locator(".dvi-error")
    broken.first.wait_for(state="visible")
    assert "dvi_widget failed in the browser" in broken.first.inner_text()
    assert "positions" in broken.first.inner_text()


def test_live_widget_waits_then_shows_each_captured_epoch(nb):
    live = 1  # the second widget on the page
    msg = nb.root(live).locator(".dvi-message")
    assert "waiting for the first epoch" in msg.inner_text()
    nb.shot("live-waiting", k=live)
    nb.exec("one_more_epoch()", timeout_ms=400_000)  # train, capture, fit: slow on a loaded 2-core machine
    nb.wait_drawn(1, k=live, timeout=60_000)
    assert kernel(nb, "live.epoch") == 1
    # the second epoch: while the cell trains, captures and fits (kernel busy),
    # hovering the live widget still shows a sample with its thumbnail
    nb.page.evaluate(
        """() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                   window.__done = false;
                   k.requestExecute({ code: 'one_more_epoch()' }).done.then(() => { window.__done = true; }); }"""
    )
    nb.page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus === 'busy'", timeout=30_000
    )
    nb.root(live).locator(".dvi-map").scroll_into_view_if_needed()
    box = map_box(nb, k=live)
    x, y = nb.js("[app.xs[0], app.ys[0]]", k=live)
    nb.page.mouse.move(box["x"] + x, box["y"] + y)
    tip = nb.root(live).locator(".dvi-tooltip")
    tip.wait_for(state="visible", timeout=10_000)
    assert tip.locator("canvas.dvi-thumb").count() == 1
    assert nb.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus") == "busy"
    nb.page.wait_for_function("() => window.__done === true", timeout=400_000)
    nb.page.mouse.move(box["x"] - 40, box["y"] - 40)
    nb.wait_drawn(2, k=live, timeout=60_000)
    assert kernel(nb, "(live.epoch, [c.epoch for c in live.epoch_data])") == [2, [1, 2]]
    assert nb.root(live).locator(".dvi-epoch-label").inner_text() == "epoch 2"
    nb.shot("live-2", k=live)


def _luminance(css: str) -> float:
    nums = [float(v) for v in css[css.index("(") + 1 : css.index(")")].replace("/", ",").split(",")[:3]]
    return (0.2126 * nums[0] + 0.7152 * nums[1] + 0.0722 * nums[2]) / 255


def test_theme_follows_the_front_end_light_and_dark(reset):
    nb = reset
    colours = "() => { const s = getComputedStyle(document.querySelector('.dvi-root')); return [s.backgroundColor, s.color]; }"
    bg, fg = nb.page.evaluate(colours)
    assert _luminance(bg) > 0.8 and _luminance(fg) < 0.4, (bg, fg)
    nb.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Dark' })")
    try:
        nb.page.wait_for_function(
            "() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000
        )
        nb.page.wait_for_timeout(300)
        bg, fg = nb.page.evaluate(colours)
        assert _luminance(bg) < 0.3 and _luminance(fg) > 0.6, (bg, fg)
        nb.js("(app.invalidate(true), true)")
        nb.page.wait_for_timeout(200)
        nb.shot("dark")
    finally:
        nb.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Light' })")
        nb.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=30_000)
