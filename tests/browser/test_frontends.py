"""The front-end matrix: the same four things a user does, in every front end the widget
supports, in headless Chromium with the real mouse and keyboard.

| front end      | how the widget is shown                   | how Python's state is read back            |
| -------------- | ----------------------------------------- | ------------------------------------------ |
| JupyterLab 4   | `display(w, echo)` in a notebook cell     | an ipywidgets Label observing `w` (kernel) |
| Notebook 7     | the same notebook                         | the same Label                             |
| Voila          | the same code as a Voila app              | the same Label                             |
| marimo         | `mo.ui.anywidget(w)` in `marimo run`      | a cell that reruns on the widget's value   |

Each front end gets the small real run, and an "echo": one line `DVI-ECHO {json}` computed in
Python from `w.epoch` and `w.selected` whenever they change, so every check below reads what the
kernel holds, not what the page believes.

1. renders: the map is drawn on the last epoch, with a legend entry per class;
2. playback: pressing the play button (mouse) plays from the first epoch, the page's epoch
   advances and Python follows; pausing mid-way leaves Python on the page's epoch;
3. lasso: a lasso dragged with the mouse over the left part of the map selects points that
   Python holds in `w.selected`, as many as the page shows, all left of the map's centre;
4. keys: with the widget focused (clicked), arrow keys step the epoch (Python follows) and space
   plays and pauses.
"""
from __future__ import annotations

import json
import time

import pytest

from harness import IPYWIDGETS_ECHO, matrix_setup, open_notebook, run_all_cells, write_notebook

pytestmark = pytest.mark.browser

FRONTENDS = ["lab", "notebook", "voila", "marimo"]



