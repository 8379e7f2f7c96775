"""Fitting and recording on Ray: the same run as the local path, and resumption after a killed task.

One local Ray cluster (2 CPUs) serves the whole module. Its workers run ``ray_support.arm_kills``
at start-up, so a test can make a stage's worker die mid-task (``os._exit``) and check that Ray
retries it or the next call resumes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dvi_widget as dvi
from dvi_widget.demo import CLASSES, SmallCNN
from dvi_widget.store.rundir import RunDir
from engine_support import TINY_FIT, kill_after_first_fit, make_cnn, record_features, snapshot

TESTS = Path(__file__).parent
ray = None
ORIGINAL_PRINT = print


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster with 2 CPUs for this module; yields the folder where tests arm kills."""
    global ray
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dvi_widget[ray]'; CI installs it "
                                            "with the test extra)")
    kills = tmp_path_factory.mktemp("ray-kills")
    pkg = str(Path(dvi.__file__).parent.parent)
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([pkg, str(TESTS)]),
                                               "DVI_TEST_KILL_DIR": str(kills), "OMP_NUM_THREADS": "1"},
                                  "worker_process_setup_hook": "ray_support.arm_kills"})
            break
        except Exception as e:   # Ray gives its raylet 30 s to register; a loaded machine can miss that once
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(e):
                raise
    yield kills
    ray.shutdown()


