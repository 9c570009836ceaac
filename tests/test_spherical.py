"""Spherical k-means (metric='cosine') against the NumPy reference."""
import numpy as np
import pytest

from kmaot import KMeans, MiniBatchKMeans

from reference import minibatch_update, spherical_kmeans, unit_rows

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402


def _directions(n=3000, d=8, k=5, seed=0, dtype=np.float64):
    """Rows scattered around k directions, with random lengths."""
    rng = np.random.default_rng(seed)
    dirs = unit_rows(rng.standard_normal((k, d)))
    X = dirs[rng.integers(k, size=n)] + 0.25 * rng.standard_normal((n, d))
    X *= rng.uniform(0.1, 50, (n, 1))
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_cosine_matches_reference(dtype, weighted):
    X = _directions(dtype=dtype)
    init = X[:5].copy()
    w = np.random.default_rng(1).uniform(0.2, 3, len(X)) if weighted else None
    km = KMeans(5, init=init, metric="cosine", tol=0).fit(X, sample_weight=w)
    labels, C, inertia, n_iter = spherical_kmeans(X, init, sample_weight=w)
    np.testing.assert_array_equal(km.labels_, labels)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(km.cluster_centers_, C, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(km.inertia_, inertia, rtol=rtol)
    assert km.n_iter_ == n_iter
    assert km.cluster_centers_.dtype == dtype
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_.astype(float), axis=1), 1,
                               rtol=1e-6)
    Xn = unit_rows(X)
    np.testing.assert_array_equal(km.predict(X), np.argmax(Xn @ C.T, axis=1))
    np.testing.assert_allclose(km.transform(X[:20]), 1 - Xn[:20] @ C.T, atol=rtol)
    np.testing.assert_allclose(km.score(X, sample_weight=w), -inertia, rtol=rtol)


def test_row_lengths_do_not_matter():
    X = _directions(seed=2)
    scaled = X * np.random.default_rng(3).uniform(0.01, 100, (len(X), 1))
    a = KMeans(5, metric="cosine", random_state=0).fit(X)
    b = KMeans(5, metric="cosine", random_state=0).fit(scaled)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9)


def test_file_equals_memory_and_parallel_init(tmp_path):
    X = _directions(seed=4, dtype=np.float32)
    path = str(tmp_path / "X.npy")
    np.save(path, X)
    for init in ("k-means++", "k-means||"):
        a = KMeans(5, metric="cosine", init=init, random_state=0).fit(X)
        b = KMeans(5, metric="cosine", init=init, random_state=0, batch_size=333).fit(path)
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
        assert a.inertia_ == b.inertia_
        np.testing.assert_array_equal(b.predict(path), a.labels_)


def test_minibatch_cosine_partial_fit_matches_reference():
    """Centers are the normalised running means; rows go to the most similar one."""
    X = _directions(seed=5)
    init = X[:5].copy()
    km = MiniBatchKMeans(5, init=init, metric="cosine", reassignment_ratio=0.0)
    M = unit_rows(init)
    ws = np.zeros(5)
    for s in range(0, len(X), 300):
        km.partial_fit(X[s:s + 300])
        Xn = unit_rows(X[s:s + 300])
        labels = np.argmax(Xn @ unit_rows(M).T, axis=1)
        M, ws, _ = minibatch_update(Xn, labels, M, ws)
    np.testing.assert_allclose(km.cluster_centers_, unit_rows(M), rtol=1e-10, atol=1e-12)
    cos = (unit_rows(X[-300:]) * unit_rows(M)[km.labels_]).sum(1)
    np.testing.assert_allclose(km.inertia_, (1 - cos).sum(), rtol=1e-9)


