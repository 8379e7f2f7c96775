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
from .config import FitConfig
from .decision_map import decision_map, padded_extent
from ..errors import DVIError
from ..store.heads import load_head
from .metrics import epoch_metrics, query_subset
from ..palette import class_colors
from ..progress import Progress, track
from ..store.lock import writes_run
from ..store.rundir import RunDir, load_json, load_npz, save_npz, write_json
from .training import neighbour_preserving_rate, train_projection
from .vismodel import VisModel, batched


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_vismodel(run: RunDir, epoch: int) -> VisModel:
    folder = run.fit_dir(epoch)
    return VisModel.from_arrays(load_json(folder / "model.json"), load_npz(folder / "model.npz"))


def capture_id(run: RunDir, epoch: int) -> str:
    return str(load_json(run.epoch_dir(epoch) / "capture.json")["id"])


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

    cx = build_complex(H, B, cfg.n_neighbors)

    prev_model, rate, prev_fit, prev_emb, step = None, None, None, None, None
    if prev_epoch is not None:
        prev_model = load_vismodel(run, prev_epoch).to(device)
        prev_fit = load_npz(run.fit_dir(prev_epoch) / "fit.npz", ("knn", "embedding"))
        prev_knn = torch.from_numpy(prev_fit["knn"]).to(device)
        rate = neighbour_preserving_rate(cx.knn, prev_knn[:, : cx.knn.shape[1]])
        prev_h = load_npz(run.epoch_dir(prev_epoch) / "features.npz", ("features",))["features"]
        if prev_h.shape == cap["features"].shape:
            step = torch.from_numpy(np.linalg.norm(cap["features"] - prev_h, axis=1)).float().to(device)
            prev_emb = torch.from_numpy(prev_fit["embedding"]).float().to(device)
    if prev_model is not None and prev_model.dim == H.shape[1] and \
            (prev_model.width, prev_model.depth) == (cfg.width, cfg.depth):
        model = copy.deepcopy(prev_model)   # keeps the previous standardisation: no global jump
        steps = cfg.steps
    else:
        prev_model = None  # feature size or architecture changed: start afresh
        with torch.random.fork_rng(devices=[]):  # the user's global random state is left alone
            torch.manual_seed(cfg.seed + epoch)
            model = VisModel(H.shape[1], cfg.width, cfg.depth)
        model = model.to(device)
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
    bar = Progress(steps, f"fit epoch {epoch}", unit="step", enabled=progress)
    with bar:
        history = train_projection(model, head, nodes, teacher, cx, run_cfg, steps, gen,
                                   prev=prev_model, rate=rate, prev_embedding=prev_emb, high_step=step,
                                   progress=bar)

    with torch.no_grad():
        emb = batched(model.encode, H)
        bemb = batched(model.encode, B) if len(B) else torch.zeros((0, 2), device=device)
        recon_probs = torch.softmax(batched(lambda h: head(model.decode(model.encode(h))), H), 1).cpu().numpy()
    emb_np = emb.cpu().numpy().astype(np.float32)
    extent = padded_extent(emb_np)
    colors = class_colors(len(run.classes))
    background, grid_class = decision_map(model, head, extent, cfg.grid, colors, cfg.boundary_threshold, device)

    queries = query_subset(n)
    metrics = epoch_metrics(features=H, boundary=B, embedding=emb, boundary_embedding=bemb, knn=cx.knn,
                            queries=queries, probs=outs["probabilities"], recon_probs=recon_probs,
                            labels=run.labels(), split=run.split(), grid_class=grid_class, extent=extent)
    high_step = low_step = np.zeros(0, np.float32)
    if step is not None:
        high_step = step.cpu().numpy()[queries].astype(np.float32)
        low_step = np.linalg.norm(emb_np[queries] - prev_fit["embedding"][queries], axis=1).astype(np.float32)

    with run.write_fit(epoch) as tmp:
        save_npz(tmp / "fit.npz", embedding=emb_np, boundary_embedding=bemb.cpu().numpy().astype(np.float32),
                 extent=np.asarray(extent, np.float64), background=background, grid_class=grid_class,
                 knn=cx.knn.cpu().numpy().astype(np.int32), high_step=high_step, low_step=low_step,
                 recon_predictions=recon_probs.argmax(1).astype(np.int64))
        save_npz(tmp / "model.npz", **model.arrays())
        write_json(tmp / "model.json", model.describe())
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "info.json", {"prev_epoch": prev_epoch, "capture_id": capture_id(run, epoch),
                                       "seconds": time.perf_counter() - t0, "steps": steps,
                                       "loss_history": history, "device": str(device)})
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


@writes_run("dvi.fit")   # one writer per run; leftovers of killed writers are recovered under the lock
def fit(run: str | os.PathLike, *, preset: str | None = None, device: str = "auto", refit: bool = False,
        progress: bool = True, **options):
    """Fit every recorded epoch not yet fitted and return the :class:`Visualization`.

    ``options`` override :class:`FitConfig` fields; ``preset="reference"`` is DVI's own
    configuration. With neither, a run fitted before keeps the options it was fitted with.
    Asking for other options than the stored fits used is an error unless ``refit=True``.
    """
    from ..results import Visualization
    rd = RunDir(run)
    cfg_path = rd.path / "fits" / "config.json"
    (rd.path / "fits").mkdir(exist_ok=True)
    if preset is None and not options and not refit and cfg_path.exists():
        cfg = FitConfig.build("default", **load_json(cfg_path))   # new epochs as the earlier ones
    else:
        cfg = FitConfig.build(preset or "default", **options)
    if cfg_path.exists() and not refit:
        stored = load_json(cfg_path)
        if stored != cfg.to_dict():
            diff = {k: (stored.get(k), v) for k, v in cfg.to_dict().items() if stored.get(k) != v}
            raise DVIError(f"{rd.path} was fitted with other options {diff} (stored, asked); "
                           f"pass refit=True to fit every epoch again")
    if refit:
        rd.remove_fits(rd.fitted_epochs())
    write_json(cfg_path, cfg.to_dict())
    recorded = rd.recorded_epochs()
    if not recorded:
        raise DVIError(f"no epochs recorded in {rd.path}; call Recorder.capture() first")
    todo = _stale(rd, recorded, set(rd.fitted_epochs(verify=True)))   # only whole fits count as fitted
    dev = resolve_device(device)
    for e in track(todo, "fitting epochs", unit="epoch", enabled=progress and len(todo) > 1):
        pos = recorded.index(e)
        fit_epoch(rd, e, recorded[pos - 1] if pos else None, cfg, dev, progress)
    # drop fits of epochs that are no longer recorded (never happens through the API, but keep it clean)
    rd.remove_fits([e for e in rd.fitted_epochs() if e not in recorded])
    return Visualization(rd.path)


__all__ = ["fit", "fit_epoch", "resolve_device", "load_vismodel"]

