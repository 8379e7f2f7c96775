"""Ray, shared by recording and fitting: connecting to a cluster, what each task requests, running tasks.

Ray is an optional extra (``pip install 'dvi_widget[ray]'``), imported only when asked for.
:class:`RayCluster` holds the options of a Ray run (the cluster's address, CPUs and GPUs per
task, retries); ``Recorder.capture_checkpoints(..., executor="ray")`` runs its checkpoints through
it, and ``dvi.fit``'s :class:`dvi_widget.engine.executors.RayExecutor` (a RayCluster that also knows
the fit's stages) its epochs.

What stays with the user: starting and sizing the cluster (``ray start``, a cloud launcher,
KubeRay), credentials, installing dvi_widget and its dependencies on every node, and a run
directory every worker can reach (one machine, or a shared file system mounted at the same path).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from .errors import DVIError
from .progress import Progress

#: Executor names ``dvi.fit`` and ``Recorder.capture_checkpoints`` accept.
EXECUTORS = ("local", "ray")

RAY_MISSING = ("executor='ray' needs Ray, which is not installed here: pip install 'dvi_widget[ray]' "
               "(or pip install ray)")


def import_ray():
    """The ``ray`` module, or a DVIError saying how to install it."""
    # Ray's driver replaces builtins.print with its tqdm-safe print the first time it relays a worker's
    # error; numba then cannot compile functions that print (pynndescent's nn_descent failed in the
    # same process afterwards). Unless the user asked for it, keep print as it is.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        import ray
    except ImportError:
        raise DVIError(RAY_MISSING) from None
    return ray


@dataclass
class RayCluster:
    """Where and how Ray tasks run (``executor="ray"``, or pass an instance to set its options).

    Parameters
    ----------
    address : the cluster to connect to, as ``ray.init(address=...)`` takes it (``"auto"``,
        ``"ray://host:10001"``, ``"host:6379"``). ``None``: the ``RAY_ADDRESS`` environment variable
        when it is set, else a local cluster started on this machine (it stays up for later calls
        in this process; ``ray.shutdown()`` stops it). When Ray is already initialised in this
        process (the user called ``ray.init``), that connection is used as it is.
    cpus_per_task : CPUs each task requests; a task sets ``torch.set_num_threads`` to it, so workers
        do not oversubscribe their cores. ``None``: ``dvi.fit``'s ``threads`` when given, else 1.
    gpus_per_task : GPUs each task requests. ``None``: 1 when the cluster has GPUs and the device
        is ``"auto"`` or ``"cuda"``, else 0. A fraction (0.5) shares a GPU between tasks.
    max_retries : how often Ray reruns a task whose worker died (a stage is safe to rerun: it
        writes only through atomic renames).
    max_epochs_in_flight : epochs prepared but not yet written at any time; bounds the object
        store's memory (each prepared epoch holds its features and complex). ``None``: twice the
        number of tasks the cluster runs at once, at least 2.
    local_cpus : CPUs of a local cluster this executor starts (``None``: Ray's default, every core).
    """
    address: str | None = None
    cpus_per_task: float | None = None
    gpus_per_task: float | None = None
    max_retries: int = 3
    max_epochs_in_flight: int | None = None
    local_cpus: int | None = None
    name: str = field(default="ray", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.address is not None and not isinstance(self.address, str):
            raise DVIError(f"ray_address must be a string such as 'auto' or 'ray://host:10001', got {self.address!r}")
        for opt in ("cpus_per_task", "gpus_per_task"):
            v = getattr(self, opt)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise DVIError(f"RayExecutor {opt} must be a non-negative number or None, got {v!r}")
        if self.cpus_per_task == 0:
            raise DVIError("RayExecutor cpus_per_task must be positive (a task needs a CPU to run)")
        for opt in ("max_retries", "max_epochs_in_flight", "local_cpus"):
            v = getattr(self, opt)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if opt == "max_retries" else 1)):
                raise DVIError(f"RayExecutor {opt} must be a {'non-negative' if opt == 'max_retries' else 'positive'} "
                               f"integer{' or None' if opt != 'max_retries' else ''}, got {v!r}")

    # ---- connection and resources -------------------------------------------
    def connect(self):
        """``ray`` initialised: the user's connection, ``address``/``RAY_ADDRESS``, or a local cluster."""
        ray = import_ray()
        if ray.is_initialized():
            return ray
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=self.local_cpus, include_dashboard=False,
                         runtime_env={"env_vars": {"PYTHONPATH": package_path()}})
        except ConnectionError as e:
            raise DVIError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
        return ray

    def check_reachable(self, *paths) -> None:
        """A DVIError when a path lives only in this process (``memory://``): Ray workers cannot reach it."""
        for p in paths:
            if getattr(p, "protocol", None) == "memory":
                raise DVIError(f"{p} is in this process's memory (fsspec memory://); Ray workers run in other "
                               f"processes and cannot reach it. Put the run on storage every worker reaches "
                               f"(a local path on one machine, a shared file system, or an object store URL)")

    @staticmethod
    def task_path(p):
        """How a task gets a path: a local path made absolute (workers may start elsewhere), a URL as it is."""
        return os.path.abspath(os.fspath(p)) if isinstance(p, (str, os.PathLike)) else p

    def check_device(self, device: str) -> str:
        """The device string tasks resolve on their worker (checked here, before any work)."""
        if str(device) not in ("auto", "cpu", "cuda"):
            raise DVIError(f"with executor='ray' the fit option device must be 'auto', 'cpu' or 'cuda' (Ray gives "
                           f"each task its GPU), got {device!r}")
        return str(device)

    def task_options(self, ray, device: str, threads: int | None) -> dict:
        cpus = self.cpus_per_task if self.cpus_per_task is not None else (threads or 1)
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_task is not None:
            gpus = self.gpus_per_task if device != "cpu" else 0
        else:
            gpus = 1 if cluster_gpus > 0 and device != "cpu" else 0
        if device == "cuda" and (cluster_gpus == 0 or gpus == 0):
            raise DVIError("device='cuda' with executor='ray', but the Ray cluster has no GPU (or gpus_per_task=0); "
                           "use device='auto' or 'cpu'")
        if gpus > cluster_gpus:
            raise DVIError(f"gpus_per_task={gpus} but the Ray cluster has {cluster_gpus:g} GPU(s)")
        if cpus > ray.cluster_resources().get("CPU", 0):
            raise DVIError(f"each task asks for {cpus:g} CPUs but the Ray cluster has "
                           f"{ray.cluster_resources().get('CPU', 0):g}")
        return {"num_cpus": cpus, "num_gpus": gpus, "max_retries": self.max_retries}

    def _window(self, ray, opts: dict) -> int:
        if self.max_epochs_in_flight is not None:
            return self.max_epochs_in_flight
        res = ray.cluster_resources()
        slots = res.get("CPU", 1) / max(opts["num_cpus"], 1e-9)
        if opts["num_gpus"]:
            slots = min(slots, res.get("GPU", 0) / opts["num_gpus"])
        return max(2, int(2 * slots))

