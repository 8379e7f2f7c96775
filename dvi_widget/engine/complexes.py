"""Stage 3: the edge set the projection is trained on.

The union of (a) UMAP's fuzzy simplicial set over every recorded sample's features (labels
are never used) and (b) a bipartite complex linking each sample to its k nearest boundary
samples. Nodes 0..N-1 are samples, N..N+M-1 boundary samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .fuzzy import bipartite_set, fuzzy_simplicial_set
from .knn import exact_knn, knn_graph


@dataclass
class Complex:
    edges: torch.Tensor      # (E, 2) int64 node indices
    weights: torch.Tensor    # (E,) float32 in (0, 1]
    knn: torch.Tensor        # (N, k) sample kNN (self excluded), also used by the temporal term
    n_samples: int
    n_boundary: int


def build_complex(features: torch.Tensor, boundary: torch.Tensor, k: int = 15) -> Complex:
    n, m = len(features), len(boundary)
    knn_idx, knn_dist = knn_graph(features, k)
    edges, weights = fuzzy_simplicial_set(knn_idx, knn_dist)
    if m > 0:
        kb = min(k, m)
        b_idx, b_dist = exact_knn(boundary, kb, queries=features)
        b_w = bipartite_set(b_dist).flatten()
        rows = torch.arange(n, device=features.device).repeat_interleave(kb)
        b_edges = torch.stack([rows, b_idx.flatten() + n], dim=1)
        keep = b_w > 0
        edges = torch.cat([edges, b_edges[keep]])
        weights = torch.cat([weights, b_w[keep].float()])
    return Complex(edges, weights, knn_idx, n, m)


def sampler(weights: torch.Tensor, generator: torch.Generator):
    """Draw edge indices in proportion to their weight (UMAP's rule), by inverse-CDF lookup."""
    cdf = torch.cumsum(weights.double(), 0)
    cdf = (cdf / cdf[-1]).float()

    def draw(n: int) -> torch.Tensor:
        u = torch.rand(n, generator=generator, device=generator.device).to(cdf.device)
        return torch.searchsorted(cdf, u).clamp_max(len(cdf) - 1)
    return draw
