"""Reading what the analyses need from a fitted run, with a small per-run cache.

Kept apart from :class:`~dvi_widget.results.Visualization` so the analyses can read arrays it
does not expose (the fit's kNN graph) without widening its public surface. A run that lacks a
file (a saved Visualization has no features) gives ``None`` here, and each analysis says what it
falls back to.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from ..errors import DVIError, RunFileError, unknown_epoch
from ..store.rundir import load_npz

_CACHE_SIZE = 6


def check_epoch(vis, epoch) -> int:
    """``epoch`` as an int if it is one of ``vis.epochs``, else the error listing the valid ones."""
    valid = [int(e) for e in vis.epochs]
    if isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool) and int(epoch) in valid:
        return int(epoch)
    raise unknown_epoch(epoch, valid)


def check_sample(vis, i) -> int:
    """``i`` as an int sample index in range(N), else a DVIError."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise DVIError(f"a sample index must be an int, got {i!r}")
    if not 0 <= int(i) < vis.n:
        raise DVIError(f"sample index {int(i)} out of range(0, {vis.n})")
    return int(i)


def _cache(vis) -> OrderedDict:
    cache = vis.__dict__.get("_analysis_cache")
    if cache is None:
        cache = vis.__dict__["_analysis_cache"] = OrderedDict()
    return cache


def cached(vis, key: tuple, stamp, load: Callable):
    """``load()`` once per (key, stamp); ``stamp`` changes when the file behind it is rewritten."""
    cache = _cache(vis)
    hit = cache.get(key)
    if hit is not None and hit[0] == stamp:
        cache.move_to_end(key)
        return hit[1]
    value = load()
    cache[key] = (stamp, value)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _stamp(path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def features(vis, epoch: int) -> np.ndarray | None:
    """(N, D) float32 features of ``epoch``, or None when the run does not keep them."""
    run = getattr(vis, "run", None)
    path = run.epoch_dir(epoch) / "features.npz" if run is not None else None
    if path is not None and not path.exists():
        return None

    def load():
        try:
            return np.asarray(vis.features(epoch), dtype=np.float32)
        except RunFileError:
            return None
    return cached(vis, ("features", epoch), _stamp(path) if path is not None else None, load)


def knn_graph(vis, epoch: int) -> np.ndarray | None:
    """(N, k) int neighbour indices of the fit's feature-space kNN graph (self excluded, nearest
    first), or None when the fit did not store it."""
    run = getattr(vis, "run", None)
    if run is None:
        return None
    path = run.fit_dir(epoch) / "fit.npz"

    def load():
        try:
            return load_npz(path, ("knn",))["knn"].astype(np.int64)
        except RunFileError:
            return None
    return cached(vis, ("knn", epoch), _stamp(path), load)


def nearest_neighbour_distances(vis, epoch: int) -> np.ndarray | None:
    """(N,) distance of each sample to its nearest other sample in feature space, sorted ascending.

    The scale against which a decoded point's distance to the data is judged. From the stored
    kNN graph's first column (exact up to 50k samples, pynndescent beyond), or None without features.
    """
    h = features(vis, epoch)
    if h is None:
        return None

    def load():
        knn = knn_graph(vis, epoch)
        if knn is not None and len(knn) == len(h) and knn.shape[1] > 0:
            first = knn[:, 0]
        else:
            from ..engine.knn import knn_graph as build_knn   # exact up to 50k samples, pynndescent beyond
            import torch
            first = build_knn(torch.from_numpy(h), 1)[0][:, 0].numpy()
        return np.sort(np.linalg.norm(h - h[first], axis=1))
    return cached(vis, ("nn1", epoch), id(h), load)
