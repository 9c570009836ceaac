"""Mini-batch k-means kernel: the per-batch center update (Sculley 2010).

Plain Python + ``@njit`` helpers, compiled ahead of time by ``src/build_kernels.py``.
Nothing here validates its arguments: ``kmaot/_kernels.py`` checks dtypes, shapes,
contiguity and the range of the labels before every call.

Every center is the running weighted mean of all the rows ever assigned to it: a
center j that receives the rows B_j of a batch (weights w_i) moves to

    c_j <- (W_j * c_j + sum_{i in B_j} w_i x_i) / (W_j + sum_{i in B_j} w_i),
    W_j <- W_j + sum_{i in B_j} w_i,

i.e. towards the batch mean of its rows with the per-center learning rate
``sum w_i / W_j`` (the same update as scikit-learn's ``_minibatch_update_dense``).
Sums are float64 and accumulated in row order.

``minibatch_step`` fuses one whole step for small problems: it reads the batch's rows
straight from the data through their indices (no gathered copy), assigns each to its
nearest center by exact float64 distances and applies the same update.
``kpp_candidates`` is one round of k-means++ on the (small, in-memory) init sample.
"""
import numpy as np
from numba import njit

#: no nnan/ninf (see lloyd.py)
FAST = {"contract", "reassoc", "nsz", "arcp", "afn"}


@njit(nogil=True, fastmath=FAST)
def _move_centers(centers, weight_sums, sums, batch_w):
    """Apply the batch sums (sums, batch_w) to the running means; returns the summed
    squared move."""
    k, d = centers.shape
    moved = 0.0
    for j in range(k):
        bw = batch_w[j]
        if bw > 0.0:
            old_w = weight_sums[j]
            new_w = old_w + bw
            alpha = 1.0 / new_w
            for f in range(d):
                c_old = centers[j, f]
                c_new = (c_old * old_w + sums[j, f]) * alpha
                diff = c_new - c_old
                moved += diff * diff
                centers[j, f] = c_new
            weight_sums[j] = new_w
    return moved


@njit(nogil=True, fastmath=FAST)
def minibatch_update(X, w, labels, centers, weight_sums, sums, batch_w):
    """Move every center that received rows of this batch to the running mean.

    Parameters
    ----------
    X : (m, d) float32 or float64, C-contiguous     # IN
    w : (m,) float64 sample weights, or (0,) for all ones   # IN
    labels : (m,) int32, every value in [0, k)        # IN
    centers : (k, d) float64, running weighted means  # INOUT
    weight_sums : (k,) float64, W_j: total weight seen per center   # INOUT
    sums : (k, d) float64 scratch                     # OUT (batch sums)
    batch_w : (k,) float64 scratch                    # OUT (batch weights)

    Returns
    -------
    float64 : sum over centers of the squared distance each center moved.
    """
    m, d = X.shape
    k = centers.shape[0]
    has_w = w.shape[0] > 0
    for j in range(k):
        batch_w[j] = 0.0
        for f in range(d):
            sums[j, f] = 0.0
    for i in range(m):
        j = labels[i]
        wi = w[i] if has_w else 1.0
        batch_w[j] += wi
        for f in range(d):
            sums[j, f] += wi * np.float64(X[i, f])
    return _move_centers(centers, weight_sums, sums, batch_w)


