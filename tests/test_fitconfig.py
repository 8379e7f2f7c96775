"""FitConfig: every option documented and checked, and a bad one changes nothing on disk."""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from engine_support import TINY_FIT, record_features

import dvi_widget as dvi
from dvi_widget.engine.threads import choose_threads


def tree(folder):
    """Every file under ``folder`` with its content (what a fit call could change); the writer lock's
    own note (``.writer.json``: who holds the run, since when) is bookkeeping, not the run's data."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".writer")}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, digits_head):
    """One small fitted features-only run shared by the tests below (a refused call changes nothing)."""
    X, y, head = digits_head
    rng = np.random.default_rng(0)
    feats = [(e, (X[:150] + 0.02 * e * rng.standard_normal((150, X.shape[1]))).astype(np.float32)) for e in (1, 2)]
    path = record_features(tmp_path_factory.mktemp("cfg") / "run", feats, y[:150], head)
    dvi.fit(path, progress=False, **TINY_FIT)
    return path


BAD = [("width", 0), ("negative_sample_rate", -3), ("lr", float("nan")), ("grid", "a"), ("focus_every", 0),
       ("depth", 1.5), ("min_dist", -0.1), ("spread", float("inf")), ("batch_size", 1), ("steps_first", 0),
       ("engine", "tsne"), ("init", "spectral"), ("temporal_scope", "all"), ("align_weight", 2.0),
       ("layout_epochs_first", 0), ("layout_lr", 0.0), ("boundary_threshold", 1.0), ("seed", -1),
       ("n_neighbors", True), ("pred_temperature", 0), ("step_rounds", -1), ("step_size", 0.0)]


@pytest.mark.parametrize("name,value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_a_bad_option_is_named_and_changes_nothing_on_disk(fitted, name, value):
    before = tree(fitted)
    with pytest.raises(dvi.DVIError, match=rf"\b{name}\b"):
        dvi.fit(fitted, progress=False, refit=True, **{name: value})
    assert tree(fitted) == before, "the fits and the stored options are untouched"
    # and the next plain fit still works with the stored options
    assert dvi.fit(fitted, progress=False).epochs == [1, 2]


@pytest.mark.parametrize("kw,word", [({"device": "tpu"}, "device"), ({"threads": 0}, "threads"),
                                     ({"preset": "fastest"}, "preset"), ({"progress": "yes"}, "progress"),
                                     ({"stepz": 3}, "stepz")])
def test_bad_fit_arguments_are_named_before_anything_changes(fitted, kw, word):
    before = tree(fitted)
    with pytest.raises(dvi.DVIError, match=word):
        dvi.fit(fitted, refit=True, **kw)
    assert tree(fitted) == before


def test_an_unavailable_cuda_device_is_an_error_naming_it(fitted):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(dvi.DVIError, match="device='cuda'.*no CUDA"):
        dvi.fit(fitted, refit=True, device="cuda")


def test_fit_accepts_a_fitconfig_and_options_override_its_fields(tmp_path, digits_head):
    X, y, head = digits_head
    path = record_features(tmp_path / "c", [(1, X[:200])], y[:200], head)
    cfg = dvi.FitConfig(**TINY_FIT)
    vis = dvi.fit(path, cfg, progress=False, grid=24)
    assert vis.background(1).shape[:2] == (24, 24)
    assert dvi.fit(path, progress=False).epochs == [1], "stored options reused"
    with pytest.raises(dvi.DVIError, match="other options"):
        dvi.fit(path, cfg, progress=False)
    with pytest.raises(dvi.DVIError, match="config.*FitConfig"):
        dvi.fit(path, {"grid": 24}, progress=False)


def test_fitconfig_itself_refuses_bad_values_and_documents_every_field():
    with pytest.raises(dvi.DVIError, match="width"):
        dvi.FitConfig(width=0)
    with pytest.raises(dvi.DVIError, match="lr.*finite"):
        dvi.FitConfig(lr=math.nan)
    doc = dvi.FitConfig.__doc__
    for f in dataclasses.fields(dvi.FitConfig):
        assert f"\n    {f.name} : " in doc, f"{f.name} is not documented in FitConfig's docstring"
    assert dvi.FitConfig.preset("parametric").engine == "parametric"
    assert dvi.FitConfig.preset("reference").width == 256
    stable = dvi.FitConfig.preset("stable", step_size=0.2)
    assert stable.engine == "layout" and stable.step_rounds > 0 and stable.step_size == 0.2
    assert dvi.FitConfig().step_rounds == 0, "the default layout does not hold steps to the features'"


def test_features_with_no_spread_warn_and_keep_a_finite_map(tmp_path, digits_head):
    X, y, head = digits_head
    X, y = X[:200], y[:200]
    flat = np.repeat(X[:1], len(X), 0)
    path = record_features(tmp_path / "flat", [(1, flat), (2, X), (3, X * 1e-6)], y, head)
    with pytest.warns(RuntimeWarning, match="no spread"):
        vis = dvi.fit(path, progress=False, **TINY_FIT)
    for e in vis.epochs:
        ext = np.array(vis.background_extent(e))
        assert np.isfinite(ext).all() and np.abs(ext).max() < 1e3, (e, ext)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # a tiny but real spread is not "no spread"
        path2 = record_features(tmp_path / "tiny", [(1, X * 1e-6), (2, X * 1e-6)], y, head)
        vis2 = dvi.fit(path2, progress=False, preset="parametric", **TINY_FIT)
    assert np.abs(np.array(vis2.extent)).max() < 1e3


def test_a_fits_own_recent_work_is_not_counted_as_other_load(monkeypatch):
    """A run fitted after each epoch must not read its own previous epoch (or the training loop in
    the same kernel) as a busy machine and drop to one thread."""
    import time
    import dvi_widget.engine.threads as th
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(th, "_AT_IMPORT", torch.get_num_threads())
    monkeypatch.setattr(th, "available_cores", lambda: 2)
    monkeypatch.setattr(th.os, "getloadavg", lambda: (2.6, 2.4, 2.0))
    samples = th._SAMPLES.copy()
    try:
        th._SAMPLES.clear()     # this process kept both cores busy for the last minute
        th._SAMPLES.append((time.monotonic() - 60.0, th._cpu_seconds() - 120.0))
        assert th.own_load() == pytest.approx(2.0, abs=0.1)
        assert choose_threads() == 2, "the load was this process's own: the cores are free now"
        th._SAMPLES.clear()     # this process was idle: the load is someone else's
        th._SAMPLES.append((time.monotonic() - 60.0, th._cpu_seconds()))
        assert choose_threads() == 1
    finally:
        th._SAMPLES.clear()
        th._SAMPLES.extend(samples)


def test_thread_choice_respects_an_explicit_choice_and_is_restored(monkeypatch, tmp_path, digits_head):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    assert choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads() == torch.get_num_threads(), "an explicit environment choice is kept"
    monkeypatch.delenv("OMP_NUM_THREADS")
    import dvi_widget.engine.threads as th
    monkeypatch.setattr(th, "_AT_IMPORT", before)
    monkeypatch.setattr(th.os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    assert choose_threads() == 1, "a busy machine gets one thread"
    monkeypatch.setattr(th.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert 1 <= choose_threads() <= 2
    X, y, head = digits_head
    path = record_features(tmp_path / "t", [(1, X[:100])], y[:100], head)
    dvi.fit(path, progress=False, threads=1, **TINY_FIT)
    assert torch.get_num_threads() == before, "torch's thread count is restored after the fit"
