"""Stage 4b: train the encoder/decoder of one epoch.

Loss = UMAP cross-entropy on edges sampled in proportion to their weight, with negatives
drawn from the batch (parametric UMAP's scheme)
     + recon_weight * MSE of decode(encode(h)) in standardised feature space
     + pred_weight * KL(softmax(head(h)) || softmax(head(decode(encode(h)))))
     + pred_hard_weight * cross-entropy of head(decode(encode(h))) against the predicted class,
       with extra samples drawn from those whose prediction currently fails the round trip
     + temporal_weight * (batch's mean neighbour-preserving rate t-1 -> t) * ||theta - theta_{t-1}||^2
       over the encoder's weights (DVI: the whole model, ``temporal_scope="model"``)
     + step_weight * relative squared error between each sample's 2-D move and c times its
       high-D move (c fitted once per epoch)
The two temporal terms keep the picture still where the features did not move: DVI's holds
the weights near the previous epoch's; the step term ties each point's 2-D move to its own
high-D move, which is what stab_spearman measures.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .complexes import Complex, sampler
from .config import FitConfig, umap_ab
from .rng import on_device, randint
from .vismodel import VisModel, batched


def umap_losses(za: torch.Tensor, zb: torch.Tensor, a: float, b: float, neg_rate: int,
                generator: torch.Generator) -> torch.Tensor:
    """Attraction on the sampled edges plus repulsion from ``neg_rate`` shuffled partners each."""
    d2 = (za - zb).pow(2).sum(1)
    attract = torch.log1p(a * d2.clamp_min(1e-12).pow(b))
    n = len(za)
    perm = randint(generator, n, n * neg_rate, za.device)
    zn = zb[perm]
    dn2 = (za.repeat_interleave(neg_rate, 0) - zn).pow(2).sum(1)
    q = 1.0 / (1.0 + a * dn2.clamp_min(1e-12).pow(b))
    repel = -torch.log((1.0 - q).clamp_min(1e-4))
    return (attract.sum() + repel.sum()) / n


@torch.no_grad()
def round_trip_failures(model: VisModel, head: nn.Module, h: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Indices of samples whose predicted class changes through decode(encode(h))."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(h), 8192):
        out.append(head(model.decode(model.encode(h[s:s + 8192]))).argmax(1) != pred[s:s + 8192])
    model.train(was)
    return torch.nonzero(torch.cat(out)).flatten()


def neighbour_preserving_rate(knn_now: torch.Tensor, knn_prev: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of its k high-D neighbours at t-1 that are still neighbours at t."""
    n, k = knn_now.shape
    same = (knn_now[:, :, None] == knn_prev[:, None, :]).any(2)
    return same.float().sum(1) / k


