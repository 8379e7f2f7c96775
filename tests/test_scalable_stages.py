"""The stages whose cost grows with N, each checked against a brute-force version on small data.

- kNN above the exact limit comes from an approximate index (pynndescent): it must
  find (nearly) the true neighbours, at their true distances, never the point itself.
- Trustworthiness is computed on a fixed subset of queries with neighbours among all samples:
  with every sample a query it equals scikit-learn's; on a subset it equals the same formula
  computed by brute force over those queries, and estimates the full figure closely.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import NearestNeighbors

from dvi_widget.engine import knn as knn_mod
from dvi_widget.engine.knn import approximate_backend, approximate_knn, exact_knn, knn_graph
from dvi_widget.engine.metrics import query_subset, trustworthiness

K = 15
BACKENDS = [b for b in ("pynndescent",) if __import__("importlib.util").util.find_spec(b)]


@pytest.fixture(scope="module")
def digits_truth(digits):
    """Digits features (float64 distances are exact) and sklearn's exact neighbours, self excluded."""
    X, _ = digits
    X = X + np.random.default_rng(0).normal(0, 1e-3, X.shape).astype(np.float32)   # no distance ties
    d, i = NearestNeighbors(n_neighbors=K + 1).fit(X).kneighbors(X)
    return X, i[:, 1:], d[:, 1:]


def recall(idx: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(idx, truth)]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_approximate_knn_finds_the_true_neighbours_at_their_true_distances(digits_truth, backend):
    X, truth, d_truth = digits_truth
    idx, dist = approximate_knn(torch.from_numpy(X), K, backend)
    idx, dist = idx.numpy(), dist.numpy()
    assert idx.shape == (len(X), K) and dist.shape == (len(X), K)
    assert not (idx == np.arange(len(X))[:, None]).any(), "a point is never its own neighbour"
    assert all(len(set(r)) == K for r in idx.tolist()), "k distinct neighbours"
    assert (np.diff(dist, axis=1) >= -1e-5).all(), "ascending distances"
    true_d = np.linalg.norm(X[:, None, :].astype(np.float64) - X[idx].astype(np.float64), axis=2)
    np.testing.assert_allclose(dist, true_d, rtol=1e-4, atol=1e-3)
    assert recall(idx, truth) >= 0.97, f"{backend} recall@15 {recall(idx, truth):.3f}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_approximate_knn_handles_many_duplicates(backend):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((600, 8)).astype(np.float32)
    X[100:160] = X[0]                       # 61 copies of one point: more than k + 1
    idx, dist = approximate_knn(torch.from_numpy(X), K, backend)
    idx = idx.numpy()
    assert (idx >= 0).all() and not (idx == np.arange(len(X))[:, None]).any()
    assert all(len(set(r)) == K for r in idx.tolist())
    dup = np.r_[0, 100:160]
    assert np.isin(idx[dup], dup).all(), "a duplicated point's nearest others are its copies"
    assert (dist.numpy()[dup] == 0).all()


def test_knn_graph_switches_to_the_approximate_index_above_the_exact_limit(digits_truth, monkeypatch):
    if not BACKENDS:
        pytest.skip("no approximate kNN library installed")
    X, truth, _ = digits_truth
    calls = []
    real = knn_mod.approximate_knn
    monkeypatch.setattr(knn_mod, "approximate_knn", lambda x, k, b=None: calls.append(b) or real(x, k, b))
    exact_i, _ = knn_graph(torch.from_numpy(X), K)
    assert calls == [], "at or below the limit the search is exact"
    assert recall(exact_i.numpy(), truth) == pytest.approx(1.0)
    monkeypatch.setattr(knn_mod, "EXACT_LIMIT", len(X) - 1)
    idx, _ = knn_graph(torch.from_numpy(X), K)
    assert calls == [approximate_backend()], "above the limit the installed approximate library is used"
    assert recall(idx.numpy(), truth) >= 0.97


