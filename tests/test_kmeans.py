"""KMeans against scikit-learn and against the NumPy reference, same initial centers."""
import numpy as np
import pytest

import kmaot
from kmaot import KMeans
from kmaot import _kmeans as _kmeans_mod

from reference import lloyd as ref_lloyd

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.cluster import KMeans as SKKMeans  # noqa: E402
from sklearn.datasets import load_digits, load_sample_image, make_blobs  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def _assert_same_labels(X, ours, theirs, centers):
    """Labels must be equal.  For float32 data, scikit-learn computes distances as
    ||x||^2 - 2<x, c> + ||c||^2 in float32, which is exact only to about
    1e-7 * (||x||^2 + ||c||^2), whereas kmaot's labels are the exact float64 argmin:
    a row may differ only if its two candidate centers are that close to a tie."""
    diff = np.flatnonzero(ours != theirs)
    if X.dtype == np.float64 or diff.size == 0:
        np.testing.assert_array_equal(ours, theirs)
        return
    assert diff.size <= 1e-4 * len(X), f"{diff.size} labels differ"
    x = X[diff].astype(np.float64)
    c = centers.astype(np.float64)
    d_ours = ((x - c[ours[diff]]) ** 2).sum(1)
    d_theirs = ((x - c[theirs[diff]]) ** 2).sum(1)
    scale = (x ** 2).sum(1) + (c ** 2).sum(1).max()
    assert (d_ours <= d_theirs + 1e-12).all(), "kmaot's label is not the nearest center"
    assert (np.abs(d_ours - d_theirs) <= 1e-6 * scale).all(), "not a float32 near-tie"


def _compare_with_sklearn(X, init, max_iter=300, tol=1e-4, sample_weight=None,
                          **kw):
    ours = KMeans(len(init), init=init, max_iter=max_iter, tol=tol, **kw).fit(
        X, sample_weight=sample_weight)
    ref = SKKMeans(len(init), init=init, n_init=1, max_iter=max_iter, tol=tol,
                   algorithm="lloyd").fit(X, sample_weight=sample_weight)
    _assert_same_labels(X, ours.labels_, ref.labels_, ours.cluster_centers_)
    rtol = 1e-4 if X.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=rtol)
    assert ours.n_iter_ == ref.n_iter_
    return ours, ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blobs_match_sklearn(dtype):
    X, _ = make_blobs(5000, 10, centers=8, cluster_std=2.0, random_state=0)
    X = X.astype(dtype)
    init = X[np.random.default_rng(0).choice(len(X), 8, replace=False)]
    ours, _ = _compare_with_sklearn(X, init)
    assert ours.cluster_centers_.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blobs_weighted_match_sklearn(dtype):
    X, _ = make_blobs(3000, 4, centers=5, cluster_std=1.5, random_state=1)
    X = X.astype(dtype)
    w = np.random.default_rng(1).uniform(0.2, 4.0, len(X))
    init = X[:5].copy()
    _compare_with_sklearn(X, init, sample_weight=w)


def test_digits_match_sklearn():
    X = load_digits().data  # float64, 1797 x 64
    init = X[np.random.default_rng(2).choice(len(X), 10, replace=False)]
    _compare_with_sklearn(X, init)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sample_image_pixels_match_sklearn(dtype):
    """The pixels of scikit-learn's sample photograph (colour quantization).

    8-bit pixels lie on a lattice, and so do initial centers drawn from them: many
    pixels are then exactly equidistant from two centers, and scikit-learn breaks
    those ties by rounding noise while kmaot takes the lowest index.  The initial
    centers are therefore moved off the lattice (by < 1e-3) so that both see the same
    problem; every pixel is used as it is.
    """
    img = load_sample_image("china.jpg")
    X = (img.reshape(-1, 3) / 255.0).astype(dtype)[::5]  # ~55k pixels
    rng = np.random.default_rng(3)
    init = X[rng.choice(len(X), 16, replace=False)] + rng.uniform(-1e-3, 1e-3, (16, 3))
    _compare_with_sklearn(X, init.astype(dtype), max_iter=20)


def test_matches_numpy_reference():
    X, _ = make_blobs(800, 3, centers=4, random_state=4)
    init = X[:4].copy()
    w = np.random.default_rng(0).uniform(0.5, 2, len(X))
    labels, centers, inertia, n_iter = ref_lloyd(X, init, sample_weight=w)
    km = KMeans(4, init=init).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.labels_, labels)
    np.testing.assert_allclose(km.cluster_centers_, centers, rtol=1e-10)
    np.testing.assert_allclose(km.inertia_, inertia, rtol=1e-10)
    assert km.n_iter_ == n_iter