def train_projection(model: VisModel, head: nn.Module, nodes: torch.Tensor, teacher: torch.Tensor,
                     cx: Complex, cfg: FitConfig, steps: int, generator: torch.Generator,
                     prev: VisModel | None = None, rate: torch.Tensor | None = None,
                     prev_embedding: torch.Tensor | None = None, high_step: torch.Tensor | None = None,
                     progress=None) -> list[float]:
    """Optimise ``model`` in place on one epoch's complex; returns the loss every 50 steps.

    nodes: (N+M, D) raw features of samples then boundary samples; teacher: softmax(head(nodes)/T).
    """
    a, b = umap_ab(cfg.spread, cfg.min_dist)
    xn = model.normalise(nodes).detach()
    generator = on_device(generator, nodes.device)    # every draw of the loop on the model's device
    draw = sampler(cx.weights, generator)
    edges = cx.edges
    opt = adam(model.parameters(), cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1))))
    # DVI's weight-drift term holds the encoder (the layout) only: the decoder must follow the
    # new head every epoch, or the round trip loses predictions (ppr)
    held = (lambda m: m.encoder.parameters()) if cfg.temporal_scope == "encoder" else (lambda m: m.parameters())
    prev_params = [p.detach().clone() for p in held(prev)] if prev is not None else None
    log_teacher = teacher.clamp_min(1e-8).log()
    hard = teacher.argmax(1)
    T = cfg.pred_temperature
    step_target = None
    if cfg.step_weight and prev_embedding is not None and high_step is not None:
        # Temporal step term: each sample's 2-D move should be proportional to its high-D move.
        # The scale c is fitted once, by least squares, to the moves of the warm-started model.
        with torch.no_grad():
            d0 = (batched(model.encode, nodes[: cx.n_samples]) - prev_embedding).norm(dim=1)
            c = (d0 * high_step).sum() / high_step.pow(2).sum().clamp_min(1e-12)
            step_target = c * high_step
            step_norm = step_target.pow(2).mean().clamp_min(1e-12)
    history = []
    failing = torch.zeros(0, dtype=torch.long, device=nodes.device)
    model.train()
    for step in range(steps):
        if cfg.focus_batch and cfg.pred_weight and step % cfg.focus_every == 0:
            failing = round_trip_failures(model, head, nodes[: cx.n_samples], hard[: cx.n_samples])
        e = draw(cfg.batch_size)
        ia, ib = edges[e, 0], edges[e, 1]
        if len(failing):
            # samples whose prediction does not survive the round trip get extra weight (ppr)
            pick = randint(generator, len(failing), cfg.focus_batch, failing.device)
            extra = failing[pick]
        else:
            extra = failing
        z = model.encoder(xn[torch.cat([ia, ib, extra])])
        za, zb = z[: len(ia)], z[len(ia): 2 * len(ia)]
        loss = cfg.umap_weight * umap_losses(za, zb, a, b, cfg.negative_sample_rate, generator)
        if cfg.recon_weight or cfg.pred_weight:
            # round-trip terms on one end of each edge plus the failing samples: half the
            # decoder work of using both ends, and the edge ends are already a weighted sample
            idx = torch.cat([ia, extra])
            rec = model.decode_normalised(torch.cat([za, z[2 * len(ia):]]))
            if cfg.recon_weight:
                loss = loss + cfg.recon_weight * F.mse_loss(rec, xn[idx])
            if cfg.pred_weight:
                logits = head(rec * model.scale + model.mean) / T
                kl = (teacher[idx] * (log_teacher[idx] - F.log_softmax(logits, 1))).sum(1).mean()
                loss = loss + cfg.pred_weight * kl * T * T
                if cfg.pred_hard_weight:
                    # the argmax itself must survive the round trip (ppr), not only the soft shape
                    loss = loss + cfg.pred_hard_weight * F.cross_entropy(logits * T, hard[idx])
        if step_target is not None:
            own = ia[ia < cx.n_samples]
            za_own = za[ia < cx.n_samples]
            moved = (za_own - prev_embedding[own]).norm(dim=1)
            loss = loss + cfg.step_weight * (moved - step_target[own]).pow(2).mean() / step_norm
        if prev_params is not None and cfg.temporal_weight and rate is not None:
            samples = ia[ia < cx.n_samples]
            r = rate[samples].mean() if len(samples) else rate.mean()
            drift = sum((p - p0).pow(2).sum() for p, p0 in zip(held(model), prev_params))
            loss = loss + cfg.temporal_weight * r * drift
        _optimiser_step(opt, sched, loss, step, history, progress)
    model.eval()
    return history


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its fused kernel where torch has one (CPU and CUDA): one pass over all parameters
    per step instead of a dozen small ops per tensor. On the MNIST benchmark's warm fit (300 steps
    of a 64-wide encoder and decoder, 2 threads) the per-tensor update took 0.13 s, the fused 0.01 s
    (cProfile of ``dvi.fit``)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused)


def _optimiser_step(opt, sched, loss: torch.Tensor, step: int, history: list[float], progress) -> None:
    """One Adam step on ``loss`` with the schedule advanced; the loss logged every 50 steps."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if step % 50 == 0:
        history.append(float(loss.detach()))
    if progress is not None:
        progress.update(1)


@torch.no_grad()
def inverse_failures(model: VisModel, head: nn.Module, z: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Indices of samples whose predicted class is not what head(decode(z)) gives at their shown position z."""
    was = model.training
    model.eval()
    out = [head(model.decode(z[s:s + 8192])).argmax(1) != pred[s:s + 8192] for s in range(0, len(z), 8192)]
    model.train(was)
    return torch.nonzero(torch.cat(out)).flatten() if out else pred.new_zeros(0)


