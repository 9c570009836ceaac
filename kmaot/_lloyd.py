"""Passes over a data source and the Lloyd driver.

The driver assumes its inputs are validated (the estimator does that): a source, a
compute dtype, initial centers of that dtype, float64 sample weights or None.  It owns
the iteration loop, convergence, empty-cluster relocation and statistics; the kernels
only do one pass over a block of rows.
"""
import contextlib
import time

import numpy as np

from . import _kernels
from ._engine import block_rows, topk_farthest
from ._spherical import normalize_centers

F8 = np.float64


class Moments:
    """Per-feature mean and variance of a source (one streaming pass)."""

    def __init__(self, n_samples, mean, var):
        self.n_samples = n_samples
        self.mean = mean
        self.var = var


def moments_pass(engine, source, batch_size=None):
    """Mean and (population) variance per feature, in float64; checks every value is
    finite and names the first bad row otherwise."""
    d = source.n_features
    ref = np.ascontiguousarray(source.take([0])[0], dtype=F8)
    if not np.isfinite(ref).all():
        raise ValueError(source.describe_row(0))
    B = block_rows(d, 1)
    total1 = np.zeros(d)
    total2 = np.zeros(d)

    f32 = source.dtype == np.float32
    span = [np.inf, -np.inf]  # float32 data: its smallest and largest value

    def new_state():
        return [np.zeros(d), np.zeros(d), np.inf, -np.inf]

    def work(state, r0, Xp):
        _kernels.moments_block(Xp, ref, state[0], state[1])
        if not (np.isfinite(state[0]).all() and np.isfinite(state[1]).all()):
            _raise_nonfinite(source, r0, Xp)
        if f32:
            state[2] = min(state[2], float(Xp.min()))
            state[3] = max(state[3], float(Xp.max()))

    def fold(state):
        total1.__iadd__(state[0])
        total2.__iadd__(state[1])
        span[0] = min(span[0], state[2])
        span[1] = max(span[1], state[3])

    engine.run(source, B, new_state, work, fold, batch_size=batch_size)
    n = source.n_samples
    m1 = total1 / n
    mean = ref + m1
    var = np.maximum(total2 / n - m1 * m1, 0.0)
    if f32:  # the float32 kernels score ||x - mean||^2 in float32
        r = max(span[1] - float(mean.min()), float(mean.max()) - span[0])
        if d * r * r > _kernels.F32_SAFE:
            _kernels.raise_f32_range(d * r * r)
    return Moments(n, mean, var)


class PassResult:
    __slots__ = ("sums", "counts", "inertia", "n_full")

    def __init__(self, k, d):
        self.sums = np.zeros((k, d))
        self.counts = np.zeros(k)
        self.inertia = np.zeros(1)

    def add(self, other):
        self.sums += other.sums
        self.counts += other.counts
        self.inertia += other.inertia


def lloyd_pass(engine, source, C, sample_weight=None, labels_out=None, mind_out=None,
               batch_size=None):
    """Assign every row to its nearest center in C and accumulate, per center, the
    weighted sum of its rows and the sum of weights, plus the total weighted inertia.

    labels_out, mind_out: optional (n_samples,) int32 / float64 arrays to fill.
    Returns a PassResult (float64 sums (k, d), counts (k,), inertia (1,)).
    """
    k, d = C.k, C.d
    B = block_rows(d, k)
    total = PassResult(k, d)

    def work(st, r0, Xp):
        m = Xp.shape[0]
        r1 = r0 + m
        labels = labels_out[r0:r1] if labels_out is not None else np.empty(m, np.int32)
        mind = mind_out[r0:r1] if mind_out is not None else None
        w = sample_weight[r0:r1] if sample_weight is not None else None
        _kernels.lloyd_block(Xp, C, w, labels, mind, st.sums, st.counts, st.inertia)
        if not np.isfinite(st.inertia[0]):
            _raise_nonfinite(source, r0, Xp)

    engine.run(source, B, lambda: PassResult(k, d), work, total.add, batch_size=batch_size)
    return total


