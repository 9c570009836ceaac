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

from .lloyd import FAST, _add_row_dist, _exact_nearest2


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


#: skip a row's search only when its bounds are apart by this much more than their
#: rounding errors (relative, and relative to the accumulated drifts)
_BOUND_REL = 1e-9
_BOUND_ABS = 1e-12


@njit(nogil=True, fastmath=FAST)
def minibatch_step(X, rows, w, c64, centers, weight_sums, sums, batch_w, inertia, prev_c64,
                   drift, row_label, row_bounds):
    """One mini-batch step on the rows ``X[rows]``: assignment + center update.

    Every row goes to the center of ``c64`` at the least float64 squared distance
    ``sum_f (x_f - c_f)^2`` (ties to the lowest index) and is added at once, in batch
    order, to that center's batch sums; the centers then move as in
    ``minibatch_update`` (the same sums in the same order: the same results for the
    same labels).  Rows are read in place through their indices: no gathered copy.

    Bounds (when ``row_label`` has n entries: X is the whole data and rows come back
    step after step): every row keeps, from the last step that searched it, its label,
    an upper bound of its distance to that center and a lower bound of its distance
    to every other center; since then, center j has moved by at most
    ``drift[j] - snapshot`` (its accumulated drift; ``drift[k]`` accumulates the
    largest move of every step).  A row whose bounds stay apart keeps its label after
    one exact distance instead of k: the same label as the full search, since the
    bounds are compared with a margin far above their rounding errors.

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
    prev_c64 : (k, d) float64, c64 of the previous step    # INOUT (bounds only)
    drift : (k + 1,) float64, accumulated moves, zeros at first  # INOUT (bounds only)
    row_label : (n,) int32, -1 for rows never searched, or (0,): no bounds   # INOUT
    row_bounds : (n, 4) float64 (upper, lower, drift[label] and drift[k] when they
        were set), or (0, 4)                          # INOUT

    Returns
    -------
    float64 : sum over centers of the squared distance each center moved.  When the
    inertia is not finite (NaN or infinity in a row, or overflowing distances), centers
    and weight_sums are left untouched and 0.0 is returned: the caller raises.
    """
    m = rows.shape[0]
    k, d = c64.shape
    has_w = w.shape[0] > 0
    bounds = row_label.shape[0] > 0
    if bounds:  # how far every center moved since the previous step
        largest = 0.0
        for j in range(k):
            mv = 0.0
            for f in range(d):
                diff = c64[j, f] - prev_c64[j, f]
                mv += diff * diff
                prev_c64[j, f] = c64[j, f]
            mv = np.sqrt(mv)
            drift[j] += mv
            if mv > largest:
                largest = mv
        drift[k] += largest
    for j in range(k):
        batch_w[j] = 0.0
        for f in range(d):
            sums[j, f] = 0.0
    inert = 0.0
    for i in range(m):
        r = rows[i]
        best_j = -1
        if bounds and row_label[r] >= 0:
            lab = row_label[r]
            lower = row_bounds[r, 1] - (drift[k] - row_bounds[r, 3])
            upper = row_bounds[r, 0] + (drift[lab] - row_bounds[r, 2])
            margin = _BOUND_REL * (upper + lower) + _BOUND_ABS * (drift[lab] + drift[k])
            if upper + margin < lower:  # lab is the nearest: measure it, add the row
                wi = w[i] if has_w else 1.0
                best_d = _add_row_dist(X, r, lab, wi, c64, sums)
                inert += wi * best_d
                batch_w[lab] += wi
                row_bounds[r, 0] = np.sqrt(best_d)
                row_bounds[r, 1] = lower
                row_bounds[r, 2] = drift[lab]
                row_bounds[r, 3] = drift[k]
                continue
        if best_j < 0:  # full search
            best_j, best_d, second_d = _exact_nearest2(X, r, c64)
            if bounds:
                row_label[r] = best_j
                row_bounds[r, 0] = np.sqrt(best_d)
                row_bounds[r, 1] = np.sqrt(second_d)
                row_bounds[r, 2] = drift[best_j]
                row_bounds[r, 3] = drift[k]
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
def kpp_candidates(X, sample, cand, closest, w, d2, pots):
    """One round of greedy k-means++ on a small sample of rows (MiniBatchKMeans' init
    sample, read in place through its row indices): every candidate's distances and
    potential in one pass over the sample per candidate.

    For candidate t (sample row ``cand[t]``, i.e. ``X[sample[cand[t]]]``) and every
    sample row i (``X[sample[i]]``): ``d2[t, i] = min(closest[i], ||x_i - x_t||^2)``,
    the squared distance computed exactly in float64 (summed in feature order), and
    ``pots[t] = sum_i w_i d2[t, i]`` (in sample order).

    Parameters
    ----------
    X : (N, d) float32 or float64, C-contiguous, finite   # IN
    sample : (n,) int64, every value in [0, N)           # IN  the sample: rows of X
    cand : (c,) int64, every value in [0, n)             # IN  candidates: sample rows
    closest : (n,) float64, squared distance of every sample row to its closest chosen
        center so far (+inf before the first)           # IN
    w : (n,) float64 sample weights, or (0,) for all ones   # IN
    d2 : (c, n) float64                                  # OUT
    pots : (c,) float64                                  # OUT
    """
    n = sample.shape[0]
    d = X.shape[1]
    has_w = w.shape[0] > 0
    n_cand = cand.shape[0]
    for t in range(n_cand):
        pots[t] = 0.0
    # rows outer, candidates inner: every sample row is read once per round (measured
    # faster than one pass per candidate); each potential still sums in sample order
    for i in range(n):
        r = sample[i]
        wi = w[i] if has_w else 1.0
        for t in range(n_cand):
            c = sample[cand[t]]
            dist = 0.0
            for f in range(d):
                diff = np.float64(X[r, f]) - np.float64(X[c, f])
                dist += diff * diff
            v = closest[i]
            if dist < v:
                v = dist
            d2[t, i] = v
            pots[t] += v * wi if has_w else v


_UPDATE = "f8(T[:, ::1], f8[::1], i4[::1], f8[:, ::1], f8[::1], f8[:, ::1], f8[::1])"
_KPP = "void(T[:, ::1], i8[::1], i8[::1], f8[::1], f8[::1], f8[:, ::1], f8[::1])"
_STEP = ("f8(T[:, ::1], i8[::1], f8[::1], f8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], "
         "f8[::1], f8[::1], f8[:, ::1], f8[::1], i4[::1], f8[:, ::1])")

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["minibatch_update_" + _suffix] = (minibatch_update, _UPDATE.replace("T", _t))
    EXPORTS["minibatch_step_" + _suffix] = (minibatch_step, _STEP.replace("T", _t))
    EXPORTS["kpp_candidates_" + _suffix] = (kpp_candidates, _KPP.replace("T", _t))
