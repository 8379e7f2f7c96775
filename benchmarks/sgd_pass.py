"""Time one pass of the layout's compiled SGD (engine/sgd.py) at 10k, 100k and 200k points.

What is timed: ``layout.optimize_layout`` with the CPU defaults of a cold epoch (a 160-pass
schedule, sequential updates, 8 negative samples, lr 1) on a realistic UMAP graph, in a fresh
process per (code, size, threads), after a warm-up call that loads or compiles numba's machine
code. ``run_passes`` reports progress once per block of 10 passes; the figure is the median of a
block's seconds / 10 over blocks 2..``--blocks``. The call is stopped after ``--blocks`` blocks (a
pass costs about the same all along the schedule: each edge is sampled every ``eps`` passes from
the start). The first block is reported apart, as "first 10": it carries the call's one-off
set-up (edge filter, renumbering) but fewer edge samples (an edge is first sampled at pass
``eps``), so it is only comparable with itself.

The graphs: ``benchmarks/engine.py``'s ``synthetic_features`` (10 clustered classes, the features
of the scaling table), epoch 1, then ``engine.complexes.build_complex`` (exact kNN up to 50,000
points, pynndescent above, as the engine does) and ``layout.pca_init``; cached in ``--cache``
(building the 200k graph takes a minute or two; it is never timed).

Before / after: ``--compare REV`` exports that commit's ``dvi_widget`` (``git archive``) and times
it the same way next to the working tree's. Run timed measurements under the bench lock, one
size per hold, e.g.::

    flock /work/bench.lock setsid -w bash -c 'echo -10 > /proc/self/autogroup; \
        exec python benchmarks/sgd_pass.py --compare 92ca771 --sizes 100000x128'

Prints a markdown table (with the command, load averages and commits) and, with ``--out``,
merges the rows into a JSON file.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSES = 160          # the schedule timed (a cold epoch's layout_epochs_first is 200, a warm one's 160)


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def graph_path(cache: Path, n: int, d: int) -> Path:
    return cache / f"graph_{n}x{d}.npz"


def build_graph(cache: Path, n: int, d: int) -> Path:
    """The engine's graph of ``n`` synthetic points in ``d`` dimensions (cached)."""
    import numpy as np
    import torch
    path = graph_path(cache, n, d)
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from engine import synthetic_features
    from dvi_widget.engine.complexes import build_complex
    from dvi_widget.engine.layout import pca_init
    torch.set_num_threads(1)
    t = time.perf_counter()
    _, features = synthetic_features(n, d, 10, 3, 0)
    H = torch.from_numpy(features(1))
    cx = build_complex(H, torch.zeros((0, d)), 15)
    start = pca_init(H, torch.Generator().manual_seed(0))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, edges=cx.edges.numpy(), weights=cx.weights.numpy(), start=start.numpy())
    tmp.replace(path)
    print(f"built {path.name}: {len(cx.edges):,} edges in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


class _Stop(Exception):
    pass


class _BlockTimer:
    """A progress object for ``optimize_layout``: the time of each ``update`` (one per block of passes)."""

    def __init__(self, blocks: int):
        self.times = [time.perf_counter()]
        self.passes = [0]
        self.blocks = blocks

    def update(self, k: int) -> None:
        self.times.append(time.perf_counter())
        self.passes.append(self.passes[-1] + k)
        if len(self.times) > self.blocks:
            raise _Stop


def _layout(start, edges, weights, blocks: int, seed: int = 0):
    import torch
    from dvi_widget.engine.config import umap_ab
    from dvi_widget.engine.layout import optimize_layout
    a, b = umap_ab(1.0, 0.1)
    timer = _BlockTimer(blocks)
    try:
        optimize_layout(start, edges, weights, PASSES, a, b, generator=torch.Generator().manual_seed(seed),
                        negative_sample_rate=8, lr=1.0, progress=timer, kernel="numba", sequential=True)
    except _Stop:
        pass
    return timer


def measure(graph: Path, threads: int, blocks: int) -> dict:
    """In this process: warm up numba, then time ``blocks`` blocks of passes on ``graph``."""
    import numpy as np
    import torch
    import dvi_widget
    torch.set_num_threads(threads)
    g = np.load(graph)
    edges, weights, start = (torch.from_numpy(g[k]) for k in ("edges", "weights", "start"))
    t = time.perf_counter()
    small = slice(0, 2000)
    keep = (edges < 2000).all(1)
    _layout(start[small], edges[keep], weights[keep], 1)            # loads (or compiles) the machine code
    warm_s = time.perf_counter() - t
    timer = _layout(start, edges, weights, blocks)
    dt = np.diff(timer.times)
    per_block = dt / np.diff(timer.passes)
    per_pass = float(np.median(per_block[1:])) if len(per_block) > 1 else float(per_block[0])
    return {"per_pass_ms": 1000 * per_pass, "per_pass_ms_all": [round(1000 * x, 2) for x in per_block],
            "first_block_ms": 1000 * float(dt[0]), "warmup_s": warm_s, "threads": threads,
            "numba_threads": threads, "vertices": len(start), "edges": len(edges),
            "dvi_widget": str(Path(dvi_widget.__file__).parent)}


def export_rev(rev: str) -> Path:
    """``rev``'s dvi_widget package, exported once to /tmp (imported from there by the child process)."""
    sha = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", rev], text=True).strip()
    dest = Path("/tmp") / f"dvi_sgd_pass_src_{sha}"
    if not (dest / "dvi_widget").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "dvi_widget"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def head_commit() -> str:
    sha = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], text=True).strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "dvi_widget"]).returncode
    return sha + ("+dirty" if dirty else "")


