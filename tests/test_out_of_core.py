"""Files, shards and memmaps give exactly the in-memory result, for every batch size
and thread count."""
import numpy as np
import pytest

from kmaot import KMeans


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, (5, 6))
    X = (centers[rng.integers(5, size=2500)] + rng.standard_normal((2500, 6))).astype(np.float32)
    d = tmp_path_factory.mktemp("ooc")
    path = d / "X.npy"
    np.save(path, X)
    shards = []
    for i, (a, b) in enumerate([(0, 700), (700, 701), (701, 2000), (2000, 2500)]):
        p = d / f"shard{i}.npy"
        np.save(p, X[a:b])
        shards.append(str(p))
    init = X[rng.choice(len(X), 5, replace=False)].copy()
    return X, str(path), shards, init


def _fit(X, init, **kw):
    return KMeans(5, init=init, tol=0, **kw).fit(X)


def _assert_identical(a, b):
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("batch_size", [1, 7, 256, 2499, 2500, None])
def test_file_equals_in_memory_any_batch_size(data, batch_size):
    X, path, _, init = data
    ref = _fit(X, init)
    got = _fit(path, init, batch_size=batch_size)
    _assert_identical(ref, got)
    np.testing.assert_array_equal(got.predict(path), ref.labels_)


@pytest.mark.parametrize("batch_size", [1, 333, None])
def test_shards_equal_in_memory(data, batch_size):
    X, _, shards, init = data
    _assert_identical(_fit(X, init), _fit(shards, init, batch_size=batch_size))


def test_memmap_equals_in_memory(data):
    X, path, _, init = data
    mm = np.load(path, mmap_mode="r")
    _assert_identical(_fit(X, init), _fit(mm, init, batch_size=100))


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_any_thread_count_is_bit_identical(n_threads):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150_000, 4)).astype(np.float32)  # several reduction blocks
    init = X[:7].copy()
    ref = KMeans(7, init=init, max_iter=5, tol=0, n_threads=1).fit(X)
    got = KMeans(7, init=init, max_iter=5, tol=0, n_threads=n_threads,
                 batch_size=12_345).fit(X)
    _assert_identical(ref, got)
    np.testing.assert_array_equal(ref.labels_, got.labels_)


def test_compute_labels(data):
    X, path, _, init = data
    assert not hasattr(_fit(path, init), "labels_")  # files: memory independent of n
    km = _fit(path, init, compute_labels=True)
    np.testing.assert_array_equal(km.labels_, _fit(X, init).labels_)
    assert not hasattr(_fit(X, init, compute_labels=False), "labels_")


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_file_init_equals_in_memory_init(data, init):
    """k-means++ and random draw the same centers from a file as from the array."""
    X, path, _, _ = data
    a = KMeans(5, init=init, random_state=3, n_init=1).fit(X)
    b = KMeans(5, init=init, random_state=3, n_init=1, batch_size=97).fit(path)
    _assert_identical(a, b)


def test_kmeans_plusplus_on_file_reads_batches_only(data, monkeypatch):
    """k-means++ on a file never materializes it: every read is a batch or a few rows."""
    from kmaot import _sources
    X, path, _, _ = data
    reads = []
    orig_rows, orig_take = _sources.NpyFile._rows, _sources.NpyFile.take

    def rows(self, a, b):
        reads.append(b - a)
        return orig_rows(self, a, b)

    def take(self, idx):
        reads.append(len(np.atleast_1d(idx)))
        return orig_take(self, idx)

    monkeypatch.setattr(_sources.NpyFile, "_rows", rows)
    monkeypatch.setattr(_sources.NpyFile, "take", take)
    KMeans(5, init="k-means++", random_state=0, batch_size=64, max_iter=2).fit(path)
    assert max(reads) <= 64


def test_read_ahead_hints_cover_the_file_once(tmp_path, monkeypatch):
    """Batches of a file ask the OS to read ahead (MADV_WILLNEED) in windows that cover
    every row exactly once, without one system call per tiny batch."""
    from kmaot._sources import NpyFile

    X = np.arange(20000 * 3, dtype=np.float32).reshape(20000, 3)
    path = tmp_path / "x.npy"
    np.save(path, X)
    src = NpyFile(path)
    calls = []
    monkeypatch.setattr(src, "_advise", lambda a, b, advice=None: calls.append((a, b)))
    got = np.concatenate([b for _, b in src.batches(7)])
    np.testing.assert_array_equal(got, X)
    covered = np.zeros(20000, int)
    for a, b in calls:
        covered[a:b] += 1
    assert (covered == 1).all()
    assert len(calls) < 20000 / 7 / 10
    # the real hint on the real mapping does not fail at the end of the file
    src2 = NpyFile(path)
    src2._advise(19990, 20000)
    np.testing.assert_array_equal(np.concatenate([b for _, b in src2.batches(4096)]), X)
