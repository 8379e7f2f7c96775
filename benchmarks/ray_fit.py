"""A whole fit on Ray against the same fit in one process, on this machine: wall time and files.

    python benchmarks/ray_fit.py [--n 1797] [--epochs 6] [--cpus 2] [--out benchmarks/results/ray_fit.json]

Records a features-only run (scikit-learn's digits, N samples, features drifting a little each
epoch, a linear head), copies it, then fits one copy locally (threads=1) and the other with
``executor="ray"`` on a local cluster of ``--cpus`` CPUs (1 CPU per task, so the same thread
count and the same files). Reports both wall times (the Ray one without the cluster's start,
reported apart), the stage times the local fit stored in info.json, and whether the fitted files
are byte-identical (info.json's timings aside).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def record(path: Path, n: int, epochs: int) -> None:
    import dvi_widget as dvi
    from sklearn.datasets import load_digits
    d = load_digits()
    reps = -(-n // len(d.data))
    rng = np.random.default_rng(0)
    X = np.concatenate([d.data / 16.0] * reps)[:n].astype(np.float32)
    X += rng.normal(0, 0.05, X.shape).astype(np.float32)
    y = np.concatenate([d.target] * reps)[:n].astype(np.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = torch.nn.Linear(X.shape[1], 10)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    head.requires_grad_(False)
    with dvi.Recorder(path, labels=y, progress=False) as rec:
        for e in range(1, epochs + 1):
            rec.capture(features=X + 0.02 * e * rng.standard_normal(X.shape).astype(np.float32), head=head, epoch=e)


def same_files(a: Path, b: Path) -> bool:
    for p in sorted(a.rglob("*")):
        if not p.is_file() or p.name in (".writer.json", "info.json", "manifest.json"):
            continue
        if p.read_bytes() != (b / p.relative_to(a)).read_bytes():
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1797)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ray_fit.json"))
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import ray

    import dvi_widget as dvi
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="dvi-ray-fit-"))
    try:
        record(work / "local", args.n, args.epochs)
        shutil.copytree(work / "local", work / "ray")
        t = time.perf_counter()
        dvi.fit(work / "local", progress=False, threads=1)
        local_s = time.perf_counter() - t
        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - t
        t = time.perf_counter()
        dvi.fit(work / "ray", progress=False, threads=1, executor="ray")
        ray_s = time.perf_counter() - t
        ray.shutdown()
        infos = [json.loads((work / "local" / "fits" / f"{e:06d}" / "info.json").read_text())
                 for e in range(1, args.epochs + 1)]
        stages = {k: statistics.median(i[k] for i in infos[1:] or infos)
                  for k in ("complex_s", "map_s", "metrics_s", "seconds") if k in infos[0]}
        res = {"n": args.n, "epochs": args.epochs, "cluster_cpus": args.cpus, "cpus_per_task": 1,
               "ray": ray.__version__, "load_avg_at_start": load_start, "load_avg_at_end": os.getloadavg(),
               "local_fit_s": local_s, "ray_cluster_start_s": start_s, "ray_fit_s": ray_s,
               "local_stage_medians_s": stages,   # median over the epochs after the first
               "identical_files": same_files(work / "local", work / "ray")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
