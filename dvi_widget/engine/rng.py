"""Random draws on the fit's device, all seeded from the fit's one CPU generator.

A fit draws from one ``torch.Generator`` on the CPU (seeded from ``FitConfig.seed`` and the epoch),
so a CPU fit is reproducible and unchanged by where its tensors live. On a GPU, drawing on the host
and copying each draw to the device costs a host-to-device copy that also waits for every queued
kernel. The layout's negative samples are the bulk: 4.6 million draws per pass at 50,000 x 512
(the GPU benchmark's size; 60 passes a warm epoch, 200 a cold one), 0.01-0.05 s of host time per
pass on this project's CPUs plus a 35 MiB copy: 0.6-2.8 s of draws and 2.1 GiB of copies in a warm
epoch, against the GPU goal of 1 s (``python benchmarks/negatives.py``). So the hot loops draw from
a generator on their device, seeded once per loop from the CPU one.
"""
from __future__ import annotations

import torch


def on_device(generator: torch.Generator, device: torch.device | str) -> torch.Generator:
    """A generator for draws on ``device``: ``generator`` itself on the CPU (so CPU fits draw exactly
    as before), else a new one on the device seeded from ``generator`` (one draw from it), or
    ``generator`` itself, untouched, where the device has no generator of its own.

    Draw with :func:`randint` (or with ``device=g.device``, then move the result to the tensor's device).
    """
    device = torch.device(device)
    if device.type == "cpu":
        return generator
    try:
        own = torch.Generator(device=device)
    except RuntimeError:          # a backend without a generator of its own: draw on the host
        return generator
    return own.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))


def randint(generator: torch.Generator, high: int, n: int, device: torch.device) -> torch.Tensor:
    """``n`` integers in [0, high) drawn where ``generator`` lives, returned on ``device`` (a no-op move
    when the generator from :func:`on_device` is already there)."""
    return torch.randint(0, high, (n,), generator=generator, device=generator.device).to(device)


__all__ = ["on_device", "randint"]
