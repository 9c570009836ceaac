"""Initial centers: k-means++ (greedy, as scikit-learn), k-means|| and random rows.

All work on every source.  On file sources nothing is loaded: k-means++ and k-means||
keep one float64 per row (the squared distance to the closest chosen center; k-means||
also an int32, the index of that candidate) in temporary file-backed arrays, so that
anonymous memory stays independent of n_samples.  k-means++ makes two passes over the
data per center; k-means|| makes ``n_rounds + 1`` passes in all (6 by default).
"""
import os

import numpy as np

from . import _kernels
from ._engine import block_rows
from ._lloyd import _raise_nonfinite, lloyd
from ._sources import ArraySource

F8 = np.float64


class _Scratch:
    """A float64 vector of n entries: in memory, or in a temporary file for sources
    that are not in memory (so that memory stays independent of n_samples)."""

    def __init__(self, n, in_memory, dtype=F8):
        self._path = None
        if in_memory:
            self.a = np.empty(n, dtype=dtype)
        else:
            import tempfile  # only for file sources: not at import time

            fd, self._path = tempfile.mkstemp(prefix="kmaot-", suffix=".scratch")
            os.close(fd)
            self.a = np.memmap(self._path, dtype=dtype, mode="w+", shape=(n,))

    def close(self):
        if self._path is not None:
            del self.a
            try:
                os.remove(self._path)
            except OSError:
                pass
            self._path = None


def _weighted_search(values, weight, targets, chunk=1 << 20):
    """Indices i such that cumsum(weight*values)[i-1] <= t < cumsum(...)[i], for sorted
    targets, computed chunk by chunk (like np.searchsorted on the cumulative sum)."""
    out = np.empty(len(targets), dtype=np.intp)
    order = np.argsort(targets, kind="stable")
    t_sorted = np.asarray(targets)[order]
    n = values.shape[0]
    run = 0.0
    j = 0
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        v = np.asarray(values[s:e], dtype=F8)
        if weight is not None:
            v = v * weight[s:e]
        cs = np.cumsum(v) + run
        hi = cs[-1]
        jj = j
        while jj < len(t_sorted) and t_sorted[jj] < hi:
            jj += 1
        if jj > j:
            out[order[j:jj]] = s + np.searchsorted(cs, t_sorted[j:jj], side="right")
            j = jj
        run = hi
    out[order[j:]] = n - 1  # rounding at the very end: clip like scikit-learn
    return np.minimum(out, n - 1)


def _distances_to(engine, source, points, dtype, shift, closest, sample_weight,
                  batch_size, update):
    """For each point p: pot_p = sum_i w_i * min(closest_i, ||x_i - p||^2).
    If update, instead set closest = min(closest, ||x - points[0]||^2)."""
    Cs = [_kernels.Centers(p[None, :], shift, dtype) for p in points]
    B = block_rows(source.n_features, len(points))
    pots = np.zeros(len(points))

    def new_state():
        return np.zeros(len(points))

    def work(st, r0, Xp):
        m = Xp.shape[0]
        r1 = r0 + m
        lab = np.empty(m, np.int32)
        d2 = np.empty(m)
        cl = np.asarray(closest[r0:r1])
        w = None if sample_weight is None else sample_weight[r0:r1]
        for t, C in enumerate(Cs):
            _kernels.assign_block(Xp, C, lab, d2)
            if update:
                closest[r0:r1] = np.minimum(cl, d2)
            else:
                np.minimum(cl, d2, out=d2)
                st[t] += d2.sum() if w is None else d2 @ w

    def fold(st):
        pots.__iadd__(st)

    engine.run(source, B, new_state, work, fold, batch_size=batch_size)
    return pots


def _first_row(random_state, n, sample_weight):
    """The first center of k-means++ and k-means||: a row drawn uniformly, or by weight."""
    if sample_weight is None:
        return int(random_state.randint(n))
    return int(random_state.choice(n, p=sample_weight / sample_weight.sum()))


