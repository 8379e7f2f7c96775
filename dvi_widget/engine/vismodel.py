"""The visualization model: an encoder D -> 2 (``vis.project``) and a decoder 2 -> D (``vis.inverse``).

Features are standardised (one mean vector, one global scale) before the encoder, and the
decoder predicts standardised features, so loss weights mean the same for any feature scale.
The 2-D side is standardised too (``zmean``, ``zscale``: the layout's centre and size), so the
MLPs see unit-scale inputs and outputs whatever the layout's coordinates.

``load_vismodel(folder)`` is the one loader of a stored model (fit and results both use it): it
checks the stored description against the stored arrays before building anything.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import RunFileError

MIN_SPREAD = 1e-12   # features whose RMS spread (relative to their magnitude) is below this have "no spread"


def mlp(d_in: int, width: int, depth: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def feature_scale(features: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """RMS distance of the features from their mean, and whether it is usable.

    With no spread (all rows equal, up to float rounding) standardising would blow rounding noise
    up to unit size; the scale then falls back to the features' magnitude (or 1), so later epochs
    with real spread map to finite coordinates.
    """
    spread = (features - mean).pow(2).mean().sqrt()
    magnitude = mean.abs().max() if mean.numel() else torch.zeros(())
    if not torch.isfinite(spread) or float(spread) <= MIN_SPREAD * max(float(magnitude), 1e-30) or float(spread) == 0.0:
        fallback = float(magnitude) if float(magnitude) > 0 else 1.0
        return torch.tensor(fallback, dtype=features.dtype), False
    return spread, True


def fourier_matrix(fourier: int, scale: float, seed: int = 0) -> torch.Tensor:
    """(2, fourier) Gaussian frequencies of the decoder's input features (std ``scale``), seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((2, fourier), generator=g) * scale


class VisModel(nn.Module):
    """Encoder D -> 2 and decoder 2 -> D, with the standardisation of both sides.

    ``fourier`` > 0 gives the decoder random Fourier features of its (standardised) 2-D input,
    [z, sin(2 pi z W), cos(2 pi z W)] with W (2, fourier) fixed (Tancik et al. 2020): a plain ReLU
    MLP on 2 inputs is biased toward smooth maps and cannot carve the small regions a sample whose
    predicted class differs from its neighbours' needs; these features let it (ppr at the shown
    positions without moving samples away from their neighbours).
    """

    def __init__(self, dim: int, width: int = 256, depth: int = 4, fourier: int = 0, fourier_scale: float = 0.0):
        super().__init__()
        self.dim, self.width, self.depth, self.fourier = dim, width, depth, int(fourier)
        self.encoder = mlp(dim, width, depth, 2)
        self.decoder = mlp(2 + 2 * self.fourier, width, depth, dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("zmean", torch.zeros(2))
        self.register_buffer("zscale", torch.ones(()))
        if self.fourier:
            self.register_buffer("fourier_w", fourier_matrix(self.fourier, fourier_scale))

    def set_normalisation(self, features: torch.Tensor, what: str = "features") -> bool:
        """Standardise by these features; warns and returns False when they have no spread."""
        mean = features.mean(0)
        scale, ok = feature_scale(features, mean)
        if not ok:
            warnings.warn(f"the {what} have no spread (all samples nearly equal): the map cannot separate "
                          f"them; standardising by their magnitude instead", RuntimeWarning, stacklevel=3)
        self.mean.copy_(mean)
        self.scale.copy_(scale.to(self.scale))
        return ok

    def set_output_frame(self, positions: torch.Tensor) -> None:
        """Centre and size of the 2-D layout the encoder is fitted to / the decoder reads."""
        self.zmean.copy_(positions.mean(0))
        self.zscale.copy_((positions - positions.mean(0)).pow(2).sum(1).mean().sqrt().clamp_min(1e-6))

    def normalise(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.scale

    def normalise_z(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.zmean) / self.zscale

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalise(h)) * self.zscale + self.zmean

    def decode_normalised(self, zn: torch.Tensor) -> torch.Tensor:
        """Decoder on standardised 2-D input -> standardised features (the training losses' units)."""
        if self.fourier:
            p = (2 * torch.pi) * (zn @ self.fourier_w)
            zn = torch.cat([zn, torch.sin(p), torch.cos(p)], 1)
        return self.decoder(zn)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_normalised(self.normalise_z(z)) * self.scale + self.mean

    # ---- storage: plain arrays + a shape description ----------------------
    # The layout engine's 2-D move per unit of feature move when it is fixed for a run (the stable
    # preset; ``projection.run_step_scale``), else None. Stored in model.json, not in the arrays.
    step_scale: float | None = None

    def describe(self) -> dict:
        out = {"dim": self.dim, "width": self.width, "depth": self.depth, "fourier": self.fourier}
        if self.step_scale is not None:
            out["step_scale"] = float(self.step_scale)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}

    @classmethod
    def from_arrays(cls, description: dict, arrays: dict[str, np.ndarray]) -> "VisModel":
        """Rebuild from a description and its arrays (no file involved: see ``load_vismodel``)."""
        model = cls(int(description["dim"]), int(description["width"]), int(description["depth"]),
                    int(description.get("fourier", 0)))
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        for k in ("zmean", "zscale"):          # models stored before the 2-D frame existed
            state.setdefault(k, getattr(model, k).clone())
        model.load_state_dict(state)
        scale = description.get("step_scale")
        model.step_scale = None if scale is None else float(scale)
        return model.eval()


