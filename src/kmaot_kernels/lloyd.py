"""Lloyd kernels: nearest-center assignment fused with per-center accumulation.

Plain Python + ``@njit`` helpers, compiled ahead of time by ``src/build_kernels.py``.
Nothing here validates its arguments: the Python layer (``kmaot/_kernels.py``) checks
dtypes, shapes and contiguity before every call.

Numerics
--------
* Assignment first uses the fast expanded form
  ``argmin_j 0.5*||c_j - s||^2 - <x - s, c_j - s>`` in the data dtype, on rows shifted
  by ``shift`` (the data mean), which keeps the cross term accurate far from the
  origin.  When the runner-up's score is within the rounding-error bound of the best
  one, the row is re-measured exactly in float64 against every center.  Labels are
  therefore the float64 argmin of ``sum_f (x_f - c_f)^2`` (ties to the lowest index),
  the same on every CPU target and for float32 and float64 data alike.
* The distance to the chosen center is computed exactly, in float64; that is what
  ``mind`` and the inertia report.
* Sums, counts (sample weights) and inertia are float64 and are accumulated strictly
  in row order, so splitting a block of rows into several calls gives bit-identical
  results.  fastmath is limited to contraction/reassociation (never nnan/ninf): it may
  change the last bits of a score, which the error bound above covers, so labels stay
  the float64 argmin on every CPU target.
* Cost: the fast scores keep the best and the runner-up per row with min/max (no
  branches), which costs a few percent; the exact recheck runs for a tiny fraction of
  rows.  Accumulating in float64 instead of float32 costs one conversion per element
  of the row added to its center's sum (measured: see README, "Numerics").
"""
import numpy as np
from numba import njit

#: fastmath without nnan/ninf: NaN and infinity must keep their meaning (they are
#: how bad rows are detected); contraction into FMA and reassociation are allowed.
FAST = {"contract", "reassoc", "nsz", "arcp", "afn"}