def kmeans_plusplus(engine, source, n_clusters, random_state, sample_weight, shift, dtype,
                    n_local_trials=None, batch_size=None):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with scikit-learn's local trials).

    Returns (centers (n_clusters, n_features) of dtype, indices of the chosen rows).
    """
    n = source.n_samples
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    first = _first_row(random_state, n, sample_weight)
    indices = [first]
    centers = np.empty((n_clusters, source.n_features), dtype=dtype)
    centers[0] = source.take([first])[0]
    scratch = _Scratch(n, source.in_memory)
    closest = scratch.a
    try:
        closest[:] = np.inf
        _distances_to(engine, source, centers[:1], dtype, shift, closest, sample_weight,
                      batch_size, update=True)
        pot = float(closest.sum() if sample_weight is None else closest @ sample_weight)
        for c in range(1, n_clusters):
            rand_vals = random_state.uniform(size=n_local_trials) * pot
            cand = _weighted_search(closest, sample_weight, rand_vals)
            cand_X = source.take(cand)
            pots = _distances_to(engine, source, cand_X, dtype, shift, closest,
                                 sample_weight, batch_size, update=False)
            best = int(np.argmin(pots))
            pot = float(pots[best])
            centers[c] = cand_X[best]
            indices.append(int(cand[best]))
            if c + 1 < n_clusters:
                _distances_to(engine, source, centers[c:c + 1], dtype, shift, closest,
                              sample_weight, batch_size, update=True)
                pot = float(closest.sum() if sample_weight is None else closest @ sample_weight)
    finally:
        del closest
        scratch.close()
    return centers, np.asarray(indices)


def random_rows(source, n_clusters, random_state, sample_weight, dtype):
    """n_clusters distinct rows drawn at random (with probability proportional to
    sample_weight when given), as scikit-learn's init='random'."""
    n = source.n_samples
    if sample_weight is None:
        if n_clusters * 4 < n:  # draw distinct indices without an O(n) permutation
            seen, idx = set(), []
            while len(idx) < n_clusters:
                for i in random_state.randint(n, size=n_clusters - len(idx)):
                    if i not in seen:
                        seen.add(i)
                        idx.append(int(i))
            idx = np.asarray(idx)
        else:
            idx = random_state.permutation(n)[:n_clusters]
    else:
        p = sample_weight / sample_weight.sum()
        if np.count_nonzero(p) < n_clusters:
            raise ValueError(
                f"init='random' needs at least n_clusters={n_clusters} samples with a "
                f"positive weight, got {np.count_nonzero(p)}")
        idx = random_state.choice(n, size=n_clusters, replace=False, p=p)
    return np.ascontiguousarray(source.take(idx), dtype=dtype), idx


#: rows of the scratch arrays handled at once by the sequential sweeps of k-means||
_SWEEP = 1 << 18


def _nearest_update(engine, source, points, offset, dtype, shift, closest, owner,
                    batch_size):
    """One pass: for every row, if one of ``points`` is strictly closer than
    closest[row], store that squared distance and owner[row] = offset + its index
    (ties keep the earlier candidate)."""
    C = _kernels.Centers(points, shift, dtype)
    B = block_rows(source.n_features, len(points))

    def work(_, r0, Xp):
        m = Xp.shape[0]
        r1 = r0 + m
        lab = np.empty(m, np.int32)
        d2 = np.empty(m)
        _kernels.assign_block(Xp, C, lab, d2)
        if not np.isfinite(d2).all():
            _raise_nonfinite(source, r0, Xp)
        cl = closest[r0:r1]
        closer = d2 < cl
        cl[closer] = d2[closer]
        ow = owner[r0:r1]
        ow[closer] = lab[closer] + offset

    engine.run(source, B, lambda: None, work, None, batch_size=batch_size)


def _potential(closest, sample_weight):
    """sum_i w_i * closest_i, in a fixed order (chunk by chunk)."""
    total = 0.0
    for s in range(0, closest.shape[0], _SWEEP):
        c = np.asarray(closest[s:s + _SWEEP])
        total += float(c.sum() if sample_weight is None else c @ sample_weight[s:s + _SWEEP])
    return total


