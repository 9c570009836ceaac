"""kmaot.dask on a dask.distributed LocalCluster with two worker processes, compared
with the in-memory kmaot.KMeans, the NumPy reference and scikit-learn."""
import logging
import os
import signal

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import kmaot  # noqa: E402
from kmaot import NotFittedError  # noqa: E402
from kmaot.dask import KMeans as DaskKMeans  # noqa: E402

import reference  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _blobs(n=20_000, d=5, k=6, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-20, 20, size=(k, d))
    X = centers[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    return X.astype(dtype), centers


def _init(X, k, seed=1):
    """k rows of X, as initial centers both fits share."""
    return X[np.random.default_rng(seed).choice(len(X), k, replace=False)].copy()


def _near(true_centers, seed=1):
    """Initial centers near the true ones: few iterations, a quick test."""
    rng = np.random.default_rng(seed)
    return true_centers + rng.uniform(-1, 1, size=true_centers.shape)


def _assert_same_fit(dk, km, rtol=1e-12):
    np.testing.assert_allclose(dk.cluster_centers_, km.cluster_centers_, rtol=rtol,
                               atol=rtol)
    assert dk.cluster_centers_.dtype == km.cluster_centers_.dtype
    assert dk.n_iter_ == km.n_iter_
    assert dk.inertia_ == pytest.approx(km.inertia_, rel=1e-10)
    labels = dk.labels_.compute()
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, km.labels_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_in_memory_fit(client, dtype):
    X, _ = _blobs(dtype=dtype)
    init = _init(X, 6)
    Xd = da.from_array(X, chunks=(3_001, 5)).persist()  # uneven blocks
    km = kmaot.KMeans(6, init=init, tol=0).fit(X)
    dk = DaskKMeans(6, init=init, tol=0).fit(Xd)
    _assert_same_fit(dk, km, rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert len(dk.iteration_stats_) == dk.n_iter_
    for a, b in zip(dk.iteration_stats_, km.iteration_stats_):
        assert a["inertia"] == pytest.approx(b["inertia"], rel=1e-10)
        assert a["n_empty"] == b["n_empty"]
    # and the NumPy reference
    ref_labels, ref_centers, ref_inertia, _ = reference.lloyd(X, init, tol=0)
    np.testing.assert_array_equal(dk.labels_.compute(), ref_labels)
    np.testing.assert_allclose(dk.cluster_centers_, ref_centers,
                               rtol=1e-10 if dtype == np.float64 else 1e-5)


def test_deterministic_and_column_chunks(client):
    X, true = _blobs(n=8_000)
    init = _near(true)
    a = DaskKMeans(6, init=init).fit(da.from_array(X, chunks=(1_000, 5)))
    b = DaskKMeans(6, init=init).fit(da.from_array(X, chunks=(1_000, 2)))  # rechunked
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


def test_matches_sklearn(client):
    from sklearn.cluster import KMeans as SkKMeans

    X, true = _blobs(n=10_000, d=8, k=10, seed=3)
    init = _near(true, seed=4)
    sk = SkKMeans(10, init=init, n_init=1, algorithm="lloyd", tol=0).fit(X)
    dk = DaskKMeans(10, init=init, tol=0).fit(da.from_array(X, chunks=2_500))
    np.testing.assert_allclose(dk.cluster_centers_, sk.cluster_centers_, rtol=1e-10)
    np.testing.assert_array_equal(dk.labels_.compute(), sk.labels_)
    assert dk.inertia_ == pytest.approx(sk.inertia_, rel=1e-10)


def test_sample_weight_dask_array(client):
    X, true = _blobs(n=12_000)
    w = np.random.default_rng(5).uniform(0, 3, size=len(X))
    init = _near(true)
    km = kmaot.KMeans(6, init=init).fit(X, sample_weight=w)
    Xd = da.from_array(X, chunks=(2_500, 5))
    dk = DaskKMeans(6, init=init).fit(Xd, sample_weight=da.from_array(w, chunks=4_000))
    _assert_same_fit(dk, km)
    dk_np = DaskKMeans(6, init=init).fit(Xd, sample_weight=w)  # numpy weights too
    np.testing.assert_array_equal(dk_np.cluster_centers_, dk.cluster_centers_)
    assert dk.score(Xd, sample_weight=w) == pytest.approx(km.score(X, sample_weight=w),
                                                          rel=1e-12)


def test_dataframe_of_numeric_columns(client):
    X, _ = _blobs(n=6_000, d=3)
    pdf = pd.DataFrame({"a": X[:, 0], "b": np.round(X[:, 1] * 100).astype(np.int64),
                        "c": X[:, 2].astype(np.float32)})
    ddf = dd.from_pandas(pdf, npartitions=4)
    values = pdf.to_numpy(dtype=np.float64)
    init = _init(values, 4)
    km = kmaot.KMeans(4, init=init).fit(values)
    dk = DaskKMeans(4, init=init).fit(ddf)
    _assert_same_fit(dk, km)
    np.testing.assert_array_equal(dk.predict(ddf).compute(), km.predict(values))


def test_predict_transform_are_lazy_dask_arrays(client):
    X, true = _blobs(n=5_000)
    init = _near(true)
    Xd = da.from_array(X, chunks=1_200)
    dk = DaskKMeans(6, init=init).fit(Xd)
    km = kmaot.KMeans(6, init=init).fit(X)
    pred = dk.predict(Xd)
    assert isinstance(pred, da.Array) and pred.dtype == np.int32
    np.testing.assert_array_equal(pred.compute(), km.predict(X))
    tr = dk.transform(Xd)
    assert isinstance(tr, da.Array) and tr.shape == (len(X), 6)
    np.testing.assert_allclose(tr.compute(), np.sqrt(reference.sq_distances(X, dk.cluster_centers_)),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dk.to_local().predict(X), km.predict(X))


def test_empty_cluster_relocated_as_in_memory(client):
    X, true = _blobs(n=6_000)
    init = _near(true)
    init[5] = 1e4  # far from every row: empty in the first iteration
    km = kmaot.KMeans(6, init=init).fit(X)
    dk = DaskKMeans(6, init=init).fit(da.from_array(X, chunks=1_000))
    assert km.iteration_stats_[0]["n_empty"] == 1
    assert dk.iteration_stats_[0]["n_empty"] == 1
    _assert_same_fit(dk, km)


def test_kmeans_parallel_finds_blobs(client):
    X, true = _blobs(n=12_000, d=4, k=8, seed=7)
    Xd = da.from_array(X, chunks=3_000).persist()
    dk = DaskKMeans(8, random_state=0).fit(Xd)
    # every true center has a fitted center close by
    d = np.sqrt(reference.sq_distances(true, dk.cluster_centers_)).min(axis=1)
    assert d.max() < 0.2
    again = DaskKMeans(8, random_state=0).fit(Xd)
    np.testing.assert_array_equal(again.cluster_centers_, dk.cluster_centers_)
    km = kmaot.KMeans(8, random_state=0, n_init=3).fit(X)
    assert dk.inertia_ <= km.inertia_ * (1 + 1e-9)
    rnd = DaskKMeans(8, init="random", n_init=1, random_state=0, max_iter=3).fit(Xd)
    assert rnd.cluster_centers_.shape == (8, 4) and np.isfinite(rnd.inertia_)


def test_kmeans_parallel_candidates_weighted_by_nearest_rows(client):
    from kmaot.dask import _DaskBackend

    X, _ = _blobs(n=3_000, d=3, k=5, seed=2)
    w = np.random.default_rng(3).uniform(0, 2, len(X))
    Xd = da.from_array(X, chunks=700)
    backend = _DaskBackend(Xd, w, 3)
    cands, weights = backend.kmeans_parallel(5, 10.0, 3, 123, X.mean(axis=0))
    assert 5 < len(cands) < 200 and weights.shape == (len(cands),)
    labels, _ = reference.assign(X, cands)
    np.testing.assert_allclose(weights, np.bincount(labels, w, minlength=len(cands)),
                               rtol=1e-12)
    # every candidate is a row of X
    assert reference.sq_distances(cands, X).min(axis=1).max() == 0


def _die_once_factory(marker_dir):
    def maybe_die(x, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            with open(os.path.join(marker_dir, "calls"), "a") as fh:
                fh.write("x")
            with open(os.path.join(marker_dir, "calls")) as fh:
                calls = len(fh.read())
            if calls == 3:  # the moments pass, iteration 1, then die in iteration 2
                os.kill(os.getpid(), signal.SIGKILL)
        return x
    return maybe_die


def test_worker_killed_mid_fit(client, tmp_path):
    X, true = _blobs(n=10_000)
    init = _near(true)
    pids_before = set(client.run(os.getpid).values())
    # not persisted: every pass computes the blocks again, and computing block 2 in
    # the second Lloyd iteration kills the worker that runs it
    Xd = da.from_array(X, chunks=2_000).map_blocks(_die_once_factory(str(tmp_path)),
                                                     dtype=X.dtype)
    km = kmaot.KMeans(6, init=init, tol=0).fit(X)
    try:
        dk = DaskKMeans(6, init=init, tol=0).fit(Xd)
    except distributed.KilledWorker:  # allowed: the fit raises rather than lies
        dk = None
    calls = len((tmp_path / "calls").read_text())
    assert calls >= 4  # the killed task ran again
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != pids_before  # a worker was replaced
    if dk is not None:
        _assert_same_fit(dk, km)


def test_bad_input(client):
    X, _ = _blobs(n=2_000)
    Xd = da.from_array(X, chunks=500)
    with pytest.raises(TypeError, match="dask.array.Array"):
        DaskKMeans(3).fit(X)
    with pytest.raises(TypeError, match="column 'name'"):
        DaskKMeans(3).fit(dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]}),
                                         npartitions=1))
    with pytest.raises(ValueError, match="2-D"):
        DaskKMeans(3).fit(Xd[:, 0])
    with pytest.raises(ValueError, match="n_samples=2000 should be >= n_clusters=3000"):
        DaskKMeans(3000).fit(Xd)
    bad = X.copy()
    bad[1234, 2] = np.nan
    with pytest.raises(ValueError, match="first at row 1234"):
        DaskKMeans(3).fit(da.from_array(bad, chunks=500))
    w = np.ones(len(X))
    w[777] = -1
    with pytest.raises(ValueError, match="negative values \\(first at row 777\\)"):
        DaskKMeans(3).fit(Xd, sample_weight=da.from_array(w, chunks=300))
    with pytest.raises(ValueError, match="sample_weight sums to 0"):
        DaskKMeans(3).fit(Xd, sample_weight=da.zeros(len(X), chunks=500))
    with pytest.raises(ValueError, match="shape"):
        DaskKMeans(3).fit(Xd, sample_weight=da.ones(10, chunks=5))
    with pytest.raises(ValueError, match="init="):
        DaskKMeans(3, init="k-means++").fit(Xd)
    with pytest.raises(ValueError, match="oversampling_factor"):
        DaskKMeans(3, oversampling_factor=0).fit(Xd)
    with pytest.raises(NotFittedError):
        DaskKMeans(3).predict(Xd)
    dk = DaskKMeans(3, random_state=0).fit(Xd)
    with pytest.raises(ValueError, match="3 features, but KMeans is expecting 5"):
        dk.predict(Xd[:, :3])
    bad_pred = dk.predict(da.from_array(bad, chunks=500))
    with pytest.raises(ValueError, match="first at row 1234"):
        bad_pred.compute()


def test_params_and_clone():
    from sklearn.base import clone

    est = DaskKMeans(5, init="random", split_every=4)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert "split_every=4" in repr(est)
