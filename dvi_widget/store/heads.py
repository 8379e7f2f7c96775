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
from .limits import materialize, npz_headers
from .rundir import fetch, load_json, load_npz, write_json, save_npz

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


def _layer_args(kind: str, args) -> dict:
    if not isinstance(args, dict):
        raise TypeError(f"layer arguments must be an object, got {type(args).__name__}")
    args = dict(args)
    if kind == "LayerNorm" and "normalized_shape" in args:
        args["normalized_shape"] = tuple(args["normalized_shape"])
    for k, v in args.items():   # sizes are ints; nothing else (no nested objects) is an argument
        if not isinstance(v, (int, float, bool, str, tuple)) and v is not None:
            raise TypeError(f"argument {k!r} of a {kind} layer has type {type(v).__name__}")
    return args


def _layers(description) -> list[tuple[str, dict]]:
    if not isinstance(description, dict) or not isinstance(description.get("layers"), list):
        raise TypeError("a head description is {\"layers\": [...]}")
    out = []
    for spec in description["layers"]:
        if not isinstance(spec, dict) or spec.get("type") not in _LAYERS:
            raise DVIError(f"unknown head layer {str(spec)[:60]}")
        out.append((spec["type"], _layer_args(spec["type"], spec.get("args", {}))))
    return out


def build_head(description: dict, weights: dict[str, np.ndarray]) -> nn.Sequential:
    """Rebuild a head from its description and weights (eval mode, CPU)."""
    mods = []
    for i, (kind, args) in enumerate(_layers(description)):
        layer = getattr(nn, kind)(**args)
        state = {k.split(".", 1)[1]: torch.from_numpy(np.array(v)) for k, v in weights.items()
                 if k.split(".", 1)[0] == str(i)}
        layer.load_state_dict(state)
        mods.append(layer)
    return nn.Sequential(*mods).eval()


def save_head(folder: Path, description: dict, weights: dict[str, np.ndarray]) -> None:
    write_json(folder / "head.json", description)
    save_npz(folder / "head.npz", **weights)


def load_head(folder: Path) -> nn.Sequential:
    """Rebuild a stored head. Sizes in head.json are checked against head.npz's headers first:

    the layers are built on torch's ``meta`` device, their shapes compared with the stored
    arrays', and only then given memory (``store.limits.materialize``).
    """
    jpath, wpath = folder / "head.json", folder / "head.npz"
    description = load_json(jpath)
    shapes = {}
    wpath, cap = fetch(wpath)    # one download on an object store, read twice below
    for name, (shape, _dtype) in npz_headers(wpath, cap).items():
        i, _, rest = name.partition(".")
        shapes[f"{i}.{rest}"] = shape

    def build():
        return nn.Sequential(*[getattr(nn, kind)(**args) for kind, args in _layers(description)])
    try:
        model = materialize(build, shapes, jpath, "head")
    except DVIError as e:
        if isinstance(e, RunFileError):
            raise
        raise RunFileError(jpath, f"damaged head description ({e})") from None
    weights = load_npz(wpath)
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    except (KeyError, TypeError, RuntimeError) as e:
        raise RunFileError(wpath, f"damaged head ({e})") from None
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise RunFileError(wpath, f"head weights {name} hold NaN or Inf")
    return model.eval()