@njit(nogil=True, fastmath=FAST)
def _chunk_rows(d):
    """Rows per transposed chunk: the (d, P) chunk stays within ~16 KB (L1)."""
    p = 4096 // d
    if p > 512:
        p = 512
    p = (p // 32) * 32
    if p < 32:
        p = 32
    return p


@njit(nogil=True, fastmath=FAST)
def _argmin_update(g0, j, best, second, bj, P):
    for p in range(P):
        v = g0[p]
        bv = best[p]
        second[p] = min(second[p], max(bv, v))
        if v < bv:
            bj[p] = j
            best[p] = v


@njit(nogil=True, fastmath=FAST)
def _argmin_update2(g0, g1, j, best, second, bj, P):
    for p in range(P):
        v0 = g0[p]
        v1 = g1[p]
        bv = best[p]
        bi = bj[p]
        s = second[p]
        s = min(s, max(bv, v0))
        if v0 < bv:
            bv = v0
            bi = j
        s = min(s, max(bv, v1))
        if v1 < bv:
            bv = v1
            bi = j + 1
        best[p] = bv
        bj[p] = bi
        second[p] = s


@njit(nogil=True, fastmath=FAST)
def _assign_chunk(X, i0, nb, shift, cs, half_csq, XT, g, best, second, bj, xsq):
    """Fast nearest center (expanded form) of rows X[i0:i0+nb].

    Rows are shifted and transposed into XT (d, P) so that the innermost loops run
    over P points and vectorize; two centers and four features are processed per
    sweep, which keeps eight coefficients in registers.  Fills bj[:nb] (index of the
    smallest score, ties to the lowest), best[:nb] and second[:nb] (smallest and second
    smallest score 0.5*||c_j||^2 - <x, c_j> on shifted data) and xsq[:nb]
    (||x - shift||^2); the latter three bound the rounding error of the scores.
    """
    d = X.shape[1]
    k = cs.shape[0]
    # lanes computed: nb rounded up to a multiple of 32 (lanes past nb hold stale,
    # finite values and are ignored): the vectorized loops handle 32 lanes per
    # iteration, a remainder would run scalar (measured 8x slower per lane)
    P = min(XT.shape[1], ((nb + 31) // 32) * 32)
    for p in range(nb):
        for f in range(d):
            XT[f, p] = X[i0 + p, f] - shift[f]
    for p in range(P):
        xsq[p] = 0
        best[p] = np.inf
        second[p] = np.inf
        bj[p] = 0
    for f in range(d):
        xf = XT[f]
        for p in range(P):
            xsq[p] += xf[p] * xf[p]
    kk = (k // 2) * 2
    dd = (d // 4) * 4
    g0 = g[0]
    g1 = g[1]
    for j0 in range(0, kk, 2):
        h0 = half_csq[j0]
        h1 = half_csq[j0 + 1]
        for p in range(P):
            g0[p] = h0
            g1[p] = h1
        for f0 in range(0, dd, 4):
            x0 = XT[f0]
            x1 = XT[f0 + 1]
            x2 = XT[f0 + 2]
            x3 = XT[f0 + 3]
            a0 = cs[j0, f0]
            a1 = cs[j0, f0 + 1]
            a2 = cs[j0, f0 + 2]
            a3 = cs[j0, f0 + 3]
            b0 = cs[j0 + 1, f0]
            b1 = cs[j0 + 1, f0 + 1]
            b2 = cs[j0 + 1, f0 + 2]
            b3 = cs[j0 + 1, f0 + 3]
            for p in range(P):
                y0 = x0[p]
                y1 = x1[p]
                y2 = x2[p]
                y3 = x3[p]
                g0[p] = g0[p] - a0 * y0 - a1 * y1 - a2 * y2 - a3 * y3
                g1[p] = g1[p] - b0 * y0 - b1 * y1 - b2 * y2 - b3 * y3
        for f in range(dd, d):
            x0 = XT[f]
            a0 = cs[j0, f]
            b0 = cs[j0 + 1, f]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p]
                g1[p] = g1[p] - b0 * x0[p]
        _argmin_update2(g0, g1, j0, best, second, bj, P)
    for j in range(kk, k):
        h0 = half_csq[j]
        for p in range(P):
            g0[p] = h0
        for f0 in range(0, dd, 4):
            x0 = XT[f0]
            x1 = XT[f0 + 1]
            x2 = XT[f0 + 2]
            x3 = XT[f0 + 3]
            a0 = cs[j, f0]
            a1 = cs[j, f0 + 1]
            a2 = cs[j, f0 + 2]
            a3 = cs[j, f0 + 3]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p] - a1 * x1[p] - a2 * x2[p] - a3 * x3[p]
        for f in range(dd, d):
            x0 = XT[f]
            a0 = cs[j, f]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p]
        _argmin_update(g0, j, best, second, bj, P)


@njit(nogil=True, fastmath=FAST)
def _exact_row(X, r, c64, j_fast, gap, bound):
    """The nearest center of row r and its squared distance, exactly in float64.

    The fast scores are trusted when the runner-up is further than ``bound`` (an upper
    bound of their rounding error); otherwise every center is measured exactly, so the
    label is the float64 argmin (ties to the lowest index) whatever the CPU target.
    """
    d = X.shape[1]
    if gap > bound:
        dist = 0.0
        for f in range(d):
            diff = np.float64(X[r, f]) - c64[j_fast, f]
            dist += diff * diff
        return j_fast, dist
    best_j = 0
    best_d = np.inf
    for j in range(c64.shape[0]):
        dist = 0.0
        for f in range(d):
            diff = np.float64(X[r, f]) - c64[j, f]
            dist += diff * diff
        if dist < best_d:
            best_d = dist
            best_j = j
    return best_j, best_d


@njit(nogil=True, fastmath=FAST)
def _scratch(X, d):
    P = _chunk_rows(d)
    xt = np.zeros((d, P), dtype=X.dtype)
    g = np.empty((2, P), dtype=X.dtype)
    best = np.empty(P, dtype=X.dtype)
    second = np.empty(P, dtype=X.dtype)
    xsq = np.empty(P, dtype=X.dtype)
    bestj = np.empty(P, dtype=np.int32)
    return xt, g, best, second, bestj, xsq


@njit(nogil=True, fastmath=FAST)
def _error_scale(X, half_csq):
    """(factor, max ||c_j||^2): the rounding-error bound of a score is
    factor * (||x||^2 + max ||c_j||^2), with factor = (d + 8) * machine epsilon."""
    eps = np.finfo(X.dtype).eps
    cmax = 0.0
    for j in range(half_csq.shape[0]):
        cmax = max(cmax, 2.0 * np.float64(half_csq[j]))
    return (X.shape[1] + 8) * np.float64(eps), cmax


@njit(nogil=True, fastmath=FAST)
def lloyd_block(X, shift, cs, half_csq, c64, w, labels, mind, sums, counts, inertia):
    """One Lloyd pass over a block of rows.

    Parameters
    ----------
    X : (m, d) float32 or float64, C-contiguous          # IN
    shift : (d,) same dtype as X                          # IN
    cs : (k, d) same dtype as X, centers minus shift      # IN
    half_csq : (k,) same dtype, 0.5*||cs_j||^2            # IN
    c64 : (k, d) float64, the centers                     # IN
    w : (m,) float64 sample weights, or (0,) for all ones # IN
    labels : (m,) int32                                   # OUT
    mind : (m,) float64 squared distance to the nearest center, or (0,) to skip  # OUT
    sums : (k, d) float64 weighted sums of rows per center   # INOUT
    counts : (k,) float64 sum of weights per center           # INOUT
    inertia : (1,) float64 weighted sum of squared distances  # INOUT
    """
    m_total, d = X.shape
    has_w = w.shape[0] > 0
    has_mind = mind.shape[0] > 0
    xt, g, best, second, bestj, xsq = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    P = xt.shape[1]
    inert = inertia[0]
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, g, best, second, bestj, xsq)
        for i in range(m):
            r = start + i
            gap = np.float64(second[i]) - np.float64(best[i])
            bound = factor * (np.float64(xsq[i]) + cmax)
            wi = w[r] if has_w else 1.0
            if gap > bound:
                j = bestj[i]
                dist = 0.0
                for f in range(d):
                    xf = np.float64(X[r, f])
                    diff = xf - c64[j, f]
                    dist += diff * diff
                    sums[j, f] += wi * xf
            else:
                j, dist = _exact_row(X, r, c64, bestj[i], gap, bound)
                for f in range(d):
                    sums[j, f] += wi * np.float64(X[r, f])
            labels[r] = j
            counts[j] += wi
            inert += wi * dist
            if has_mind:
                mind[r] = dist
    inertia[0] = inert


@njit(nogil=True, fastmath=FAST)
def assign_block(X, shift, cs, half_csq, c64, labels, mind):
    """Nearest center of each row, without accumulation.

    X (m, d) IN; shift (d,) IN; cs (k, d) IN; half_csq (k,) IN; c64 (k, d) float64 IN;
    labels (m,) int32 OUT; mind (m,) float64 OUT, or (0,) to skip.
    """
    m_total, d = X.shape
    has_mind = mind.shape[0] > 0
    xt, g, best, second, bestj, xsq = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    P = xt.shape[1]
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, g, best, second, bestj, xsq)
        for i in range(m):
            r = start + i
            gap = np.float64(second[i]) - np.float64(best[i])
            j, dist = _exact_row(X, r, c64, bestj[i], gap,
                                 factor * (np.float64(xsq[i]) + cmax))
            labels[r] = j
            if has_mind:
                mind[r] = dist


