"""Stage 6: faithfulness figures of an epoch's projection (see README.md, "The engine", and PROTOCOL.md for what reaches the widget).

Neighbour figures use a fixed random subset of at most 5,000 query samples (the same every
epoch); neighbours are searched among all recorded samples. Boundary samples are never queries.
"""
from __future__ import annotations

import numpy as np
import torch

from .decision_map import pixel_of
from .knn import exact_knn

K = 15
MAX_QUERIES = 5000
#: trustworthiness is averaged over a fixed random subset of this many of the queries: its cost is queries x N x D
#: (a full distance row per query), the largest of the metrics (about 5 s of a 100,000 x 128 epoch
#: with 5,000 queries), and over 2,000 queries its standard error is already ~0.0005
TRUST_QUERIES = 2000


def query_subset(n: int, max_queries: int = MAX_QUERIES, seed: int = 0) -> np.ndarray:
    if n <= max_queries:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))


def overlap_rate(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per row, the share of ``a``'s indices that also appear in ``b`` (both (Q, k))."""
    return (a[:, :, None] == b[:, None, :]).any(2).float().mean(1)


def _count_nearer(d2: torch.Tensor, dj: torch.Tensor) -> torch.Tensor:
    """cnt[i, j] = #{l : d2[i, l] < dj[i, j]}, without sorting the rows of ``d2`` (Q x N).

    Most samples lie beyond a query's farthest 2-D neighbour; when few do, only those are
    compared (sparse path); otherwise each distance is placed among the row's k sorted
    thresholds (log k comparisons) and counted per bucket.
    """
    thr = dj.max(1, keepdim=True).values
    near = d2 < thr
    if int(near.sum()) * 16 < near.numel():
        r, c = near.nonzero(as_tuple=True)
        return torch.zeros(dj.shape, dtype=torch.float64, device=d2.device).index_add_(
            0, r, (d2[r, c][:, None] < dj[r]).double())
    k = dj.shape[1]
    seq, order = torch.sort(dj, 1)
    bucket = torch.searchsorted(seq, d2, right=True)          # how many thresholds are <= each distance
    hist = torch.zeros((len(d2), k + 1), dtype=d2.dtype, device=d2.device)   # float32 counts < 2^24: exact
    hist.scatter_add_(1, bucket, torch.ones_like(d2))
    return torch.empty_like(hist[:, :k]).scatter_(1, order, hist.cumsum(1)[:, :k]).double()


@torch.no_grad()
def trustworthiness(high: torch.Tensor, q: torch.Tensor, low_knn: torch.Tensor, k: int = K,
                    chunk: int | None = None) -> float:
    """Venna & Kaski's trustworthiness over query rows ``q`` (ranks among all of ``high``).

    ``low_knn`` (len(q), k): each query's 2-D neighbours. A neighbour's rank is 1 + the number
    of samples nearer the query in high-D, counted without sorting rows, so the cost is
    len(q) x N x D for the distances plus len(q) x N x log k: with the fixed subset of at most
    :data:`MAX_QUERIES` queries, linear in N. Equals sklearn.manifold.trustworthiness when
    every sample is a query (ties aside).
    """
    n = len(high)
    if chunk is None:   # one chunk's distance block about 64 MB of float32
        chunk = int(max(8, min(1024, 2 ** 24 // max(n, 1))))
    penalty = 0.0
    sq = (high * high).sum(1)
    high_t = high.T
    for s in range(0, len(q), chunk):
        qi = q[s:s + chunk]
        d2 = torch.addmm(sq[None, :], high[qi], high_t, alpha=-2.0).add_(sq[qi, None])
        d2[torch.arange(len(qi)), qi] = float("inf")
        dj = d2.gather(1, low_knn[s:s + chunk])
        rank = _count_nearer(d2, dj) + 1   # 1 = nearest other point
        penalty += float((rank - k).clamp_min(0).sum())
    return 1.0 - penalty * 2.0 / (len(q) * k * (2.0 * n - 3.0 * k - 1.0))


def _by_split(name: str, values: np.ndarray, split_q: np.ndarray, out: dict) -> None:
    out[name] = float(values.mean())
    for s in ("train", "test"):
        m = split_q == s
        if m.any():
            out[f"{name}/{s}"] = float(values[m].mean())


@torch.no_grad()
def epoch_metrics(*, features: torch.Tensor, boundary: torch.Tensor, embedding: torch.Tensor,
                  boundary_embedding: torch.Tensor, knn: torch.Tensor, queries: np.ndarray,
                  probs: np.ndarray, recon_probs: np.ndarray, labels: np.ndarray, split: np.ndarray,
                  grid_class: np.ndarray, extent) -> dict[str, float]:
    """All per-epoch figures. ``knn``: (N, k) high-D neighbours of every sample (self excluded)."""
    out: dict[str, float] = {}
    q = torch.from_numpy(queries).to(features.device)
    split_q = split[queries]
    low_idx, _ = exact_knn(embedding, K, queries=embedding[q], query_index=q)
    _by_split("nn_rate@15", overlap_rate(knn[q][:, :K], low_idx).cpu().numpy(), split_q, out)
    if len(boundary) >= K:
        hb, _ = exact_knn(boundary, K, queries=features[q])
        lb, _ = exact_knn(boundary_embedding, K, queries=embedding[q])
        _by_split("boundary_nn_rate@15", overlap_rate(hb, lb).cpu().numpy(), split_q, out)
    tq = torch.from_numpy(query_subset(len(q), TRUST_QUERIES, seed=1)).to(q.device)   # the same every epoch
    out["trustworthiness@15"] = trustworthiness(features, q[tq], low_idx[tq])

    pred = probs.argmax(1)
    _by_split("ppr", (recon_probs.argmax(1) == pred).astype(np.float64), split, out)
    rows = np.arange(len(pred))
    _by_split("inv_conf_diff", np.abs(probs[rows, pred] - recon_probs[rows, pred]).astype(np.float64), split, out)
    r, c = pixel_of(embedding.cpu().numpy(), extent, grid_class.shape[0])
    _by_split("map_consistency", (grid_class[r, c] == pred).astype(np.float64), split, out)
    _by_split("accuracy", (pred == labels).astype(np.float64), split, out)
    return out


def project_error(projected: np.ndarray, shown: np.ndarray, extent) -> dict[str, float]:
    """How far ``vis.project`` lands from where the widget shows each recorded sample.

    |project(h_i) - embedding_i| as a fraction of the extent's larger side; its median and 95th
    percentile (0 for a parametric engine, whose shown positions are the encoder's output).
    """
    xmin, xmax, ymin, ymax = extent
    side = max(xmax - xmin, ymax - ymin, 1e-12)
    d = np.linalg.norm(np.asarray(projected, np.float64) - np.asarray(shown, np.float64), axis=1) / side
    if not len(d):
        return {}
    return {"project_error/median": float(np.median(d)), "project_error/p95": float(np.percentile(d, 95))}


@torch.no_grad()
def projection_errors(model, features: torch.Tensor, shown: torch.Tensor, knn: torch.Tensor,
                      queries: np.ndarray, extent) -> dict[str, float]:
    """``project_error`` of ``vis.project`` and two figures that say what it rests on, over the query subset.

    - ``project_error/*``: ``vis.project`` (encoder + interpolated residual, see
      ``engine/extension.py``) of each query's own features; ~0 for recorded samples by construction.
    - ``project_error_encoder/*``: the encoder alone.
    - ``project_error_heldout/*``: each query projected as a new, unrecorded feature would be, with
      itself left out of the recorded set (its k nearest other samples interpolate the residual).

    knn: (N, k) each sample's nearest other samples in feature space (the fit's kNN graph), so no
    new search is needed: a query's own neighbour list for ``project`` is itself (distance 0) then
    its k - 1 nearest others, as an exact search would return them.
    """
    from .extension import K_EXTENSION, shepard
    from .vismodel import batched
    q = torch.from_numpy(queries).to(features.device)
    encoded = batched(model.encode, features)
    residual = shown.float() - encoded
    nb = knn[q][:, :K_EXTENSION].long()
    dist = (features[q][:, None, :] - features[nb]).norm(dim=2)
    own = torch.cat([q[:, None], nb[:, : K_EXTENSION - 1]], 1)
    own_dist = torch.cat([torch.zeros_like(dist[:, :1]), dist[:, : K_EXTENSION - 1]], 1)
    target = shown[q].cpu().numpy()
    out = {}
    for name, placed in (("project_error", encoded[q] + shepard(residual, own, own_dist)),
                         ("project_error_encoder", encoded[q]),
                         ("project_error_heldout", encoded[q] + shepard(residual, nb, dist))):
        out.update({k.replace("project_error", name): v
                    for k, v in project_error(placed.cpu().numpy(), target, extent).items()})
    return out


def stab_spearman(high_steps: list[np.ndarray], low_steps: list[np.ndarray]) -> float:
    """Spearman correlation of per-sample step sizes, high-D vs 2-D, pooled over epoch pairs."""
    from scipy.stats import spearmanr
    if not high_steps:
        return float("nan")
    h, l = np.concatenate(high_steps), np.concatenate(low_steps)
    return float(spearmanr(h, l).statistic)
