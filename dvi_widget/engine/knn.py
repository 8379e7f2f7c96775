"""Nearest neighbours: exact in torch up to ~50k points (CPU; far more on a GPU), pynndescent beyond.

Exact search is a chunked matrix product plus top-k; written here rather than taken from a
library because it runs on the GPU and starts instantly. Beyond :data:`EXACT_LIMIT` points on
the CPU its N^2 cost dominates a fit, so the graph comes from pynndescent (umap-learn's own
kNN; ``pip install dvi_widget[large]``), imported lazily: its first call in a process spends
a minute or more compiling with numba. pynndescent was chosen over faiss-cpu by measurement
(``benchmarks/knn.py``, table in benchmarks/README.md): at 100,000 x 128 and 200,000 x 64 it
built the graph 4x faster than faiss's HNSW index, at higher recall (0.997 against 0.985),
and faster than faiss's IVF index (recall 0.91). tests/test_scalable_stages.py checks both
paths against scikit-learn's exact neighbours.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

#: above this many points (on the CPU) the kNN graph comes from an approximate index
EXACT_LIMIT = 50_000
#: on a GPU the exact search stays faster than a CPU index far longer
EXACT_LIMIT_GPU = 1_000_000


def _chunk_rows(n_ref: int, device: torch.device) -> int:
    # keep one chunk's distance block near 64 MB (CPU) / 512 MB (GPU) of float32
    budget = (128 if device.type == "cuda" else 16) * 2 ** 20
    return int(max(64, min(8192, budget // max(n_ref, 1))))


@torch.no_grad()
def exact_knn(ref: torch.Tensor, k: int, queries: torch.Tensor | None = None,
              query_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest rows of ``ref`` for each query: (indices int64, Euclidean distances float32).

    With ``queries=None`` the queries are ``ref`` itself and each point is excluded from its
    own list; ``query_index`` does the same for queries that are rows of ``ref``. Cost:
    len(queries) x len(ref) x D, in chunks of bounded memory; for 2-D (or 1-D, 3-D) points on
    the CPU, a k-d tree instead (:func:`tree_knn`, N log N).
    """
    if ref.device.type == "cpu" and 1 <= ref.shape[1] <= TREE_MAX_DIM and len(ref) > 0:
        return tree_knn(ref, k, queries, query_index)
    self_query = queries is None
    if self_query:
        queries = ref
        query_index = torch.arange(len(ref), device=ref.device)
    k = min(k, len(ref) - (1 if query_index is not None else 0))
    ref_sq = (ref * ref).sum(1)
    ref_t = ref.T
    out_i, out_d = [], []
    step = _chunk_rows(len(ref), ref.device)
    for s in range(0, len(queries), step):
        q = queries[s:s + step]
        # |q|^2 + |r|^2 - 2 q.r, as one fused addmm (a broadcast sum of three blocks is ~8x slower)
        d2 = torch.addmm(ref_sq[None, :], q, ref_t, alpha=-2.0).add_((q * q).sum(1, keepdim=True))
        if query_index is not None:
            d2[torch.arange(len(q), device=q.device), query_index[s:s + step]] = float("inf")
        d, i = torch.topk(d2, k, dim=1, largest=False)
        out_i.append(i)
        out_d.append(d.clamp_min(0).sqrt())
    return torch.cat(out_i), torch.cat(out_d)


#: points of at most this many dimensions (the layout's 2-D positions) are searched with a k-d tree on the CPU
TREE_MAX_DIM = 3


