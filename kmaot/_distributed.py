"""Work on one partition of a distributed dataset, and the driver that combines it.

Used by ``kmaot.dask`` and ``kmaot.spark``; needs numpy alone, so that Dask workers and
Spark executors unpickle these functions without importing anything else.

Every ``chunk_*`` function runs where the data is: it gets one partition (a 2-D array
of rows, its optional weights and the global index of its first row), runs kmaot's
compiled kernels through the local passes of ``_lloyd`` on a one-thread engine, and
returns a small result (sums, counts, inertia; a few rows).  ``combine_*`` functions
add results in the order given, so a fixed reduction tree gives the same bits on
every run.  ``lloyd`` is the driver: the loop of ``_lloyd.lloyd`` over a *backend*
(Dask or Spark) whose ``lloyd_pass`` and ``farthest`` run the chunk functions
everywhere and reduce their results.
"""
import time
import warnings

import numpy as np

from . import _kernels
from ._engine import Engine, topk_farthest
from ._lloyd import PassResult, assign_pass, centers_from, farthest_rows, lloyd_pass, moments_pass
from ._sources import ArraySource

F8 = np.float64


class ChunkSource(ArraySource):
    """One partition as a kmaot source; errors name the row in the whole dataset."""

    def __init__(self, X, dtype, offset=0, what="X", where=""):
        super().__init__(np.ascontiguousarray(X, dtype=dtype), what)
        self.offset = int(offset)
        self.where = where

    def describe_row(self, row):
        return (f"{self.what} contains NaN or infinity (first at row "
                f"{self.offset + row}{self.where})")


def chunk_weights(w, m, offset=0, where=""):
    """Checked float64 weights of one partition (None stays None)."""
    if w is None:
        return None
    w = np.ascontiguousarray(w, dtype=F8).reshape(-1)
    if w.shape != (m,):
        raise ValueError(f"sample_weight has {w.shape[0]} values where X has {m} rows"
                         f"{where}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "NaN or infinity" if not np.isfinite(w[i]) else "negative values"
        raise ValueError(f"sample_weight contains {what} (first at row {offset + i}{where})")
    return w


# ---------------------------------------------------------------- per partition
def chunk_moments(X, w, dtype, offset=0, what="X", where=""):
    """(n, mean, M2, weight) of one partition: M2 = n * variance; checks every value."""
    m = X.shape[0]
    d = X.shape[1]
    w = chunk_weights(w, m, offset, where)
    if m == 0:
        return 0, np.zeros(d), np.zeros(d), 0.0
    mom = moments_pass(Engine(1), ChunkSource(X, dtype, offset, what, where))
    wsum = float(m) if w is None else float(w.sum())
    return m, mom.mean, mom.var * m, wsum


def combine_moments(*parts):
    """Chan et al.'s pairwise update, in the order given."""
    n, mean, m2, wsum = parts[0]
    mean, m2 = np.array(mean, dtype=F8), np.array(m2, dtype=F8)
    for nb, mb, m2b, wb in parts[1:]:
        if nb == 0:
            continue
        tot = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta * delta * (n * nb / tot)
        n = tot
        wsum += wb
    return n, mean, m2, wsum


def chunk_lloyd(X, w, dtype, centers, shift, offset=0, what="X", where=""):
    """(sums (k, d), counts (k,), inertia (1,)) of one partition, in float64."""
    k, d = centers.shape
    m = X.shape[0]
    w = chunk_weights(w, m, offset, where)
    if m == 0:
        return np.zeros((k, d)), np.zeros(k), np.zeros(1)
    C = _kernels.Centers(centers, shift, dtype)
    res = lloyd_pass(Engine(1), ChunkSource(X, dtype, offset, what, where), C, w)
    return res.sums, res.counts, res.inertia


def combine_sums(*parts):
    """Element-wise sum of (sums, counts, inertia) tuples, in the order given."""
    out = [np.array(a, dtype=F8) for a in parts[0]]
    for p in parts[1:]:
        for acc, a in zip(out, p):
            acc += a
    return tuple(out)


def chunk_farthest(X, w, dtype, centers, shift, n, offset=0):
    """The n rows of the partition farthest from their nearest center:
    (global rows, labels, distances, rows of X, weights)."""
    m = X.shape[0]
    if m == 0:
        return (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0),
                np.empty((0, X.shape[1]), dtype), np.empty(0))
    src = ChunkSource(X, dtype, offset)
    C = _kernels.Centers(centers, shift, dtype)
    rows, labels, dist = farthest_rows(Engine(1), src, C, n)
    wr = np.ones(rows.shape[0]) if w is None else np.asarray(w, dtype=F8)[rows]
    return rows.astype(np.int64) + offset, labels, dist, src.take(rows), wr


