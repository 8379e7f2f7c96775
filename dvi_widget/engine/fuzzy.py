"""Stage 3a: UMAP's fuzzy simplicial set, in torch.

Written here rather than calling umap-learn so it runs on the GPU and avoids numba's
compile time on the first call; tests/test_complexes.py checks it against umap-learn's
``fuzzy_simplicial_set``. The ``k`` neighbours passed in exclude the point itself, which
matches umap-learn with ``n_neighbors = k + 1`` (umap counts the point as its own neighbour).
"""
from __future__ import annotations

import math

import torch

SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3


@torch.no_grad()
def smooth_knn_dist(dists: torch.Tensor, n_neighbors: float, n_iter: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (sigma, rho) as umap-learn's ``smooth_knn_dist`` with local_connectivity = 1.

    ``dists`` (N, k) are the distances to the k nearest others, ascending.
    """
    d = dists.double()
    n, k = d.shape
    target = math.log2(n_neighbors)
    pos = d > 0
    first = torch.where(pos.any(1), pos.float().argmax(1), torch.zeros(n, dtype=torch.long, device=d.device))
    rho = torch.where(pos.any(1), d.gather(1, first[:, None]).squeeze(1), torch.zeros(n, dtype=d.dtype, device=d.device))
    lo = torch.zeros(n, dtype=d.dtype, device=d.device)
    hi = torch.full((n,), math.inf, dtype=d.dtype, device=d.device)
    mid = torch.ones(n, dtype=d.dtype, device=d.device)
    done = torch.zeros(n, dtype=torch.bool, device=d.device)
    gap = d - rho[:, None]
    for _ in range(n_iter):
        psum = torch.where(gap > 0, torch.exp(-gap / mid[:, None]), torch.ones_like(gap)).sum(1)
        done = done | ((psum - target).abs() < SMOOTH_K_TOLERANCE)
        if bool(done.all()):
            break
        over = (psum > target) & ~done
        under = ~over & ~done
        hi = torch.where(over, mid, hi)
        lo = torch.where(under, mid, lo)
        mid = torch.where(over, (lo + hi) / 2, mid)
        mid = torch.where(under & torch.isinf(hi), mid * 2, torch.where(under, (lo + hi) / 2, mid))
    sigma = mid
    # umap's means include the point itself (distance 0) among its n_neighbors
    row_mean = d.sum(1) / (k + 1)
    all_mean = d.sum() / (n * (k + 1))
    floor = torch.where(rho > 0, MIN_K_DIST_SCALE * row_mean, MIN_K_DIST_SCALE * all_mean)
    sigma = torch.maximum(sigma, floor)
    return sigma.float(), rho.float()


@torch.no_grad()
def memberships(dists: torch.Tensor, sigma: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """exp(-(d - rho) / sigma), 1 within rho: the directed fuzzy memberships (N, k)."""
    gap = dists - rho[:, None]
    vals = torch.exp(-gap.clamp_min(0) / sigma[:, None])
    return torch.where((gap <= 0) | (sigma[:, None] == 0), torch.ones_like(vals), vals)


@torch.no_grad()
def fuzzy_simplicial_set(knn_idx: torch.Tensor, knn_dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric fuzzy graph as COO (edges (E, 2) int64, weights (E,) float32 in (0, 1]).

    The fuzzy union: P = A + A^T - A * A^T, with every undirected edge listed both ways.
    """
    n, k = knn_idx.shape
    sigma, rho = smooth_knn_dist(knn_dist, k + 1)
    vals = memberships(knn_dist, sigma, rho).flatten()
    rows = torch.arange(n, device=knn_idx.device).repeat_interleave(k)
    cols = knn_idx.flatten()
    keys = rows * n + cols
    keys_t = cols * n + rows
    # A_ij * A_ji for pairs present in both directions
    order = torch.argsort(keys)
    sorted_keys = keys[order]
    pos = torch.searchsorted(sorted_keys, keys_t).clamp_max(len(keys) - 1)
    both = sorted_keys[pos] == keys_t
    vals_t_match = torch.where(both, vals[order][pos], torch.zeros_like(vals))
    # union over both directions: sum values per key, subtract the product once per key
    all_keys = torch.cat([keys, keys_t])
    all_vals = torch.cat([vals, vals])
    prod = torch.cat([vals * vals_t_match, torch.zeros_like(vals)])
    uniq, inv = torch.unique(all_keys, return_inverse=True)
    total = torch.zeros(len(uniq), dtype=vals.dtype, device=vals.device).index_add_(0, inv, all_vals)
    total.index_add_(0, inv, -prod)
    keep = total > 0
    uniq, total = uniq[keep], total[keep]
    edges = torch.stack([uniq // n, uniq % n], dim=1)
    return edges, total.float()


@torch.no_grad()
def bipartite_set(knn_dist: torch.Tensor) -> torch.Tensor:
    """Memberships from each sample to its k nearest boundary samples (N, k), same local scaling."""
    sigma, rho = smooth_knn_dist(knn_dist, knn_dist.shape[1] + 1)
    return memberships(knn_dist, sigma, rho)
