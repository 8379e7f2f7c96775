"""Stage 4a: the visualization model, an encoder D -> 2 and a decoder 2 -> D.

Features are standardised (one mean vector, one global scale) before the encoder, and the
decoder predicts standardised features, so loss weights mean the same for any feature scale.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mlp(d_in: int, width: int, depth: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class VisModel(nn.Module):
    def __init__(self, dim: int, width: int = 256, depth: int = 4):
        super().__init__()
        self.dim, self.width, self.depth = dim, width, depth
        self.encoder = mlp(dim, width, depth, 2)
        self.decoder = mlp(2, width, depth, dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def set_normalisation(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(0))
        self.scale.copy_((features - self.mean).pow(2).mean().sqrt().clamp_min(1e-8))

    def normalise(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.scale

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalise(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z) * self.scale + self.mean

    # ---- storage: plain arrays + a shape description ----------------------
    def describe(self) -> dict:
        return {"dim": self.dim, "width": self.width, "depth": self.depth}

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}

    @classmethod
    def from_arrays(cls, description: dict, arrays: dict[str, np.ndarray]) -> "VisModel":
        model = cls(int(description["dim"]), int(description["width"]), int(description["depth"]))
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        return model.eval()


@torch.no_grad()
def batched(fn, x: torch.Tensor, batch: int = 16384) -> torch.Tensor:
    return torch.cat([fn(x[s:s + batch]) for s in range(0, len(x), batch)]) if len(x) else fn(x)
