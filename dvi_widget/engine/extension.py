"""``vis.project``'s out-of-sample extension: the encoder plus an interpolated correction.

The layout engine shows positions laid out by UMAP's SGD; the encoder is regressed onto them and
misses by about 1% of the extent (``project_error_encoder``). ``project`` therefore adds to the
encoder's output a correction interpolated from the recorded samples nearest in feature space:

    project(h) = encode(h) + sum_j w_j r_j / sum_j w_j,   r_j = shown_j - encode(h_j),
    w_j = 1 / (|h - h_j|^2 + eps),   j over the k recorded samples nearest to h

This is Shepard's inverse-distance interpolation of the residual field: a genuine interpolant,
so a recorded sample's own features land where it is shown (project_error ~0 by construction),
and new features land at the encoder's position moved as their nearest recorded samples' were,
i.e. among their high-D neighbours, in the spirit of umap-learn's ``transform``. The metric
``project_error_heldout`` measures it honestly for unseen features: each sample is projected
with itself left out of the recorded set.

For a parametric engine the residuals are 0 and project is the encoder alone.
"""
from __future__ import annotations

import torch

from .knn import exact_knn
from .vismodel import VisModel, batched

K_EXTENSION = 15


@torch.no_grad()
def shepard(residual: torch.Tensor, idx: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Inverse-squared-distance weighted mean of ``residual[idx]`` per row; exact where a distance is 0.

    idx, dist: (M, k) neighbours and their feature-space distances; residual: (N, 2).
    """
    if idx.shape[1] == 0:
        return residual.new_zeros((len(idx), 2))
    d2 = dist.double().pow(2)
    # eps: far below any real neighbour distance, so a query equal to a recorded sample takes its residual
    eps = 1e-10 * float(d2.mean().clamp_min(1e-30))
    w = 1.0 / (d2 + eps)
    return ((w[:, :, None] * residual[idx].double()).sum(1) / w.sum(1, keepdim=True)).float()


@torch.no_grad()
def project_features(model: VisModel, recorded: torch.Tensor | None, shown: torch.Tensor | None,
                     features: torch.Tensor, k: int = K_EXTENSION,
                     neighbours: tuple[torch.Tensor, torch.Tensor] | None = None,
                     encoded: torch.Tensor | None = None) -> torch.Tensor:
    """(M, 2) positions of ``features`` on an epoch's map: encoder + interpolated residual.

    recorded, shown: the epoch's recorded features (N, D) and shown positions (N, 2); without them
    (a saved copy lacks the features) the encoder alone answers. neighbours: precomputed (idx, dist)
    of the queries among ``recorded`` (the fit reuses its kNN graph); encoded: encode(recorded),
    when already computed.
    """
    base = batched(model.encode, features)
    if recorded is None or shown is None or not len(recorded) or not len(features):
        return base
    if encoded is None:
        encoded = batched(model.encode, recorded)
    residual = shown.float() - encoded
    if neighbours is None:
        idx, _ = exact_knn(recorded, min(k, len(recorded)), queries=features)
        # distances recomputed directly: the search's |q|^2 + |r|^2 - 2 q.r loses a query's 0 to itself
        dist = torch.cat([(features[s:s + 4096, None, :] - recorded[idx[s:s + 4096]]).norm(dim=2)
                          for s in range(0, len(features), 4096)])
    else:
        idx, dist = neighbours
    return base + shepard(residual, idx, dist)


__all__ = ["project_features", "shepard", "K_EXTENSION"]
