"""Stage 4a (layout engine): place every node (recorded and boundary samples) in 2-D with UMAP's SGD.

This is umap-learn's ``optimize_layout_euclidean`` (umap/layouts.py) rewritten as whole-tensor
torch operations, so one pass over the edge set is a handful of vectorised kernels (CPU or GPU)
instead of a numba loop, and so a warm start and an alignment pull can be added:

- each edge (i, j) of weight w is sampled every ``w_max / w`` layout epochs (umap's
  ``make_epochs_per_sample``), edges lighter than ``w_max / n_epochs`` are dropped as umap drops them;
- a sampled edge pulls both ends together with umap's attractive gradient
  ``-2ab d^(2(b-1)) / (1 + a d^(2b)) (y_i - y_j)``, and pushes its head away from ``negative_sample_rate``
  uniformly drawn nodes with ``2 gamma b / ((0.001 + d^2)(1 + a d^(2b))) (y_i - y_k)``; every
  per-edge gradient is clipped to [-4, 4] per coordinate, as umap clips it;
- the learning rate decays linearly to 0 over the epochs.

The one departure from umap-learn: on a GPU all edges sampled in a layout epoch are applied at
once (synchronous, from the positions at the start of the epoch) rather than one after another
(Hogwild); per-edge clipping keeps that stable, and tests/test_layout.py checks the result keeps
neighbourhoods as well as umap-learn does. On the CPU the passes run as a compiled loop
(engine/sgd.py), by default sequential within fixed chunks of edges, which does more per pass.

Warm start (epochs after the first): positions start at the previous epoch's, and each node is
pulled toward its previous position with strength ``align_weight * overlap_i`` per layout epoch
(decayed with the learning rate), where ``overlap_i`` is the Jaccard overlap of sample i's high-D
kNN sets at t-1 and t. Samples whose neighbourhoods stayed put stay put; the others follow their
new neighbours. This is AlignedUMAP's idea (umap/aligned_umap.py) reduced to a per-point anchor.
"""
from __future__ import annotations

import torch

from .rng import on_device, randint

CLIP = 4.0


def pca_init(x: torch.Tensor, generator: torch.Generator, max_coord: float = 10.0) -> torch.Tensor:
    """umap-learn's ``init="pca"``: the first two principal components scaled to [0, max_coord].

    Features with no spread at all give a random init in the same box (a PCA of nothing).
    """
    xc = x - x.mean(0)
    if float(xc.abs().max()) == 0.0 or len(x) < 3:
        y = torch.rand((len(x), 2), generator=generator).to(x.device) * max_coord
        return y
    q = min(6, x.shape[1], len(x))
    with torch.random.fork_rng(devices=[]):      # pca_lowrank draws from the global generator
        torch.manual_seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
        u, s, _ = torch.pca_lowrank(xc, q=q, center=False, niter=4)
    y = u[:, :2] * s[:2]
    if y.shape[1] < 2:
        y = torch.cat([y, torch.zeros(len(y), 2 - y.shape[1], device=y.device)], 1)
    y = y * (max_coord / y.abs().max().clamp_min(1e-12))
    y = y + 1e-4 * torch.randn(y.shape, generator=generator).to(y.device)
    lo, hi = y.min(0).values, y.max(0).values
    return max_coord * (y - lo) / (hi - lo).clamp_min(1e-12)


def jaccard_overlap(knn_now: torch.Tensor, knn_prev: torch.Tensor) -> torch.Tensor:
    """Per row, |A & B| / |A | B| of two kNN index sets (N, k) each (indices within a row are distinct)."""
    k = knn_now.shape[1]
    inter = (knn_now[:, :, None] == knn_prev[:, None, :]).any(2).float().sum(1)
    return inter / (2 * k - inter)


