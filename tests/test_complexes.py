"""Complexes: exact kNN, UMAP's fuzzy simplicial set (checked against umap-learn), the boundary complex."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dvi_widget.engine.complexes import build_complex, sampler
from dvi_widget.engine.fuzzy import fuzzy_simplicial_set
from dvi_widget.engine.knn import exact_knn, knn_graph

K = 15


@pytest.fixture(scope="module")
def digits_knn(digits):
    X, _ = digits
    idx, dist = exact_knn(torch.from_numpy(X), K)
    return X, idx, dist


def dense(edges: torch.Tensor, weights: torch.Tensor, n: int) -> np.ndarray:
    e = edges.numpy()
    return sp.coo_matrix((weights.numpy().astype(np.float64), (e[:, 0], e[:, 1])), shape=(n, n)).toarray()


def assert_valid_knn(ref, queries, idx, d_ref):
    """The returned neighbours are k distinct points at exactly sklearn's k smallest distances.

    (Integer pixel data has many equal distances, so among ties the indices may differ.)
    """
    assert all(len(set(r)) == len(r) for r in idx.tolist()), "a neighbour listed twice"
    true = np.linalg.norm(queries[:, None, :].astype(np.float64) - ref[idx].astype(np.float64), axis=2)
    np.testing.assert_allclose(np.sort(true, 1), d_ref, rtol=1e-6, atol=1e-6)


def test_exact_knn_agrees_with_sklearn(digits, digits_knn):
    from sklearn.neighbors import NearestNeighbors
    X, idx, dist = digits_knn
    d_ref, i_ref = NearestNeighbors(n_neighbors=K + 1).fit(X).kneighbors(X)
    # sklearn lists the point itself first; exact_knn excludes it
    np.testing.assert_allclose(dist.numpy(), d_ref[:, 1:], rtol=1e-4, atol=1e-3)
    assert_valid_knn(X, X, idx.numpy(), d_ref[:, 1:])
    assert not (idx.numpy() == np.arange(len(X))[:, None]).any(), "a point is never its own neighbour"


def test_exact_knn_with_separate_queries(digits):
    from sklearn.neighbors import NearestNeighbors
    X, _ = digits
    ref, q = torch.from_numpy(X[:1000]), torch.from_numpy(X[1000:1200])
    idx, dist = exact_knn(ref, 5, queries=q)
    d_ref, i_ref = NearestNeighbors(n_neighbors=5).fit(X[:1000]).kneighbors(X[1000:1200])
    np.testing.assert_allclose(dist.numpy(), d_ref, rtol=1e-4, atol=1e-3)
    assert_valid_knn(X[:1000], X[1000:1200], idx.numpy(), d_ref)


def test_knn_graph_uses_the_same_neighbours_as_exact_knn_on_small_data(digits_knn):
    X, idx, dist = digits_knn
    i2, d2 = knn_graph(torch.from_numpy(X), K)
    assert torch.equal(i2, idx)


def test_fuzzy_graph_is_symmetric_with_weights_in_0_1(digits_knn):
    X, idx, dist = digits_knn
    edges, w = fuzzy_simplicial_set(idx, dist)
    assert (w > 0).all() and (w <= 1 + 1e-6).all()
    assert not (edges[:, 0] == edges[:, 1]).any(), "no self loops"
    A = dense(edges, w, len(X))
    np.testing.assert_allclose(A, A.T, atol=1e-7)
    # every kNN pair is an edge
    rows = np.repeat(np.arange(len(X)), K)
    assert (A[rows, idx.numpy().ravel()] > 0).all()
    # each edge listed once per direction
    keys = edges[:, 0] * len(X) + edges[:, 1]
    assert len(torch.unique(keys)) == len(keys)


def test_fuzzy_simplicial_set_agrees_with_umap_learn(digits_knn):
    from umap.umap_ import fuzzy_simplicial_set as umap_fss
    X, idx, dist = digits_knn
    n = len(X)
    # umap counts each point as its own nearest neighbour at distance 0
    knn_i = np.concatenate([np.arange(n)[:, None], idx.numpy()], 1)
    knn_d = np.concatenate([np.zeros((n, 1), np.float32), dist.numpy()], 1)
    ref = umap_fss(X, n_neighbors=K + 1, random_state=np.random.RandomState(0), metric="euclidean",
                   knn_indices=knn_i, knn_dists=knn_d)[0]
    edges, w = fuzzy_simplicial_set(idx, dist)
    ours = dense(edges, w, n)
    ref = ref.toarray()
    assert np.abs(ours - ref).max() < 1e-4
    np.testing.assert_array_equal(ours > 0, ref > 0)


def test_fuzzy_graph_handles_duplicate_points():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    X[100:110] = X[0]              # ten exact copies of one point
    idx, dist = exact_knn(torch.from_numpy(X), K)
    edges, w = fuzzy_simplicial_set(idx, dist)
    assert torch.isfinite(w).all() and (w > 0).all() and (w <= 1 + 1e-6).all()


def test_boundary_complex_links_each_sample_to_its_nearest_boundary_samples(digits):
    X, _ = digits
    H, B = torch.from_numpy(X[:600]), torch.from_numpy(X[600:700])
    cx = build_complex(H, B, K)
    assert cx.n_samples == 600 and cx.n_boundary == 100
    bedges = cx.edges[cx.edges[:, 1] >= 600]
    assert (bedges[:, 0] < 600).all(), "boundary edges run from a sample to a boundary node"
    counts = torch.bincount(bedges[:, 0], minlength=600)
    assert (counts == K).all()
    nearest, _ = exact_knn(B, K, queries=H)
    got = bedges[:, 1].reshape(600, K) - 600   # edges are listed sample by sample
    assert torch.equal(torch.sort(got, 1).values, torch.sort(nearest, 1).values)
    w = cx.weights
    assert (w > 0).all() and (w <= 1 + 1e-6).all()


def test_labels_are_never_used_to_build_the_complex(digits):
    X, y = digits
    H = torch.from_numpy(X[:500])
    a = build_complex(H, H[:40], K)
    b = build_complex(H, H[:40], K)
    assert torch.equal(a.edges, b.edges) and torch.equal(a.weights, b.weights)
    import inspect
    assert "label" not in inspect.signature(build_complex).parameters


def test_edges_are_sampled_in_proportion_to_their_weight():
    w = torch.tensor([0.1, 0.2, 0.7, 0.0])
    draw = sampler(w, torch.Generator().manual_seed(0))
    counts = torch.bincount(draw(200_000), minlength=4).double() / 200_000
    np.testing.assert_allclose(counts.numpy(), [0.1, 0.2, 0.7, 0.0], atol=0.005)


from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


@settings(max_examples=40, deadline=None)
@given(st.integers(20, 80).flatmap(lambda n: st.tuples(
    arrays(np.float32, (n, 3), elements=st.floats(-100, 100, width=32)),
    st.integers(2, 10))))
def test_fuzzy_graph_properties_hold_for_any_point_cloud(case):
    """Symmetric with weights in (0, 1], also with duplicates and odd scales (far kNN pairs whose
    membership underflows to 0 are dropped, as umap-learn drops them)."""
    X, k = case
    X = X.copy()
    X[: len(X) // 4] = X[0]          # a block of duplicates
    idx, dist = exact_knn(torch.from_numpy(X), k)
    edges, w = fuzzy_simplicial_set(idx, dist)
    assert torch.isfinite(w).all() and (w > 0).all() and (w <= 1 + 1e-6).all()
    A = dense(edges, w, len(X))
    np.testing.assert_allclose(A, A.T, atol=1e-6)
    assert not np.diag(A).any()
    # each point keeps its nearest neighbour (membership 1 within rho)
    assert (A[np.arange(len(X)), idx[:, 0].numpy()] > 0).all()