def test_dtypes_preserved_and_converted():
    X, _ = make_blobs(500, 3, centers=3, random_state=0)
    for in_dtype, out_dtype in [(np.float32, np.float32), (np.float64, np.float64),
                                (np.int64, np.float64), (np.float16, np.float64),
                                (np.int8, np.float64)]:
        km = KMeans(3, random_state=0).fit((X * 10).astype(in_dtype))
        assert km.cluster_centers_.dtype == out_dtype
        assert km.transform((X * 10).astype(in_dtype)).dtype == out_dtype
        assert km.predict((X * 10).astype(in_dtype)).dtype == np.int32


def test_weights_equal_repeated_rows():
    X, _ = make_blobs(400, 2, centers=3, random_state=5)
    w = np.random.default_rng(5).integers(1, 4, len(X))
    init = X[:3].copy()
    a = KMeans(3, init=init).fit(X, sample_weight=w)
    b = KMeans(3, init=init).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-12)


def test_predict_transform_score_fit_predict(blobs):
    X, _ = blobs
    km = KMeans(6, random_state=0).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    D = km.transform(X)
    ref_D = np.sqrt(((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(D, ref_D, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(-km.score(X), km.inertia_, rtol=1e-12)
    np.testing.assert_array_equal(KMeans(6, random_state=0).fit_predict(X), km.labels_)
    np.testing.assert_allclose(KMeans(6, random_state=0).fit_transform(X), D)
    assert km.n_features_in_ == X.shape[1]
    assert km.n_iter_ == len(km.iteration_stats_)
    assert set(km.iteration_stats_[0]) >= {"iteration", "inertia", "center_shift", "seconds"}


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_inits_find_the_blobs(blobs, init):
    X, true_centers = blobs
    km = KMeans(6, init=init, random_state=0).fit(X)
    # every true center has a fitted center nearby
    d = np.sqrt(((true_centers[:, None] - km.cluster_centers_[None]) ** 2).sum(-1))
    assert (d.min(axis=1) < 0.3).all()
    ref = SKKMeans(6, init=init, random_state=0, n_init=1 if init != "random" else 10).fit(X)
    assert km.inertia_ <= ref.inertia_ * (1 + 1e-6)


def test_n_init_keeps_best():
    X, _ = make_blobs(2000, 2, centers=10, cluster_std=2.5, random_state=3)
    one = [KMeans(10, init="random", n_init=1, random_state=s).fit(X).inertia_
           for s in range(5)]
    best = KMeans(10, init="random", n_init=20, random_state=0).fit(X).inertia_
    assert best <= min(one) + 1e-9


def test_random_state_reproducible(blobs):
    X, _ = blobs
    a = KMeans(6, random_state=42).fit(X)
    b = KMeans(6, random_state=42).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_empty_cluster_relocated_deterministically():
    """A center far from all data gets no points; it takes the point farthest from its
    center, as scikit-learn does."""
    X = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10], [30, 30.0]])
    init = np.array([[0, 0], [10, 10], [1000, 1000.0]])
    km = KMeans(3, init=init, max_iter=1, tol=0).fit(X)
    assert km.iteration_stats_[0]["n_empty"] == 1
    # the farthest point (30, 30) left cluster 1 and became cluster 2
    np.testing.assert_allclose(km.cluster_centers_[2], [30, 30])
    np.testing.assert_allclose(km.cluster_centers_[1], [10.05, 10])
    ref = SKKMeans(3, init=init, n_init=1, max_iter=1, tol=0, algorithm="lloyd").fit(X)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_)
    again = KMeans(3, init=init, max_iter=1, tol=0).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, km.cluster_centers_)


def test_fewer_distinct_clusters_warns():
    X = np.repeat(np.array([[0.0, 0], [1, 1]]), 10, axis=0)
    with pytest.warns(kmaot.ConvergenceWarning, match="distinct clusters"):
        KMeans(3, random_state=0).fit(X)


def test_sklearn_protocol(blobs):
    X, _ = blobs
    km = KMeans(5, max_iter=50, random_state=1, batch_size=100)
    params = km.get_params()
    assert params["n_clusters"] == 5 and params["batch_size"] == 100
    c = clone(km)
    assert c.get_params() == params and c is not km
    km.set_params(n_clusters=6)
    assert km.n_clusters == 6
    with pytest.raises(ValueError, match="invalid parameter"):
        km.set_params(nope=1)
    pipe = make_pipeline(StandardScaler(), KMeans(6, random_state=0)).fit(X)
    assert pipe.predict(X).shape == (len(X),)
    assert "n_clusters=6" in repr(km)


