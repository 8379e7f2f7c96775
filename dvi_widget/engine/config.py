"""Fit settings. ``FitConfig()`` is dvi_widget's default; ``FitConfig.reference()`` is DVI's configuration."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

import numpy as np

from ..errors import DVIError


@dataclass(frozen=True)
class FitConfig:
    n_neighbors: int = 15          # kNN of both complexes and of the temporal term
    min_dist: float = 0.1          # UMAP's a, b come from min_dist and spread
    spread: float = 1.0
    negative_sample_rate: int = 5
    width: int = 128               # hidden width of encoder and decoder (DVI: 256)
    depth: int = 3                 # hidden layers of each (DVI: 4)
    batch_size: int = 1024         # edges per step
    lr: float = 4e-3
    steps_first: int = 900         # optimiser steps for the first (cold) epoch
    steps: int = 300               # for each later epoch, warm-started from the previous one
    umap_weight: float = 1.0
    recon_weight: float = 1.0
    temporal_weight: float = 0.3
    temporal_scope: str = "encoder"  # weights DVI's temporal term holds: "encoder" or "model" (DVI)
    step_weight: float = 3.0       # temporal step term: 2-D moves proportional to high-D moves
    pred_weight: float = 1.0       # prediction preservation: KL(head(h) || head(decode(encode(h))))
    pred_temperature: float = 1.0
    pred_hard_weight: float = 3.0  # cross-entropy of head(decode(encode(h))) against the predicted class
    focus_batch: int = 512         # extra samples per step drawn from those failing the round trip
    focus_every: int = 25          # steps between re-checks of which samples fail
    gpu_batch_scale: int = 4       # on a GPU: batch x4, steps / 4 (same edges, fewer launches)
    grid: int = 256                # decision map resolution (grid x grid)
    boundary_threshold: float = 0.1  # top-1 minus top-2 probability under which the map is near-white
    seed: int = 0

    @classmethod
    def reference(cls, **overrides) -> "FitConfig":
        """DVI's reference configuration (AAAI 2022): 256 x 4 MLPs, UMAP + recon + 0.3 temporal."""
        return replace(cls(width=256, depth=4, lr=1e-3, steps_first=2000, steps=1000, pred_weight=0.0,
                           pred_hard_weight=0.0, focus_batch=0, step_weight=0.0, temporal_scope="model",
                           gpu_batch_scale=1),
                       **overrides)

    @classmethod
    def build(cls, preset: str = "default", **overrides) -> "FitConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise DVIError(f"unknown fit options {unknown}; valid: {sorted(names)}")
        if preset == "default":
            cfg = cls(**overrides)
        elif preset == "reference":
            cfg = cls.reference(**overrides)
        else:
            raise DVIError(f"unknown preset {preset!r}; valid: 'default', 'reference'")
        if cfg.temporal_scope not in ("encoder", "model"):
            raise DVIError(f"temporal_scope must be 'encoder' or 'model', got {cfg.temporal_scope!r}")
        if cfg.n_neighbors < 2 or cfg.grid < 8 or cfg.steps < 0 or cfg.steps_first < 1 or cfg.batch_size < 2:
            raise DVIError(f"invalid fit options: {cfg}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=16)
def umap_ab(spread: float, min_dist: float) -> tuple[float, float]:
    """UMAP's curve 1 / (1 + a d^(2b)) fitted to its min_dist / spread target (umap-learn's find_ab_params)."""
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))
    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = curve_fit(curve, xv, yv)
    return float(a), float(b)
