"""Stage 5: the decision map, the grid over an epoch's extent decoded and classified by the head.

Each pixel takes its class colour (one palette for every epoch), lightened as the top-1 vs
top-2 probability margin shrinks and near-white below a threshold, so boundaries show as
pale bands. Row 0 of the image is the top of the extent (ymax).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .vismodel import VisModel


def padded_extent(points: np.ndarray, pad: float = 0.08) -> tuple[float, float, float, float]:
    """A square (xmin, xmax, ymin, ymax) around ``points`` with ``pad`` of the side added each way."""
    lo, hi = points.min(0).astype(np.float64), points.max(0).astype(np.float64)
    centre, side = (lo + hi) / 2, float(max((hi - lo).max(), 1e-6)) * (1 + 2 * pad)
    return (centre[0] - side / 2, centre[0] + side / 2, centre[1] - side / 2, centre[1] + side / 2)


def grid_points(extent, size: int) -> np.ndarray:
    """Pixel centres, row-major, first row at the top (ymax): (size * size, 2) float32."""
    xmin, xmax, ymin, ymax = extent
    xs = xmin + (np.arange(size) + 0.5) * (xmax - xmin) / size
    ys = ymax - (np.arange(size) + 0.5) * (ymax - ymin) / size
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def pixel_of(points: np.ndarray, extent, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the map pixel under each point, clipped to the map."""
    xmin, xmax, ymin, ymax = extent
    col = np.floor((points[:, 0] - xmin) / (xmax - xmin) * size).astype(np.int64)
    row = np.floor((ymax - points[:, 1]) / (ymax - ymin) * size).astype(np.int64)
    return np.clip(row, 0, size - 1), np.clip(col, 0, size - 1)


def shade(probs: np.ndarray, colors: np.ndarray, threshold: float) -> np.ndarray:
    """RGBA pixels from class probabilities (P, C): class colour mixed with white by confidence."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    s = np.clip((margin - threshold) / (1 - threshold), 0, 1)
    strength = np.where(margin < threshold, 0.05, 0.18 + 0.5 * np.sqrt(s))
    base = colors[probs.argmax(1)].astype(np.float32)
    rgb = 255 - strength[:, None] * (255 - base)
    alpha = np.full((len(rgb), 1), 255, np.float32)
    return np.concatenate([rgb, alpha], 1).round().astype(np.uint8)


@torch.no_grad()
def decision_map(model: VisModel, head: nn.Module, extent, size: int, colors: np.ndarray,
                 threshold: float, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 4) uint8 image and (size, size) predicted class per pixel."""
    pts = torch.from_numpy(grid_points(extent, size)).to(device)
    probs = []
    for s in range(0, len(pts), 16384):
        probs.append(torch.softmax(head(model.decode(pts[s:s + 16384])), 1).cpu())
    p = torch.cat(probs).numpy()
    rgba = shade(p, colors, threshold).reshape(size, size, 4)
    return rgba, p.argmax(1).reshape(size, size).astype(np.int16)
