"""Drive a real JupyterLab 4 / Notebook 7 in headless Chromium (Playwright).

Used by the browser tests (tests/browser/conftest.py) and by the widget
benchmark (benchmarks/widget.py). One server per front end, on 127.0.0.1
with a token, a free port and a temporary root; pages get `window.jupyterapp`
(expose_app_in_browser) so code can run in the notebook's own kernel and the
output be read back.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DVI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ServerProcess:
    """What every server here shares: its log's tail and a process-group shutdown."""

    proc: subprocess.Popen
    log_path: pathlib.Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@dataclass
class JupyterServer(_ServerProcess):
    """A running Jupyter server (kind 'lab' or 'notebook')."""

    kind: str
    root: pathlib.Path
    port: int
    token: str
    proc: subprocess.Popen
    log_path: pathlib.Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str, workspace: str | None = None) -> str:
        """The notebook's page; in JupyterLab, `workspace` names a fresh workspace (so the page does
        not also restore the notebooks an earlier page had open)."""
        if self.kind != "lab":
            return f"{self.base}/notebooks/{name}?token={self.token}"
        if workspace:
            return f"{self.base}/lab/workspaces/{workspace}/tree/{name}?token={self.token}&reset"
        return f"{self.base}/lab/tree/{name}?token={self.token}"


def start_server(kind: str, workdir: pathlib.Path, timeout: float = 90.0) -> JupyterServer:
    """Start JupyterLab ('lab') or Notebook 7 ('notebook') and wait until it answers."""
    root = workdir / f"{kind}-root"
    root.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{kind}-config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    # no "news" prompt: it is a toast over the notebook and asks the network
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    token = os.urandom(16).hex()
    port = free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(workdir / f"{kind}-runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / f"{kind}-workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / f"{kind}-settings"),
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests" / "browser"), env.get("PYTHONPATH", "")]),
    )
    app = "jupyterlab" if kind == "lab" else "notebook"
    expose = "--LabApp.expose_app_in_browser=True" if kind == "lab" else "--JupyterNotebookApp.expose_app_in_browser=True"
    cmd = [
        sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", expose,
        "--ServerApp.terminals_enabled=False",
    ]
    log_path = workdir / f"{kind}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = JupyterServer(kind, root, port, token, proc, log_path)
    return _wait_http(server, f"{server.base}/api/status?token={token}", timeout, app)


def write_notebook(path: pathlib.Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def launch_browser(playwright, **kwargs):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **kwargs)


# JS run in the page: the current notebook panel of the exposed app.
_PANEL_JS = """
() => {
  const app = window.jupyterapp;
  if (!app) return null;
  const w = app.shell.currentWidget;
  return w && w.sessionContext ? w : null;
}
"""