def child(src: Path, graph: Path, threads: int, blocks: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(max(threads, 1)))
    env.pop("NUMBA_NUM_THREADS", None)
    out = subprocess.run([sys.executable, __file__, "--child", str(graph), "--threads", str(threads),
                          "--blocks", str(blocks)], env=env, capture_output=True, text=True, cwd="/tmp")
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000x128,100000x128,200000x64", help="N x D, comma separated")
    p.add_argument("--threads", default="1,2", help="numba threads, comma separated")
    p.add_argument("--blocks", type=int, default=6, help="blocks of 10 passes per measurement (the first is set-up)")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each code this many times, alternating (the figure: the median of the repeats)")
    p.add_argument("--compare", default=None, help="a git revision to time next to the working tree ('before')")
    p.add_argument("--cache", type=Path, default=Path("/tmp/dvi_sgd_pass"), help="where the graphs are cached")
    p.add_argument("--build-only", action="store_true", help="build (cache) the graphs and stop (not timed)")
    p.add_argument("--out", type=Path, default=None, help="merge the rows into this JSON file")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        print(json.dumps(measure(a.child, int(a.threads), a.blocks)))
        return
    import numpy as np
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    graphs = {}
    for n, d in sizes:
        graphs[(n, d)] = build_graph(a.cache, n, d)
    if a.build_only:
        return
    codes = []
    if a.compare:
        codes.append((f"before ({a.compare})", export_rev(a.compare)))
    codes.append((f"after ({head_commit()})", ROOT))
    command = "python benchmarks/sgd_pass.py " + " ".join(sys.argv[1:])
    load_start = loadavg()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for (n, d), graph in graphs.items():
        for threads in [int(t) for t in a.threads.split(",")]:
            row = {"size": f"{n:,} x {d}", "threads": threads, "load_start": loadavg(), "date": date}
            runs = {label: [] for label, _ in codes}
            for _ in range(a.repeat):          # alternating, so a change of load hits both codes alike
                for label, src in codes:
                    r = child(src, graph, threads, a.blocks)
                    runs[label].append(r)
                    row["edges"] = r["edges"]
                    print(f"{n}x{d} threads {threads} {label}: {r['per_pass_ms']:.1f} ms/pass "
                          f"(blocks {r['per_pass_ms_all']}), first 10 passes {r['first_block_ms']:.0f} ms, "
                          f"load {loadavg()}", file=sys.stderr, flush=True)
            for label, rs in runs.items():
                row[label] = {"per_pass_ms": float(np.median([r["per_pass_ms"] for r in rs])),
                              "first_block_ms": float(np.median([r["first_block_ms"] for r in rs])),
                              "repeats": rs}
            row["load_end"] = loadavg()
            rows.append(row)
    labels = [label for label, _ in codes]
    head = "| N x D | edges | numba threads | " + " | ".join(f"{lb} ms/pass" for lb in labels)
    if len(labels) > 1:
        head += " | after ÷ before"
    head += " | " + " | ".join(f"{lb} first 10 passes ms" for lb in labels) + " | load 1/5/15-min start → end |"
    print(f"\n`{command}` ({date}; load at start {load_start}; median of blocks 2..{a.blocks} of 10 passes"
          f"{f', median of {a.repeat} alternating runs' if a.repeat > 1 else ''}, "
          f"a {PASSES}-pass schedule, sequential updates, 8 negatives)\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        cells = [row["size"], f"{row['edges']:,}", str(row["threads"])]
        cells += [f"{row[lb]['per_pass_ms']:.1f}" for lb in labels]
        if len(labels) > 1:
            cells.append(f"{row[labels[-1]]['per_pass_ms'] / row[labels[0]]['per_pass_ms']:.2f}")
        cells += [f"{row[lb]['first_block_ms']:.0f}" for lb in labels]
        cells.append(f"{row['load_start']} → {row['load_end']}")
        print("| " + " | ".join(cells) + " |")
    if a.out:
        old = json.loads(a.out.read_text()) if a.out.exists() else []
        a.out.write_text(json.dumps(old + [dict(r, command=command) for r in rows], indent=1))


if __name__ == "__main__":
    main()
