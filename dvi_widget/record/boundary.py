"""Stage 2: DVI's boundary samples, by batched mixup and bisection.

Pairs of training samples with different predicted classes are mixed, x = l*x1 + (1-l)*x2,
and l is bisected until the top-2 logits nearly tie: DVI's margin (z1 - z2) / (z1 - z_min)
below 0.1. DVI bisected one pair at a time; here every pair advances one step per forward pass.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

MARGIN = 0.1


def tie_margin(logits: torch.Tensor) -> torch.Tensor:
    """DVI's normalised top-2 margin (z1 - z2) / (z1 - z_min), in [0, 1]."""
    top2 = logits.topk(2, dim=1).values
    zmin = logits.min(dim=1).values
    return (top2[:, 0] - top2[:, 1]) / (top2[:, 0] - zmin).clamp_min(1e-12)


def choose_pairs(probs: np.ndarray, preds: np.ndarray, candidates: np.ndarray, n_pairs: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(P, 2) index pairs with different predictions, favouring samples near a boundary.

    A sample is drawn with weight (1 - its top-1/top-2 probability margin) + 0.05, so
    uncertain samples are picked more often while confident ones still appear.
    """
    if len(np.unique(preds[candidates])) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    p = np.sort(probs[candidates], axis=1)
    w = (1.0 - (p[:, -1] - p[:, -2])) + 0.05
    w = w / w.sum()
    first = rng.choice(candidates, size=n_pairs, p=w)
    tries = rng.choice(candidates, size=(n_pairs, 8), p=w)
    ok = preds[tries] != preds[first][:, None]
    has = ok.any(axis=1)
    second = tries[np.arange(n_pairs), ok.argmax(axis=1)]
    return np.stack([first[has], second[has]], axis=1)


@torch.no_grad()
def bisect(mix_logits: Callable[[np.ndarray, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
           pairs: np.ndarray, c1: torch.Tensor, c2: torch.Tensor, max_steps: int = 16
           ) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Bisect the mixing weight of every pair at once.

    ``mix_logits(rows, lam)`` returns (features, logits) of the mixes for the pairs ``rows``.
    Returns the indices of pairs that reached the margin, their lambdas and features.
    """
    n = len(pairs)
    lo = torch.zeros(n)          # l = 0 is pure x2 (class c2)
    hi = torch.ones(n)           # l = 1 is pure x1 (class c1)
    active = np.arange(n)
    done_rows, done_lam, done_feat = [], [], []
    for _ in range(max_steps):
        if len(active) == 0:
            break
        mid = (lo[active] + hi[active]) / 2
        feats, logits = mix_logits(active, mid)
        rows_t = torch.from_numpy(active)
        s = logits.gather(1, c1[rows_t, None]).squeeze(1) - logits.gather(1, c2[rows_t, None]).squeeze(1)
        hit = tie_margin(logits) < MARGIN
        if hit.any():
            done_rows.append(active[hit.numpy()])
            done_lam.append(mid[hit])
            done_feat.append(feats[hit])
        up = s > 0   # c1 still wins at mid: the boundary is nearer x2
        hi[rows_t[up]] = mid[up]
        lo[rows_t[~up]] = mid[~up]
        active = active[~hit.numpy()]
    if not done_rows:
        return np.zeros(0, dtype=np.int64), torch.zeros(0), torch.zeros(0, 0)
    return np.concatenate(done_rows), torch.cat(done_lam), torch.cat(done_feat)


def boundary_count(n_train: int, cap: int) -> int:
    return int(min(cap, int(np.ceil(0.1 * n_train))))