def get(ray, ref):
    """``ray.get``, with a task's DVIError raised as itself (not wrapped in Ray's traceback)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, DVIError):
            raise cause from None
        raise


def package_path() -> str:
    """PYTHONPATH for a local cluster's workers: this dvi_widget first, so they run the driver's code."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


def run_tasks(executor: RayCluster, fn: Callable, calls: list[tuple], opts: dict, desc: str, unit: str,
              progress: bool) -> list:
    """Run ``fn(*args)`` for each ``args`` in ``calls`` as Ray tasks; results in order (for capture)."""
    ray = executor.connect()
    remote = ray.remote(fn).options(**opts)
    refs = [remote.remote(*args) for args in calls]
    pending = {r: i for i, r in enumerate(refs)}
    out: list = [None] * len(refs)
    with Progress(len(refs), desc, unit=unit, enabled=progress) as bar:
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for r in done:
                    out[pending.pop(r)] = get(ray, r)
                    bar.update(1)
        except BaseException:
            for r in pending:
                ray.cancel(r, force=True)
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=60)
            raise
    return out



def resolve_ray(executor, ray_address: str | None = None) -> RayCluster | None:
    """The Ray options a call asks for, or None for the local executor (checked before any work).

    ``executor``: a name in :data:`EXECUTORS` or a :class:`RayCluster`. ``executor="ray"``
    without Ray installed raises a DVIError saying how to install it.
    """
    if isinstance(executor, RayCluster):
        if ray_address is not None:
            raise DVIError("pass either ray_address= or a RayExecutor with its address=, not both")
        import_ray()
        return executor
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise DVIError(f"executor must be one of {list(EXECUTORS)} or a dvi_widget RayExecutor, got {executor!r}")
    if executor == "local":
        if ray_address is not None:
            raise DVIError("ray_address= is only used with executor='ray'")
        return None
    import_ray()
    return RayCluster(address=ray_address)


__all__ = ["EXECUTORS", "RAY_MISSING", "RayCluster", "import_ray", "resolve_ray", "run_tasks"]
