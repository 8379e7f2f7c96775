"""Cost model: the wall time of a 1,000,000-sample x 200-epoch run on 1, 8 and 64 workers, CPU and GPU.

Issue 10 item 4. Everything it starts from is measured on this machine and committed:

- per-stage seconds of one warm epoch's fit at 10k / 30k / 100k x 128 (and 200k x 64), from each
  fit's info.json as ``benchmarks/engine.py --scaling`` stores them (results/engine-scaling.json):
  complex (kNN graph + fuzzy set + boundary complex), layout and maps (the sequential chain's
  link: the warm-started SGD layout, then the encoder/decoder fitted to it), map (decision map)
  and metrics;
- the capture of one checkpoint (``Recorder.capture`` of the demo's SmallCNN: forward pass,
  boundary samples, writes) at the same sizes, ``--measure-capture`` (results/capture.json);
- Ray's own cost per task and per megabyte moved (results/ray_overhead.json, from
  benchmarks/ray_overhead.py).

Each stage is extrapolated to N = 1,000,000 from its measured time at the largest size with the
growth exponent measured between the two largest sizes of the same dimension (clamped to [1, 2] for
stages whose work is per sample: a smaller exponent at these sizes means a fixed cost still
dominates; [0, 2] for the two whose main work is fixed, see FIXED_WORK); the kNN graph, which changes from exact to pynndescent at 50,000, takes the
exponent of the two pynndescent sizes (100k x 128 -> 200k x 64, halved D: an underestimate), and the
stages whose work does not depend on D (layout, maps, map) take theirs from the same two sizes.

The schedule: every stage but the chain's link is independent per epoch (capture, complex, map,
metrics); the links run one after another. With W workers,

    T(W) = max(E * w / W,  E * link + capture + complex + map + metrics) + cold + overhead

where w is one epoch's total work and "cold" the first epoch's extra (a fresh chain). The chain is
a floor no number of workers removes: E x link.

GPU: no GPU was lent to this session; the GPU column rests on stated assumptions (``--gpu-speedup``,
default 30x for the SGD layout, the encoder/decoder fit, map, metrics and capture on one GPU against
one worker of this 2-core machine, from Nolet et al. 2020, "Bringing UMAP Closer to the Speed of
Light with GPU Acceleration" (AAAI; cuML's UMAP, "speedups of up to 100x" over umap-learn on CPU),
taken at under a third of that; and exact kNN on the GPU, which the engine uses up to 1,000,000
points, at ``--gpu-tflops`` 20 TFLOP/s sustained for the N^2 D distance products, a third of an
H100's 67 TFLOP/s FP32 peak).

    python benchmarks/cost_model.py                       # prints the table, writes results/cost_model.md
    flock /work/bench.lock python benchmarks/cost_model.py --measure-capture   # the capture timing (timed)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STAGES = ("capture", "complex", "layout", "maps", "map", "metrics")
LINK = ("layout", "maps")                     # the sequential chain's link (engine/projection.py)
# stages whose main work does not grow with N by construction: "maps" runs a fixed number of optimiser
# steps on fixed-size batches (FitConfig.steps x batch_size), "map" decodes a fixed grid (FitConfig.grid^2);
# only their per-sample passes (the teacher, encode/decode of every sample) grow. Their measured exponent
# is kept (clamped to [0, 2]); every other stage does per-sample work, so its exponent is clamped to [1, 2].
FIXED_WORK = ("maps", "map")
# stages whose work does not depend on the feature dimension: their exponent comes from the two largest
# sizes whatever their D (100k x 128 -> 200k x 64), the closest to 1M; the others from two sizes of one D
D_FREE = ("layout", "maps", "map")


# ------------------------------------------------------------------------------------ capture timing
def measure_capture(sizes: list[int], out: Path, reps: int = 2) -> dict:
    """Time ``Recorder.capture`` of the demo's SmallCNN on the bundled MNIST digits, tiled to each size."""
    sys.path.insert(0, str(HERE.parent))
    import tempfile
    import torch
    import dvi_widget as dvi
    from dvi_widget import demo

    images, labels, split = demo.load_mnist(8000, 2000, 0)
    torch.manual_seed(0)
    model = demo.SmallCNN()
    rows = []
    for n in sizes:
        reps_n = -(-n // len(labels))
        idx = np.tile(np.arange(len(labels)), reps_n)[:n]
        x = demo.to_tensor(images[idx])
        run = Path(tempfile.mkdtemp(prefix="dvi-capture-")) / "run"
        rec = dvi.Recorder(run, inputs=x, labels=labels[idx], classes=demo.CLASSES, split=split[idx],
                           overwrite=True, progress=False)
        times = []
        for r in range(reps):
            load0 = [round(v, 2) for v in os.getloadavg()]
            t0 = time.perf_counter()
            rec.capture(model, features=model.features, head=model.fc)
            times.append({"capture_s": time.perf_counter() - t0, "load_start": load0,
                          "torch_threads": torch.get_num_threads()})
            print(f"  capture {n:,}: {times[-1]['capture_s']:.2f} s (load {load0})", flush=True)
        rec.close()
        rows.append({"n": n, "runs": times, "capture_s": float(np.median([t["capture_s"] for t in times]))})
        import shutil
        shutil.rmtree(run.parent, ignore_errors=True)
    res = {"command": "python benchmarks/cost_model.py --measure-capture --capture-sizes "
                      + ",".join(map(str, sizes)),
           "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "model": "dvi_widget.demo.SmallCNN (64-D features), bundled MNIST tiled to N", "rows": rows}
    out.write_text(json.dumps(res, indent=1))
    return res


# ------------------------------------------------------------------------------------ the model
def _exp(t0, t1, n0, n1) -> float:
    if not (t0 and t1 and t0 > 0 and t1 > 0):
        return float("nan")
    return float(np.log(t1 / t0) / np.log(n1 / n0))


def stage_table(scaling: dict, capture: dict | None) -> dict:
    """{(n, d): {stage: warm seconds}} from the scaling rows (mean of epochs 2..E) and the capture timing."""
    out = {}
    for r in scaling.get("rows", []):
        o = r.get("ours") or {}
        if o.get("error") or not o.get("epochs"):
            continue
        es = o["epochs"]
        warm, cold = es[1:] or es[:1], es[0]
        row = {}
        for s in STAGES[1:]:
            vals = [(e.get("fit_info") or {}).get(f"{s}_s") for e in warm]
            row[s] = float(np.mean([v for v in vals if v is not None])) if any(v is not None for v in vals) else None
            row[f"{s}_cold"] = (cold.get("fit_info") or {}).get(f"{s}_s")
        row["fit_warm"] = float(np.mean([e["fit_s"] for e in warm]))
        row["fit_cold"] = cold["fit_s"]
        row["commit"] = r.get("engine_commit") or r.get("commit", scaling.get("commit"))
        row["load"] = (es[0].get("load_start") or o.get("load_start") or [None])[0]
        out[(r["n"], r["d"])] = row
    if capture:
        caps = {c["n"]: c["capture_s"] for c in capture.get("rows", [])}
        for (n, d), row in out.items():
            row["capture"] = caps.get(n)
    return out


def exponents(table: dict) -> dict:
    """Per stage: the growth exponent used to extrapolate, and where it comes from."""
    dims = [d for _, d in table]
    dm = max(set(dims), key=dims.count)            # the dimension most sizes share (128)
    d128 = sorted(n for n, d in table if d == dm)
    ex = {}
    for s in STAGES:
        pts = [(n, table[(n, dm)].get(s)) for n in d128 if table[(n, dm)].get(s)]
        p, src = float("nan"), "not measured"
        top = sorted(table)[-2:]                   # the two largest sizes, whatever their D
        if s in ("complex",) + D_FREE and len(top) == 2 and top[0][0] < top[1][0] and \
                all(table[k].get(s) for k in top):
            (n0, d0), (n1, d1) = top
            p = _exp(table[top[0]][s], table[top[1]][s], n0, n1)
            src = f"{n0 // 1000}k x {d0} -> {n1 // 1000}k x {d1}" + (" (both pynndescent)" if s == "complex" else "")
        elif len(pts) >= 2:
            (n0, t0), (n1, t1) = pts[-2], pts[-1]
            p, src = _exp(t0, t1, n0, n1), f"{n0 // 1000}k -> {n1 // 1000}k x {dm}"
        raw = p
        lo = 0.0 if s in FIXED_WORK else 1.0
        p = float(np.clip(p, lo, 2.0)) if np.isfinite(p) else 1.0
        ex[s] = {"p": p, "measured": raw, "from": src}
    return ex


def extrapolate(table: dict, ex: dict, n: int, link_linear: bool = False) -> dict:
    """Each stage's warm seconds per epoch at ``n`` (D = 128) on one worker of this machine.

    Stages whose work does not depend on D start from the largest size measured, the others from the
    largest of the common D. ``link_linear``: the chain's stages grow linearly from there instead
    (the alternative reading of a measured exponent above 1 for work that is linear in the edges by
    construction: a cache effect, which stops growing once every random access misses).
    """
    dims = [d for _, d in table]
    dm = max(set(dims), key=dims.count)
    base_n = max(nn for nn, d in table if d == dm)
    base = table[(base_n, dm)]
    top = max(table)
    out = {}
    for s in STAGES:
        b_n, b = (top[0], table[top]) if s in D_FREE and table[top].get(s) else (base_n, base)
        t = b.get(s)
        p = 1.0 if (link_linear and s in LINK and ex[s]["p"] > 1) else ex[s]["p"]
        out[s] = None if t is None else t * (n / b_n) ** p
    cold_extra = (base["fit_cold"] - base["fit_warm"]) * (n / base_n)     # a fresh chain's first epoch
    out["cold_extra"] = max(cold_extra, 0.0)
    return out


def gpu_stages(cpu: dict, n: int, d: int, speedup: float, tflops: float) -> dict:
    out = {s: (None if cpu[s] is None else cpu[s] / speedup) for s in STAGES if s != "complex"}
    # exact kNN on the GPU (engine/knn.py: up to 1,000,000 points): N^2 D multiply-adds, twice for flops
    out["complex"] = 2.0 * n * n * d / (tflops * 1e12) + (cpu["complex"] or 0.0) / speedup * 0.1
    out["cold_extra"] = cpu["cold_extra"] / speedup
    return out


def transfer_mb(n: int, d: int, c: int, k: int = 15, edges_per_sample: float = 1.6) -> dict:
    """Megabytes a stage's inputs and outputs move at N samples (float32 features, int64 indices)."""
    mb = 1 / 2 ** 20
    feats = n * d * 4 * mb
    probs = n * c * 4 * mb
    knn = n * k * 8 * mb
    edges = n * k * edges_per_sample * (2 * 8 + 4) * mb
    emb = n * 2 * 4 * mb
    return {"capture": feats + probs,                        # written by capture, read by the complex task
            "complex": knn + edges,                          # the complex, handed to the chain
            "link": feats + knn + edges + emb,               # the chain reads H and the complex, returns positions
            "finish": feats + probs + knn + emb}             # map + metrics read H, probabilities, kNN, positions


def schedule(st: dict, epochs: int, workers: int, overhead_s: float, chain_transfer_s: float) -> dict:
    link = sum(st[s] or 0 for s in LINK) + chain_transfer_s
    indep = sum(st[s] or 0 for s in STAGES if s not in LINK)
    w = link + indep
    parallel = epochs * w / workers
    floor = epochs * link + indep
    total = max(parallel, floor) + st["cold_extra"] + epochs * overhead_s / workers
    bound = "the chain (E x link)" if floor >= parallel else "total work / workers"
    return {"hours": total / 3600, "bound": bound, "chain_floor_h": epochs * link / 3600,
            "work_h": epochs * w / 3600}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure-capture", action="store_true", help="time Recorder.capture (run under the bench lock)")
    ap.add_argument("--capture-sizes", default="10000,30000,100000")
    ap.add_argument("--scaling", default=str(RESULTS / "engine-scaling.json"))
    ap.add_argument("--capture", default=str(RESULTS / "capture.json"))
    ap.add_argument("--ray", default=str(RESULTS / "ray_overhead.json"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--workers", default="1,8,64")
    ap.add_argument("--gpu-speedup", type=float, default=30.0)
    ap.add_argument("--gpu-tflops", type=float, default=20.0)
    ap.add_argument("--out", default=str(RESULTS / "cost_model.md"))
    opts = ap.parse_args(argv)

    if opts.measure_capture:
        measure_capture([int(s) for s in opts.capture_sizes.split(",")], Path(opts.capture))
        return 0

    scaling = json.loads(Path(opts.scaling).read_text())
    capture = json.loads(Path(opts.capture).read_text()) if Path(opts.capture).exists() else None
    ray = json.loads(Path(opts.ray).read_text()) if Path(opts.ray).exists() else {}
    table = stage_table(scaling, capture)
    ex = exponents(table)
    cpu = extrapolate(table, ex, opts.n)
    gpu = gpu_stages(cpu, opts.n, opts.dim, opts.gpu_speedup, opts.gpu_tflops)
    cpu_lin = extrapolate(table, ex, opts.n, link_linear=True)
    gpu_lin = gpu_stages(cpu_lin, opts.n, opts.dim, opts.gpu_speedup, opts.gpu_tflops)
    mb = transfer_mb(opts.n, opts.dim, opts.classes)
    rtt_ms = (ray.get("noop_task_round_trip_ms") or {}).get("median", float("nan"))
    tr = ray.get("transfer") or {}
    big = max(tr, key=lambda k: float(k.split()[0])) if tr else None
    ms_per_mb_task = tr[big]["task_arg_and_result_ms"] / float(big.split()[0]) if big else float("nan")
    ms_per_mb_put = tr[big]["put_get_ms"] / float(big.split()[0]) if big else float("nan")
    tasks_per_epoch = 4                                            # capture, complex, link, map + metrics
    overhead_s = tasks_per_epoch * rtt_ms / 1000 + (mb["capture"] + mb["complex"] + mb["finish"]) * ms_per_mb_task / 1000
    chain_transfer_s = mb["link"] * ms_per_mb_task / 1000

    L = [f"Cost model of a {opts.n:,}-sample x {opts.epochs}-epoch run (D = {opts.dim}, {opts.classes} classes), "
         f"`python benchmarks/cost_model.py` on {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
         "Measured warm seconds per epoch (one process of this 2-core machine; the last row names the engine commit "
         "and the 1-minute load of each size's run):", "",
         "| stage | " + " | ".join(f"{n // 1000}k x {d}" for n, d in sorted(table)) + " | exponent used (measured; from) | "
         f"{opts.n // 1000}k, CPU worker | {opts.n // 1000}k, GPU worker (assumed) |",
         "|---|" + "---:|" * (len(table) + 3)]
    for s in STAGES:
        e = ex[s]
        L.append(f"| {s}{' (chain link)' if s in LINK else ''} | " + " | ".join(
            "—" if table[k].get(s) is None else f"{table[k][s]:.2f}" for k in sorted(table))
            + f" | {e['p']:.2f} ({e['measured']:.2f}; {e['from']}) | "
              f"{'—' if cpu[s] is None else f'{cpu[s]:.0f} s'} | {'—' if gpu[s] is None else f'{gpu[s]:.1f} s'} |")
    L.append("| commit, load 1-min | " + " | ".join(f"{table[k]['commit']}, {table[k]['load']}" for k in sorted(table))
             + " | | | |")
    L += ["", f"Ray (results/ray_overhead.json, Ray {ray.get('ray')}, {ray.get('cpus')} CPUs, load at end "
          f"{[round(x, 2) for x in ray.get('load_avg_at_end') or []]}): no-op task round trip {rtt_ms:.1f} ms (median); moving a task's argument and "
          f"result {ms_per_mb_task:.1f} ms/MB and `ray.put`+`get` {ms_per_mb_put:.2f} ms/MB (both at {big}). "
          f"At {opts.n:,} samples a stage moves: capture {mb['capture']:.0f} MB (features + probabilities), complex "
          f"{mb['complex']:.0f} MB (kNN + edges, ~1.6 k edges a sample listed both ways), the chain's link "
          f"{mb['link']:.0f} MB in, map + metrics {mb['finish']:.0f} MB: {overhead_s:.1f} s of Ray overhead per epoch "
          f"off the chain, and {chain_transfer_s:.1f} s on it (the link's inputs).", "",
          "| workers | CPU: wall time (link linear) | CPU: bound by | GPU: wall time (link linear) | GPU: bound by |", "|---:|---:|---|---:|---|"]
    rows = []
    for w in [int(x) for x in opts.workers.split(",")]:
        oh, ct = (overhead_s, chain_transfer_s) if w > 1 else (0.0, 0.0)
        c, g = schedule(cpu, opts.epochs, w, oh, ct), schedule(gpu, opts.epochs, w, oh, ct)
        cl, gl = schedule(cpu_lin, opts.epochs, w, oh, ct), schedule(gpu_lin, opts.epochs, w, oh, ct)
        rows.append({"workers": w, "cpu": c, "gpu": g, "cpu_link_linear": cl, "gpu_link_linear": gl})
        L.append(f"| {w} | {c['hours']:.1f} h ({cl['hours']:.1f} h) | {c['bound']} | {g['hours']:.2f} h "
                 f"({gl['hours']:.2f} h) | {g['bound']} |")
    c1, g1 = rows[0]["cpu"], rows[0]["gpu"]
    L += ["", f"Chain floor (E x link, no worker count removes it): CPU {c1['chain_floor_h']:.1f} h, GPU "
          f"{g1['chain_floor_h']:.2f} h; total work: CPU {c1['work_h']:.1f} h, GPU {g1['work_h']:.2f} h. "
          f"Workers = 1 is the local executor (no Ray overhead). GPU: {opts.gpu_speedup:.0f}x on every stage but the "
          f"kNN (assumption, see the script's docstring), exact kNN at {opts.gpu_tflops:.0f} TFLOP/s. In brackets: "
          f"the chain's stages grown linearly from the largest size instead of with their measured exponent "
          f"(layout {ex['layout']['measured']:.2f}): its work is linear in the edges by construction, and a "
          f"measured exponent above 1 there reads as the random gathers and scatters outgrowing the CPU's "
          f"caches, which stops growing once every access misses; the truth at 1M lies between the two."]
    md = "\n".join(L) + "\n"
    print(md)
    Path(opts.out).write_text(md)
    Path(opts.out).with_suffix(".json").write_text(json.dumps(
        {"table": {f"{n}x{d}": v for (n, d), v in table.items()}, "exponents": ex, "cpu_1m": cpu, "gpu_1m": gpu,
         "transfer_mb": mb, "overhead_s_per_epoch": overhead_s, "chain_transfer_s": chain_transfer_s, "rows": rows,
         "assumptions": {"gpu_speedup": opts.gpu_speedup, "gpu_tflops": opts.gpu_tflops}}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
