"""A duck-typed stand-in for `dvi_widget.Visualization`, for widget tests and
the widget benchmark: synthetic, deterministic, any size, no training.

Classes are Gaussian clusters on a circle that tighten over epochs; a few
samples change prediction between epochs; the decision map colours each pixel
by its nearest cluster centre with the palette's colours.
"""
from __future__ import annotations

import numpy as np


def _palette(c: int) -> np.ndarray:
    try:
        from dvi_widget.palette import class_colors

        return class_colors(c)
    except ImportError:  # pragma: no cover
        rng = np.random.default_rng(1)
        return rng.integers(0, 255, size=(c, 3), dtype=np.uint8)


class FakeVisualization:
    """Implements the attributes DVIWidget reads (see README.md, "Python API")."""

    def __init__(self, n: int = 600, n_classes: int = 10, epochs=(1, 2, 3), map_size: int = 64,
                 thumbnails: bool = True, seed: int = 0, visible_epochs: int | None = None):
        rng = np.random.default_rng(seed)
        self._all_epochs = [int(e) for e in epochs]
        self._visible = len(self._all_epochs) if visible_epochs is None else visible_epochs
        self.classes = [f"class {c}" for c in range(n_classes)]
        self.labels = rng.integers(0, n_classes, size=n).astype(np.int64)
        self.split = np.where(rng.random(n) < 0.2, "test", "train")
        self.colors = _palette(n_classes)
        self.run_id = f"fake-{seed}-{n}"
        self.has_thumbnails = thumbnails
        self._map_size = map_size
        angle = 2 * np.pi * np.arange(n_classes) / n_classes
        self._centres = np.stack([np.cos(angle), np.sin(angle)], 1) * 5.0
        self._noise = rng.normal(size=(n, 2)).astype(np.float32)
        self._drift = rng.normal(size=(n, 2)).astype(np.float32)
        # predictions: a share of samples is wrong early and right later
        self._learned_at = rng.integers(0, len(self._all_epochs) + 1, size=n)
        self._wrong_as = (self.labels + 1 + rng.integers(0, n_classes - 1, size=n)) % n_classes
        self._thumbs = rng.integers(0, 255, size=(n, 8, 8), dtype=np.uint8)

    # -- epochs
    @property
    def epochs(self) -> list[int]:
        return self._all_epochs[: self._visible]

    def reload(self) -> None:
        """Pretend one more epoch was fitted (live mode)."""
        self._visible = min(self._visible + 1, len(self._all_epochs))

    def _k(self, epoch: int) -> int:
        if epoch not in self.epochs:
            raise ValueError(f"unknown epoch {epoch}; valid epochs: {self.epochs}")
        return self._all_epochs.index(epoch)

    def embedding(self, epoch: int) -> np.ndarray:
        k = self._k(epoch)
        spread = 2.0 / (1 + k)
        pred = self.predictions(epoch)
        pos = self._centres[pred] + self._noise * spread + self._drift * 0.3 * k
        return pos.astype(np.float32)

    def predictions(self, epoch: int) -> np.ndarray:
        k = self._k(epoch)
        return np.where(self._learned_at <= k, self.labels, self._wrong_as).astype(np.int64)

    def probabilities(self, epoch: int) -> np.ndarray:
        pred = self.predictions(epoch)
        n, c = len(pred), len(self.classes)
        p = np.full((n, c), 0.2 / (c - 1), dtype=np.float32)
        p[np.arange(n), pred] = 0.8
        return p

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (-9.0, 9.0, -9.0, 9.0)

    def background_extent(self, epoch: int) -> tuple[float, float, float, float]:
        self._k(epoch)
        return self.extent

    def background(self, epoch: int) -> np.ndarray:
        self._k(epoch)
        s = self._map_size
        x0, x1, y0, y1 = self.background_extent(epoch)
        xs = np.linspace(x0, x1, s)
        ys = np.linspace(y1, y0, s)  # first row = top
        gx, gy = np.meshgrid(xs, ys)
        d = (gx[..., None] - self._centres[:, 0]) ** 2 + (gy[..., None] - self._centres[:, 1]) ** 2
        near = np.argmin(d, axis=-1)
        rgb = self.colors[near].astype(np.float32)
        rgb = 255 - (255 - rgb) * 0.35  # pale, like the engine's maps
        rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255.0)], -1)
        return rgba.astype(np.uint8)

    @property
    def metrics(self) -> dict[int, dict[str, float]]:
        return {e: {"nn_rate@15": 0.5 + 0.01 * k, "ppr": 0.9, "map_consistency": 0.85,
                    "accuracy/train": float(np.mean(self.predictions(e)[self.split == "train"] == self.labels[self.split == "train"])),
                    "accuracy/test": float(np.mean(self.predictions(e)[self.split == "test"] == self.labels[self.split == "test"]))}
                for k, e in enumerate(self.epochs)}

    def thumbnails(self, indices) -> np.ndarray:
        return self._thumbs[np.asarray(indices)]
