"""Where a fit's stages run: in this process, one epoch after another, or as tasks on a Ray cluster.

A fit has three stages per epoch (see :mod:`dvi_widget.engine.fitting`):

- ``prepare_epoch``: load the capture, build the kNN graph and the complex. Independent per epoch.
- ``project_epoch``: the projection, warm-started from the previous epoch's. The one sequential
  chain: each link needs the previous link.
- ``finish_epoch``: decision map, metrics, and the atomic write of the fit folder. Independent per
  epoch once its link exists.

:class:`LocalExecutor` (``executor="local"``, the default) runs them in turn in this process,
reading each previous fit back from disk. :class:`RayExecutor` (``executor="ray"``) submits every
stage as a Ray task: the prepares of many epochs run at once, each link of the chain starts as soon
as its epoch is prepared and the previous link exists (fed from the previous link in the object
store, :func:`~dvi_widget.engine.fitting.previous_of`, not from disk), and the finishes run beside
the chain. Both write through ``finish_epoch``'s atomic folder write, so a run fitted on Ray holds
the same files as one fitted locally (same device and thread count; timings in ``info.json`` aside).

The driver (the process calling ``dvi.fit``) holds the run's writer lock for the whole fit; Ray
workers write fit folders under it, which needs the run directory on storage every worker reaches
(one machine, or a shared file system). A worker killed mid-task is retried by Ray (``max_retries``);
a driver killed mid-fit leaves every finished epoch in place and the next ``dvi.fit`` resumes.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..cluster import RayCluster, get, resolve_ray
from ..progress import Progress


class LocalExecutor:
    """Every stage in this process, one epoch after another (the default, ``executor="local"``)."""

    name = "local"

    def check_reachable(self, *paths) -> None:
        """Every path this process reaches will do."""

    def check_device(self, device: str) -> Any:
        from .fitting import resolve_device
        return resolve_device(device)

    def fit_epochs(self, run, todo: list[int], recorded: list[int], cfg, device, progress: bool,
                   threads: int | None) -> None:
        from ..progress import track
        from .fitting import fit_epoch
        from .threads import fit_threads
        with fit_threads(threads):
            for e in track(todo, "fitting epochs", unit="epoch", enabled=progress and len(todo) > 1):
                pos = recorded.index(e)
                fit_epoch(run, e, recorded[pos - 1] if pos else None, cfg, device, progress)


@dataclass
class RayExecutor(RayCluster):
    """Fit on Ray (``executor="ray"``); every option is :class:`dvi_widget.cluster.RayCluster`'s."""

    # ---- the fit --------------------------------------------------------------
    def fit_epochs(self, run, todo: list[int], recorded: list[int], cfg, device: str, progress: bool,
                   threads: int | None) -> None:
        """Fit ``todo`` (consecutive recorded epochs) on the cluster; returns when every fit folder is written."""
        ray = self.connect()
        opts = self.task_options(ray, device, threads)
        window = self._window(ray, opts)
        path = self.task_path(run.path)
        prepare = ray.remote(_prepare_task).options(num_returns=2, **opts)
        project = ray.remote(_project_task).options(num_returns=2, **opts)
        finish = ray.remote(_finish_task).options(**opts)
        pos = recorded.index(todo[0])
        disk_prev = recorded[pos - 1] if pos else None    # the fit before the first to do, read from disk
        prev_inp = prev_link = None
        pending: dict = {}                                # finish ref -> epoch
        with Progress(len(todo), "fitting epochs (ray)", unit="epoch", enabled=progress and len(todo) > 1) as bar:
            try:
                for e in todo:
                    while len(pending) >= window:
                        _collect(ray, pending, bar, block=True)
                    inp, prep_s = prepare.remote(path, e, cfg, device, opts["num_cpus"])
                    link, link_s = project.remote(path, inp, prev_inp, prev_link, disk_prev, cfg, device,
                                                  opts["num_cpus"])
                    pending[finish.remote(path, inp, link, cfg, device, opts["num_cpus"], prep_s, link_s)] = e
                    prev_inp, prev_link, disk_prev = inp, link, None
                    _collect(ray, pending, bar, block=False)
                while pending:
                    _collect(ray, pending, bar, block=True)
            except BaseException:
                # nothing may write into the run after its writer lock is released: stop and wait
                refs = list(pending)
                for r in refs:
                    ray.cancel(r, force=True)
                if refs:
                    ray.wait(refs, num_returns=len(refs), timeout=60)
                raise


def _collect(ray, pending: dict, bar: Progress, block: bool) -> None:
    """Take finished fits off ``pending``, raising a failed task's error (its DVIError unwrapped)."""
    done, _ = ray.wait(list(pending), num_returns=1 if block else len(pending), timeout=None if block else 0)
    for ref in done:
        pending.pop(ref)
        get(ray, ref)
        bar.update(1)


# ---- the tasks (module-level functions: Ray ships them by reference) --------------------------
def to_device(obj, device):
    """``obj`` with every tensor and module in it (through dataclasses) on ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, torch.nn.Module):
        return obj.to(device)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: to_device(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def _in_task(threads: float, device: str) -> torch.device:
    """Set this worker's torch threads to the task's CPUs; resolve the device Ray gave it."""
    from .fitting import resolve_device
    torch.set_num_threads(max(1, int(threads)))
    return resolve_device(device)


def _prepare_task(path, epoch: int, cfg, device: str, threads: float):
    """-> (EpochInput on the CPU, seconds)."""
    from ..store.rundir import RunDir
    from .fitting import prepare_epoch
    t = time.perf_counter()
    dev = _in_task(threads, device)
    return to_device(prepare_epoch(RunDir(path), epoch, cfg, dev), "cpu"), time.perf_counter() - t


def _project_task(path, inp, prev_inp, prev_link, disk_prev: int | None, cfg, device: str, threads: float):
    from ..store.rundir import RunDir
    from .fitting import load_previous, previous_of, project_epoch
    t = time.perf_counter()
    dev = _in_task(threads, device)
    if prev_link is not None:
        prev = to_device(previous_of(prev_inp, prev_link), dev)
    elif disk_prev is not None:
        prev = load_previous(RunDir(path), disk_prev, dev)
    else:
        prev = None
    link = project_epoch(to_device(inp, dev), prev, cfg, dev, progress=False)
    return to_device(link, "cpu"), time.perf_counter() - t


def _finish_task(path, inp, link, cfg, device: str, threads: float, prep_s: float = 0.0,
                 link_s: float = 0.0) -> dict:
    """Writes the fit folder (``info.json``'s seconds: this epoch's three stages); -> its metrics."""
    from ..store.rundir import RunDir
    from .fitting import finish_epoch
    dev = _in_task(threads, device)
    return finish_epoch(RunDir(path), to_device(inp, dev), to_device(link, dev), cfg, dev,
                        seconds_before=prep_s + link_s)


def resolve_executor(executor, ray_address: str | None = None):
    """The executor a fit asks for, checked before any work (see :func:`dvi_widget.cluster.resolve_ray`)."""
    if isinstance(executor, LocalExecutor):
        return executor
    ray_opts = resolve_ray(executor, ray_address)
    if ray_opts is None:
        return LocalExecutor()
    if isinstance(ray_opts, RayExecutor):
        return ray_opts
    return RayExecutor(**{f.name: getattr(ray_opts, f.name) for f in dataclasses.fields(ray_opts) if f.init})


__all__ = ["LocalExecutor", "RayExecutor", "RayCluster", "resolve_executor"]
