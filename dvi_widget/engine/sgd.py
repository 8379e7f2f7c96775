"""The layout's SGD passes on the CPU, compiled with numba (``layout.optimize_layout`` calls it).

Written by hand for a measured need (speed): the torch version of the same passes (kept in
``layout.py`` for CUDA, where whole-tensor kernels are the fast way) spends most of each pass in
gathers, index_add and kernel overhead; this loop does the same arithmetic in one sweep over the
edges. At 10,000 MNIST points (218k edges, 8 negatives) a pass took 23-33 ms in torch and
11-13 ms here on one thread (benchmarks/README.md, "Engine speed").

Same rules as the torch passes (see ``layout.py``): an edge is sampled every ``eps`` passes and
then draws its due negatives, every per-edge gradient is clipped to [-4, 4] per coordinate, the
updates are scaled by each point's ``rate``, and after each pass comes the anchor pull.

Determinism: the edges are split into a fixed number of contiguous chunks (``CHUNKS``, whatever
the thread count); each chunk has its own Tausworthe random stream (umap-learn's
``tau_rand_int``) and its own update buffer, and the buffers are added to the positions in
chunk order, so a fixed seed gives the same bytes on 1 or many threads.

Two update rules (``sequential``): synchronous (the torch passes' rule): every update of a pass
is computed from the positions at its start. Sequential (the CPU default): a chunk reads the
positions plus its own updates so far, so an edge sees the moves the chunk's earlier edges made,
as umap-learn's in-place SGD does (the edges are listed by head, so a point's own edges are in
one chunk). A pass then does more: on MNIST 10k, 120 sequential passes kept as many neighbours
as 250 synchronous ones. An edge's negatives are all computed from the same position and
applied together (independent, so the CPU overlaps their arithmetic; one after another they
made a pass 1.5x slower), and a negative sample is read where it was at the pass's start.

numba is imported only when a CPU layout runs (compiling takes a few seconds the first time;
``cache=True`` keeps the machine code for later processes).
"""
from __future__ import annotations

import numba
import numpy as np

CLIP = 4.0
#: edge chunks per pass: the unit of parallel work and of random streams (fixed, for determinism)
CHUNKS = 8


@numba.njit(inline="always")
def _rand(state):
    """umap-learn's ``tau_rand_int``: a three-component Tausworthe generator on an int64[3] state."""
    state[0] = (((state[0] & 4294967294) << 12) & 0xFFFFFFFF) ^ ((((state[0] << 13) & 0xFFFFFFFF) ^ state[0]) >> 19)
    state[1] = (((state[1] & 4294967288) << 4) & 0xFFFFFFFF) ^ ((((state[1] << 2) & 0xFFFFFFFF) ^ state[1]) >> 25)
    state[2] = (((state[2] & 4294967280) << 17) & 0xFFFFFFFF) ^ ((((state[2] << 3) & 0xFFFFFFFF) ^ state[2]) >> 11)
    return state[0] ^ state[1] ^ state[2]


@numba.njit(inline="always")
def _clip(v):
    if v > CLIP:
        return CLIP
    if v < -CLIP:
        return -CLIP
    return v