class Bounds:
    """Per-row state of the bounded pass: the label from the previous pass and a lower
    bound of the distance to every other center (0: unknown), plus the centers that
    state refers to.  O(n_samples) memory: 12 bytes per row."""

    def __init__(self, n):
        self.labels = np.zeros(n, np.int32)
        self.lower = np.zeros(n)
        self.c64 = None
        self.n_full = 0

    @staticmethod
    def separation(C):
        """Half the distance from each center to its nearest other center, rounded
        down by more than its float64 error (0 where centers coincide; k == 1: inf).

        Expanded form on centers relative to the shift, one float64 matrix product;
        the rounding error of ||a||^2 + ||b||^2 - 2 a.b is below
        (d + 2) * eps * (||a||^2 + ||b||^2), and more than twice that is subtracted
        (the norms are scaled by 1 - 2 (d + 4) eps, which also covers the rounding of
        that product and of the two additions).  Built in place in the (k, k) product
        (k=1024, d=128: 7 ms against 12 with temporaries)."""
        c = C.c64 - C.shift.astype(F8)
        k, d = c.shape
        if k == 1:
            return np.full(1, np.inf)
        sq = np.einsum("ij,ij->i", c, c)
        sq *= 1.0 - 2.0 * (d + 4) * np.finfo(F8).eps
        D = c @ c.T
        D *= -2.0
        D += sq[:, None]
        D += sq[None, :]
        np.fill_diagonal(D, np.inf)
        return 0.5 * np.sqrt(np.maximum(D.min(axis=1), 0.0))

    def delta(self, C):
        """Displacement of every center since the last pass (rounded up slightly)."""
        if self.c64 is None:
            return np.zeros(C.k)
        d = np.sqrt(((C.c64 - self.c64) ** 2).sum(axis=1))
        return d * (1.0 + 1e-12)

    def run_pass(self, engine, source, C, sample_weight=None, batch_size=None):
        return bounds_pass(engine, source, C, self, sample_weight, batch_size=batch_size)

    def stats(self):
        return {"n_full": self.n_full}


def bounds_pass(engine, source, C, bounds, sample_weight=None, batch_size=None):
    """``lloyd_pass`` with the same result, bit for bit, that skips the rows whose
    nearest center provably did not change (Hamerly's bound).  Updates ``bounds``;
    its labels are the labels of this pass."""
    k, d = C.k, C.d
    B = block_rows(d, k)
    total = PassResult(k, d)
    delta = bounds.delta(C)
    sep = Bounds.separation(C)
    full = np.zeros(1, np.int64)

    def new_state():
        st = PassResult(k, d)
        st.n_full = np.zeros(1, np.int64)
        return st

    def work(st, r0, Xp):
        r1 = r0 + Xp.shape[0]
        w = sample_weight[r0:r1] if sample_weight is not None else None
        _kernels.lloyd_bounds_block(Xp, C, w, delta, sep, bounds.labels[r0:r1],
                                    bounds.lower[r0:r1], st.sums, st.counts, st.inertia,
                                    st.n_full)
        if not np.isfinite(st.inertia[0]):
            _raise_nonfinite(source, r0, Xp)

    def fold(st):
        total.add(st)
        full.__iadd__(st.n_full)

    engine.run(source, B, new_state, work, fold, batch_size=batch_size)
    bounds.c64 = C.c64
    bounds.n_full = int(full[0])
    return total


def _raise_nonfinite(source, r0, Xp):
    bad = ~np.isfinite(Xp).all(axis=1)
    if bad.any():
        raise ValueError(source.describe_row(r0 + int(np.flatnonzero(bad)[0])))
    raise ValueError(f"values around row {r0} are too large: their squared distances "
                     "overflow float64")


def assign_pass(engine, source, C, labels_out, mind_out=None, batch_size=None):
    """Fill labels_out (and mind_out) with the nearest center of every row; raise
    ValueError naming the first row with NaN or infinity."""
    B = block_rows(C.d, C.k)

    def work(_, r0, Xp):
        r1 = r0 + Xp.shape[0]
        mind = mind_out[r0:r1] if mind_out is not None else None
        if not _kernels.assign_block(Xp, C, labels_out[r0:r1], mind):
            _kernels.raise_bad_rows(Xp, C, lambda r: source.describe_row(r0 + r))

    engine.run(source, B, lambda: None, work, None, batch_size=batch_size)


