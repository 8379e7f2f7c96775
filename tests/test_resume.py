"""Resuming: a killed capture or fit leaves finished epochs intact, and the next call does only what is left."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_support import TINY_FIT, kill_after_first_fit, record_features, snapshot

import dvi_widget as dvi
import dvi_widget.engine.fitting as fitting
from dvi_widget.store.rundir import RunDir, load_npz


def leftovers(path: Path) -> list[str]:
    return [p.name for sub in ("epochs", "fits") for p in (path / sub).iterdir() if p.name.startswith(".")]


def test_fit_after_a_kill_fits_only_the_missing_epoch_and_cleans_up(tiny_feature_run):
    path = tiny_feature_run
    run = RunDir(path)
    # a process killed while writing epoch 3's fit leaves a half-written temporary folder
    half = path / "fits" / ".tmp-000003-deadbeef"
    os.replace(run.fit_dir(3), half)
    (half / "fit.npz").write_bytes(b"PK\x03\x04 truncated")
    before = {e: snapshot(run.fit_dir(e)) for e in (1, 2)}
    vis = dvi.fit(path, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2, 3]
    assert {e: snapshot(run.fit_dir(e)) for e in (1, 2)} == before, "finished epochs are untouched"
    assert leftovers(path) == []
    assert vis.embedding(3).shape == (300, 2) and 3 in vis.metrics


def test_a_kill_between_the_two_renames_of_a_replace_is_undone(tiny_feature_run):
    path = tiny_feature_run
    run = RunDir(path)
    emb = load_npz(run.fit_dir(2) / "fit.npz", ("embedding",))["embedding"]
    os.replace(run.fit_dir(2), path / "fits" / ".old-000002-0badf00d")   # old moved aside, new not yet in place
    assert run.fitted_epochs() == [1, 3], "a reader lists what is complete and changes nothing"
    assert leftovers(path) == [".old-000002-0badf00d"]
    before = snapshot(path / "fits" / ".old-000002-0badf00d")
    vis = dvi.fit(path, progress=False, **TINY_FIT)   # the next writer puts it back, then has nothing to fit
    assert run.fitted_epochs() == [1, 2, 3] and snapshot(run.fit_dir(2)) == before
    np.testing.assert_array_equal(vis.embedding(2), emb)
    assert leftovers(path) == []


def test_a_process_killed_mid_fit_resumes(tmp_path, digits_head):
    X, y, head = digits_head
    rng = np.random.default_rng(0)
    feats = [(e, (X[:300] + 0.05 * e * rng.standard_normal((300, X.shape[1]))).astype(np.float32)) for e in (1, 2, 3)]
    path = record_features(tmp_path / "r", feats, y[:300], head)
    opts = dict(steps_first=20, steps=150, batch_size=64, grid=16)
    code = ("import sys, dvi_widget as dvi; "
            f"dvi.fit(sys.argv[1], progress=False, **{opts!r})")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], env={**os.environ, "TQDM_DISABLE": "1"})
    kill_after_first_fit(proc, path, timeout=240)
    run = RunDir(path)
    done = run.fitted_epochs()
    assert done and done == list(range(1, len(done) + 1)), f"finished epochs form a prefix: {done}"
    before = {e: snapshot(run.fit_dir(e)) for e in done}
    vis = dvi.fit(path, progress=False, **opts)
    assert vis.epochs == [1, 2, 3]
    assert {e: snapshot(run.fit_dir(e)) for e in done} == before
    assert leftovers(path) == []


def test_an_error_mid_fit_keeps_finished_epochs_and_leaves_no_partial_files(tiny_feature_run, monkeypatch):
    path = tiny_feature_run
    dvi.fit(path, progress=False, refit=True, **{**TINY_FIT, "steps": 12})
    calls = []
    real = fitting.decision_map

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)
    monkeypatch.setattr(fitting, "decision_map", failing)
    shutil.rmtree(RunDir(path).fit_dir(2))
    shutil.rmtree(RunDir(path).fit_dir(3))
    with pytest.raises(KeyboardInterrupt):
        dvi.fit(path, progress=False, **{**TINY_FIT, "steps": 12})
    # first call fitted epoch 2, the second (epoch 3) was interrupted
    assert RunDir(path).fitted_epochs() == [1, 2]
    assert leftovers(path) == []
    monkeypatch.setattr(fitting, "decision_map", real)
    assert dvi.fit(path, progress=False, **{**TINY_FIT, "steps": 12}).epochs == [1, 2, 3]


def test_refitting_a_fully_fitted_run_does_no_work(tiny_feature_run, monkeypatch):
    before = snapshot(tiny_feature_run / "fits")

    def no(*a, **k):
        raise AssertionError("fit_epoch called on a fully fitted run")
    monkeypatch.setattr(fitting, "fit_epoch", no)
    vis = dvi.fit(tiny_feature_run, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2, 3]
    assert snapshot(tiny_feature_run / "fits") == before


def test_other_fit_options_need_refit(tiny_feature_run):
    path = tiny_feature_run
    with pytest.raises(dvi.DVIError, match=r"other options.*steps.*refit=True"):
        dvi.fit(path, progress=False, **{**TINY_FIT, "steps": 11})
    before = snapshot(path / "fits" / "000001")
    vis = dvi.fit(path, progress=False, refit=True, **{**TINY_FIT, "steps": 11})
    assert vis.epochs == [1, 2, 3]
    assert snapshot(path / "fits" / "000001") != before
    assert json.loads((path / "fits" / "config.json").read_text())["steps"] == 11
    dvi.fit(path, progress=False, **{**TINY_FIT, "steps": 11})    # now the stored options: fine


def test_unknown_fit_options_are_refused(tiny_feature_run):
    with pytest.raises(dvi.DVIError, match="unknown fit options.*stepz"):
        dvi.fit(tiny_feature_run, stepz=3)


def test_a_new_epoch_is_fitted_alone_warm_started_from_the_last(tiny_feature_run, digits_head):
    X, y, head = digits_head
    path = tiny_feature_run
    before = snapshot(path / "fits")
    with dvi.Recorder(path, labels=y[:300]) as rec:
        assert rec.capture(features=X[:300], head=head) == 4
    vis = dvi.fit(path, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2, 3, 4]
    after = snapshot(path / "fits")
    assert {k: v for k, v in after.items() if not k.startswith("000004")} == before
    assert json.loads((path / "fits" / "000004" / "info.json").read_text())["prev_epoch"] == 3


def test_a_recaptured_epoch_is_refitted_with_the_epochs_after_it(tiny_feature_run, digits_head):
    X, y, head = digits_head
    path = tiny_feature_run
    first = snapshot(path / "fits" / "000001")
    old2 = load_npz(RunDir(path).fit_dir(2) / "fit.npz", ("embedding",))["embedding"]
    with dvi.Recorder(path, labels=y[:300]) as rec:
        rec.capture(features=X[:300] * 1.5, head=head, epoch=2, replace=True)
    vis = dvi.fit(path, progress=False, **TINY_FIT)
    assert snapshot(path / "fits" / "000001") == first
    assert not np.allclose(vis.embedding(2), old2)
    np.testing.assert_array_equal(vis.features(2), X[:300] * 1.5)


def test_a_capture_killed_mid_write_is_ignored_and_recording_resumes(tiny_feature_run, digits_head):
    X, y, head = digits_head
    path = tiny_feature_run
    half = path / "epochs" / ".tmp-000004-deadbeef"
    half.mkdir()
    (half / "features.npz").write_bytes(b"PK\x03\x04 truncated")
    with dvi.Recorder(path, labels=y[:300]) as rec:
        assert rec.epochs == [1, 2, 3]
        assert rec.capture(features=X[:300], head=head) == 4
    assert leftovers(path) == []
    assert dvi.fit(path, progress=False, **TINY_FIT).epochs == [1, 2, 3, 4]
