"""Training dynamics (vis.dynamics): each statistic against a direct computation.

Forgetting events (Toneva et al. 2019), first-learned / never-learned, data cartography
(Swayamdipta et al. 2020), area under the margin (Pleiss et al. 2020) and prediction flips,
checked on a hand-made example whose answers are written out, on the shared small MNIST run
against a computation over the stacked epochs, and on the edge cases: one epoch, a class the
classifier never predicts, a run without stored features (AUM from probabilities). The last
test is the noisy-labels claim: on a small run with 10% of the training labels flipped, the
lowest 10% by AUM hold at least the share of flipped samples the notebook states.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import dvi_widget as dvi
from dvi_widget.analysis import DYNAMICS_COLUMNS, Table, training_dynamics
from engine_support import TINY_FIT

# The bound notebooks/noisy_labels.ipynb states: with 10% of the training labels flipped, the 10%
# of training samples with the lowest AUM contain at least this share of the flipped ones
# (random picking finds 10%).
AUM_TOP10_BOUND = 0.75


def stacked(vis, epochs=None):
    """(E, N) predictions, (E, N, C) probabilities and logits = head(features), straight from the run."""
    epochs = vis.epochs if epochs is None else epochs
    preds = np.stack([vis.predictions(e) for e in epochs])
    probs = np.stack([vis.probabilities(e) for e in epochs]).astype(np.float64)
    with torch.no_grad():
        logits = np.stack([vis.head(e)(torch.from_numpy(vis.features(e))).double().numpy() for e in epochs])
    return preds, probs, logits


def direct(epochs, labels, preds, probs, scores):
    """The statistics written the slow, obvious way (one sample at a time)."""
    E, N = preds.shape
    out = {k: np.zeros(N) for k in DYNAMICS_COLUMNS}
    for i in range(N):
        y = labels[i]
        correct = [preds[t, i] == y for t in range(E)]
        p = [probs[t, i, y] for t in range(E)]
        m = [scores[t, i, y] - max(scores[t, i, c] for c in range(scores.shape[2]) if c != y) for t in range(E)]
        out["forgetting_events"][i] = sum(1 for t in range(1, E) if correct[t - 1] and not correct[t])
        out["first_learned"][i] = next((epochs[t] for t in range(E) if correct[t]), np.nan)
        out["never_learned"][i] = not any(correct)
        out["confidence"][i] = np.mean(p)
        out["variability"][i] = np.std(p)
        out["correctness"][i] = np.mean(correct)
        out["aum"][i] = np.mean(m)
        out["flips"][i] = sum(1 for t in range(1, E) if preds[t, i] != preds[t - 1, i])
    return out


def assert_matches(table, expected, rtol=1e-6):
    for name, want in expected.items():
        got = np.asarray(table[name], dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6, equal_nan=True, err_msg=name)


def test_hand_made_example_gives_the_written_out_answers():
    # 3 samples, 4 epochs, 3 classes, labels 0, 1, 2.
    labels = np.array([0, 1, 2])
    preds = np.array([[0, 0, 1],   # epoch 10
                      [1, 1, 1],   # epoch 20
                      [0, 1, 0],   # epoch 30
                      [1, 1, 1]])  # epoch 40
    probs = np.zeros((4, 3, 3))
    for t in range(4):
        for i in range(3):
            probs[t, i] = 0.1
            probs[t, i, preds[t, i]] = 0.8
    out = training_dynamics([10, 20, 30, 40], labels, ((preds[t], probs[t], None) for t in range(4)))
    # sample 0: correct, wrong, correct, wrong -> forgotten twice, learned at 10, flips 3
    # sample 1: wrong, correct, correct, correct -> never forgotten, learned at 20, flips 1
    # sample 2: never correct (class 2 is never predicted) -> never learned, flips 2
    np.testing.assert_array_equal(out["forgetting_events"], [2, 0, 0])
    np.testing.assert_array_equal(out["first_learned"], [10, 20, np.nan])
    np.testing.assert_array_equal(out["never_learned"], [False, False, True])
    np.testing.assert_array_equal(out["flips"], [3, 1, 2])
    np.testing.assert_allclose(out["correctness"], [0.5, 0.75, 0.0])
    np.testing.assert_allclose(out["confidence"], [0.45, 0.625, 0.1])
    np.testing.assert_allclose(out["variability"], [0.35, np.sqrt(3) / 4 * 0.7, 0.0])
    # margin per epoch: +0.7 when the label is predicted, else -0.7 (label 0.1, other max 0.8)
    np.testing.assert_allclose(out["aum"], [0.0, 0.35, -0.7])


def test_small_run_statistics_equal_a_direct_computation(small_run):
    vis = small_run
    dyn = vis.dynamics(progress=False)
    assert list(dyn.index) == list(range(vis.n))
    assert dyn.attrs == {"epochs": vis.epochs, "aum_from": "logits"}
    np.testing.assert_array_equal(dyn["label"], vis.labels)
    np.testing.assert_array_equal(dyn["split"], vis.split)
    preds, probs, logits = stacked(vis)
    assert_matches(dyn, direct(vis.epochs, vis.labels, preds, probs, logits), rtol=1e-5)
    # the run is not degenerate: the statistics vary across samples
    assert dyn["forgetting_events"].max() >= 1 and dyn["flips"].max() >= 1 and dyn["first_learned"].nunique() >= 2


def test_upto_uses_the_epochs_so_far_and_one_epoch_has_no_events(small_run):
    vis = small_run
    first = vis.epochs[0]
    one = vis.dynamics(upto=first, progress=False)
    assert one.attrs["epochs"] == [first]
    correct = vis.predictions(first) == vis.labels
    assert (one["forgetting_events"] == 0).all() and (one["flips"] == 0).all()
    assert (one["variability"] == 0).all()
    np.testing.assert_array_equal(one["first_learned"].isna(), ~correct)
    assert (one.loc[correct, "first_learned"] == first).all()
    np.testing.assert_array_equal(one["never_learned"], ~correct)
    np.testing.assert_allclose(one["confidence"], vis.probabilities(first)[np.arange(vis.n), vis.labels], rtol=1e-6)
    two = vis.dynamics(epochs=vis.epochs[:2], progress=False)
    preds, probs, logits = stacked(vis, vis.epochs[:2])
    assert_matches(two, direct(vis.epochs[:2], vis.labels, preds, probs, logits), rtol=1e-5)


def test_unknown_epochs_and_margin_are_refused(small_run):
    with pytest.raises(dvi.DVIError, match=r"unknown epoch 99; valid epochs: \[1, 2, 3\]"):
        small_run.dynamics(upto=99)
    with pytest.raises(dvi.DVIError, match="unknown epoch"):
        small_run.dynamics(epochs=[1, 7])
    with pytest.raises(dvi.DVIError, match="margin must be one of"):
        small_run.dynamics(margin="logit")


def test_without_pandas_the_table_is_a_dict_of_the_same_arrays(small_run):
    df = small_run.dynamics(progress=False)
    table = small_run.dynamics(pandas=False, progress=False)
    assert isinstance(table, Table) and isinstance(table, dict)
    assert table.attrs == df.attrs and table.n_rows == small_run.n
    assert len(table) == len(df) == small_run.n       # rows, as a DataFrame counts them
    np.testing.assert_array_equal(table["sample"], np.arange(small_run.n))
    for name in DYNAMICS_COLUMNS:
        assert isinstance(table[name], np.ndarray)
        np.testing.assert_array_equal(table[name], df[name].to_numpy())


def test_a_class_never_predicted(tmp_path, digits_head):
    """A head that never predicts class 9: its samples are never learned, their AUM is negative."""
    from engine_support import record_features
    X, y, head = digits_head
    head = torch.nn.Linear(64, 10)
    head.load_state_dict(digits_head[2].state_dict())
    with torch.no_grad():
        head.bias[9] -= 1000.0
    X, y = X[:300], y[:300]
    rng = np.random.default_rng(1)
    feats = [(e, (X + 0.05 * e * rng.standard_normal(X.shape)).astype(np.float32)) for e in (1, 2)]
    vis = dvi.fit(record_features(tmp_path / "no9", feats, y, head), progress=False, **TINY_FIT)
    assert not any((vis.predictions(e) == 9).any() for e in vis.epochs)
    dyn = vis.dynamics(progress=False)
    nine = y == 9
    assert nine.sum() > 10
    assert dyn.loc[nine, "never_learned"].all() and (dyn.loc[nine, "correctness"] == 0).all()
    assert dyn.loc[nine, "first_learned"].isna().all() and (dyn.loc[nine, "aum"] < 0).all()
    preds, probs, logits = stacked(vis)
    assert_matches(dyn, direct(vis.epochs, y, preds, probs, logits), rtol=1e-5)


def test_aum_falls_back_to_probabilities_without_features(small_run_copy):
    for folder in (small_run_copy / "epochs").iterdir():
        os.remove(folder / "features.npz")
    vis = dvi.Visualization(small_run_copy)
    dyn = vis.dynamics(progress=False)
    assert dyn.attrs["aum_from"] == "probabilities"
    probs = np.stack([vis.probabilities(e) for e in vis.epochs]).astype(np.float64)
    preds = np.stack([vis.predictions(e) for e in vis.epochs])
    assert_matches(dyn, direct(vis.epochs, vis.labels, preds, probs, probs), rtol=1e-5)
    with pytest.raises(dvi.DVIError, match="margin='logits' needs the stored features"):
        vis.dynamics(margin="logits")


@pytest.fixture(scope="module")
def noisy_digits_run(tmp_path_factory):
    """A small real training run on noisy labels: an MLP on scikit-learn's digits, 10% of the
    training labels flipped to another class, 6 epochs captured (features = hidden layer)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    split = np.where(np.arange(len(y)) < 1500, "train", "test")
    train_idx = np.flatnonzero(split == "train")
    rng = np.random.default_rng(0)
    flipped = np.sort(rng.choice(train_idx, size=len(train_idx) // 10, replace=False))
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(X), torch.from_numpy(noisy)
    gen = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("noisy") / "run"
    with dvi.Recorder(path, inputs=xt, labels=noisy, split=split) as rec:
        for _ in range(6):
            perm = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
            for s in range(0, len(perm), 64):
                b = perm[s:s + 64]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
                opt.step()
            rec.capture(model, features=model[:2], head=model[2])
    return dvi.fit(path, progress=False, **TINY_FIT), flipped, train_idx


def test_lowest_aum_finds_the_flipped_labels(noisy_digits_run):
    vis, flipped, train_idx = noisy_digits_run
    dyn = vis.dynamics(progress=False)
    train = dyn[dyn["split"] == "train"]
    top = train.sort_values("aum").index[: len(train_idx) // 10]
    found = np.isin(flipped, top).mean()
    assert found >= AUM_TOP10_BOUND, f"lowest 10% by AUM hold {found:.0%} of the flipped labels"
    # and it is the ranking that finds them: the highest 10% hold almost none
    assert np.isin(flipped, train.sort_values("aum").index[-len(train_idx) // 10:]).mean() < 0.05


def test_the_page_knows_the_same_statistics():
    """js/src/dynamics.js lists the column names the widget accepts as colourings: the same as Python's."""
    import json
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[1] / "js" / "src" / "dynamics.js").read_text()
    names = json.loads(re.search(r"export const DYNAMICS_COLUMNS = (\[[^\]]*\]);", text).group(1))
    assert names == list(DYNAMICS_COLUMNS)
