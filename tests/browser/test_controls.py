"""What users hit in Widget v1 (issue 8), done as the user did it, in JupyterLab 4
and Notebook 7 (the `nb` fixture is parametrised over both):

1. the epoch slider: click on the track, drag the thumb, arrow keys on the focused slider;
2. switching the theme through the Settings menu leaves the map drawn;
3. resizing the page refits the view;
6. the faithfulness panel explains each figure, with a scale and the run's range;
7. the map fills the canvas at the data's aspect ratio; point size and opacity
   adapt and the user can set them;
8. colour-blind-safe "correct?" colours; the inspector's chart has axes; a legend
   entry isolates its class.

The offline export, 50,000 points and the shadow-DOM keys (4) are in test_offline_controls.py.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

ROOT = "document.querySelectorAll('.dvi-root')[0]"


def kernel(nb, expr: str):
    out = nb.exec(f"import json as _j; print('@@' + _j.dumps({expr}))")
    return json.loads([l for l in out.splitlines() if l.startswith("@@")][-1][2:])


@pytest.fixture
def reset(nb):
    """Last epoch, nothing selected, no filters, default point size, fitted view, light theme."""
    nb.exec(
        "w.select([]); w.color_by = 'label'; w.split_filter = 'both'; w.hidden_classes = []; "
        "w.only_misclassified = False; w.only_flipped = False; w.show_trails = False; "
        "w.point_size = 1.0; w.point_opacity = None; w.epoch = vis.epochs[-1]"
    )
    nb.page.set_viewport_size({"width": 1500, "height": 1100})
    nb.root().locator(".dvi-reset").click()
    nb.wait_drawn(kernel(nb, "vis.epochs[-1]"))
    nb.root().locator(".dvi-map").scroll_into_view_if_needed()
    return nb


def drawn_epoch(nb) -> int:
    return int(nb.root().get_attribute("data-drawn-epoch"))


def wait_epoch(nb, epoch: int) -> None:
    """The page drew `epoch` at rest, and Python's w.epoch says so too."""
    nb.wait_drawn(epoch)
    for _ in range(50):
        if kernel(nb, "w.epoch") == epoch:
            return
        nb.page.wait_for_timeout(100)
    assert kernel(nb, "w.epoch") == epoch


# ---------------------------------------------------------------- 1. the slider

