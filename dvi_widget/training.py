"""Stage 4b: train the encoder/decoder of one epoch.

Loss = UMAP cross-entropy on edges sampled in proportion to their weight, with negatives
drawn from the batch (parametric UMAP's scheme)
     + recon_weight * MSE of decode(encode(h)) in standardised feature space
     + pred_weight * KL(softmax(head(h)) || softmax(head(decode(encode(h)))))
     + temporal_weight * (batch's mean neighbour-preserving rate t-1 -> t) * ||theta - theta_{t-1}||^2
The temporal term is DVI's: samples whose neighbourhoods did not change hold the model
near the previous epoch's weights, so their positions stay put.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .complexes import Complex, sampler
from .config import FitConfig, umap_ab
from .vismodel import VisModel


def umap_losses(za: torch.Tensor, zb: torch.Tensor, a: float, b: float, neg_rate: int,
                generator: torch.Generator) -> torch.Tensor:
    """Attraction on the sampled edges plus repulsion from ``neg_rate`` shuffled partners each."""
    d2 = (za - zb).pow(2).sum(1)
    attract = torch.log1p(a * d2.clamp_min(1e-12).pow(b))
    n = len(za)
    perm = torch.randint(0, n, (n * neg_rate,), generator=generator).to(za.device)
    zn = zb[perm]
    dn2 = (za.repeat_interleave(neg_rate, 0) - zn).pow(2).sum(1)
    q = 1.0 / (1.0 + a * dn2.clamp_min(1e-12).pow(b))
    repel = -torch.log((1.0 - q).clamp_min(1e-4))
    return (attract.sum() + repel.sum()) / n


def neighbour_preserving_rate(knn_now: torch.Tensor, knn_prev: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of its k high-D neighbours at t-1 that are still neighbours at t."""
    n, k = knn_now.shape
    same = (knn_now[:, :, None] == knn_prev[:, None, :]).any(2)
    return same.float().sum(1) / k


def train_projection(model: VisModel, head: nn.Module, nodes: torch.Tensor, teacher: torch.Tensor,
                     cx: Complex, cfg: FitConfig, steps: int, generator: torch.Generator,
                     prev: VisModel | None = None, rate: torch.Tensor | None = None, progress=None) -> list[float]:
    """Optimise ``model`` in place on one epoch's complex; returns the loss every 50 steps.

    nodes: (N+M, D) raw features of samples then boundary samples; teacher: softmax(head(nodes)/T).
    """
    a, b = umap_ab(cfg.spread, cfg.min_dist)
    xn = model.normalise(nodes).detach()
    draw = sampler(cx.weights, generator)
    edges = cx.edges
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1))))
    prev_params = [p.detach().clone() for p in prev.parameters()] if prev is not None else None
    log_teacher = teacher.clamp_min(1e-8).log()
    T = cfg.pred_temperature
    history = []
    model.train()
    for step in range(steps):
        e = draw(cfg.batch_size)
        ia, ib = edges[e, 0], edges[e, 1]
        idx = torch.cat([ia, ib])
        z = model.encoder(xn[idx])
        za, zb = z[: len(ia)], z[len(ia):]
        loss = cfg.umap_weight * umap_losses(za, zb, a, b, cfg.negative_sample_rate, generator)
        if cfg.recon_weight or cfg.pred_weight:
            rec = model.decoder(z)
            if cfg.recon_weight:
                loss = loss + cfg.recon_weight * F.mse_loss(rec, xn[idx])
            if cfg.pred_weight:
                logits = head(rec * model.scale + model.mean) / T
                kl = (teacher[idx] * (log_teacher[idx] - F.log_softmax(logits, 1))).sum(1).mean()
                loss = loss + cfg.pred_weight * kl * T * T
        if prev_params is not None and cfg.temporal_weight and rate is not None:
            samples = ia[ia < cx.n_samples]
            r = rate[samples].mean() if len(samples) else rate.mean()
            drift = sum((p - p0).pow(2).sum() for p, p0 in zip(model.parameters(), prev_params))
            loss = loss + cfg.temporal_weight * r * drift
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            history.append(float(loss.detach()))
        if progress is not None:
            progress.update(1)
    model.eval()
    return history