def test_params_read_without_inspect_match_inspect():
    """_base reads __init__'s code object (no ``inspect`` at import): same names and
    defaults as inspect.signature, for every estimator and for keyword-only parameters."""
    import inspect

    from kmaot._base import _EMPTY, ParamsMixin, _init_defaults

    class KwOnly(ParamsMixin):
        def __init__(self, a, b=2, *, c, d=None, **extra):
            self.a, self.b, self.c, self.d = a, b, c, d

    classes = [KMeans, kmaot.MiniBatchKMeans, KwOnly]
    try:
        from kmaot.dask import KMeans as DaskKMeans
        classes.append(DaskKMeans)
    except ImportError:  # the dask extra is optional
        pass
    for cls in classes:
        sig = inspect.signature(cls.__init__).parameters.values()
        expected = {p.name: (_EMPTY if p.default is p.empty else p.default)
                    for p in sig if p.name != "self" and p.kind != p.VAR_KEYWORD}
        got = _init_defaults(cls)
        assert list(got) == list(expected)
        assert all(got[n] is expected[n] or got[n] == expected[n] for n in expected)
    est = KwOnly(1, c=3)
    assert est.get_params() == {"a": 1, "b": 2, "c": 3, "d": None}
    assert repr(est) == "KwOnly(a=1, c=3)"


def test_verbose_prints(blobs, capsys):
    X, _ = blobs
    KMeans(6, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Iteration 0, inertia" in out and "Converged at iteration" in out


def test_float32_far_from_origin_inertia_exact():
    """Issue #9354 of scikit-learn: GEMM distances lose float32 accuracy far from 0."""
    rng = np.random.default_rng(0)
    X = (1e4 + rng.standard_normal((20000, 8))).astype(np.float32)
    km = KMeans(4, random_state=0, max_iter=20).fit(X)
    X64 = X.astype(np.float64)
    C64 = km.cluster_centers_.astype(np.float64)
    d2 = ((X64[:, None] - C64[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.labels_, d2.argmin(1))
    assert abs(km.inertia_ - d2.min(1).sum()) <= 1e-6 * d2.min(1).sum()


def test_predict_small_path_equals_general_path(blobs):
    X, _ = blobs
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        km = KMeans(6, random_state=0).fit(Xd)
        e = _kmeans_mod._exact_rows(6, Xd.shape[1])   # exact rows, then the blocked kernel
        assert 8 <= e < 4096
        for rows in (1, 2, 8, 9, e, e + 1, 31, 32, 33, 4096, 4097):  # exact/fast/general
            Xs = np.ascontiguousarray(np.tile(Xd, (2, 1))[:rows])
            np.testing.assert_array_equal(km.predict(Xs), km.predict(Xs.astype(np.float16)))
        np.testing.assert_array_equal(km.predict(Xd[:1]), km.labels_[:1])
        np.testing.assert_array_equal(km.predict(np.asfortranarray(Xd[:3])), km.labels_[:3])
        for rows in (2, e, e + 1):  # the exact and the fast path refuse NaN and inf
            for value in (np.nan, np.inf):
                bad = Xd[:rows].copy()
                bad[1, 0] = value
                with pytest.raises(ValueError, match="row 1"):
                    km.predict(bad)
        with pytest.raises(ValueError, match="features"):
            km.predict(Xd[:1, :3].copy())
        # replacing the centers after fit is honoured
        km.cluster_centers_ = km.cluster_centers_[::-1].copy()
        np.testing.assert_array_equal(km.predict(Xd[:50]), 5 - km.labels_[:50])


def test_predict_breaks_rounded_ties_alike_for_one_row_and_many():
    """Rows at the same distance from two centers up to rounding (center 1 is center 0
    with two features swapped; the rows have those features equal): predict on one row
    (the exact kernel), on a few and on many (the blocked kernel and its exact recheck)
    gives each row one label, the argmin of the reference's sum in kmaot's documented
    order.  Before one exact expression served every kernel, a third of them differed."""
    from reference import assign

    rng = np.random.default_rng(7)
    d, k = 24, 10
    C0 = rng.standard_normal((k, d)) * 3
    C0[1] = C0[0]
    C0[1, [3, 17]] = C0[0, [17, 3]]
    X = (rng.standard_normal((5000, d)) * 0.05 + C0[0]).astype(np.float32)
    X[:, 17] = X[:, 3]
    ref = assign(X, C0)[0]
    assert 500 < (ref == 1).sum() < 4500
    km = KMeans(k, init=C0, n_init=1, max_iter=1).fit(X)
    km.cluster_centers_ = C0.copy()
    np.testing.assert_array_equal(km.predict(X), ref)
    one = np.array([km.predict(X[i:i + 1])[0] for i in range(200)])
    np.testing.assert_array_equal(one, ref[:200])
    np.testing.assert_array_equal(km.predict(X[:5]), ref[:5])


def test_fit_from_given_centers_does_not_import_numpy_random():
    """Cold start: a fit from an array of initial centers with the default random_state
    has nothing random to do, and does not pay for importing numpy.random (~15 ms)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "before = 'numpy.random' in sys.modules\n"
        "import kmaot\n"
        "X = np.arange(600, dtype=np.float32).reshape(200, 3) % 17\n"
        "km = kmaot.KMeans(3, init=X[:3].copy(), n_init=1).fit(X)\n"
        "km.predict(X[:5])\n"
        "print(before, 'numpy.random' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True).stdout.split()
    assert out == ["False", "False"]