@njit(nogil=True, fastmath=FAST)
def minibatch_step(X, rows, w, c64, centers, weight_sums, sums, batch_w, inertia):
    """One mini-batch step on the rows ``X[rows]``: assignment + center update.

    Every row goes to the center of ``c64`` at the least float64 squared distance
    ``sum_f (x_f - c_f)^2`` (ties to the lowest index) and is added at once, in batch
    order, to that center's batch sums; the centers then move as in
    ``minibatch_update`` (the same sums in the same order: the same results for the
    same labels).  Rows are read in place through their indices: no gathered copy.
    Cost: k*d float64 operations per row (measured faster than the blocked assignment
    plus a separate update for small k, see kmaot/_kernels.py).

    Parameters
    ----------
    X : (n, d) float32 or float64, C-contiguous      # IN  the data (or a gathered batch)
    rows : (m,) int64, every value in [0, n)          # IN  the batch: rows of X, any order
    w : (m,) float64 batch weights, or (0,) for all ones   # IN
    c64 : (k, d) float64                              # IN  the centers rows are assigned to
    centers : (k, d) float64, running weighted means  # INOUT
    weight_sums : (k,) float64                        # INOUT
    sums : (k, d) float64 scratch                     # OUT (batch sums)
    batch_w : (k,) float64 scratch                    # OUT (batch weights)
    inertia : (1,) float64                            # OUT sum_i w_i min_j ||x_i - c64_j||^2

    Returns
    -------
    float64 : sum over centers of the squared distance each center moved.  When the
    inertia is not finite (NaN or infinity in a row, or overflowing distances), centers
    and weight_sums are left untouched and 0.0 is returned: the caller raises.
    """
    m = rows.shape[0]
    k, d = c64.shape
    has_w = w.shape[0] > 0
    for j in range(k):
        batch_w[j] = 0.0
        for f in range(d):
            sums[j, f] = 0.0
    inert = 0.0
    for i in range(m):
        r = rows[i]
        best_j = 0
        best_d = np.inf
        for j in range(k):
            dist = 0.0
            for f in range(d):
                diff = np.float64(X[r, f]) - c64[j, f]
                dist += diff * diff
            if dist < best_d:
                best_d = dist
                best_j = j
        wi = w[i] if has_w else 1.0
        inert += wi * best_d
        batch_w[best_j] += wi
        for f in range(d):
            sums[best_j, f] += wi * np.float64(X[r, f])
    inertia[0] = inert
    if not inert < np.inf:
        return 0.0
    return _move_centers(centers, weight_sums, sums, batch_w)


@njit(nogil=True, fastmath=FAST)
def kpp_candidates(X, cand, closest, w, d2, pots):
    """One round of greedy k-means++ on a small in-memory sample (MiniBatchKMeans'
    init sample): every candidate's distances and potential in one pass per candidate.

    For candidate t (row ``cand[t]`` of X) and every row i of X:
    ``d2[t, i] = min(closest[i], ||X[i] - X[cand[t]]||^2)``, the squared distance
    computed exactly in float64 (summed in feature order), and
    ``pots[t] = sum_i w_i d2[t, i]`` (in row order).

    Parameters
    ----------
    X : (n, d) float32 or float64, C-contiguous, finite   # IN
    cand : (c,) int64, every value in [0, n)             # IN
    closest : (n,) float64, squared distance of every row to its closest chosen
        center so far (+inf before the first)           # IN
    w : (n,) float64 sample weights, or (0,) for all ones   # IN
    d2 : (c, n) float64                                  # OUT
    pots : (c,) float64                                  # OUT
    """
    n, d = X.shape
    has_w = w.shape[0] > 0
    for t in range(cand.shape[0]):
        c = cand[t]
        pot = 0.0
        for i in range(n):
            dist = 0.0
            for f in range(d):
                diff = np.float64(X[i, f]) - np.float64(X[c, f])
                dist += diff * diff
            v = closest[i]
            if dist < v:
                v = dist
            d2[t, i] = v
            pot += v * w[i] if has_w else v
        pots[t] = pot


_UPDATE = "f8(T[:, ::1], f8[::1], i4[::1], f8[:, ::1], f8[::1], f8[:, ::1], f8[::1])"
_KPP = "void(T[:, ::1], i8[::1], f8[::1], f8[::1], f8[:, ::1], f8[::1])"
_STEP = ("f8(T[:, ::1], i8[::1], f8[::1], f8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], "
         "f8[::1], f8[::1])")

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["minibatch_update_" + _suffix] = (minibatch_update, _UPDATE.replace("T", _t))
    EXPORTS["minibatch_step_" + _suffix] = (minibatch_step, _STEP.replace("T", _t))
    EXPORTS["kpp_candidates_" + _suffix] = (kpp_candidates, _KPP.replace("T", _t))
