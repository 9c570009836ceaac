"""Slow, obviously correct NumPy versions of what kmaot computes.

Every fast path of kmaot is tested against these.  They favour clarity over speed
and compute everything in float64.
"""
import numpy as np


def sq_distances(X, centers):
    """(n, k) squared Euclidean distances, computed directly as sum (x - c)^2 in the
    order kmaot documents for the exact distances that decide labels (so that ties
    that rounding sets apart are broken the same way): each difference squared and
    rounded, added into 8 partial sums (feature f into sum f mod 8, in feature order),
    then p_q + p_(q+4), then (q) + (q+2), then the last two."""
    X = np.asarray(X, dtype=np.float64)
    C = np.asarray(centers, dtype=np.float64)
    out = np.empty((X.shape[0], C.shape[0]))
    for s in range(0, X.shape[0], 2048):
        Xs = X[s:s + 2048]
        parts = [np.zeros((Xs.shape[0], C.shape[0])) for _ in range(8)]
        for f in range(X.shape[1]):
            diff = Xs[:, f, None] - C[None, :, f]
            parts[f % 8] = parts[f % 8] + diff * diff
        t = [parts[q] + parts[q + 4] for q in range(4)]
        out[s:s + 2048] = (t[0] + t[2]) + (t[1] + t[3])
    return out


def assign(X, centers):
    """Labels (lowest index on ties) and squared distances to the nearest center."""
    D = sq_distances(X, centers)
    labels = np.argmin(D, axis=1)
    return labels, D[np.arange(len(labels)), labels]


def accumulate(X, labels, k, sample_weight=None):
    """Per-center weighted sums and total weights."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    sums = np.zeros((k, X.shape[1]))
    counts = np.zeros(k)
    for i in range(len(X)):
        sums[labels[i]] += w[i] * X[i]
        counts[labels[i]] += w[i]
    return sums, counts


def lloyd(X, init, max_iter=300, tol=1e-4, sample_weight=None):
    """Plain Lloyd iterations with scikit-learn's stopping rule (no empty clusters
    expected).  Returns labels, centers, inertia, n_iter."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.array(init, dtype=np.float64)
    k = len(centers)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    tol = np.mean(np.var(X, axis=0)) * tol
    for it in range(max_iter):
        labels, _ = assign(X, centers)
        sums, counts = accumulate(X, labels, k, w)
        assert (counts > 0).all(), "reference lloyd does not handle empty clusters"
        new = sums / counts[:, None]
        shift = ((new - centers) ** 2).sum()
        centers = new
        if shift == 0 or shift <= tol:
            break
    labels, d2 = assign(X, centers)
    return labels, centers, float((w * d2).sum()), it + 1


def minibatch_update(X, labels, centers, weight_sums, sample_weight=None):
    """One mini-batch center update: every center that receives rows moves to the
    running weighted mean of all the rows it ever received.  Returns new (centers,
    weight_sums, squared move)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    centers = np.array(centers, dtype=np.float64)
    weight_sums = np.array(weight_sums, dtype=np.float64)
    old = centers.copy()
    for j in range(len(centers)):
        mine = labels == j
        bw = w[mine].sum()
        if bw > 0:
            total = old[j] * weight_sums[j] + (w[mine, None] * X[mine]).sum(axis=0)
            weight_sums[j] += bw
            centers[j] = total / weight_sums[j]
    return centers, weight_sums, float(((centers - old) ** 2).sum())


def minibatch_kmeans(batches, init, weights=None):
    """Mini-batch k-means over the given batches (no reassignment): returns centers,
    weight sums."""
    centers = np.array(init, dtype=np.float64)
    weight_sums = np.zeros(len(centers))
    for i, Xb in enumerate(batches):
        labels, _ = assign(Xb, centers)
        w = None if weights is None else weights[i]
        centers, weight_sums, _ = minibatch_update(Xb, labels, centers, weight_sums, w)
    return centers, weight_sums


def unit_rows(X):
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def spherical_kmeans(X, init, max_iter=300, sample_weight=None):
    """Spherical k-means (Dhillon & Modha): rows and centers on the unit sphere, each
    row to the center of largest cosine similarity (lowest index on ties), centers =
    normalised weighted sums.  Stops when the labels no longer change.  Returns labels,
    centers, sum of w * (1 - cos), n_iter."""
    Xn = unit_rows(X)
    C = unit_rows(init)
    w = np.ones(len(Xn)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    labels = None
    for it in range(max_iter):
        new_labels = np.argmax(Xn @ C.T, axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(len(C)):
            s = (w[labels == j, None] * Xn[labels == j]).sum(axis=0)
            if np.linalg.norm(s) > 0:
                C[j] = s / np.linalg.norm(s)
    labels = np.argmax(Xn @ C.T, axis=1)
    cos = (Xn * C[labels]).sum(axis=1)
    return labels, C, float((w * (1.0 - cos)).sum()), it + 1


def write_normal_npy(path, n, d, scale=1.0, offset=0.0, chunk=500_000, seed=0):
    """A large float32 .npy of standard normal values (times scale, plus offset), written
    chunk by chunk through a memmap so that the test process never holds it (a data
    helper for the memory tests, not a reference)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(seed)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        out[s:e] = rng.standard_normal((e - s, d), dtype=np.float32) * scale + offset
    out.flush()
    del out


def kmeans_plusplus_in_memory(X, n_clusters, random_state, sample_weight=None,
                              n_local_trials=None):
    """Greedy k-means++ on a small in-memory array, in NumPy: the reference of
    ``kmaot._minibatch.kmeans_plusplus_sample`` (the same algorithm and random draws as
    ``kmaot._init.kmeans_plusplus``, float64 squared distances in the expanded form
    ``||x||^2 - 2 x.c + ||c||^2`` clipped at 0, as scikit-learn computes them).
    Returns (centers of X's dtype, row indices)."""
    from kmaot._init import _first_row, _weighted_search

    n = X.shape[0]
    X64 = X.astype(np.float64)
    xsq = np.einsum("ij,ij->i", X64, X64)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    first = _first_row(random_state, n, sample_weight)

    def sqdist(rows):
        C = X64[rows]
        d2 = xsq[None, :] - 2.0 * (C @ X64.T) + xsq[rows][:, None]
        return np.maximum(d2, 0.0, out=d2)

    indices = [first]
    closest = sqdist([first])[0]
    pot = float(closest.sum() if sample_weight is None else closest @ sample_weight)
    for _ in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        cand = _weighted_search(closest, sample_weight, rand_vals)
        d2 = np.minimum(closest[None, :], sqdist(cand))
        pots = d2.sum(axis=1) if sample_weight is None else d2 @ sample_weight
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = d2[best]
        indices.append(int(cand[best]))
    idx = np.asarray(indices)
    return np.ascontiguousarray(X[idx]), idx
