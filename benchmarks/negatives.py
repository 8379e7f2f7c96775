"""How many random draws the layout's passes make, and what drawing them on the host costs.

The torch passes (the GPU's layout) sample each edge every w_max / w passes and draw
``negative_sample_rate`` uniform negatives per edge sample (engine/layout.py). This script builds
the complex of the GPU benchmark's synthetic features (``engine.py --gpu-synthetic``: 50,000 x 512
by default), counts the edge samples and negatives of one pass, and times drawing that many
negatives on the host with a CPU generator, as the passes did before engine/rng.py moved the draws
onto the device (there each pass's draws were also copied to the GPU, 8 bytes apiece).

    python benchmarks/negatives.py [--n 50000] [--dim 512] [--passes 60] [--negatives 14]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--passes", type=int, default=60, help="passes of a warm epoch (cold: 200)")
    p.add_argument("--negatives", type=int, default=14, help="negatives per edge sample (the default's)")
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import engine as eb
    from dvi_widget.engine.complexes import build_complex
    from dvi_widget.engine.config import FitConfig
    from dvi_widget.engine.layout import edge_schedule

    _, epoch_features = eb.synthetic_features(a.n, a.dim, 10, 8, 0)
    H = torch.from_numpy(epoch_features(1))
    t = time.perf_counter()
    cx = build_complex(H, H[:0], FitConfig().n_neighbors)
    print(f"complex of {a.n} x {a.dim}: {len(cx.edges):,} directed edges, {time.perf_counter() - t:.1f} s")
    _, eps = edge_schedule(cx.weights, a.passes)         # the edges the passes keep, as the layout keeps them
    per_pass = float((1.0 / eps).sum())                  # edge samples per pass
    draws = int(a.negatives * per_pass)
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        torch.randint(0, a.n, (draws,), generator=g)
        times.append(time.perf_counter() - t)
    print(f"per pass: {per_pass:,.0f} edge samples, {draws:,} negative draws ({draws * 8 / 2 ** 20:.0f} MiB as int64); "
          f"host draw {min(times):.4f}-{max(times):.4f} s; over {a.passes} passes "
          f"{a.passes * min(times):.2f}-{a.passes * max(times):.2f} s of host draws and "
          f"{a.passes * draws * 8 / 2 ** 30:.1f} GiB to copy (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
