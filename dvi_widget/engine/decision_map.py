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


# Fading of the map away from the samples (fractions of the map's side), see data_proximity.
FADE_NEAR, FADE_FAR, FADE_FLOOR = 0.04, 0.15, 0.3


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


def shade(probs: np.ndarray, colors: np.ndarray, threshold: float, weight: np.ndarray | None = None) -> np.ndarray:
    """RGBA pixels from class probabilities (P, C): class colour mixed with white by confidence.

    ``weight`` (P,) in [0, 1], optional, scales each pixel's colour strength (see ``data_proximity``).
    """
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    s = np.clip((margin - threshold) / (1 - threshold), 0, 1)
    strength = np.where(margin < threshold, 0.05, 0.18 + 0.5 * np.sqrt(s))
    if weight is not None:
        strength = strength * weight
    base = colors[probs.argmax(1)].astype(np.float32)
    rgb = 255 - strength[:, None] * (255 - base)
    alpha = np.full((len(rgb), 1), 255, np.float32)
    return np.concatenate([rgb, alpha], 1).round().astype(np.uint8)


def data_proximity(points: np.ndarray, extent, size: int, near: float = FADE_NEAR, far: float = FADE_FAR,
                   floor: float = FADE_FLOOR) -> np.ndarray:
    """(size, size) weight in [floor, 1] of each pixel: 1 within ``near`` of a sample, ``floor`` beyond ``far``.

    Distances are fractions of the map's side, measured from the pixel to the nearest pixel that holds
    a sample (an exact Euclidean distance transform of the occupied pixels, O(size^2)); between
    ``near`` and ``far`` the weight falls smoothly (a cosine ramp).
    """
    from scipy.ndimage import distance_transform_edt
    occupied = np.zeros((size, size), bool)
    if len(points):
        r, c = pixel_of(np.asarray(points, np.float64), extent, size)
        occupied[r, c] = True
    else:
        return np.full((size, size), floor, np.float32)
    d = distance_transform_edt(~occupied) / size
    t = np.clip((d - near) / max(far - near, 1e-9), 0, 1)
    return (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


@torch.no_grad()
def decision_map(model: VisModel, head: nn.Module, extent, size: int, colors: np.ndarray,
                 threshold: float, device: torch.device,
                 points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 4) uint8 image and (size, size) predicted class per pixel.

    With ``points`` (the shown samples, (N, 2)), the colour fades toward white with the distance to
    the nearest sample (:func:`data_proximity`): far from every sample the decoder extrapolates, and
    its Fourier input (``FitConfig.decoder_fourier``) paints a fine mottle of classes there that no
    sample supports. The class of every pixel (the second array, which ``map_consistency`` reads)
    is the decoded one everywhere; only the painting is lighter.
    """
    pts = torch.from_numpy(grid_points(extent, size)).to(device)
    probs = []
    for s in range(0, len(pts), 16384):
        probs.append(torch.softmax(head(model.decode(pts[s:s + 16384])), 1).cpu())
    p = torch.cat(probs).numpy()
    weight = None if points is None else data_proximity(points, extent, size).ravel()
    rgba = shade(p, colors, threshold, weight).reshape(size, size, 4)
    return rgba, p.argmax(1).reshape(size, size).astype(np.int16)


@torch.no_grad()
def settle_on_map(model: VisModel, head: nn.Module, pos: torch.Tensor, pred: torch.Tensor, size: int,
                  pad: float = 0.08, reach: int = 2) -> tuple[torch.Tensor, int]:
    """Layout engine: make the map pixel under each sample show the sample's predicted class.

    The map shows the class decoded at each pixel's centre; a sample lying within a pixel that a
    decision boundary crosses can sit on a pixel of another class although the decoder gives its own
    class at its exact position. Such a sample moves to the nearest pixel centre within ``reach``
    pixels (rows and columns) where the decoder gives its class: a few pixels at most, so its
    neighbourhood is kept, and both the inverse at its position and the pixel under it agree with
    the classifier. The reach is 2: with the decoder's finer Fourier features a sample's region can
    be smaller than a pixel and miss the 9 nearest centres (digits, epoch 2: map_consistency 0.989
    with reach 1, 0.997 with 2); reach 3 moved more samples farther (nn_rate@15 -2%). Moves stay
    inside the samples' bounding box.
    Returns (positions, number moved).

    The map's extent is the samples' bounding box, padded: a sample on its edge that moves inward
    shrinks it and shifts every pixel, so the check repeats (at most 4 rounds) until no sample moves
    (on digits one round left 33 samples on another class's pixel: map_consistency 0.982).
    """
    total = 0
    for _ in range(4):
        pos, moved = _settle_once(model, head, pos, pred, size, pad, reach)
        total += moved
        if not moved:
            break
    return pos, total


def _settle_once(model: VisModel, head: nn.Module, pos: torch.Tensor, pred: torch.Tensor, size: int,
                 pad: float, reach: int) -> tuple[torch.Tensor, int]:
    """One round of :func:`settle_on_map` over the extent of ``pos`` as it is."""
    pts = pos.detach().cpu().numpy()
    extent = padded_extent(pts, pad)
    xmin, xmax, ymin, ymax = extent
    px, py = (xmax - xmin) / size, (ymax - ymin) / size
    r, c = pixel_of(pts, extent, size)
    dev = pos.device

    def centres(rows, cols):
        return torch.stack([torch.as_tensor(xmin + (cols + 0.5) * px, dtype=torch.float32),
                            torch.as_tensor(ymax - (rows + 0.5) * py, dtype=torch.float32)], -1).to(dev)

    cls = head(model.decode(centres(r, c))).argmax(1)
    bad = torch.nonzero(cls != pred).flatten().cpu().numpy()
    if not len(bad):
        return pos, 0
    lo, hi = pos.min(0).values, pos.max(0).values
    offsets = np.arange(-reach, reach + 1)
    dr, dc = np.meshgrid(offsets, offsets, indexing="ij")
    w = dr.size
    rows = np.clip(r[bad][:, None] + dr.ravel()[None], 0, size - 1)         # (B, w)
    cols = np.clip(c[bad][:, None] + dc.ravel()[None], 0, size - 1)
    cand = centres(rows.ravel(), cols.ravel()).reshape(len(bad), w, 2)
    good = (head(model.decode(cand.reshape(-1, 2))).argmax(1).reshape(len(bad), w) == pred[bad][:, None])
    good &= ((cand >= lo) & (cand <= hi)).all(2)
    dist = (cand - pos[bad][:, None]).norm(dim=2)
    dist = torch.where(good, dist, torch.full_like(dist, float("inf")))
    best = dist.argmin(1)
    ok = torch.isfinite(dist.min(1).values)
    pos = pos.clone()
    idx = torch.from_numpy(bad).to(dev)
    pos[idx[ok]] = cand[ok, best[ok]]
    return pos, int(ok.sum())
