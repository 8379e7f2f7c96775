"""Fit settings: ``FitConfig`` (every option documented and validated) and the named presets."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

import numpy as np

from ..errors import DVIError

PRESETS = ("default", "layout", "stable", "parametric", "reference")
# the stable preset (FitConfig.stable): rounds, blend and size of its step matching; the blend is the lowest
# that met stab_spearman 0.85 in every refit tried (0.865-0.903; 0.55 gave 0.79-0.80; benchmarks/README.md)
STABLE_ROUNDS, STABLE_BLEND, STABLE_SIZE = 8, 0.65, 0.1


@dataclass(frozen=True)
class FitConfig:
    """How ``dvi.fit`` turns recorded epochs into maps. ``FitConfig()`` is the default (``preset="layout"``).

    Pass one to ``dvi.fit(run, config=FitConfig(...))``, or give fields as keyword options
    (``dvi.fit(run, layout_epochs=60)``). Every field is checked before anything on disk changes;
    a bad one raises :class:`DVIError` naming it. Presets: ``FitConfig.preset(name)``: ``"default"``
    (= ``"layout"``), ``"stable"`` (the layout with each sample's 2-D step held to its feature step,
    ``step_rounds``: stab_spearman 0.865 on both benchmark cases where the default's is 0.06-0.14,
    at 0.94x (digits) and 0.91x (MNIST) umap-learn's nn_rate@15 at the worst epoch), ``"parametric"`` (the first engine) and
    ``"reference"`` (DVI's configuration).

    Parameters
    ----------
    engine : str, default "layout"
        ``"layout"``: lay out every sample and boundary sample with UMAP's SGD over all edges
        (warm-started and aligned from epoch to epoch), then fit the encoder (``vis.project``) and
        the decoder (``vis.inverse``) to that layout. ``"parametric"``: train an encoder/decoder MLP
        on sampled edges, the shown positions being the encoder's output (DVI's scheme).
    n_neighbors : int, default 15
        k of the high-D kNN graph of both complexes and of the temporal terms (>= 2).
    min_dist : float, default 0.1
        UMAP's min_dist: how tightly points may pack (0 <= min_dist <= spread); sets a, b.
    spread : float, default 1.0
        UMAP's spread: the scale of the embedded points (> 0).
    negative_sample_rate : int, default 14
        Negative samples per positive edge sample (>= 0; umap-learn and the parametric presets: 5).
        More negatives keep neighbourhoods better for the same work: on the benchmark cases, 12
        against 8 raised nn_rate@15 by about 2% (digits, 160 passes) and 5% (MNIST, 60 passes), and
        60 passes at 12 beat 160 at 8 on MNIST; 14 against 12 raised the worst epoch's ratio to
        umap-learn's on digits in each of 4 seeds (0.996-1.015 -> 1.014-1.022) and on MNIST
        (1.064 -> 1.094), for about 0.05 s of a 10,000-point warm epoch (benchmarks/README.md,
        "Engine speed").
    init : str, default "pca"
        Layout engine's first-epoch positions: ``"pca"`` (umap-learn's ``init="pca"``) or ``"random"``.
    layout_epochs_first : int, default 200
        Layout engine: passes over the edge set for the first (cold) epoch (umap-learn: 200-500).
    layout_epochs : int or None, default None
        Layout engine: passes for each later (warm-started) epoch (>= 0). ``None`` chooses by the
        number of samples N, as umap-learn chooses its ``n_epochs`` (500 up to 10,000 points, 200
        above): ``min(160, max(60, 600_000 // N))``, so small runs, where a pass is cheap, get more
        of them. Fewer passes hold the picture stiller but leave neighbourhoods from the previous
        epoch's features: on digits (1,797 samples) 60 passes lost 2-3% of nn_rate@15 against 160;
        on MNIST (10,000) 60 passes kept 98-99% of what 160 kept, at 40% of the cost.
    layout_updates : str, default "sequential"
        Layout engine on the CPU: ``"sequential"``: within each of a fixed set of edge chunks,
        an edge's update moves its points before the chunk's next edge is read (umap-learn's
        in-place SGD, per chunk, so the result is the same on any thread count); a pass does more,
        and 150 passes kept MNIST's neighbourhoods about as well as 250 synchronous ones (nn_rate@15
        0.321 against 0.323). ``"synchronous"``:
        every update of a pass is computed from the positions at its start (the rule of the torch
        passes, which a GPU always uses).
    layout_lr : float, default 0.5
        Layout engine: initial SGD rate of a cold layout (umap-learn's ``learning_rate``: 1.0), decays to 0.
    layout_lr_warm : float, default 0.8
        Layout engine: initial SGD rate of a warm-started layout.
    align_weight : float, default 0.05
        Layout engine: per layout epoch, each sample moves this share of the way back to its previous
        position, times the Jaccard overlap of its kNN sets at t-1 and t (0 <= align_weight <= 1).
    warm_rate_floor : float, default 0.3
        Layout engine: in a warm epoch, sample i's SGD steps are scaled by
        floor + (1 - floor) * (1 - overlap_i), so samples whose kNN sets stayed the same move less
        (1.0: every sample at the full rate; 0 <= floor <= 1).
    step_blend : float, default 0.7
        Layout engine: in a warm epoch, the locally coherent part of each sample's 2-D move (the mean
        move of the sample and its high-D neighbours) keeps its direction and gets length
        |s|^(1 - blend) * (c |dh|)^blend, tying it to the sample's high-D move dh (stab_spearman);
        the local rearrangement is kept; then layout_epochs / 6 gentle passes (0.2 x (1 - blend) of
        the warm rate) mend the local order. 0 keeps the layout's moves (0 <= blend <= 1). With
        ``step_rounds`` > 0 (the stable preset) the whole move is blended, after every round.
    step_rounds : int, default 0
        Layout engine: 0, or split each warm epoch's passes into this many rounds (the rate decaying
        from round to round) and after each set every sample's whole 2-D move from where it was shown
        to |d|^(1 - blend) * (c |dh|)^blend, with c fixed for the run (``step_size``). The layout then
        settles around moves whose lengths track the features' moves: stab_spearman 0.865-0.90 at
        some cost in nn_rate (the ``"stable"`` preset: 8 rounds, blend 0.65; 0 <= rounds <= 1000).
    step_size : float, default 0.1
        With ``step_rounds``: c is set at the first warm epoch so that c times its mean feature move is
        this share of the layout's RMS radius (so that epoch's 2-D moves are about that long), then
        stored with each epoch's model and kept for the run (> 0, <= 10).
    decoder_fourier : int, default 64
        Random Fourier features of the decoder's 2-D input (0: the plain MLP, as the parametric and
        reference presets). They let the decoder carve the small regions that samples predicted
        otherwise than their neighbours need, so fewer samples move for ppr (0 <= n <= 4096).
    fourier_scale : float, default 10.0
        Standard deviation of those features' frequencies, in cycles per unit of the standardised
        layout (whose RMS radius is 1): higher carves finer regions (0 < scale <= 1000). On digits,
        10 moved 40% fewer samples for ppr than 6 (each move costs the sample its 2-D neighbours);
        20 moved fewer still, but its regions grew smaller than a map pixel (map_consistency 0.983).
    width : int, default 64
        Hidden width of the encoder and decoder MLPs (DVI: 256; the parametric preset: 128; >= 1).
        The layout engine's decoder gets its detail from the Fourier features; 64 against 128 cost
        a step a third as much, with as many samples kept in place for ppr.
    depth : int, default 3
        Hidden layers of each MLP (DVI: 4; >= 1).
    batch_size : int, default 1024
        Edges (parametric) or nodes (layout) per optimiser step (>= 2).
    lr : float, default 4e-3
        Adam learning rate of the encoder/decoder (> 0).
    steps_first : int, default 300
        Optimiser steps of the encoder/decoder for the first epoch (>= 1). The layout engine runs
        this many for the decoder, then as many for the encoder (parametric presets: 900 joint steps).
    steps : int, default 100
        Steps for each later epoch, warm-started from the previous epoch's model (>= 0; parametric:
        300). On digits, 60 left map_consistency at 0.970 in one epoch (goal 0.99).
    carve_steps : int, default 100
        Layout engine: after the decoder's steps, at most this many more aimed at the samples whose
        predicted class it does not yet give where they are shown (``training.carve_failures``),
        before such samples are moved for ppr (>= 0); they stop as soon as none fails. Samples
        moved per epoch, digits: 38-108 with none, 16-64 with 60, 10-57 with 100 (nn_rate@15
        +1-2%); MNIST 10k: 20-65 with 100 against 36-138 with 60, for 0.2 s more per epoch.
    umap_weight : float, default 1.0
        Parametric engine: weight of the UMAP cross-entropy (>= 0).
    recon_weight : float, default 1.0
        Weight of the reconstruction MSE of the decoder, in standardised feature units (>= 0).
    temporal_weight : float, default 0.3
        Parametric engine: DVI's temporal term, neighbour-preserving rate times weight drift (>= 0).
    temporal_scope : str, default "encoder"
        Parametric engine: weights the temporal term holds, ``"encoder"`` or ``"model"`` (DVI).
    step_weight : float, default 3.0
        Parametric engine: ties each sample's 2-D move to its high-D move (>= 0).
    pred_weight : float, default 1.0
        Prediction preservation: KL(head(h) || head(decode(z))) at the shown position z (>= 0).
    pred_temperature : float, default 1.0
        Temperature of that KL (> 0).
    pred_hard_weight : float, default 3.0
        Cross-entropy of head(decode(z)) against the predicted class, so the argmax survives (>= 0).
    focus_batch : int, default 512
        Extra samples per step drawn from those whose prediction does not survive the inverse (>= 0).
    focus_every : int, default 25
        Steps between re-checks of which samples fail (>= 1).
    gpu_batch_scale : int, default 4
        On a GPU: batch x this, steps / this (same work, fewer kernel launches; >= 1).
    grid : int, default 256
        Decision map resolution, grid x grid pixels (8 <= grid <= 4096).
    boundary_threshold : float, default 0.1
        Top-1 minus top-2 probability under which a map pixel is near-white (0 <= t < 1).
    seed : int, default 0
        Seed of every random draw of the fit (>= 0).

    Threads are not a fit option: see ``dvi.fit``'s ``threads``. A fit is reproducible at a given thread
    count; on another count torch's float reductions round differently, and the layout, which
    amplifies small differences, comes out as a different (equally faithful) picture.
    """

    engine: str = "layout"
    n_neighbors: int = 15
    min_dist: float = 0.1
    spread: float = 1.0
    negative_sample_rate: int = 14
    init: str = "pca"
    layout_epochs_first: int = 200
    layout_epochs: int | None = None
    layout_updates: str = "sequential"
    layout_lr: float = 0.5
    layout_lr_warm: float = 0.8
    align_weight: float = 0.05
    warm_rate_floor: float = 0.3
    step_blend: float = 0.7
    step_rounds: int = 0
    step_size: float = 0.1
    decoder_fourier: int = 64
    fourier_scale: float = 10.0
    width: int = 64
    depth: int = 3
    batch_size: int = 1024
    lr: float = 4e-3
    steps_first: int = 300
    steps: int = 100
    carve_steps: int = 100
    umap_weight: float = 1.0
    recon_weight: float = 1.0
    temporal_weight: float = 0.3
    temporal_scope: str = "encoder"
    step_weight: float = 3.0
    pred_weight: float = 1.0
    pred_temperature: float = 1.0
    pred_hard_weight: float = 3.0
    focus_batch: int = 512
    focus_every: int = 25
    gpu_batch_scale: int = 4
    grid: int = 256
    boundary_threshold: float = 0.1
    seed: int = 0

    def __post_init__(self):
        validate(self)

    # ---- presets ---------------------------------------------------------
    @classmethod
    def parametric(cls, **overrides) -> "FitConfig":
        """The first engine: a parametric MLP trained on sampled edges (shown = encode(h))."""
        return cls(**{"engine": "parametric", "negative_sample_rate": 5, "steps_first": 900, "steps": 300,
                      "decoder_fourier": 0, "width": 128, **overrides})

    @classmethod
    def stable(cls, **overrides) -> "FitConfig":
        """The layout engine holding each sample's 2-D step to its feature step (stab_spearman
        0.865-0.90 on the benchmark cases), at the cost of some nn_rate (see ``step_rounds``; benchmarks/README.md)."""
        # the rounds hold every sample to its step, so the default's pull toward the previous position
        # and its slower rate for samples whose neighbourhood stayed are dropped: with them (at blend 0.8),
        # digits lost 0.01 of nn_rate@15 and 0.015 of stab_spearman
        return cls(**{"step_rounds": STABLE_ROUNDS, "step_blend": STABLE_BLEND, "step_size": STABLE_SIZE,
                      "align_weight": 0.0, "warm_rate_floor": 1.0,
                      "layout_epochs": 160, **overrides})   # its rounds were tuned at 160 passes

    @classmethod
    def reference(cls, **overrides) -> "FitConfig":
        """DVI's reference configuration (AAAI 2022): 256 x 4 MLPs, UMAP + recon + 0.3 temporal."""
        base = dict(engine="parametric", negative_sample_rate=5, width=256, depth=4, lr=1e-3, steps_first=2000, steps=1000,
                    pred_weight=0.0, pred_hard_weight=0.0, focus_batch=0, step_weight=0.0,
                    temporal_scope="model", gpu_batch_scale=1, decoder_fourier=0)
        return cls(**{**base, **overrides})

    @classmethod
    def preset(cls, name: str = "default", **overrides) -> "FitConfig":
        """A named preset with fields overridden: "default" (= "layout"), "stable", "parametric", "reference"."""
        check_names(overrides)
        if name in ("default", "layout"):
            return cls(**overrides)
        if name == "stable":
            return cls.stable(**overrides)
        if name == "parametric":
            return cls.parametric(**overrides)
        if name == "reference":
            return cls.reference(**overrides)
        raise DVIError(f"unknown preset {name!r}; valid: {list(PRESETS)}")

    build = preset   # the name earlier versions used

    def to_dict(self) -> dict:
        """Plain JSON-ready values (numpy scalars become Python numbers)."""
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, stored: dict) -> "FitConfig":
        """A stored configuration; one written before the layout engine existed was parametric, and
        one written before the decoder's Fourier input had none."""
        if not isinstance(stored, dict):
            raise DVIError(f"fit options must be a dict, got {type(stored).__name__}")
        check_names(stored)
        return cls(**{"engine": "parametric", "decoder_fourier": 0, **stored} if "engine" not in stored
                   else {"decoder_fourier": 0, **stored})


