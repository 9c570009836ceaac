"""Shared helpers of the tests that compare algorithm='bounded' with algorithm='lloyd'
(tests/test_bounded.py: Hamerly's bound; tests/test_yinyang.py: grouped bounds)."""
import numpy as np

from kmaot import KMeans


def blob_data(n, d, k, dtype, seed=0, spread=1.5, offset=0.0):
    """Gaussian blobs around k centers and k distinct rows of them as initial centers."""
    rng = np.random.default_rng(seed)
    ctr = rng.normal(0, 4, (k, d)) + offset
    X = (ctr[rng.integers(0, k, n)] + rng.normal(0, spread, (n, d))).astype(dtype)
    init = X[rng.choice(n, k, replace=False)].copy()
    return X, init


def fit_pair(X, init, sample_weight=None, **kw):
    """The same fit with algorithm='lloyd' and with algorithm='bounded'."""
    k = init.shape[0]
    a = KMeans(k, init=init, tol=0, algorithm="lloyd", **kw).fit(X, sample_weight=sample_weight)
    b = KMeans(k, init=init, tol=0, algorithm="bounded", **kw).fit(X, sample_weight=sample_weight)
    return a, b


def assert_identical(a, b):
    """Same iterations, centers, inertia, labels (when both kept them) and per-iteration
    statistics, bit for bit."""
    assert a.n_iter_ == b.n_iter_
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_
    if hasattr(a, "labels_") and hasattr(b, "labels_"):
        assert np.array_equal(a.labels_, b.labels_)
    for sa, sb in zip(a.iteration_stats_, b.iteration_stats_):
        assert sa["inertia"] == sb["inertia"]
        assert sa["center_shift"] == sb["center_shift"]
        assert sa["n_empty"] == sb["n_empty"]
