"""Offline HTML export and the widget in nbconvert pages.

- The exported file, opened in headless Chromium with every network request refused,
  renders, keeps the epoch and selection, plays, answers a lasso, shows hover thumbnails
  and the inspector.
- Class names that are markup or script show as text and run nothing.
- A notebook executed with nbclient (which stores the widget state) and converted with
  nbconvert shows the widget; the page's CDN files are served from the npm packages through
  Playwright routing (this machine reaches no CDN).
- Thumbnail options, the CLI, unwritable paths.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import dvi_widget as dvi
from dvi_widget.cli import main as cli_main
from dvi_widget.errors import DVIError
from dvi_widget.outputs.export import json_for_script, render_html
from dvi_widget.widget.widget import DVIWidget
from engine_support import TINY_FIT, record_features

sys.path.insert(0, str(pathlib.Path(__file__).parent / "browser"))

HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>",
           "a & b <!-- c", "line\u2028sep\u2029end"]
SHOTS = pathlib.Path(__file__).resolve().parents[1] / "test-output" / "export"


# ---------------------------------------------------------------- file contents

def test_json_for_script_escapes_markup():
    s = json_for_script({"names": HOSTILE})
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in s
    assert json.loads(s) == {"names": HOSTILE}


def test_export_is_one_offline_file(small_run, tmp_path):
    w = DVIWidget(small_run)
    w.epoch = 2
    w.select([1, 2, 3])
    path = w.export_html(tmp_path / "map.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no src/href attributes at all, a CSP forbidding requests
    assert not re.search(r"\s(src|href)\s*=", text.split('<script type="application/json"')[0])
    assert "default-src 'none'" in text
    data = json.loads(re.search(r'<script type="application/json" id="dvi-export-data">(.*?)</script>',
                                text, re.S).group(1))
    state = data["state"]
    assert state["epoch"] == 2 and state["meta"]["classes"] == small_run.classes
    assert [c["epoch"] for c in data["children"]["epoch_data"]] == small_run.epochs
    bundle = json.loads(re.search(r'id="dvi-export-bundle">(.*?)</script>', text, re.S).group(1))
    from dvi_widget.widget.widget import STATIC
    assert bundle == (STATIC / "widget.js").read_text(encoding="utf-8"), "the same bundle as the notebook's"


def test_two_exports_of_one_widget_are_byte_identical(tmp_path, monkeypatch):
    """Exporting the same view twice, a second apart, gives the same file (it held the time to the
    second, so the pages differed by one byte); SOURCE_DATE_EPOCH pins the date it names."""
    import time
    from fake_vis import FakeVisualization

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    w = DVIWidget(FakeVisualization(n=300, epochs=(1, 2)))
    w.select([3, 4])
    first = w.export_html(tmp_path / "a.html").read_bytes()
    time.sleep(1.05)
    second = w.export_html(tmp_path / "b.html").read_bytes()
    assert first == second
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC
    pinned = w.export_html(tmp_path / "c.html").read_text(encoding="utf-8")
    assert '"created":"2023-11-14"' in pinned and "on 2023-11-14" in pinned
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(DVIError, match="SOURCE_DATE_EPOCH"):
        w.export_html(tmp_path / "d.html")


def test_thumbnail_options_change_size(small_run, tmp_path):
    w = DVIWidget(small_run)
    w.select(range(0, 1000, 50))
    sizes = {t: os.path.getsize(w.export_html(tmp_path / f"{t}.html", thumbnails=t))
             for t in ("all", "selected", "none")}
    assert sizes["none"] < sizes["selected"] < sizes["all"]
    with pytest.raises(DVIError, match="thumbnails must be one of"):
        w.export_html(tmp_path / "bad.html", thumbnails="some")


def test_export_unwritable_path_leaves_nothing(small_run, tmp_path):
    with pytest.raises(DVIError, match="does not exist"):
        small_run.export_html(tmp_path / "missing" / "x.html")
    (tmp_path / "f").write_text("")
    with pytest.raises(DVIError, match="not a folder"):
        small_run.export_html(tmp_path / "f" / "x.html")
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_cli_export(small_run, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert cli_main(["export", str(small_run.path), str(out), "--thumbnails", "none"]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    assert cli_main(["export", str(tmp_path / "nowhere"), str(tmp_path / "x.html")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------- in the browser

@pytest.fixture(scope="module")
def chromium(browser):
    """The suite's one Chromium (tests/conftest.py)."""
    return browser


