"""How many torch intra-op threads a fit uses, chosen so a shared machine is not oversubscribed.

On a loaded 2-core machine, 2 intra-op threads made an optimiser step 3-80x slower than 1:
each thread waits for the others at every kernel while the cores are busy elsewhere. The rule:

1. ``threads=n`` passed to ``dvi.fit``: n.
2. The user chose already: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set, or
   ``torch.set_num_threads`` was called (torch's count differs from the one it had when dvi_widget
   was imported): keep torch's count.
3. Otherwise min(cores this process may use, 2), and 1 when the 1-minute load average already
   exceeds the core count (the cores are busy: extra threads only wait).

The count is set for the duration of the fit and restored afterwards.
"""
from __future__ import annotations

import contextlib
import os

import torch

from ..errors import DVIError

MAX_AUTO_THREADS = 2
_AT_IMPORT = torch.get_num_threads()


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
    if load1 > cores:
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


__all__ = ["choose_threads", "fit_threads", "available_cores"]