def farthest_rows(engine, source, C, n, batch_size=None):
    """The n rows farthest from their nearest center in C: (rows, labels, distances),
    sorted by decreasing distance, ties by increasing row."""
    B = block_rows(C.d, C.k)
    found = []

    def work(st, r0, Xp):
        m = Xp.shape[0]
        labels = np.empty(m, np.int32)
        mind = np.empty(m)
        _kernels.assign_block(Xp, C, labels, mind)
        rows = np.arange(r0, r0 + m)
        idx = topk_farthest(mind, rows, n)
        st.append((rows[idx], labels[idx], mind[idx]))

    def fold(st):
        found.extend(st)

    engine.run(source, B, list, work, fold, batch_size=batch_size)
    rows = np.concatenate([f[0] for f in found])
    labels = np.concatenate([f[1] for f in found])
    dist = np.concatenate([f[2] for f in found])
    idx = topk_farthest(dist, rows, n)
    return rows[idx], labels[idx], dist[idx]


def farthest_by_bound(source, C, upper, n):
    """``farthest_rows`` from per-row upper bounds kept by the pass that just ran on C
    (``_yinyang.Grouped.upper``: sqrt of each row's exact distance to its nearest
    center, times 1 + 1e-9, rounded), without a pass over the data.  That bound is a
    non-decreasing function of the distance, so the n farthest rows are among the rows
    whose bound reaches the n-th largest bound (less a margin); only those candidates
    are measured, by the kernel of ``farthest_rows`` (the same distances and labels)."""
    n = min(n, upper.shape[0])
    thr = np.partition(upper, upper.shape[0] - n)[upper.shape[0] - n]
    cand = np.flatnonzero(upper >= thr * (1.0 - 1e-9))
    X = np.ascontiguousarray(source.take(cand), dtype=C.dtype)
    labels = np.empty(cand.shape[0], np.int32)
    mind = np.empty(cand.shape[0])
    _kernels.assign_block(X, C, labels, mind)
    idx = topk_farthest(mind, cand, n)
    return cand[idx], labels[idx], mind[idx]


def relocate_empty_clusters(engine, source, C, result, sample_weight, batch_size=None,
                            upper=None):
    """scikit-learn's rule: each empty cluster takes one of the points farthest from
    their centers (farthest first), which leaves its old cluster.  Edits result in
    place; returns the indices of the clusters that were empty.  upper: per-row bounds
    from the pass on C (``farthest_by_bound``), which spare a pass over the data."""
    empty = np.flatnonzero(result.counts == 0)
    if empty.size == 0:
        return empty
    if upper is not None:
        rows, labels, _ = farthest_by_bound(source, C, upper, empty.size)
    else:
        rows, labels, _ = farthest_rows(engine, source, C, empty.size, batch_size)
    X_far = source.take(rows).astype(F8)
    for new_id, row, old_id, x in zip(empty, rows, labels, X_far):
        w = 1.0 if sample_weight is None else float(sample_weight[row])
        result.sums[old_id] -= w * x
        result.sums[new_id] = w * x
        result.counts[old_id] -= w
        result.counts[new_id] = w
    return empty


def centers_from(result, old_centers, dtype, spherical=False):
    """Means of the clusters (sums / counts); a cluster with no weight keeps its center.
    spherical: the means rescaled to unit norm (a zero mean keeps its old center)."""
    centers = np.array(old_centers, dtype=F8)
    nz = result.counts > 0
    centers[nz] = result.sums[nz] / result.counts[nz, None]
    if spherical:
        return normalize_centers(centers, dtype, fallback=old_centers)
    return np.ascontiguousarray(centers, dtype=dtype)


def tolerance(moments, tol):
    """scikit-learn's tol: relative to the mean of the per-feature variances."""
    if tol == 0:
        return 0.0
    return float(np.mean(moments.var) * tol)


