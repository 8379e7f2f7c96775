"""Nearest neighbours: exact in torch (CPU or GPU) up to ~50k points, pynndescent beyond.

Exact search is a chunked matrix product plus top-k; written here rather than taken from a
library because it runs on the GPU and starts instantly (pynndescent spends seconds
compiling with numba on its first call). tests/test_complexes.py checks it against scikit-learn.
"""
from __future__ import annotations

import numpy as np
import torch

EXACT_LIMIT = 50_000


def _chunk_rows(n_ref: int, device: torch.device) -> int:
    # keep one chunk's distance block near 64 MB (CPU) / 512 MB (GPU)
    budget = (128 if device.type == "cuda" else 16) * 2 ** 20
    return int(max(64, min(8192, budget // max(n_ref, 1))))


@torch.no_grad()
def exact_knn(ref: torch.Tensor, k: int, queries: torch.Tensor | None = None,
              query_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest rows of ``ref`` for each query: (indices int64, Euclidean distances float32).

    With ``queries=None`` the queries are ``ref`` itself and each point is excluded from its
    own list; ``query_index`` does the same for queries that are rows of ``ref``.
    """
    self_query = queries is None
    if self_query:
        queries = ref
        query_index = torch.arange(len(ref), device=ref.device)
    k = min(k, len(ref) - (1 if query_index is not None else 0))
    ref_sq = (ref * ref).sum(1)
    out_i, out_d = [], []
    step = _chunk_rows(len(ref), ref.device)
    for s in range(0, len(queries), step):
        q = queries[s:s + step]
        d2 = (q * q).sum(1, keepdim=True) + ref_sq[None, :] - 2.0 * (q @ ref.T)
        if query_index is not None:
            d2[torch.arange(len(q), device=q.device), query_index[s:s + step]] = float("inf")
        d, i = torch.topk(d2, k, dim=1, largest=False)
        out_i.append(i)
        out_d.append(d.clamp_min(0).sqrt())
    return torch.cat(out_i), torch.cat(out_d)


def knn_graph(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of every row of ``x`` among the others (self excluded)."""
    if len(x) <= EXACT_LIMIT:
        return exact_knn(x, k)
    from pynndescent import NNDescent  # imported lazily: numba compiles on first use
    data = x.detach().cpu().numpy().astype(np.float32)
    index = NNDescent(data, n_neighbors=k + 1, random_state=0, low_memory=True)
    idx, dist = index.neighbor_graph
    # drop each point itself (normally column 0, but duplicates can reorder it)
    keep = idx != np.arange(len(idx))[:, None]
    rows = np.stack([r[m][:k] for r, m in zip(idx, keep)])
    dists = np.stack([r[m][:k] for r, m in zip(dist, keep)])
    return torch.from_numpy(rows).to(x.device), torch.from_numpy(dists.astype(np.float32)).to(x.device)
