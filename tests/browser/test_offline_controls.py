"""Issue 8 in the offline export (the same bundle, driven by the page's stand-in model):

1. the epoch slider works with the mouse and keys;
4. inside a shadow root (as marimo renders anywidgets) arrow keys and space still work;
7. at 50,000 points class colours stay readable (no dark outlines), and a large
   selection's trails are a sample with a visible note.

Synthetic runs (tests/browser/fake_vis.py): no training, so these pages are cheap.
"""
from __future__ import annotations

import pytest

from fake_vis import FakeVisualization
from dvi_widget.widget.widget import DVIWidget

pytestmark = pytest.mark.browser

ROOT = "document.querySelector('.dvi-root')"


def open_page(browser, path, width=1200, height=900):
    ctx = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    page.wait_for_function(f"{ROOT} && {ROOT}.dataset.drawnEpoch", timeout=60_000)
    return ctx, page, errors


class LowNeighbours(FakeVisualization):
    """A run whose map keeps predictions (ppr 0.99) but not neighbourhoods (nn_rate 0.10)."""

    @property
    def metrics(self):
        return {e: {"nn_rate@15": 0.10 + 0.01 * k, "ppr": 0.99, "map_consistency": 0.97}
                for k, e in enumerate(self.epochs)}


@pytest.fixture(scope="module")
def small_page(browser, tmp_path_factory):
    vis = LowNeighbours(n=600, n_classes=6, epochs=(1, 2, 3, 4, 5))
    w = DVIWidget(vis)
    path = w.export_html(tmp_path_factory.mktemp("offline") / "small.html")
    ctx, page, errors = open_page(browser, path)
    yield page, vis
    assert errors == []
    ctx.close()


def page_epoch(page) -> int:
    return page.evaluate("window.dviExport.model.get('epoch')")


def wait_epoch(page, e: int) -> None:
    page.wait_for_function(
        f"(e) => {ROOT}.dataset.drawnEpoch === String(e) && !{ROOT}.dvi.transition && window.dviExport.model.get('epoch') === e",
        arg=e, timeout=15_000)


def test_offline_slider_click_drag_and_keys(small_page):
    page, vis = small_page
    epochs = vis.epochs
    wait_epoch(page, epochs[-1])
    slider = page.locator(".dvi-slider")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    x_at = lambda k: box["x"] + 8 + (box["width"] - 16) * k / (len(epochs) - 1)  # noqa: E731
    page.mouse.click(x_at(1), y)
    wait_epoch(page, epochs[1])
    page.mouse.move(x_at(1), y)
    page.mouse.down()
    page.mouse.move(x_at(3), y, steps=10)
    page.mouse.up()
    wait_epoch(page, epochs[3])
    slider.focus()
    page.keyboard.press("ArrowRight")
    wait_epoch(page, epochs[4])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_epoch(page, epochs[2])
    assert page.locator(".dvi-epoch-label").inner_text() == f"epoch {epochs[2]}"


def test_faithfulness_panel_warns_when_neighbours_are_low_beside_a_high_ppr(small_page):
    page, vis = small_page
    warn = page.locator(".dvi-faith .dvi-faith-warn")
    assert warn.count() == 1
    k = vis.epochs.index(page_epoch(page))
    assert warn.inner_text().startswith(f"⚠ Neighbours kept is low ({0.10 + 0.01 * k:.2f}) while predictions kept is high (0.99)")
    assert "trust the class regions and boundaries, not distances" in warn.inner_text()
    row = page.locator('.dvi-faith [data-metric="nn_rate@15"]')
    assert row.locator(".dvi-verdict").inner_text() == "poor"
    assert "run: 0.100–0.140 over 5 epochs" in row.locator(".dvi-faith-range").inner_text()


def test_keys_work_inside_a_shadow_root(small_page):
    """marimo renders an anywidget inside a shadow root: a window-level key listener then
    sees the shadow host as the target. Move the widget into one and use the real keyboard."""
    page, vis = small_page
    epochs = vis.epochs
    page.evaluate(
        f"""() => {{ const el = {ROOT}.parentElement;
             const host = document.createElement('div'); host.id = 'shadow-host';
             el.parentElement.insertBefore(host, el);
             host.attachShadow({{ mode: 'open' }}).append(el); }}"""
    )
    root = "document.getElementById('shadow-host').shadowRoot.querySelector('.dvi-root')"
    page.evaluate(f"() => {root}.dvi.jumpTo({epochs[2]})")
    page.wait_for_function(f"() => {root}.dataset.drawnEpoch === '{epochs[2]}'")
    page.evaluate(f"() => {root}.focus()")
    assert page.evaluate("() => document.activeElement.id") == "shadow-host", "focus is inside the shadow root"
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => {root}.dataset.drawnEpoch === '{epochs[1]}' && !{root}.dvi.transition")
    assert page_epoch(page) == epochs[1]
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => {root}.dataset.drawnEpoch === '{epochs[2]}' && !{root}.dvi.transition")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {root}.dataset.playing === 'true'")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {root}.dataset.playing === 'false'")


