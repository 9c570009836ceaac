"""Lloyd kernels: nearest-center assignment fused with per-center accumulation.

Plain Python + ``@njit`` helpers, compiled ahead of time by ``src/build_kernels.py``.
Nothing here validates its arguments: the Python layer (``kmaot/_kernels.py``) checks
dtypes, shapes and contiguity before every call.

Numerics
--------
* Assignment uses the expanded form ``argmin_j 0.5*||c_j - s||^2 - <x - s, c_j - s>``
  on rows shifted by ``shift`` (the data mean).  Shifting keeps the cross term
  accurate for data far from the origin.  Ties go to the lowest center index.
* The distance to the chosen center is then recomputed exactly, in float64, as
  ``sum_f (x_f - c_f)^2``; that is what ``mind`` and the inertia report.
* Sums, counts (sample weights) and inertia are float64 and are accumulated strictly
  in row order, so splitting a block of rows into several calls gives bit-identical
  results.  The kernels are compiled without fastmath: IEEE semantics make the
  labels identical on every CPU target.
"""
import numpy as np
from numba import njit

#: rows per transposed sub-chunk (the innermost loops run over these rows)
CHUNK = 256


@njit(cache=False, nogil=True)
def _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, bestj):
    """Nearest center (expanded form) of rows X[start:start+m]; fills bestj[:m]."""
    d = X.shape[1]
    k = cs.shape[0]
    for i in range(m):
        for f in range(d):
            xt[f, i] = X[start + i, f] - shift[f]
    for i in range(m):
        best[i] = np.inf
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
            if v < best[i]:
                best[i] = v
                bestj[i] = j


@njit(nogil=True)
def _scratch(X, d):
    xt = np.empty((d, CHUNK), dtype=X.dtype)
    acc = np.empty(CHUNK, dtype=X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    bestj = np.empty(CHUNK, dtype=np.int32)
    return xt, acc, best, bestj


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
    xt, acc, best, bestj = _scratch(X, d)
    for start in range(0, m_total, CHUNK):
        m = min(CHUNK, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, bestj)
        for i in range(m):
            j = bestj[i]
            r = start + i
            labels[r] = j
            wi = w[r] if has_w else 1.0
            dist = 0.0
            for f in range(d):
                x = np.float64(X[r, f])
                diff = x - c64[j, f]
                dist += diff * diff
                sums[j, f] += wi * x
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
    xt, acc, best, bestj = _scratch(X, d)
    for start in range(0, m_total, CHUNK):
        m = min(CHUNK, m_total - start)
        _assign_chunk(X, start, m, shift, cs, half_csq, xt, acc, best, bestj)
        for i in range(m):
            j = bestj[i]
            r = start + i
            labels[r] = j
            if has_mind:
                dist = 0.0
                for f in range(d):
                    diff = np.float64(X[r, f]) - c64[j, f]
                    dist += diff * diff
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