def test_slider_click_drag_and_arrow_keys_change_the_epoch(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    assert len(epochs) >= 3
    slider = nb.root().locator(".dvi-slider")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    inset = 8  # the thumb's half width: the track's ends are where the thumb's centre can go
    x_at = lambda k: box["x"] + inset + (box["width"] - 2 * inset) * k / (len(epochs) - 1)  # noqa: E731

    # click on the track at the first epoch's place
    nb.page.mouse.click(x_at(0), y)
    wait_epoch(nb, epochs[0])
    assert nb.root().locator(".dvi-epoch-label").inner_text() == f"epoch {epochs[0]}"

    # drag the thumb with the mouse from the first to the last epoch
    m = nb.page.mouse
    m.move(x_at(0), y)
    m.down()
    m.move(x_at(len(epochs) - 1) + 4, y, steps=12)
    m.up()
    wait_epoch(nb, epochs[-1])
    assert slider.input_value() == str(len(epochs) - 1)

    # arrow keys on the focused slider
    slider.focus()
    nb.page.keyboard.press("ArrowLeft")
    wait_epoch(nb, epochs[-2])
    nb.page.keyboard.press("ArrowLeft")
    wait_epoch(nb, epochs[-3])
    nb.page.keyboard.press("ArrowRight")
    wait_epoch(nb, epochs[-2])
    assert drawn_epoch(nb) == epochs[-2]


# ---------------------------------------------------------------- 2. theme switch

MAP_HEALTH = f"""() => {{
  const root = {ROOT}, app = root.dvi;
  const c = root.querySelector('.dvi-canvas-points');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const counts = new Map();
  for (let i = 0; i < d.length; i += 16) {{
    const key = (d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3);
    counts.set(key, (counts.get(key) || 0) + 1);
  }}
  const top = Math.max(...counts.values()) / (d.length / 16);
  const W = app.renderer.width, H = app.renderer.height;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, inside = 0, shown = 0;
  for (let i = 0; i < app.n; i++) {{
    if (!app.visible[i]) continue;
    shown++;
    const x = app.xs[i], y = app.ys[i];
    if (x >= 0 && x <= W && y >= 0 && y <= H) inside++;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }}
  const map = root.querySelector('.dvi-map');
  return {{ colours: counts.size, topShare: top, spanX: (x1 - x0) / W, spanY: (y1 - y0) / H,
           inside: inside / shown, W, H, cssW: map.clientWidth, cssH: map.clientHeight, canvasW: c.width }};
}}"""


def map_health(nb) -> dict:
    return nb.page.evaluate(MAP_HEALTH)


def assert_map_drawn(h: dict, what: str) -> None:
    assert h["colours"] > 20 and h["topShare"] < 0.6, f"{what}: the map is (nearly) one flat colour: {h}"
    assert h["inside"] == 1.0, f"{what}: points outside the view: {h}"
    assert max(h["spanX"], h["spanY"]) > 0.6, f"{what}: the data does not fill the view: {h}"
    assert abs(h["W"] - h["cssW"]) <= 1 and abs(h["H"] - h["cssH"]) <= 1, f"{what}: canvas not at the map's size: {h}"


def choose_theme(nb, name: str) -> None:
    """Settings > Theme > `name`, with the mouse, as a user does it."""
    page = nb.page
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()


def test_switching_the_theme_in_the_settings_menu_leaves_the_map_drawn(reset):
    nb = reset
    assert_map_drawn(map_health(nb), "before")
    try:
        choose_theme(nb, "JupyterLab Dark")
        nb.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        nb.page.wait_for_timeout(1500)  # the theme's stylesheet loads; no input from the user after this
        h = map_health(nb)
        nb.shot("theme-dark")
        assert_map_drawn(h, "after switching to dark")
        fill = nb.page.evaluate(f"() => getComputedStyle({ROOT}).getPropertyValue('--dvi-map-bg')")
        assert fill.strip() and fill.strip().lower() not in ("#fafafa", "white", "#ffffff"), fill
    finally:
        choose_theme(nb, "JupyterLab Light")
        nb.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=30_000)
    nb.page.wait_for_timeout(1500)
    assert_map_drawn(map_health(nb), "after switching back to light")


# ---------------------------------------------------------------- 3. resize

def test_resizing_the_page_keeps_the_data_in_view_and_refits(reset):
    nb = reset
    page = nb.page
    before = map_health(nb)
    assert_map_drawn(before, "at 1500 px")
    try:
        for width in (900, 1900, 1200):
            page.set_viewport_size({"width": width, "height": 1100})
            # the canvas follows its container's new width (Notebook 7 caps its column's width, so a
            # wider window may leave the container, and so the canvas, as wide as before)
            page.wait_for_function(
                f"() => {{ const r = {ROOT}; return Math.abs(r.dvi.renderer.width - r.querySelector('.dvi-map').clientWidth) <= 1; }}",
                timeout=15_000)
            page.wait_for_timeout(400)
            h = map_health(nb)
            assert_map_drawn(h, f"at {width} px")
            before = h
    finally:
        page.set_viewport_size({"width": 1500, "height": 1100})


# ---------------------------------------------------------------- 6. faithfulness panel

