"""Fixtures for the browser tests: one JupyterLab and one Notebook 7 server per
session, one headless Chromium, and per front end one notebook page that
displays the widget on a small real run (plus a live widget and a widget with
broken data).

Kernel-side state is read by running code in the notebook's own kernel
(`harness.kernel_exec`), the same kernel the widgets live in.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import textwrap

import pytest

from harness import (
    REPO,
    kernel_exec,
    MARIMO_APP,
    IPYWIDGETS_ECHO,
    make_workdir,
    matrix_setup,
    open_notebook,
    remove_workdir,
    run_all_cells,
    start_marimo,
    start_server,
    start_voila,
    write_notebook,
)

SCREENSHOTS = REPO / "test-output" / "browser"
FRONTENDS = ["lab", "notebook"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_workdir():
    path = make_workdir()
    yield path
    remove_workdir(path)


@pytest.fixture(scope="session")
def run_dir(request, browser_workdir) -> pathlib.Path:
    """A small real fitted MNIST run on disk: the engine's `small_run` when the
    suite provides it, else one made here with the demo's training code.
    DVI_BROWSER_RUN_DIR names an existing fitted run instead (to iterate quickly)."""
    if os.environ.get("DVI_BROWSER_RUN_DIR"):
        return pathlib.Path(os.environ["DVI_BROWSER_RUN_DIR"])
    try:
        vis = request.getfixturevalue("small_run")
        return pathlib.Path(vis.path)
    except pytest.FixtureLookupError:
        pass
    from dvi_widget.demo import run_demo

    out = browser_workdir / "small-run"
    vis = run_demo(out, epochs=3, n_train=800, n_test=200, quiet=True)
    return pathlib.Path(vis.path)


@pytest.fixture(scope="session")
def servers(browser_workdir):
    started = {}
    try:
        for kind in FRONTENDS:
            started[kind] = start_server(kind, browser_workdir)
        yield started
    finally:
        for s in started.values():
            s.stop()




def notebook_cells(run_dir: pathlib.Path, live_dir: pathlib.Path) -> list[str]:
    main = f"""
        import numpy as np
        import dvi_widget as dvi
        from dvi_widget.widget.widget import DVIWidget
        vis = dvi.Visualization({str(run_dir)!r})
        w = DVIWidget(vis)
        w
    """
    live = f"""
        import torch
        from dvi_widget.demo import CLASSES, SmallCNN, load_mnist, to_tensor, train_one_epoch
        images, labels, split = load_mnist(240, 60, seed=1)
        x, y = to_tensor(images), torch.from_numpy(labels)
        torch.manual_seed(0)
        model = SmallCNN()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        rec = dvi.Recorder({str(live_dir)!r}, inputs=x, labels=labels, classes=CLASSES, images=images,
                           split=split, overwrite=True, fit_options={{"steps_first": 60, "steps": 30, "grid": 32}})
        def one_more_epoch():
            train_one_epoch(model, opt, x, y, gen)
            rec.capture(model, features=model.features, head=model.fc)
        live = rec.show()
        live
    """
    broken = """
        broken = DVIWidget(vis)
        broken.epoch_data[0].positions = b"\\0" * 12   # wrong length: the browser must say so
        broken
    """
    return [textwrap.dedent(c).strip() for c in (main, live, broken)]


class NotebookPage:
    """A notebook page showing the widgets, with helpers for the tests."""

    def __init__(self, page, server, kind):
        self.page, self.server, self.kind = page, server, kind
        self.console_errors: list[str] = []

    def root(self, k: int = 0):
        return self.page.locator(".dvi-root").nth(k)

    def exec(self, code: str, timeout_ms: int = 120_000) -> str:
        return kernel_exec(self.page, code, timeout_ms=timeout_ms)

    def js(self, expr: str, arg=None, k: int = 0):
        """Evaluate `expr` with `app` bound to the k-th widget's app object."""
        return self.page.evaluate(
            f"([k, arg]) => {{ const app = document.querySelectorAll('.dvi-root')[k].dvi; return ({expr}); }}",
            [k, arg],
        )

    def shot(self, name: str, k: int = 0) -> pathlib.Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.kind}-{name}.png"
        self.root(k).screenshot(path=str(path))
        return path

    def wait_drawn(self, epoch: int, k: int = 0, timeout: int = 20_000) -> None:
        self.page.wait_for_function(
            "([k, e]) => { const r = document.querySelectorAll('.dvi-root')[k];"
            " return r && r.dataset.drawnEpoch === String(e) && !r.dvi.transition; }",
            arg=[k, epoch],
            timeout=timeout,
        )


@pytest.fixture(scope="module", params=FRONTENDS)
def nb(request, servers, browser, run_dir, browser_workdir):
    """The notebook page in one front end, all cells run, widgets drawn."""
    kind = request.param
    server = servers[kind]
    name = f"widget_{request.module.__name__.split('.')[-1]}.ipynb"
    live_dir = browser_workdir / f"live-{kind}-{request.module.__name__.split('.')[-1]}"
    shutil.rmtree(live_dir, ignore_errors=True)
    write_notebook(server.root / name, notebook_cells(run_dir, live_dir))
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    helper = NotebookPage(page, server, kind)
    page.on("console", lambda m: helper.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: helper.console_errors.append(str(e)))
    # a fresh JupyterLab workspace: the page must not also restore notebooks earlier modules opened
    open_notebook(page, server, name, workspace=f"{kind}-{request.module.__name__.split('.')[-1]}")
    run_all_cells(page)
    page.wait_for_function("() => document.querySelectorAll('.dvi-root').length >= 3")
    page.wait_for_function(
        "() => { const r = document.querySelector('.dvi-root'); return r && r.dataset.drawnEpoch; }", timeout=30_000
    )
    yield helper
    context.close()


# ---------------------------------------------------------------- the front-end matrix (test_frontends.py)

@pytest.fixture(scope="session")
def app_servers(browser_workdir, run_dir):
    """marimo (`marimo run`, app mode) and Voila, each serving the matrix app on the small run."""
    setup = matrix_setup(run_dir)
    root = browser_workdir / "apps"
    root.mkdir(parents=True, exist_ok=True)
    (root / "matrix_marimo.py").write_text(MARIMO_APP.format(setup=textwrap.indent(setup, "    ")))
    write_notebook(root / "matrix_voila.ipynb", [setup + "\n" + IPYWIDGETS_ECHO.strip()])
    started = {}
    try:
        started["marimo"] = start_marimo(root / "matrix_marimo.py", browser_workdir)
        started["voila"] = start_voila(root / "matrix_voila.ipynb", browser_workdir)
        yield started
    finally:
        for s in started.values():
            s.stop()
