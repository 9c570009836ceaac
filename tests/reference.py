"""Slow, obviously correct NumPy versions of what kmaot computes.

Every fast path of kmaot is tested against these.  They favour clarity over speed
and compute everything in float64.
"""
import numpy as np


def sq_distances(X, centers):
    """(n, k) squared Euclidean distances, computed directly as sum (x - c)^2."""
    X = np.asarray(X, dtype=np.float64)
    C = np.asarray(centers, dtype=np.float64)
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)


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