def test_faithfulness_panel_explains_each_figure_with_a_scale_and_the_runs_range(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    metrics = kernel(nb, "{str(e): vis.metrics[e] for e in vis.epochs}")
    now = metrics[str(epochs[-1])]
    panel = nb.root().locator(".dvi-faith")
    for key in ("nn_rate@15", "ppr", "map_consistency"):
        row = panel.locator(f'[data-metric="{key}"]')
        assert row.count() == 1, key
        assert row.locator(".dvi-num").inner_text() == f"{now[key]:.3f}", key
        why = row.locator(".dvi-faith-why").inner_text()
        assert len(why) > 20, f"{key}: a one-line meaning is shown: {why!r}"
        assert len(row.get_attribute("title")) > len(why), f"{key}: hovering tells more"
        verdict = row.locator(".dvi-verdict").inner_text()
        assert verdict in ("good", "fair", "poor"), verdict
        rng = row.locator(".dvi-faith-range").inner_text()
        values = [metrics[str(e)][key] for e in epochs]
        assert f"run: {min(values):.3f}–{max(values):.3f} over {len(epochs)} epochs" in rng, rng
        assert "good" in rng and "poor" in rng, f"{key}: the scale is stated: {rng!r}"
        assert row.locator("svg.dvi-scale rect.dvi-scale-now").count() == 1, "this epoch is marked on the scale"
    warn = panel.locator(".dvi-faith-warn")
    if now["nn_rate@15"] < 0.2 and now["ppr"] >= 0.9:
        assert warn.count() >= 1
        assert "Neighbours kept is low" in warn.first.inner_text() and "trust" in warn.first.inner_text()
    else:
        assert "Neighbours kept is low" not in panel.inner_text()
    nb.shot("faithfulness")


# ---------------------------------------------------------------- 7. map fills the canvas; point size and opacity

def test_the_map_fills_the_canvas_at_the_datas_aspect_ratio(reset):
    nb = reset
    ext = kernel(nb, "list(w.meta['extent'])")
    aspect = (ext[1] - ext[0]) / (ext[3] - ext[2])
    box = nb.root().locator(".dvi-map").bounding_box()
    want = min(2.0, max(0.75, aspect))
    assert abs(box["width"] / box["height"] - want) < 0.03, (box, aspect)
    # the run's extent, as drawn, spans the canvas in both directions (only the fit's margin is left)
    span = nb.js("(() => { const v = app.view, W = app.renderer.width, H = app.renderer.height;"
                 f" const e = {ext}; return [(e[1] - e[0]) * v.k / W, (e[3] - e[2]) * v.k / H]; }})()")
    assert min(span) > 0.88, f"the data's extent covers only {span[0]:.0%} x {span[1]:.0%} of the map"


def test_point_size_and_opacity_adapt_and_the_user_sets_them(reset):
    nb = reset
    n = kernel(nb, "len(vis.labels)")
    auto = nb.js("app.pointStyle")
    assert 1.0 <= auto["radius"] <= 5.0 and 0 < auto["alpha"] <= 1
    # zooming in enlarges the points
    box = nb.root().locator(".dvi-map").bounding_box()
    nb.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    nb.page.mouse.wheel(0, -600)
    nb.page.wait_for_function(f"(r) => {ROOT}.dvi.pointStyle.radius > r * 1.2", arg=auto["radius"])
    nb.root().locator(".dvi-reset").click()
    nb.page.wait_for_function(f"(r) => Math.abs({ROOT}.dvi.pointStyle.radius - r) < 1e-6", arg=auto["radius"])

    # the size slider, with the mouse: its right end is 4x
    size = nb.root().locator(".dvi-point-size")
    sb = size.bounding_box()
    nb.page.mouse.click(sb["x"] + sb["width"] - 2, sb["y"] + sb["height"] / 2)
    nb.page.wait_for_function(f"(r) => {ROOT}.dvi.pointStyle.radius > r * 2", arg=auto["radius"])
    for _ in range(50):
        if kernel(nb, "w.point_size") > 3.5:
            break
        nb.page.wait_for_timeout(100)
    assert kernel(nb, "w.point_size") > 3.5
    # opacity: the slider's left end; "auto" restores the automatic opacity
    op = nb.root().locator(".dvi-point-opacity")
    ob = op.bounding_box()
    nb.page.mouse.click(ob["x"] + 2, ob["y"] + ob["height"] / 2)
    nb.page.wait_for_function(f"() => {ROOT}.dvi.pointStyle.alpha < 0.2")
    assert kernel(nb, "w.point_opacity") < 0.2
    nb.root().locator(".dvi-auto-opacity").click()
    nb.page.wait_for_function(f"() => {ROOT}.dvi.pointStyle.alpha >= 0.45")  # style.json opacity.min
    for _ in range(50):
        if kernel(nb, "w.point_opacity") is None:
            break
        nb.page.wait_for_timeout(100)
    assert kernel(nb, "w.point_opacity") is None
    # Python sets them too
    nb.exec("w.point_size = 0.5")
    nb.page.wait_for_function(f"(r) => {ROOT}.dvi.pointStyle.radius < r * 0.75", arg=auto["radius"])
    assert n > 0


# ---------------------------------------------------------------- 8. colours, inspector axes, legend isolate

def test_correct_colouring_is_colour_blind_safe(reset):
    nb = reset
    nb.root().locator(".dvi-color-by").select_option("correct")
    nb.page.wait_for_function(f"() => {ROOT}.dvi.orderKey && {ROOT}.dvi.orderKey.includes('|correct|')")
    swatches = nb.root().locator(".dvi-legend-key .dvi-swatch")
    colours = [swatches.nth(k).evaluate("e => getComputedStyle(e).backgroundColor") for k in range(swatches.count())]
    assert colours == ["rgb(0, 114, 178)", "rgb(230, 159, 0)"], "Okabe-Ito blue (correct) and orange (wrong)"
    words = nb.js("[app.passes[0].colors[0], app.passes[0].colors[app.n - 1]]")
    rgb = {(w & 255, (w >> 8) & 255, (w >> 16) & 255) for w in words}
    assert rgb <= {(0, 114, 178), (230, 159, 0)}
    nb.shot("colour-correct-safe")


def test_inspector_chart_has_axes_with_ticks(reset):
    nb = reset
    epochs = kernel(nb, "vis.epochs")
    i = nb.js("(() => { for (let i = 0; i < app.n; i++) if (app.visible[i] && app.xs[i] > 20 && app.ys[i] > 20 && app.xs[i] < app.renderer.width - 20 && app.ys[i] < app.renderer.height - 20) return i; })()")
    x, y = nb.js(f"[app.xs[{i}], app.ys[{i}]]")
    box = nb.root().locator(".dvi-map").bounding_box()
    nb.page.mouse.click(box["x"] + x, box["y"] + y)
    insp = nb.root().locator(".dvi-inspector")
    insp.wait_for(state="visible")
    ticks = insp.locator("svg.dvi-history .dvi-tick-label")
    texts = [ticks.nth(k).text_content() for k in range(ticks.count())]
    assert {"0", "0.5", "1"} <= set(texts), texts
    assert str(epochs[0]) in texts and str(epochs[-1]) in texts, texts
    assert insp.locator("svg.dvi-history .dvi-axis").count() >= 2
    nb.shot("inspector-axes")
    nb.page.keyboard.press("Escape")


def test_a_legend_entry_isolates_its_class(reset):
    nb = reset
    counts = kernel(nb, "np.bincount(vis.labels, minlength=len(vis.classes)).tolist()")
    C = len(counts)
    item = lambda c: nb.root().locator(f'.dvi-legend-item[data-class="{c}"]')  # noqa: E731
    visible = lambda: nb.js("app.visible.reduce((a, b) => a + b, 0)")  # noqa: E731

    item(2).click(modifiers=["Alt"])
    nb.page.wait_for_function(f"() => {ROOT}.dvi.state.hidden.size === {C - 1}")
    nb.page.wait_for_function(f"(n) => {ROOT}.dvi.visible.reduce((a, b) => a + b, 0) === n", arg=counts[2])
    assert kernel(nb, "w.hidden_classes") == [c for c in range(C) if c != 2]
    nb.shot("legend-only-2")

    item(4).dblclick()
    nb.page.wait_for_function(f"(n) => {ROOT}.dvi.visible.reduce((a, b) => a + b, 0) === n", arg=counts[4])
    assert kernel(nb, "w.hidden_classes") == [c for c in range(C) if c != 4]

    item(4).click(modifiers=["Alt"])  # again: every class back
    nb.page.wait_for_function(f"(n) => {ROOT}.dvi.visible.reduce((a, b) => a + b, 0) === n", arg=sum(counts))
    assert kernel(nb, "w.hidden_classes") == []
    assert visible() == sum(counts)