def open_offline(browser, path: pathlib.Path, routes=None):
    """A page showing ``path`` with every network request refused (except ``routes``)."""
    url = path.resolve().as_uri()
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids; the
    # escaping alone must keep class names inert (the hostile-names test), the CSP is a second line
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    log = {"requests": [], "refused": [], "errors": [], "dialogs": []}

    def route(r):
        u = r.request.url
        log["requests"].append(u)
        if u == url:
            return r.continue_()
        if routes:
            served = routes(u)
            if served is not None:
                return r.fulfill(**served)
        log["refused"].append(u)
        return r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))

    def dialog(d):
        log["dialogs"].append(d.message)
        d.dismiss()
    page.on("dialog", dialog)
    page.goto(url)
    return ctx, page, log


def _app(page, expr):
    return page.evaluate(f"() => {{ const app = document.querySelector('.dvi-root').dvi; return ({expr}); }}")


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.browser
def test_offline_export_renders_plays_and_lassos(small_run, tmp_path, chromium):
    w = DVIWidget(small_run)
    w.epoch = small_run.epochs[0]
    w.select([5, 50, 500])
    path = w.export_html(tmp_path / "offline.html")
    ctx, page, log = open_offline(chromium, path)
    try:
        page.wait_for_function("document.body.dataset.ready", timeout=60_000)
        assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#dvi-export-status")
        page.wait_for_function(f"document.querySelector('.dvi-root').dataset.drawnEpoch === '{w.epoch}'",
                               timeout=30_000)
        assert page.locator(".dvi-epoch-label").inner_text() == f"epoch {w.epoch}"
        assert sorted(_app(page, "[...app.selected]")) == [5, 50, 500]
        assert page.locator(".dvi-sel-count").inner_text() == "3 selected"
        assert _app(page, "app.store.numbers()") == small_run.epochs
        assert page.locator(".dvi-legend-item").count() == len(small_run.classes)
        _shot(page, "offline-start")

        # play: it steps through every epoch to the last
        page.locator(".dvi-play").click()
        last = small_run.epochs[-1]
        page.wait_for_function(f"document.querySelector('.dvi-root').dataset.drawnEpoch === '{last}'",
                               timeout=60_000)
        assert page.locator(".dvi-epoch-label").inner_text() == f"epoch {last}"
        assert page.evaluate("window.dviExport.model.get('epoch')") == last

        # lasso: a polygon around the middle of the map selects exactly the visible points inside it
        page.locator(".dvi-clear").click()
        page.locator(".dvi-mode-lasso").click()
        box = page.locator(".dvi-map").bounding_box()
        cx, cy, r = box["width"] / 2, box["height"] / 2, min(box["width"], box["height"]) * 0.3
        poly = [(round(cx + r * np.cos(a)), round(cy + r * np.sin(a))) for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
        xs = np.array(_app(page, "Array.from(app.xs)"))
        ys = np.array(_app(page, "Array.from(app.ys)"))
        expected = np.flatnonzero(_inside(xs, ys, poly)).tolist()
        assert len(expected) > 5
        m = page.mouse
        m.move(box["x"] + poly[0][0], box["y"] + poly[0][1])
        m.down()
        for x, y in poly[1:] + [poly[0]]:
            m.move(box["x"] + x, box["y"] + y, steps=4)
        m.up()
        page.wait_for_function(f"document.querySelector('.dvi-root').dvi.selected.size === {len(expected)}")
        assert sorted(_app(page, "[...app.selected]")) == expected
        stored = page.evaluate("(() => { const v = window.dviExport.model.get('selected');"
                               " return Array.from(new Uint32Array(v.buffer, v.byteOffset, v.byteLength / 4)); })()")
        assert stored == expected
        assert page.locator(".dvi-sel-count").inner_text() == f"{len(expected)} selected"
        _shot(page, "offline-lasso")

        # hover shows the thumbnail; a click opens the inspector with one cell per epoch
        page.locator(".dvi-mode-pan").click()
        i = expected[0]
        x, y = _app(page, f"[app.xs[{i}], app.ys[{i}]]")
        box = page.locator(".dvi-map").bounding_box()
        page.mouse.move(box["x"] + x, box["y"] + y)
        tip = page.locator(".dvi-tooltip")
        tip.wait_for(state="visible")
        assert tip.get_attribute("data-index") is not None
        assert tip.locator("canvas.dvi-thumb").count() == 1
        page.mouse.click(box["x"] + x, box["y"] + y)
        insp = page.locator(".dvi-inspector")
        insp.wait_for(state="visible")
        assert insp.locator(".dvi-pred-cell").count() == len(small_run.epochs)
        # trails and a filter work offline too
        page.locator(".dvi-trails").check()
        page.wait_for_function("Number(document.querySelector('.dvi-root').dataset.trails) > 0")
        page.locator(".dvi-split").select_option("test")
        page.wait_for_function("window.dviExport.model.get('split_filter') === 'test'")
        _shot(page, "offline-inspector")
        assert log["refused"] == [], f"the page asked the network for {log['refused']}"
        assert log["errors"] == []
    finally:
        ctx.close()


def _inside(xs, ys, poly):
    """Even-odd rule (the lasso's specification)."""
    inside = np.zeros(len(xs), dtype=bool)
    n = len(poly)
    for k in range(n):
        (x1, y1), (x2, y2) = poly[k], poly[(k + 1) % n]
        cross = (y1 > ys) != (y2 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x2 - x1) * (ys - y1) / (y2 - y1) + x1
        inside ^= cross & (xs < xint)
    return inside


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, digits_head):
    X, y, head = digits_head
    classes = HOSTILE + [f"digit {d}" for d in range(len(HOSTILE), 10)]
    path = record_features(tmp_path_factory.mktemp("hostile") / "run", [(1, X[:300]), (2, X[:300] * 1.02)],
                           y[:300], head, classes=classes)
    return dvi.fit(path, progress=False, **TINY_FIT)


