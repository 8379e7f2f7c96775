"""How many torch intra-op threads a fit uses, chosen so a shared machine is not oversubscribed.

On a loaded 2-core machine, 2 intra-op threads made an optimiser step 3-80x slower than 1:
each thread waits for the others at every kernel while the cores are busy elsewhere. The rule:

1. ``threads=n`` passed to ``dvi.fit``: n.
2. The user chose already: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set, or
   ``torch.set_num_threads`` was called (torch's count differs from the one it had when dvi_widget
   was imported): keep torch's count.
3. Otherwise min(cores this process may use, 2), and 1 when the 1-minute load average, less this
   process's own recent use of the cores (:func:`own_load`), already exceeds the core count (the
   cores are busy elsewhere: extra threads only wait). Without that subtraction a run fitted after
   each epoch counted its own previous epoch (or the user's training loop in the same kernel) as
   someone else's load: the 200,000-point scaling run's third epoch fell to 1 thread on an otherwise
   idle 2-core machine.

The count is set for the duration of the fit and restored afterwards.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections import deque

import torch

from ..errors import DVIError

MAX_AUTO_THREADS = 2
_AT_IMPORT = torch.get_num_threads()
#: the span the 1-minute load average mostly reflects, in seconds
LOAD_SPAN = 60.0


def _cpu_seconds() -> float:
    """CPU seconds this process has used, all threads."""
    t = os.times()
    return t.user + t.system


#: (monotonic wall seconds, process CPU seconds), taken at import and at every thread choice
_SAMPLES: deque = deque([(time.monotonic(), _cpu_seconds())], maxlen=256)


def own_load() -> float:
    """Cores this process kept busy on average over about the last minute (0 when unknown).

    Measured between now and the earlier sample (import, or an earlier thread choice) nearest to
    :data:`LOAD_SPAN` seconds ago, at least 5 s back. The 1-minute load average includes this work
    (approximately: the kernel's average decays exponentially), so it is subtracted before deciding
    that the machine is busy.
    """
    wall, cpu = time.monotonic(), _cpu_seconds()
    past = [s for s in _SAMPLES if wall - s[0] >= 5.0]
    _SAMPLES.append((wall, cpu))
    if not past:
        return 0.0
    w0, c0 = min(past, key=lambda s: abs(wall - s[0] - LOAD_SPAN))
    return max(0.0, (cpu - c0) / (wall - w0))


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(threads: int | None = None) -> int:
    """The intra-op thread count for a fit (see the module docstring for the rule)."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise DVIError(f"threads must be a positive integer or None, got {threads!r}")
        return threads
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS") or \
            torch.get_num_threads() != _AT_IMPORT:
        return torch.get_num_threads()
    cores = available_cores()
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        load1 = 0.0
    if load1 - own_load() > cores:
        return 1
    return max(1, min(cores, MAX_AUTO_THREADS))


@contextlib.contextmanager
def fit_threads(threads: int | None = None):
    """Set torch's intra-op threads for a block, then restore the previous count."""
    n = choose_threads(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


__all__ = ["choose_threads", "fit_threads", "available_cores", "own_load"]
