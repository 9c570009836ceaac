"""k-means|| initialisation (Bahmani et al. 2012) and the init='auto' default."""
import os
import tempfile

import numpy as np
import pytest

from kmaot import ConvergenceWarning, KMeans, MiniBatchKMeans
from kmaot._engine import Engine
from kmaot._init import kmeans_parallel, recluster
from kmaot._sources import ArraySource, as_source

from reference import assign

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(5000, 6, centers=12, cluster_std=1.5, random_state=0)
    return X.astype(np.float32)


def _parallel(X, k, seed, w=None, **kw):
    src = as_source(X)
    shift = np.zeros(src.n_features)
    with Engine(kw.pop("n_threads", 2)) as eng:
        return kmeans_parallel(eng, src, k, np.random.RandomState(seed), w, shift,
                               src.dtype, return_candidates=True, **kw)


@pytest.mark.parametrize("weighted", [False, True])
def test_candidate_weights_are_the_weight_of_their_nearest_rows(blobs, weighted):
    w = np.random.default_rng(0).uniform(0, 3, len(blobs)) if weighted else None
    centers, rows, (C, weights) = _parallel(blobs, 12, 0, w)
    np.testing.assert_array_equal(C, blobs[rows])
    labels, _ = assign(blobs, C)  # nearest candidate, lowest index on ties
    ww = np.ones(len(blobs)) if w is None else w
    np.testing.assert_allclose(weights, np.bincount(labels, ww, minlength=len(C)),
                               rtol=1e-12)
    # about oversampling * k = 24 candidates per round, 5 rounds, plus the first
    assert 12 <= len(C) <= 1 + 2 * 5 * 24
    assert centers.shape == (12, 6) and centers.dtype == np.float32


def test_rows_are_drawn_in_proportion_to_weight_times_distance():
    """Zero-weight rows are never candidates; the first is drawn by weight."""
    X, _ = make_blobs(3000, 2, centers=5, random_state=1)
    w = np.ones(len(X))
    w[::2] = 0
    for seed in range(5):
        _, rows, _ = _parallel(X, 5, seed, w)
        assert (w[rows] > 0).all()


def test_recluster_uses_the_weights():
    """Dropping the weights (as dask-ml does) would put the single center at the
    plain mean 5; with them it is the weighted mean."""
    pts = np.array([[0.0], [10.0]])
    c = recluster(pts, np.array([9.0, 1.0]), 1, np.random.RandomState(0), np.float64)
    np.testing.assert_allclose(c, [[1.0]])
    # two heavy points and many light ones: the centers go to the heavy ones
    pts = np.array([[0.0], [100.0]] + [[50.0 + i] for i in range(8)])
    w = np.array([1000.0, 1000.0] + [1e-3] * 8)
    c = recluster(pts, w, 2, np.random.RandomState(0), np.float64)
    np.testing.assert_allclose(np.sort(c[:, 0]), [0.0, 100.0], atol=0.1)


@pytest.mark.parametrize("batch_size,n_threads", [(None, 1), (97, 2), (1000, 3)])
def test_identical_for_file_batch_size_and_threads(blobs, tmp_path, batch_size, n_threads):
    path = str(tmp_path / "X.npy")
    np.save(path, blobs)
    ref = KMeans(12, init="k-means||", random_state=3, max_iter=1).fit(blobs)
    got = KMeans(12, init="k-means||", random_state=3, max_iter=1, batch_size=batch_size,
                 n_threads=n_threads).fit(path)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    shards = [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    np.save(shards[0], blobs[:1234])
    np.save(shards[1], blobs[1234:])
    got = KMeans(12, init="k-means||", random_state=3, max_iter=1,
                 batch_size=batch_size).fit(shards)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)


def test_auto_is_kmeans_parallel_for_files_and_kmeanspp_in_memory(blobs, tmp_path):
    path = str(tmp_path / "X.npy")
    np.save(path, blobs)
    kw = dict(random_state=5, max_iter=2)
    auto_file = KMeans(12, **kw).fit(path)
    par = KMeans(12, init="k-means||", **kw).fit(blobs)
    np.testing.assert_array_equal(auto_file.cluster_centers_, par.cluster_centers_)
    auto_mem = KMeans(12, **kw).fit(blobs)
    pp = KMeans(12, init="k-means++", **kw).fit(blobs)
    np.testing.assert_array_equal(auto_mem.cluster_centers_, pp.cluster_centers_)
    assert not np.array_equal(auto_mem.cluster_centers_, par.cluster_centers_)
    assert KMeans().init == "auto" and MiniBatchKMeans().init == "auto"
    assert clone(KMeans(init="k-means||")).get_params()["init"] == "k-means||"


@pytest.mark.parametrize("name", ["blobs", "digits"])
def test_quality_within_one_percent_of_kmeanspp(blobs, name):
    """After Lloyd converges, median inertia over seeds within 1% of k-means++."""
    X = blobs if name == "blobs" else load_digits().data
    k = 12 if name == "blobs" else 10
    par = [KMeans(k, init="k-means||", random_state=s).fit(X).inertia_ for s in range(7)]
    pp = [KMeans(k, init="k-means++", random_state=s).fit(X).inertia_ for s in range(7)]
    assert np.median(par) <= 1.01 * np.median(pp)


def test_few_distinct_rows(recwarn):
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 50, axis=0)
    km = KMeans(5, init="k-means||", random_state=0).fit(X)
    assert {tuple(c) for c in km.cluster_centers_} >= {(0.0, 0.0), (1.0, 1.0), (5.0, 5.0)}
    assert any(issubclass(r.category, ConvergenceWarning) for r in recwarn)


def test_minibatch_kmeans_parallel_init():
    """k-means|| runs over all the data for MiniBatchKMeans too; on well separated
    blobs every seed finds the Lloyd solution's inertia within 2%."""
    X, _ = make_blobs(6000, 6, centers=10, cluster_std=0.5, random_state=3)
    ref = KMeans(10, random_state=0, n_init=3).fit(X).inertia_
    for seed in range(4):
        km = MiniBatchKMeans(10, init="k-means||", random_state=seed).fit(X)
        assert km.inertia_ <= 1.02 * ref


def test_scratch_files_are_removed(blobs, tmp_path, monkeypatch):
    path = str(tmp_path / "X.npy")
    np.save(path, blobs)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    KMeans(12, init="k-means||", random_state=0, max_iter=1).fit(path)
    assert os.listdir(scratch) == []


def test_nan_in_file_named(blobs, tmp_path):
    X = blobs.copy()
    X[4000, 1] = np.inf
    path = str(tmp_path / "X.npy")
    np.save(path, X)
    with pytest.raises(ValueError, match="row 4000"):
        KMeans(12, init="k-means||", random_state=0).fit(path)
    with pytest.raises(ValueError, match="row 4000"):
        _parallel(ArraySource(X), 12, 0)
