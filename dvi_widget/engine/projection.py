"""Stage 4, the chain's link: one epoch's projection, warm-started from the previous epoch's.

Two engines (``FitConfig.engine``): ``"layout"`` lays the points out with UMAP's SGD (aligned to
the previous epoch) and fits an encoder/decoder to that layout; ``"parametric"`` trains the
encoder/decoder on sampled edges and shows encode(h). Both return the model, the shown positions
of samples and boundary samples, and an info dict stored in the fit's info.json.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import torch

from .config import FitConfig, umap_ab, warm_passes
from .decision_map import settle_on_map
from .knn import exact_knn
from .layout import blend_steps, jaccard_overlap, optimize_layout, pca_init, place_boundary
from .metrics import overlap_rate, query_subset
from ..progress import Progress
from .training import carve_failures, fit_to_layout, place_failures, train_projection
from .vismodel import VisModel, batched, feature_scale


def _same_arch(model: VisModel | None, dim: int, cfg: FitConfig) -> bool:
    return (model is not None and model.dim == dim and (model.width, model.depth) == (cfg.width, cfg.depth)
            and model.fourier == cfg.decoder_fourier)


def _fresh_model(dim: int, cfg: FitConfig, epoch: int, device: torch.device) -> VisModel:
    with torch.random.fork_rng(devices=[]):  # the user's global random state is left alone
        torch.manual_seed(cfg.seed + epoch)
        model = VisModel(dim, cfg.width, cfg.depth, cfg.decoder_fourier, cfg.fourier_scale)
    return model.to(device)


def fit_parametric(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, rate, prev_emb, step, progress):
    """The parametric engine: train encoder/decoder on sampled edges; the shown positions are encode(h)."""
    if _same_arch(prev_model, H.shape[1], cfg):
        model = copy.deepcopy(prev_model)   # keeps the previous standardisation: no global jump
        scale, ok = feature_scale(H, H.mean(0))
        if ok and not (0.01 < float(scale / model.scale) < 100):
            model.set_normalisation(H)      # the previous epoch's had no spread or another scale
        steps = cfg.steps
    else:
        prev_model = None  # feature size or architecture changed: start afresh
        model = _fresh_model(H.shape[1], cfg, epoch, device)
        model.set_normalisation(H)
        steps = cfg.steps_first
    run_cfg = cfg
    if device.type == "cuda" and cfg.gpu_batch_scale > 1:
        # A GPU is launch-bound at these sizes: fewer, larger steps see as many edges.
        k = cfg.gpu_batch_scale
        run_cfg = replace(cfg, batch_size=cfg.batch_size * k, focus_batch=cfg.focus_batch * k,
                          focus_every=max(1, cfg.focus_every // k))
        steps = max(1, -(-steps // k))
    with torch.no_grad():
        teacher = torch.softmax(batched(head, nodes) / cfg.pred_temperature, 1)
    with Progress(steps, f"fit epoch {epoch}", unit="step", enabled=progress) as bar:
        history = train_projection(model, head, nodes, teacher, cx, run_cfg, steps, gen,
                                   prev=prev_model, rate=rate, prev_embedding=prev_emb, high_step=step,
                                   progress=bar)
    with torch.no_grad():
        emb = batched(model.encode, H)
        bemb = batched(model.encode, B) if len(B) else torch.zeros((0, 2), device=device)
    return model, emb, bemb, {"steps": steps, "loss_history": history}


def _nn_rate(knn: torch.Tensor, pos: torch.Tensor) -> float:
    """nn_rate@k of a layout on the metrics' query subset (a diagnostic stored in info.json)."""
    q = torch.from_numpy(query_subset(len(pos))).to(pos.device)
    low, _ = exact_knn(pos, knn.shape[1], queries=pos[q], query_index=q)
    return float(overlap_rate(knn[q], low).mean())


