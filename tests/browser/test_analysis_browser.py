"""The analysis views in a real JupyterLab (headless Chromium), driven with the mouse and keyboard.

- colouring by a training-dynamics statistic shows a colour bar; the range filter hides points
  outside it and reads back in Python;
- a lasso drawn with the mouse in the cartography view selects those samples on the map and in
  Python (the round trip the issue asks for), and a map lasso shows in the cartography view;
- search: "#17" selects, inspects and centres sample 17; a class name selects the class; the
  breakdown panel counts the selection by class and correct / misclassified;
- the inspector lists the sample's 15 nearest neighbours in feature space (what
  ``vis.neighbours`` says) with whether each is a 2-D neighbour;
- a probe click (probe mode, or Ctrl-click) decodes the location (``vis.probe``); the offline
  export says probing needs the kernel. The "kernel busy" notice is tested in node
  (js/test/analysis.test.js, KernelChannel): a busy kernel could not be produced reliably here
  (see the report of issue 9).
"""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from harness import kernel_exec, open_notebook, run_all_cells, write_notebook

pytestmark = pytest.mark.browser


class Page:
    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []

    def exec(self, code: str, timeout_ms: int = 120_000) -> str:
        return kernel_exec(self.page, code, timeout_ms=timeout_ms)

    def kernel(self, expr: str):
        out = self.exec(f"import json as _j; print('@@' + _j.dumps({expr}))")
        return json.loads([line for line in out.splitlines() if line.startswith("@@")][-1][2:])

    def js(self, expr: str, arg=None):
        """Evaluate ``expr`` with ``app`` bound to the widget's debug handle."""
        return self.page.evaluate(
            f"(arg) => {{ const app = document.querySelector('.dvi-root').dvi; return ({expr}); }}", arg)

    @property
    def root(self):
        return self.page.locator(".dvi-root").first

    def wait_drawn(self, epoch: int, timeout: int = 20_000) -> None:
        self.page.wait_for_function(
            "(e) => { const r = document.querySelector('.dvi-root');"
            " return r && r.dataset.drawnEpoch === String(e) && !r.dvi.transition; }", arg=epoch, timeout=timeout)