def test_minibatch_cosine_fit_quality(tmp_path):
    X = _directions(n=8000, seed=6, dtype=np.float32)
    full = KMeans(5, metric="cosine", random_state=0, n_init=3).fit(X)
    mb = MiniBatchKMeans(5, metric="cosine", random_state=0, n_init=3).fit(X)
    assert mb.inertia_ <= 1.05 * full.inertia_
    np.testing.assert_allclose(np.linalg.norm(mb.cluster_centers_, axis=1), 1, rtol=1e-6)
    path = str(tmp_path / "X.npy")
    np.save(path, X)
    f = MiniBatchKMeans(5, metric="cosine", random_state=0, n_init=3).fit(path)
    np.testing.assert_array_equal(f.cluster_centers_, mb.cluster_centers_)


@pytest.mark.parametrize("Est", [KMeans, MiniBatchKMeans])
def test_zero_rows_refused(Est, tmp_path):
    X = _directions(n=500, seed=7)
    X[321] = 0
    with pytest.raises(ValueError, match="row of zeros.*row 321"):
        Est(3, metric="cosine", random_state=0).fit(X)
    path = str(tmp_path / "X.npy")
    np.save(path, X)
    with pytest.raises(ValueError, match="row 321"):
        Est(3, metric="cosine", random_state=0).fit(path)
    X[321] = 1
    km = Est(3, metric="cosine", random_state=0).fit(X)
    X[7] = 0
    with pytest.raises(ValueError, match="row 7"):
        km.predict(X)
    with pytest.raises(ValueError, match="zeros"):
        Est(3, metric="cosine", init=np.zeros((3, 8))).fit(X[8:])


def test_nan_still_named_and_metric_validated():
    X = _directions(n=500, seed=8)
    X[11, 3] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 11"):
        KMeans(3, metric="cosine").fit(X)
    with pytest.raises(ValueError, match="metric"):
        KMeans(3, metric="angular").fit(_directions(n=50))
    assert clone(KMeans(metric="cosine")).get_params()["metric"] == "cosine"


def test_huge_finite_rows_are_normalised():
    X = np.array([[1e300, 1e300], [1e300, -1e300], [-1.0, 1.0], [2.0, 2.0]])
    km = KMeans(2, metric="cosine", init=np.array([[1.0, 1.0], [1.0, -1.0]])).fit(X)
    assert km.labels_.tolist() == [0, 1, 1, 0] or km.labels_.tolist() == [0, 1, 0, 0]
    assert np.isfinite(km.cluster_centers_).all()


def test_saved_and_pickled_models_keep_the_metric(tmp_path):
    import pickle

    import kmaot

    X = _directions(n=1000, seed=9)
    km = KMeans(4, metric="cosine", random_state=0).fit(X)
    km.save(tmp_path / "m.npz")
    loaded = kmaot.load(tmp_path / "m.npz")
    assert loaded.metric == "cosine"
    np.testing.assert_array_equal(loaded.predict(X * 7.0), km.labels_)
    for metric in ("cosine", "euclidean"):
        mb = MiniBatchKMeans(4, metric=metric, random_state=0).fit(X)
        mb.predict(X[:3])  # euclidean: caches the compiled kernel, which pickling drops
        again = pickle.loads(pickle.dumps(mb))
        np.testing.assert_array_equal(again.predict(X), mb.predict(X))
        np.testing.assert_allclose(again.transform(X[:5]), mb.transform(X[:5]))


def test_checkpoint_of_another_metric_is_refused(tmp_path, monkeypatch):
    """A checkpoint written by a Euclidean fit is not resumed by a cosine fit."""
    import kmaot._kmeans as kmeans_module

    class _Stop(Exception):
        pass

    def interrupted(*args, **kw):  # saves once, then the fit "dies"
        kw["save"](np.asarray(args[2]), [])
        raise _Stop

    X = _directions(n=600, seed=10)
    path = tmp_path / "ck.npz"
    monkeypatch.setattr(kmeans_module, "lloyd", interrupted)
    with pytest.raises(_Stop):
        KMeans(3, random_state=0, max_iter=2, tol=0).fit(X, checkpoint=path)
    monkeypatch.undo()
    assert path.exists()
    with pytest.raises(ValueError, match="metric='euclidean' in the checkpoint, 'cosine' now"):
        KMeans(3, random_state=0, max_iter=2, tol=0, metric="cosine").fit(X, checkpoint=path)
