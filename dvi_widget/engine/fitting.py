"""Fit a recorded run, epoch by epoch: complexes -> projection -> decision map -> metrics.

Each epoch is a function of its own capture and of the previous epoch's fit (the warm start
and the temporal term), so epochs stream from disk one pair at a time, and a later
scheduler can run the stages elsewhere. Re-running fits only what is new or stale.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import replace

import numpy as np
import torch

from .complexes import build_complex
from .config import FitConfig, check_names, umap_ab
from .decision_map import decision_map, padded_extent, settle_on_map
from ..errors import DVIError
from ..store.heads import load_head
from .knn import exact_knn
from .metrics import epoch_metrics, overlap_rate, query_subset
from ..palette import class_colors
from ..progress import Progress, track
from ..store.lock import writes_run
from ..store.rundir import RunDir, load_json, load_npz, save_npz, write_json
from .layout import blend_steps, jaccard_overlap, optimize_layout, pca_init, place_boundary
from .metrics import project_error
from .threads import fit_threads
from .training import fit_to_layout, neighbour_preserving_rate, place_failures, train_projection
from .vismodel import VisModel, batched, feature_scale, load_vismodel


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named device, checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DVIError(f"fit option device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DVIError(f"fit option device={device!r}: no CUDA device is available here; use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DVIError(f"fit option device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DVIError(f"fit option device={device!r}: MPS is not available here; use 'auto' or 'cpu'")
    elif dev.type != "cpu":
        raise DVIError(f"fit option device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def capture_id(run: RunDir, epoch: int) -> str:
    return str(load_json(run.epoch_dir(epoch) / "capture.json")["id"])


def _same_arch(model: VisModel | None, dim: int, cfg: FitConfig) -> bool:
    return model is not None and model.dim == dim and (model.width, model.depth) == (cfg.width, cfg.depth)


def _fresh_model(dim: int, cfg: FitConfig, epoch: int, device: torch.device) -> VisModel:
    with torch.random.fork_rng(devices=[]):  # the user's global random state is left alone
        torch.manual_seed(cfg.seed + epoch)
        model = VisModel(dim, cfg.width, cfg.depth)
    return model.to(device)


def _parametric(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, rate, prev_emb, step, progress):
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


def _layout(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, prev_fit, prev_knn, prev_h, progress):
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
        epochs, lr, anchor = cfg.layout_epochs, cfg.layout_lr_warm, start.clone()
    else:
        start = pca_init(H, gen) if cfg.init == "pca" else torch.rand((n, 2), generator=gen).to(device) * 10
        pull, anchor, rate, epochs, lr = None, None, None, cfg.layout_epochs_first, cfg.layout_lr
    with Progress(epochs, f"layout epoch {epoch}", unit="pass", enabled=progress) as bar:
        pos = optimize_layout(start, edges, weights, epochs, a, b, generator=gen,
                              negative_sample_rate=cfg.negative_sample_rate, lr=lr, anchor=anchor,
                              anchor_weight=pull, point_rate=rate, progress=bar)
    if warm and 0 < cfg.step_blend:
        pos = blend_steps(prev_emb, pos, (H - prev_h).norm(dim=1), cfg.step_blend)
        repair = max(1, epochs // 6)     # a few gentle passes mend local order around the rescaled moves
        pos = optimize_layout(pos, edges, weights, repair, a, b, generator=gen,
                              negative_sample_rate=cfg.negative_sample_rate, lr=0.2 * lr * (1 - cfg.step_blend),
                              point_rate=rate)
    pos = torch.cat([pos, place_boundary(H, B, pos, cfg.n_neighbors)])
    timings["layout_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if _same_arch(prev_model, H.shape[1], cfg):
        model, steps = copy.deepcopy(prev_model), cfg.steps
    else:
        model, steps = _fresh_model(H.shape[1], cfg, epoch, device), cfg.steps_first
    model.set_normalisation(H)
    model.set_output_frame(pos[:n])
    with torch.no_grad():
        teacher = torch.softmax(batched(head, nodes) / cfg.pred_temperature, 1)
    pred = teacher[:n].argmax(1)
    timings["nn_rate_layout"] = _nn_rate(cx.knn, pos[:n])
    with Progress(2 * steps, f"fit epoch {epoch}", unit="step", enabled=progress) as bar:
        history = fit_to_layout(model, head, nodes, pos, teacher, n, cfg, steps, gen, progress=bar, encoder=False)
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


def fit_epoch(run: RunDir, epoch: int, prev_epoch: int | None, cfg: FitConfig, device: torch.device,
              progress: bool = True) -> dict:
    """Fit one epoch and write its fit folder atomically. Returns its metrics."""
    t0 = time.perf_counter()
    folder = run.epoch_dir(epoch)
    cap = load_npz(folder / "features.npz", ("features", "boundary"))
    outs = load_npz(folder / "outputs.npz", ("predictions", "probabilities"))
    head = load_head(folder).to(device)
    for p in head.parameters():
        p.requires_grad_(False)
    H = torch.from_numpy(cap["features"]).float().to(device)
    B = torch.from_numpy(cap["boundary"]).float().to(device).reshape(-1, H.shape[1])
    n = len(H)
    if n != run.n:
        raise DVIError(f"epoch {epoch} has features for {n} samples, the run has N={run.n}: {folder / 'features.npz'}")
    nodes = torch.cat([H, B])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)

    t = time.perf_counter()
    cx = build_complex(H, B, cfg.n_neighbors)
    complex_s = time.perf_counter() - t

    prev_model, rate, prev_fit, prev_emb, step, prev_knn, prev_h_t = None, None, None, None, None, None, None
    if prev_epoch is not None:
        prev_model = load_vismodel(run.fit_dir(prev_epoch)).to(device)
        prev_fit = load_npz(run.fit_dir(prev_epoch) / "fit.npz", ("knn", "embedding"))
        prev_knn = torch.from_numpy(prev_fit["knn"]).to(device)
        if prev_knn.shape[0] != n or prev_knn.shape[1] < cx.knn.shape[1]:
            prev_fit, prev_knn = None, None      # another k or N: no temporal terms
        else:
            rate = neighbour_preserving_rate(cx.knn, prev_knn[:, : cx.knn.shape[1]])
            prev_h = load_npz(run.epoch_dir(prev_epoch) / "features.npz", ("features",))["features"]
            if prev_h.shape == cap["features"].shape:
                prev_h_t = torch.from_numpy(prev_h).float().to(device)
                step = torch.from_numpy(np.linalg.norm(cap["features"] - prev_h, axis=1)).float().to(device)
                prev_emb = torch.from_numpy(prev_fit["embedding"]).float().to(device)

    if cfg.engine == "layout":
        model, emb, bemb, info = _layout(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, prev_fit,
                                         prev_knn, prev_h_t, progress)
    else:
        model, emb, bemb, info = _parametric(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, rate,
                                             prev_emb, step, progress)
    t = time.perf_counter()
    with torch.no_grad():
        projected = batched(model.encode, H)
        # ppr and the map are measured where the widget shows each sample
        recon_probs = torch.softmax(batched(lambda z: head(model.decode(z)), emb), 1).cpu().numpy()
    emb_np = emb.cpu().numpy().astype(np.float32)
    extent = padded_extent(emb_np)
    colors = class_colors(len(run.classes))
    background, grid_class = decision_map(model, head, extent, cfg.grid, colors, cfg.boundary_threshold, device)
    map_s = time.perf_counter() - t

    t = time.perf_counter()
    queries = query_subset(n)
    metrics = epoch_metrics(features=H, boundary=B, embedding=emb, boundary_embedding=bemb, knn=cx.knn,
                            queries=queries, probs=outs["probabilities"], recon_probs=recon_probs,
                            labels=run.labels(), split=run.split(), grid_class=grid_class, extent=extent)
    metrics.update(project_error(projected.cpu().numpy(), emb_np, extent))
    high_step = low_step = np.zeros(0, np.float32)
    if step is not None:
        high_step = step.cpu().numpy()[queries].astype(np.float32)
        low_step = np.linalg.norm(emb_np[queries] - prev_fit["embedding"][queries], axis=1).astype(np.float32)
    metrics_s = time.perf_counter() - t

    with run.write_fit(epoch) as tmp:
        save_npz(tmp / "fit.npz", embedding=emb_np, boundary_embedding=bemb.cpu().numpy().astype(np.float32),
                 extent=np.asarray(extent, np.float64), background=background, grid_class=grid_class,
                 knn=cx.knn.cpu().numpy().astype(np.int32), high_step=high_step, low_step=low_step,
                 recon_predictions=recon_probs.argmax(1).astype(np.int64))
        save_npz(tmp / "model.npz", **model.arrays())
        write_json(tmp / "model.json", model.describe())
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "info.json", {"prev_epoch": prev_epoch, "capture_id": capture_id(run, epoch),
                                       "seconds": time.perf_counter() - t0, "engine": cfg.engine,
                                       "complex_s": complex_s, "map_s": map_s, "metrics_s": metrics_s,
                                       "device": str(device), "threads": torch.get_num_threads(), **info})
    return metrics


def _stale(run: RunDir, recorded: list[int], fitted: set[int]) -> list[int]:
    """Recorded epochs to (re)fit: unfitted, re-captured, or fitted after another predecessor; and all after."""
    for pos, e in enumerate(recorded):
        prev = recorded[pos - 1] if pos else None
        if e not in fitted:
            return recorded[pos:]
        try:
            info = load_json(run.fit_dir(e) / "info.json")
            ok = info.get("prev_epoch") == prev and info.get("capture_id") == capture_id(run, e)
        except DVIError:
            ok = False
        if not ok:
            return recorded[pos:]
    return []


def resolve_config(config: FitConfig | None, preset: str | None, options: dict,
                   stored: dict | None) -> FitConfig:
    """The configuration a fit call asks for, validated (raises DVIError naming a bad option).

    ``config`` and ``options`` combine (options override the config's fields); ``preset`` names a
    starting point. With none of them, a run fitted before keeps its stored options.
    """
    if config is not None and not isinstance(config, FitConfig):
        raise DVIError(f"config must be a dvi.FitConfig, got {type(config).__name__}")
    if config is not None and preset is not None:
        raise DVIError("pass either config= or preset=, not both (a FitConfig already holds a preset's values)")
    if preset is not None and not isinstance(preset, str):
        raise DVIError(f"preset must be a string, got {preset!r}")
    if config is None and preset is None and not options and stored is not None:
        return FitConfig.from_dict(stored)     # new epochs as the earlier ones
    if config is not None:
        check_names(options)
        return replace(config, **options)       # replace() re-validates every field
    return FitConfig.preset(preset or "default", **options)


@writes_run("dvi.fit")   # one writer per run; leftovers of killed writers are recovered under the lock
def fit(run: str | os.PathLike, config: FitConfig | None = None, *, preset: str | None = None,
        device: str = "auto", refit: bool = False, progress: bool = True, threads: int | None = None,
        **options):
    """Fit every recorded epoch not yet fitted and return the :class:`Visualization`.

    Parameters
    ----------
    run : path of a recorded run directory.
    config : a :class:`FitConfig` (every field documented there); ``options`` override its fields.
    preset : ``"default"`` (= ``"layout"``: UMAP's SGD layout, aligned across epochs, with an
        encoder and decoder fitted to it), ``"parametric"`` (the first engine: an encoder/decoder MLP
        trained on sampled edges) or ``"reference"`` (DVI's own configuration).
    device : ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    refit : fit every epoch again (required to change the options of a fitted run).
    progress : progress bars / lines (also off with ``TQDM_DISABLE=1``).
    threads : torch intra-op threads during the fit. ``None`` chooses: an explicit choice already
        made (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, or ``torch.set_num_threads`` called) is kept;
        otherwise min(cores available, 2), and 1 when the 1-minute load average already exceeds the
        core count. torch's previous count is restored afterwards (see ``dvi_widget.engine.threads``).
    **options : FitConfig fields, e.g. ``layout_epochs=60``.

    With no config, preset or options, a run fitted before keeps the options it was fitted with.
    Asking for other options than the stored fits used is an error unless ``refit=True``. Every
    option is checked before anything on disk changes.
    """
    from ..results import Visualization
    from .threads import choose_threads
    rd = RunDir(run)
    cfg_path = rd.path / "fits" / "config.json"
    stored = load_json(cfg_path) if cfg_path.exists() else None
    # ---- validate everything before touching the run directory ----
    for name, v in (("refit", refit), ("progress", progress)):
        if not isinstance(v, bool):
            raise DVIError(f"fit option {name} must be True or False, got {v!r}")
    cfg = resolve_config(config, preset, options, None if refit else stored)
    dev = resolve_device(device)
    n_threads = choose_threads(threads)
    if stored is not None and not refit:
        try:
            same = FitConfig.from_dict(stored) == cfg
        except DVIError:
            same = False
        if not same:
            have = stored if isinstance(stored, dict) else {}
            diff = {k: (have.get(k), v) for k, v in cfg.to_dict().items() if have.get(k) != v}
            raise DVIError(f"{rd.path} was fitted with other options {diff} (stored, asked); "
                           f"pass refit=True (CLI: --refit) to fit every epoch again")
    recorded = rd.recorded_epochs()
    if not recorded:
        raise DVIError(f"no epochs recorded in {rd.path}; call Recorder.capture() first")
    # ---- from here on the run directory changes ----
    (rd.path / "fits").mkdir(exist_ok=True)
    if refit:
        rd.remove_fits(rd.fitted_epochs())
    write_json(cfg_path, cfg.to_dict())
    todo = _stale(rd, recorded, set(rd.fitted_epochs(verify=True)))   # only whole fits count as fitted
    with fit_threads(n_threads):
        for e in track(todo, "fitting epochs", unit="epoch", enabled=progress and len(todo) > 1):
            pos = recorded.index(e)
            fit_epoch(rd, e, recorded[pos - 1] if pos else None, cfg, dev, progress)
    # drop fits of epochs that are no longer recorded (never happens through the API, but keep it clean)
    rd.remove_fits([e for e in rd.fitted_epochs() if e not in recorded])
    return Visualization(rd.path)


__all__ = ["fit", "fit_epoch", "resolve_device", "load_vismodel"]

