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
  results.  The kernels are compiled without fastmath: IEEE semantics make the
  labels identical on every CPU target.
"""
import numpy as np
from numba import njit

#: rows per transposed sub-chunk (the innermost loops run over these rows)
CHUNK = 256


@njit(nogil=True)
def _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, second, bestj, xsq):
    """Fast nearest center (expanded form) of rows X[start:start+m].

    Fills bestj[:m] (index of the smallest score), best[:m] and second[:m] (smallest
    and second smallest score 0.5*||c_j||^2 - <x, c_j> on shifted data) and xsq[:m]
    (||x - shift||^2), which bound the rounding error of the scores.
    """
    d = X.shape[1]
    k = cs.shape[0]
    for i in range(m):
        xsq[i] = 0
    for f in range(d):
        for i in range(m):
            v = X[start + i, f] - shift[f]
            xt[f, i] = v
            xsq[i] += v * v
    for i in range(m):
        best[i] = np.inf
        second[i] = np.inf
        bestj[i] = 0
    for j in range(k):
        for i in range(m):
            acc[i] = 0
        for f in range(d):
            c = cs[j, f]
            for i in range(m):
                acc[i] += xt[f, i] * c
        h = half_csq[j]
        for i in range(m):
            v = h - acc[i]
            b = best[i]
            if v < b:
                second[i] = b
                best[i] = v
                bestj[i] = j
            elif v < second[i]:
                second[i] = v


@njit(nogil=True)
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


@njit(nogil=True)
def _scratch(X, d):
    xt = np.empty((d, CHUNK), dtype=X.dtype)
    acc = np.empty(CHUNK, dtype=X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    second = np.empty(CHUNK, dtype=X.dtype)
    xsq = np.empty(CHUNK, dtype=X.dtype)
    bestj = np.empty(CHUNK, dtype=np.int32)
    return xt, acc, best, second, bestj, xsq


@njit(nogil=True)
def _error_scale(X, half_csq):
    """(factor, max ||c_j||^2): the rounding-error bound of a score is
    factor * (||x||^2 + max ||c_j||^2), with factor = (d + 8) * machine epsilon."""
    eps = np.finfo(X.dtype).eps
    cmax = 0.0
    for j in range(half_csq.shape[0]):
        cmax = max(cmax, 2.0 * np.float64(half_csq[j]))
    return (X.shape[1] + 8) * np.float64(eps), cmax


@njit(nogil=True)
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
    xt, acc, best, second, bestj, xsq = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    for start in range(0, m_total, CHUNK):
        m = min(CHUNK, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, second, bestj, xsq)
        for i in range(m):
            r = start + i
            gap = np.float64(second[i]) - np.float64(best[i])
            j, dist = _exact_row(X, r, c64, bestj[i], gap,
                                 factor * (np.float64(xsq[i]) + cmax))
            labels[r] = j
            wi = w[r] if has_w else 1.0
            for f in range(d):
                sums[j, f] += wi * np.float64(X[r, f])
            counts[j] += wi
            inertia[0] += wi * dist
            if has_mind:
                mind[r] = dist


@njit(nogil=True)
def assign_block(X, shift, cs, half_csq, c64, labels, mind):
    """Nearest center of each row, without accumulation.

    X (m, d) IN; shift (d,) IN; cs (k, d) IN; half_csq (k,) IN; c64 (k, d) float64 IN;
    labels (m,) int32 OUT; mind (m,) float64 OUT, or (0,) to skip.
    """
    m_total, d = X.shape
    has_mind = mind.shape[0] > 0
    xt, acc, best, second, bestj, xsq = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    for start in range(0, m_total, CHUNK):
        m = min(CHUNK, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, second, bestj, xsq)
        for i in range(m):
            r = start + i
            gap = np.float64(second[i]) - np.float64(best[i])
            j, dist = _exact_row(X, r, c64, bestj[i], gap,
                                 factor * (np.float64(xsq[i]) + cmax))
            labels[r] = j
            if has_mind:
                mind[r] = dist


def _sig(template, t):
    return template.replace("T", t)


_LLOYD = "void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], f8[::1], i4[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1])"
_ASSIGN = "void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], i4[::1], f8[::1])"

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["lloyd_block_" + _suffix] = (lloyd_block, _sig(_LLOYD, _t))
    EXPORTS["assign_block_" + _suffix] = (assign_block, _sig(_ASSIGN, _t))
