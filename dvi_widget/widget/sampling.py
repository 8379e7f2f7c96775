"""Which samples the browser draws, and the thumbnail atlas it gets up front.

For very large runs the widget draws a display sample (`max_points`):
stratified by label and split, so every group keeps its share, while the
indices the user sees and selects stay the run's global indices.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["stratified_sample", "thumbnail_atlas"]


def stratified_sample(labels: np.ndarray, split: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted global indices of at most `max_points` samples, keeping each
    (label, split) group's share (largest-remainder rounding; every group with
    members keeps at least one when the budget allows)."""
    n = len(labels)
    if max_points >= n:
        return np.arange(n, dtype=np.int64)
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    keys = labels.astype(np.int64) * 2 + (np.asarray(split) == "test")
    groups, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse)
    quota = counts * (max_points / n)
    take = np.floor(quota).astype(np.int64)
    if len(groups) <= max_points:
        take = np.maximum(take, (counts > 0).astype(np.int64))
    rest = max_points - take.sum()
    if rest > 0:  # largest remainders first
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for g in order:
            if rest == 0:
                break
            if take[g] < counts[g]:
                take[g] += 1
                rest -= 1
    while take.sum() > max_points:  # minimum-one rule overshot: trim largest groups
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(inverse == g), size=int(t), replace=False) for g, t in enumerate(take) if t > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def thumbnail_atlas(vis: Any, shown: np.ndarray, budget: int) -> tuple[bytes, dict | None]:
    """The displayed samples' thumbnails as one uint8 (n, h, w, c) buffer and its
    shape {h, w, c}; downsampled (every k-th pixel) to stay within `budget` bytes."""
    if not getattr(vis, "has_thumbnails", False) or len(shown) == 0:
        return b"", None
    thumbs = np.asarray(vis.thumbnails(shown), dtype=np.uint8)
    if thumbs.ndim == 3:
        thumbs = thumbs[..., None]
    if thumbs.ndim != 4 or thumbs.shape[-1] not in (1, 3):
        raise ValueError(f"thumbnails must be (M, h, w) or (M, h, w, 3), got {thumbs.shape}")
    stride = max(1, math.ceil(math.sqrt(thumbs.nbytes / max(budget, 1))))
    if stride > 1:
        thumbs = thumbs[:, ::stride, ::stride]
    thumbs = np.ascontiguousarray(thumbs)
    _, h, w, c = thumbs.shape
    return thumbs.tobytes(), {"h": int(h), "w": int(w), "c": int(c)}