def check_names(options: dict) -> None:
    names = [f.name for f in fields(FitConfig)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise DVIError(f"unknown fit options {unknown}; valid: {names}")


def _int(name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise DVIError(f"fit option {name} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise DVIError(f"fit option {name} must be {_range(lo, hi)}, got {v!r}")


def _float(name, v, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise DVIError(f"fit option {name} must be a number, got {v!r}")
    if not math.isfinite(float(v)):
        raise DVIError(f"fit option {name} must be finite, got {v!r}")
    bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        raise DVIError(f"fit option {name} must be {_range(lo, hi, lo_open, hi_open)}, got {v!r}")


def _range(lo, hi, lo_open=False, hi_open=False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    return " and ".join(parts)


def _choice(name, v, options):
    if v not in options:
        raise DVIError(f"fit option {name} must be one of {list(options)}, got {v!r}")


def validate(cfg: FitConfig) -> None:
    """Raise DVIError naming the first invalid field of ``cfg``."""
    _choice("engine", cfg.engine, ("layout", "parametric"))
    _int("n_neighbors", cfg.n_neighbors, 2, 200)
    _float("spread", cfg.spread, 0, None, lo_open=True)
    _float("min_dist", cfg.min_dist, 0, cfg.spread if isinstance(cfg.spread, (int, float)) else None)
    _int("negative_sample_rate", cfg.negative_sample_rate, 0, 100)
    _choice("init", cfg.init, ("pca", "random"))
    _int("layout_epochs_first", cfg.layout_epochs_first, 1, 100_000)
    if cfg.layout_epochs is not None:
        _int("layout_epochs", cfg.layout_epochs, 0, 100_000)
    _choice("layout_updates", cfg.layout_updates, ("sequential", "synchronous"))
    _float("layout_lr", cfg.layout_lr, 0, 100, lo_open=True)
    _float("layout_lr_warm", cfg.layout_lr_warm, 0, 100, lo_open=True)
    _float("align_weight", cfg.align_weight, 0, 1)
    _float("warm_rate_floor", cfg.warm_rate_floor, 0, 1)
    _float("step_blend", cfg.step_blend, 0, 1)
    _int("step_rounds", cfg.step_rounds, 0, 1000)
    _float("step_size", cfg.step_size, 0, 10, lo_open=True)
    _int("decoder_fourier", cfg.decoder_fourier, 0, 4096)
    _float("fourier_scale", cfg.fourier_scale, 0, 1000, lo_open=True)
    _int("width", cfg.width, 1, 8192)
    _int("depth", cfg.depth, 1, 64)
    _int("batch_size", cfg.batch_size, 2, 10_000_000)
    _float("lr", cfg.lr, 0, 10, lo_open=True)
    _int("steps_first", cfg.steps_first, 1, 10_000_000)
    _int("steps", cfg.steps, 0, 10_000_000)
    _int("carve_steps", cfg.carve_steps, 0, 10_000_000)
    for name in ("umap_weight", "recon_weight", "temporal_weight", "step_weight", "pred_weight",
                 "pred_hard_weight"):
        _float(name, getattr(cfg, name), 0, 1e6)
    _choice("temporal_scope", cfg.temporal_scope, ("encoder", "model"))
    _float("pred_temperature", cfg.pred_temperature, 0, 1e3, lo_open=True)
    _int("focus_batch", cfg.focus_batch, 0, 10_000_000)
    _int("focus_every", cfg.focus_every, 1, 10_000_000)
    _int("gpu_batch_scale", cfg.gpu_batch_scale, 1, 1024)
    _int("grid", cfg.grid, 8, 4096)
    _float("boundary_threshold", cfg.boundary_threshold, 0, 1, hi_open=True)
    _int("seed", cfg.seed, 0, 2 ** 63 - 1)


def warm_passes(cfg: FitConfig, n: int) -> int:
    """Passes of a warm-started layout epoch over ``n`` samples (``FitConfig.layout_epochs``)."""
    if cfg.layout_epochs is not None:
        return cfg.layout_epochs
    return min(160, max(60, 600_000 // max(n, 1)))


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
