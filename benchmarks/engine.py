"""Engine benchmark: dvi_widget's fitting presets against umap-learn as a user runs it.

Two benchmark cases, measured in one invocation (see benchmarks/README.md, "Engine"):

  mnist   the 10,000 bundled MNIST digits (``dvi_widget.demo.load_mnist``: shuffled with seed 0,
          8,000 train / 2,000 test), the demo's SmallCNN trained 8 epochs exactly as
          ``dvi_widget.demo`` trains it, ``rec.capture(model, features=model.features, head=model.fc)``
          after each epoch.
  digits  scikit-learn's 1,797 8x8 digits (shuffled with seed 0, 1,437 train / 360 test), 15% of
          the training labels flipped to another class (test labels clean), a small MLP
          (64 -> 128 -> 32 features -> 10) trained 5 epochs, captured the same way.

For each case: the ``default`` preset is fitted right after each capture inside the training
process (``dvi.fit(run, preset="default")``), so an epoch's time is its capture plus its
incremental fit, the cold first epoch included. Every other preset (``stable``, ``parametric``,
``reference``) fits a copy of the same recorded epochs, epoch by epoch, in its own fresh
process; its capture+fit adds its fit times to the same capture times. umap-learn runs as a
user runs it: ``umap.UMAP()`` with its defaults, no ``random_state`` (its parallel code path),
every core, numba warmed first by a small ``fit_transform`` (not timed); then ``fit_transform``
on each epoch's recorded features, timed. Its figures use dvi_widget's own metric functions
on the engine's query subset; its ppr uses ``inverse_transform`` on a fixed sample subset.
Pictures of the last epoch (``dvi_widget.outputs.pictures.render``, the code behind
``w.snapshot``) of every configuration, umap-learn's layout coloured the same way.

``--scaling``: features-only runs (``rec.capture(features=H, head=head, epoch=e)``, 3 epochs)
of synthetic clustered features that drift across epochs (``synthetic_features``) with a
random linear head, at 10k, 30k, 100k x 128 and 200k x 64; each size fitted in its own process
and umap-learn's ``fit_transform`` of the last epoch's features in another, so each peak RSS
is its own.

Usage (from the repository root)::

    python benchmarks/engine.py                        # both cases (an hour or more on 2 loaded cores)
    python benchmarks/engine.py --cases digits         # one case
    python benchmarks/engine.py --quick                # smoke check of the whole pipeline
    python benchmarks/engine.py --scaling              # the scaling table
    python benchmarks/engine.py --scaling --sizes 5000x32 --epochs 2   # its smoke check
    python benchmarks/engine.py --gpu-synthetic        # 50,000 x 512 features-only run (CUDA)

Results: ``--out`` (default benchmarks/results): engine.{md,json} (cases), engine-scaling.{md,json};
pictures: benchmarks/pictures/ (``--pictures``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
K = 15
# --quick is a smoke check of the whole pipeline, with far fewer optimiser steps and a coarse
# map where the preset has them, so its figures say nothing about the configurations' quality.
QUICK_OVERRIDES = {"grid": 64}
PRESETS = ("default", "stable", "parametric", "reference")
SCALING_SIZES = "10000x128,30000x128,100000x128,200000x64"


# --------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2 ** 20 if sys.platform == "darwin" else r / 1024


class RssSampler:
    """Samples this process's resident memory every few milliseconds on a thread.

    ``with sampler.span() as s: ...`` then ``s.peak_mb``: the highest RSS seen inside the block
    (torch's allocations are not visible to tracemalloc, so RSS it is). Without psutil, the
    process's ``ru_maxrss`` so far stands in.
    """

    class _Span:
        peak_mb = float("nan")

    def __init__(self, interval: float = 0.005):
        try:
            import psutil
            self._proc = psutil.Process()
        except ImportError:
            self._proc = None
        self.interval = interval

    def span(self):
        import contextlib
        import threading

        @contextlib.contextmanager
        def cm():
            out = RssSampler._Span()
            if self._proc is None:
                yield out
                out.peak_mb = peak_rss_mb()
                return
            stop = threading.Event()
            peak = [self._proc.memory_info().rss]

            def poll():
                while not stop.is_set():
                    peak[0] = max(peak[0], self._proc.memory_info().rss)
                    stop.wait(self.interval)
            t = threading.Thread(target=poll, daemon=True)
            t.start()
            try:
                yield out
            finally:
                stop.set()
                t.join()
                peak[0] = max(peak[0], self._proc.memory_info().rss)
                out.peak_mb = peak[0] / 2 ** 20
        return cm()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git_commit() -> str:
    """The checkout's commit, with "+ uncommitted engine changes" when dvi_widget/ differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "dvi_widget"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted engine changes" if dirty else "")
    except Exception:  # not a checkout (a copy of the tree on another machine)
        return os.environ.get("BENCH_COMMIT", "unknown")


def copy_epoch(src_run: Path, dst_run: Path, epoch: int) -> None:
    """Copy one recorded epoch folder of ``src_run`` into ``dst_run`` (write, then rename)."""
    from dvi_widget.store.rundir import epoch_dirname
    src = src_run / "epochs" / epoch_dirname(epoch)
    tmp = dst_run / "epochs" / f".tmp-copy-{epoch_dirname(epoch)}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    os.replace(tmp, dst_run / "epochs" / epoch_dirname(epoch))


def copy_header(src_run: Path, dst_run: Path) -> None:
    """A new run directory with ``src_run``'s header (meta, labels, split, thumbnails) and no epochs."""
    shutil.rmtree(dst_run, ignore_errors=True)
    dst_run.mkdir(parents=True)
    for name in ("labels.npy", "split.npy", "thumbnails.npy"):
        if (src_run / name).exists():
            shutil.copy2(src_run / name, dst_run / name)
    (dst_run / "epochs").mkdir()
    (dst_run / "fits").mkdir()
    shutil.copy2(src_run / "meta.json", dst_run / "meta.json")


def vis_figures(vis) -> dict:
    """Per-epoch metrics and the run-level summary of a Visualization, as plain JSON."""
    return {"metrics": {str(e): m for e, m in vis.metrics.items()}, "summary": vis.summary}


def fit_info(run: Path, epoch: int) -> dict:
    """The fit's own record of an epoch (info.json: seconds, stage timings, threads, device), without
    long lists such as the loss history."""
    from dvi_widget.store.rundir import epoch_dirname
    info = json.loads((Path(run) / "fits" / epoch_dirname(epoch) / "info.json").read_text())
    return {k: v for k, v in info.items() if not (isinstance(v, (list, dict)) and len(v) > 20)}


def wait_for_epoch(run: str | Path, epoch: int, stop: str | None = None, timeout: float = 4 * 3600) -> None:
    """Block until ``epoch`` is recorded in ``run`` (captures are written atomically, so a listed
    epoch is complete): stages that follow the training process start before it ends. The file
    ``stop``, once it exists, says the training process failed."""
    from dvi_widget.store.rundir import RunDir
    t0 = time.perf_counter()
    while True:
        if stop and Path(stop).exists():
            raise RuntimeError(f"the training process for {run} failed; not waiting for epoch {epoch}")
        try:
            if epoch in RunDir(run).recorded_epochs():
                return
        except Exception:      # the run directory is not created yet
            pass
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"epoch {epoch} never appeared in {run}")
        time.sleep(2.0)


def engine_commit() -> str:
    """The last commit that changed dvi_widget/ (the engine a scaling row measured), "+ uncommitted" if dirty."""
    try:
        c = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "dvi_widget"],
                           capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "dvi_widget"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return c + (" + uncommitted" if dirty else "")
    except Exception:
        return os.environ.get("BENCH_COMMIT", "unknown")