def run_files(path: Path) -> dict[str, bytes]:
    """Every file of a run but the writer-lock note, by relative path."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name not in (".writer.json", ".writer.lock")}


def is_timing(key: str) -> bool:
    return key == "seconds" or key.endswith("_s")


def assert_same_run(a: Path, b: Path) -> None:
    """Both runs hold the same files with the same bytes, except what records time and identity:
    timings in each fit's info.json (and the sizes its manifest lists for it), and each capture's
    random id (capture.json, referenced by info.json)."""
    fa, fb = run_files(a), run_files(b)
    assert sorted(fa) == sorted(fb), "the same files"
    ids = {}
    for name in fa:
        if name.endswith("capture.json"):
            ja, jb = json.loads(fa[name]), json.loads(fb[name])
            ids[ja.pop("id")] = jb.pop("id")
            assert ja == jb, name
    for name in fa:
        if name.endswith("capture.json"):
            continue
        if name.endswith("info.json"):
            ja, jb = json.loads(fa[name]), json.loads(fb[name])
            ja = {k: v for k, v in ja.items() if not is_timing(k)}
            jb = {k: v for k, v in jb.items() if not is_timing(k)}
            ja["capture_id"] = ids.get(ja.get("capture_id"), ja.get("capture_id"))
            assert ja == jb, f"{name} differs beyond timings"
        elif name.endswith("manifest.json"):
            ma, mb = json.loads(fa[name])["files"], json.loads(fb[name])["files"]
            for volatile in ("info.json", "capture.json"):
                ma.pop(volatile, None), mb.pop(volatile, None)
            assert ma == mb, name
        else:
            assert fa[name] == fb[name], f"{name} differs"


@pytest.fixture
def recorded_pair(tmp_path, digits_head):
    """Two copies of one recorded (unfitted) features-only run: 300 digits, 4 epochs."""
    X, y, head = digits_head
    rng = np.random.default_rng(0)
    X = X[:300]
    feats = [(e, (X + 0.02 * e * rng.standard_normal(X.shape)).astype(np.float32)) for e in (1, 2, 3, 4)]
    a = record_features(tmp_path / "a", feats, y[:300], head)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


def test_a_run_fitted_on_ray_equals_the_run_fitted_locally(cluster, recorded_pair):
    local, on_ray = recorded_pair
    vl = dvi.fit(local, progress=False, threads=1, **TINY_FIT)
    vr = dvi.fit(on_ray, progress=False, threads=1, executor="ray", **TINY_FIT)
    assert vr.epochs == vl.epochs == [1, 2, 3, 4]
    for e in vl.epochs:
        np.testing.assert_array_equal(vr.embedding(e), vl.embedding(e))
        np.testing.assert_array_equal(vr.background(e), vl.background(e))
    assert vr.metrics == vl.metrics and vr.summary == vl.summary
    assert_same_run(local, on_ray)
    # the same epochs fitted again (refit) give the same files
    before = run_files(on_ray)
    dvi.fit(on_ray, progress=False, threads=1, executor="ray", refit=True, **TINY_FIT)
    after = run_files(on_ray)
    for name in before:
        if name.endswith(("fit.npz", "model.npz", "metrics.json", "model.json")):
            assert after[name] == before[name], f"{name} changed when fitted again"


@pytest.mark.parametrize("stage", ["prepare_epoch", "project_epoch", "finish_epoch"])
def test_a_worker_killed_mid_task_is_retried_and_the_run_is_unchanged(cluster, recorded_pair, stage):
    local, on_ray = recorded_pair
    (cluster / f"arm-{stage}-3").touch()
    try:
        dvi.fit(on_ray, progress=False, threads=1, executor="ray", **TINY_FIT)
    finally:
        (cluster / f"arm-{stage}-3").unlink()
    assert (cluster / f"killed-{stage}-3").exists(), "the worker running the stage was killed"
    dvi.fit(local, progress=False, threads=1, **TINY_FIT)
    assert_same_run(local, on_ray)
    assert not [p.name for p in (on_ray / "fits").iterdir() if p.name.startswith(".")], "no leftovers"


def test_a_driver_killed_mid_fit_leaves_finished_epochs_and_the_next_fit_resumes(cluster, recorded_pair):
    """A driver process connected to the cluster (ray_address=) is killed once an epoch is written."""
    _, on_ray = recorded_pair
    opts = {**TINY_FIT, "layout_epochs": 400, "steps": 150}      # slow enough to be killed mid-fit
    address = ray.get_runtime_context().gcs_address
    code = ("import sys, dvi_widget as dvi; "
            f"dvi.fit(sys.argv[1], progress=False, threads=1, executor='ray', ray_address=sys.argv[2], **{opts!r})")
    proc = subprocess.Popen([sys.executable, "-c", code, str(on_ray), address],
                            env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(Path(dvi.__file__).parent.parent)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_fit(proc, on_ray, timeout=120)
    run = RunDir(on_ray)
    done = run.fitted_epochs()
    assert 1 in done and len(done) < 4, f"killed mid-fit: {done}"
    time.sleep(1.0)   # Ray stops the dead driver's tasks
    done = run.fitted_epochs()
    before = {e: snapshot(run.fit_dir(e)) for e in done}
    vis = dvi.fit(on_ray, progress=False, threads=1, executor="ray", **opts)
    assert vis.epochs == [1, 2, 3, 4]
    assert {e: snapshot(run.fit_dir(e)) for e in done} == before, "finished epochs are left as they were"
    assert not [p.name for p in (on_ray / "fits").iterdir() if p.name.startswith(".")], "no leftovers"
    # each later epoch is warm-started from the one before (resuming from disk equals a whole local fit:
    # see the CLI test)
    assert [json.loads((run.fit_dir(e) / "info.json").read_text())["prev_epoch"] for e in vis.epochs] == [None, 1, 2, 3]


def test_the_cli_resumes_a_locally_fitted_run_on_ray_from_its_last_fit_on_disk(cluster, recorded_pair, capsys):
    """Epochs 3-4 of a local fit lost: `dvi-widget fit --executor ray` fits them, epoch 3's link
    warm-started from epoch 2's fit read from disk, and the run equals the whole local fit."""
    from dvi_widget.cli import main
    local, on_ray = recorded_pair
    dvi.fit(local, progress=False, threads=1, **TINY_FIT)
    shutil.rmtree(on_ray)
    shutil.copytree(local, on_ray)
    for e in (3, 4):
        shutil.rmtree(on_ray / "fits" / f"{e:06d}")
    kept = {e: snapshot(on_ray / "fits" / f"{e:06d}") for e in (1, 2)}
    assert main(["fit", str(on_ray), "--executor", "ray"]) == 0
    assert "stab_spearman" in capsys.readouterr().out
    assert {e: snapshot(on_ray / "fits" / f"{e:06d}") for e in (1, 2)} == kept
    assert_same_run(local, on_ray)


@pytest.fixture
def checkpoints(tmp_path):
    """Four saved SmallCNN state dicts (different seeds), named by epoch."""
    files = []
    for e in (1, 2, 3, 4):
        f = tmp_path / f"ckpt_{e}.pt"
        torch.save(make_cnn(e).state_dict(), f)
        files.append(f)
    return files


