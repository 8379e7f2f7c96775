"""The faithfulness figures agree with brute-force computations made here from the Visualization's arrays."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import NearestNeighbors

from dvi_widget.engine.knn import exact_knn
from dvi_widget.engine.metrics import query_subset, trustworthiness
from dvi_widget.store.rundir import RunDir, load_npz

K = 15
NAMES = ["nn_rate@15", "boundary_nn_rate@15", "ppr", "inv_conf_diff", "map_consistency", "accuracy"]


def knn_sets(ref, queries=None, k=K):
    """k nearest rows of ``ref`` for each query (the query itself excluded when queries is None)."""
    if queries is None:
        idx = NearestNeighbors(n_neighbors=k + 1).fit(ref).kneighbors(ref, return_distance=False)
        return [set(r[r != i][:k]) for i, r in enumerate(idx)]
    idx = NearestNeighbors(n_neighbors=k).fit(ref).kneighbors(queries, return_distance=False)
    return [set(r) for r in idx]


def by_split(values, split):
    out = {"": float(np.mean(values))}
    for s in ("train", "test"):
        out["/" + s] = float(np.mean(values[split == s]))
    return out


def check(metrics, name, values, split, tol):
    for suffix, v in by_split(np.asarray(values, np.float64), split).items():
        assert metrics[name + suffix] == pytest.approx(v, abs=tol), name + suffix


@pytest.fixture(scope="module")
def arrays(small_run):
    """Per epoch: features, embedding, boundary features and embedding, predictions, probabilities, round trip."""
    vis = small_run
    out = {}
    for e in vis.epochs:
        h = vis.features(e)
        emb = vis.embedding(e)
        b = load_npz(RunDir(vis.path).epoch_dir(e) / "features.npz", ("boundary",))["boundary"]
        head = vis.head(e)
        with torch.no_grad():
            rt_probs = torch.softmax(head(torch.from_numpy(vis.inverse(e, emb))), 1).numpy()
        out[e] = dict(h=h, emb=emb, b=b, bemb=vis.boundary_embedding(e), pred=vis.predictions(e),
                      probs=vis.probabilities(e), rt_probs=rt_probs)
    return out


def test_every_documented_metric_is_stored_for_every_epoch(small_run):
    assert sorted(small_run.metrics) == small_run.epochs
    for e, m in small_run.metrics.items():
        for name in NAMES:
            for suffix in ("", "/train", "/test"):
                assert np.isfinite(m[name + suffix]), (e, name + suffix)
        assert 0 <= m["trustworthiness@15"] <= 1


def test_nn_rate_matches_brute_force(small_run, arrays):
    split = small_run.split
    for e, a in arrays.items():
        high, low = knn_sets(a["h"]), knn_sets(a["emb"])
        rate = [len(hs & ls) / K for hs, ls in zip(high, low)]
        check(small_run.metrics[e], "nn_rate@15", rate, split, tol=0.005)


def test_boundary_nn_rate_matches_brute_force(small_run, arrays):
    split = small_run.split
    for e, a in arrays.items():
        high, low = knn_sets(a["b"], a["h"]), knn_sets(a["bemb"], a["emb"])
        rate = [len(hs & ls) / K for hs, ls in zip(high, low)]
        check(small_run.metrics[e], "boundary_nn_rate@15", rate, split, tol=0.005)


def test_trustworthiness_matches_sklearn(small_run, arrays):
    for e, a in arrays.items():
        ref = sk_trustworthiness(a["h"].astype(np.float64), a["emb"].astype(np.float64), n_neighbors=K)
        assert small_run.metrics[e]["trustworthiness@15"] == pytest.approx(ref, abs=2e-3)


def test_trustworthiness_function_matches_sklearn_on_digits(digits):
    X, _ = digits
    rng = np.random.default_rng(0)
    low = X[:, :2] + 0.5 * rng.standard_normal((len(X), 2))
    low_knn, _ = exact_knn(torch.from_numpy(low.astype(np.float32)), K)
    q = torch.arange(len(X))
    ours = trustworthiness(torch.from_numpy(X.astype(np.float64)), q, low_knn)
    assert ours == pytest.approx(sk_trustworthiness(X, low, n_neighbors=K), abs=1e-3)


def test_ppr_and_inverse_confidence_match_the_round_trip(small_run, arrays):
    split = small_run.split
    for e, a in arrays.items():
        keep = a["rt_probs"].argmax(1) == a["pred"]
        check(small_run.metrics[e], "ppr", keep, split, tol=0.003)
        rows = np.arange(len(a["pred"]))
        diff = np.abs(a["probs"][rows, a["pred"]] - a["rt_probs"][rows, a["pred"]])
        check(small_run.metrics[e], "inv_conf_diff", diff, split, tol=0.003)


def test_map_consistency_matches_decoding_the_pixel_under_each_sample(small_run, arrays):
    split = small_run.split
    for e, a in arrays.items():
        xmin, xmax, ymin, ymax = small_run.background_extent(e)
        size = small_run.background(e).shape[0]
        col = np.clip(np.floor((a["emb"][:, 0] - xmin) / (xmax - xmin) * size), 0, size - 1)
        row = np.clip(np.floor((ymax - a["emb"][:, 1]) / (ymax - ymin) * size), 0, size - 1)
        centre = np.stack([xmin + (col + 0.5) * (xmax - xmin) / size,
                           ymax - (row + 0.5) * (ymax - ymin) / size], 1).astype(np.float32)
        with torch.no_grad():
            pixel_class = small_run.head(e)(torch.from_numpy(small_run.inverse(e, centre))).argmax(1).numpy()
        check(small_run.metrics[e], "map_consistency", pixel_class == a["pred"], split, tol=0.005)


def test_accuracy_is_the_classifiers_own(small_run, arrays):
    for e, a in arrays.items():
        assert (a["probs"].argmax(1) == a["pred"]).all()
        check(small_run.metrics[e], "accuracy", a["pred"] == small_run.labels, small_run.split, tol=1e-9)


def test_stab_spearman_matches_scipy_on_step_sizes(small_run, arrays):
    epochs = small_run.epochs
    hs, ls = [], []
    for prev, e in zip(epochs, epochs[1:]):
        hs.append(np.linalg.norm(arrays[e]["h"].astype(np.float64) - arrays[prev]["h"], axis=1))
        ls.append(np.linalg.norm(arrays[e]["emb"].astype(np.float64) - arrays[prev]["emb"], axis=1))
    ref = spearmanr(np.concatenate(hs), np.concatenate(ls)).statistic
    assert small_run.summary["stab_spearman"] == pytest.approx(ref, abs=1e-3)


def test_query_subset_is_fixed_and_capped():
    assert np.array_equal(query_subset(1000), np.arange(1000))
    a, b = query_subset(12_000), query_subset(12_000)
    assert np.array_equal(a, b) and len(a) == 5000
    assert np.array_equal(np.unique(a), a) and a.max() < 12_000
