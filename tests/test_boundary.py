"""DVI's boundary samples: near a decision boundary, between two classes, 10% of the training samples."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from engine_support import SMALL_TRAIN

import dvi_widget as dvi
from dvi_widget.store.rundir import RunDir, load_npz


def dvi_margin(logits: np.ndarray) -> np.ndarray:
    """(z1 - z2) / (z1 - z_min), computed here independently of dvi_widget.record.boundary."""
    z = np.sort(logits.astype(np.float64), axis=1)
    return (z[:, -1] - z[:, -2]) / np.maximum(z[:, -1] - z[:, 0], 1e-12)


def boundary_logits(vis, epoch):
    b = load_npz(RunDir(vis.path).epoch_dir(epoch) / "features.npz", ("boundary",))["boundary"]
    with torch.no_grad():
        return b, vis.head(epoch)(torch.from_numpy(b)).numpy()


def test_boundary_samples_nearly_tie_the_top_two_logits(small_run):
    for e in small_run.epochs:
        b, z = boundary_logits(small_run, e)
        assert len(b) > 0
        within = dvi_margin(z) < 0.1
        assert within.mean() >= 0.9, f"epoch {e}: only {within.mean():.2%} of boundary samples within DVI's margin"


def test_samples_themselves_are_mostly_far_from_the_boundary(small_run):
    """The margin test above means something: ordinary samples mostly fail it."""
    e = small_run.epochs[-1]
    with torch.no_grad():
        z = small_run.head(e)(torch.from_numpy(small_run.features(e))).numpy()
    assert (dvi_margin(z) < 0.1).mean() < 0.3


def test_boundary_samples_lie_between_many_class_pairs(small_run):
    e = small_run.epochs[-1]
    _, z = boundary_logits(small_run, e)
    top2 = np.sort(np.argsort(z, axis=1)[:, -2:], axis=1)
    pairs = {tuple(p) for p in top2.tolist()}
    assert len(pairs) >= 5, f"boundary samples only between {pairs}"


def test_boundary_count_is_ten_percent_of_the_training_samples(small_run):
    for e in small_run.epochs:
        b, _ = boundary_logits(small_run, e)
        assert len(b) == math.ceil(0.1 * SMALL_TRAIN)


def test_boundary_count_is_capped(tmp_path, digits_head):
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "r", labels=y, boundary_cap=25) as rec:
        rec.capture(features=X, head=head)
    b = load_npz(RunDir(tmp_path / "r").epoch_dir(1) / "features.npz")["boundary"]
    assert b.shape == (25, X.shape[1])


def test_features_only_boundary_samples_are_feature_space_mixes_near_the_boundary(tmp_path, digits_head):
    X, y, head = digits_head
    split = np.where(np.arange(len(y)) < 1500, "train", "test")
    with dvi.Recorder(tmp_path / "r", labels=y, split=split) as rec:
        rec.capture(features=X, head=head)
    b = load_npz(RunDir(tmp_path / "r").epoch_dir(1) / "features.npz")["boundary"]
    assert len(b) == 150
    with torch.no_grad():
        z = head(torch.from_numpy(b)).numpy()
    assert (dvi_margin(z) < 0.1).mean() >= 0.9
    # a mix lies in the convex hull of the data: within the per-feature range of the inputs
    assert (b >= X.min(0) - 1e-5).all() and (b <= X.max(0) + 1e-5).all()


def test_boundary_samples_are_deterministic_for_a_run(tmp_path, digits_head):
    X, y, head = digits_head
    out = []
    for name in ("a", "b"):
        with dvi.Recorder(tmp_path / name, labels=y) as rec:
            rec.capture(features=X, head=head)
        out.append(load_npz(RunDir(tmp_path / name).epoch_dir(1) / "features.npz")["boundary"])
    np.testing.assert_array_equal(out[0], out[1])
