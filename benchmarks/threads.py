"""Threads benchmark: one warm epoch's fit at 10,000 x 128 with 1 and with 2 torch intra-op threads.

The measurement behind the engine's thread policy (``dvi_widget/engine/threads.py``: min(cores, 2),
1 when the 1-minute load average exceeds the core count, an explicit user choice kept). A synthetic
features-only run (``engine.py``'s ``synthetic_run``) is recorded and fitted for 2 epochs once;
then epoch 2's fit (the warm-started one) is removed and fitted again with ``dvi.fit(run,
threads=n)``, alternating n = 1, 2, ``--reps`` times each, under each background condition:

  idle     nothing started by this script (the machine as it is: its load is recorded)
  niced    ``--busy`` busy-looping Python processes at ``nice -n 15`` (other engineers' niced work)
  normal   the same busy loops at normal priority (a user's machine that is busy with other work)

Usage::

    flock /work/bench.lock python benchmarks/threads.py            # about 6 minutes on 2 idle cores
    python benchmarks/threads.py --n 3000 --reps 1 --conditions idle   # smoke check

Writes ``--out`` (default benchmarks/results/threads.json) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BUSY = "import time\nt = time.time() + 3600\nwhile time.time() < t:\n    pass\n"


def start_busy(count: int, niceness: int) -> list[subprocess.Popen]:
    procs = []
    for _ in range(count):
        cmd = [sys.executable, "-c", BUSY]
        if niceness:
            cmd = ["nice", "-n", str(niceness)] + cmd
        procs.append(subprocess.Popen(cmd))
    time.sleep(3.0)
    return procs


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:          # only the processes this script started, by their handle
        p.terminate()
    for p in procs:
        p.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=2,
                    help="timed fits per thread count and condition (1 under the normal-priority load)")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes for the loaded conditions")
    ap.add_argument("--conditions", default="idle,niced,normal")
    ap.add_argument("--out", default=str(HERE / "results" / "threads.json"))
    opts = ap.parse_args(argv)

    import torch
    import dvi_widget as dvi
    from dvi_widget.store.rundir import RunDir
    from engine import git_commit, loadavg, synthetic_run

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, inter-op threads {torch.get_num_interop_threads()}",
          flush=True)
    run = Path(tempfile.mkdtemp(prefix="dvi-threads-")) / "run"
    labels, split, classes, epochs_iter = synthetic_run(opts.n, opts.dim, 2, 0)
    rec = dvi.Recorder(run, labels=labels, classes=classes, split=split, overwrite=True)
    for t, H, head in epochs_iter():
        rec.capture(features=H, head=head, epoch=t)
    rec.close()
    t0 = time.perf_counter()
    dvi.fit(run, progress=False, threads=1)
    print(f"setup: 2 epochs recorded and fitted in {time.perf_counter() - t0:.1f} s", flush=True)
    rd = RunDir(run)
    rows = []
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # a killed run still stops its busy loops
    for cond in opts.conditions.split(","):
        procs = [] if cond == "idle" else start_busy(opts.busy, 15 if cond == "niced" else 0)
        try:
            # one repetition under a normal-priority load: there a 2-thread fit can take minutes
            for rep in range(1 if cond == "normal" else opts.reps):
                for n_threads in (1, 2) if rep % 2 == 0 else (2, 1):
                    rd.remove_fits([2])
                    load0 = loadavg()
                    t0 = time.perf_counter()
                    dvi.fit(run, progress=False, threads=n_threads)
                    s = time.perf_counter() - t0
                    info = json.loads((rd.fit_dir(2) / "info.json").read_text())
                    rows.append({"condition": cond, "threads": n_threads, "rep": rep, "fit_s": s, "load_start": load0,
                                 "stages": {k: v for k, v in info.items() if k.endswith("_s")}})
                    print(f"  {cond:6s} threads {n_threads} rep {rep}: warm epoch fit {s:.1f} s, load {load0}",
                          flush=True)
        finally:
            stop_busy(procs)
    res = {"command": "python benchmarks/threads.py" + "".join(" " + a for a in (argv or sys.argv[1:])),
           "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
           "n": opts.n, "dim": opts.dim, "busy": opts.busy, "cpus": os.cpu_count(), "rows": rows}
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(res, indent=1))
    print()
    print(markdown(res))
    return 0


def markdown(res: dict) -> str:
    import numpy as np
    lines = ["| background | 1 thread: warm epoch s | 2 threads: warm epoch s | 2 ÷ 1 | load 1-min |",
             "|---|---:|---:|---:|---|"]
    conds = []
    for r in res["rows"]:
        if r["condition"] not in conds:
            conds.append(r["condition"])
    for c in conds:
        rs = [r for r in res["rows"] if r["condition"] == c]
        one = [r["fit_s"] for r in rs if r["threads"] == 1]
        two = [r["fit_s"] for r in rs if r["threads"] == 2]
        loads = [r["load_start"][0] for r in rs if r.get("load_start")]
        label = {"idle": "none started", "niced": f"{res['busy']} busy loops at nice 15",
                 "normal": f"{res['busy']} busy loops at normal priority"}.get(c, c)
        lines.append(f"| {label} | {' / '.join(f'{x:.1f}' for x in one)} | {' / '.join(f'{x:.1f}' for x in two)} | "
                     f"{np.median(two) / np.median(one):.2f} | {min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
