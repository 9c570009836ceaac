"""Silhouette score in NumPy (for ``kmaot elbow``; no scikit-learn needed at run time)."""
import numpy as np


def silhouette_score(X, labels, chunk=1024):
    """Mean silhouette coefficient of the rows of X (Euclidean distance).

    Same definition as ``sklearn.metrics.silhouette_score``: for each row, a is the
    mean distance to the other rows of its cluster, b the smallest mean distance to the
    rows of another cluster, s = (b - a) / max(a, b), and s = 0 for a row alone in its
    cluster.  O(n_samples**2): call it on a sample of rows.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    labels : array of shape (n_samples,), integers

    Returns
    -------
    float, or nan when fewer than 2 or more than n_samples - 1 clusters are present.
    """
    X = np.asarray(X, dtype=np.float64)
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    lab = lab.ravel()
    m = X.shape[0]
    K = int(lab.max()) + 1 if m else 0
    if not 2 <= K <= m - 1:
        return float("nan")
    counts = np.bincount(lab, minlength=K).astype(np.float64)
    onehot = np.zeros((m, K))
    onehot[np.arange(m), lab] = 1.0
    sq = np.einsum("ij,ij->i", X, X)
    s = np.empty(m)
    for i0 in range(0, m, chunk):
        i1 = min(m, i0 + chunk)
        d2 = sq[i0:i1, None] - 2.0 * (X[i0:i1] @ X.T) + sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(i1 - i0), np.arange(i0, i1)] = 0.0
        dist = np.sqrt(d2)
        sums = dist @ onehot                              # (rows, K)
        own = lab[i0:i1]
        rows = np.arange(i1 - i0)
        n_own = counts[own] - 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            a = sums[rows, own] / n_own
            mean_other = sums / counts
        mean_other[rows, own] = np.inf
        b = mean_other.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            si = (b - a) / np.maximum(a, b)
        si[n_own == 0] = 0.0
        s[i0:i1] = np.nan_to_num(si)
    return float(s.mean())