def combine_farthest(n, *parts):
    """The n farthest rows over several chunk_farthest results (ties: lower row)."""
    cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    idx = topk_farthest(cat[2], cat[0], n)
    return tuple(c[idx] for c in cat)


def chunk_predict(X, dtype, centers, shift, offset=0, what="X", where=""):
    """int32 label of every row of the partition."""
    labels = np.empty(X.shape[0], np.int32)
    if X.shape[0]:
        C = _kernels.Centers(centers, shift, dtype)
        assign_pass(Engine(1), ChunkSource(X, dtype, offset, what, where), C, labels)
    return labels


def chunk_transform(X, dtype, centers, shift, offset=0, what="X", where=""):
    """Euclidean distances of every row of the partition to every center."""
    if X.shape[0] == 0:
        return np.empty((0, centers.shape[0]), dtype)
    return local_estimator(centers, shift).transform(
        ChunkSource(X, dtype, offset, what, where))


def local_estimator(centers, shift):
    """A fitted in-memory ``kmaot.KMeans`` with these centers (for local prediction)."""
    from ._kmeans import KMeans

    km = KMeans(n_clusters=centers.shape[0], n_threads=1)
    km.cluster_centers_ = np.array(centers)
    km.n_features_in_ = centers.shape[1]
    km._shift = np.asarray(shift, dtype=F8)
    return km


# ------------------------------------------------------ sampling, k-means||
def chunk_topk_keys(X, w, dtype, k, seed, offset=0):
    """Weighted sampling without replacement (Efraimidis & Spirakis): the k rows of the
    partition with the largest keys log(u) / w.  Returns (keys, global rows, rows)."""
    m = X.shape[0]
    u = np.random.default_rng(seed).random(m)
    with np.errstate(divide="ignore"):
        keys = np.log(u) if w is None else np.where(np.asarray(w) > 0,
                                                    np.log(u) / np.asarray(w, F8), -np.inf)
    idx = np.lexsort((np.arange(m), -keys))[:k]
    idx = idx[np.isfinite(keys[idx])]
    rows = np.ascontiguousarray(np.asarray(X)[idx], dtype=dtype)
    return keys[idx], idx.astype(np.int64) + offset, rows


def combine_topk(k, *parts):
    keys = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    X = np.concatenate([p[2] for p in parts])
    idx = np.lexsort((rows, -keys))[:k]
    return keys[idx], rows[idx], X[idx]


def chunk_nearest(X, dtype, cands, shift, state=None, base=0):
    """Squared distance of every row to its nearest candidate, and that candidate's
    index.  With a previous state (d2, labels) over candidates [0, base), only the
    new candidates (numbered from base) are measured and the state is updated."""
    m = X.shape[0]
    d2 = np.empty(m)
    lab = np.empty(m, np.int32)
    if m and cands.shape[0]:
        C = _kernels.Centers(cands, shift, dtype)
        _kernels.assign_block(np.ascontiguousarray(X, dtype=dtype), C, lab, d2)
    else:
        d2[:] = np.inf
        lab[:] = 0
    lab += base
    if state is not None:
        old_d2, old_lab = state
        closer = d2 < old_d2  # ties keep the earlier candidate
        d2 = np.where(closer, d2, old_d2)
        lab = np.where(closer, lab, old_lab).astype(np.int32)
    return d2, lab


def chunk_cost(state, w):
    d2 = state[0]
    return float(d2.sum() if w is None else d2 @ np.asarray(w, F8))


