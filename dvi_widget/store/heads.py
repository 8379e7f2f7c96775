"""Store a classifier head as a description plus weights, and rebuild it without running stored code.

A head is the module that maps features to logits. It is saved as JSON (the layer types and
their sizes) and a ``.npz`` of weights, so loading a run never unpickles anything.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DVIError, RunFileError
from .rundir import load_json, load_npz

# Layer types a head may contain, with the constructor arguments read off an instance.
_LAYERS = {
    "Linear": lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    "ReLU": lambda m: {},
    "LeakyReLU": lambda m: {"negative_slope": m.negative_slope},
    "GELU": lambda m: {"approximate": m.approximate},
    "ELU": lambda m: {"alpha": m.alpha},
    "SiLU": lambda m: {},
    "Tanh": lambda m: {},
    "Sigmoid": lambda m: {},
    "Identity": lambda m: {},
    "Dropout": lambda m: {"p": m.p},
    "Flatten": lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    "BatchNorm1d": lambda m: {"num_features": m.num_features, "eps": m.eps, "affine": m.affine,
                              "track_running_stats": m.track_running_stats},
    "LayerNorm": lambda m: {"normalized_shape": list(m.normalized_shape), "eps": m.eps,
                            "elementwise_affine": m.elementwise_affine},
}


def _leaves(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        out = []
        for child in module:
            out.extend(_leaves(child))
        return out
    return [module]


def describe_head(head: nn.Module) -> tuple[dict, dict[str, np.ndarray]]:
    """Return (description, weights) for a head made of supported layers."""
    if not isinstance(head, nn.Module):
        raise DVIError(f"head must be a torch.nn.Module mapping features to logits, got {type(head).__name__}")
    layers, weights = [], {}
    for i, layer in enumerate(_leaves(head)):
        kind = type(layer).__name__
        if kind not in _LAYERS or type(layer).__module__.split(".")[0] != "torch":
            raise DVIError(
                f"head contains a {kind} layer, which dvi_widget cannot store without pickling code; "
                f"a head may use {sorted(_LAYERS)} (nested in nn.Sequential)")
        layers.append({"type": kind, "args": _LAYERS[kind](layer)})
        for name, t in layer.state_dict().items():
            weights[f"{i}.{name}"] = t.detach().cpu().numpy()
    return {"layers": layers}, weights


def build_head(description: dict, weights: dict[str, np.ndarray]) -> nn.Sequential:
    """Rebuild a head from its description and weights (eval mode, CPU)."""
    mods = []
    for i, spec in enumerate(description["layers"]):
        kind = spec["type"]
        if kind not in _LAYERS:
            raise DVIError(f"unknown head layer type {kind!r}")
        args = dict(spec["args"])
        if kind == "LayerNorm":
            args["normalized_shape"] = tuple(args["normalized_shape"])
        layer = getattr(nn, kind)(**args)
        state = {k.split(".", 1)[1]: torch.from_numpy(np.array(v)) for k, v in weights.items()
                 if k.split(".", 1)[0] == str(i)}
        layer.load_state_dict(state)
        mods.append(layer)
    return nn.Sequential(*mods).eval()


def save_head(folder: Path, description: dict, weights: dict[str, np.ndarray]) -> None:
    (folder / "head.json").write_text(json.dumps(description))
    np.savez(folder / "head.npz", **weights)


def load_head(folder: Path) -> nn.Sequential:
    description = load_json(folder / "head.json")
    weights = load_npz(folder / "head.npz")
    try:
        return build_head(description, weights)
    except (KeyError, TypeError, RuntimeError, DVIError) as e:
        raise RunFileError(folder / "head.npz", f"damaged head ({e})") from None