def aims_at_failures(cfg: FitConfig) -> bool:
    """Whether the layout engine's decoder steps draw extra samples from those that fail the inverse
    (a focus batch, and a prediction term to train them on)."""
    return bool(cfg.focus_batch and (cfg.pred_weight or cfg.pred_hard_weight))


def fit_to_layout(model: VisModel, head: nn.Module, nodes: torch.Tensor, positions: torch.Tensor,
                  teacher: torch.Tensor, n_samples: int, cfg: FitConfig, steps: int, generator: torch.Generator,
                  progress=None, encoder: bool = True, decoder: bool = True,
                  until_none_fail: bool = False) -> list[float]:
    """Layout engine: fit the encoder to the layout and the decoder to its inverse, in place.

    nodes: (V, D) raw features (samples then boundary samples); positions: (V, 2) their layout.
    Encoder loss: MSE of encode(h) to the layout position (``vis.project`` lands where the point is
    shown). Decoder loss at the shown positions: recon_weight * MSE in standardised feature units
    + pred_weight * KL(teacher || head(decode(z))) + pred_hard_weight * cross-entropy against the
    predicted class, with ``focus_batch`` extra samples drawn from those whose prediction does not
    survive decode at the shown position (re-checked every ``focus_every`` steps). The two losses
    touch disjoint weights, so one Adam step trains both. ``until_none_fail``: stop at the first
    re-check that finds no failing sample. Returns the loss every 50 steps.
    """
    xn = model.normalise(nodes).detach()
    zn = model.normalise_z(positions).detach()
    params = (list(model.encoder.parameters()) if encoder else []) + (list(model.decoder.parameters()) if decoder else [])
    opt = adam(params, cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1))))
    log_teacher = teacher.clamp_min(1e-8).log()
    hard = teacher.argmax(1)
    T = cfg.pred_temperature
    V = len(nodes)
    failing = torch.zeros(0, dtype=torch.long, device=nodes.device)
    history = []
    batch = min(cfg.batch_size, V)
    generator = on_device(generator, nodes.device)    # every draw of the loop on the model's device
    model.train()
    for step in range(steps):
        if decoder and aims_at_failures(cfg) and step % cfg.focus_every == 0:
            failing = inverse_failures(model, head, positions[:n_samples], hard[:n_samples])
            if until_none_fail and not len(failing):
                break
        idx = randint(generator, V, batch, nodes.device)
        if len(failing):
            pick = randint(generator, len(failing), cfg.focus_batch, nodes.device)
            didx = torch.cat([idx, failing[pick]])
        else:
            didx = idx
        loss = F.mse_loss(model.encoder(xn[idx]), zn[idx]) if encoder else 0.0
        if decoder:
            rec = model.decode_normalised(zn[didx])
            if cfg.recon_weight:
                loss = loss + cfg.recon_weight * F.mse_loss(rec, xn[didx])
            if cfg.pred_weight or cfg.pred_hard_weight:
                logits = head(rec * model.scale + model.mean) / T
                if cfg.pred_weight:
                    kl = (teacher[didx] * (log_teacher[didx] - F.log_softmax(logits, 1))).sum(1).mean()
                    loss = loss + cfg.pred_weight * kl * T * T
                if cfg.pred_hard_weight:
                    loss = loss + cfg.pred_hard_weight * F.cross_entropy(logits * T, hard[didx])
        _optimiser_step(opt, sched, loss, step, history, progress)
    model.eval()
    return history


