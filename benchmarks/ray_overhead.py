"""Ray's own cost on this machine: per-task scheduling and object transfer.

These figures ground the cost model in benchmarks/README.md ("Beyond one machine"): a stage
shipped to a Ray worker pays the scheduling round trip once and moves its inputs and outputs
through the object store.

    python benchmarks/ray_overhead.py [--cpus 2] [--out benchmarks/results/ray_overhead.json]

Measures, on a local cluster started here:
- round trip of one no-op task (submit, run, get), median over many;
- throughput of many no-op tasks submitted at once (tasks/s);
- ray.put + ray.get of float32 arrays of 1, 10 and 100 MB (object store copy, same node);
- a task that takes such an array and returns one of the same size (argument + result transfer).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ray_overhead.json"))
    args = ap.parse_args()
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0

    @ray.remote
    def noop():
        return None

    @ray.remote
    def echo(a):
        return a.copy()

    ray.get([noop.remote() for _ in range(20)])  # warm the worker pool
    rtt = []
    for _ in range(200):
        s = time.perf_counter()
        ray.get(noop.remote())
        rtt.append(time.perf_counter() - s)
    n = 2000
    s = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    burst = time.perf_counter() - s

    transfer = {}
    for mb in (1, 10, 100):
        a = np.random.default_rng(0).random(mb * 262_144, dtype=np.float32)
        put_get, task = [], []
        for _ in range(5 if mb < 100 else 3):
            s = time.perf_counter()
            ref = ray.put(a)
            ray.get(ref)
            put_get.append(time.perf_counter() - s)
            s = time.perf_counter()
            ray.get(echo.remote(ref))
            task.append(time.perf_counter() - s)
            del ref
        transfer[f"{mb} MB"] = {"put_get_ms": 1e3 * statistics.median(put_get),
                                "task_arg_and_result_ms": 1e3 * statistics.median(task)}
    ray.shutdown()
    res = {
        "ray": ray.__version__, "cpus": args.cpus, "python": platform.python_version(),
        "load_avg_at_end": os.getloadavg(),
        "cluster_start_s": startup,
        "noop_task_round_trip_ms": {"median": 1e3 * statistics.median(rtt),
                                    "p95": 1e3 * sorted(rtt)[int(0.95 * len(rtt))]},
        "noop_tasks_per_s": n / burst,
        "transfer": transfer,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
