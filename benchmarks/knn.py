"""Which approximate kNN library the engine uses above its exact limit: pynndescent or faiss-cpu.

Measures, on the scaling benchmark's synthetic clustered features (see ``engine.py``,
``synthetic_features``), each candidate's time to build the k = 15 graph of every sample (self
excluded) and its recall against exact neighbours on 2,000 fixed query rows (exact ones from a
chunked torch matrix product). Each candidate runs in its own fresh process, so its peak RSS
is its own, and its one-off costs (numba compilation for pynndescent) are paid first on 5,000
random points and reported apart, as a user's first call would pay them once per process.

Candidates:
  pynndescent   NNDescent(n_neighbors=16, low_memory=True, random_state=0).neighbor_graph
                (umap-learn's own kNN, its defaults for n_trees / n_iters)
  faiss-hnsw    IndexHNSWFlat(d, 32), efConstruction 40, efSearch 64; add all, search all
  faiss-ivf     IndexIVFFlat, nlist = 4 sqrt(N), trained on 40 rows per list, nprobe 8
  torch-exact   the engine's exact search (chunked matmul + top-k), for scale

Usage::

    python benchmarks/knn.py                     # 100k x 128 and 200k x 64, every candidate
    python benchmarks/knn.py --sizes 20000x32 --candidates pynndescent,faiss-hnsw

Results go to benchmarks/results/engine-knn.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
K = 15
N_CHECK = 2000


def features(n: int, d: int) -> np.ndarray:
    sys.path.insert(0, str(HERE))
    from engine import synthetic_features
    _, f = synthetic_features(n, d, 10, 3, seed=0)
    return f(2)


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(name: str, x: np.ndarray) -> np.ndarray:
    """(N, K) neighbour indices of every row, self excluded."""
    n, d = x.shape
    if name == "pynndescent":
        from pynndescent import NNDescent
        idx, _ = NNDescent(x, n_neighbors=K + 1, random_state=0, low_memory=True).neighbor_graph
        return idx
    if name.startswith("faiss"):
        import faiss
        if name == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(d, 32)
            index.hnsw.efConstruction = 40
            index.add(x)
            index.hnsw.efSearch = 64
        else:
            nlist = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
            sub = x[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
            index.train(sub)
            index.add(x)
            index.nprobe = 8
        _, idx = index.search(x, K + 1)
        return idx
    if name == "torch-exact":
        import torch
        sys.path.insert(0, str(ROOT))
        from dvi_widget.engine.knn import exact_knn
        i, _ = exact_knn(torch.from_numpy(x), K)
        return i.numpy()
    raise ValueError(name)


def drop_self(idx: np.ndarray) -> np.ndarray:
    keep = idx != np.arange(len(idx))[:, None]
    out = np.full((len(idx), K), -1, np.int64)
    for r in range(len(idx)):
        row = idx[r][keep[r]][:K]
        out[r, :len(row)] = row
    return out


def stage(name: str, n: int, d: int) -> dict:
    import torch
    x = features(n, d)
    warm_s = 0.0
    if name != "torch-exact":     # one-off costs (numba compilation) on 5,000 random points
        t0 = time.perf_counter()
        build(name, np.random.default_rng(1).normal(size=(5000, d)).astype(np.float32))
        warm_s = time.perf_counter() - t0
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    idx = drop_self(build(name, x))
    secs = time.perf_counter() - t0
    q = np.sort(np.random.default_rng(2).choice(n, N_CHECK, replace=False))
    sys.path.insert(0, str(ROOT))
    from dvi_widget.engine.knn import exact_knn
    xt = torch.from_numpy(x)
    truth, _ = exact_knn(xt, K, queries=xt[q], query_index=torch.from_numpy(q))
    truth = truth.numpy()
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(idx[q], truth)]))
    import numba
    return {"candidate": name, "n": n, "d": d, "seconds": secs, "warm_s": warm_s, "recall": recall,
            "peak_rss_mb": peak_rss_mb(), "load_start": [round(v, 2) for v in load0],
            "load_end": [round(v, 2) for v in os.getloadavg()], "torch_threads": torch.get_num_threads(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "omp_threads": __import__("faiss").omp_get_max_threads() if name.startswith("faiss") else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000x128,200000x64")
    p.add_argument("--candidates", default="pynndescent,faiss-hnsw,faiss-ivf,torch-exact")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--stage", help=argparse.SUPPRESS)
    opts = p.parse_args()
    if opts.stage:
        name, n, d = opts.stage.split(":")
        print(json.dumps(stage(name, int(n), int(d))))
        return 0
    rows = []
    for size in opts.sizes.split(","):
        n, d = (int(v) for v in size.split("x"))
        for name in opts.candidates.split(","):
            if name == "torch-exact" and n > 100_000:
                continue      # ~4x the 100k cost; the point is made at 100k
            out = subprocess.run([sys.executable, __file__, "--stage", f"{name}:{n}:{d}"], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                rows.append({"candidate": name, "n": n, "d": d, "error": out.stderr.strip().splitlines()[-1:]})
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{name:12s} {n} x {d}: {r['seconds']:.1f} s (warm-up {r['warm_s']:.1f} s), recall@15 "
                  f"{r['recall']:.3f}, peak RSS {r['peak_rss_mb']:.0f} MiB, load {r['load_start']}", flush=True)
    lines = ["| candidate | N x D | kNN graph s | one-off warm-up s | recall@15 | peak RSS MiB | load (1/5/15) at start |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['candidate']} | {r['n']} x {r['d']} | failed: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['candidate']} | {r['n']:,} x {r['d']} | {r['seconds']:.1f} | {r['warm_s']:.1f} | "
                     f"{r['recall']:.3f} | {r['peak_rss_mb']:.0f} | {r['load_start']} |")
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine-knn.md").write_text(md)
    (out / "engine-knn.json").write_text(json.dumps({"command": "python benchmarks/knn.py " + " ".join(sys.argv[1:]),
                                                     "cpus": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
