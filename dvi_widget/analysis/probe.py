"""Probe the map: what the inverse projection makes of any 2-D location.

The decision map paints head(decode(xy)) for every pixel, including the empty space between
and beyond the samples, where the decoder extrapolates. A probe reports, for chosen
locations, the head's class probabilities there, the recorded samples nearest to the decoded
point, and how far the decoded point lies from the data compared with how far real samples
lie from their own nearest neighbour; that comparison tells the user whether the colour
under the cursor is backed by data or invented by the decoder.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import DVIError
from . import stored

#: A decoded point farther from every sample than this share of samples are from their own
#: nearest neighbour is flagged ``extrapolating``.
EXTRAPOLATION_PERCENTILE = 0.95


def _nearest(ref: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``ref`` for each query (indices, distances), nearest first."""
    from ..engine.knn import exact_knn
    idx, dist = exact_knn(torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32)), k,
                          queries=torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)))
    # exact_knn uses the |q|^2 + |r|^2 - 2 q.r expansion; recompute the k distances directly
    d = np.linalg.norm(ref[idx.numpy()] - queries[:, None, :], axis=2)
    return idx.numpy().astype(np.int64), d


def probe(vis, epoch: int, xy, k: int = 5) -> dict[str, Any]:
    """Decode 2-D location(s) ``xy`` at ``epoch`` and say what the classifier sees there.

    ``xy``: one point ``(x, y)`` or an (M, 2) array, in the map's coordinates (those of
    ``vis.embedding``). Returns a dict; for one point each value is for that point, for (M, 2)
    each gains a leading M axis:

    - ``probabilities`` (C,): softmax(head(vis.inverse(epoch, xy))), float32;
    - ``prediction``: the arg-max class; ``class_name``: its name;
    - ``nearest`` (k,): the recorded samples nearest to the decoded point in feature space
      (on the map when the run keeps no features); ``nearest_distance`` (k,): those distances;
    - ``distance``: the decoded point's distance to the nearest sample in feature space (NaN
      without features);
    - ``distance_percentile``: the share of recorded samples whose own nearest neighbour is
      closer than ``distance`` (0.5: as close to the data as a typical sample; 1.0: farther
      than any sample is from its neighbour);
    - ``extrapolating``: ``distance_percentile > EXTRAPOLATION_PERCENTILE`` (0.95);
    - ``nearest_2d`` (k,), ``distance_2d`` (k,): the samples nearest to ``xy`` on the map;
    - ``features`` (D,): the decoded point itself.
    Also ``epoch``, ``xy`` and ``neighbours_in`` (``"features"`` or ``"map"``).
    """
    e = stored.check_epoch(vis, epoch)
    pts = np.asarray(xy, dtype=np.float64)
    single = pts.shape == (2,)
    pts = pts.reshape(1, 2) if single else pts
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise DVIError(f"xy must be one point (x, y) or an (M, 2) array, got shape {np.shape(xy)}")
    if not np.all(np.isfinite(pts)):
        raise DVIError("xy must be finite numbers")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= vis.n:
        raise DVIError(f"k must be an int in 1..{vis.n} (N), got {k!r}")
    k = int(k)
    pts32 = pts.astype(np.float32)
    decoded = vis.inverse(e, pts32)
    head = vis.head(e)
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(decoded)).double(), dim=1).numpy().astype(np.float32)
    pred = probs.argmax(axis=1).astype(np.int64)
    emb = np.asarray(vis.embedding(e), dtype=np.float32)
    near_2d, dist_2d = _nearest(emb, pts32, k)
    h = stored.features(vis, e)
    if h is not None:
        nearest, nearest_d = _nearest(h, decoded, k)
        dist = nearest_d[:, 0]
        scale = stored.nearest_neighbour_distances(vis, e)
        pct = np.searchsorted(scale, dist, side="left") / len(scale)
        where = "features"
    else:
        nearest, nearest_d = near_2d, dist_2d
        dist = pct = np.full(len(pts), np.nan)
        where = "map"
    classes = list(vis.classes)
    out = {
        "epoch": e,
        "xy": pts,
        "probabilities": probs,
        "prediction": pred,
        "class_name": np.array([classes[c] for c in pred]),
        "nearest": nearest,
        "nearest_distance": nearest_d,
        "distance": dist,
        "distance_percentile": pct,
        "extrapolating": pct > EXTRAPOLATION_PERCENTILE,
        "nearest_2d": near_2d,
        "distance_2d": dist_2d,
        "features": decoded,
        "neighbours_in": where,
    }
    if single:
        for key in ("xy", "probabilities", "nearest", "nearest_distance", "nearest_2d", "distance_2d", "features"):
            out[key] = out[key][0]
        out["prediction"] = int(pred[0])
        out["class_name"] = classes[int(pred[0])]
        out["distance"] = float(dist[0])
        out["distance_percentile"] = float(pct[0])
        out["extrapolating"] = bool(pct[0] > EXTRAPOLATION_PERCENTILE)
    return out