def test_without_an_approximate_library_the_search_stays_exact_and_says_so(digits_truth, monkeypatch):
    X, truth, _ = digits_truth
    monkeypatch.setattr(knn_mod, "EXACT_LIMIT", 100)
    monkeypatch.setattr(knn_mod, "approximate_backend", lambda: None)
    with pytest.warns(UserWarning, match=r"dvi_widget\[large\]"):
        idx, _ = knn_graph(torch.from_numpy(X), K)
    assert recall(idx.numpy(), truth) == pytest.approx(1.0)


def test_approximate_libraries_are_imported_only_when_used():
    code = ("import sys, dvi_widget, dvi_widget.engine.fitting, dvi_widget.engine.knn; "
            "print(sorted(m for m in ('pynndescent', 'numba', 'umap') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_exact_knn_matches_brute_force_in_float64(digits_truth):
    X, truth, d_truth = digits_truth
    idx, dist = exact_knn(torch.from_numpy(X), K)
    assert recall(idx.numpy(), truth) == pytest.approx(1.0)
    np.testing.assert_allclose(dist.numpy(), d_truth, rtol=1e-4, atol=1e-3)


def test_2d_searches_use_a_kd_tree_that_matches_brute_force():
    """The metrics' 2-D searches (every layout position, 5,000 queries) go through a k-d tree:
    the same neighbours as a float64 brute force, the query itself excluded even among duplicates."""
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(800, 2)).astype(np.float32)
    pos[100:120] = pos[99]                                   # 21 points on one spot
    d = ((pos[:, None, :].astype(np.float64) - pos[None, :, :]) ** 2).sum(2)
    np.fill_diagonal(d, np.inf)
    q = np.array([0, 5, 99, 100, 119, 799])
    idx, dist = exact_knn(torch.from_numpy(pos), K, queries=torch.from_numpy(pos[q]), query_index=torch.from_numpy(q))
    assert idx.dtype == torch.int64 and dist.dtype == torch.float32 and idx.shape == (len(q), K)
    assert not (idx.numpy() == q[:, None]).any(), "a query is never its own neighbour"
    np.testing.assert_allclose(dist.numpy(), np.sqrt(np.sort(d[q], 1)[:, :K]), atol=1e-6)
    for row, i in zip(idx.numpy(), q):
        assert np.allclose(np.sort(d[i, row]), np.sort(d[i])[:K]), "the k nearest, ties in any order"
    other, _ = exact_knn(torch.from_numpy(pos), K, queries=torch.from_numpy(pos[:5]))   # plain queries keep self
    assert (other[:, 0].numpy() == np.arange(5)).all()


# ----------------------------------------------------------------------------- trustworthiness
def brute_trustworthiness(X: np.ndarray, low: np.ndarray, queries: np.ndarray, k: int = K) -> float:
    """sklearn's formula over the given queries: full float64 distance ranks (argsort), no shortcuts."""
    n = len(X)
    from sklearn.metrics import pairwise_distances
    d = pairwise_distances(X.astype(np.float64), metric="sqeuclidean")
    np.fill_diagonal(d, np.inf)
    rank = np.empty((n, n), np.int64)
    order = np.argsort(d, axis=1)
    rank[np.arange(n)[:, None], order] = np.arange(1, n + 1)[None, :]
    ld = pairwise_distances(low.astype(np.float64), metric="sqeuclidean")
    np.fill_diagonal(ld, np.inf)
    low_nn = np.argsort(ld, axis=1)[:, :k]
    t = sum(np.maximum(rank[i, low_nn[i]] - k, 0).sum() for i in queries)
    return 1.0 - 2.0 * t / (len(queries) * k * (2.0 * n - 3.0 * k - 1.0))


@pytest.fixture(scope="module")
def digits_layouts(digits_truth):
    """The digits features with three 2-D layouts: good (PCA + noise), poor, random."""
    X, _, _ = digits_truth
    rng = np.random.default_rng(0)
    Xc = X - X.mean(0)
    pca = Xc @ np.linalg.svd(Xc, full_matrices=False)[2][:2].T
    return X, {"pca": pca.astype(np.float32),
               "noisy": (pca + rng.normal(0, pca.std() * 0.5, pca.shape)).astype(np.float32),
               "random": rng.normal(size=(len(X), 2)).astype(np.float32)}


