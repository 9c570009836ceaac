"""Thread safety: one fitted model serving many threads, and fits running side by side."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kmaot import KMeans


def _blobs(n, d, k, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5, 5, (k, d))
    return (centers[rng.integers(k, size=n)] + rng.standard_normal((n, d))).astype(dtype)


def _run_together(fns):
    """Call every fn at once (released by a barrier); return their results in order."""
    barrier = threading.Barrier(len(fns))

    def call(fn):
        barrier.wait()
        return fn()
    with ThreadPoolExecutor(len(fns)) as pool:
        return [f.result(timeout=300) for f in [pool.submit(call, fn) for fn in fns]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_threads_predict_one_model(dtype, tmp_path):
    X = _blobs(20000, 6, 9, seed=0, dtype=dtype)
    km = KMeans(9, random_state=0, n_threads=2).fit(X)
    np.save(tmp_path / "X.npy", X[:5000])
    # small arrays (direct kernel path), big arrays (pool path), other dtypes, files
    queries = [X[i * 7:i * 7 + 1 + i % 5] for i in range(40)]
    queries += [X[:4096], X[1:5001], X.astype(np.float16)[:3000], X[::3], str(tmp_path / "X.npy")]
    serial = [km.predict(q) for q in queries]
    for _ in range(3):
        got = _run_together([lambda q=q: km.predict(q) for q in queries])
        for a, b in zip(got, serial):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(serial[-4], km.labels_[1:5001])
    # transform and score too
    calls = [lambda q=q: km.transform(q) for q in queries[35:]] + \
        [lambda q=q: km.score(q) for q in queries[35:]]
    serial = [c() for c in calls]
    for a, b in zip(_run_together(calls), serial):
        np.testing.assert_array_equal(a, b)


def test_predict_while_centers_are_replaced():
    """Threads predicting while another thread swaps cluster_centers_ always get the
    labels of one of the two sets of centers, never a mix of stale prepared state."""
    X = _blobs(3000, 4, 5, seed=1)
    km = KMeans(5, random_state=0).fit(X)
    a = km.cluster_centers_
    b = a[::-1].copy()
    q = X[:64].copy()
    la, lb = km.predict(q), 4 - km.predict(q)
    stop = threading.Event()

    def swapper():
        while not stop.is_set():
            km.cluster_centers_ = b if km.cluster_centers_ is a else a

    t = threading.Thread(target=swapper)
    t.start()
    try:
        bad = 0
        for _ in range(3000):
            got = km.predict(q)
            bad += not (np.array_equal(got, la) or np.array_equal(got, lb))
    finally:
        stop.set()
        t.join()
    assert bad == 0


@pytest.mark.parametrize("n_threads", [1, 2])
def test_two_fits_in_two_threads_do_not_interfere(n_threads, tmp_path):
    X1 = _blobs(30000, 5, 6, seed=2)
    X2 = _blobs(25000, 3, 4, seed=3, dtype=np.float64)
    path = tmp_path / "X1.npy"
    np.save(path, X1)
    jobs = [
        lambda: KMeans(6, random_state=0, n_threads=n_threads, n_init=2).fit(X1),
        lambda: KMeans(4, random_state=1, n_threads=n_threads, init="random").fit(X2),
        lambda: KMeans(6, random_state=0, n_threads=n_threads, n_init=2,
                       batch_size=4096).fit(str(path)),
    ]
    serial = [job() for job in jobs]
    together = _run_together(jobs)
    for a, b in zip(together, serial):
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
        assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(together[0].labels_, serial[0].labels_)
    # the file fit and the in-memory fit of the same data agree exactly
    np.testing.assert_array_equal(together[2].cluster_centers_, serial[0].cluster_centers_)


def test_fits_with_checkpoints_in_threads(tmp_path):
    X = _blobs(8000, 4, 5, seed=4)
    jobs = [lambda i=i: KMeans(5, random_state=i, tol=0).fit(
        X, checkpoint=tmp_path / f"ck{i}.npz", checkpoint_every=1) for i in range(4)]
    serial = [KMeans(5, random_state=i, tol=0).fit(X) for i in range(4)]
    for a, b in zip(_run_together(jobs), serial):
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert list(tmp_path.iterdir()) == []
