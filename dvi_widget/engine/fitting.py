"""Fit a recorded run, epoch by epoch: complexes -> projection -> decision map -> metrics.

Each epoch is a function of its own capture and of the previous epoch's fit (the warm start
and the temporal term), so epochs stream from disk one pair at a time, and a later
scheduler can run the stages elsewhere. Re-running fits only what is new or stale.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .complexes import Complex, build_complex
from .config import FitConfig, check_names
from .decision_map import decision_map, padded_extent
from ..errors import DVIError
from ..store.heads import load_head
from .metrics import epoch_metrics, projection_errors, query_subset
from ..palette import class_colors
from ..store.lock import writes_run
from ..store.rundir import RunDir, load_json, load_npz, save_npz, write_json
from .projection import fit_layout, fit_parametric
from .training import neighbour_preserving_rate
from .vismodel import VisModel, batched, load_vismodel


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


@dataclass
class EpochInput:
    """Stage 1-3's output for one epoch: its capture loaded and its complex built.

    Independent of every other epoch, so a scheduler may prepare epochs in any order or at once.
    """
    epoch: int
    capture_id: str
    features: torch.Tensor        # H (N, D)
    boundary: torch.Tensor        # B (M, D)
    head: torch.nn.Module         # the classifier's head, frozen
    probabilities: np.ndarray     # (N, C) the classifier's outputs
    complex: Complex
    complex_s: float


@dataclass
class Previous:
    """What the chain's next link needs of the previous epoch's fit."""
    epoch: int
    model: VisModel
    embedding: np.ndarray         # (N, 2) float32, the shown positions
    knn: torch.Tensor             # (N, k) high-D kNN
    features: np.ndarray          # (N, D) float32


@dataclass
class Link:
    """Stage 4's output (the sequential chain): the projection of one epoch."""
    model: VisModel
    embedding: torch.Tensor       # (N, 2) shown positions of the samples
    boundary_embedding: torch.Tensor
    prev_epoch: int | None
    step: torch.Tensor | None     # (N,) high-D step since the previous epoch, when comparable
    prev_embedding: np.ndarray | None
    info: dict


def prepare_epoch(run: RunDir, epoch: int, cfg: FitConfig, device: torch.device) -> EpochInput:
    """Stages 1-3: load epoch ``epoch``'s capture and head, and build its kNN graph and complex."""
    folder = run.epoch_dir(epoch)
    cap = load_npz(folder / "features.npz", ("features", "boundary"))
    outs = load_npz(folder / "outputs.npz", ("predictions", "probabilities"))
    head = load_head(folder).to(device)
    for p in head.parameters():
        p.requires_grad_(False)
    H = torch.from_numpy(cap["features"]).float().to(device)
    B = torch.from_numpy(cap["boundary"]).float().to(device).reshape(-1, H.shape[1])
    if len(H) != run.n:
        raise DVIError(f"epoch {epoch} has features for {len(H)} samples, the run has N={run.n}: "
                       f"{folder / 'features.npz'}")
    t = time.perf_counter()
    cx = build_complex(H, B, cfg.n_neighbors)
    return EpochInput(epoch, capture_id(run, epoch), H, B, head, outs["probabilities"], cx,
                      time.perf_counter() - t)


def load_previous(run: RunDir, epoch: int, device: torch.device) -> Previous:
    """The previous epoch's fit, as :func:`project_epoch` needs it, read from the run directory."""
    fit = load_npz(run.fit_dir(epoch) / "fit.npz", ("knn", "embedding"))
    feats = load_npz(run.epoch_dir(epoch) / "features.npz", ("features",))["features"]
    return Previous(epoch, load_vismodel(run.fit_dir(epoch)).to(device), fit["embedding"],
                    torch.from_numpy(fit["knn"]).to(device), feats)


def previous_of(inp: EpochInput, link: Link) -> Previous:
    """The same :class:`Previous` as :func:`load_previous` would read, from a link still in memory."""
    return Previous(inp.epoch, link.model, link.embedding.cpu().numpy().astype(np.float32),
                    inp.complex.knn.to(torch.int32),
                    inp.features.cpu().numpy().astype(np.float32))


