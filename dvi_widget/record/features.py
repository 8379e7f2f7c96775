"""Stage 1: the penultimate representation of every recorded sample, batched on the model's device."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DVIError

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


class Inputs:
    """Uniform batched access to a tensor / array (N, ...) or a Dataset yielding (x, y)."""

    def __init__(self, inputs):
        if isinstance(inputs, np.ndarray):
            inputs = torch.from_numpy(inputs)
        if isinstance(inputs, torch.Tensor):
            self._tensor, self._dataset = inputs, None
            self.n = int(inputs.shape[0]) if inputs.ndim else 0
        elif hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__"):
            self._tensor, self._dataset = None, inputs
            self.n = len(inputs)
        else:
            raise DVIError(f"inputs must be a tensor (N, ...) or a torch Dataset yielding (x, y), "
                           f"got {type(inputs).__name__}")

    def get(self, idx: np.ndarray | Sequence[int]) -> torch.Tensor:
        idx = np.asarray(idx, dtype=np.int64)
        if self._tensor is not None:
            return self._tensor[torch.from_numpy(idx)]
        xs = []
        for i in idx:
            item = self._dataset[int(i)]
            x = item[0] if isinstance(item, (tuple, list)) else item
            xs.append(torch.as_tensor(x))
        return torch.stack(xs)

    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.get([0]).shape[1:])


def resolve_features(model: nn.Module | None, features) -> tuple[FeatureFn, Callable[[], None]]:
    """Turn ``features`` (a callable, or the name of a layer of ``model``) into x -> (B, D).

    Returns the function and a clean-up that removes any forward hook it installed.
    """
    if isinstance(features, str):
        if model is None:
            raise DVIError("features given as a layer name needs the model: capture(model, features='layer', ...)")
        try:
            layer = model.get_submodule(features)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            raise DVIError(f"model has no layer named {features!r}; its layers: {names[:40]}") from None
        store: dict[str, torch.Tensor] = {}
        handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("out", o))

        def fn(x: torch.Tensor) -> torch.Tensor:
            model(x)
            return store.pop("out")
        return fn, handle.remove
    if callable(features):
        return features, lambda: None
    raise DVIError(f"features must be a callable x -> (B, D), a layer name, or an (N, D) array; "
                   f"got {type(features).__name__}")


def as_matrix(h: torch.Tensor, batch: int) -> torch.Tensor:
    """Flatten a feature batch to (B, D), checking it has one row per input."""
    if isinstance(h, (tuple, list)):
        raise DVIError("features returned a tuple/list; it must return one tensor (B, D)")
    if not isinstance(h, torch.Tensor):
        h = torch.as_tensor(h)
    if h.ndim == 0 or h.shape[0] != batch:
        raise DVIError(f"features returned shape {tuple(h.shape)} for a batch of {batch} inputs; "
                       f"expected ({batch}, D)")
    return h.reshape(batch, -1)


def module_device(*modules) -> torch.device:
    for m in modules:
        if isinstance(m, nn.Module):
            for p in m.parameters():
                return p.device
            for b in m.buffers():
                return b.device
    return torch.device("cpu")


@torch.no_grad()
def extract(fn: FeatureFn, inputs: Inputs, device: torch.device, batch_size: int = 512,
            progress=None) -> torch.Tensor:
    """Features of every input, (N, D) float32 on the CPU."""
    out = []
    for start in range(0, inputs.n, batch_size):
        idx = np.arange(start, min(start + batch_size, inputs.n))
        x = inputs.get(idx).to(device)
        h = as_matrix(fn(x), len(idx)).float().cpu()
        out.append(h)
        if progress is not None:
            progress.update(len(idx))
    return torch.cat(out)


def check_finite(h: torch.Tensor | np.ndarray, what: str = "features") -> None:
    h = torch.as_tensor(h)
    bad = ~torch.isfinite(h)
    if bad.any():
        rows = torch.nonzero(bad.any(dim=1)).flatten()
        kind = "NaN" if torch.isnan(h).any() else "Inf"
        raise DVIError(f"{what} contain {kind} values in {len(rows)} rows (first: {rows[:5].tolist()})")