def test_hostile_names_only_inside_json(hostile_run, tmp_path):
    text = render_html(DVIWidget(hostile_run))
    for name in HOSTILE:
        assert name not in text
    assert text.count("<script") == 3  # data, bundle, loader: nothing else
    assert "onerror=alert" in text.replace("\\u003c", "<")  # the names are there, escaped


@pytest.mark.browser
def test_hostile_class_names_show_as_text(hostile_run, tmp_path, chromium):
    path = hostile_run.export_html(tmp_path / "hostile.html")
    ctx, page, log = open_offline(chromium, path)
    try:
        page.wait_for_function("document.body.dataset.ready", timeout=60_000)
        page.wait_for_function("document.querySelector('.dvi-root').dataset.drawnEpoch", timeout=30_000)
        names = page.locator(".dvi-legend-name").all_inner_texts()
        assert names[:2] == HOSTILE[:2]
        assert page.locator("img").count() == 0, "no element was made from a class name"
        assert page.locator("script").count() == 3
        page.wait_for_timeout(500)
        assert log["dialogs"] == [], "no script from the data ran"
        assert log["refused"] == [] and log["errors"] == []
        _shot(page, "hostile-names")
    finally:
        ctx.close()


# ---------------------------------------------------------------- nbconvert page (needs the CDN files)

HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"
REQUIREJS = "requirejs@2.3.7"