# ---------------------------------------------------------------- 50,000 points

@pytest.fixture(scope="module")
def big_page(browser, tmp_path_factory):
    vis = FakeVisualization(n=50_000, n_classes=10, epochs=(1, 2, 3), map_size=128, thumbnails=False)
    w = DVIWidget(vis)
    w.select(range(0, 50_000, 25))  # 2,000 samples
    w.show_trails = True
    path = w.export_html(tmp_path_factory.mktemp("offline-big") / "big.html", thumbnails="none")
    ctx, page, errors = open_page(browser, path, 1300, 950)
    yield page, vis
    assert errors == []
    ctx.close()


READABILITY = f"""(colors) => {{
  const app = {ROOT}.dvi, c = {ROOT}.querySelector('.dvi-canvas-points');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const dpr = app.renderer.dpr;
  let dark = 0;
  for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) < 70) dark++;
  // points with no point of another class within 4 px: their centre pixel must show their class colour
  const cell = 4, gw = Math.ceil(app.renderer.width / cell) + 2, grid = new Map();
  for (let i = 0; i < app.n; i++) {{
    if (!app.visible[i]) continue;
    const k = (Math.floor(app.ys[i] / cell) + 1) * gw + Math.floor(app.xs[i] / cell) + 1;
    if (!grid.has(k)) grid.set(k, []);
    grid.get(k).push(i);
  }}
  let match = 0, seen = 0;
  for (let i = 0; i < app.n; i++) {{
    if (!app.visible[i]) continue;
    const gx = Math.floor(app.xs[i] / cell) + 1, gy = Math.floor(app.ys[i] / cell) + 1;
    let alone = true;
    for (let dy = -1; dy <= 1 && alone; dy++) for (let dx = -1; dx <= 1 && alone; dx++) {{
      for (const j of grid.get((gy + dy) * gw + gx + dx) || []) {{
        if (app.labels[j] !== app.labels[i] && Math.hypot(app.xs[j] - app.xs[i], app.ys[j] - app.ys[i]) < 4) {{ alone = false; break; }}
      }}
    }}
    if (!alone) continue;
    const x = Math.round(app.xs[i] * dpr), y = Math.round(app.ys[i] * dpr);
    if (x < 2 || y < 2 || x >= c.width - 2 || y >= c.height - 2) continue;
    const o = 4 * (y * c.width + x);
    let best = -1, bd = Infinity;
    colors.forEach(([r, g, b], k) => {{
      const dd = (d[o] - r) ** 2 + (d[o + 1] - g) ** 2 + (d[o + 2] - b) ** 2;
      if (dd < bd) {{ bd = dd; best = k; }}
    }});
    seen++;
    if (best === app.labels[i]) match++;
  }}
  return {{ dark: dark / (d.length / 4), match: match / seen, seen, style: app.pointStyle }};
}}"""


def test_50k_points_keep_their_class_colours(big_page):
    page, vis = big_page
    page.evaluate(f"() => {ROOT}.dvi.setSelection([])")
    page.wait_for_function(f"() => {ROOT}.dvi.selected.size === 0")
    page.wait_for_timeout(500)
    r = page.evaluate(READABILITY, vis.colors.tolist())
    page.screenshot(path=str(_shots() / "offline-50k.png"))
    assert r["dark"] < 0.005, f"{r['dark']:.1%} of the map is dark pixels (outlines)"
    assert r["seen"] > 500, r
    assert r["match"] > 0.9, f"only {r['match']:.0%} of points clear of other classes show their class colour: {r}"
    assert r["style"]["outline"] is False, "small points have no outline"