def run_step_scale(prev_model: VisModel | None, prev_emb: torch.Tensor, high_step: torch.Tensor,
                   size: float) -> float | None:
    """The stable preset's scale: 2-D move per unit of feature move, one for the whole run.

    The first warm-started epoch sets it so that its mean 2-D move is ``size`` times the layout's
    RMS radius; each epoch's model stores it (model.json) and the next reads it back, so epochs
    fitted in separate calls share it (stab_spearman pools all epoch pairs: a scale that changed
    from pair to pair would cost it even if every pair's steps tracked the features'). None when
    nothing moved in feature space (no scale can be set from that; the next epoch tries again).
    """
    stored = getattr(prev_model, "step_scale", None)
    if stored is not None:
        return float(stored)
    radius = float((prev_emb - prev_emb.mean(0)).pow(2).sum(1).mean().sqrt())
    mean = float(high_step.mean())
    if not (mean > 0 and radius > 0):
        return None
    return size * radius / mean


@torch.no_grad()
def align_similarity(pos: torch.Tensor, prev: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``pos`` moved by the rotation, uniform scale and shift that best map it onto ``prev``.

    Weighted least squares (Umeyama's solution, no reflection), each sample weighted by how much its
    kNN set stayed the same. A warm-started layout drifts as a whole: the SGD's repulsion keeps
    spreading it, so on the benchmark cases its RMS radius grew every epoch (digits 8.0 -> 13.1 over
    5 epochs, MNIST 9.6 -> 11.4 over 8), which the user sees as the map swelling and every point
    moving outward. Rotation, scale and shift carry no information in a UMAP layout (nn_rate is
    unchanged by them), so the drift is removed and only the samples' moves relative to each other
    remain (digits: radius 9.3 -> 8.9).
    """
    w = weight.float().clamp_min(0)
    if float(w.sum()) <= 0:
        w = torch.ones_like(w)
    w = w / w.sum()
    mp, mq = (w[:, None] * pos).sum(0), (w[:, None] * prev).sum(0)
    a, b = pos - mp, prev - mq
    cov = (w[:, None, None] * b[:, :, None] * a[:, None, :]).sum(0)          # sum w b a^T (2 x 2)
    u, sv, vt = torch.linalg.svd(cov.double())
    d = torch.ones(2, dtype=torch.float64)
    d[1] = torch.sign(torch.linalg.det(u @ vt))                              # a rotation, not a reflection
    rot = (u * d) @ vt
    var = float((w * a.pow(2).sum(1)).sum())
    if var <= 0:
        return pos
    scale = float((sv * d).sum()) / var
    return ((scale * a.double() @ rot.T) + mq.double()).float()


def fit_layout(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, prev_fit, prev_knn, prev_h, progress):
    """The layout engine: UMAP's SGD on every node (warm-started and aligned), then encoder/decoder fitted to it."""
    a, b = umap_ab(cfg.spread, cfg.min_dist)
    n = len(H)
    warm = prev_fit is not None and prev_h is not None and prev_fit["embedding"].shape == (n, 2)
    timings = {}
    t = time.perf_counter()
    # the samples are laid out among themselves (UMAP's graph); boundary samples are placed after
    own = (cx.edges < n).all(1)
    edges, weights = cx.edges[own], cx.weights[own]
    if warm:
        prev_emb = torch.from_numpy(prev_fit["embedding"]).float().to(device)
        if prev_model is not None and prev_model.dim == H.shape[1]:
            # the previous encoder applied to the new features moves each point by its feature change
            start = prev_emb + batched(prev_model.encode, H) - batched(prev_model.encode, prev_h)
        else:
            start = prev_emb
        overlap = jaccard_overlap(cx.knn, prev_knn[:, : cx.knn.shape[1]])
        # a sample whose neighbourhood changed starts where its new neighbours were (kNN interpolation)
        near = prev_emb[cx.knn].mean(1)
        start = overlap[:, None] * start + (1 - overlap[:, None]) * near
        pull = cfg.align_weight * overlap
        rate = cfg.warm_rate_floor + (1 - cfg.warm_rate_floor) * (1 - overlap)
        epochs, lr, anchor = warm_passes(cfg, n), cfg.layout_lr_warm, start.clone()
    else:
        start = pca_init(H, gen) if cfg.init == "pca" else torch.rand((n, 2), generator=gen).to(device) * 10
        pull, anchor, rate, epochs, lr = None, None, None, cfg.layout_epochs_first, cfg.layout_lr
    sequential = cfg.layout_updates == "sequential"
    scale = None
    if warm:
        high = (H - prev_h).norm(dim=1)   # each sample's feature move, which its 2-D move is tied to
        if cfg.step_rounds:
            scale = run_step_scale(prev_model, prev_emb, high, cfg.step_size)
    with Progress(epochs, f"layout epoch {epoch}", unit="pass", enabled=progress) as bar:
        if scale is not None:
            # stable preset: the passes run in rounds, and after each every sample's move from where it was
            # shown gets the length scale * |dh_i| (blended), so the layout settles around moves that track
            # the features' moves instead of rescaling them once afterwards
            pos, rounds = start, cfg.step_rounds
            for k in range(rounds):
                n_k = epochs // rounds + (1 if k < epochs % rounds else 0)
                pos = optimize_layout(pos, edges, weights, n_k, a, b, generator=gen,
                                      negative_sample_rate=cfg.negative_sample_rate, lr=lr * (1 - k / rounds),
                                      anchor=anchor, anchor_weight=pull, point_rate=rate, progress=bar,
                                      sequential=sequential)
                pos = blend_steps(prev_emb, pos, high, cfg.step_blend, scale=scale)
        else:
            pos = optimize_layout(start, edges, weights, epochs, a, b, generator=gen,
                                  negative_sample_rate=cfg.negative_sample_rate, lr=lr, anchor=anchor,
                                  anchor_weight=pull, point_rate=rate, progress=bar, sequential=sequential)
    if warm and 0 < cfg.step_blend and scale is None:
        # each neighbourhood's move gets a length that tracks its features' move (stab_spearman);
        # the local rearrangement the layout made is kept (blend_steps with knn)
        pos = blend_steps(prev_emb, pos, high, cfg.step_blend, knn=cx.knn)
        repair = max(1, epochs // 6)     # a few gentle passes mend local order around the rescaled moves
        pos = optimize_layout(pos, edges, weights, repair, a, b, generator=gen,
                              negative_sample_rate=cfg.negative_sample_rate, lr=0.2 * lr * (1 - cfg.step_blend),
                              point_rate=rate, sequential=sequential)
    if warm and scale is None:
        # (the stable preset's rounds already hold every sample to its step from where it was shown)
        pos = align_similarity(pos, prev_emb, overlap)
    pos = torch.cat([pos, place_boundary(H, B, pos, cfg.n_neighbors)])
    timings["layout_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if _same_arch(prev_model, H.shape[1], cfg):
        model, steps = copy.deepcopy(prev_model), cfg.steps
    else:
        model, steps = _fresh_model(H.shape[1], cfg, epoch, device), cfg.steps_first
    model.step_scale = scale          # stored in model.json: the next epoch keeps the run's scale
    if scale is not None:
        timings["step_scale"] = scale
    model.set_normalisation(H)
    model.set_output_frame(pos[:n])
    with torch.no_grad():
        teacher = torch.softmax(batched(head, nodes) / cfg.pred_temperature, 1)
    pred = teacher[:n].argmax(1)
    timings["nn_rate_layout"] = _nn_rate(cx.knn, pos[:n])
    with Progress(2 * steps + cfg.carve_steps, f"fit epoch {epoch}", unit="step", enabled=progress) as bar:
        history = fit_to_layout(model, head, nodes, pos, teacher, n, cfg, steps, gen, progress=bar, encoder=False)
        history += carve_failures(model, head, nodes, pos, teacher, n, cfg, cfg.carve_steps, gen, progress=bar)
        # ppr first: a sample the decoder cannot give its class where it lies moves next to a neighbour
        # where it can (see place_failures)
        side = float((pos[:n].max(0).values - pos[:n].min(0).values).max()) * 1.16   # padded_extent's side
        shown, moved = place_failures(model, head, pos[:n], pred, cx.knn, margin=0.75 * side / cfg.grid)
        shown, settled = settle_on_map(model, head, shown, pred, cfg.grid)
        pos = torch.cat([shown, pos[n:]])
        history += fit_to_layout(model, head, nodes, pos, teacher, n, cfg, steps, gen, progress=bar, decoder=False)
    timings["settled_on_map"] = settled
    timings["maps_s"] = time.perf_counter() - t
    timings["moved_for_ppr"] = moved
    return model, pos[:n].contiguous(), pos[n:].contiguous(), {"steps": steps, "layout_epochs": epochs,
                                                             "loss_history": history, **timings}