def lloyd(engine, source, centers, sample_weight, shift, max_iter, tol, dtype,
          labels_out=None, batch_size=None, verbose=0, callback=None, use_bounds=False,
          stats=None, save=None, spherical=False):
    """Lloyd's algorithm from the given initial centers.

    Convergence follows scikit-learn's ``_kmeans_single_lloyd``: stop when the centers
    do not move at all (strict convergence: the partition did not change), or when the
    squared center shift summed over clusters is <= tol.

    Returns (centers, inertia, n_iter, stats) where stats is a list of dicts, one per
    iteration (inertia with respect to the centers at the start of the iteration,
    center_shift, n_empty relocated, seconds).  labels_out, if given, receives the
    labels with respect to the returned centers.

    spherical: rows of ``source`` are unit vectors (metric='cosine'); centers are
    renormalised after every update and inertias are reported as sum w (1 - cos),
    half the squared Euclidean distances between unit vectors.

    use_bounds: run ``bounds_pass`` (same result, skips rows whose label cannot
    change; 12 bytes of state per row) or, with many clusters, ``_yinyang``'s grouped
    pass (``_yinyang.choose_bounds`` decides) instead of ``lloyd_pass``; stats then
    also report ``n_full``, the rows measured against some centers (grouped: and
    ``n_dist``, the center distances measured).

    Resuming (checkpoints): ``stats`` holds the statistics of the iterations already
    run and ``centers`` the centers they ended with; the loop goes on from there (the
    bounds start afresh, which does not change the result).  ``save(centers, stats)``,
    if given, is called after every iteration that does not end the loop.
    """
    scale = 0.5 if spherical else 1.0
    centers = np.ascontiguousarray(centers, dtype=dtype)
    bounds = None
    blas_limit = contextlib.nullcontext  # lloyd_pass calls no BLAS
    if use_bounds:  # Hamerly's or grouped (Yinyang) bounds: one rule, in _yinyang
        from ._yinyang import new_bounds, single_blas
        # the bounded passes' matrix products (the centers' separation, the grouping,
        # the grouped pass's scores) run on one BLAS thread: the pool's threads are
        # the parallelism, and BLAS's idle threads would spin against them
        blas_limit = single_blas
        with blas_limit():
            bounds = new_bounds(source.n_samples, centers, np.dtype(dtype).itemsize)

    def one_pass(C):
        if bounds is None:
            return lloyd_pass(engine, source, C, sample_weight, labels_out=labels_out,
                              batch_size=batch_size)
        res = bounds.run_pass(engine, source, C, sample_weight, batch_size=batch_size)
        if labels_out is not None:
            labels_out[:] = bounds.labels
        return res

    stats = [] if stats is None else list(stats)
    strict = False
    inertia = None
    for it in range(len(stats), max_iter):
        t0 = time.perf_counter()
        with blas_limit():  # not over callback and save: user code
            C = _kernels.Centers(centers, shift, dtype)
            res = one_pass(C)
            empty = relocate_empty_clusters(engine, source, C, res, sample_weight,
                                            batch_size, getattr(bounds, "upper", None))
            new_centers = centers_from(res, centers, dtype, spherical)
        shift_tot = float(((new_centers.astype(F8) - centers.astype(F8)) ** 2).sum())
        inertia = scale * float(res.inertia[0])
        centers = new_centers
        st = {"iteration": it + 1, "inertia": inertia, "center_shift": shift_tot,
              "n_empty": int(empty.size), "seconds": time.perf_counter() - t0}
        if bounds is not None:
            st.update(bounds.stats())
        stats.append(st)
        if verbose:
            print(f"Iteration {it}, inertia {inertia}.")
        if callback is not None:
            callback(st)
        if shift_tot == 0.0 and empty.size == 0:
            strict = True
            if verbose:
                print(f"Converged at iteration {it}: strict convergence.")
            break
        if shift_tot <= tol:
            if verbose:
                print(f"Converged at iteration {it}: center shift {shift_tot} "
                      f"within tolerance {tol}.")
            break
        if save is not None:
            save(centers, stats)
    n_iter = len(stats)
    if not strict:
        # one more E-step so that labels and inertia match the returned centers
        with blas_limit():
            C = _kernels.Centers(centers, shift, dtype)
            res = one_pass(C)
        inertia = scale * float(res.inertia[0])
    return centers, inertia, n_iter, stats