@pytest.fixture(scope="module")
def cdn_files(tmp_path_factory):
    """The html-manager and require.js from npm (what the page would fetch from its CDN)."""
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed: cannot fetch @jupyter-widgets/html-manager")
    cache = pathlib.Path(os.environ.get("DVI_NPM_CACHE_DIR", tmp_path_factory.mktemp("npm")))
    out = {}
    for spec, name in ((HTML_MANAGER, "html-manager"), (REQUIREJS, "requirejs")):
        dest = cache / name
        if not (dest / "package").exists():
            dest.mkdir(parents=True, exist_ok=True)
            res = subprocess.run([npm, "pack", spec, "--silent"], cwd=dest, capture_output=True, text=True,
                                 timeout=300)
            if res.returncode != 0:
                pytest.skip(f"npm pack {spec} failed (no registry?): {res.stderr.strip()[:300]}")
            tgz = dest / res.stdout.strip().splitlines()[-1]
            subprocess.run(["tar", "xzf", str(tgz)], cwd=dest, check=True)
        out[name] = dest / "package"
    import anywidget  # noqa: F401
    nbext = pathlib.Path(sys.prefix) / "share" / "jupyter" / "nbextensions" / "anywidget" / "index.js"
    if not nbext.exists():
        pytest.skip(f"anywidget's AMD module is not installed at {nbext}")
    out["anywidget"] = nbext
    return out


@pytest.mark.browser
def test_nbconvert_page_shows_the_widget(small_run, tmp_path, chromium, cdn_files):
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import dvi_widget as dvi\n"
        f"vis = dvi.Visualization({str(small_run.path)!r})\n"
        "w = vis.show()\n"
        "w.epoch = vis.epochs[1]\n"
        "w.select(range(0, 1000, 7))\n"
        "w")]
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert sum(1 for m in state.values() if m["state"].get("_model_name") == "AnyModel") == 1
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_path = tmp_path / "converted.html"
    page_path.write_text(body, encoding="utf-8")

    hm, rq, aw = cdn_files["html-manager"] / "dist", cdn_files["requirejs"] / "require.js", cdn_files["anywidget"]

    def routes(url):
        if "cdnjs" in url and "require" in url and url.endswith(".js"):
            return {"path": str(rq), "content_type": "text/javascript"}
        m = re.search(r"@jupyter-widgets/html-manager@[^/]*/dist/(.+)$", url)
        if m and (hm / m.group(1)).is_file():
            return {"path": str(hm / m.group(1))}
        if re.search(r"/anywidget@[^/]*/dist/index\.js$", url):
            return {"path": str(aw), "content_type": "text/javascript"}
        return None

    ctx, page, log = open_offline(chromium, page_path, routes)
    try:
        page.wait_for_selector(".dvi-root", timeout=90_000)
        page.wait_for_function("document.querySelector('.dvi-root').dataset.drawnEpoch === '2'", timeout=60_000)
        assert _app(page, "app.store.numbers()") == small_run.epochs, "every epoch is in the saved state"
        assert page.locator(".dvi-sel-count").inner_text() == f"{len(range(0, 1000, 7))} selected"
        assert page.locator(".dvi-legend-item").count() == len(small_run.classes)
        # the static picture beside the live view (for pages without the manager) is hidden
        assert page.locator(".dvi-static").count() == 1
        page.wait_for_function("!document.querySelector('.dvi-static').checkVisibility()", timeout=10_000)
        _shot(page, "nbconvert")
        assert any("html-manager" in u for u in log["requests"]), "the page loads the manager from its CDN"
    finally:
        ctx.close()


# ---------------------------------------------------------------- nbconvert page offline: the static picture

