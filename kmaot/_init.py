"""Initial centers: k-means++ (greedy, as scikit-learn) and random rows.

Both work on every source.  On file sources nothing is loaded: k-means++ keeps one
float64 per row (the squared distance to the closest chosen center) in a temporary
file-backed array, and makes two passes over the data per center.
"""
import os

import numpy as np

from . import _kernels
from ._engine import block_rows

F8 = np.float64


class _Scratch:
    """A float64 vector of n entries: in memory, or in a temporary file for sources
    that are not in memory (so that memory stays independent of n_samples)."""

    def __init__(self, n, in_memory):
        self._path = None
        if in_memory:
            self.a = np.empty(n)
        else:
            import tempfile  # only for file sources: not at import time

            fd, self._path = tempfile.mkstemp(prefix="kmaot-", suffix=".f8")
            os.close(fd)
            self.a = np.memmap(self._path, dtype=F8, mode="w+", shape=(n,))

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


def kmeans_plusplus(engine, source, n_clusters, random_state, sample_weight, shift, dtype,
                    n_local_trials=None, batch_size=None):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with scikit-learn's local trials).

    Returns (centers (n_clusters, n_features) of dtype, indices of the chosen rows).
    """
    n = source.n_samples
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    if sample_weight is None:
        first = int(random_state.randint(n))
    else:
        first = int(random_state.choice(n, p=sample_weight / sample_weight.sum()))
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