def chunk_oversample(X, w, dtype, state, phi, l, seed):
    """Rows drawn independently with probability min(1, l * w * d2 / phi)."""
    d2 = state[0]
    u = np.random.default_rng(seed).random(d2.shape[0])
    if not phi > 0:
        return np.empty((0, X.shape[1]), dtype)
    p = l * d2 / phi
    if w is not None:
        p = p * np.asarray(w, F8)
    return np.ascontiguousarray(np.asarray(X)[u < p], dtype=dtype)


def chunk_candidate_weights(state, w, n_cands):
    """Total sample weight of the rows nearest to each candidate."""
    return np.bincount(state[1], weights=None if w is None else np.asarray(w, F8),
                       minlength=n_cands).astype(F8)


def recluster(cands, weights, n_clusters, seed, dtype, pad=None):
    """k-means|| last step: weighted k-means++ then weighted Lloyd on the candidates
    (each weighted by the weight of the rows nearest to it), on the driver."""
    from ._kmeans import ConvergenceWarning, KMeans

    cands = np.ascontiguousarray(cands, dtype=dtype)
    weights = np.asarray(weights, dtype=F8)
    if cands.shape[0] < n_clusters and pad is not None:
        # fewer candidates than clusters (few distinct rows): add sampled rows
        cands = np.concatenate([cands, np.asarray(pad, dtype)])[: max(n_clusters, len(cands))]
        weights = np.concatenate([weights, np.ones(cands.shape[0] - weights.shape[0])])
    if cands.shape[0] < n_clusters:
        raise ValueError(f"k-means|| found {cands.shape[0]} candidate centers for "
                         f"n_clusters={n_clusters}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters, init="k-means++", n_init=1, max_iter=100,
                    random_state=int(seed), n_threads=1, compute_labels=False)
        km.fit(cands, sample_weight=weights)
    return km.cluster_centers_


# ---------------------------------------------------------------- the driver
def relocate_empty(backend, centers, shift, result):
    """scikit-learn's rule, as ``_lloyd.relocate_empty_clusters``: each empty cluster
    takes one of the rows farthest from their centers, which leaves its cluster."""
    empty = np.flatnonzero(result.counts == 0)
    if empty.size == 0:
        return empty
    _, labels, _, X_far, w_far = backend.farthest(centers, shift, empty.size)
    for new_id, old_id, x, w in zip(empty, labels, X_far.astype(F8), w_far):
        result.sums[old_id] -= w * x
        result.sums[new_id] = w * x
        result.counts[old_id] -= w
        result.counts[new_id] = w
    return empty


def lloyd(backend, centers, shift, max_iter, tol, dtype, verbose=0):
    """``_lloyd.lloyd`` over a distributed backend (same convergence rules and
    statistics); one reduction per iteration, a second one only in an iteration that
    leaves a cluster empty.  Returns (centers, inertia, n_iter, stats)."""
    centers = np.ascontiguousarray(centers, dtype=dtype)
    stats = []
    strict = False
    inertia = None
    for it in range(max_iter):
        t0 = time.perf_counter()
        res = _as_result(backend.lloyd_pass(centers, shift))
        empty = relocate_empty(backend, centers, shift, res)
        new_centers = centers_from(res, centers, dtype)
        shift_tot = float(((new_centers.astype(F8) - centers.astype(F8)) ** 2).sum())
        inertia = float(res.inertia[0])
        centers = new_centers
        stats.append({"iteration": it + 1, "inertia": inertia, "center_shift": shift_tot,
                      "n_empty": int(empty.size), "seconds": time.perf_counter() - t0})
        if verbose:
            print(f"Iteration {it}, inertia {inertia}.")
        if shift_tot == 0.0 and empty.size == 0:
            strict = True
            break
        if shift_tot <= tol:
            break
    if not strict:  # inertia of the returned centers
        inertia = float(_as_result(backend.lloyd_pass(centers, shift)).inertia[0])
    return centers, inertia, len(stats), stats


def _as_result(parts):
    sums, counts, inertia = parts
    res = PassResult(*np.shape(sums))
    res.sums[...] = sums
    res.counts[...] = counts
    res.inertia[...] = inertia
    return res


def add_parts(*parts):
    """Sum of partial results (arrays or PassResult-like objects supporting +)."""
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def concat_parts(*parts):
    return np.concatenate(parts)