def _executed_notebook(run, select):
    """A notebook showing the widget, executed with nbclient (with its widget state stored)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import dvi_widget as dvi\n"
        f"vis = dvi.Visualization({str(run.path)!r})\n"
        "w = vis.show()\n"
        "w.epoch = vis.epochs[1]\n"
        f"w.select({select!r})\n"
        "w")]
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True).execute()
    return nb


def _static_picture_shows(chromium, page_path, epoch):
    ctx, page, log = open_offline(chromium, page_path)
    try:
        img = page.locator(".dvi-static img")
        img.wait_for(timeout=30_000)
        assert img.is_visible()
        size = img.evaluate("(im) => [im.complete, im.naturalWidth, im.naturalHeight, im.getBoundingClientRect().width]")
        assert size[0] and size[1] >= 600 and size[2] >= 300 and size[3] > 300, f"the picture is decoded and shown: {size}"
        note = page.locator(".dvi-static-note").inner_text()
        assert f"Static picture of epoch {epoch}" in note and "export_html" in note and "kernel" in note
        assert log["refused"], "the page tried the network (its widget manager or require.js) and was refused"
        _shot(page, page_path.stem)
    finally:
        ctx.close()


@pytest.mark.browser
def test_nbconvert_page_offline_shows_the_static_picture_and_how_to_get_the_live_map(small_run, tmp_path, chromium):
    """Bug 5: without the widget manager the page showed an empty output and no message.

    The widget's output carries a PNG of its view beside the widget view. nbconvert shows it when
    the notebook has no widget state (JupyterLab saves none unless "Save Widget State
    Automatically" is on), when it has widget state (the page's widget view stays empty without
    the network: the picture is an output of its own for this), or when the state is left out of
    the conversion (`--ClearMetadataPreprocessor.enabled=True`); the page opens with every request
    refused.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ClearMetadataPreprocessor

    nb = _executed_notebook(small_run, list(range(0, 1000, 9)))
    picture, live = nb.cells[0].outputs  # the picture is an output of its own, then the live view
    assert {"image/png", "text/html", "text/plain"} == set(picture["data"])
    assert {"application/vnd.jupyter.widget-view+json", "text/plain"} == set(live["data"])
    out = picture
    # the picture is the widget's view: its epoch, its selection drawn on top
    from PIL import Image
    import base64
    import io
    png = Image.open(io.BytesIO(base64.b64decode(out["data"]["image/png"])))
    assert png.size[0] == 720

    # 1. saved without widget state (JupyterLab's default)
    without_state = json.loads(json.dumps(nb))
    del without_state["metadata"]["widgets"]
    import nbformat
    body, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(without_state))
    (tmp_path / "nbconvert-no-state.html").write_text(body, encoding="utf-8")
    _static_picture_shows(chromium, tmp_path / "nbconvert-no-state.html", small_run.epochs[1])

    # 2. saved with widget state (nbclient's store_widget_state, JupyterLab's "Save Widget State
    # Automatically"): the page shows the widget view's output, which stays empty offline, and the picture
    assert "widgets" in nb["metadata"]
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert 'type="application/vnd.jupyter.widget-view+json"' in body
    (tmp_path / "nbconvert-with-state.html").write_text(body, encoding="utf-8")
    _static_picture_shows(chromium, tmp_path / "nbconvert-with-state.html", small_run.epochs[1])

    # 3. with the state in the notebook, left out of the conversion
    exporter = HTMLExporter()
    exporter.register_preprocessor(ClearMetadataPreprocessor(enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    (tmp_path / "nbconvert-cleared.html").write_text(body, encoding="utf-8")
    _static_picture_shows(chromium, tmp_path / "nbconvert-cleared.html", small_run.epochs[1])


def test_outputs_do_not_import_the_widget():
    """export, pictures, report and state import the widget only for type checking: importing
    them (and exporting a Visualization, which asks vis.show() for the widget) loads no widget code
    until a widget is made."""
    code = ("import sys\n"
            "import dvi_widget.outputs.export, dvi_widget.outputs.pictures, dvi_widget.outputs.report, "
            "dvi_widget.outputs.state\n"
            "bad = [m for m in ('dvi_widget.widget.widget', 'anywidget', 'ipywidgets') if m in sys.modules]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=pathlib.Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stderr
