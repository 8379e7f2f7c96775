"""The layout's SGD passes on the CPU, compiled with numba (``layout.optimize_layout`` calls it).

Written by hand for a measured need (speed): the torch version of the same passes (kept in
``layout.py`` for CUDA, where whole-tensor kernels are the fast way) spends most of each pass in
gathers, index_add and kernel overhead; this loop does the same arithmetic in one sweep over the
edges (benchmarks/README.md, "Engine speed"; ``benchmarks/sgd_pass.py`` times one pass).

Same rules as the torch passes (see ``layout.py``): an edge is sampled every ``eps`` passes and
then draws its due negatives, every per-edge gradient is clipped to [-4, 4] per coordinate, the
updates are scaled by each point's ``rate``, and after each pass comes the anchor pull.

Where the time goes, and what is done about it (measured with benchmarks/sgd_pass.py):

- The negative samples (8 per edge sample, ~80% of a pass): an edge's negatives are computed
  together, 8 lanes at once (``_negatives``: SIMD code, one gather of the 8 positions). That needs
  three things the scalar loop did not have: a counter-based random draw (``_mix32``, murmur3's
  32-bit finaliser of the pass, the edge and the lane: no state carried from draw to draw, so the
  lanes are independent; a uniform index is ``(h * V) >> 32``, not a 64-bit modulo), a power
  ``d^(2b)`` without a libm call (``_pow``: exponent and mantissa from the float's bits, an atanh
  series and a polynomial; relative error below 1.5e-6 max(1, b) over d^2 in [1e-6, 1e6], where
  float32's powf has 6e-8: far below the noise of the sampling), and float32 arithmetic (the 8
  lanes fill one AVX2 register). One pass went 152 -> 63 ms at 100,000 points, 370 -> 154 ms at
  200,000 (1 thread; benchmarks/README.md).
- Random reads: the vertices are renumbered for locality before the passes (``locality_order``:
  Z-order of the start positions) and the result is put back in the caller's order, so an
  edge's two ends and a chunk's updates are close in memory; the edges are regrouped by their new
  head (``_renumber_edges``, a counting sort).

Determinism: the edges are split into a fixed number of contiguous chunks (``CHUNKS``, whatever
the thread count); each chunk has its own update buffer, and the buffers are added to the
positions in chunk order; the random draws depend on the seed, the pass, the edge and the lane
only. So a fixed seed gives the same bytes on 1 or many threads.

Two update rules (``sequential``): synchronous (the torch passes' rule): every update of a pass
is computed from the positions at its start. Sequential (the CPU default): a chunk reads the
positions plus its own updates so far, so an edge sees the moves the chunk's earlier edges made,
as umap-learn's in-place SGD does (the edges are listed by head, so a point's own edges are in
one chunk). A pass then does more: on MNIST 10k, 120 sequential passes kept as many neighbours
as 250 synchronous ones. An edge's negatives are all computed from the same position and
applied together, and a negative sample is read where it was at the pass's start (a random
read of the chunk's updates too made a pass 1.8x slower at 100,000 points, out of cache).

numba is imported only when a CPU layout runs (compiling takes a few seconds the first time;
``cache=True`` keeps the machine code for later processes).
"""
from __future__ import annotations

import numba
import numpy as np

CLIP = 4.0
#: edge chunks per pass: the unit of parallel work and of update buffers (fixed, for determinism)
CHUNKS = 8
#: negative samples computed together (one SIMD block; an edge's due negatives run in blocks of LANES)
LANES = 8
_M32 = 0xFFFFFFFF
_LN2 = 0.6931471805599453
#: fast-math flags of the SIMD block: reassociation lets its 8-lane sums vectorise (the order is
#: fixed by the compiled code, so the bytes stay the same on any thread count); no nnan/ninf
_FASTMATH = {"reassoc", "nsz", "contract"}


