"""Thumbnails (at most 64 px, uint8) made from image-like inputs at record time."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .features import Inputs

MAX_SIDE = 64


def _image_layout(shape: tuple[int, ...]) -> str | None:
    """'hw', 'chw' or 'hwc' when a sample of this shape looks like an image, else None."""
    if len(shape) == 2 and min(shape) >= 8:
        return "hw"
    if len(shape) == 3 and shape[0] in (1, 3) and min(shape[1:]) >= 8:
        return "chw"
    if len(shape) == 3 and shape[2] in (1, 3) and min(shape[:2]) >= 8:
        return "hwc"
    return None


def make_thumbnails(inputs: Inputs, batch: int = 2048) -> np.ndarray | None:
    """(N, h, w) or (N, h, w, 3) uint8 thumbnails, or None when the inputs are not images.

    Float inputs (often normalised) are mapped to 0..255 with one min/max over the data set,
    so contrast stays comparable between samples.
    """
    layout = _image_layout(inputs.sample_shape())
    if layout is None:
        return None
    chunks = []
    for s in range(0, inputs.n, batch):
        x = inputs.get(np.arange(s, min(s + batch, inputs.n)))
        x = x.detach().cpu()
        if layout == "chw":
            x = x.permute(0, 2, 3, 1)
        if x.ndim == 4 and x.shape[3] == 1:
            x = x[..., 0]
        chunks.append(x)
    x = torch.cat(chunks)
    if x.dtype != torch.uint8:
        x = x.float()
        lo, hi = float(x.min()), float(x.max())
        x = ((x - lo) / max(hi - lo, 1e-12) * 255).round().clamp(0, 255).to(torch.uint8)
    arr = x.numpy()
    h, w = arr.shape[1:3]
    if max(h, w) <= MAX_SIDE:
        return np.ascontiguousarray(arr)
    scale = MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([np.asarray(Image.fromarray(a).resize(size, Image.BILINEAR)) for a in arr])