def edge_schedule(weights: torch.Tensor, n_epochs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """umap's ``make_epochs_per_sample``: which edges ``n_epochs`` passes keep (those of weight at least
    w_max / n_epochs) and, for each kept edge, the passes between two of its samples (w_max / w, float64)."""
    w = weights.float()
    keep = w >= w.max() / float(n_epochs) if len(w) else torch.zeros(0, dtype=torch.bool, device=w.device)
    w = w[keep]
    return keep, ((w.max() / w).double() if len(w) else w.double())


@torch.no_grad()
def optimize_layout(pos: torch.Tensor, edges: torch.Tensor, weights: torch.Tensor, n_epochs: int,
                    a: float, b: float, *, generator: torch.Generator, negative_sample_rate: int = 5,
                    lr: float = 1.0, gamma: float = 1.0, anchor: torch.Tensor | None = None,
                    anchor_weight: torch.Tensor | None = None, point_rate: torch.Tensor | None = None,
                    progress=None, kernel: str = "auto", sequential: bool = False) -> torch.Tensor:
    """Run ``n_epochs`` layout epochs of UMAP's SGD from ``pos`` (V, 2); returns the new positions.

    edges: (E, 2) int64 node indices (an undirected edge listed both ways, as umap's COO graph);
    weights: (E,) membership strengths. anchor / anchor_weight: (V, 2) previous positions and (V,)
    pull strengths in [0, 1] (0: free) for the warm start's alignment term. point_rate: (V,) scale
    of each node's updates. kernel: ``"numba"`` (the compiled loop of ``engine/sgd.py``, 2-3x
    faster per pass on a CPU), ``"torch"`` (whole-tensor passes, the fast way on a GPU), or
    ``"auto"``: numba for CPU tensors, torch otherwise. Both follow the same rules; their random
    draws differ. sequential: (numba only; the torch passes are always synchronous) each chunk of
    edges sees its own earlier updates within a pass, as umap-learn's in-place SGD (engine/sgd.py).
    """
    if kernel not in ("auto", "numba", "torch"):
        raise ValueError(f"kernel must be 'auto', 'numba' or 'torch', got {kernel!r}")
    pos = pos.clone().float()
    if n_epochs <= 0:
        return pos
    dev = pos.device
    n_vertices = len(pos)
    keep, eps = edge_schedule(weights, n_epochs)          # eps: layout epochs between two samples of an edge
    head, tail = edges[keep, 0], edges[keep, 1]
    eps_neg = eps / max(negative_sample_rate, 1)
    if kernel == "numba" or (kernel == "auto" and dev.type == "cpu"):
        return _numba_layout(pos, head, tail, eps, n_epochs, a, b, generator, negative_sample_rate, lr, gamma,
                             anchor, anchor_weight, point_rate, progress, sequential)
    next_sample = eps.clone()
    next_neg = eps_neg.clone()
    draws = on_device(generator, dev)      # negatives are drawn where the positions are (engine/rng.py)
    pull = None
    if anchor is not None and anchor_weight is not None:
        pull = anchor_weight.float().clamp(0, 1)[:, None]
        anchor = anchor.float()
    for n in range(n_epochs):
        alpha = lr * (1.0 - n / n_epochs)
        sel = torch.nonzero(next_sample <= n).flatten()
        if len(sel):
            i, j = head[sel], tail[sel]
            d = pos[i] - pos[j]
            d2 = (d * d).sum(1)
            coeff = torch.where(d2 > 0, -2.0 * a * b * d2.clamp_min(1e-12).pow(b - 1.0) / (a * d2.pow(b) + 1.0),
                                torch.zeros_like(d2))
            g = (coeff[:, None] * d).clamp(-CLIP, CLIP) * alpha
            delta = torch.zeros_like(pos)
            delta.index_add_(0, i, g)
            delta.index_add_(0, j, -g)
            next_sample[sel] += eps[sel]
            if negative_sample_rate > 0:
                n_neg = torch.floor((n - next_neg[sel]) / eps_neg[sel]).clamp_min(0).long()
                next_neg[sel] += n_neg.double() * eps_neg[sel]
                src = i.repeat_interleave(n_neg)
                if len(src):
                    k = randint(draws, n_vertices, len(src), dev)
                    dn = pos[src] - pos[k]
                    dn2 = (dn * dn).sum(1)
                    cn = torch.where(dn2 > 0, 2.0 * gamma * b / ((0.001 + dn2) * (a * dn2.pow(b) + 1.0)),
                                     torch.zeros_like(dn2))
                    delta.index_add_(0, src, (cn[:, None] * dn).clamp(-CLIP, CLIP) * alpha)
            if point_rate is not None:
                delta *= point_rate[:, None]
            pos += delta
        if pull is not None:
            pos -= (alpha / max(lr, 1e-12)) * pull * (pos - anchor)
        if progress is not None:
            progress.update(1)
    return pos


def _numba_layout(pos, head, tail, eps, n_epochs, a, b, generator, negative_sample_rate, lr, gamma,
                  anchor, anchor_weight, point_rate, progress, sequential=False) -> torch.Tensor:
    """The same passes through ``engine/sgd.py``'s compiled loop; seeded from ``generator``.

    The loop runs on the vertices renumbered for memory locality and returns them in this call's
    order (``sgd.run_passes``).
    """
    from . import sgd
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    np_or_none = (lambda t: None if t is None else t.detach().float().cpu().numpy())
    threads = torch.get_num_threads()
    try:
        out = sgd.run_passes(pos.cpu().numpy(), head.cpu().numpy(), tail.cpu().numpy(), eps.cpu().numpy(),
                             n_epochs, a, b, seed=seed, negative_sample_rate=negative_sample_rate, lr=lr,
                             gamma=gamma, anchor=np_or_none(anchor) if anchor_weight is not None else None,
                             pull=None if anchor is None or anchor_weight is None
                             else anchor_weight.detach().float().clamp(0, 1).cpu().numpy(),
                             rate=np_or_none(point_rate), threads=threads, progress=progress,
                             sequential=sequential)
    finally:
        torch.set_num_threads(threads)   # numba's OpenMP layer shares torch's runtime (see knn.py)
    return torch.from_numpy(out).to(pos.device)


__all__ = ["optimize_layout", "edge_schedule", "pca_init", "jaccard_overlap"]


@torch.no_grad()
def blend_steps(prev: torch.Tensor, pos: torch.Tensor, high_step: torch.Tensor, blend: float,
                knn: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Scale each sample's 2-D move so its length tracks its high-D move (what stab_spearman asks).

    The layout moves a sample where its neighbourhood went; samples whose features moved a lot
    without changing neighbours barely move. Each move d_i keeps its direction and gets length
    |d_i|^(1 - blend) * (c |dh_i|)^blend, with c the least-squares scale of |d| on |dh| (so the
    picture moves as much overall), or ``scale`` when given (the stable preset keeps one c for a
    whole run: a unit of feature move is worth the same 2-D move in every epoch, which the pooled
    stab_spearman compares). blend = 0: the layout's moves; 1: exactly proportional.

    With ``knn`` (N, k), only the locally coherent part of each move is rescaled: d_i splits into
    s_i, the mean move of i and its high-D neighbours, and the local rearrangement d_i - s_i, which
    is kept as the layout made it. Neighbours share nearly the same s and nearly the same |dh|, so
    they are carried together and the neighbourhoods the layout found survive the rescaling.
    """
    if knn is not None:
        d = pos - prev
        group = torch.cat([torch.arange(len(d), device=d.device)[:, None], knn.long()], 1)
        s = d[group].mean(1)
        return blend_steps(prev, prev + s, high_step, blend, scale=scale) + (d - s)
    d = pos - prev
    m = d.norm(dim=1)
    h = high_step.float()
    c = (m * h).sum() / h.pow(2).sum().clamp_min(1e-12) if scale is None else torch.tensor(float(scale))
    target = c * h
    new = m.clamp_min(1e-12).pow(1 - blend) * target.clamp_min(1e-12).pow(blend)
    unit = torch.where(m[:, None] > 1e-9, d / m.clamp_min(1e-12)[:, None], torch.zeros_like(d))
    return prev + unit * new[:, None]


@torch.no_grad()
def place_boundary(features: torch.Tensor, boundary: torch.Tensor, positions: torch.Tensor,
                   k: int = 15) -> torch.Tensor:
    """2-D positions of boundary samples: the membership-weighted mean of their k nearest samples' positions.

    Boundary samples are not laid out with the samples (their edges would pull samples of different
    classes together and cost neighbourhoods); each is put where its nearest samples are, with
    UMAP's local fuzzy memberships (``fuzzy.bipartite_set``) as weights.
    """
    from .fuzzy import bipartite_set
    from .knn import exact_knn
    if not len(boundary):
        return positions.new_zeros((0, 2))
    k = min(k, len(features))
    idx, dist = exact_knn(features, k, queries=boundary)
    w = bipartite_set(dist).float().clamp_min(1e-6)
    return (w[:, :, None] * positions[idx]).sum(1) / w.sum(1, keepdim=True)