@njit(nogil=True, fastmath=FAST)
def nearest_exact(X, c64, labels):
    """Nearest center of each row by exact float64 distances, for a handful of rows.

    X (m, d) IN; c64 (k, d) float64 IN; labels (m,) int32 OUT.  Returns the number of
    rows whose distances are not finite (NaN or infinity in the row): the caller raises.
    The same float64 argmin (ties to the lowest index) as ``assign_block``, with three
    arguments and no scratch: the latency path of ``predict`` on a few rows.
    """
    bad = 0
    for r in range(X.shape[0]):
        j, dist = _exact_row(X, r, c64, 0, -1.0, 0.0)
        labels[r] = j
        if not dist < np.inf:
            bad += 1
    return bad


def _sig(template, t):
    return template.replace("T", t)


_LLOYD = "void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], f8[::1], i4[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1])"
_ASSIGN = "void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], i4[::1], f8[::1])"
_NEAREST = "i8(T[:, ::1], f8[:, ::1], i4[::1])"

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["lloyd_block_" + _suffix] = (lloyd_block, _sig(_LLOYD, _t))
    EXPORTS["assign_block_" + _suffix] = (assign_block, _sig(_ASSIGN, _t))
    EXPORTS["nearest_exact_" + _suffix] = (nearest_exact, _sig(_NEAREST, _t))
