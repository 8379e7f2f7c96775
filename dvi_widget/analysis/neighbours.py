"""A sample's nearest neighbours in feature space, and whether the map keeps them near.

The per-sample version of the ``nn_rate@15`` metric: of the sample's k nearest neighbours in
the classifier's feature space (the fit's kNN graph, the same neighbours the projection was
trained to keep), which are also among its k nearest on the 2-D map. A sample whose
neighbours mostly stay near can be read from its surroundings on the map; one whose
neighbours were scattered cannot.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DVIError
from . import stored
from .table import make_table


def _exact_neighbours(h: np.ndarray, i: int, k: int) -> np.ndarray:
    d = np.linalg.norm(h - h[i], axis=1)
    d[i] = np.inf
    order = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
    return order[np.argsort(d[order], kind="stable")]


def neighbours(vis, epoch: int, i: int, k: int = 15, *, pandas: bool | None = None) -> Any:
    """The ``k`` nearest neighbours of sample ``i`` in feature space at ``epoch``.

    Neighbours come from the kNN graph the fit stored (nearest first); when ``k`` exceeds the
    stored graph's width, or no graph is stored, they are computed exactly from the features.
    Returns a table (DataFrame if pandas is installed), one row per neighbour, nearest first:

    - ``rank`` 1..k, ``sample`` (its index), ``label``, ``prediction`` (at ``epoch``);
    - ``distance``: Euclidean distance to sample ``i`` in feature space (NaN when the run does
      not keep features, as a saved Visualization);
    - ``distance_2d``: distance on the map (``vis.embedding(epoch)``);
    - ``in_2d``: whether the neighbour is also among ``i``'s k nearest on the map.

    ``attrs``: ``sample``, ``epoch``, ``k``, ``rate`` (the share of neighbours kept in 2-D, this
    sample's nn_rate@k) and ``source`` (``"fit kNN graph"`` or ``"exact from features"``).
    """
    e = stored.check_epoch(vis, epoch)
    i = stored.check_sample(vis, i)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) < vis.n:
        raise DVIError(f"k must be an int in 1..{vis.n - 1} (N - 1), got {k!r}")
    k = int(k)
    h = stored.features(vis, e)
    graph = stored.knn_graph(vis, e)
    if graph is not None and graph.shape[1] >= k:
        nbr = graph[i, :k]
        source = "fit kNN graph"
    elif h is not None:
        nbr = _exact_neighbours(h, i, k)
        source = "exact from features"
    else:
        width = 0 if graph is None else graph.shape[1]
        raise DVIError(f"epoch {e} stores a kNN graph of {width} neighbours and no features; ask for k <= {width}")
    emb = np.asarray(vis.embedding(e), dtype=np.float64)
    near_2d = set(_exact_neighbours(emb, i, k).tolist())
    dist = np.linalg.norm(h[nbr] - h[i], axis=1).astype(np.float64) if h is not None else np.full(k, np.nan)
    in_2d = np.array([j in near_2d for j in nbr.tolist()], dtype=bool)
    columns = {
        "rank": np.arange(1, k + 1),
        "sample": nbr.astype(np.int64),
        "label": np.asarray(vis.labels, dtype=np.int64)[nbr],
        "prediction": np.asarray(vis.predictions(e), dtype=np.int64)[nbr],
        "distance": dist,
        "distance_2d": np.linalg.norm(emb[nbr] - emb[i], axis=1),
        "in_2d": in_2d,
    }
    attrs = {"sample": i, "epoch": e, "k": k, "rate": float(in_2d.mean()), "source": source}
    return make_table(columns, attrs=attrs, use_pandas=pandas)