def project_epoch(inp: EpochInput, prev: Previous | None, cfg: FitConfig, device: torch.device,
                  progress: bool = True) -> Link:
    """Stage 4, sequential: fit epoch ``inp.epoch``'s projection, warm-started from ``prev``."""
    H, B, cx, epoch = inp.features, inp.boundary, inp.complex, inp.epoch
    n = len(H)
    nodes = torch.cat([H, B])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    prev_model, rate, prev_fit, prev_emb, step, prev_knn, prev_h_t = None, None, None, None, None, None, None
    if prev is not None:
        prev_model = prev.model
        prev_fit = {"embedding": prev.embedding}
        prev_knn = prev.knn
        if prev_knn.shape[0] != n or prev_knn.shape[1] < cx.knn.shape[1]:
            prev_fit, prev_knn = None, None      # another k or N: no temporal terms
        else:
            rate = neighbour_preserving_rate(cx.knn, prev_knn[:, : cx.knn.shape[1]])
            feats = H.cpu().numpy()
            if prev.features.shape == feats.shape:
                prev_h_t = torch.from_numpy(prev.features).float().to(device)
                step = torch.from_numpy(np.linalg.norm(feats - prev.features, axis=1)).float().to(device)
                prev_emb = torch.from_numpy(prev.embedding).float().to(device)
    if cfg.engine == "layout":
        model, emb, bemb, info = fit_layout(H, B, nodes, inp.head, cx, cfg, device, gen, epoch, prev_model,
                                            prev_fit, prev_knn, prev_h_t, progress)
    else:
        model, emb, bemb, info = fit_parametric(H, B, nodes, inp.head, cx, cfg, device, gen, epoch, prev_model,
                                                rate, prev_emb, step, progress)
    return Link(model, emb, bemb, None if prev is None else prev.epoch, step,
                None if step is None else prev.embedding, info)


def finish_epoch(run: RunDir, inp: EpochInput, link: Link, cfg: FitConfig, device: torch.device,
                 seconds_before: float = 0.0) -> dict:
    """Stages 5-6: the decision map and the metrics, then the fit folder written atomically.

    Independent per epoch once its link exists. Returns the metrics.
    """
    t0 = time.perf_counter()
    H, B, model, emb, head = inp.features, inp.boundary, link.model, link.embedding, inp.head
    n = len(H)
    t = time.perf_counter()
    with torch.no_grad():
        # ppr and the map are measured where the widget shows each sample
        recon_probs = torch.softmax(batched(lambda z: head(model.decode(z)), emb), 1).cpu().numpy()
    emb_np = emb.cpu().numpy().astype(np.float32)
    extent = padded_extent(emb_np)
    colors = class_colors(len(run.classes))
    background, grid_class = decision_map(model, head, extent, cfg.grid, colors, cfg.boundary_threshold, device,
                                          points=emb_np)
    map_s = time.perf_counter() - t

    t = time.perf_counter()
    queries = query_subset(n)
    metrics = epoch_metrics(features=H, boundary=B, embedding=emb, boundary_embedding=link.boundary_embedding,
                            knn=inp.complex.knn, queries=queries, probs=inp.probabilities,
                            recon_probs=recon_probs, labels=run.labels(), split=run.split(),
                            grid_class=grid_class, extent=extent)
    metrics.update(projection_errors(model, H, emb, inp.complex.knn, queries, extent))
    high_step = low_step = np.zeros(0, np.float32)
    if link.step is not None:
        high_step = link.step.cpu().numpy()[queries].astype(np.float32)
        low_step = np.linalg.norm(emb_np[queries] - link.prev_embedding[queries], axis=1).astype(np.float32)
    metrics_s = time.perf_counter() - t

    with run.write_fit(inp.epoch) as tmp:
        save_npz(tmp / "fit.npz", embedding=emb_np,
                 boundary_embedding=link.boundary_embedding.cpu().numpy().astype(np.float32),
                 extent=np.asarray(extent, np.float64), background=background, grid_class=grid_class,
                 knn=inp.complex.knn.cpu().numpy().astype(np.int32), high_step=high_step, low_step=low_step,
                 recon_predictions=recon_probs.argmax(1).astype(np.int64),
                 class_colors=colors)  # the map's palette (results.py repaints a map whose palette differs)
        save_npz(tmp / "model.npz", **model.arrays())
        write_json(tmp / "model.json", model.describe())
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "info.json", {"prev_epoch": link.prev_epoch, "capture_id": inp.capture_id,
                                       "seconds": seconds_before + time.perf_counter() - t0,
                                       "engine": cfg.engine, "complex_s": inp.complex_s, "map_s": map_s,
                                       "metrics_s": metrics_s, "device": str(device),
                                       "threads": torch.get_num_threads(), **link.info})
    return metrics