def kmeans_parallel(engine, source, n_clusters, random_state, sample_weight, shift, dtype,
                    n_rounds=5, oversampling=2.0, batch_size=None, spherical=False,
                    return_candidates=False):
    """k-means|| (Bahmani, Moseley, Vattani, Kumar, Vassilvitskii 2012).

    1. One row drawn with probability proportional to its weight.
    2. ``n_rounds`` rounds: every row is drawn independently with probability
       ``min(1, l * w_i * d_i^2 / phi)``, where d_i is its distance to the closest
       candidate so far, ``phi = sum_i w_i d_i^2`` and ``l = oversampling *
       n_clusters``: about l new candidates per round.  One pass over the data per
       round (it also updates d_i and the closest candidate of every row).
    3. Every candidate gets as weight the total sample weight of the rows closest to
       it (the weights are kept: dropping them, as dask-ml does, loses the density).
    4. The weighted candidates are reclustered into n_clusters: weighted greedy
       k-means++ followed by weighted Lloyd iterations, in memory.

    Returns (centers (n_clusters, n_features) of dtype, candidate rows); with
    return_candidates, also (candidates, candidate weights).
    """
    n = source.n_samples
    ell = float(oversampling) * n_clusters
    first = _first_row(random_state, n, sample_weight)
    rows = [np.array([first])]
    cands = [source.take(rows[0])]
    sc_closest = _Scratch(n, source.in_memory)
    sc_owner = _Scratch(n, source.in_memory, np.int32)
    closest, owner = sc_closest.a, sc_owner.a
    try:
        closest[:] = np.inf
        owner[:] = 0
        n_cand = 0
        new = cands[0]
        for rnd in range(n_rounds + 1):
            _nearest_update(engine, source, new, n_cand, dtype, shift, closest, owner,
                            batch_size)
            n_cand += new.shape[0]
            if rnd == n_rounds:
                break
            phi = _potential(closest, sample_weight)
            if not phi > 0:  # every row coincides with a candidate
                break
            picked = []
            for s in range(0, n, _SWEEP):
                e = min(n, s + _SWEEP)
                p = np.asarray(closest[s:e]) * (ell / phi)
                if sample_weight is not None:
                    p *= sample_weight[s:e]
                u = random_state.random_sample(e - s)
                picked.append(s + np.flatnonzero(u < p))
            idx = np.concatenate(picked)
            if idx.size == 0:
                new = None
                break
            rows.append(idx)
            new = source.take(idx)
            cands.append(new)
        if n_cand < n_clusters:  # tiny or highly duplicated data: add random rows
            extra, idx = random_rows(source, n_clusters, random_state, sample_weight, dtype)
            _nearest_update(engine, source, extra, n_cand, dtype, shift, closest, owner,
                            batch_size)
            n_cand += extra.shape[0]
            rows.append(idx)
            cands.append(extra)
        weights = np.zeros(n_cand)
        for s in range(0, n, _SWEEP):
            o = np.asarray(owner[s:s + _SWEEP])
            w = None if sample_weight is None else sample_weight[s:s + _SWEEP]
            weights += np.bincount(o, weights=w, minlength=n_cand)
    finally:
        del closest, owner
        sc_closest.close()
        sc_owner.close()
    C = np.ascontiguousarray(np.concatenate(cands), dtype=dtype)
    cand_rows = np.concatenate(rows)
    keep = weights > 0
    if keep.sum() >= n_clusters:
        C_used, w_used = C[keep], weights[keep]
    else:
        C_used, w_used = C, weights + (weights == 0) * 1e-12 * max(weights.sum(), 1.0)
    centers = recluster(C_used, w_used, n_clusters, random_state, dtype, spherical)
    if return_candidates:
        return centers, cand_rows, (C, weights)
    return centers, cand_rows


def recluster(points, weights, n_clusters, random_state, dtype, spherical=False,
              max_iter=300, tol=1e-4):
    """Weighted greedy k-means++ on a small in-memory set of weighted points, then
    weighted Lloyd iterations from it (on one thread: the set is small)."""
    from ._engine import Engine

    src = ArraySource(points, "candidates")
    w = np.ascontiguousarray(weights, dtype=F8)
    P64 = points.astype(F8)
    mean = (w @ P64) / w.sum()
    var = (w @ (P64 - mean) ** 2) / w.sum()
    with Engine(1) as eng:
        centers0, _ = kmeans_plusplus(eng, src, n_clusters, random_state, w, mean, dtype)
        centers, *_ = lloyd(eng, src, centers0, w, mean, max_iter,
                            float(np.mean(var) * tol), dtype, spherical=spherical)
    return centers
