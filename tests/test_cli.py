"""The dvi-widget command: clear one-line errors (no tracebacks), --version, help, and a demo that resumes.

Each bad invocation fails before any long work and leaves nothing behind.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from engine_support import TINY_FIT

import dvi_widget as dvi
from dvi_widget.cli import main
from dvi_widget.demo import run_demo
from dvi_widget.store.rundir import RunDir


def run_cli(*args, timeout=300):
    """The installed command's entry point in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "dvi_widget.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})


def assert_clean_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("dvi-widget: error: "), r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_version_and_help():
    from dvi_widget import __version__
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"dvi-widget {__version__}"
    r = run_cli("--help")
    assert r.returncode == 0
    assert "``" not in r.stdout
    for command in ("demo", "fit", "export"):
        assert command in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["--train", "9000", "--test", "2000"], "has 10,000 digits"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--train", "-5"], "--train must be at least 20"),
])
def test_demo_rejects_bad_sizes_at_once_and_leaves_no_run(tmp_path, args, needle):
    out = tmp_path / "demo"
    r = run_cli("demo", "--out", str(out), *args)
    assert_clean_error(r, needle)
    assert not out.exists(), "nothing was created"


def test_demo_into_a_path_under_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "passwd"
    f.write_text("root:x:0:0\n")
    r = run_cli("demo", "--out", str(f / "x"))
    assert_clean_error(r, str(f))
    assert f.read_text() == "root:x:0:0\n"


def test_demo_never_wipes_a_users_folder(tmp_path):
    folder = tmp_path / "some" / "folder"
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("chapter 1")
    (folder / "meta.json").write_text('{"mine": true}')
    t0 = time.perf_counter()
    r = run_cli("demo", "--out", str(folder), "--epochs", "1", "--train", "100", "--test", "20")
    assert_clean_error(r, "not a dvi_widget run")
    r = run_cli("demo", "--out", str(folder), "--epochs", "1", "--train", "100", "--test", "20", "--fresh")
    assert_clean_error(r, "refused")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "chapter 1"
    assert time.perf_counter() - t0 < 120, "refused before training"


def test_demo_resumes_its_run_and_writes_the_offline_page(tmp_path, capsys):
    out = tmp_path / "demo"
    run_demo(out, epochs=2, n_train=200, n_test=50, fit_options=TINY_FIT)
    first = capsys.readouterr().out
    assert (out / "map.html").exists() and "offline page: file://" in first
    assert "pip install jupyterlab" in first
    run = RunDir(out)
    stamps = {e: (run.epoch_dir(e) / "features.npz").stat().st_mtime_ns for e in (1, 2)}
    vis = run_demo(out, epochs=3, n_train=200, n_test=50, fit_options=TINY_FIT)
    second = capsys.readouterr().out
    assert f"resuming the demo run in {out}" in second
    assert "epoch 1: training loss" in second and "(already recorded)" in second
    assert {e: (run.epoch_dir(e) / "features.npz").stat().st_mtime_ns for e in (1, 2)} == stamps
    assert vis.epochs == [1, 2, 3]
    # other settings: a clear message, and --fresh starts afresh (it is provably the demo's run)
    with pytest.raises(dvi.DVIError, match="--fresh"):
        run_demo(out, epochs=1, n_train=150, n_test=50, fit_options=TINY_FIT)
    vis = run_demo(out, epochs=1, n_train=150, n_test=50, fit_options=TINY_FIT, fresh=True)
    assert vis.epochs == [1] and vis.n == 200
    assert "starting afresh" in capsys.readouterr().out


def test_export_rejects_an_unknown_epoch_and_a_bad_output_path_at_once(small_run_copy, tmp_path):
    r = run_cli("export", str(small_run_copy), str(tmp_path / "m.html"), "--epoch", "99")
    assert_clean_error(r, "unknown epoch 99", "valid epochs: [1, 2, 3]")
    t0 = time.perf_counter()
    r = run_cli("export", str(small_run_copy), str(tmp_path / "absent" / "m.html"))
    assert_clean_error(r, "does not exist")
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "m.html").exists()


def test_fit_with_other_options_names_the_refit_flag(small_run_copy, capsys):
    assert main(["fit", str(small_run_copy), "--preset", "reference"]) == 2
    err = capsys.readouterr().err
    assert "--refit" in err and "refit=True" not in err