def test_large_selection_trails_are_a_sample_with_a_note(big_page):
    page, vis = big_page
    page.evaluate(f"() => {ROOT}.dvi.setSelection(Array.from({{length: 2000}}, (_, k) => 25 * k))")
    page.wait_for_function(f"() => {ROOT}.dataset.trails === '300'", timeout=15_000)
    note = page.locator(".dvi-note")
    assert note.is_visible()
    assert note.inner_text() == "trails: 300 of 2,000 selected samples (an evenly spaced sample)"
    # direction: old segments faint, new ones strong: the overlay holds several alpha levels
    alphas = page.evaluate(f"""() => {{ const c = {ROOT}.querySelector('.dvi-canvas-overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
        for (let i = 3; i < d.length; i += 4) if (d[i]) seen.add(d[i] >> 4); return seen.size; }}""")
    assert alphas >= 4
    page.screenshot(path=str(_shots() / "offline-50k-trails.png"))


def _shots():
    from harness import REPO

    p = REPO / "test-output" / "browser"
    p.mkdir(parents=True, exist_ok=True)
    return p


PIXELS = f"""() => {{ const c = {ROOT}.querySelector('.dvi-canvas-points');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 2166136261;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619);
  return h >>> 0; }}"""


def test_at_rest_hover_keeps_the_picture_and_a_jump_shows_the_epoch_rendered_ahead(big_page):
    """At rest, hovering redraws only the ring and tooltip (the map and 50,000 points stay as
    drawn); after a moment at rest, clicking the slider at the next epoch shows a picture the page
    rendered ahead, identical to one composed from scratch."""
    page, vis = big_page
    epochs = vis.epochs
    page.evaluate(f"() => {{ {ROOT}.dvi.setSelection([]); {ROOT}.dvi.jumpTo({epochs[0]}); }}")
    wait_epoch(page, epochs[0])
    page.wait_for_timeout(800)  # at rest: the neighbouring epochs are rendered ahead
    before = page.evaluate(PIXELS)
    box = page.locator(".dvi-canvas-points").bounding_box()
    i = page.evaluate(f"""() => {{ const a = {ROOT}.dvi, W = a.renderer.width, H = a.renderer.height;
        for (let i = 0; i < a.n; i += 97) if (a.visible[i] && a.xs[i] > 20 && a.ys[i] > 20 && a.xs[i] < W - 20 && a.ys[i] < H - 20) return i; }}""")
    x, y = page.evaluate(f"(i) => {ROOT}.dvi.screenOf(i)", i)
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_selector(".dvi-tooltip:not([hidden])", timeout=5_000)
    assert page.evaluate(f"() => {ROOT}.dvi.lastBreakdown.kept") is True, "the hover frame redrew the points"
    assert page.evaluate(PIXELS) == before, "the map and points changed under a hover"
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] - 2)

    slider = page.locator(".dvi-slider").bounding_box()
    page.mouse.click(slider["x"] + 8 + (slider["width"] - 16) / (len(epochs) - 1), slider["y"] + slider["height"] / 2)
    wait_epoch(page, epochs[1])
    assert page.evaluate(f"() => {ROOT}.dvi.lastComposed.ahead") is True, "the jump composed its frame"
    ahead = page.evaluate(PIXELS)
    assert ahead != before
    page.evaluate(f"() => {ROOT}.dvi.redraw()")  # compose the same frame from scratch
    page.wait_for_function(f"() => {ROOT}.dvi.lastComposed.ahead === false")
    assert page.evaluate(PIXELS) == ahead, "the picture rendered ahead differs from the one composed"


def test_a_picture_rendered_ahead_is_not_shown_once_the_colouring_changed(big_page):
    """Rendered ahead under one colouring, then the colouring and the epoch change together (as
    `w.color_by = "prediction"; w.epoch = 2` in one cell sends them): the page must compose the new
    epoch in the new colours, not show the picture it had ready."""
    page, vis = big_page
    epochs = vis.epochs
    page.evaluate(f"() => {{ {ROOT}.dvi.setSelection([]); {ROOT}.dvi.jumpTo({epochs[0]}); }}")
    wait_epoch(page, epochs[0])
    page.wait_for_timeout(800)  # epochs[1] is rendered ahead, coloured by label
    page.evaluate(f"() => {{ const m = window.dviExport.model; m.set('color_by', 'prediction'); m.set('epoch', {epochs[1]}); }}")
    wait_epoch(page, epochs[1])
    assert page.evaluate(f"() => {ROOT}.dvi.state.colorBy") == "prediction"
    shown = page.evaluate(PIXELS)
    page.evaluate(f"() => {ROOT}.dvi.redraw()")
    page.wait_for_timeout(300)
    assert page.evaluate(PIXELS) == shown, "the jump showed the picture coloured by label"
    page.locator(".dvi-color-by").select_option("label")