@numba.njit(parallel=True, nogil=True, cache=True)
def sgd_passes(pos, head, tail, eps, eps_neg, next_sample, next_neg, start, stop, n_epochs, a, b,
               neg_rate, lr, gamma, anchor, pull, rate, rng, bounds, delta, sequential):  # pragma: no cover - compiled
    """Passes ``start..stop-1`` of ``n_epochs`` over the edges, in place on ``pos`` (V, 2) float32.

    next_sample / next_neg (E,) float64 carry the sampling schedule between calls; rng (C, 3)
    int64 the chunks' random states; bounds (C + 1,) the chunks' edge ranges; delta (C, V, 2)
    float32 scratch. anchor (V, 2) / pull (V,) and rate (V,) may be empty (no pull, rate 1).
    sequential: the update rule (module docstring).
    """
    V = pos.shape[0]
    C = bounds.shape[0] - 1
    # single-precision powers: the pass's cost is mostly d^(2b) of the negative samples, and
    # float32 is what the positions hold anyway
    bf = np.float32(b)
    has_rate = rate.shape[0] > 0
    for n in range(start, stop):
        alpha = lr * (1.0 - n / n_epochs)
        for c in numba.prange(C):
            dl = delta[c]
            st = rng[c]
            for v in range(V):
                dl[v, 0] = 0.0
                dl[v, 1] = 0.0
            for e in range(bounds[c], bounds[c + 1]):
                if next_sample[e] > n:
                    continue
                i = head[e]
                j = tail[e]
                # the positions this chunk sees: the pass's start, plus (sequential) its own updates so far
                xi, yi = pos[i, 0], pos[i, 1]
                xj, yj = pos[j, 0], pos[j, 1]
                ri, rj = 1.0, 1.0
                if sequential:
                    xi += dl[i, 0]
                    yi += dl[i, 1]
                    xj += dl[j, 0]
                    yj += dl[j, 1]
                    if has_rate:
                        ri, rj = rate[i], rate[j]
                dx = xi - xj
                dy = yi - yj
                d2 = dx * dx + dy * dy
                if d2 > 0.0:
                    pb = np.float32(d2) ** bf
                    coeff = -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
                    gx = _clip(coeff * dx) * alpha
                    gy = _clip(coeff * dy) * alpha
                    dl[i, 0] += gx * ri
                    dl[i, 1] += gy * ri
                    dl[j, 0] -= gx * rj
                    dl[j, 1] -= gy * rj
                    if sequential:
                        xi += gx * ri
                        yi += gy * ri
                next_sample[e] += eps[e]
                if neg_rate > 0:
                    due = int(np.floor((n - next_neg[e]) / eps_neg[e]))
                    if due < 0:
                        due = 0
                    next_neg[e] += due * eps_neg[e]
                    # an edge's negatives all push from the same position (independent of each other, so
                    # the CPU overlaps their arithmetic), then move it together
                    sx = 0.0
                    sy = 0.0
                    for _ in range(due):
                        k = _rand(st) % V
                        # the negative sample at the pass's start (a random read of the chunk's updates too
                        # made a pass 1.8x slower at 100,000 points, out of cache; at 10,000 no better)
                        ex = xi - pos[k, 0]
                        ey = yi - pos[k, 1]
                        dn2 = ex * ex + ey * ey
                        if dn2 > 0.0:
                            cn = 2.0 * gamma * b / ((0.001 + dn2) * (a * np.float32(dn2) ** bf + 1.0))
                            sx += _clip(cn * ex)
                            sy += _clip(cn * ey)
                    dl[i, 0] += sx * alpha * ri
                    dl[i, 1] += sy * alpha * ri
        # the chunks' updates summed in a fixed order: the same result on any number of threads
        for v in numba.prange(V):
            sx = 0.0
            sy = 0.0
            for c in range(C):
                sx += delta[c, v, 0]
                sy += delta[c, v, 1]
            r = 1.0
            if has_rate and not sequential:
                r = rate[v]
            px = pos[v, 0] + sx * r
            py = pos[v, 1] + sy * r
            if pull.shape[0]:
                f = (alpha / lr) * pull[v]
                px -= f * (px - anchor[v, 0])
                py -= f * (py - anchor[v, 1])
            pos[v, 0] = px
            pos[v, 1] = py


def run_passes(pos: np.ndarray, head: np.ndarray, tail: np.ndarray, eps: np.ndarray, n_epochs: int,
               a: float, b: float, *, seeds: np.ndarray, negative_sample_rate: int, lr: float, gamma: float,
               anchor: np.ndarray | None, pull: np.ndarray | None, rate: np.ndarray | None,
               threads: int, progress=None, block: int = 10, sequential: bool = False) -> np.ndarray:
    """All ``n_epochs`` passes from ``pos`` (V, 2); returns the new float32 positions.

    seeds: (CHUNKS, 3) int64 initial Tausworthe states (each > 15). ``threads``: numba threads for
    this call (the fit's torch intra-op count; numba's OpenMP layer shares torch's runtime, so the
    caller restores torch's count). progress: updated once per pass, in blocks of ``block`` passes.
    """
    pos = np.ascontiguousarray(pos, np.float32).copy()
    E = len(head)
    eps = np.ascontiguousarray(eps, np.float64)
    eps_neg = eps / max(negative_sample_rate, 1)
    next_sample, next_neg = eps.copy(), eps_neg.copy()
    bounds = np.linspace(0, E, CHUNKS + 1).round().astype(np.int64)
    delta = np.zeros((CHUNKS, len(pos), 2), np.float32)
    rng = np.ascontiguousarray(seeds, np.int64).copy()
    none2, none1 = np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    anchor = none2 if anchor is None else np.ascontiguousarray(anchor, np.float32)
    pull = none1 if pull is None else np.ascontiguousarray(pull, np.float32)
    rate = none1 if rate is None else np.ascontiguousarray(rate, np.float32)
    head = np.ascontiguousarray(head, np.int64)
    tail = np.ascontiguousarray(tail, np.int64)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    for s in range(0, n_epochs, block):
        e = min(n_epochs, s + block)
        sgd_passes(pos, head, tail, eps, eps_neg, next_sample, next_neg, s, e, n_epochs, float(a), float(b),
                   int(negative_sample_rate), float(lr), float(gamma), anchor, pull, rate, rng, bounds, delta,
                   bool(sequential))
        if progress is not None:
            progress.update(e - s)
    return pos


__all__ = ["run_passes", "sgd_passes", "CHUNKS"]