@torch.no_grad()
def tree_knn(ref: torch.Tensor, k: int, queries: torch.Tensor | None = None,
             query_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`exact_knn` for low-dimensional points with scipy's k-d tree: exact, N log N.

    The metrics and the layout's diagnostics search 5,000 queries among every 2-D position; the
    matrix-product search costs queries x N (about 1.5 s at 100,000 points, measured), the tree
    milliseconds. Distances are computed in float64 (the matrix product's float32 expansion
    |q|^2 + |r|^2 - 2 q.r loses the nearest neighbours' digits).
    """
    from scipy.spatial import cKDTree
    self_query = queries is None
    if self_query:
        queries = ref
        query_index = torch.arange(len(ref))
    k = min(k, len(ref) - (1 if query_index is not None else 0))
    if k <= 0 or len(queries) == 0:
        return torch.zeros((len(queries), max(k, 0)), dtype=torch.long), torch.zeros((len(queries), max(k, 0)))
    data = ref.detach().double().numpy()
    tree = cKDTree(data)
    extra = 1 if query_index is not None else 0
    dist, idx = tree.query(queries.detach().double().numpy(), k=k + extra, workers=torch.get_num_threads())
    dist, idx = dist.reshape(len(queries), k + extra), idx.reshape(len(queries), k + extra).astype(np.int64)
    if query_index is not None:
        idx, dist = _drop_self(idx, dist, k, query_index.cpu().numpy())
    return torch.from_numpy(np.ascontiguousarray(idx)), torch.from_numpy(np.ascontiguousarray(dist, np.float32))


def _drop_self(idx: np.ndarray, dist: np.ndarray, k: int,
               own_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """From k + 1 neighbours that may include the point itself, the k nearest others.

    ``own_index``: each row's own index (default: the row number, when every point is a query)."""
    own = idx == (np.arange(len(idx)) if own_index is None else own_index)[:, None]
    # the point itself (normally column 0, but duplicates can reorder it) goes last, then is cut
    order = np.argsort(own, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _pynndescent_knn(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from pynndescent import NNDescent  # imported lazily: numba compiles on first use
    idx, dist = NNDescent(data, n_neighbors=k + 1, random_state=0, low_memory=True).neighbor_graph
    return idx.astype(np.int64), dist.astype(np.float32)


def approximate_backend() -> str | None:
    """The approximate kNN library this machine has: "pynndescent", or None."""
    from importlib.util import find_spec
    return "pynndescent" if find_spec("pynndescent") is not None else None


def approximate_knn(x: torch.Tensor, k: int, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest others of every row of ``x`` from pynndescent's approximate graph.

    Rows for which the index returns fewer than k others (marked -1) get their exact
    neighbours instead, so every row always has k.
    """
    backend = backend or approximate_backend()
    if backend != "pynndescent":
        raise ValueError(f"unknown kNN backend {backend!r}; valid: 'pynndescent'")
    data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    # pynndescent's numba shares torch's OpenMP runtime, and its first parallel call sets the OpenMP
    # thread count to every core, which overrode the fit's thread policy: seen in the 100k scaling run's
    # first epoch (benchmarks/README.md, Threads); a 3,000-point call in a fresh process did not show it
    threads = torch.get_num_threads()
    try:
        idx, dist = _pynndescent_knn(data, k)
    finally:
        torch.set_num_threads(threads)
    idx, dist = _drop_self(idx, dist, k)
    rows = torch.from_numpy(idx)
    dists = torch.from_numpy(np.ascontiguousarray(dist))
    bad = np.flatnonzero((idx < 0).any(1))
    if len(bad):
        b = torch.from_numpy(bad)
        bi, bd = exact_knn(x.detach().cpu().float(), k, queries=x.detach().cpu().float()[b], query_index=b)
        rows[b], dists[b] = bi, bd
    return rows.to(x.device), dists.to(x.device)


def knn_graph(x: torch.Tensor, k: int, method: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of every row of ``x`` among the others (self excluded), ascending.

    ``method``: "exact", "pynndescent", or "auto": exact up to :data:`EXACT_LIMIT` points on
    the CPU (:data:`EXACT_LIMIT_GPU` on a GPU), pynndescent beyond. Without pynndescent a
    warning names the extra and the search stays exact (correct, but its cost grows as N^2).
    """
    if method == "auto":
        limit = EXACT_LIMIT_GPU if x.device.type == "cuda" else EXACT_LIMIT
        if len(x) <= limit:
            method = "exact"
        else:
            method = approximate_backend() or "exact"
            if method == "exact":
                warnings.warn(f"{len(x):,} points and no approximate kNN library: the exact search grows as N^2; "
                              f"pip install 'dvi_widget[large]' (pynndescent) to make it scale", stacklevel=2)
    if method == "exact":
        return exact_knn(x, k)
    return approximate_knn(x, k, method)