def ours(X, low, queries):
    """The engine's trustworthiness (in float64, as the references compute it)."""
    q = torch.from_numpy(queries)
    lowt = torch.from_numpy(low.astype(np.float64))
    low_nn, _ = exact_knn(lowt, K, queries=lowt[q], query_index=q)
    return trustworthiness(torch.from_numpy(X.astype(np.float64)), q, low_nn)


@pytest.mark.parametrize("layout", ["pca", "noisy", "random"])
def test_trustworthiness_with_every_sample_a_query_equals_sklearn(digits_layouts, layout):
    X, lows = digits_layouts
    low = lows[layout]
    ref = sk_trustworthiness(X.astype(np.float64), low.astype(np.float64), n_neighbors=K)
    assert ours(X, low, np.arange(len(X))) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("layout", ["pca", "noisy", "random"])
def test_sampled_trustworthiness_ranks_among_all_samples(digits_layouts, layout):
    """On 400 of 1,797 queries: exactly the brute-force figure over those queries (neighbours among
    all samples), and within 0.02 of the figure over every sample."""
    X, lows = digits_layouts
    low = lows[layout]
    q = query_subset(len(X), max_queries=400)
    assert len(q) == 400
    got = ours(X, low, q)
    assert got == pytest.approx(brute_trustworthiness(X, low, q), abs=1e-6)
    full = sk_trustworthiness(X.astype(np.float64), low.astype(np.float64), n_neighbors=K)
    assert got == pytest.approx(full, abs=0.02)


@pytest.mark.parametrize("reach", [0.001, 0.03, 0.5, 1.0])
def test_counting_nearer_samples_matches_brute_force(reach):
    """Both counting paths (few samples nearer than the farthest 2-D neighbour: sparse; many: buckets of
    sorted thresholds) give exactly the brute-force count of strictly nearer samples, ties included."""
    from dvi_widget.engine.metrics import _count_nearer
    g = torch.Generator().manual_seed(0)
    d2 = torch.rand(64, 3000, generator=g)
    d2[:, :50] = 0.0005                                   # ties
    dj = torch.rand(64, K, generator=g) * reach
    dj[:, 0] = d2[:, 7]                                   # a threshold equal to a distance
    brute = (d2[:, None, :] < dj[:, :, None]).sum(2).double()
    assert torch.equal(_count_nearer(d2, dj), brute)


def test_epoch_trustworthiness_averages_a_fixed_subset_of_the_queries(digits_layouts, monkeypatch):
    """Above TRUST_QUERIES queries, trustworthiness@15 is the brute-force figure over a fixed random
    subset of them (the same every epoch): its cost is a full distance row per query."""
    from dvi_widget.engine import metrics
    X, layouts = digits_layouts
    low = layouts["noisy"]
    n = len(X)
    queries = query_subset(n, 1000)
    monkeypatch.setattr(metrics, "TRUST_QUERIES", 300)
    knn, _ = exact_knn(torch.from_numpy(X), K)
    probs = np.eye(10)[np.arange(n) % 10]
    m = metrics.epoch_metrics(features=torch.from_numpy(X), boundary=torch.zeros((0, X.shape[1])),
                              embedding=torch.from_numpy(low), boundary_embedding=torch.zeros((0, 2)), knn=knn,
                              queries=queries, probs=probs, recon_probs=probs, labels=np.arange(n) % 10,
                              split=np.array(["train"] * n), grid_class=np.zeros((8, 8), np.int64),
                              extent=(float(low[:, 0].min()), float(low[:, 0].max()), float(low[:, 1].min()),
                                      float(low[:, 1].max())))
    subset = queries[query_subset(len(queries), 300, seed=1)]
    assert len(np.unique(subset)) == 300
    assert m["trustworthiness@15"] == pytest.approx(brute_trustworthiness(X, low, subset), abs=1e-4)
    assert m["trustworthiness@15"] != pytest.approx(brute_trustworthiness(X, low, queries[:300]), abs=1e-4)
