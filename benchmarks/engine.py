"""Engine benchmark: dvi_widget's default and DVI's reference configuration against umap-learn.

The MNIST run (see benchmarks/README.md, "Engine"): the 10,000 bundled digits (8,000 train,
2,000 test), the demo's SmallCNN trained 8 epochs exactly as ``dvi_widget.demo`` trains it,
recorded with ``dvi.Recorder.capture(model, features=model.features, head=model.fc)`` each
epoch and fitted right after each capture (``dvi.fit(run)``), so an epoch's time is its
capture plus its incremental fit, the first (cold) epoch included.

umap-learn is measured in the same invocation, on the same recorded features, as the
baseline: its numba code is warmed first (not timed), then ``fit_transform`` per epoch is
timed, and its figures are computed with dvi_widget's own metric functions on the same query
subset. Its ppr uses ``inverse_transform`` on a fixed random subset (it needs ~24 ms a point).

Each configuration runs in a fresh subprocess, and the resident memory of that process is
sampled during every fit call (psutil; tracemalloc does not see torch's allocations):

    record   train + capture + incremental default fit      (the default's timings and memory)
    umap     warm-up, fit_transform per epoch, metrics, ppr on a subset
    fit      incremental fit of a copy of the recorded run   (the reference; --fit-only-rerun: the default)

Usage (from the repository root)::

    python benchmarks/engine.py                 # full MNIST benchmark (15-30 minutes on 2 cores)
    python benchmarks/engine.py --quick         # smoke check, under 2 minutes
    python benchmarks/engine.py --gpu-synthetic # 50,000 x 512 synthetic features-only run (CUDA)
    python benchmarks/engine.py --gpu-synthetic --quick   # its CPU smoke check

Results (markdown table + raw JSON) go to ``--out`` (default ``benchmarks/results``).
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
THREADS: int | None = None          # --threads: torch, numba and OpenMP threads of every stage
# --quick is a smoke check of the whole pipeline: far fewer optimiser steps and a coarse map,
# so its figures say nothing about the configurations' quality.
QUICK_OVERRIDES = {"steps_first": 120, "steps": 40, "grid": 64}


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


def machine() -> dict:
    import torch
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": THREADS or torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    try:
        import umap  # noqa: F401
        from importlib.metadata import version
        info["umap_learn"] = version("umap-learn")
    except Exception:
        info["umap_learn"] = None
    return info


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
    from dvi_widget.store.rundir import epoch_dirname
    info = json.loads((run / "fits" / epoch_dirname(epoch) / "info.json").read_text())
    return {"seconds": info.get("seconds"), "steps": info.get("steps"), "device": info.get("device")}


# --------------------------------------------------------------------------- stages (subprocesses)
def stage_record(a: dict) -> dict:
    """Train the demo's SmallCNN exactly as dvi_widget.demo does; capture and fit after each epoch."""
    import torch
    import dvi_widget as dvi
    from dvi_widget import demo

    t_start = time.perf_counter()
    images, labels, split = demo.load_mnist(a["n_train"], a["n_test"], a["seed"])
    x, y = demo.to_tensor(images), torch.from_numpy(labels)
    train = torch.from_numpy(split == "train")
    gen = torch.Generator().manual_seed(a["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(a["seed"])
        model = demo.SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = Path(a["run"])
    t0 = time.perf_counter()
    rec = dvi.Recorder(run, inputs=x, labels=labels, classes=demo.CLASSES, images=images, split=split,
                       overwrite=True)
    setup_s = time.perf_counter() - t0
    epochs = []
    rss = RssSampler()
    for epoch in range(1, a["epochs"] + 1):
        t0 = time.perf_counter()
        loss = demo.train_one_epoch(model, opt, x[train], y[train], gen)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        e = rec.capture(model, features=model.features, head=model.fc)
        capture_s = time.perf_counter() - t0
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(run, progress=False, **a["overrides"])
            fit_s = time.perf_counter() - t0
        epochs.append({"epoch": e, "train_s": train_s, "capture_s": capture_s, "fit_s": fit_s,
                       "fit_peak_rss_mb": mem.peak_mb, "train_loss": loss, "fit_info": fit_info(run, e)})
        m = vis.metrics[e]
        log(f"  default epoch {e}: capture {capture_s:.2f} s, fit {fit_s:.2f} s (peak RSS {mem.peak_mb:.0f} MiB), "
            f"ppr train/test {m['ppr/train']:.4f}/{m['ppr/test']:.4f}, nn_rate {m['nn_rate@15']:.3f}")
    rec.close()
    from dvi_widget.engine.config import FitConfig
    return {"setup_s": setup_s, "epochs": epochs, **vis_figures(vis), "config": FitConfig.build(**a["overrides"]).to_dict(),
            "peak_rss_mb": peak_rss_mb(), "total_s": time.perf_counter() - t_start}


def stage_fit(a: dict) -> dict:
    """Fit a copy of the recorded run epoch by epoch (incremental ``dvi.fit`` after each epoch appears)."""
    import dvi_widget as dvi
    from dvi_widget.engine.config import FitConfig

    src, dst = Path(a["src"]), Path(a["run"])
    copy_header(src, dst)
    epochs = []
    vis = None
    rss = RssSampler()
    for i, e in enumerate(a["epochs"]):
        copy_epoch(src, dst, e)
        with rss.span() as mem:
            t0 = time.perf_counter()
            vis = dvi.fit(dst, preset=a["preset"], refit=(i == 0), progress=False, device=a["device"],
                          **a["overrides"])
            fit_s = time.perf_counter() - t0
        epochs.append({"epoch": e, "fit_s": fit_s, "fit_peak_rss_mb": mem.peak_mb, "fit_info": fit_info(dst, e)})
        m = vis.metrics[e]
        log(f"  {a['preset']} epoch {e}: fit {fit_s:.2f} s (peak RSS {mem.peak_mb:.0f} MiB), ppr train/test "
            f"{m['ppr/train']:.4f}/{m.get('ppr/test', float('nan')):.4f}, nn_rate {m['nn_rate@15']:.3f}")
    return {"epochs": epochs, **vis_figures(vis), "config": FitConfig.build(a["preset"], **a["overrides"]).to_dict(),
            "peak_rss_mb": peak_rss_mb()}


def stage_umap(a: dict) -> dict:
    """umap-learn per epoch on the recorded features, with dvi_widget's metric functions."""
    import torch
    import umap
    from dvi_widget.store.heads import load_head
    from dvi_widget.engine.knn import exact_knn
    from dvi_widget.engine.metrics import overlap_rate, query_subset, stab_spearman, trustworthiness
    from dvi_widget.store.rundir import RunDir, load_npz

    run = RunDir(a["run"])
    epochs = a["epochs"]
    n = run.n
    split = run.split()
    rs = a["umap_seed"]

    def make():
        return umap.UMAP(n_neighbors=K, min_dist=0.1, random_state=rs)

    # warm numba's compilation (not timed): > 4,096 points takes the same code paths as the real run
    t0 = time.perf_counter()
    warm = np.random.default_rng(1).normal(size=(a["warm_points"], 64)).astype(np.float32)
    wm = make().fit(warm)
    wm.inverse_transform(wm.embedding_[:4])
    warm_s = time.perf_counter() - t0
    log(f"  umap warm-up on {len(warm)} random points: {warm_s:.1f} s (not timed)")

    queries = query_subset(n)
    q = torch.from_numpy(queries)
    rng = np.random.default_rng(a["seed"] + 17)
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    n_ppr = a["ppr_samples"]
    n_te = min(len(te), n_ppr // 2) if len(te) else 0
    ppr_idx = np.sort(np.concatenate([rng.choice(tr, min(len(tr), n_ppr - n_te), replace=False),
                                      rng.choice(te, n_te, replace=False) if n_te else np.zeros(0, int)]))
    out_epochs, highs, lows = [], [], []
    prev_h = prev_emb = None
    rss = RssSampler()
    for e in epochs:
        folder = run.epoch_dir(e)
        H = load_npz(folder / "features.npz", ("features",))["features"]
        preds = load_npz(folder / "outputs.npz", ("predictions",))["predictions"]
        with rss.span() as mem:
            t0 = time.perf_counter()
            reducer = make()
            emb = reducer.fit_transform(H).astype(np.float32)
            fit_s = time.perf_counter() - t0
        Ht, Et = torch.from_numpy(H), torch.from_numpy(emb)
        high_knn, _ = exact_knn(Ht, K, queries=Ht[q], query_index=q)
        low_knn, _ = exact_knn(Et, K, queries=Et[q], query_index=q)
        rate = overlap_rate(high_knn, low_knn).numpy()
        sq = split[queries]
        m = {"nn_rate@15": float(rate.mean()),
             "nn_rate@15/train": float(rate[sq == "train"].mean()) if (sq == "train").any() else None,
             "nn_rate@15/test": float(rate[sq == "test"].mean()) if (sq == "test").any() else None,
             "trustworthiness@15": trustworthiness(Ht, q, low_knn)}
        # ppr: does the head's prediction survive inverse_transform of the sample's embedding row?
        inv_s = float("nan")
        m["ppr/train"] = m["ppr/test"] = m["ppr"] = None
        if a.get("ppr_epochs") is None or e in a["ppr_epochs"]:
            t1 = time.perf_counter()
            head = load_head(folder)
            with torch.no_grad():
                rec = reducer.inverse_transform(emb[ppr_idx]).astype(np.float32)
                rp = head(torch.from_numpy(rec)).argmax(1).numpy()
            inv_s = time.perf_counter() - t1
            keep = rp == preds[ppr_idx]
            sp = split[ppr_idx]
            m["ppr/train"] = float(keep[sp == "train"].mean()) if (sp == "train").any() else None
            m["ppr/test"] = float(keep[sp == "test"].mean()) if (sp == "test").any() else None
            m["ppr"] = float(keep.mean())
        if prev_h is not None and prev_h.shape == H.shape:
            highs.append(np.linalg.norm(H[queries] - prev_h[queries], axis=1).astype(np.float32))
            lows.append(np.linalg.norm(emb[queries] - prev_emb[queries], axis=1).astype(np.float32))
        prev_h, prev_emb = H, emb
        out_epochs.append({"epoch": e, "fit_transform_s": fit_s, "fit_peak_rss_mb": mem.peak_mb, "inverse_s": inv_s,
                           "inverse_ms_per_point": 1000 * inv_s / max(len(ppr_idx), 1), "metrics": m})
        log(f"  umap epoch {e}: fit_transform {fit_s:.2f} s, ppr train/test ({len(ppr_idx)} samples) "
            f"{fmt(m['ppr/train'])}/{fmt(m['ppr/test'])}, "
            f"nn_rate {m['nn_rate@15']:.3f}, inverse {1000 * inv_s / max(len(ppr_idx), 1):.0f} ms/point")
    return {"warm_s": warm_s, "warm_points": len(warm), "random_state": rs, "ppr_samples": int(len(ppr_idx)),
            "ppr_samples_train": int((split[ppr_idx] == "train").sum()),
            "ppr_samples_test": int((split[ppr_idx] == "test").sum()),
            "epochs": out_epochs, "summary": {"stab_spearman": stab_spearman(highs, lows)},
            "peak_rss_mb": peak_rss_mb()}


def synthetic_features(n: int, d: int, c: int, epochs: int, seed: int = 0):
    """Clustered features that separate and drift over epochs, like a network's penultimate layer.

    Each class is a blob around its centre, spread along its own 8-D subspace (so neighbourhoods
    mean something), plus a little isotropic noise; centres pull apart as "training" goes on and
    everything drifts a little every epoch. Returns (labels, epoch_features(t) -> (n, d) float32).
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


def stage_synthetic(a: dict) -> dict:
    """Features-only capture of synthetic clustered features with a random linear head, then fit."""
    import torch
    from torch import nn
    import dvi_widget as dvi
    from dvi_widget.engine.fitting import resolve_device

    dev = resolve_device(a["device"])
    n, d, c = a["n"], a["dim"], 10
    labels, epoch_features = synthetic_features(n, d, c, a["epochs"], a["seed"])
    split = np.where(np.random.default_rng(a["seed"] + 1).random(n) < 0.8, "train", "test")
    run = Path(a["run"])
    rec = dvi.Recorder(run, labels=labels, classes=[f"c{i}" for i in range(c)], split=split, overwrite=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(a["seed"])
        head = nn.Linear(d, c).to(dev)               # a random linear head, nudged a little each epoch
    epochs = []
    rss = RssSampler()
    for t in range(1, a["epochs"] + 1):
        H = epoch_features(t)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(a["seed"] + t)
            head.weight.add_(0.05 * head.weight.std() * torch.randn(head.weight.shape).to(dev))
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
                       "fit_info": fit_info(run, t)})
        log(f"  synthetic epoch {t}: capture {capture_s:.2f} s, fit {fit_s:.2f} s "
            f"(fit_epoch {epochs[-1]['fit_info']['seconds']:.2f} s), ppr {m['ppr']:.4f}, nn_rate {m['nn_rate@15']:.3f}")
    rec.close()
    out = {"epochs": epochs, **vis_figures(vis), "device": str(dev), "peak_rss_mb": peak_rss_mb()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


STAGES = {"record": stage_record, "fit": stage_fit, "umap": stage_umap, "synthetic": stage_synthetic}


def run_stage(name: str, args: dict, workdir: Path, timeout: float | None = None) -> dict:
    """Run one stage in a fresh Python process; returns its result dict."""
    arg_file = workdir / f"{name}-{args.get('label', name)}-args.json"
    res_file = workdir / f"{name}-{args.get('label', name)}-result.json"
    arg_file.write_text(json.dumps(args))
    res_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TQDM_DISABLE", "1")     # the recorder's progress bars would flood the log
    if THREADS:
        env["NUMBA_NUM_THREADS"] = env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(THREADS)
    t0 = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--stage-args", str(arg_file),
           "--stage-result", str(res_file)] + (["--threads", str(THREADS)] if THREADS else [])
    proc = subprocess.run(cmd, env=env, timeout=timeout)
    if proc.returncode != 0 or not res_file.exists():
        raise RuntimeError(f"stage {name} ({args.get('label', '')}) failed with exit code {proc.returncode}")
    out = json.loads(res_file.read_text())
    out["wall_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- report
def _mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else float("nan")


def _min(xs):
    xs = [x for x in xs if x is not None]
    return float(np.min(xs)) if xs else float("nan")


def summarise_dvi(name: str, epochs: list[dict], figures: dict, capture_s: dict[int, float], peak: float | None,
                  umap_s: float | None) -> dict:
    ms = figures["metrics"]
    ep = [e["epoch"] for e in epochs]
    fit = [e["fit_s"] for e in epochs]
    total = [capture_s[e["epoch"]] + e["fit_s"] for e in epochs]
    row = {"name": name, "epochs": ep, "capture_fit_s": _mean(total), "fit_s": _mean(fit),
           "capture_s": _mean([capture_s[e] for e in ep]),
           "ppr_train_min": _min([ms[str(e)].get("ppr/train") for e in ep]),
           "ppr_test_min": _min([ms[str(e)].get("ppr/test") for e in ep]),
           "stab_spearman": figures["summary"].get("stab_spearman"),
           "nn_rate_mean": _mean([ms[str(e)].get("nn_rate@15") for e in ep]),
           "trust_mean": _mean([ms[str(e)].get("trustworthiness@15") for e in ep]),
           "map_consistency_min": _min([ms[str(e)].get("map_consistency") for e in ep]),
           "peak_rss_mb": peak}
    row["ratio"] = row["capture_fit_s"] / umap_s if umap_s else float("nan")
    return row


def summarise_umap(u: dict) -> dict:
    es = u["epochs"]
    peak = max(e["fit_peak_rss_mb"] for e in es)
    return {"name": "umap-learn", "epochs": [e["epoch"] for e in es], "capture_fit_s": float("nan"),
            "fit_s": _mean([e["fit_transform_s"] for e in es]), "capture_s": float("nan"), "ratio": 1.0,
            "ppr_train_min": _min([e["metrics"]["ppr/train"] for e in es]),
            "ppr_test_min": _min([e["metrics"]["ppr/test"] for e in es]),
            "stab_spearman": u["summary"]["stab_spearman"],
            "nn_rate_mean": _mean([e["metrics"]["nn_rate@15"] for e in es]),
            "trust_mean": _mean([e["metrics"]["trustworthiness@15"] for e in es]),
            "map_consistency_min": float("nan"), "peak_rss_mb": peak}


def fmt(x, spec=".3f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return format(x, spec)


def markdown(res: dict) -> str:
    rows = res["rows"]
    lines = [f"Command: `{res['command']}`  ",
             f"Date: {res['date']} · commit {res['commit']} · {res['machine']['cpus']} CPUs, "
             f"torch {res['machine']['torch']} ({res['machine']['torch_threads']} threads), "
             f"umap-learn {res['machine'].get('umap_learn')}, "
             f"GPU: {res['machine'].get('cuda') or 'none'}; load average (1/5/15 min) "
             f"{res.get('load_start') or '?'} at the start, {res['machine'].get('loadavg') or '?'} at the end  ",
             f"Data: {res['data']}", ""]
    lines += ["| configuration | capture+fit s/epoch | fit s/epoch | ratio to umap | ppr/train min | ppr/test min "
              "| stab_spearman | nn_rate@15 mean | trustworthiness@15 mean | peak RSS of a fit (MiB) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {fmt(r['capture_fit_s'], '.2f')} | {fmt(r['fit_s'], '.2f')} | "
                     f"{fmt(r['ratio'], '.2f')} | {fmt(r['ppr_train_min'], '.4f')} | {fmt(r['ppr_test_min'], '.4f')} | "
                     f"{fmt(r['stab_spearman'])} | {fmt(r['nn_rate_mean'])} | {fmt(r['trust_mean'])} | "
                     f"{fmt(r['peak_rss_mb'], '.0f')} |")
    lines.append("")
    if res.get("goals"):
        lines.append("Goals (dvi_widget default):")
        for g in res["goals"]:
            lines.append(f"- {'met' if g['met'] else 'NOT met'}: {g['text']}")
        lines.append("")
    if res.get("per_epoch"):
        cols = res["per_epoch_cols"]
        lines.append("Per epoch:")
        lines.append("")
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---:|" * len(cols))
        for row in res["per_epoch"]:
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    for note in res.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def goals(default: dict, umap_row: dict | None) -> list[dict]:
    g = [{"text": f"ppr >= 0.99 on train and test at every epoch (min train {fmt(default['ppr_train_min'], '.4f')}, "
                  f"min test {fmt(default['ppr_test_min'], '.4f')})",
          "met": bool(default["ppr_train_min"] >= 0.99 and default["ppr_test_min"] >= 0.99)},
         {"text": f"stab_spearman >= 0.85 ({fmt(default['stab_spearman'])})",
          "met": bool(default["stab_spearman"] is not None and default["stab_spearman"] >= 0.85)}]
    if umap_row is not None:
        g.append({"text": f"mean nn_rate@15 >= umap-learn's ({fmt(default['nn_rate_mean'])} vs "
                          f"{fmt(umap_row['nn_rate_mean'])})",
                  "met": bool(default["nn_rate_mean"] >= umap_row["nn_rate_mean"])})
        g.append({"text": f"mean capture+fit per epoch <= umap-learn's mean fit_transform "
                          f"({fmt(default['capture_fit_s'], '.2f')} s vs {fmt(umap_row['fit_s'], '.2f')} s, "
                          f"ratio {fmt(default['ratio'], '.2f')})",
                  "met": bool(default["ratio"] <= 1.0)})
    return g


# --------------------------------------------------------------------------- main modes
def mnist_benchmark(opts, command: str) -> dict:
    quick = opts.quick
    n_train, n_test, n_epochs = (1600, 400, 3) if quick else (8000, 2000, 8)
    overrides = dict(QUICK_OVERRIDES) if quick else {}
    if opts.epochs:
        n_epochs = opts.epochs
    ppr_epochs = [int(x) for x in opts.umap_ppr_epochs.split(",")] if opts.umap_ppr_epochs else None
    ref_epochs = min(opts.reference_epochs or (2 if quick else n_epochs), n_epochs)
    ppr_samples = opts.umap_ppr_samples if opts.umap_ppr_samples is not None else (30 if quick else 300)
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dvi-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run = workdir / "mnist"
    t_all = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    log(f"MNIST benchmark: {n_train} train + {n_test} test digits, {n_epochs} epochs; work dir {workdir}")

    log("record: train SmallCNN, capture + default fit after each epoch")
    rec = run_stage("record", {"label": "default", "run": str(run), "n_train": n_train, "n_test": n_test,
                               "epochs": n_epochs, "seed": 0, "overrides": overrides}, workdir)
    capture_s = {e["epoch"]: e["capture_s"] for e in rec["epochs"]}
    epochs = [e["epoch"] for e in rec["epochs"]]

    umap_res = None
    if not opts.skip_umap:
        log("umap-learn baseline on the same features")
        umap_res = run_stage("umap", {"label": "umap", "run": str(run), "epochs": epochs, "seed": 0,
                                      # umap takes its exact-kNN path up to 4,096 points, nndescent beyond:
                                      # warm the path the data will take
                                      "umap_seed": opts.umap_seed,
                                      "warm_points": 5000 if n_train + n_test > 4096 else 1000,
                                      "ppr_samples": ppr_samples, "ppr_epochs": ppr_epochs}, workdir)

    mem = None
    if opts.fit_only_rerun:
        log("default configuration again, fit only, fresh process")
        mem = run_stage("fit", {"label": "default-rerun", "src": str(run), "run": str(workdir / "mnist-default"),
                                "epochs": epochs, "preset": "default", "device": opts.device,
                                "overrides": overrides}, workdir)

    ref = None
    if not opts.skip_reference:
        log(f"reference configuration (DVI), {ref_epochs} epochs, fresh process")
        ref = run_stage("fit", {"label": "reference", "src": str(run), "run": str(workdir / "mnist-reference"),
                                "epochs": epochs[:ref_epochs], "preset": "reference", "device": opts.device,
                                "overrides": overrides},
                        workdir)

    umap_row = summarise_umap(umap_res) if umap_res else None
    umap_s = umap_row["fit_s"] if umap_row else None
    def fit_peak(res):
        return max(e["fit_peak_rss_mb"] for e in res["epochs"])
    default = summarise_dvi("default", rec["epochs"], rec, capture_s, fit_peak(rec), umap_s)
    default["label"] = "dvi_widget default"
    rows = [default]
    default_refit = summarise_dvi("default (fit-only rerun)", mem["epochs"], mem, capture_s, fit_peak(mem),
                                  umap_s) if mem else None
    if ref:
        r = summarise_dvi("reference", ref["epochs"], ref, capture_s, fit_peak(ref), umap_s)
        r["label"] = "DVI reference" + (f" ({ref_epochs} of {n_epochs} epochs)" if ref_epochs < n_epochs else "")
        rows.append(r)
    if umap_row:
        umap_row["label"] = f"umap-learn (fit_transform; ppr on {umap_res['ppr_samples']} samples/epoch)"
        rows.append(umap_row)

    cols = ["epoch", "capture s", "default fit s", "default fit RSS MiB", "default ppr/train", "default ppr/test",
            "default nn_rate"]
    if ref:
        cols += ["ref fit s", "ref ppr/train", "ref ppr/test", "ref nn_rate"]
    if umap_res:
        cols += ["umap fit_transform s", "umap ppr/train", "umap ppr/test", "umap nn_rate"]
    per_epoch = []
    for i, e in enumerate(epochs):
        m = rec["metrics"][str(e)]
        row = [str(e), fmt(capture_s[e], ".2f"), fmt(rec["epochs"][i]["fit_s"], ".2f"),
               fmt(rec["epochs"][i]["fit_peak_rss_mb"], ".0f"), fmt(m.get("ppr/train"), ".4f"),
               fmt(m.get("ppr/test"), ".4f"), fmt(m.get("nn_rate@15"))]
        if ref:
            if str(e) in ref["metrics"]:
                rm = ref["metrics"][str(e)]
                row += [fmt(ref["epochs"][i]["fit_s"], ".2f"), fmt(rm.get("ppr/train"), ".4f"),
                        fmt(rm.get("ppr/test"), ".4f"), fmt(rm.get("nn_rate@15"))]
            else:
                row += ["—"] * 4
        if umap_res:
            um = umap_res["epochs"][i]
            row += [fmt(um["fit_transform_s"], ".2f"), fmt(um["metrics"]["ppr/train"]), fmt(um["metrics"]["ppr/test"]),
                    fmt(um["metrics"]["nn_rate@15"])]
        per_epoch.append(row)

    notes = [
        "capture+fit: the mean over all epochs, the first (cold) one included, of `rec.capture(...)` plus the "
        "incremental `dvi.fit(run)` right after it, both timed inside the training process; the reference "
        "configuration reuses those same captures (capture does not depend on the fit configuration) and adds "
        "its own incremental fit times, measured in a fresh process.",
        "peak RSS of a fit: the highest resident memory of the process (psutil, sampled every 5 ms) during "
        "any one epoch's `dvi.fit` call, each configuration in its own fresh process (the default's is the "
        "training process, which also holds the CNN and the 10,000 digits; the reference's a fit-only process; "
        "torch itself accounts for about 300 MiB); for umap-learn, during `fit_transform`. "
        f"ru_maxrss of the whole processes: training+default {rec['peak_rss_mb']:.0f} MiB"
        + (f", reference {ref['peak_rss_mb']:.0f} MiB" if ref else "")
        + (f", umap-learn {umap_res['peak_rss_mb']:.0f} MiB (warm-up and inverse_transform included)" if umap_res else "")
        + ".",
    ]
    if default_refit:
        notes.append(f"fit-only rerun of the default in a fresh process: {fmt(default_refit['fit_s'], '.2f')} s/epoch fit, "
                     f"ppr/train min {fmt(default_refit['ppr_train_min'], '.4f')}, ppr/test min "
                     f"{fmt(default_refit['ppr_test_min'], '.4f')}, stab_spearman {fmt(default_refit['stab_spearman'])}, "
                     f"peak RSS {fmt(default_refit['peak_rss_mb'], '.0f')} MiB.")
    if umap_res:
        notes.append(
            f"umap-learn: `umap.UMAP(n_neighbors=15, min_dist=0.1, random_state={umap_res['random_state']})`, "
            f"numba warmed first on {umap_res['warm_points']} random points ({umap_res['warm_s']:.0f} s, not timed); "
            f"nn_rate@15, trustworthiness@15 and stab_spearman computed with dvi_widget.engine.metrics on the same "
            f"query subset as the engine; ppr from `inverse_transform` of each sample's embedding row on a fixed "
            f"random subset of {umap_res['ppr_samples']} samples ({umap_res['ppr_samples_train']} train, "
            f"{umap_res['ppr_samples_test']} test) per epoch, "
            + (f"at epochs {', '.join(map(str, ppr_epochs))} only (--umap-ppr-epochs), " if ppr_epochs else "")
            + f"{_mean([e['inverse_ms_per_point'] for e in umap_res['epochs'] if np.isfinite(e['inverse_ms_per_point'])]):.0f} ms a point, "
            f"so each of its ppr figures has a standard error of about "
            f"{100 * np.sqrt(0.05 * 0.95 / max(umap_res['ppr_samples_test'], 1)):.1f} percentage points (at ppr ~0.95).")
    if quick:
        notes.append(f"--quick: a smoke check with fit overrides {QUICK_OVERRIDES} for every configuration; "
                     f"its figures do not describe the configurations.")
    if THREADS:
        notes.append(f"--threads {THREADS}: torch, numba and OpenMP limited to {THREADS} thread(s) in every stage.")
    if ref and ref_epochs < n_epochs:
        notes.append(f"the reference was fitted on the first {ref_epochs} epochs only (--reference-epochs).")
    result = {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "commit": git_commit(), "machine": machine(),
              "data": f"bundled MNIST, {n_train} train + {n_test} test digits, demo SmallCNN, {n_epochs} epochs",
              "load_start": load_start, "rows": rows, "default_fit_only": default_refit, "goals": goals(default, umap_row),
              "per_epoch": per_epoch, "per_epoch_cols": cols, "notes": notes,
              "raw": {"record": rec, "default_fit_only": mem, "reference": ref, "umap": umap_res},
              "total_s": time.perf_counter() - t_all}
    if not opts.workdir and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def synthetic_benchmark(opts, command: str) -> dict:
    quick = opts.quick
    n, d, epochs = (4000, 64, 3) if quick else (50_000, 512, 8)
    if opts.epochs:
        epochs = opts.epochs
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dvi-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    log(f"synthetic features-only benchmark: {n} samples x {d} features, {epochs} epochs, device {opts.device}")
    res = run_stage("synthetic", {"label": "synthetic", "run": str(workdir / "synthetic"), "n": n, "dim": d,
                                  "epochs": epochs, "seed": 0, "device": opts.device,
                                  "overrides": dict(QUICK_OVERRIDES) if quick else {}}, workdir)
    es = res["epochs"]
    ms = res["metrics"]
    row = {"label": f"dvi_widget default, {res['device']}", "capture_fit_s": _mean([e["capture_s"] + e["fit_s"] for e in es]),
           "fit_s": _mean([e["fit_s"] for e in es]), "ratio": float("nan"),
           "ppr_train_min": _min([ms[str(e["epoch"])].get("ppr/train") for e in es]),
           "ppr_test_min": _min([ms[str(e["epoch"])].get("ppr/test") for e in es]),
           "stab_spearman": res["summary"].get("stab_spearman"),
           "nn_rate_mean": _mean([ms[str(e["epoch"])].get("nn_rate@15") for e in es]),
           "trust_mean": _mean([ms[str(e["epoch"])].get("trustworthiness@15") for e in es]),
           "peak_rss_mb": max(e["fit_peak_rss_mb"] for e in es)}
    later = es[1:] or es
    cols = ["epoch", "capture s", "fit s", "of which fit_epoch s", "capture+fit s", "ppr", "nn_rate@15"]
    per_epoch = [[str(e["epoch"]), fmt(e["capture_s"], ".2f"), fmt(e["fit_s"], ".2f"),
                  fmt(e["fit_info"]["seconds"], ".2f"), fmt(e["capture_s"] + e["fit_s"], ".2f"),
                  fmt(ms[str(e["epoch"])].get("ppr"), ".4f"), fmt(ms[str(e["epoch"])].get("nn_rate@15"))] for e in es]
    notes = [f"synthetic clustered features ({n} x {d}, 10 classes, 80/20 train/test) that separate and drift "
             f"over epochs, a random linear head nudged each epoch, features-only `rec.capture(features=H, head=head)` "
             f"then `dvi.fit(run)`; seconds per epoch = capture + incremental fit.",
             f"mean capture+fit over epochs after the first: {_mean([e['capture_s'] + e['fit_s'] for e in later]):.2f} s "
             f"(goal on a GPU: under 1 s per epoch)."]
    if quick:
        notes.append(f"--quick: a CPU smoke check at {n} x {d} with fit overrides {QUICK_OVERRIDES}.")
    if res.get("gpu"):
        notes.append(f"GPU {res['gpu']}, peak GPU memory allocated by torch {res['peak_gpu_mb']:.0f} MiB.")
    result = {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "commit": git_commit(), "machine": machine(), "data": f"synthetic {n} x {d}, {epochs} epochs",
              "load_start": load_start, "rows": [row], "goals": [{"text": f"seconds per epoch after the first < 1 s on a GPU "
                                                f"({_mean([e['capture_s'] + e['fit_s'] for e in later]):.2f} s)",
                                        "met": bool(_mean([e['capture_s'] + e['fit_s'] for e in later]) < 1.0)}],
              "per_epoch": per_epoch, "per_epoch_cols": cols, "notes": notes, "raw": res}
    if not opts.workdir and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke check: 2,000 digits, 3 epochs, few steps (about 2 minutes)")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the markdown table and the JSON")
    p.add_argument("--skip-reference", action="store_true", help="do not fit DVI's reference configuration")
    p.add_argument("--reference-epochs", type=int, default=None, help="fit the reference on the first N epochs only")
    p.add_argument("--fit-only-rerun", action="store_true",
                   help="also fit the default configuration again in a fresh fit-only process")
    p.add_argument("--skip-umap", action="store_true", help="do not run the umap-learn baseline")
    p.add_argument("--umap-seed", type=int, default=None,
                   help="umap random_state (default None: umap's parallel, non-deterministic mode)")
    p.add_argument("--umap-ppr-samples", type=int, default=None,
                   help="samples per epoch for umap's inverse_transform ppr (default 300; 40 with --quick)")
    p.add_argument("--umap-ppr-epochs", default=None,
                   help="comma-separated epochs at which to measure umap's ppr (default: every epoch)")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--gpu-synthetic", action="store_true",
                   help="50,000 x 512 synthetic features-only run (use a CUDA machine; --quick for a CPU smoke check)")
    p.add_argument("--device", default="auto", help="fit device (default auto: CUDA when available)")
    p.add_argument("--workdir", default=None, help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run directories")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/numba/OpenMP threads in every stage (default: the libraries' own choice)")
    p.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    p.add_argument("--stage-args", help=argparse.SUPPRESS)
    p.add_argument("--stage-result", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)

    if opts.stage:
        sys.path.insert(0, str(ROOT))
        if opts.threads:
            import torch
            torch.set_num_threads(opts.threads)
        result = STAGES[opts.stage](json.loads(Path(opts.stage_args).read_text()))
        Path(opts.stage_result).write_text(json.dumps(result))
        return 0

    global THREADS
    THREADS = opts.threads
    command = "python benchmarks/engine.py" + ("" if argv is None and len(sys.argv) == 1 else
                                               " " + " ".join(argv if argv is not None else sys.argv[1:]))
    res = synthetic_benchmark(opts, command) if opts.gpu_synthetic else mnist_benchmark(opts, command)
    md = markdown(res)
    print()
    print(md)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "engine-gpu-synthetic" if opts.gpu_synthetic else "engine"
    if opts.quick:
        stem += "-quick"
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=float))
    log(f"wrote {out / (stem + '.md')} and {out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