@numba.njit(inline="always")
def _mix32(x):
    """murmur3's 32-bit finaliser on an int64 holding 32 bits: a bijection whose bits all depend on all of x's."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _M32
    x ^= x >> 16
    return x


@numba.njit(inline="always", error_model="numpy")
def _pow(x, b):
    """``x ** b`` for float32 x > 0 and b, in float32 without a libm call (so a loop of them vectorises).

    log2(x) = exponent + log2(mantissa), the mantissa's log from 2 atanh((m-1)/(m+1)) (m in
    [0.707, 1.414], five terms); 2^y = 2^round(y) (built in the exponent bits) times a degree-7
    polynomial of e^(f ln 2), |f| <= 0.5. Relative error below 1.5e-6 max(1, b) for x in
    [1e-6, 1e6] (measured: 1.3e-6 at UMAP's usual b = 0.895, 7e-7 for x in [1e-3, 1e3]; it grows
    with |b log2 x|, the float32 rounding of y); the result is clamped to [2^-126, 2^126]. A subnormal x gives a
    wrong but tiny result, where the force does not depend on it (a d^2b + 1 = 1).
    """
    bits = np.float32(x).view(np.int32)
    e = (bits >> 23) - 127
    m = np.int32((bits & 0x007FFFFF) | 0x3F800000).view(np.float32)
    if m > np.float32(1.4142135):
        m = m * np.float32(0.5)
        e = e + 1
    t = (m - np.float32(1.0)) / (m + np.float32(1.0))
    t2 = t * t
    s = np.float32(1.0) + t2 * (np.float32(1 / 3) + t2 * (np.float32(1 / 5) + t2 * (np.float32(1 / 7)
                                                                                    + t2 * np.float32(1 / 9))))
    y = b * (np.float32(e) + t * s * np.float32(2 / _LN2))
    y = min(max(y, np.float32(-126.0)), np.float32(126.0))
    n = np.floor(y + np.float32(0.5))
    f = (y - n) * np.float32(_LN2)
    p = np.float32(1.0) + f * (np.float32(1.0) + f * (np.float32(1 / 2) + f * (np.float32(1 / 6) + f * (
        np.float32(1 / 24) + f * (np.float32(1 / 120) + f * (np.float32(1 / 720) + f * np.float32(1 / 5040)))))))
    return p * np.int32((np.int32(n) + 127) << 23).view(np.float32)


@numba.njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _negatives(xi, yi, pos, key, m, af, bf, c2):  # pragma: no cover - compiled
    """The summed, clipped repulsion on (xi, yi) from ``m`` <= LANES uniform draws (SIMD, float32).

    Draw t of the block is vertex ``(_mix32(key + t * odd) * V) >> 32``: uniform on [0, V). Lanes
    t >= m count 0. Each force is umap-learn's ``2 gamma b / ((0.001 + d^2)(1 + a d^2b)) (y_i - y_k)``
    (``c2`` = 2 gamma b), 0 where d = 0, clipped to [-4, 4] per coordinate.
    """
    V = pos.shape[0]
    zero = np.float32(0.0)
    lim = np.float32(CLIP)
    sx = zero
    sy = zero
    for t in range(LANES):
        k = (_mix32((key + t * 0x7FEB352D) & _M32) * V) >> 32
        ex = xi - pos[k, 0]
        ey = yi - pos[k, 1]
        dn2 = ex * ex + ey * ey
        cn = c2 / ((np.float32(0.001) + dn2) * (af * _pow(dn2, bf) + np.float32(1.0)))
        cn = cn if dn2 > zero else zero
        cn = cn if t < m else zero
        sx += min(max(cn * ex, -lim), lim)
        sy += min(max(cn * ey, -lim), lim)
    return sx, sy


@numba.njit(inline="always")
def _clip(v):
    if v > CLIP:
        return CLIP
    if v < -CLIP:
        return -CLIP
    return v


@numba.njit(parallel=True, nogil=True, cache=True)
def sgd_passes(pos, head, tail, eps, next_sample, next_neg, start, stop, n_epochs, a, b,
               neg_rate, lr, gamma, anchor, pull, rate, seed, bounds, delta, sequential):  # pragma: no cover - compiled
    """Passes ``start..stop-1`` of ``n_epochs`` over the edges, in place on ``pos`` (V, 2) float32.

    head / tail (E,) int32, eps (E,) float32 (passes between two samples of an edge);
    next_sample / next_neg (E,) float32 carry the sampling schedule between calls; seed (2,)
    int64 (32 bits each) keys the random draws; bounds (C + 1,) the chunks' edge ranges; delta
    (C, V, 2) float32 scratch. anchor (V, 2) / pull (V,) and rate (V,) may be empty (no pull,
    rate 1). sequential: the update rule (module docstring).
    """
    V = pos.shape[0]
    C = bounds.shape[0] - 1
    # single-precision powers: the pass's cost is mostly d^(2b) of the negative samples, and
    # float32 is what the positions hold anyway
    bf = np.float32(b)
    af = np.float32(a)
    c2 = np.float32(2.0 * gamma * b)
    has_rate = rate.shape[0] > 0
    for n in range(start, stop):
        alpha = lr * (1.0 - n / n_epochs)
        # the pass's key: every draw of the pass hashes it with its edge and lane
        pass_key = _mix32((seed[1] + n * 0x9E3779B9) & _M32)
        for c in numba.prange(C):
            dl = delta[c]
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
                    eps_neg = eps[e] / neg_rate
                    due = int(np.floor((n - next_neg[e]) / eps_neg))
                    if due < 0:
                        due = 0
                    next_neg[e] += due * eps_neg
                    # an edge's negatives all push from the same position, a block of LANES at a time,
                    # then move it together; each draw is read where it was at the pass's start
                    key = _mix32(((e ^ seed[0]) + pass_key) & _M32)
                    sx = 0.0
                    sy = 0.0
                    for t0 in range(0, due, LANES):
                        fx, fy = _negatives(np.float32(xi), np.float32(yi), pos, (key + t0 * 0x2545F491) & _M32,
                                            due - t0, af, bf, c2)
                        sx += fx
                        sy += fy
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


def locality_order(pos: np.ndarray, bits: int = 16) -> np.ndarray:
    """A vertex order in which points close in 2-D are mostly close in the order: Z-order (Morton).

    Each coordinate is scaled to ``bits``-bit integers over the points' bounding box and the bits
    interleaved; sorting by that key walks the plane in nested quadrants. The layout's edges join
    points that end up close in 2-D, and mostly start so (PCA or the previous epoch), so in this
    order an edge's two ends, and the vertices a chunk of edges updates, sit near each other in
    memory. Measured against Hilbert order and reverse Cuthill-McKee on the graph (100,000 points):
    the median |head - tail| became 873 (Morton), 787 (Hilbert), 973 (RCM) from 29,328, the pass
    times within noise of each other; Morton is the cheapest to compute (11 ms, Hilbert 42, RCM 730).
    Returns ``order`` (V,): new vertex r is old vertex ``order[r]``.
    """
    p = np.asarray(pos, np.float64)
    if len(p) == 0:
        return np.zeros(0, np.int64)
    p = np.nan_to_num(p - p.min(0), nan=0.0, posinf=0.0, neginf=0.0)
    scale = (2 ** bits - 1) / max(float(p.max()), 1e-30)
    q = np.clip(p * scale, 0, 2 ** bits - 1).astype(np.uint64)

    def spread(x):            # the bits of x moved to the even positions
        x = x & np.uint64(0xFFFF)
        x = (x | (x << np.uint64(8))) & np.uint64(0x00FF00FF)
        x = (x | (x << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        x = (x | (x << np.uint64(2))) & np.uint64(0x33333333)
        x = (x | (x << np.uint64(1))) & np.uint64(0x55555555)
        return x
    return np.argsort(spread(q[:, 0]) | (spread(q[:, 1]) << np.uint64(1)), kind="stable").astype(np.int64)


@numba.njit(cache=True)
def _renumber_edges(head, tail, eps, new_id):  # pragma: no cover - compiled
    """The edges in new vertex numbers, listed by new head (a stable counting sort, one sweep)."""
    V = new_id.shape[0]
    E = head.shape[0]
    start = np.zeros(V + 1, np.int64)
    for e in range(E):
        start[new_id[head[e]] + 1] += 1
    for v in range(V):
        start[v + 1] += start[v]
    h = np.empty(E, np.int32)
    t = np.empty(E, np.int32)
    ep = np.empty(E, np.float32)
    for e in range(E):
        r = new_id[head[e]]
        p = start[r]
        start[r] = p + 1
        h[p] = r
        t[p] = new_id[tail[e]]
        ep[p] = eps[e]
    return h, t, ep


def run_passes(pos: np.ndarray, head: np.ndarray, tail: np.ndarray, eps: np.ndarray, n_epochs: int,
               a: float, b: float, *, seed: int, negative_sample_rate: int, lr: float, gamma: float,
               anchor: np.ndarray | None, pull: np.ndarray | None, rate: np.ndarray | None,
               threads: int, progress=None, block: int = 10, sequential: bool = False,
               renumber: bool = True) -> np.ndarray:
    """All ``n_epochs`` passes from ``pos`` (V, 2); returns the new float32 positions, in the caller's order.

    seed: a 64-bit integer that keys every random draw. ``threads``: numba threads for this call
    (the fit's torch intra-op count; numba's OpenMP layer shares torch's runtime, so the caller
    restores torch's count). progress: updated once per pass, in blocks of ``block`` passes.
    renumber: run the passes on the vertices in ``locality_order`` (the result is put back in
    the caller's order either way; False only to measure what it buys).
    """
    pos = np.ascontiguousarray(pos, np.float32)
    V, E = len(pos), len(head)
    if V >= 2 ** 31:
        raise ValueError(f"{V:,} vertices: the compiled passes number them with int32")
    head = np.asarray(head, np.int64)
    tail = np.asarray(tail, np.int64)
    eps = np.asarray(eps, np.float32)
    if renumber and V > 1:
        order = locality_order(pos)
        new_id = np.empty(V, np.int64)
        new_id[order] = np.arange(V)
        head, tail, eps = _renumber_edges(head, tail, eps, new_id)
        pos = pos[order]
        anchor = None if anchor is None else np.asarray(anchor)[order]
        pull = None if pull is None else np.asarray(pull)[order]
        rate = None if rate is None else np.asarray(rate)[order]
    else:
        order = None
        pos = pos.copy()
    # the per-edge arrays in 4 bytes: a pass streams them all (at 200,000 points 4.2M edges), and a
    # fresh large array costs its page faults once per call (about 10 ms per MB on this machine)
    eps = np.ascontiguousarray(eps, np.float32)
    next_sample = eps.copy()
    next_neg = eps / np.float32(max(negative_sample_rate, 1))
    bounds = np.linspace(0, E, CHUNKS + 1).round().astype(np.int64)
    delta = np.zeros((CHUNKS, V, 2), np.float32)
    seed = int(seed) & ((1 << 64) - 1)
    seeds = np.array([seed & 0xFFFFFFFF, seed >> 32], np.int64)
    none2, none1 = np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    anchor = none2 if anchor is None else np.ascontiguousarray(anchor, np.float32)
    pull = none1 if pull is None else np.ascontiguousarray(pull, np.float32)
    rate = none1 if rate is None else np.ascontiguousarray(rate, np.float32)
    head = np.ascontiguousarray(head, np.int32)
    tail = np.ascontiguousarray(tail, np.int32)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    for s in range(0, n_epochs, block):
        e = min(n_epochs, s + block)
        sgd_passes(pos, head, tail, eps, next_sample, next_neg, s, e, n_epochs, float(a), float(b),
                   int(negative_sample_rate), float(lr), float(gamma), anchor, pull, rate, seeds, bounds, delta,
                   bool(sequential))
        if progress is not None:
            progress.update(e - s)
    if order is None:
        return pos
    out = np.empty_like(pos)
    out[order] = pos
    return out


__all__ = ["run_passes", "sgd_passes", "locality_order", "CHUNKS", "LANES"]