def fit_epoch(run: RunDir, epoch: int, prev_epoch: int | None, cfg: FitConfig, device: torch.device,
              progress: bool = True) -> dict:
    """Fit one epoch (stages 1-6 in turn, the previous fit read from disk). Returns its metrics."""
    t0 = time.perf_counter()
    inp = prepare_epoch(run, epoch, cfg, device)
    prev = load_previous(run, prev_epoch, device) if prev_epoch is not None else None
    link = project_epoch(inp, prev, cfg, device, progress)
    return finish_epoch(run, inp, link, cfg, device, seconds_before=time.perf_counter() - t0)


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
        executor="local", ray_address: str | None = None, **options):
    """Fit every recorded epoch not yet fitted and return the :class:`Visualization`.

    Parameters
    ----------
    run : path of a recorded run directory, or an fsspec URL (``memory://``, ``s3://``...; see
        ``dvi_widget.store.fs``).
    config : a :class:`FitConfig` (every field documented there); ``options`` override its fields.
    preset : ``"default"`` (= ``"layout"``: UMAP's SGD layout, aligned across epochs, with an
        encoder and decoder fitted to it), ``"stable"`` (the same layout, each sample's 2-D step held
        to its feature step: stab_spearman 0.865-0.90 for some nn_rate), ``"parametric"`` (the first
        engine: an encoder/decoder MLP trained on sampled edges) or ``"reference"`` (DVI's own
        configuration).
    device : ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    refit : fit every epoch again (required to change the options of a fitted run).
    progress : progress bars / lines (also off with ``TQDM_DISABLE=1``).
    threads : torch intra-op threads during the fit. ``None`` chooses: an explicit choice already
        made (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, or ``torch.set_num_threads`` called) is kept;
        otherwise min(cores available, 2), and 1 when the 1-minute load average already exceeds the
        core count. torch's previous count is restored afterwards (see ``dvi_widget.engine.threads``).
    executor : where the stages run. ``"local"`` (default): in this process, epoch after epoch.
        ``"ray"``: as Ray tasks (``pip install 'dvi_widget[ray]'``): every epoch's complex, decision
        map and metrics in parallel, the chain of projections as each epoch's complex is ready; the
        same files as a local fit (same device and threads). Or a
        :class:`dvi_widget.engine.executors.RayExecutor` with its options (CPUs/GPUs per task, ...).
        With Ray, ``device`` is ``"auto"``, ``"cpu"`` or ``"cuda"`` and tasks request a GPU when the
        cluster has one; ``threads`` is each task's CPU count (default 1).
    ray_address : with ``executor="ray"``: the cluster to connect to (``ray.init(address=...)``).
        ``None``: ``RAY_ADDRESS`` when set, else a local cluster (an existing ``ray.init`` is reused).
    **options : FitConfig fields, e.g. ``layout_epochs=60``.

    With no config, preset or options, a run fitted before keeps the options it was fitted with.
    Asking for other options than the stored fits used is an error unless ``refit=True``. Every
    option is checked before anything on disk changes.
    """
    from ..results import Visualization
    from .executors import resolve_executor
    from .threads import choose_threads
    rd = RunDir(run)
    cfg_path = rd.path / "fits" / "config.json"
    stored = load_json(cfg_path) if cfg_path.exists() else None
    # ---- validate everything before touching the run directory ----
    for name, v in (("refit", refit), ("progress", progress)):
        if not isinstance(v, bool):
            raise DVIError(f"fit option {name} must be True or False, got {v!r}")
    cfg = resolve_config(config, preset, options, None if refit else stored)
    ex = resolve_executor(executor, ray_address)
    ex.check_reachable(rd.path)
    dev = ex.check_device(device)
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
    if todo:
        ex.fit_epochs(rd, todo, recorded, cfg, dev, progress, n_threads if ex.name == "local" else threads)
    # drop fits of epochs that are no longer recorded (never happens through the API, but keep it clean)
    rd.remove_fits([e for e in rd.fitted_epochs() if e not in recorded])
    return Visualization(rd.path)


__all__ = ["fit", "fit_epoch", "resolve_device", "load_vismodel"]