class Frontend:
    """One front end's page showing the matrix app (Playwright locators pierce marimo's shadow DOM)."""

    def __init__(self, kind, page, epochs):
        self.kind, self.page, self.epochs = kind, page, epochs

    @property
    def root(self):
        return self.page.locator(".dvi-root").first

    def page_epoch(self) -> int:
        return int(self.root.get_attribute("data-epoch"))

    def drawn_epoch(self) -> str | None:
        return self.root.get_attribute("data-drawn-epoch")

    def echo(self) -> dict:
        # marimo: the echo cell's output; elsewhere the Label (the notebook's code also holds "DVI-ECHO")
        where = self.page.get_by_text("DVI-ECHO") if self.kind == "marimo" else self.page.locator(".dvi-echo")
        text = where.first.inner_text()
        return json.loads(text.split("DVI-ECHO", 1)[1])

    def wait_echo(self, pred, what: str, timeout: float = 20.0) -> dict:
        """Poll the echo until ``pred(echo)`` holds; fail naming ``what`` and the last echo."""
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            try:
                last = self.echo()
                if pred(last):
                    return last
            except (ValueError, IndexError):
                pass
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{self.kind}: Python never showed {what}; last echo {last}")

    def wait_rest(self, timeout: float = 20.0) -> int:
        """Wait until the page is not playing and has drawn its epoch; return that epoch."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.root.get_attribute("data-playing") != "true" and self.drawn_epoch() == self.root.get_attribute("data-epoch"):
                return self.page_epoch()
            self.page.wait_for_timeout(50)
        raise AssertionError(f"{self.kind}: the widget did not come to rest")

    def focus_widget(self) -> None:
        """Click the widget where a click does nothing else (the epoch label), as a user would."""
        self.root.locator(".dvi-epoch-label").click()


@pytest.fixture(scope="module", params=FRONTENDS)
def fe(request, servers, app_servers, browser, run_dir, browser_workdir):
    kind = request.param
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if kind in ("lab", "notebook"):
        server = servers[kind]
        name = "matrix.ipynb"
        if not (server.root / name).exists():
            write_notebook(server.root / name, [matrix_setup(run_dir) + "\n" + IPYWIDGETS_ECHO.strip()])
        open_notebook(page, server, name, workspace="matrix")  # a fresh workspace: only this notebook
        run_all_cells(page)
    else:
        page.goto(app_servers[kind].url, wait_until="domcontentloaded", timeout=120_000)
    from dvi_widget.results import Visualization

    f = Frontend(kind, page, list(Visualization(str(run_dir)).epochs))
    f.errors = errors
    f.root.wait_for(timeout=120_000)
    deadline = time.time() + 120
    while f.drawn_epoch() is None and time.time() < deadline:
        page.wait_for_timeout(100)
    f.wait_echo(lambda e: e["epoch"] == f.epochs[-1], "the last epoch", timeout=120)
    yield f
    context.close()


def test_renders_the_map_on_the_last_epoch(fe):
    assert fe.drawn_epoch() == str(fe.epochs[-1]), "a new widget opens on the last epoch, drawn"
    assert fe.root.locator(".dvi-legend-item").count() == 10
    box = fe.root.locator(".dvi-map").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200, f"the map has a usable size: {box}"
    assert fe.echo()["epoch"] == fe.epochs[-1]
    # the static picture the kernel displays beside the live view (for pages without the widget
    # manager) is hidden where the live map renders (marimo shows no picture at all)
    statics = fe.page.locator(".dvi-static")
    fe.page.wait_for_function("() => [...document.querySelectorAll('.dvi-static')].every(s => !s.checkVisibility())",
                              timeout=10_000)
    assert all(not statics.nth(i).is_visible() for i in range(statics.count())), "the live map shows, not the picture"
    assert not [e for e in fe.errors if "dvi" in e.lower()], fe.errors


def test_play_button_plays_and_python_follows(fe):
    fe.wait_rest()
    fe.root.locator(".dvi-speed").select_option("0.5")  # 2 s per epoch: time to pause mid-glide
    fe.root.locator(".dvi-play").click()  # at the last epoch, play starts again from the first
    deadline = time.time() + 10
    while fe.page_epoch() != fe.epochs[0] and time.time() < deadline:
        fe.page.wait_for_timeout(20)
    assert fe.page_epoch() == fe.epochs[0], "play starts again from the first epoch"
    assert fe.root.get_attribute("data-playing") == "true"
    fe.root.locator(".dvi-play").click()  # pause, during the glide to the second epoch
    assert fe.wait_rest() == fe.epochs[1], "the glide under way finishes, then playback stops"
    fe.wait_echo(lambda e: e["epoch"] == fe.epochs[1], f"epoch {fe.epochs[1]} (where playback was paused)")
    fe.root.locator(".dvi-speed").select_option("4")
    fe.root.locator(".dvi-play").click()
    deadline = time.time() + 20
    while fe.page_epoch() != fe.epochs[-1] and time.time() < deadline:
        fe.page.wait_for_timeout(50)
    assert fe.wait_rest() == fe.epochs[-1], "playback runs on to the last epoch and stops"
    fe.wait_echo(lambda e: e["epoch"] == fe.epochs[-1], "the last epoch after playback")


def test_mouse_lasso_reads_back_in_python(fe):
    fe.wait_rest()
    fe.root.locator(".dvi-mode-lasso").click()
    box = fe.root.locator(".dvi-map").bounding_box()
    # a quadrilateral over the left 40% of the map (middle 60% of its height)
    poly = [(0.08, 0.2), (0.4, 0.2), (0.4, 0.8), (0.08, 0.8)]
    pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in poly]
    m = fe.page.mouse
    m.move(*pts[0])
    m.down()
    for x, y in pts[1:] + pts[:1]:
        m.move(x, y, steps=6)
    m.up()
    got = fe.wait_echo(lambda e: e["n"] > 0, "a non-empty selection")
    assert got["left"] == got["n"], f"every selected point lies left of the map's centre: {got}"
    shown = fe.root.locator(".dvi-sel-count").inner_text()
    assert shown == f"{got['n']} selected", "the page and Python agree on the selection"
    fe.root.locator(".dvi-clear").click()
    fe.wait_echo(lambda e: e["n"] == 0, "an empty selection after *clear*")
    fe.root.locator(".dvi-mode-pan").click()


def _keys(fe):
    fe.wait_rest()
    last = fe.epochs[-1]
    fe.focus_widget()
    fe.page.keyboard.press("ArrowLeft")
    fe.wait_echo(lambda e: e["epoch"] == fe.epochs[-2], f"epoch {fe.epochs[-2]} after ArrowLeft", timeout=8)
    assert fe.wait_rest() == fe.epochs[-2]
    fe.page.keyboard.press("ArrowRight")
    fe.wait_echo(lambda e: e["epoch"] == last, f"epoch {last} after ArrowRight", timeout=8)
    fe.page.keyboard.press("Space")  # at the last epoch: plays from the first
    deadline = time.time() + 5
    while fe.root.get_attribute("data-playing") != "true" and time.time() < deadline:
        fe.page.wait_for_timeout(30)
    assert fe.root.get_attribute("data-playing") == "true", "space plays"
    fe.page.keyboard.press("Space")
    assert fe.wait_rest() in fe.epochs, "space pauses"


def test_keys_step_and_play(fe):
    """In marimo the widget lives in a shadow DOM: the page-level key listener sees the shadow host
    as the event's target, so the widget must read the event's composed path (issue 8, bug 4)."""
    _keys(fe)