def test_capture_checkpoints_on_ray_records_the_same_run_as_the_local_path(cluster, tmp_path, mnist_tiny,
                                                                            checkpoints):
    x, labels, split, _ = mnist_tiny
    kw = dict(inputs=x, labels=labels, classes=CLASSES, split=split, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # as each Ray task (1 CPU): float sums depend on the thread count
    try:
        with dvi.Recorder(tmp_path / "local", **kw) as rec:
            assert rec.capture_checkpoints(SmallCNN, checkpoints, features=lambda m: m.features,
                                           head="fc") == [1, 2, 3, 4]
    finally:
        torch.set_num_threads(threads)
    (cluster / "arm-capture-3").touch()           # and the worker capturing epoch 3 dies once
    try:
        with dvi.Recorder(tmp_path / "ray", **kw) as rec:
            assert rec.capture_checkpoints(SmallCNN, checkpoints, features=lambda m: m.features, head="fc",
                                           executor="ray") == [1, 2, 3, 4]
            assert rec.epochs == [1, 2, 3, 4]
    finally:
        (cluster / "arm-capture-3").unlink()
    assert (cluster / "killed-capture-3").exists()
    assert_same_run(tmp_path / "local", tmp_path / "ray")


# ---- errors before any work: these run without Ray too ------------------------------------------
@pytest.fixture
def no_ray(monkeypatch):
    """Ray as if not installed: ``import ray`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_without_ray_the_ray_executor_says_how_to_install_it_and_changes_nothing(no_ray, recorded_pair, tmp_path,
                                                                                  mnist_tiny, checkpoints):
    path, _ = recorded_pair
    before = run_files(path)
    with pytest.raises(dvi.DVIError, match=r"pip install 'dvi_widget\[ray\]'"):
        dvi.fit(path, progress=False, executor="ray", **TINY_FIT)
    assert run_files(path) == before
    x, labels, split, _ = mnist_tiny
    with dvi.Recorder(tmp_path / "rec", inputs=x, labels=labels, classes=CLASSES, split=split) as rec:
        with pytest.raises(dvi.DVIError, match=r"pip install 'dvi_widget\[ray\]'"):
            rec.capture_checkpoints(SmallCNN, checkpoints, features="features", head="fc", executor="ray")
        assert rec.epochs == []
    # the default executor needs no Ray
    assert dvi.fit(path, progress=False, **TINY_FIT).epochs == [1, 2, 3, 4]


@pytest.mark.parametrize("bad, match", [("dask", "executor must be one of"), (None, "executor must be one of"),
                                        ("local", "ray_address= is only used")])
def test_a_bad_executor_is_refused_before_any_work(recorded_pair, bad, match):
    path, _ = recorded_pair
    before = run_files(path)
    extra = {"ray_address": "auto"} if bad == "local" else {}
    with pytest.raises(dvi.DVIError, match=match):
        dvi.fit(path, progress=False, executor=bad, **extra, **TINY_FIT)
    assert run_files(path) == before


def test_ray_fit_options_are_checked_before_any_work(recorded_pair):
    pytest.importorskip("ray")
    path, _ = recorded_pair
    before = run_files(path)
    with pytest.raises(dvi.DVIError, match="device must be 'auto', 'cpu' or 'cuda'"):
        dvi.fit(path, progress=False, executor="ray", device="cuda:1", **TINY_FIT)
    with pytest.raises(dvi.DVIError, match="cpus_per_task"):
        dvi.RayExecutor(cpus_per_task=-1)
    assert run_files(path) == before


def test_a_run_in_this_process_memory_is_refused_on_ray(digits_head):
    """fsspec's memory:// lives in the driver process: Ray workers could not see it."""
    pytest.importorskip("ray")
    X, y, head = digits_head
    url = "memory://dvi-ray-test/run"
    record_features(url, [(1, X[:120])], y[:120], head)
    with pytest.raises(dvi.DVIError, match="memory.*cannot reach it"):
        dvi.fit(url, progress=False, executor="ray", **TINY_FIT)


def test_after_ray_fits_this_process_still_has_its_own_print_and_fits_with_pynndescent(cluster, tmp_path):
    # Runs after the kill tests, whose worker errors Ray relays to this driver. Ray used to replace
    # builtins.print then, and numba (pynndescent) could no longer compile in this process.
    import builtins
    assert builtins.print is ORIGINAL_PRINT
    pytest.importorskip("pynndescent")
    from dvi_widget.engine.knn import approximate_knn
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2000, 8)).astype(np.float32))
    idx, _ = approximate_knn(x, 5, "pynndescent")
    assert idx.shape == (2000, 5)