def carve_failures(model: VisModel, head: nn.Module, nodes: torch.Tensor, positions: torch.Tensor,
                   teacher: torch.Tensor, n_samples: int, cfg: FitConfig, steps: int, generator: torch.Generator,
                   progress=None) -> list[float]:
    """Layout engine, after :func:`fit_to_layout`: decoder steps aimed at the samples that still fail.

    Each step trains the decoder on the samples whose predicted class it does not give at their
    shown position (``focus_batch`` of them, re-checked every 10 steps) plus a quarter batch of
    others, so the rest of the map holds, at half the rate; it stops when none fails. Every sample
    carved a region here is one :func:`place_failures` need not move away from its neighbours: on
    digits, with 100 steps 10-57 samples per epoch moved instead of 38-108 (nn_rate@15 +1-2%).
    """
    if not aims_at_failures(cfg):
        return []      # nothing aims the steps at failing samples: there is nothing to carve
    carve = replace(cfg, batch_size=max(2, cfg.batch_size // 4), focus_every=10, lr=cfg.lr / 2)
    return fit_to_layout(model, head, nodes, positions, teacher, n_samples, carve, steps, generator,
                         progress=progress, encoder=False, until_none_fail=True)


@torch.no_grad()
def place_failures(model: VisModel, head: nn.Module, pos: torch.Tensor, pred: torch.Tensor, knn: torch.Tensor,
                   margin: float = 0.0, bisections: int = 10) -> tuple[torch.Tensor, int]:
    """Layout engine, last step: move each sample whose prediction the decoder does not give at its position.

    The decoder cannot carve an island for every sample whose predicted class differs from its 2-D
    neighbours'. Such a sample i moves the shortest way into a region where the decoder gives its
    class: toward each of its high-D neighbours j (its ``knn`` row) that has the same predicted class
    and is shown where the decoder gives it, the boundary is found by bisection on the segment i -> j,
    and i goes ``margin`` past it (a map pixel, so the map under the point shows the class too); the
    nearest of these spots wins. With no such neighbour, the nearest such sample in 2-D serves as j.
    A class the decoder gives at none of its samples is gathered around its medoid. Returns
    (positions, number of samples moved).
    """
    from .knn import exact_knn
    fail = inverse_failures(model, head, pos, pred)
    if not len(fail):
        return pos, 0
    pos = pos.clone()
    ok = torch.ones(len(pos), dtype=torch.bool, device=pos.device)
    ok[fail] = False
    nb = knn[fail]                                           # (F, k) high-D neighbours
    F, k = nb.shape
    good = ok[nb] & (pred[nb] == pred[fail][:, None])
    # candidates: the qualifying high-D neighbours, plus the nearest qualifying sample in 2-D
    extra = torch.full((F,), -1, dtype=torch.long, device=pos.device)
    for c in torch.unique(pred[fail]).tolist():
        rows = torch.nonzero(pred[fail] == c).flatten()
        pool = torch.nonzero(ok & (pred == c)).flatten()
        if len(pool):
            near, _ = exact_knn(pos[pool], 1, queries=pos[fail[rows]])
            extra[rows] = pool[near[:, 0]]
        else:   # the decoder gives this class at none of its samples: gather them at their medoid
            members = torch.nonzero(pred == c).flatten()
            centre = pos[members].median(0).values
            pos[fail[rows]] = pos[members[(pos[members] - centre).norm(dim=1).argmin()]].clone()
    cand = torch.cat([nb, extra[:, None]], 1)                # (F, k + 1)
    valid = torch.cat([good, (extra >= 0)[:, None]], 1)
    f_rep = fail[:, None].expand(F, k + 1)[valid]
    j_rep = cand[valid]
    if not len(f_rep):
        return pos, 0
    start, end = pos[f_rep], pos[j_rep]
    cls = pred[f_rep]

    def passes(t: torch.Tensor) -> torch.Tensor:
        z = start + t[:, None] * (end - start)
        return batched(lambda q: head(model.decode(q)), z).argmax(1) == cls
    lo = torch.zeros(len(f_rep), device=pos.device)
    hi = torch.ones(len(f_rep), device=pos.device)
    for _ in range(bisections):
        mid = (lo + hi) / 2
        p = passes(mid)
        hi = torch.where(p, mid, hi)
        lo = torch.where(p, lo, mid)
    length = (end - start).norm(dim=1).clamp_min(1e-12)
    t = (hi + margin / length).clamp_max(1.0)
    t = torch.where(passes(t), t, torch.ones_like(t))        # past the boundary, or on j itself
    dist = t * length
    # the nearest spot per failing sample
    order = torch.argsort(dist)
    f_sorted = f_rep[order]
    uniq, inv = torch.unique(f_sorted, return_inverse=True)
    best = torch.full((len(uniq),), len(order), dtype=torch.long, device=pos.device)
    best.scatter_reduce_(0, inv, torch.arange(len(order), device=pos.device), reduce="amin")
    pick = order[best]
    z = start[pick] + t[pick, None] * (end[pick] - start[pick])
    pos[f_rep[pick]] = z
    return pos, int(len(uniq))
