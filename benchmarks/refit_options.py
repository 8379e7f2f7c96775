"""Refit a recorded benchmark run with other fit options; per-epoch figures against umap-learn.

The quick loop behind the engine's option choices (benchmarks/README.md, "Engine speed, second
round"): ``engine.py --workdir W`` keeps each case's recorded run (``W/<case>-default``) and writes
umap-learn's per-epoch figures to ``OUT/engine.json``; this script copies the recorded epochs (not
the fits), fits them with the given options and prints, per epoch, the fit's stage times, nn_rate@15
and its ratio to umap-learn's on the same epoch, ppr, map_consistency, held-out project_error and
the samples moved for ppr, then the mean fit time, the worst nn_rate ratio and stab_spearman.

    python benchmarks/refit_options.py W/mnist-default OUT/engine.json '{"negative_sample_rate": 8}' --threads 1

The figures other than seconds are the same on every run of the same options and thread count.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a recorded run (engine.py --workdir W: W/<case>-default)")
    p.add_argument("umap", help="engine.json of the same invocation (umap-learn's per-epoch nn_rate@15)")
    p.add_argument("options", nargs="?", default="{}", help="fit options as JSON; 'preset' picks a preset")
    p.add_argument("--threads", type=int, default=1, help="torch/numba threads of the fit (default 1)")
    a = p.parse_args()
    import dvi_widget as dvi
    from dvi_widget.engine.metrics import stab_spearman
    opts = json.loads(a.options)
    preset = opts.pop("preset", None)
    cases = json.loads(Path(a.umap).read_text())["cases"]
    case = next(c for c in cases if Path(a.run).name.startswith(c))
    umap_nn = {e["epoch"]: e["metrics"]["nn_rate@15"] for e in cases[case]["umap"]["epochs"]}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(a.run, run, ignore=shutil.ignore_patterns("fits"))
        t = time.perf_counter()
        dvi.fit(run, preset=preset, progress=False, threads=a.threads, **opts)
        wall = time.perf_counter() - t
        high, low, secs, worst = [], [], [], float("inf")
        for e in sorted(umap_nn):
            f = run / "fits" / f"{e:06d}"
            m = json.loads((f / "metrics.json").read_text())
            i = json.loads((f / "info.json").read_text())
            z = np.load(f / "fit.npz")
            if len(z["high_step"]):
                high.append(z["high_step"])
                low.append(z["low_step"])
            ratio = m["nn_rate@15"] / umap_nn[e]
            worst = min(worst, ratio)
            secs.append(i["seconds"])
            print(f"epoch {e}: {i['seconds']:.2f} s (layout {i.get('layout_s', 0):.2f}, maps {i.get('maps_s', 0):.2f}, "
                  f"complex {i['complex_s']:.2f}, map {i['map_s']:.2f}, metrics {i['metrics_s']:.2f}) | nn_rate "
                  f"{m['nn_rate@15']:.4f} = {ratio:.3f}x umap-learn | ppr {min(m['ppr/train'], m['ppr/test']):.4f} "
                  f"map_consistency {m['map_consistency']:.4f} held-out {m['project_error_heldout/median']:.4f}/"
                  f"{m['project_error_heldout/p95']:.4f} moved {i.get('moved_for_ppr')}")
    print(f"{case} {a.options}: mean fit {np.mean(secs):.2f} s, wall {wall:.1f} s, worst nn_rate ratio {worst:.3f}, "
          f"stab_spearman {stab_spearman(high, low):.3f}, threads {a.threads}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