@pytest.fixture(scope="module")
def lab(servers, browser, run_dir):
    """A JupyterLab notebook showing one widget of the small run, all cells run."""
    server = servers["lab"]
    name = "analysis_browser.ipynb"
    cells = [textwrap.dedent(f"""
        import json, time
        import numpy as np
        import dvi_widget as dvi
        vis = dvi.Visualization({str(run_dir)!r})
        w = dvi.DVIWidget(vis)
        w
    """).strip()]
    write_notebook(server.root / name, cells)
    context = browser.new_context(viewport={"width": 1500, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(30_000)
    helper = Page(page)
    page.on("pageerror", lambda e: helper.errors.append(str(e)))
    open_notebook(page, server, name, workspace="analysis")  # a fresh workspace: only this notebook
    run_all_cells(page)
    page.wait_for_function("() => { const r = document.querySelector('.dvi-root'); return r && r.dataset.drawnEpoch; }")
    yield helper
    context.close()


@pytest.fixture
def ui(lab):
    lab.exec("w.select([]); w.color_by = 'label'; w.dynamics_filter = {}; w.split_filter = 'both'; "
             "w.hidden_classes = []; w.only_misclassified = False; w.epoch = vis.epochs[-1]; w.view = {}")
    lab.js("(app.setMode('pan'), app.inspect(null), app.analysis.closeProbe(), true)")
    lab.wait_drawn(lab.kernel("vis.epochs[-1]"))
    return lab


def drag(page, points, modifiers=()):
    """Press at the first point, move through the others, release (the real mouse)."""
    for key in modifiers:
        page.keyboard.down(key)
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=4)
    page.mouse.up()
    for key in modifiers:
        page.keyboard.up(key)


def test_colour_by_aum_shows_a_colour_bar_and_the_range_filter_reads_back(ui):
    ui.root.locator(".dvi-color-by").select_option("aum")
    assert ui.kernel("w.color_by") == "aum"
    bar = ui.root.locator(".dvi-colorbar")
    bar.wait_for(state="visible")
    assert "aum" in bar.inner_text() and "margin from logits" in bar.inner_text()
    aum = np.array(ui.kernel("vis.dynamics(progress=False)['aum'].tolist()"))
    ticks = bar.locator(".dvi-colorbar-ticks span").all_inner_texts()
    assert float(ticks[0]) == pytest.approx(aum.min(), rel=0.01, abs=0.01)
    assert float(ticks[-1]) == pytest.approx(aum.max(), rel=0.01, abs=0.01)
    # points take viridis colours: the lowest-AUM sample is dark purple, the highest yellow
    words = ui.js("[app.colorOf(arg[0]), app.colorOf(arg[1])]", [int(aum.argmin()), int(aum.argmax())])
    assert words[0][:3] == [0x44, 0x01, 0x54] and words[1][:3] == [0xFD, 0xE7, 0x24]
    # raise the lower end with the keyboard: 100 of 200 steps
    lo = bar.locator(".dvi-range-min")
    lo.focus()
    for _ in range(100):
        ui.page.keyboard.press("ArrowRight")
    ui.page.wait_for_function("() => document.querySelector('.dvi-range-min').value === '100'"
                              " && document.querySelector('.dvi-root').dvi.state.dynFilter != null")
    want_min = aum.min() + (aum.max() - aum.min()) * 0.5
    for _ in range(50):   # the last slider change reaches Python a moment later
        f = ui.kernel("w.dynamics_filter")
        if f and f["min"] == pytest.approx(want_min, rel=1e-3):
            break
        ui.page.wait_for_timeout(100)
    assert f["column"] == "aum" and f["max"] is None
    assert f["min"] == pytest.approx(aum.min() + (aum.max() - aum.min()) * 0.5, rel=1e-3)
    ui.page.wait_for_timeout(300)
    visible = ui.js("app.visibleCount()")
    assert visible == int((aum >= f["min"]).sum())
    ui.exec("w.dynamics_filter = {}")
    ui.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.state.dynFilter == null")
    assert ui.js("app.visibleCount()") == len(aum)


def test_lasso_in_the_cartography_view_selects_on_the_map_and_in_python(ui):
    dyn = ui.kernel("{k: vis.dynamics(progress=False)[k].tolist() for k in ('confidence', 'variability')}")
    conf, var = np.array(dyn["confidence"]), np.array(dyn["variability"])
    canvas = ui.root.locator(".dvi-carto-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    layout = ui.js("app.analysis.cartoLayout()")   # {x0, x1, y0, y1, left, top, width, height} in CSS px
    # a rectangle in data units: the hard-to-learn corner (low confidence, low variability)
    v_hi, c_hi = layout["x1"] * 0.5, 0.45

    def screen(v, c):
        x = box["x"] + layout["left"] + (v - layout["x0"]) / (layout["x1"] - layout["x0"]) * layout["width"]
        y = box["y"] + layout["top"] + (1 - (c - layout["y0"]) / (layout["y1"] - layout["y0"])) * layout["height"]
        return x, y
    corners = [screen(-0.05, -0.1), screen(v_hi, -0.1), screen(v_hi, c_hi), screen(-0.05, c_hi), screen(-0.05, -0.05)]
    drag(ui.page, corners)
    want = sorted(np.flatnonzero((var <= v_hi) & (conf <= c_hi)).tolist())
    assert len(want) >= 5, "the corner holds samples (the run has misclassified ones)"
    ui.page.wait_for_function("(n) => document.querySelector('.dvi-root').dvi.selected.size === n", arg=len(want))
    got = ui.kernel("w.selected")
    # points within a pixel of the lasso's edge may fall either way
    edge = np.flatnonzero((np.abs(var - v_hi) < 2 * layout["x1"] / layout["width"]) | (np.abs(conf - c_hi) < 2 / layout["height"]))
    assert set(got) ^ set(want) <= set(edge.tolist())
    # the map shows them selected: its selection mask and its drawn selected pass
    assert ui.js("app.selectedOnMap()") == len(got)
    assert ui.js("app.analysis.carto.drawnSelected") == len(got)
    # and the breakdown panel counts them
    head = ui.root.locator(".dvi-breakdown-head").inner_text()
    e = ui.kernel("vis.epochs[-1]")
    right = ui.kernel(f"int((vis.predictions({e})[w.selected] == vis.labels[w.selected]).sum())")
    assert head.startswith(f"{len(got)} selected: {right} correct")


def test_lasso_on_the_map_shows_in_the_cartography_view(ui):
    box = ui.root.locator(".dvi-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = min(box["width"], box["height"]) / 4
    drag(ui.page, [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r), (cx - r, cy - r + 1)],
         modifiers=("Shift",))
    ui.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.selected.size > 0")
    n = len(ui.kernel("w.selected"))
    ui.page.wait_for_timeout(200)
    assert ui.js("app.analysis.carto.drawnSelected") == n > 0


def test_search_jumps_to_a_sample_and_selects_a_class(ui):
    box = ui.root.locator(".dvi-search-input")
    box.click()
    box.fill("#17")
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.selected.size === 1")
    assert ui.kernel("w.selected") == [17]
    assert "Sample #17" in ui.root.locator(".dvi-inspector").inner_text()
    # the view is centred on it
    e = ui.kernel("vis.epochs[-1]")
    x, y = ui.kernel(f"vis.embedding({e})[17].tolist()")
    ui.page.wait_for_function("() => Object.keys(document.querySelector('.dvi-root').dvi.viewRel || {}).length > 0")
    v = ui.js("app.viewRel")
    assert (v["cx"], v["cy"]) == pytest.approx((x, y), abs=1e-4)
    box.fill("3")
    ui.page.keyboard.press("Enter")
    want = ui.kernel("np.flatnonzero(vis.labels == 3).tolist()")
    ui.page.wait_for_function("(n) => document.querySelector('.dvi-root').dvi.selected.size === n", arg=len(want))
    assert ui.kernel("w.selected") == want
    assert ui.root.locator(".dvi-search-msg").inner_text() == f"{len(want)} samples labelled 3"
    box.fill("#5000")
    ui.page.keyboard.press("Enter")
    assert "no sample 5000: this run has 1000 samples" in ui.root.locator(".dvi-search-msg").inner_text()


def test_inspector_lists_the_feature_space_neighbours(ui):
    e = ui.kernel("vis.epochs[-1]")
    i = 42
    sx, sy = ui.js("app.screenOf(arg)", i)
    box = ui.root.locator(".dvi-map").bounding_box()
    ui.page.mouse.click(box["x"] + sx, box["y"] + sy)
    ui.page.wait_for_function("() => document.querySelector('.dvi-root').dvi.inspected != null")
    shown = ui.js("app.globalIndex(app.inspected)")
    nb = ui.kernel(f"(lambda t: {{'sample': t['sample'].tolist(), 'in_2d': t['in_2d'].tolist()}})(vis.neighbours({e}, {shown}))")
    cells = ui.root.locator(".dvi-neighbours .dvi-nb")
    cells.first.wait_for()
    assert cells.count() == 15
    assert [int(c) for c in cells.evaluate_all("els => els.map(e => e.dataset.index)")] == nb["sample"]
    kept = cells.evaluate_all("els => els.map(e => e.classList.contains('dvi-nb-kept'))")
    assert kept == nb["in_2d"]
    assert f"{sum(nb['in_2d'])} of 15 are also 2-D neighbours" in ui.root.locator(".dvi-nb-summary").inner_text()
    assert ui.root.locator(".dvi-neighbours canvas").count() == 15, "thumbnails"
    # clicking a neighbour inspects it
    cells.nth(0).click()
    ui.page.wait_for_function("(g) => { const a = document.querySelector('.dvi-root').dvi; return a.globalIndex(a.inspected) === g; }",
                              arg=nb["sample"][0])


def test_probe_decodes_the_clicked_location(ui):
    e = ui.kernel("vis.epochs[-1]")
    ui.root.locator(".dvi-mode-probe").click()
    box = ui.root.locator(".dvi-map").bounding_box()
    sx, sy = box["width"] * 0.9, box["height"] * 0.1     # a corner: usually empty
    ui.page.mouse.click(box["x"] + sx, box["y"] + sy)
    panel = ui.root.locator(".dvi-probe")
    ui.page.wait_for_function("() => document.querySelector('.dvi-probe').dataset.status === 'ok'")
    st = ui.js("app.analysis.probeState")
    want = ui.kernel(f"(lambda r: {{'p': r['probabilities'].tolist(), 'nearest': r['nearest'].tolist(), "
                     f"'extra': r['extrapolating']}})(vis.probe({e}, ({st['x']!r}, {st['y']!r}), k=6))")
    assert st["reply"]["probabilities"] == pytest.approx(want["p"], abs=1e-6)
    assert st["reply"]["nearest"] == want["nearest"]
    top = int(np.argmax(want["p"]))
    assert f"decodes to {top}" in panel.inner_text()
    assert ("extrapolating" in panel.inner_text()) == want["extra"]
    assert panel.locator(".dvi-near").count() == 6
    # the probe point's data coordinates are the clicked pixel's
    x, y = ui.js("app.toData(arg[0], arg[1])", [sx, sy])
    assert (st["x"], st["y"]) == pytest.approx((x, y), rel=1e-6, abs=1e-6)
    # Ctrl-click probes in any mode
    ui.root.locator(".dvi-mode-pan").click()
    ui.page.keyboard.down("Control")
    ui.page.mouse.click(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.85)
    ui.page.keyboard.up("Control")
    ui.page.wait_for_function("(x) => { const p = document.querySelector('.dvi-root').dvi.analysis.probeState;"
                              " return p && p.status === 'ok' && p.x !== x; }", arg=st["x"])
    assert ui.js("app.state.mode") == "pan"


def test_offline_export_says_probing_needs_the_kernel(ui, browser, tmp_path):
    path = tmp_path / "map.html"
    ui.exec(f"w.export_html({str(path)!r})")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(path.as_uri())
        page.wait_for_function("() => { const r = document.querySelector('.dvi-root'); return r && r.dataset.drawnEpoch; }")
        # training dynamics travel with the page: colour by AUM works offline
        page.locator(".dvi-color-by").select_option("aum")
        page.locator(".dvi-colorbar").wait_for(state="visible")
        box = page.locator(".dvi-map").bounding_box()
        page.locator(".dvi-mode-probe").click()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        panel = page.locator(".dvi-probe")
        panel.wait_for(state="visible")
        assert panel.get_attribute("data-status") == "offline"
        assert "needs the Python kernel; this page has none" in panel.inner_text()
    finally:
        page.close()
