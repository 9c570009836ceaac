"""standardize=True: one streaming pass for mean and scale, applied batch by batch;
compared with NumPy (standardize first, then cluster) and with scikit-learn's
StandardScaler + KMeans."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kmaot import KMeans
from kmaot._engine import Engine
from kmaot._sources import NpyFile, as_source
from kmaot._standardize import StandardizedSource, fit_standardizer, standardized

from reference import lloyd as ref_lloyd, write_normal_npy


def numpy_standardize(X):
    """The reference: float64 mean and population standard deviation per feature (1
    where it is 0), applied in float64 and rounded to the dtype of X."""
    X64 = np.asarray(X, dtype=np.float64)
    mean = X64.mean(axis=0)
    scale = X64.std(axis=0)
    scale[scale == 0] = 1.0
    return ((X64 - mean) / scale).astype(X.dtype), mean, scale


def _data(dtype=np.float64, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5, 5, size=(5, 4))
    X = centers[rng.integers(5, size=n)] + 0.5 * rng.standard_normal((n, 4))
    X = X * np.array([1.0, 1000.0, 0.01, 50.0]) + np.array([3.0, -2000.0, 0.5, 10.0])
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 7, 1000])
def test_mean_and_scale_match_numpy(tmp_path, dtype, batch_size):
    X = _data(dtype)
    X[:, 2] = 4.25  # a constant feature: scale 1, not 0
    np.save(tmp_path / "x.npy", X)
    _, mean, scale = numpy_standardize(X)
    for src in (as_source(X), NpyFile(tmp_path / "x.npy")):
        with Engine(2) as engine:
            m, s = fit_standardizer(engine, src, batch_size)
        assert m.dtype == np.float64 and s.dtype == np.float64
        np.testing.assert_allclose(m, mean, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(s, scale, rtol=1e-9)
        assert s[2] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_equals_fit_of_numpy_standardized_data(dtype):
    """Same init in the standardized space: same labels, centers, inertia, n_iter as
    the NumPy reference Lloyd on NumPy-standardized data."""
    X = _data(dtype)
    Xs, _, _ = numpy_standardize(X)
    init = Xs[[0, 500, 1000, 1500, 2000]]
    km = KMeans(5, init=init, standardize=True).fit(X)
    labels, centers, inertia, n_iter = ref_lloyd(Xs, init)
    np.testing.assert_array_equal(km.labels_, labels)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(km.cluster_centers_, centers, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(km.inertia_, inertia, rtol=rtol)
    assert km.n_iter_ == n_iter
    assert km.cluster_centers_.dtype == dtype


def test_same_labels_as_sklearn_scaler_pipeline():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.cluster import KMeans as SKKMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _data(np.float64, n=4000, seed=3)
    Xs, _, _ = numpy_standardize(X)
    init = Xs[[1, 800, 1600, 2400, 3200]]
    ours = KMeans(5, init=init, standardize=True).fit(X)
    pipe = make_pipeline(StandardScaler(), SKKMeans(5, init=init, n_init=1,
                                                    algorithm="lloyd")).fit(X)
    theirs = pipe[-1]
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-9)
    np.testing.assert_allclose(ours.mean_, pipe[0].mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, pipe[0].scale_, rtol=1e-12)
    X_new = _data(np.float64, n=500, seed=4)
    np.testing.assert_array_equal(ours.predict(X_new), pipe.predict(X_new))
    np.testing.assert_allclose(ours.transform(X_new), pipe.transform(X_new), rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize("k, algorithm", [(5, "auto"), (20, "auto"), (20, "lloyd")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_to_kmaot_on_standardized_array(dtype, k, algorithm):
    """standardize=True is exactly 'standardize with (mean_, scale_), then fit' (k=20:
    the bounded search of algorithm='auto' on in-memory data)."""
    X = _data(dtype)
    km = KMeans(k, random_state=0, standardize=True, algorithm=algorithm).fit(X)
    Xs = ((X.astype(np.float64) - km.mean_) / km.scale_).astype(dtype)
    plain = KMeans(k, random_state=0, algorithm=algorithm).fit(Xs)
    np.testing.assert_array_equal(km.cluster_centers_, plain.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, plain.labels_)
    assert km.inertia_ == plain.inertia_ and km.n_iter_ == plain.n_iter_
    np.testing.assert_array_equal(km.transform(X), plain.transform(Xs))
    assert km.score(X) == plain.score(Xs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_file_fit_equals_in_memory_fit_for_any_batch(tmp_path, dtype):
    X = _data(dtype, n=5000)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "a.npy", X[:1234])
    np.save(tmp_path / "b.npy", X[1234:])
    # files and shards default to init='k-means||' (init='auto')
    ref = KMeans(5, random_state=1, standardize=True, init="k-means||").fit(X)
    for data, bs, threads in ((str(tmp_path / "x.npy"), 333, 2),
                              (str(tmp_path / "x.npy"), None, 1),
                              ([str(tmp_path / "a.npy"), str(tmp_path / "b.npy")], 1000, 2)):
        km = KMeans(5, random_state=1, standardize=True, batch_size=bs,
                    n_threads=threads).fit(data)
        np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
        np.testing.assert_array_equal(km.mean_, ref.mean_)
        np.testing.assert_array_equal(km.scale_, ref.scale_)
        assert km.inertia_ == ref.inertia_
        np.testing.assert_array_equal(km.predict(data), ref.labels_)


def test_predict_paths_apply_the_scaling():
    X = _data(np.float32)
    km = KMeans(5, random_state=0, standardize=True).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)        # pool path
    np.testing.assert_array_equal(km.predict(X[:3]), km.labels_[:3])  # direct small path
    np.testing.assert_array_equal(km.predict(X[:100]), km.labels_[:100])
    np.testing.assert_array_equal(km.predict(X[:5].astype(np.float64)), km.labels_[:5])
    # distances in the standardized space, to the (standardized) centers
    Xs = (X.astype(np.float64) - km.mean_) / km.scale_
    d = np.sqrt(((Xs[:, None, :] - km.cluster_centers_[None].astype(np.float64)) ** 2).sum(2))
    np.testing.assert_allclose(km.transform(X), d, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.argmin(d, axis=1), km.labels_)


def test_centers_in_original_units_are_cluster_means():
    X = _data(np.float64)
    km = KMeans(5, random_state=0, standardize=True).fit(X)
    original = km.cluster_centers_ * km.scale_ + km.mean_
    for j in range(5):
        np.testing.assert_allclose(original[j], X[km.labels_ == j].mean(axis=0), rtol=1e-9,
                                   atol=1e-9)


def test_refit_without_standardize_forgets_it():
    X = _data(np.float64)
    km = KMeans(5, random_state=0, standardize=True).fit(X)
    assert hasattr(km, "mean_")
    km.set_params(standardize=False).fit(X)
    assert not hasattr(km, "mean_") and not hasattr(km, "scale_")
    np.testing.assert_array_equal(km.predict(X), km.labels_)


def test_file_sources_are_standardized_batch_by_batch(tmp_path):
    X = _data(np.float32, n=1000)
    np.save(tmp_path / "x.npy", X)
    src = standardized(NpyFile(tmp_path / "x.npy"), np.zeros(4), np.ones(4) * 2)
    assert isinstance(src, StandardizedSource)
    sizes = [b.shape[0] for _, b in src.batches(300)]
    assert sizes == [300, 300, 300, 100]
    first = next(src.batches(300))[1]
    assert first.dtype == np.float32 and first.flags.c_contiguous
    np.testing.assert_array_equal(first, (X[:300].astype(np.float64) / 2).astype(np.float32))
    np.testing.assert_array_equal(src.take([5, 999]),
                                  (X[[5, 999]].astype(np.float64) / 2).astype(np.float32))


def test_bad_values():
    X = _data(np.float64)
    with pytest.raises(TypeError, match="standardize"):
        KMeans(3, standardize="yes").fit(X)
    Xn = X.copy()
    Xn[17, 1] = np.nan
    with pytest.raises(ValueError, match="row 17"):
        KMeans(3, standardize=True).fit(Xn)
    km = KMeans(3, standardize=True, random_state=0).fit(X)
    bad = X[:10].copy()
    bad[4, 0] = np.inf
    with pytest.raises(ValueError, match="row 4"):
        km.predict(bad)
    big = np.vstack([X, bad])
    with pytest.raises(ValueError, match=f"row {len(X) + 4}"):
        km.predict(big)


MEMORY_SCRIPT = r"""
import json, sys
import numpy as np
from kmaot import KMeans
from kmaot._memory import PeakAnon
np.ones(1)
with PeakAnon(interval=0.002) as mem:
    km = KMeans(8, random_state=0, batch_size=4096, max_iter=3, n_threads=2,
                standardize=True).fit(sys.argv[1])
print(json.dumps({"start": mem.start, "peak": mem.peak}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc")
def test_standardized_file_fit_memory_is_bounded(tmp_path):
    n, d = 2_000_000, 16  # 122 MiB of float32
    path = tmp_path / "big.npy"
    write_normal_npy(path, n, d, scale=7, offset=3)
    res = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path)], cwd="/",
                         capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    grown = r["peak"] - r["start"]
    assert grown < 40 * 2**20, f"anonymous memory grew by {grown / 2**20:.1f} MiB"