def open_notebook(page, server: JupyterServer, name: str, timeout_ms: int = 120_000, workspace: str | None = None) -> None:
    """Open a notebook and wait until its kernel is idle and ready (see `notebook_url` for `workspace`)."""
    page.goto(server.notebook_url(name, workspace), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
          const app = window.jupyterapp; if (!app) return false;
          const w = app.shell.currentWidget;
          if (!w || !w.sessionContext || !w.sessionContext.session) return false;
          const k = w.sessionContext.session.kernel;
          return !!k && k.connectionStatus === 'connected' && w.sessionContext.kernelDisplayStatus === 'idle';
        }""",
        timeout=timeout_ms,
    )


def run_all_cells(page, timeout_ms: int = 180_000) -> None:
    """Run every cell (the notebook's own command) and wait until the kernel is idle again."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
          const w = window.jupyterapp.shell.currentWidget;
          const cells = w.content.widgets;
          return cells.every(c => c.model.type !== 'code' || (c.model.executionCount !== null && c.promptNode && !c.promptNode.textContent.includes('*')))
                 && w.sessionContext.kernelDisplayStatus === 'idle';
        }""",
        timeout=timeout_ms,
    )


def kernel_exec(page, code: str, timeout_ms: int = 120_000) -> str:
    """Run code in the notebook's kernel (the one the widget lives in); return its stdout.

    Raises AssertionError with the traceback when the code fails.
    """
    result = page.evaluate(
        """async ([code, timeout]) => {
          const w = window.jupyterapp.shell.currentWidget;
          const kernel = w.sessionContext.session.kernel;
          const future = kernel.requestExecute({ code, stop_on_error: true, store_history: false });
          let out = '', err = null;
          future.onIOPub = (msg) => {
            const t = msg.header.msg_type;
            if (t === 'stream') out += msg.content.text;
            else if (t === 'error') err = msg.content.ename + ': ' + msg.content.evalue + '\\n' + msg.content.traceback.join('\\n');
          };
          const timer = new Promise((_, rej) => setTimeout(() => rej(new Error('kernel_exec timed out')), timeout));
          await Promise.race([future.done, timer]);
          return { out, err };
        }""",
        [code, timeout_ms],
    )
    if result["err"]:
        raise AssertionError(f"kernel code failed:\n{code}\n---\n{result['err']}")
    return result["out"]


def kernel_json(page, expr: str) -> object:
    """Evaluate a Python expression in the kernel and return it (through JSON)."""
    out = kernel_exec(page, f"import json as _j; print('@@' + _j.dumps({expr}))")
    line = [l for l in out.splitlines() if l.startswith("@@")][-1]
    return json.loads(line[2:])


@contextlib.contextmanager
def lab_session(prefix: str = "dvi-browser-"):
    """A JupyterLab server in a fresh work folder and a headless Chromium, for the benchmarks and
    screenshot scripts (the tests use conftest.py's fixtures): yields (server, browser); closes
    both and removes the folder afterwards."""
    from playwright.sync_api import sync_playwright

    work = make_workdir(prefix)
    server = start_server("lab", work)
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                yield server, browser
            finally:
                browser.close()
    finally:
        server.stop()
        remove_workdir(work)


def notebook_page(browser, server: JupyterServer, name: str, cells: list[str], workspace: str,
                  timeout_ms: int = 600_000, **page_options):
    """Write notebook `name` with `cells`, open it in a new page (`page_options`: viewport, ...)
    in a fresh workspace, run all its cells and return the page."""
    write_notebook(server.root / name, cells)
    page = browser.new_page(**page_options)
    open_notebook(page, server, name, workspace=workspace)
    run_all_cells(page, timeout_ms=timeout_ms)
    return page


def make_workdir(prefix: str = "dvi-browser-") -> pathlib.Path:
    return pathlib.Path(tempfile.mkdtemp(prefix=prefix))


def remove_workdir(path: pathlib.Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- marimo and Voila

@dataclass
class AppServer(_ServerProcess):
    """A running marimo (`marimo run`) or Voila server showing one app, on 127.0.0.1."""

    kind: str
    url: str
    proc: subprocess.Popen
    log_path: pathlib.Path


def _wait_http(server, url: str, timeout: float, name: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {server.proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not answer within {timeout}s:\n{server.log()}")


def _spawn(cmd: list[str], cwd: pathlib.Path, log_path: pathlib.Path, env_extra: dict) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests" / "browser"), os.environ.get("PYTHONPATH", "")])
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def start_marimo(app: pathlib.Path, workdir: pathlib.Path, timeout: float = 90.0) -> AppServer:
    """`marimo run APP` (read-only app mode, as a user shares a marimo app) on a free local port."""
    port = free_port()
    token = os.urandom(16).hex()
    log_path = workdir / "marimo.log"
    cmd = [sys.executable, "-m", "marimo", "run", str(app), "--headless", "--host", "127.0.0.1",
           "--port", str(port), "--token-password", token, "--no-sandbox", "--no-skew-protection"]
    proc = _spawn(cmd, app.parent, log_path, {"MARIMO_SKIP_UPDATE_CHECK": "1"})
    server = AppServer("marimo", f"http://127.0.0.1:{port}/?access_token={token}", proc, log_path)
    return _wait_http(server, f"http://127.0.0.1:{port}/health", timeout, "marimo")


def start_voila(notebook: pathlib.Path, workdir: pathlib.Path, timeout: float = 90.0) -> AppServer:
    """`voila NOTEBOOK` on a free local port (each page load runs the notebook in a fresh kernel)."""
    port = free_port()
    log_path = workdir / "voila.log"
    config = workdir / "voila-config"
    config.mkdir(parents=True, exist_ok=True)
    token = os.urandom(16).hex()
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--show_tracebacks=True", f"--token={token}"]
    proc = _spawn(cmd, notebook.parent, log_path, {"JUPYTER_CONFIG_DIR": str(config),
                                                   "JUPYTER_RUNTIME_DIR": str(workdir / "voila-runtime")})
    server = AppServer("voila", f"http://127.0.0.1:{port}/?token={token}", proc, log_path)
    # the root page runs the notebook: probe a static file instead
    return _wait_http(server, f"http://127.0.0.1:{port}/voila/static/favicon.ico?token={token}", timeout, "voila")


# ---------------------------------------------------------------- the front-end matrix app

#: Python, run in the front end's kernel: the widget on the small run, and its Python-side
#: state as one line of text ("DVI-ECHO {json}"), so a test reads back what Python holds.
ECHO_CODE = """
import json
import numpy as np
import dvi_widget as dvi
from dvi_widget.widget.widget import DVIWidget
vis = dvi.Visualization({run!r})
w = DVIWidget(vis)

def echo_text():
    sel = np.asarray(w.selected, dtype=np.int64)
    x0, x1 = w.meta["extent"][:2]
    xs = vis.embedding(w.epoch)[sel, 0] if sel.size else np.zeros(0)
    return "DVI-ECHO " + json.dumps({{"epoch": w.epoch, "n": int(sel.size), "sum": int(sel.sum()),
                                     "left": int((xs < (x0 + x1) / 2).sum())}})
"""

#: JupyterLab, Notebook 7 and Voila: an ipywidgets Label that observes the widget in the kernel.
IPYWIDGETS_ECHO = """
import ipywidgets
echo = ipywidgets.Label(echo_text())
echo.add_class("dvi-echo")
w.observe(lambda _: setattr(echo, "value", echo_text()), names=["epoch", "selected"])
display(w, echo)
"""

#: marimo: `mo.ui.anywidget(w)`; the second cell reruns whenever the widget's value changes.
MARIMO_APP = """import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo
{setup}
    wid = mo.ui.anywidget(w)
    wid
    return echo_text, mo, wid


@app.cell
def _(echo_text, mo, wid):
    wid.value
    mo.plain_text(echo_text())
    return


if __name__ == "__main__":
    app.run()
"""


def matrix_setup(run_dir: pathlib.Path) -> str:
    return textwrap.dedent(ECHO_CODE.format(run=str(run_dir))).strip()