def _expected_shapes(dim: int, width: int, depth: int, fourier: int = 0) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of VisModel(dim, width, depth, fourier), computed without allocating it."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, d_in, d_out in (("encoder", dim, 2), ("decoder", 2 + 2 * fourier, dim)):
        d = d_in
        for layer in range(depth):
            shapes[f"{name}.{2 * layer}.weight"] = (width, d)
            shapes[f"{name}.{2 * layer}.bias"] = (width,)
            d = width
        shapes[f"{name}.{2 * depth}.weight"] = (d_out, d)
        shapes[f"{name}.{2 * depth}.bias"] = (d_out,)
    shapes.update({"mean": (dim,), "scale": (), "zmean": (2,), "zscale": ()})
    if fourier:
        shapes["fourier_w"] = (2, fourier)
    return shapes


def load_vismodel(folder: Path) -> VisModel:
    """The one loader of a fitted epoch's encoder/decoder (``model.json`` + ``model.npz`` in ``folder``).

    The description's sizes are checked against the stored arrays before anything is allocated,
    so a tampered ``model.json`` cannot make the loader build a huge model.
    """
    from ..store.rundir import _file, load_json, load_npz
    folder = _file(folder)   # a Path, or a store.fs.RemotePath for runs on fsspec file systems
    desc = load_json(folder / "model.json")
    try:
        dim, width, depth = (int(desc[k]) for k in ("dim", "width", "depth"))
        fourier = int(desc.get("fourier", 0))      # models stored before the Fourier input: 0
        if isinstance(desc, bool) or min(dim, width, depth) < 1 or not 0 <= fourier <= 4096:
            raise ValueError("sizes must be positive (fourier: 0 to 4096)")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunFileError(folder / "model.json", f"damaged run file ({exc!r})") from None
    arrays = load_npz(folder / "model.npz")
    if depth > len(arrays):   # each layer stores arrays: a deeper description is tampered (and would loop on)
        raise RunFileError(folder / "model.json", f"damaged run file (depth {depth} for {len(arrays)} arrays)")
    expected = _expected_shapes(dim, width, depth, fourier)
    optional = {"zmean", "zscale"}
    for k, shape in expected.items():
        if k not in arrays:
            if k in optional:
                continue
            raise RunFileError(folder / "model.npz", f"damaged run file (no array {k!r} for {desc})")
        if tuple(arrays[k].shape) != shape:
            raise RunFileError(folder / "model.npz", f"damaged run file ({k!r} has shape {arrays[k].shape}, "
                                                     f"model.json describes {shape})")
    extra = sorted(set(arrays) - set(expected))
    if extra:
        raise RunFileError(folder / "model.npz", f"damaged run file (unexpected arrays {extra})")
    for k, v in arrays.items():
        if not np.issubdtype(v.dtype, np.floating) or not np.isfinite(v).all():
            raise RunFileError(folder / "model.npz", f"damaged run file ({k!r} is not finite floats)")
    scale = desc.get("step_scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not math.isfinite(scale) or scale <= 0):
        raise RunFileError(folder / "model.json", f"damaged run file (step_scale {scale!r} is not a positive number)")
    return VisModel.from_arrays({"dim": dim, "width": width, "depth": depth, "fourier": fourier,
                                 "step_scale": scale}, arrays)


@torch.no_grad()
def batched(fn, x: torch.Tensor, batch: int = 16384) -> torch.Tensor:
    return torch.cat([fn(x[s:s + batch]) for s in range(0, len(x), batch)]) if len(x) else fn(x)