def _autogroup() -> str | None:
    """This process's scheduler autogroup and its nice (Linux with sched_autogroup: CPU is shared between
    sessions first, so a timed run's share depends on its session's autogroup nice, not its own nice)."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return None


def loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def threads_info() -> dict:
    """This process's thread settings: torch intra-op / inter-op, OpenMP/MKL/numba environment."""
    import torch
    out = {"torch_intraop": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if os.environ.get(var):
            out[var] = os.environ[var]
    return out


def stage_context() -> dict:
    return {"threads": threads_info(), "load_start": loadavg(), "command": " ".join(sys.argv)}


# --------------------------------------------------------------------------- cases
def digits_mlp():
    from torch import nn

    class DigitsMLP(nn.Module):
        """64 -> 128 -> 32 (``features``) -> 10 (``fc``)."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU())
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.features(x))
    return DigitsMLP()


def load_case(case: str, quick: bool, seed: int = 0) -> dict:
    """The case's data, its model (seeded) and its epoch count."""
    import torch
    from dvi_widget import demo
    if case == "mnist":
        n_train, n_test = (1600, 400) if quick else (8000, 2000)
        images, labels, split = demo.load_mnist(n_train, n_test, seed)
        x = demo.to_tensor(images)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = demo.SmallCNN()
        return {"x": x, "labels": labels, "train_labels": labels, "split": split, "images": images,
                "classes": demo.CLASSES, "model": model, "epochs": 3 if quick else 8,
                "describe": f"bundled MNIST, {n_train} train + {n_test} test digits (shuffled, seed {seed}), "
                            f"demo SmallCNN (64-D features)"}
    if case == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(d.target))
        n_train = int(round(0.8 * len(order)))
        split = np.array(["train"] * n_train + ["test"] * (len(order) - n_train))
        true = d.target[order].astype(np.int64)
        labels = true.copy()
        flip = np.sort(rng.choice(n_train, int(round(0.15 * n_train)), replace=False))
        labels[flip] = (true[flip] + rng.integers(1, 10, len(flip))) % 10       # always another class
        x = torch.from_numpy((d.data[order] / 16.0).astype(np.float32))
        images = (d.images[order] * (255.0 / 16.0)).round().astype(np.uint8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = digits_mlp()
        return {"x": x, "labels": labels, "true_labels": true, "flipped": flip, "split": split, "images": images,
                "classes": [str(i) for i in range(10)], "model": model, "epochs": 3 if quick else 5,
                "describe": f"scikit-learn digits, {n_train} train + {len(order) - n_train} test (shuffled, seed {seed}), "
                            f"{len(flip)} of {n_train} training labels (15%) flipped, MLP 64-128-32-10 (32-D features)"}
    raise ValueError(f"unknown case {case!r}")


# --------------------------------------------------------------------------- stages (subprocesses)
def stage_record(a: dict) -> dict:
    """Train the case's model; after each epoch capture it, then fit ``preset`` incrementally."""
    import torch
    import dvi_widget as dvi
    from dvi_widget import demo

    ctx = stage_context()
    data = load_case(a["case"], a["quick"], a["seed"])
    x, labels, split, model = data["x"], data["labels"], data["split"], data["model"]
    y = torch.from_numpy(labels)
    train = torch.from_numpy(split == "train")
    gen = torch.Generator().manual_seed(a["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = Path(a["run"])
    rec = dvi.Recorder(run, inputs=x, labels=labels, classes=data["classes"], images=data["images"], split=split,
                       overwrite=True)
    epochs = []
    rss = RssSampler()
    vis = None
    for epoch in range(1, a["epochs"] + 1):
        load0 = loadavg()
        t0 = time.perf_counter()
        loss = demo.train_one_epoch(model, opt, x[train], y[train], gen)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        e = rec.capture(model, features=model.features, head=model.fc)
        capture_s = time.perf_counter() - t0
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(run, preset=a["preset"], progress=False, **a["overrides"])
            fit_s = time.perf_counter() - t0
        epochs.append({"epoch": e, "train_s": train_s, "capture_s": capture_s, "fit_s": fit_s,
                       "fit_peak_rss_mb": mem.peak_mb, "train_loss": loss, "fit_info": fit_info(run, e),
                       "load": load0})
        m = vis.metrics[e]
        log(f"  {a['case']} {a['preset']} epoch {e}: train {train_s:.1f} s, capture {capture_s:.2f} s, "
            f"fit {fit_s:.2f} s, ppr train/test {fmt(m.get('ppr/train'), '.4f')}/{fmt(m.get('ppr/test'), '.4f')}, "
            f"nn_rate {fmt(m.get('nn_rate@15'))}")
    rec.close()
    return {"preset": a["preset"], "epochs": epochs, **vis_figures(vis), "config": fit_config(run),
            "describe": data["describe"], "peak_rss_mb": peak_rss_mb(), **ctx, "threads_end": threads_info(),
            "load_end": loadavg()}


def fit_config(run: Path) -> dict | None:
    p = Path(run) / "fits" / "config.json"
    return json.loads(p.read_text()) if p.exists() else None


def stage_fit(a: dict) -> dict:
    """Fit a copy of the recorded run with ``preset``, epoch by epoch (incremental ``dvi.fit``)."""
    import dvi_widget as dvi

    ctx = stage_context()
    src, dst = Path(a["src"]), Path(a["run"])
    wait_for_epoch(src, a["epochs"][0], a.get("stop"))
    copy_header(src, dst)
    epochs = []
    vis = None
    rss = RssSampler()
    for i, e in enumerate(a["epochs"]):
        wait_for_epoch(src, e, a.get("stop"))
        copy_epoch(src, dst, e)
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(dst, preset=a["preset"], refit=(i == 0), progress=False, **a["overrides"])
            fit_s = time.perf_counter() - t0
        epochs.append({"epoch": e, "fit_s": fit_s, "fit_peak_rss_mb": mem.peak_mb, "fit_info": fit_info(dst, e),
                       "load": loadavg()})
        m = vis.metrics[e]
        log(f"  {a['case']} {a['preset']} epoch {e}: fit {fit_s:.2f} s, ppr train/test "
            f"{fmt(m.get('ppr/train'), '.4f')}/{fmt(m.get('ppr/test'), '.4f')}, nn_rate {fmt(m.get('nn_rate@15'))}")
    return {"preset": a["preset"], "epochs": epochs, **vis_figures(vis), "config": fit_config(dst),
            "peak_rss_mb": peak_rss_mb(), **ctx, "threads_end": threads_info(), "load_end": loadavg()}


def make_umap(seed):
    """umap-learn as a user runs it: its defaults (n_neighbors 15, min_dist 0.1), no random_state
    unless ``--umap-seed`` asks for one (a seed makes umap-learn single-threaded)."""
    import umap
    return umap.UMAP() if seed is None else umap.UMAP(random_state=seed)


def warm_umap(seed, points: int, dim: int) -> float:
    """A small fit_transform (and inverse_transform) so numba's compilation is not timed; > 4,096 points
    takes the same nearest-neighbour code path (nndescent) as the real runs."""
    t0 = time.perf_counter()
    warm = np.random.default_rng(1).normal(size=(points, dim)).astype(np.float32)
    wm = make_umap(seed)
    emb = wm.fit_transform(warm)
    wm.inverse_transform(emb[:4])
    return time.perf_counter() - t0


def numba_threads() -> int | None:
    try:
        import numba
        return int(numba.get_num_threads())
    except Exception:
        return None


def stage_umap(a: dict) -> dict:
    """umap-learn per epoch on the recorded features, figures by dvi_widget's metric functions."""
    import torch
    from dvi_widget.store.heads import load_head
    from dvi_widget.engine.knn import exact_knn
    from dvi_widget.engine.metrics import overlap_rate, query_subset, stab_spearman, trustworthiness
    from dvi_widget.store.rundir import RunDir, load_npz

    ctx = stage_context()
    epochs = a["epochs"]
    wait_for_epoch(a["run"], epochs[0], a.get("stop"))
    run = RunDir(a["run"])
    n = run.n
    split = run.split()
    seed = a["umap_seed"]
    dim = load_npz(run.epoch_dir(epochs[0]) / "features.npz", ("features",))["features"].shape[1]
    warm_s = warm_umap(seed, a["warm_points"], dim)
    log(f"  umap warm-up (fit_transform + inverse_transform of {a['warm_points']} random points): {warm_s:.1f} s, "
        f"not timed; numba threads {numba_threads()}")

    queries = query_subset(n)
    q = torch.from_numpy(queries)
    rng = np.random.default_rng(a["seed"] + 17)
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    n_ppr = a["ppr_samples"]
    n_te = min(len(te), n_ppr // 2) if len(te) else 0
    ppr_idx = np.sort(np.concatenate([rng.choice(tr, min(len(tr), n_ppr - n_te), replace=False),
                                      rng.choice(te, n_te, replace=False) if n_te else np.zeros(0, int)]))
    out_epochs, highs, lows, embs = [], [], [], {}
    prev_h = prev_emb = None
    rss = RssSampler()
    for e in epochs:
        wait_for_epoch(a["run"], e, a.get("stop"))   # the training process may still be on its way (not timed)
        folder = run.epoch_dir(e)
        H = load_npz(folder / "features.npz", ("features",))["features"]
        preds = load_npz(folder / "outputs.npz", ("predictions",))["predictions"]
        load0 = loadavg()
        with rss.span() as mem:
            t0 = time.perf_counter()
            reducer = make_umap(seed)
            emb = reducer.fit_transform(H).astype(np.float32)
            fit_s = time.perf_counter() - t0
        embs[f"e{e}"] = emb
        Ht, Et = torch.from_numpy(H), torch.from_numpy(emb)
        high_knn, _ = exact_knn(Ht, K, queries=Ht[q], query_index=q)
        low_knn, _ = exact_knn(Et, K, queries=Et[q], query_index=q)
        rate = overlap_rate(high_knn, low_knn).numpy()
        sq = split[queries]
        m = {"nn_rate@15": float(rate.mean()), "trustworthiness@15": trustworthiness(Ht, q, low_knn)}
        for s in ("train", "test"):
            if (sq == s).any():
                m[f"nn_rate@15/{s}"] = float(rate[sq == s].mean())
        inv_s = float("nan")
        if a.get("ppr_epochs") is None or e in a["ppr_epochs"]:
            # ppr: does the head's prediction survive inverse_transform of the sample's embedding row?
            t1 = time.perf_counter()
            head = load_head(folder)
            with torch.no_grad():
                back = reducer.inverse_transform(emb[ppr_idx]).astype(np.float32)
                rp = head(torch.from_numpy(back)).argmax(1).numpy()
            inv_s = time.perf_counter() - t1
            keep = rp == preds[ppr_idx]
            sp = split[ppr_idx]
            m["ppr"] = float(keep.mean())
            for s in ("train", "test"):
                if (sp == s).any():
                    m[f"ppr/{s}"] = float(keep[sp == s].mean())
        if prev_h is not None and prev_h.shape == H.shape:
            highs.append(np.linalg.norm(H[queries] - prev_h[queries], axis=1).astype(np.float32))
            lows.append(np.linalg.norm(emb[queries] - prev_emb[queries], axis=1).astype(np.float32))
        prev_h, prev_emb = H, emb
        out_epochs.append({"epoch": e, "fit_transform_s": fit_s, "fit_peak_rss_mb": mem.peak_mb, "inverse_s": inv_s,
                           "inverse_ms_per_point": 1000 * inv_s / max(len(ppr_idx), 1), "metrics": m,
                           "load": load0})
        log(f"  umap epoch {e}: fit_transform {fit_s:.2f} s, nn_rate {m['nn_rate@15']:.3f}, ppr ({len(ppr_idx)} "
            f"samples) {fmt(m.get('ppr'))}")
    np.savez_compressed(a["embeddings"], **embs)
    return {"warm_s": warm_s, "warm_points": a["warm_points"], "random_state": seed, "numba_threads": numba_threads(),
            "ppr_samples": int(len(ppr_idx)), "ppr_samples_train": int((split[ppr_idx] == "train").sum()),
            "ppr_samples_test": int((split[ppr_idx] == "test").sum()), "epochs": out_epochs,
            "summary": {"stab_spearman": stab_spearman(highs, lows)}, "peak_rss_mb": peak_rss_mb(), **ctx,
            "load_end": loadavg()}


class LayoutView:
    """A fitted Visualization seen through another 2-D layout (umap-learn's): the same labels,
    predictions and colours, no decision map; what ``pictures.render`` needs."""

    def __init__(self, vis, embeddings: dict[int, np.ndarray], name: str, metrics: dict[int, dict]):
        self._vis, self._emb, self.name = vis, embeddings, name
        self.epochs = sorted(embeddings)
        self.labels, self.classes, self.split, self.colors = vis.labels, vis.classes, vis.split, vis.colors
        self.metrics = metrics
        allp = np.concatenate(list(embeddings.values()))
        lo, hi = allp.min(0), allp.max(0)
        pad = 0.05 * (hi - lo)
        self.extent = (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))

    def embedding(self, epoch):
        return self._emb[epoch]

    def predictions(self, epoch):
        return self._vis.predictions(epoch)

    def background(self, epoch):
        return np.zeros((2, 2, 4), np.uint8)          # transparent: umap-learn draws no decision map

    def background_extent(self, epoch):
        return self.extent


def picture_title(label: str, m: dict) -> str:
    parts = [label]
    for key, name in (("nn_rate@15", "nn_rate"), ("ppr", "ppr"), ("map_consistency", "map")):
        if m.get(key) is not None:
            parts.append(f"{name} {m[key]:.3f}")
    return "  ".join(parts)


def stage_pictures(a: dict) -> dict:
    """The last epoch of every configuration, drawn with dvi_widget.outputs.pictures.render (what
    ``w.snapshot`` draws), each in its own frame; umap-learn's layout coloured the same way."""
    import dvi_widget as dvi
    from dvi_widget.outputs.pictures import render

    out = Path(a["out"])
    out.mkdir(parents=True, exist_ok=True)
    size = (a["size"], a["size"])
    written = {}
    base = None
    for label, run in a["runs"].items():
        try:
            vis = dvi.Visualization(run)
        except Exception as exc:  # a configuration that failed to fit
            log(f"  pictures: {label}: {exc}")
            continue
        if not vis.epochs:
            log(f"  pictures: {label}: no fitted epoch")
            continue
        base = base or vis
        e = a["epoch"] if a["epoch"] in vis.epochs else vis.epochs[-1]
        img = render(vis, e, size=size, extent=vis.background_extent(e),
                     title=picture_title(f"{label}, epoch {e}", vis.metrics.get(e, {})))
        path = out / f"{a['case']}-{label}.png"
        img.save(path, optimize=True)
        written[label] = str(path)
    if base is not None and a.get("umap_embeddings") and Path(a["umap_embeddings"]).exists():
        z = np.load(a["umap_embeddings"])
        e = a["epoch"]
        if f"e{e}" in z:
            view = LayoutView(base, {e: z[f"e{e}"]}, "umap-learn", {e: a.get("umap_metrics") or {}})
            img = render(view, e, size=size, extent=view.extent,
                         title=picture_title(f"umap-learn, epoch {e}",
                                             {"nn_rate@15": (a.get("umap_metrics") or {}).get("nn_rate@15")}))
            path = out / f"{a['case']}-umap-learn.png"
            img.save(path, optimize=True)
            written["umap-learn"] = str(path)
    return {"pictures": written}


# ----------------------------------------------------------------------- scaling (features-only)
def synthetic_features(n: int, d: int, c: int, epochs: int, seed: int = 0):
    """Clustered features that separate and drift over epochs, like a network's penultimate layer.

    Each of the ``c`` classes is a blob around its centre, spread along its own 8-D subspace
    (so neighbourhoods mean something), plus a little isotropic noise; the centres pull apart
    as "training" goes on, and centres and subspaces drift a little every epoch. Deterministic
    for a seed when ``epoch_features`` is called for t = 1, 2, ... in order. Returns
    (labels, epoch_features(t) -> (n, d) float32).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    latent = rng.normal(size=(n, 8)).astype(np.float32)               # each sample's place in its class
    centres = rng.normal(size=(c, d)).astype(np.float32)
    basis = (rng.normal(size=(c, 8, d)) * 0.5 / np.sqrt(8)).astype(np.float32)
    state = {"centres": centres, "basis": basis}

    def epoch_features(t: int) -> np.ndarray:
        state["centres"] = state["centres"] + 0.1 * rng.normal(size=(c, d)).astype(np.float32)
        state["basis"] = state["basis"] + (0.02 * rng.normal(size=(c, 8, d))).astype(np.float32)
        sep = 0.5 + 1.5 * t / max(epochs, 1)
        h = np.empty((n, d), np.float32)
        for k in range(c):
            rows = labels == k
            h[rows] = sep * state["centres"][k] + latent[rows] @ state["basis"][k]
        h += 0.05 * rng.normal(size=(n, d)).astype(np.float32)
        return h / np.float32(np.sqrt(d) / 4)
    return labels, epoch_features


def synthetic_run(n: int, d: int, epochs: int, seed: int, device: str = "cpu"):
    """Labels, split, a random linear head and an iterator of (epoch, features, head) for the run."""
    import torch
    from torch import nn
    c = 10
    labels, epoch_features = synthetic_features(n, d, c, epochs, seed)
    split = np.where(np.random.default_rng(seed + 1).random(n) < 0.8, "train", "test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(d, c).to(device)            # a random linear head, nudged a little each epoch

    def epochs_iter():
        for t in range(1, epochs + 1):
            H = epoch_features(t)
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + t)
                head.weight.add_(0.05 * head.weight.std() * torch.randn(head.weight.shape).to(device))
            yield t, H, head
    return labels, split, [f"c{i}" for i in range(c)], epochs_iter


def stage_scale(a: dict) -> dict:
    """Features-only capture + incremental fit of a synthetic run (one size), 3 epochs."""
    import dvi_widget as dvi

    ctx = stage_context()
    labels, split, classes, epochs_iter = synthetic_run(a["n"], a["dim"], a["epochs"], a["seed"])
    run = Path(a["run"])
    rec = dvi.Recorder(run, labels=labels, classes=classes, split=split, overwrite=True)
    epochs = []
    rss = RssSampler()
    import torch
    from dvi_widget.engine import knn as knn_mod
    calls = {"approximate": 0}
    approx0 = knn_mod.approximate_knn

    def counted(kind, fn):        # which kNN path the complex's graph took (checked, not assumed)
        def wrapper(*args, **kw):
            calls[kind] += 1
            return fn(*args, **kw)
        return wrapper
    # knn_graph looks both up in its module at call time; the wrappers only count, then delegate
    knn_mod.approximate_knn = counted("approximate", approx0)
    epochs = []
    rss = RssSampler()
    for t, H, head in epochs_iter():
        t0 = time.perf_counter()
        rec.capture(features=H, head=head, epoch=t)
        capture_s = time.perf_counter() - t0
        load0 = loadavg()
        calls["approximate"] = 0
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(run, preset=a["preset"], progress=False, **a["overrides"])
            fit_s = time.perf_counter() - t0
        m = vis.metrics[t]
        path = "pynndescent" if calls["approximate"] else "exact (torch)"
        epochs.append({"epoch": t, "capture_s": capture_s, "fit_s": fit_s, "fit_peak_rss_mb": mem.peak_mb,
                       "fit_info": fit_info(run, t), "metrics": m, "load_start": load0, "load": loadavg(),
                       "knn_path": path, "torch_interop": torch.get_num_interop_threads(),
                       "pynndescent_loaded": "pynndescent" in sys.modules})
        log(f"  scaling {a['n']} x {a['dim']} epoch {t}: capture {capture_s:.2f} s, fit {fit_s:.2f} s, "
            f"peak RSS {mem.peak_mb:.0f} MiB, kNN {path}, threads {epochs[-1]['fit_info'].get('threads')}, "
            f"nn_rate {fmt(m.get('nn_rate@15'))}, ppr {fmt(m.get('ppr'))}, load {load0}")
    knn_mod.approximate_knn = approx0
    rec.close()
    summary = dict(vis.summary)
    shutil.rmtree(run, ignore_errors=True)     # 200k x 64 x 3 epochs of features: do not keep it
    return {"epochs": epochs, "summary": summary, "peak_rss_mb": peak_rss_mb(), **ctx,
            "exact_limit": knn_mod.EXACT_LIMIT, "threads_end": threads_info(), "load_end": loadavg()}


def stage_scale_umap(a: dict) -> dict:
    """umap-learn's fit_transform of each size's last-epoch features, in one process warmed once
    (numba's compilation takes minutes on a loaded machine); each call's peak RSS is sampled during
    the call, and the process's resident memory just before it is reported beside it."""
    import gc
    import psutil
    import torch
    from dvi_widget.engine.knn import exact_knn
    from dvi_widget.engine.metrics import overlap_rate, query_subset

    ctx = stage_context()
    warm_s = warm_umap(a["umap_seed"], 5000, 64)
    log(f"  umap warm-up: {warm_s:.1f} s (not timed), numba threads {numba_threads()}")
    out = {}
    for n, d in a["sizes"]:
        _, _, _, epochs_iter = synthetic_run(n, d, a["epochs"], a["seed"])
        H = None
        for _, H, _ in epochs_iter():
            pass
        gc.collect()
        before = psutil.Process().memory_info().rss / 2 ** 20
        load0 = loadavg()
        with RssSampler().span() as mem:
            t0 = time.perf_counter()
            emb = make_umap(a["umap_seed"]).fit_transform(H).astype(np.float32)
            fit_s = time.perf_counter() - t0
        q = torch.from_numpy(query_subset(len(H)))
        Ht, Et = torch.from_numpy(H), torch.from_numpy(emb)
        hk, _ = exact_knn(Ht, K, queries=Ht[q], query_index=q)
        lk, _ = exact_knn(Et, K, queries=Et[q], query_index=q)
        log(f"  umap {n} x {d}: fit_transform {fit_s:.1f} s, peak RSS {mem.peak_mb:.0f} MiB (before {before:.0f})")
        out[f"{n}x{d}"] = {"fit_transform_s": fit_s, "warm_s": warm_s, "fit_peak_rss_mb": mem.peak_mb,
                           "rss_before_mb": before, "nn_rate@15": float(overlap_rate(hk, lk).mean()),
                           "numba_threads": numba_threads(), "load_start": load0, "load_end": loadavg()}
        del H, Ht, Et, emb
    return {"sizes": out, **ctx, "warm_s": warm_s}


def stage_synthetic(a: dict) -> dict:
    """GPU check: features-only capture + fit of 50,000 x 512 synthetic features (8 epochs)."""
    import torch
    import dvi_widget as dvi
    from dvi_widget.engine.fitting import resolve_device

    ctx = stage_context()
    dev = resolve_device(a["device"])
    labels, split, classes, epochs_iter = synthetic_run(a["n"], a["dim"], a["epochs"], a["seed"], str(dev))
    run = Path(a["run"])
    rec = dvi.Recorder(run, labels=labels, classes=classes, split=split, overwrite=True)
    epochs = []
    rss = RssSampler()
    for t, H, head in epochs_iter():
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        rec.capture(features=H, head=head)
        capture_s = time.perf_counter() - t0
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(run, progress=False, device=a["device"], **a["overrides"])
            if dev.type == "cuda":
                torch.cuda.synchronize()
            fit_s = time.perf_counter() - t0
        m = vis.metrics[t]
        epochs.append({"epoch": t, "capture_s": capture_s, "fit_s": fit_s, "fit_peak_rss_mb": mem.peak_mb,
                       "fit_info": fit_info(run, t), "metrics": m})
        log(f"  synthetic epoch {t}: capture {capture_s:.2f} s, fit {fit_s:.2f} s, ppr {fmt(m.get('ppr'), '.4f')}, "
            f"nn_rate {fmt(m.get('nn_rate@15'))}")
    rec.close()
    out = {"epochs": epochs, **vis_figures(vis), "device": str(dev), "peak_rss_mb": peak_rss_mb(), **ctx}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


STAGES = {"record": stage_record, "fit": stage_fit, "umap": stage_umap, "pictures": stage_pictures,
          "scale": stage_scale, "scale-umap": stage_scale_umap, "synthetic": stage_synthetic}


def run_stage(name: str, args: dict, workdir: Path) -> dict:
    """Run one stage in a fresh Python process; returns its result, or {"error": ...} if it failed."""
    label = args.get("label", name)
    arg_file = workdir / f"{name}-{label}-args.json"
    res_file = workdir / f"{name}-{label}-result.json"
    arg_file.write_text(json.dumps(args))
    res_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TQDM_DISABLE", "1")     # the recorder's progress bars would flood the log
    t0 = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--stage-args", str(arg_file),
           "--stage-result", str(res_file)]
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0 or not res_file.exists():
        log(f"stage {name} ({label}) FAILED with exit code {proc.returncode}")
        return {"error": f"stage {name} ({label}) failed with exit code {proc.returncode} (see the log)"}
    out = json.loads(res_file.read_text())
    out["wall_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- report
def _vals(xs):
    return [x for x in xs if x is not None and np.isfinite(x)]


def _mean(xs):
    xs = _vals(xs)
    return float(np.mean(xs)) if xs else float("nan")


def _min(xs):
    xs = _vals(xs)
    return float(np.min(xs)) if xs else float("nan")


def _max(xs):
    xs = _vals(xs)
    return float(np.max(xs)) if xs else float("nan")


def fmt(x, spec=".3f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return format(x, spec)


PE_MED, PE_P95 = "project_error/median", "project_error/p95"
# vis.project of a recorded sample is exact by construction (Shepard interpolation, engine/extension.py):
# the held-out figure (each sample left out of the recorded set) and the encoder alone say what it rests on
HO_MED, HO_P95 = "project_error_heldout/median", "project_error_heldout/p95"
EN_MED, EN_P95 = "project_error_encoder/median", "project_error_encoder/p95"


def _pe(m: dict, med: str, p95: str) -> str:
    return f"{fmt(m.get(med), '.4f')} / {fmt(m.get(p95), '.4f')}"


def summarise_config(label: str, res: dict, capture_s: dict[int, float], umap: dict | None) -> dict:
    """One row of a case's table: means and worst cases over the configuration's epochs."""
    ms = res["metrics"]
    eps = [e["epoch"] for e in res["epochs"]]
    m = [ms[str(e)] for e in eps]
    total = [capture_s[e["epoch"]] + e["fit_s"] for e in res["epochs"]]
    umap_fit = {u["epoch"]: u["fit_transform_s"] for u in umap["epochs"]} if umap else {}
    umap_nn = {u["epoch"]: u["metrics"]["nn_rate@15"] for u in umap["epochs"]} if umap else {}
    umap_s = _mean([umap_fit.get(e) for e in eps]) if umap else float("nan")
    row = {"label": label, "epochs": eps, "capture_fit_s": _mean(total), "fit_s": _mean([e["fit_s"] for e in res["epochs"]]),
           "ppr_train_min": _min([x.get("ppr/train") for x in m]), "ppr_test_min": _min([x.get("ppr/test") for x in m]),
           "map_consistency_min": _min([x.get("map_consistency") for x in m]),
           "project_error_median_max": _max([x.get(PE_MED) for x in m]),
           "project_error_p95_max": _max([x.get(PE_P95) for x in m]),
           "heldout_median_max": _max([x.get(HO_MED) for x in m]), "heldout_p95_max": _max([x.get(HO_P95) for x in m]),
           "encoder_median_max": _max([x.get(EN_MED) for x in m]), "encoder_p95_max": _max([x.get(EN_P95) for x in m]),
           "nn_rate_min": _min([x.get("nn_rate@15") for x in m]), "nn_rate_mean": _mean([x.get("nn_rate@15") for x in m]),
           "nn_rate_vs_umap_min": _min([x.get("nn_rate@15") / umap_nn[e] for x, e in zip(m, eps)
                                        if x.get("nn_rate@15") is not None and umap_nn.get(e)]) if umap else float("nan"),
           "trust_mean": _mean([x.get("trustworthiness@15") for x in m]),
           "stab_spearman": (res.get("summary") or {}).get("stab_spearman"),
           "peak_rss_mb": _max([e.get("fit_peak_rss_mb") for e in res["epochs"]]),
           "umap_fit_s_same_epochs": umap_s}
    row["ratio"] = row["capture_fit_s"] / umap_s if umap else float("nan")
    return row


def summarise_umap(u: dict) -> dict:
    es = u["epochs"]
    return {"label": f"umap-learn (ppr: inverse_transform, {u['ppr_samples']} samples)", "epochs": [e["epoch"] for e in es],
            "capture_fit_s": float("nan"), "fit_s": _mean([e["fit_transform_s"] for e in es]), "ratio": 1.0,
            "ppr_train_min": _min([e["metrics"].get("ppr/train") for e in es]),
            "ppr_test_min": _min([e["metrics"].get("ppr/test") for e in es]),
            "map_consistency_min": float("nan"), "project_error_median_max": float("nan"),
            "project_error_p95_max": float("nan"), "heldout_median_max": float("nan"),
            "heldout_p95_max": float("nan"), "encoder_median_max": float("nan"), "encoder_p95_max": float("nan"),
            "nn_rate_min": _min([e["metrics"]["nn_rate@15"] for e in es]),
            "nn_rate_mean": _mean([e["metrics"]["nn_rate@15"] for e in es]), "nn_rate_vs_umap_min": 1.0,
            "trust_mean": _mean([e["metrics"]["trustworthiness@15"] for e in es]),
            "stab_spearman": u["summary"]["stab_spearman"], "peak_rss_mb": _max([e["fit_peak_rss_mb"] for e in es])}


def goals(row: dict, has_umap: bool) -> list[dict]:
    """Issue 7's goals, in its priority order, for one configuration's row ("met": None where the
    figure was not measured, e.g. project_error before the engine reports it)."""
    g = [{"text": f"ppr >= 0.99 at every epoch, train and test (min {fmt(row['ppr_train_min'], '.4f')} / "
                  f"{fmt(row['ppr_test_min'], '.4f')})",
          "met": bool(row["ppr_train_min"] >= 0.99 and row["ppr_test_min"] >= 0.99)}]
    if has_umap:
        g.append({"text": f"nn_rate@15 >= umap-learn's at every epoch (lowest ratio {fmt(row['nn_rate_vs_umap_min'], '.2f')})",
                  "met": bool(row["nn_rate_vs_umap_min"] >= 1.0)})
    g += [{"text": f"map_consistency >= 0.99 (min {fmt(row['map_consistency_min'], '.4f')})",
           "met": bool(row["map_consistency_min"] >= 0.99)},
          {"text": f"stab_spearman >= 0.85 ({fmt(row['stab_spearman'])})",
           "met": bool(row["stab_spearman"] is not None and row["stab_spearman"] >= 0.85)},
          {"text": f"project_error median <= 0.005 and p95 <= 0.02 at every epoch (worst "
                   f"{fmt(row['project_error_median_max'], '.4f')} / {fmt(row['project_error_p95_max'], '.4f')})",
           "met": (None if not np.isfinite(row["project_error_median_max"]) else
                   bool(row["project_error_median_max"] <= 0.005 and row["project_error_p95_max"] <= 0.02))}]
    if np.isfinite(row.get("heldout_median_max", float("nan"))):
        g.append({"text": f"the same for features left out of the recorded set (held-out project_error, worst "
                          f"{fmt(row['heldout_median_max'], '.4f')} / {fmt(row['heldout_p95_max'], '.4f')}; "
                          f"the encoder alone {fmt(row['encoder_median_max'], '.4f')} / {fmt(row['encoder_p95_max'], '.4f')})",
                  "met": bool(row["heldout_median_max"] <= 0.005 and row["heldout_p95_max"] <= 0.02)})
    if has_umap:
        g.append({"text": f"mean capture+fit per epoch <= 0.5x umap-learn's mean fit_transform (ratio {fmt(row['ratio'], '.2f')})",
                  "met": bool(row["ratio"] <= 0.5)})
    return g


def per_epoch_table(res: dict, capture_s: dict[int, float], umap: dict | None) -> list[str]:
    umap_by = {u["epoch"]: u for u in umap["epochs"]} if umap else {}
    cols = ["epoch", "capture+fit s", "fit s", "÷ umap", "nn_rate@15", "umap nn_rate", "ppr/train", "ppr/test",
            "map_consistency", "project_error med / p95", "held-out", "encoder alone", "trust@15", "fit RSS MiB", "fit threads", "load (1 min)"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
    for ep in res["epochs"]:
        e = ep["epoch"]
        m = res["metrics"][str(e)]
        u = umap_by.get(e)
        cf = capture_s[e] + ep["fit_s"]
        lines.append("| " + " | ".join([
            str(e), fmt(cf, ".1f"), fmt(ep["fit_s"], ".1f"), fmt(cf / u["fit_transform_s"] if u else None, ".2f"),
            fmt(m.get("nn_rate@15")), fmt(u["metrics"]["nn_rate@15"] if u else None), fmt(m.get("ppr/train"), ".4f"),
            fmt(m.get("ppr/test"), ".4f"), fmt(m.get("map_consistency"), ".4f"),
            _pe(m, PE_MED, PE_P95), _pe(m, HO_MED, HO_P95), _pe(m, EN_MED, EN_P95), fmt(m.get("trustworthiness@15")),
            fmt(ep.get("fit_peak_rss_mb"), ".0f"), str((ep.get("fit_info") or {}).get("threads", "—")),
            fmt((ep.get("load") or [None])[0], ".1f")]) + " |")
    return lines


def stage_table(res: dict, capture_s: dict[int, float]) -> list[str]:
    """Where each epoch's time went (the fit's own info.json): the layout engine's stages."""
    cols = ["epoch", "capture s", "complex s", "layout s (passes)", "maps s (steps)", "map s", "metrics s",
            "fit s", "threads"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
    for ep in res["epochs"]:
        i = ep.get("fit_info") or {}
        if "layout_s" not in i:
            return []
        e = ep["epoch"]
        lines.append("| " + " | ".join([
            str(e), fmt(capture_s.get(e), ".2f"), fmt(i.get("complex_s"), ".2f"),
            f"{fmt(i.get('layout_s'), '.2f')} ({i.get('layout_epochs', '—')})",
            f"{fmt(i.get('maps_s'), '.2f')} ({i.get('steps', '—')})", fmt(i.get("map_s"), ".2f"),
            fmt(i.get("metrics_s"), ".2f"), fmt(ep["fit_s"], ".2f"), str(i.get("threads", "—"))]) + " |")
    return lines


def umap_epoch_table(u: dict) -> list[str]:
    cols = ["epoch", "fit_transform s", "nn_rate@15", "trust@15", "ppr/train", "ppr/test", "inverse ms/point",
            "RSS MiB", "load (1 min)"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
    for e in u["epochs"]:
        m = e["metrics"]
        lines.append("| " + " | ".join([str(e["epoch"]), fmt(e["fit_transform_s"], ".1f"), fmt(m["nn_rate@15"]),
                                        fmt(m["trustworthiness@15"]), fmt(m.get("ppr/train")), fmt(m.get("ppr/test")),
                                        fmt(e["inverse_ms_per_point"], ".0f"), fmt(e["fit_peak_rss_mb"], ".0f"),
                                        fmt((e.get("load") or [None])[0], ".1f")]) + " |")
    return lines


def threads_line(res: dict) -> str:
    t = res.get("threads") or {}
    te = res.get("threads_end") or {}
    s = f"torch intra-op {t.get('torch_intraop')}, inter-op {t.get('torch_interop')}"
    if te and te.get("torch_intraop") != t.get("torch_intraop"):
        s += f" (after the fits: intra-op {te.get('torch_intraop')})"
    env = {k: v for k, v in t.items() if k.isupper()}
    if env:
        s += ", " + ", ".join(f"{k}={v}" for k, v in env.items())
    return s


def case_markdown(case: str, c: dict) -> list[str]:
    planned = c.get("planned_epochs")
    count = f"{c['n_epochs']} of {planned} epochs so far" if planned and planned != c["n_epochs"] else f"{c['n_epochs']} epochs"
    lines = [f"#### {case}", "", f"Data: {c['describe']}; {count}.", ""]
    rows = c["rows"]
    lines += ["| configuration | capture+fit s/epoch | ÷ umap | ppr/train min | ppr/test min | map_consistency min "
              "| project_error med / p95 (worst) | held-out project_error (worst) | nn_rate@15 min (mean) | nn_rate ÷ umap, worst epoch | stab_spearman "
              "| trust@15 mean | peak RSS of a fit MiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['label']} | failed: {r['error']} |" + " |" * 11)
            continue
        cf = fmt(r["capture_fit_s"], ".1f") if np.isfinite(r["capture_fit_s"]) else f"{fmt(r['fit_s'], '.1f')} (fit_transform)"
        lines.append(f"| {r['label']} | {cf} | {fmt(r['ratio'], '.2f')} | {fmt(r['ppr_train_min'], '.4f')} | "
                     f"{fmt(r['ppr_test_min'], '.4f')} | {fmt(r['map_consistency_min'], '.4f')} | "
                     f"{fmt(r['project_error_median_max'], '.4f')} / {fmt(r['project_error_p95_max'], '.4f')} | "
                     f"{fmt(r.get('heldout_median_max'), '.4f')} / {fmt(r.get('heldout_p95_max'), '.4f')} | "
                     f"{fmt(r['nn_rate_min'])} ({fmt(r['nn_rate_mean'])}) | {fmt(r['nn_rate_vs_umap_min'], '.2f')} | "
                     f"{fmt(r['stab_spearman'])} | {fmt(r['trust_mean'])} | {fmt(r['peak_rss_mb'], '.0f')} |")
    lines.append("")
    for r in rows:
        if r.get("goals"):
            word = {True: "met", False: "**not met**", None: "not measured"}
            lines.append(f"Goals, {r['label']}: " + "; ".join(f"{word[g['met']]}: {g['text']}"
                                                           for g in r["goals"]) + ".")
            lines.append("")
    for label, res in c["configs"].items():
        if res.get("error"):
            continue
        lines += [f"Per epoch, {label} ({threads_line(res)}):", ""]
        lines += per_epoch_table(res, c["capture_s"], c.get("umap") if not (c.get("umap") or {}).get("error") else None)
        lines.append("")
        stages = stage_table(res, c["capture_s"])
        if stages:
            lines += [f"Stages, {label} (seconds from each fit's info.json; layout = SGD passes + boundary "
                      f"placement, maps = decoder and encoder fitted to the layout + moves for ppr):", ""]
            lines += stages + [""]
    u = c.get("umap")
    if u and not u.get("error"):
        lines += [f"Per epoch, umap-learn (numba threads {u.get('numba_threads')}, {threads_line(u)}):", ""]
        lines += umap_epoch_table(u)
        lines.append("")
    for note in c.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    return lines


def header_markdown(res: dict) -> list[str]:
    mach = res["machine"]
    return [f"Command: `{res['command']}`  ",
            f"Date: {res['date']} · commit {res['commit']} · {mach['cpus']} CPUs, torch {mach['torch']}, "
            f"umap-learn {mach.get('umap_learn')}, GPU: {mach.get('cuda') or 'none'}  ",
            f"Load average (1/5/15 min): {res.get('load_start')} at the start, {res.get('load_end')} at the end; "
            f"wall time {res.get('total_s', 0) / 60:.0f} min", ""]


def machine() -> dict:
    import torch
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        from importlib.metadata import version
        info["umap_learn"] = version("umap-learn")
    except Exception:
        info["umap_learn"] = None
    return info


# --------------------------------------------------------------------------- main modes
def case_benchmark(case: str, opts, workdir: Path) -> dict:
    quick = opts.quick
    overrides = dict(QUICK_OVERRIDES) if quick else {}
    n_epochs = opts.epochs or (3 if quick else {"mnist": 8, "digits": 5}[case])
    presets = [p for p in opts.presets.split(",") if p]
    ref_epochs = min(opts.reference_epochs or (1 if quick else 2), n_epochs)
    ppr_samples = opts.umap_ppr_samples if opts.umap_ppr_samples is not None else (30 if quick else 300)
    ppr_epochs = ([int(x) for x in opts.umap_ppr_epochs.split(",")] if opts.umap_ppr_epochs else [1, n_epochs])
    run = workdir / f"{case}-{presets[0]}"
    umap_emb = workdir / f"{case}-umap-embeddings.npz"
    epochs = list(range(1, n_epochs + 1))
    # One stage at a time, each with the whole machine (umap-learn "on every core" means just that):
    # (1) the training process, capture + the first preset's fit after each epoch; (2) umap-learn on
    # each recorded epoch's features; (3) the other presets, one after the other, each in a fresh process.
    stop = workdir / f"{case}.stop"
    stop.unlink(missing_ok=True)
    shutil.rmtree(run, ignore_errors=True)      # never let a follower read an earlier invocation's epochs
    log(f"{case}: record ({n_epochs} epochs), {presets[0]} fitted after each capture")
    rec = run_stage("record", {"label": f"{case}-{presets[0]}", "case": case, "quick": quick,
                               "run": str(run), "epochs": n_epochs, "seed": 0, "preset": presets[0],
                               "overrides": overrides}, workdir)
    if rec.get("error"):
        return {"error": rec["error"], "describe": case, "n_epochs": n_epochs}
    umap_res = None
    if not opts.skip_umap:
        log(f"{case}: umap-learn on each recorded epoch")
        umap_res = run_stage("umap", {"label": case, "run": str(run), "epochs": epochs, "seed": 0,
                                      "umap_seed": opts.umap_seed, "warm_points": 5000, "ppr_samples": ppr_samples,
                                      "ppr_epochs": ppr_epochs, "embeddings": str(umap_emb), "stop": str(stop)},
                             workdir)
    capture_s = {e["epoch"]: e["capture_s"] for e in rec["epochs"]}
    configs = {presets[0]: rec}
    runs = {presets[0]: str(run)}
    for preset in presets[1:]:
        log(f"{case}: {preset} in a fresh process")
        eps = epochs[:ref_epochs] if preset == "reference" else epochs
        dst = workdir / f"{case}-{preset}"
        configs[preset] = run_stage("fit", {"label": f"{case}-{preset}", "case": case, "src": str(run),
                                            "run": str(dst), "epochs": eps, "preset": preset,
                                            "overrides": overrides}, workdir)
        runs[preset] = str(dst)
    return summarise_case(case, opts, workdir, rec, umap_res, configs, runs)


def stage_result(workdir: Path, name: str, label: str) -> dict | None:
    f = workdir / f"{name}-{label}-result.json"
    return json.loads(f.read_text()) if f.exists() else None


def _log_lines(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if Path(p).exists():
            out += Path(p).read_text(errors="replace").splitlines()
    return out


def recover_stage(run: Path, lines: list[str], case: str, preset: str) -> dict | None:
    """A stage that has not finished (or whose process ended): its fitted epochs' figures from the run
    directory, its per-epoch seconds from its log lines; marked partial, peak RSS unknown."""
    import re
    import dvi_widget as dvi
    try:
        vis = dvi.Visualization(run)
    except Exception:
        return None
    if not vis.epochs:
        return None
    pat = re.compile(rf"\s+{re.escape(case)} {re.escape(preset)} epoch (\d+): (.*)")
    times: dict[int, dict] = {}
    for ln in lines:
        m = pat.search(ln)
        if m:
            times[int(m.group(1))] = {k: float(v) for k, v in re.findall(r"(train|capture|fit) ([\d.]+) s", m.group(2))}
    eps = [e for e in vis.epochs if e in times]
    if not eps:
        return None
    return {"preset": preset, "partial": True,
            "epochs": [{"epoch": e, "capture_s": times[e].get("capture"), "fit_s": times[e]["fit"],
                        "train_s": times[e].get("train"), "fit_peak_rss_mb": None, "fit_info": fit_info(run, e),
                        "load": None} for e in eps],
            "metrics": {str(e): vis.metrics[e] for e in eps}, "summary": vis.summary, "config": fit_config(run),
            "threads": {}, "describe": None}


def recover_umap(lines: list[str]) -> dict | None:
    """umap-learn's per-epoch seconds, nn_rate and ppr from its log lines (a run that has not finished)."""
    import re
    pat = re.compile(r"umap epoch (\d+): fit_transform ([\d.]+) s, nn_rate ([\d.]+), ppr \((\d+) samples\) (\S+)")
    warm = re.search(r"umap warm-up .*?: ([\d.]+) s", "\n".join(lines))
    eps = []
    n = 0
    for ln in lines:
        m = pat.search(ln)
        if m:
            n = int(m.group(4))
            ppr = None if m.group(5) == "—" else float(m.group(5))
            eps.append({"epoch": int(m.group(1)), "fit_transform_s": float(m.group(2)), "fit_peak_rss_mb": None,
                        "inverse_ms_per_point": float("nan"), "load": None,
                        "metrics": {"nn_rate@15": float(m.group(3)), "trustworthiness@15": None, "ppr": ppr}})
    if not eps:
        return None
    return {"partial": True, "epochs": eps, "summary": {"stab_spearman": None}, "warm_s": float(warm.group(1)) if warm else float("nan"),
            "warm_points": 5000, "random_state": None, "numba_threads": None, "ppr_samples": n,
            "ppr_samples_train": n // 2, "ppr_samples_test": n - n // 2}


def assemble_case(case: str, opts, workdir: Path) -> dict:
    """The case's tables from the stage results already in ``workdir`` (``--assemble``: stages that
    were run, or finished, outside one invocation); the pictures are drawn again."""
    presets = [p for p in opts.presets.split(",") if p]
    lines = _log_lines(opts.logs.split(",") if opts.logs else [])
    rec = stage_result(workdir, "record", f"{case}-{presets[0]}") or \
        recover_stage(workdir / f"{case}-{presets[0]}", lines, case, presets[0])
    if rec is None:
        return {"error": f"no record result in {workdir}", "describe": case, "n_epochs": 0}
    if rec.get("describe") is None:
        rec["describe"] = load_case(case, opts.quick)["describe"]
    args = workdir / f"record-{case}-{presets[0]}-args.json"
    planned = json.loads(args.read_text())["epochs"] if args.exists() else None
    umap_res = None if opts.skip_umap else (stage_result(workdir, "umap", case) or recover_umap(lines)
                                            or {"error": "umap-learn did not finish"})
    configs = {presets[0]: rec}
    runs = {presets[0]: str(workdir / f"{case}-{presets[0]}")}
    for preset in presets[1:]:
        configs[preset] = (stage_result(workdir, "fit", f"{case}-{preset}")
                           or recover_stage(workdir / f"{case}-{preset}", lines, case, preset)
                           or {"error": f"{preset} did not finish"})
        runs[preset] = str(workdir / f"{case}-{preset}")
    out = summarise_case(case, opts, workdir, rec, umap_res, configs, runs)
    out["planned_epochs"] = planned
    return out


def summarise_case(case: str, opts, workdir: Path, rec: dict, umap_res: dict | None, configs: dict, runs: dict) -> dict:
    """Rows, goals, pictures and notes of one case from its stages' results."""
    quick = opts.quick
    presets = list(configs)
    capture_s = {e["epoch"]: e["capture_s"] for e in rec["epochs"]}
    epochs = [e["epoch"] for e in rec["epochs"]]
    n_epochs = len(epochs)
    ref_epochs = min(opts.reference_epochs or (1 if quick else 2), n_epochs)
    ppr_epochs = ([int(x) for x in opts.umap_ppr_epochs.split(",")] if opts.umap_ppr_epochs else [1, n_epochs])
    umap_emb = workdir / f"{case}-umap-embeddings.npz"
    umap_ok = umap_res if umap_res and not umap_res.get("error") else None
    rows = []
    for label, res in configs.items():
        if res.get("error"):
            rows.append({"label": label, "error": res["error"]})
            continue
        r = summarise_config(label + (f" ({len(res['epochs'])} of {n_epochs} epochs)" if len(res["epochs"]) < n_epochs else ""),
                             res, capture_s, umap_ok)
        r["goals"] = goals(r, umap_ok is not None)
        rows.append(r)
    if umap_ok:
        rows.append(summarise_umap(umap_ok))
    elif umap_res:
        rows.append({"label": "umap-learn", "error": umap_res["error"]})
    pics = {}
    if not opts.skip_pictures:
        last = epochs[-1]
        umap_last = next((e["metrics"] for e in umap_ok["epochs"] if e["epoch"] == last), {}) if umap_ok else {}
        pics = run_stage("pictures", {"label": case, "case": case, "runs": runs, "epoch": last,
                                      "umap_embeddings": str(umap_emb), "umap_metrics": umap_last,
                                      "out": opts.pictures, "size": opts.picture_size}, workdir)
    notes = [
        "capture+fit: per epoch, `rec.capture(...)` plus the incremental `dvi.fit(run, preset=...)` after it; the "
        f"first preset ({presets[0]}) is timed inside the training process; then umap-learn runs on each recorded "
        "epoch; then the other presets, one after the other, each fit a copy of the same recorded epochs in a fresh "
        "process and add their fit time to the same capture time. One stage runs at a time, so each has the whole "
        "machine. The ratio divides by umap-learn's mean fit_transform over the same epochs, measured in the same "
        "invocation.",
        "peak RSS of a fit: the highest resident memory of the configuration's process during one epoch's `dvi.fit` "
        "(psutil, sampled every 5 ms; torch alone is ~300 MiB of it); for umap-learn, during `fit_transform`.",
    ]
    if umap_ok:
        u = umap_ok
        notes.append(
            f"umap-learn: `umap.UMAP({'' if u['random_state'] is None else 'random_state=%d' % u['random_state']})` "
            f"(its defaults: n_neighbors 15, min_dist 0.1), numba threads {u.get('numba_threads')}, warmed first by "
            f"`fit_transform` + `inverse_transform` of {u['warm_points']} random points ({u['warm_s']:.0f} s, not "
            f"timed); nn_rate@15, trustworthiness@15 and stab_spearman computed with dvi_widget.engine.metrics on the "
            f"engine's query subset. ppr has no meaning for umap-learn without an inverse: here it is the share of a "
            f"fixed subset of {u['ppr_samples']} samples ({u['ppr_samples_train']} train, {u['ppr_samples_test']} "
            f"test) whose head prediction survives `inverse_transform` of the sample's own embedding row, at epochs "
            f"{', '.join(map(str, ppr_epochs))} only (it costs "
            f"{_mean([e['inverse_ms_per_point'] for e in u['epochs']]):.0f} ms a point here); standard error about "
            f"{100 * np.sqrt(0.05 * 0.95 / max(u['ppr_samples_test'], 1)):.1f} points at ppr ~0.95.")
    if "reference" in configs and ref_epochs < n_epochs:
        notes.append(f"reference (DVI) fitted on the first {ref_epochs} of {n_epochs} epochs only "
                     f"(`--reference-epochs`): it costs minutes per epoch here.")
    if quick:
        notes.append(f"--quick: smaller data and fit overrides {QUICK_OVERRIDES}; the figures do not describe the presets.")
    for label, res in list(configs.items()) + [("umap-learn", umap_res or {})]:
        if res.get("partial"):
            notes.append(f"**{label}: partial** — epochs {', '.join(str(e['epoch']) for e in res['epochs'])} only: the "
                         f"run was still going when these tables were assembled (`--assemble --logs`); figures from its "
                         f"run directory, seconds from its log, peak RSS and load not recorded"
                         + (", trustworthiness and stab_spearman not in its log" if label == "umap-learn" else "") + ".")
    return {"describe": rec["describe"], "n_epochs": n_epochs, "rows": rows, "configs": configs, "umap": umap_res,
            "capture_s": capture_s, "pictures": pics.get("pictures", {}), "notes": notes}


def cases_benchmark(opts, command: str) -> dict:
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dvi-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": git_commit(), "machine": machine(), "load_start": loadavg(), "cases": {}}
    for case in opts.cases.split(","):
        res["cases"][case] = (assemble_case if opts.assemble else case_benchmark)(case, opts, workdir)
        res["cases"][case]["capture_s"] = {str(k): v for k, v in res["cases"][case].get("capture_s", {}).items()}
    res["load_end"] = loadavg()
    res["total_s"] = time.perf_counter() - t0
    if not opts.workdir and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def cases_markdown(res: dict) -> str:
    lines = header_markdown(res)
    for case, c in res["cases"].items():
        if c.get("error"):
            lines += [f"#### {case}", "", f"failed: {c['error']}", ""]
            continue
        c = dict(c, capture_s={int(k): v for k, v in c["capture_s"].items()})
        lines += case_markdown(case, c)
    return "\n".join(lines) + "\n"


def scaling_benchmark(opts, command: str) -> dict:
    """One row per size: ours (capture + incremental fit, 3 epochs, fresh process) then umap-learn's
    fit_transform of the same last-epoch features (another fresh process, numba warmed first).

    Rows of sizes not run in this invocation are kept from ``--out``/engine-scaling.json (each row
    carries its own command, commit, date and load), so the sizes can be measured one at a time,
    each under the benchmark lock; ``--no-merge`` starts the table afresh.
    """
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dvi-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    epochs = opts.epochs or 3
    t0 = time.perf_counter()
    out_json = Path(opts.out) / "engine-scaling.json"
    old_rows = []
    if not opts.no_merge and out_json.exists():
        try:
            old_rows = [r for r in json.loads(out_json.read_text()).get("rows", []) if r.get("commit")]
        except (ValueError, OSError):
            old_rows = []
    res = {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": git_commit(), "machine": machine(), "load_start": loadavg(), "rows": []}
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in opts.sizes.split(",")]
    new_rows = []
    for n, d in sizes:
        row = {"n": n, "d": d, "epochs": epochs, "command": command, "commit": git_commit(),
               "engine_commit": engine_commit(), "autogroup": _autogroup(),
               "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load_start": loadavg()}
        before = next((r for r in old_rows if (r["n"], r["d"]) == (n, d)), None)
        if opts.scaling_part == "umap" and before is not None:      # keep the row's own side, add umap-learn's
            row = dict(before, umap_command=command, umap_commit=row["commit"], umap_date=row["date"])
        else:
            log(f"scaling: {n} x {d}, {epochs} epochs, preset {opts.scaling_preset}, load {row['load_start']}")
            row["ours"] = run_stage("scale", {"label": f"{n}x{d}", "n": n, "dim": d, "epochs": epochs, "seed": 0,
                                              "preset": opts.scaling_preset, "run": str(workdir / f"scale-{n}x{d}"),
                                              "overrides": {}}, workdir)
        if opts.scaling_part == "ours" and before is not None and not (before.get("umap") or {}).get("error"):
            row["umap"] = before["umap"]                               # umap-learn's side measured earlier
        elif not opts.skip_umap and opts.scaling_part != "ours":
            log(f"scaling: umap-learn on the same {n} x {d} features (fresh process, numba warmed first)")
            um = run_stage("scale-umap", {"label": f"{n}x{d}", "sizes": [(n, d)], "epochs": epochs, "seed": 0,
                                          "umap_seed": opts.umap_seed}, workdir)
            row["umap"] = dict((um.get("sizes") or {}).get(f"{n}x{d}") or {"error": um.get("error", "missing")},
                               threads=um.get("threads"))
        else:
            row["umap"] = {"error": "skipped"}
        row["load_end"] = loadavg()
        new_rows.append(row)
        done = {(r["n"], r["d"]) for r in new_rows}
        res["rows"] = sorted([r for r in old_rows if (r["n"], r["d"]) not in done] + new_rows,
                             key=lambda r: (r["n"], r["d"]))
        Path(opts.out).mkdir(parents=True, exist_ok=True)
        (Path(opts.out) / "engine-scaling.partial.json").write_text(json.dumps(res, indent=1, default=float))
    res["load_end"] = loadavg()
    res["total_s"] = time.perf_counter() - t0
    if not opts.workdir and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return res


STAGE_KEYS = ("complex_s", "layout_s", "maps_s", "map_s", "metrics_s")


def stage_times(info: dict) -> str:
    """The fit's own per-stage seconds (info.json keys ending in _s), e.g. "complex 3.1, layout 9.0"."""
    return ", ".join(f"{k[:-2]} {v:.1f}" for k, v in info.items() if k.endswith("_s") and isinstance(v, (int, float)))


def _growth(t0: float, t1: float, n0: int, n1: int) -> float:
    """Exponent p with t1 / t0 = (n1 / n0) ** p."""
    if not (t0 and t1 and t0 > 0 and t1 > 0 and n1 != n0):
        return float("nan")
    return float(np.log(t1 / t0) / np.log(n1 / n0))


def scaling_row_figures(r: dict) -> dict:
    """The figures of one size: cold (epoch 1), warm (mean of epochs 2..E) and mean fit seconds, umap-learn's
    fit_transform, the ratios, and per-stage seconds (cold, warm mean) from each fit's info.json."""
    es = r["ours"]["epochs"]
    cold, warm = es[0], es[1:] or es[:1]
    u = r.get("umap") or {}
    uf = u.get("fit_transform_s") if not u.get("error") else None
    f = {"cold_s": cold["fit_s"], "warm_s": _mean([e["fit_s"] for e in warm]),
         "mean_s": _mean([e["fit_s"] for e in es]), "capture_s": _mean([e["capture_s"] for e in es]),
         "umap_s": uf}
    for k in ("cold", "warm", "mean"):
        f[f"{k}_ratio"] = f[f"{k}_s"] / uf if uf else float("nan")
    for key in STAGE_KEYS:
        f[f"{key}_cold"] = (cold.get("fit_info") or {}).get(key)
        f[f"{key}_warm"] = _mean([(e.get("fit_info") or {}).get(key) for e in warm])
    return f


def scaling_markdown(res: dict) -> str:
    lines = ["Rows are measured one size (or one side of a size) per invocation: each row gives the engine commit, "
             "date and load it was measured at, engine-scaling.json each row's command. The last invocation:", ""]
    lines += header_markdown(res)
    cols = ["N x D", "fit s: cold (epoch 1) / warm (mean 2..E) / mean", "umap-learn fit_transform s",
            "÷ umap: cold / warm / mean", "capture s", "peak RSS MiB: ours / umap", "nn_rate@15 last: ours / umap",
            "kNN path", "threads: torch intra per epoch, inter / numba", "load 1-min: ours start / umap start (autogroup nice)",
            "engine commit, date"]
    lines += ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    figs = {}
    for r in res["rows"]:
        o, u = r["ours"], r.get("umap") or {}
        name = f"{r['n']:,} x {r['d']}"
        if o.get("error"):
            lines.append(f"| {name} | failed: {o['error']} |" + " |" * (len(cols) - 2))
            continue
        f = figs[(r["n"], r["d"])] = scaling_row_figures(r)
        es = o["epochs"]
        last_m = es[-1]["metrics"]
        ut = u.get("threads") or {}
        lines.append("| " + " | ".join([
            name, f"{fmt(f['cold_s'], '.1f')} / {fmt(f['warm_s'], '.1f')} / {fmt(f['mean_s'], '.1f')}",
            fmt(f["umap_s"], ".1f") if not u.get("error") else f"failed: {u['error']}",
            f"{fmt(f['cold_ratio'], '.2f')} / {fmt(f['warm_ratio'], '.2f')} / {fmt(f['mean_ratio'], '.2f')}",
            fmt(f["capture_s"], ".2f"),
            f"{fmt(o['peak_rss_mb'], '.0f')} / {fmt(u.get('fit_peak_rss_mb'), '.0f')}",
            f"{fmt(last_m.get('nn_rate@15'))} / {fmt(u.get('nn_rate@15'))}",
            ", ".join(sorted({e.get("knn_path", "?") for e in es})),
            f"{'/'.join(str((e.get('fit_info') or {}).get('threads', '?')) for e in es)}, "
            f"{es[0].get('torch_interop', (o.get('threads') or {}).get('torch_interop', '?'))} / "
            f"{u.get('numba_threads')}" + (f" (umap process torch {ut.get('torch_intraop')})" if ut else ""),
            f"{fmt((es[0].get('load_start') or o.get('load_start') or [None])[0], '.2f')} / "
            f"{fmt((u.get('load_start') or [None])[0], '.2f')}"
            + (f" ({r['autogroup'].split()[-1]})" if r.get("autogroup") else ""),
            f"{r.get('engine_commit') or r.get('commit', res.get('commit'))}, {r.get('date', res.get('date'))}"]) + " |")
    # per-stage seconds and growth exponents
    lines += ["", "Per-stage seconds of each fit (info.json; complex = kNN graph + fuzzy set + boundary complex, "
              "layout = the SGD layout (the chain's link), maps = encoder/decoder fitted to it, map = decision map, "
              "metrics), cold epoch 1 / warm mean of epochs 2..E:", "",
              "| N x D | " + " | ".join(k[:-2] for k in STAGE_KEYS) + " | fit total |",
              "|---|" + "---:|" * (len(STAGE_KEYS) + 1)]
    for (n, d), f in figs.items():
        lines.append(f"| {n:,} x {d} | " + " | ".join(
            f"{fmt(f[k + '_cold'], '.1f')} / {fmt(f[k + '_warm'], '.1f')}" for k in STAGE_KEYS)
            + f" | {fmt(f['cold_s'], '.1f')} / {fmt(f['warm_s'], '.1f')} |")
    keys = sorted(figs)
    if len(keys) > 1:
        lines += ["", "Growth exponent p between consecutive sizes (t ∝ N^p; warm epochs; p = 1 is linear, 2 is N^2; "
                  "where D changes too (marked), the exponent mixes the two: halving D roughly halves the kNN and "
                  "metrics work, so there it understates the growth in N):", "",
                  "| from → to | " + " | ".join(k[:-2] for k in STAGE_KEYS) + " | fit (warm) | umap-learn |",
                  "|---|" + "---:|" * (len(STAGE_KEYS) + 2)]
        for a, b in zip(keys, keys[1:]):
            fa, fb = figs[a], figs[b]
            lines.append(f"| {a[0]:,}x{a[1]} → {b[0]:,}x{b[1]}{' (D changes)' if a[1] != b[1] else ''} | " + " | ".join(
                fmt(_growth(fa[k + "_warm"], fb[k + "_warm"], a[0], b[0]), ".2f") for k in STAGE_KEYS)
                + f" | {fmt(_growth(fa['warm_s'], fb['warm_s'], a[0], b[0]), '.2f')} | "
                  f"{fmt(_growth(fa['umap_s'], fb['umap_s'], a[0], b[0]), '.2f')} |")
    lines += ["", "- ours: `rec.capture(features=H, head=head, epoch=e)` then `dvi.fit(run)` each epoch, in one fresh "
              "process per size (peak RSS: that process's ru_maxrss, data generation and recording included); "
              "'cold' is epoch 1 (a fresh process: every one-off cost, above 50,000 points pynndescent's numba "
              "compilation too), 'warm' the mean of epochs 2..E (warm-started). kNN path: checked per epoch by "
              "counting calls into `dvi_widget.engine.knn.approximate_knn` (pynndescent).",
              "- umap-learn: `umap.UMAP().fit_transform` of the same size's last-epoch features, in a further fresh "
              "process, warmed first by a `fit_transform` of 5,000 random points (not timed); no random_state (its "
              "parallel code path), numba on every core. Its peak RSS is that process's resident memory during the "
              "call (the process also held torch, umap-learn and the features).",
              "- each row was measured alone under `flock /work/bench.lock` at normal priority (other work on the "
              "machine ran niced); its command, commit and date are in the row and in engine-scaling.json.",
              "- features: `synthetic_features` in benchmarks/engine.py: 10 classes, each a blob spread along its own "
              "8-D subspace, centres pulling apart and drifting every epoch; a random linear head nudged each epoch."]
    return "\n".join(lines) + "\n"


def synthetic_benchmark(opts, command: str) -> dict:
    n, d, epochs = (4000, 64, 3) if opts.quick else (50_000, 512, 8)
    epochs = opts.epochs or epochs
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dvi-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    res = {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": git_commit(), "machine": machine(), "load_start": loadavg()}
    log(f"synthetic features-only benchmark: {n} x {d}, {epochs} epochs, device {opts.device}")
    res["raw"] = run_stage("synthetic", {"label": "synthetic", "run": str(workdir / "synthetic"), "n": n, "dim": d,
                                         "epochs": epochs, "seed": 0, "device": opts.device, "overrides": {}}, workdir)
    res["load_end"] = loadavg()
    if not opts.workdir and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def synthetic_markdown(res: dict) -> str:
    lines = header_markdown(res)
    r = res["raw"]
    if r.get("error"):
        return "\n".join(lines + [f"failed: {r['error']}"]) + "\n"
    lines += [f"Device {r['device']} {r.get('gpu') or ''}, peak GPU memory {fmt(r.get('peak_gpu_mb'), '.0f')} MiB", "",
              "| epoch | capture s | fit s | capture+fit s | ppr | nn_rate@15 |", "|---:|---:|---:|---:|---:|---:|"]
    for e in r["epochs"]:
        lines.append(f"| {e['epoch']} | {e['capture_s']:.2f} | {e['fit_s']:.2f} | {e['capture_s'] + e['fit_s']:.2f} | "
                     f"{fmt(e['metrics'].get('ppr'), '.4f')} | {fmt(e['metrics'].get('nn_rate@15'))} |")
    later = [e["capture_s"] + e["fit_s"] for e in r["epochs"][1:]]
    lines += ["", f"Mean capture+fit after the first epoch: {fmt(_mean(later), '.2f')} s (goal on a GPU: < 1 s)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="mnist,digits", help="comma-separated: mnist, digits")
    p.add_argument("--presets", default=",".join(PRESETS),
                   help="fit presets; the first is fitted inside the training process (default: %(default)s)")
    p.add_argument("--reference-epochs", type=int, default=None, help="fit the reference on the first N epochs (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke check: smaller data, 3 epochs, coarse maps")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--skip-umap", action="store_true")
    p.add_argument("--skip-pictures", action="store_true")
    p.add_argument("--umap-seed", type=int, default=None,
                   help="umap random_state (default None, as a user runs it: parallel, non-deterministic)")
    p.add_argument("--umap-ppr-samples", type=int, default=None, help="samples for umap's inverse_transform ppr (300)")
    p.add_argument("--umap-ppr-epochs", default=None, help="epochs at which to measure umap's ppr (default: first, last)")
    p.add_argument("--scaling", action="store_true", help="the features-only scaling table")
    p.add_argument("--sizes", default=SCALING_SIZES, help="scaling sizes, NxD comma-separated (default %(default)s)")
    p.add_argument("--scaling-preset", default="default")
    p.add_argument("--scaling-part", choices=("both", "ours", "umap"), default="both",
                   help="--scaling: measure both sides of each row, or only ours / only umap-learn's (the other "
                        "side is kept from --out/engine-scaling.json), so a large size fits in two lock holds")
    p.add_argument("--no-merge", action="store_true",
                   help="--scaling: do not keep the rows of other sizes already in --out/engine-scaling.json")
    p.add_argument("--gpu-synthetic", action="store_true", help="50,000 x 512 synthetic features-only run (CUDA)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the markdown tables and the JSON")
    p.add_argument("--pictures", default=str(HERE / "pictures"), help="folder for the pictures of the last epoch")
    p.add_argument("--picture-size", type=int, default=440, help="map size of each picture, pixels")
    p.add_argument("--workdir", default=None, help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run directories")
    p.add_argument("--logs", default=None,
                   help="with --assemble: log files of stages that did not finish (comma-separated); their epochs so "
                        "far are recovered from the run directories and these logs, marked partial")
    p.add_argument("--assemble", action="store_true",
                   help="only build the tables and pictures from the stage results already in --workdir")
    p.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    p.add_argument("--stage-args", help=argparse.SUPPRESS)
    p.add_argument("--stage-result", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)

    if opts.stage:
        sys.path.insert(0, str(ROOT))
        result = STAGES[opts.stage](json.loads(Path(opts.stage_args).read_text()))
        Path(opts.stage_result).write_text(json.dumps(result, default=float))
        return 0

    command = "python benchmarks/engine.py" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    if opts.gpu_synthetic:
        res, md, stem = None, None, "engine-gpu-synthetic"
        res = synthetic_benchmark(opts, command)
        md = synthetic_markdown(res)
    elif opts.scaling and opts.assemble:     # rebuild the table from --out/engine-scaling(.partial).json
        src = Path(opts.out) / "engine-scaling.json"
        src = src if src.exists() else Path(opts.out) / "engine-scaling.partial.json"
        res = json.loads(src.read_text())
        md, stem = scaling_markdown(res), "engine-scaling"
    elif opts.scaling:
        res = scaling_benchmark(opts, command)
        md, stem = scaling_markdown(res), "engine-scaling"
    else:
        res = cases_benchmark(opts, command)
        md, stem = cases_markdown(res), "engine"
    if opts.quick:
        stem += "-quick"
    print()
    print(md)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=float))
    log(f"wrote {out / (stem + '.md')} and {out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
