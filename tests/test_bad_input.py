"""Bad input to KMeans.fit / predict / transform / score: every rejection is checked for
its exception type and for the part of its message a user acts on; inputs that kmaot
handles (odd memory layouts, byte orders, integer files, ...) are checked to give the
same result as the plain C-contiguous float64 array.

All data is tiny: the whole module runs in a few seconds.
"""
import os
import pickle
import re
import time
import tracemalloc

import numpy as np
import pytest

import kmaot
from kmaot import KMeans, NotFittedError
from kmaot import _kmeans as _kmeans_mod

SEED = 0


def _data(n=60, d=3, k=3, seed=0):
    """Small well separated blobs, float64, C-contiguous."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    labels = np.arange(n) % k
    return centers[labels] + 0.5 * rng.standard_normal((n, d))


@pytest.fixture
def X():
    return _data()


@pytest.fixture
def fitted(X):
    return KMeans(n_clusters=3, random_state=SEED).fit(X)


def _path_re(path):
    return re.escape(os.fspath(path))


def _write_header(path, shape, descr="<f8", fortran_order=False, payload=b""):
    """A hand-made .npy: a version 1.0 header for `shape`, then `payload` bytes."""
    with open(path, "wb") as fp:
        np.lib.format.write_array_header_1_0(
            fp, {"descr": descr, "fortran_order": fortran_order, "shape": shape})
        fp.write(payload)
    return path


# --------------------------------------------------------------------------- shape
class TestShape:
    def test_1d(self, X):
        with pytest.raises(ValueError, match=r"must be 2-D.*ndim=1.*reshape\(-1, 1\)"):
            KMeans(2).fit(X[:, 0])

    def test_3d(self, X):
        with pytest.raises(ValueError, match=r"must be 2-D.*ndim=3 with shape \(60, 3, 1\)"):
            KMeans(2).fit(X[:, :, None])

    def test_0d(self):
        with pytest.raises(ValueError, match=r"must be 2-D.*ndim=0"):
            KMeans(1).fit(np.float64(3.0))

    def test_zero_samples(self):
        with pytest.raises(ValueError, match=r"0 samples \(shape \(0, 3\)\)"):
            KMeans(2).fit(np.empty((0, 3)))

    def test_zero_features(self):
        with pytest.raises(ValueError, match=r"0 features \(shape \(5, 0\)\)"):
            KMeans(2).fit(np.empty((5, 0)))

    def test_ragged_list(self):
        with pytest.raises(TypeError, match="could not be converted to a numeric array"):
            KMeans(1).fit([[1.0, 2.0], [3.0]])


# ---------------------------------------------------------------- non-finite values
class TestNonFiniteInMemory:
    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
    @pytest.mark.parametrize("row", [0, 7, 59])
    def test_fit_names_row(self, X, value, row):
        X[row, 1] = value
        with pytest.raises(ValueError, match=rf"X contains NaN or infinity \(first at row {row}\)"):
            KMeans(3, random_state=SEED).fit(X)

    def test_fit_names_first_bad_row(self, X):
        X[41, 0] = np.nan
        X[12, 2] = np.inf
        with pytest.raises(ValueError, match=r"first at row 12\)"):
            KMeans(3, random_state=SEED).fit(X)

    @pytest.mark.parametrize("n_threads", [1, 4])
    def test_fit_late_batch_in_memory(self, X, n_threads):
        X[53, 2] = np.nan
        km = KMeans(3, random_state=SEED, batch_size=5, n_threads=n_threads)
        with pytest.raises(ValueError, match=r"first at row 53\)"):
            km.fit(X)

    def test_fit_float32(self, X):
        X32 = X.astype(np.float32)
        X32[33, 0] = np.nan
        with pytest.raises(ValueError, match=r"first at row 33\)"):
            KMeans(3, random_state=SEED).fit(X32)

    def test_fit_memmap_late_batch(self, X, tmp_path):
        X[47, 1] = np.inf
        np.save(tmp_path / "x.npy", X)
        mm = np.load(tmp_path / "x.npy", mmap_mode="r")
        with pytest.raises(ValueError, match=r"first at row 47\)"):
            KMeans(3, random_state=SEED, batch_size=4).fit(mm)

    def test_predict_names_row(self, fitted, X):
        X[9, 0] = np.nan
        with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 9\)"):
            fitted.predict(X)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_predict_blocked_small_path_names_row(self, X, dtype, bad):
        # a few hundred rows against enough centers: the direct path into the blocked
        # kernel, which checks rows through its largest squared norm (no distances)
        Xd = np.ascontiguousarray(np.tile(X, (3, 1))[:300], dtype=dtype)
        km = KMeans(n_clusters=40, random_state=SEED, max_iter=3).fit(Xd)
        assert 300 > _kmeans_mod._exact_rows(40, Xd.shape[1])  # not the exact path
        Q = Xd.copy()
        Q[123, 1] = bad
        with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 123\)"):
            km.predict(Q)
        np.testing.assert_array_equal(km.predict(Xd), km.labels_)
        if dtype == np.float32:  # finite, but beyond the range of float32 scores
            with pytest.raises(ValueError, match="float32 data too spread out"):
                km.predict(np.full_like(Xd, 1e19))

    def test_predict_float64_overflow_refused(self, fitted, X):
        # finite float64 rows whose squared norms overflow: an error, not garbage labels
        # (small direct path and the general path)
        for n in (300, 5000):
            Q = np.full((n, X.shape[1]), 1e200)
            with pytest.raises(ValueError, match="too large"):
                fitted.predict(Q)

    def test_score_names_row(self, fitted, X):
        X[11, 2] = -np.inf
        with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 11\)"):
            fitted.score(X)

    def test_transform_names_row(self, fitted, X):
        # predict and score reject NaN naming the row; transform must not silently
        # return NaN distances.
        X[7, 1] = np.nan
        with pytest.raises(ValueError, match=r"NaN or infinity \(first at row 7\)"):
            fitted.transform(X)


class TestNonFiniteFiles:
    @pytest.mark.parametrize("n_threads", [1, 4])
    def test_npy_late_batch(self, tmp_path, n_threads):
        X = _data(n=100)
        X[83, 2] = np.nan  # batch 9 of 10 with batch_size=10
        path = tmp_path / "data.npy"
        np.save(path, X)
        km = KMeans(3, random_state=SEED, batch_size=10, n_threads=n_threads)
        with pytest.raises(ValueError,
                           match=_path_re(path) + r" contains NaN or infinity \(first at row 83\)"):
            km.fit(path)

    def test_npy_late_batch_str_path_and_predict(self, tmp_path, fitted):
        X = _data(n=100)
        X[97, 0] = np.inf
        path = str(tmp_path / "data.npy")
        np.save(path, X)
        msg = _path_re(path) + r" contains NaN or infinity \(first at row 97\)"
        with pytest.raises(ValueError, match=msg):
            KMeans(3, random_state=SEED, batch_size=7).fit(path)
        fitted.batch_size = 7
        with pytest.raises(ValueError, match=msg):
            fitted.predict(path)

    def test_npy_float32_fortran_late_batch(self, tmp_path):
        X = np.asfortranarray(_data(n=100).astype(np.float32))
        X[71, 1] = np.nan
        path = tmp_path / "f.npy"
        np.save(path, X)
        with pytest.raises(ValueError, match=_path_re(path) + r".*first at row 71\)"):
            KMeans(3, random_state=SEED, batch_size=8).fit(path)

    def test_second_of_two_shards(self, tmp_path):
        X = _data(n=100)
        a, b = tmp_path / "a.npy", tmp_path / "b.npy"
        np.save(a, X[:40])
        Xb = X[40:].copy()
        Xb[25, 0] = np.nan  # row 65 of the dataset
        np.save(b, Xb)
        msg = (_path_re(b) + r" contains NaN or infinity "
               r"\(first at row 25 of that shard, row 65 of the dataset\)")
        with pytest.raises(ValueError, match=msg) as info:
            KMeans(3, random_state=SEED, batch_size=7).fit([a, b])
        assert os.fspath(a) not in str(info.value)


# ------------------------------------------------------------------------- n_clusters
class TestNClusters:
    @pytest.mark.parametrize("k", [0, -1])
    def test_not_positive(self, X, k):
        with pytest.raises(ValueError, match=rf"n_clusters={k} should be >= 1"):
            KMeans(k).fit(X)

    @pytest.mark.parametrize("k", [2.5, 2.0, "3", True, None])
    def test_not_integer(self, X, k):
        with pytest.raises(TypeError, match=r"n_clusters must be an integer, got " + re.escape(repr(k))):
            KMeans(k).fit(X)

    def test_numpy_integer_accepted(self, X):
        km = KMeans(np.int64(3), random_state=SEED).fit(X)
        assert km.cluster_centers_.shape == (3, 3)

    def test_more_clusters_than_samples(self, X):
        with pytest.raises(ValueError, match=re.escape("n_samples=5 should be >= n_clusters=8")):
            KMeans(8).fit(X[:5])

    def test_more_clusters_than_samples_file(self, X, tmp_path):
        np.save(tmp_path / "x.npy", X[:5])
        with pytest.raises(ValueError, match=re.escape("n_samples=5 should be >= n_clusters=8")):
            KMeans(8).fit(tmp_path / "x.npy")


# ----------------------------------------------------------------------------- dtypes
class TestDtypes:
    def test_object(self, X):
        with pytest.raises(TypeError, match="object dtype.*never unpickles"):
            KMeans(2).fit(X.astype(object))

    def test_complex(self, X):
        with pytest.raises(TypeError, match="complex dtype complex128.*real numbers"):
            KMeans(2).fit(X.astype(complex))

    def test_string(self, X):
        with pytest.raises(TypeError, match=r"dtype <U\d+, which is not numeric"):
            KMeans(2).fit(X.astype(str))

    def test_bytes(self, X):
        with pytest.raises(TypeError, match=r"dtype \|S\d+, which is not numeric"):
            KMeans(2).fit(X.astype(bytes))

    def test_bool(self, X):
        with pytest.raises(TypeError, match=r"boolean dtype.*astype\(np.float32\)"):
            KMeans(2).fit(X > 0)

    def test_datetime(self, X):
        with pytest.raises(TypeError, match="datetime64.*not numeric"):
            KMeans(2).fit(X.astype(np.int64).astype("M8[s]"))

    def test_predict_complex(self, fitted, X):
        with pytest.raises(TypeError, match="complex dtype"):
            fitted.predict(X.astype(complex))

    @pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
    def test_int_becomes_float64(self, dtype):
        Xi = np.round(_data() * 5 + 60).astype(dtype)
        km = KMeans(3, random_state=SEED).fit(Xi)
        ref = KMeans(3, random_state=SEED).fit(Xi.astype(np.float64))
        assert km.cluster_centers_.dtype == np.float64
        np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
        np.testing.assert_array_equal(km.labels_, ref.labels_)
        np.testing.assert_array_equal(km.predict(Xi), ref.labels_)

    def test_float16_becomes_float64(self, X):
        X16 = X.astype(np.float16)
        km = KMeans(3, random_state=SEED).fit(X16)
        ref = KMeans(3, random_state=SEED).fit(X16.astype(np.float64))
        assert km.cluster_centers_.dtype == np.float64
        np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
        np.testing.assert_array_equal(km.labels_, ref.labels_)

    def test_float32_stays_float32(self, X):
        km = KMeans(3, random_state=SEED).fit(X.astype(np.float32))
        assert km.cluster_centers_.dtype == np.float32


# ------------------------------------------------------------------------- parameters
class TestParameters:
    def test_init_wrong_shape(self, X):
        msg = re.escape("init array has shape (3, 3), expected (n_clusters, n_features)=(2, 3)")
        with pytest.raises(ValueError, match=msg):
            KMeans(2, init=np.zeros((3, 3))).fit(X)

    def test_init_wrong_n_features(self, X):
        with pytest.raises(ValueError, match=re.escape("init array has shape (2, 4)")):
            KMeans(2, init=np.zeros((2, 4))).fit(X)

    def test_init_1d(self, X):
        with pytest.raises(ValueError, match=r"init must be 2-D.*ndim=1"):
            KMeans(2, init=np.zeros(3)).fit(X)

    @pytest.mark.parametrize("value", [np.nan, np.inf])
    def test_init_non_finite(self, X, value):
        init = np.zeros((2, 3))
        init[1, 2] = value
        with pytest.raises(ValueError, match=r"init contains NaN or infinity \(first at row 1\)"):
            KMeans(2, init=init).fit(X)

    def test_init_complex(self, X):
        with pytest.raises(TypeError, match="init has complex dtype"):
            KMeans(2, init=np.zeros((2, 3), complex)).fit(X)

    @pytest.mark.parametrize("init", ["kmeans", "K-Means++", ""])
    def test_init_unknown_string(self, X, init):
        with pytest.raises(ValueError, match=re.escape(f"init={init!r} should be 'k-means++', 'random'")):
            KMeans(2, init=init).fit(X)

    def test_init_none(self, X):
        with pytest.raises(TypeError, match="init has object dtype"):
            KMeans(2, init=None).fit(X)

    def test_max_iter_zero(self, X):
        with pytest.raises(ValueError, match="max_iter=0 should be >= 1"):
            KMeans(2, max_iter=0).fit(X)

    def test_max_iter_float(self, X):
        with pytest.raises(TypeError, match=r"max_iter must be an integer, got 1\.5"):
            KMeans(2, max_iter=1.5).fit(X)

    @pytest.mark.parametrize("tol", [-1e-4, -1, float("nan"), "a", None, True])
    def test_tol_invalid(self, X, tol):
        with pytest.raises(ValueError, match=re.escape(f"tol={tol!r} should be a real number >= 0")):
            KMeans(2, tol=tol).fit(X)

    def test_n_init_zero(self, X):
        with pytest.raises(ValueError, match="n_init=0 should be >= 1"):
            KMeans(2, n_init=0).fit(X)

    def test_n_init_string(self, X):
        with pytest.raises(TypeError, match="n_init must be an integer, got 'x'"):
            KMeans(2, n_init="x").fit(X)

    @pytest.mark.parametrize("bs", [0, -3])
    def test_batch_size_not_positive(self, X, bs):
        with pytest.raises(ValueError, match=rf"batch_size={bs} should be >= 1"):
            KMeans(2, batch_size=bs).fit(X)

    def test_batch_size_float(self, X):
        with pytest.raises(TypeError, match=r"batch_size must be an integer, got 10\.0"):
            KMeans(2, batch_size=10.0).fit(X)

    def test_n_threads_zero(self, X):
        with pytest.raises(ValueError, match="n_threads=0 should be >= 1"):
            KMeans(2, n_threads=0).fit(X)

    def test_compute_labels_invalid(self, X):
        with pytest.raises(ValueError, match="compute_labels='yes' should be 'auto', True or False"):
            KMeans(2, compute_labels="yes").fit(X)

    def test_random_state_invalid(self, X):
        with pytest.raises(ValueError, match="random_state='a' cannot seed a numpy RandomState"):
            KMeans(2, random_state="a").fit(X)

    def test_set_params_unknown(self):
        with pytest.raises(ValueError, match="invalid parameter 'n_cluster' for KMeans"):
            KMeans().set_params(n_cluster=3)


# ---------------------------------------------------------------------------- predict
class TestPredict:
    @pytest.mark.parametrize("method", ["predict", "transform", "score"])
    def test_wrong_n_features(self, fitted, X, method):
        with pytest.raises(ValueError,
                           match="X has 2 features, but KMeans is expecting 3 features as input"):
            getattr(fitted, method)(X[:, :2])

    def test_wrong_n_features_file(self, fitted, X, tmp_path):
        np.save(tmp_path / "x.npy", np.hstack([X, X]))
        with pytest.raises(ValueError, match="X has 6 features, but KMeans is expecting 3"):
            fitted.predict(tmp_path / "x.npy")

    def test_1d(self, fitted, X):
        with pytest.raises(ValueError, match=r"must be 2-D.*reshape\(-1, 1\)"):
            fitted.predict(X[0])

    def test_zero_rows(self, fitted, X):
        with pytest.raises(ValueError, match="0 samples"):
            fitted.predict(X[:0])

    @pytest.mark.parametrize("method", ["predict", "transform", "score"])
    def test_not_fitted(self, X, method):
        km = KMeans(3)
        with pytest.raises(NotFittedError, match="not fitted yet; call 'fit' first"):
            getattr(km, method)(X)
        # scikit-learn's NotFittedError derives from both
        with pytest.raises(ValueError, match="not fitted yet"):
            getattr(km, method)(X)
        with pytest.raises(AttributeError, match="not fitted yet"):
            getattr(km, method)(X)

    def test_not_fitted_is_exported(self):
        assert issubclass(kmaot.NotFittedError, ValueError)
        assert issubclass(kmaot.NotFittedError, AttributeError)
        assert not hasattr(KMeans(3), "cluster_centers_")

    def test_not_fitted_checked_before_input(self, tmp_path):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            KMeans(3).predict(tmp_path / "missing.npy")

    def test_score_sample_weight_shape(self, fitted, X):
        with pytest.raises(ValueError, match=re.escape("sample_weight must have shape (60,), got (3,)")):
            fitted.score(X, sample_weight=np.ones(3))


# ------------------------------------------------------------------------------ files
class TestFiles:
    def test_missing(self, tmp_path):
        path = tmp_path / "missing.npy"
        with pytest.raises(FileNotFoundError, match=_path_re(path) + ": no such file"):
            KMeans(2).fit(path)

    def test_missing_str(self, tmp_path):
        path = str(tmp_path / "missing.npy")
        with pytest.raises(FileNotFoundError, match=_path_re(path)):
            KMeans(2).fit(path)

    def test_directory(self, tmp_path):
        with pytest.raises(IsADirectoryError, match=_path_re(tmp_path) + " is a directory"):
            KMeans(2).fit(tmp_path)

    @pytest.mark.parametrize("cut", [1, 17, 8 * 3 * 59])
    def test_truncated_data(self, X, tmp_path, cut):
        path = tmp_path / "x.npy"
        np.save(path, X)
        size = os.path.getsize(path)
        with open(path, "r+b") as fp:
            fp.truncate(size - cut)
        msg = (_path_re(path) + r" is truncated: its header promises shape \(60, 3\) of float64 "
               rf"\({size} bytes with the header\) but the file has {size - cut} bytes")
        with pytest.raises(ValueError, match=msg):
            KMeans(2).fit(path)

    def test_truncated_header(self, X, tmp_path):
        path = tmp_path / "x.npy"
        np.save(path, X)
        with open(path, "r+b") as fp:
            fp.truncate(30)
        with pytest.raises(ValueError, match=_path_re(path) + r": unreadable \.npy header"):
            KMeans(2).fit(path)

    @pytest.mark.parametrize("content", [
        np.random.default_rng(1).bytes(500),
        b"1.0,2.0,3.0\n4.0,5.0,6.0\n",
        b"",
        b"\x93NUM",
    ], ids=["random-bytes", "text", "empty", "short-magic"])
    def test_not_npy(self, tmp_path, content):
        path = tmp_path / "data.npy"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=_path_re(path) + r" is not a \.npy file"):
            KMeans(2).fit(path)

    def test_text_file(self, tmp_path):
        path = tmp_path / "data.csv"
        path.write_text("1,2,3\n4,5,6\n7,8,9\n")
        with pytest.raises(ValueError, match=_path_re(path) + r" is not a \.npy file.*numpy\.save"):
            KMeans(2).fit(path)

    def test_object_npy_never_unpickled(self, tmp_path, monkeypatch):
        path = tmp_path / "objects.npy"
        np.save(path, np.array([[1, "a"], [2, None], [3, {"k": 1}]], dtype=object),
                allow_pickle=True)
        calls = []

        def spy(name):
            def fake(*args, **kwargs):
                calls.append(name)
                raise AssertionError(f"pickle.{name} was called")
            return fake

        monkeypatch.setattr(pickle, "load", spy("load"))
        monkeypatch.setattr(pickle, "loads", spy("loads"))
        monkeypatch.setattr(pickle, "Unpickler", spy("Unpickler"))
        with pytest.raises(ValueError,
                           match=_path_re(path) + r" holds Python objects \(dtype object\).*"
                                 r"never unpickles"):
            KMeans(2).fit(path)
        with pytest.raises(ValueError, match="never unpickles"):
            KMeans(2).fit([path, path])
        assert calls == []
        # the spies do catch numpy's own unpickling of that file
        with pytest.raises(AssertionError, match="pickle.load was called"):
            np.load(path, allow_pickle=True)
        assert calls == ["load"]

    def test_object_npy_predict(self, tmp_path, fitted):
        path = tmp_path / "objects.npy"
        np.save(path, np.array([[1.0, 2.0, 3.0]], dtype=object), allow_pickle=True)
        with pytest.raises(ValueError, match="holds Python objects.*never unpickles"):
            fitted.predict(path)

    def test_header_promises_huge_array(self, tmp_path):
        path = _write_header(tmp_path / "huge.npy", (10**12, 10**6), "<f4", payload=b"\0" * 16)
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            with pytest.raises(ValueError,
                               match=_path_re(path) + r" is truncated: its header promises "
                                     r"shape \(1000000000000, 1000000\) of float32"):
                KMeans(2).fit(path)
            elapsed = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert elapsed < 2.0
        assert peak < 16 * 2**20

    def test_header_version_2_huge(self, tmp_path):
        path = tmp_path / "huge2.npy"
        with open(path, "wb") as fp:
            np.lib.format.write_array_header_2_0(
                fp, {"descr": "<f8", "fortran_order": True, "shape": (2**40, 2**20)})
            fp.write(b"\0" * 64)
        with pytest.raises(ValueError, match=_path_re(path) + " is truncated"):
            KMeans(2).fit(path)

    def test_header_negative_shape(self, tmp_path):
        # a crafted header with negative dimensions (numpy's parser accepts them) must
        # be rejected like any other malformed header: ValueError naming the file
        path = _write_header(tmp_path / "neg.npy", (-5, -3), payload=b"\0" * 200)
        with pytest.raises(ValueError, match=_path_re(path)):
            KMeans(2).fit(path)

    def test_1d_npy(self, X, tmp_path):
        path = tmp_path / "one.npy"
        np.save(path, X[:, 0])
        with pytest.raises(ValueError,
                           match=_path_re(path) + r" must hold a 2-D array .*got shape \(60,\)"):
            KMeans(2).fit(path)

    def test_3d_npy(self, X, tmp_path):
        path = tmp_path / "three.npy"
        np.save(path, X.reshape(60, 3, 1))
        with pytest.raises(ValueError, match=r"must hold a 2-D array .*got shape \(60, 3, 1\)"):
            KMeans(2).fit(path)

    @pytest.mark.parametrize("shape", [(0, 3), (4, 0)])
    def test_empty_npy(self, tmp_path, shape):
        path = tmp_path / "empty.npy"
        np.save(path, np.empty(shape))
        with pytest.raises(ValueError,
                           match=_path_re(path) + re.escape(f" holds an empty array of shape {shape}")):
            KMeans(2).fit(path)

    def test_structured_npy(self, tmp_path):
        path = tmp_path / "rec.npy"
        np.save(path, np.zeros(5, dtype=[("a", "f8"), ("b", "f8")]))
        with pytest.raises(ValueError, match="structured dtype.*plain numeric array"):
            KMeans(2).fit(path)

    @pytest.mark.parametrize("dtype, err, msg", [
        (complex, TypeError, "complex dtype"),
        (bool, TypeError, "boolean dtype"),
        ("U3", TypeError, "not numeric"),
    ])
    def test_bad_dtype_npy(self, X, tmp_path, dtype, err, msg):
        path = tmp_path / "bad.npy"
        np.save(path, (X > 0).astype(dtype) if dtype is bool else X.astype(dtype))
        with pytest.raises(err, match=_path_re(path) + ".*" + msg):
            KMeans(2).fit(path)


# ----------------------------------------------------------------------------- shards
class TestShards:
    def test_feature_counts_disagree(self, X, tmp_path):
        a, b = tmp_path / "a.npy", tmp_path / "b.npy"
        np.save(a, X[:30])
        np.save(b, X[30:, :2])
        msg = ("shards disagree on n_features: " + _path_re(a) + " has 3, "
               + _path_re(b) + " has 2")
        with pytest.raises(ValueError, match=msg):
            KMeans(2).fit([a, b])

    def test_dtypes_disagree(self, X, tmp_path):
        a, b = tmp_path / "a.npy", tmp_path / "b.npy"
        np.save(a, X[:30])
        np.save(b, X[30:].astype(np.float32))
        msg = ("shards disagree on dtype: " + _path_re(a) + " is float64, "
               + _path_re(b) + " is float32")
        with pytest.raises(ValueError, match=msg):
            KMeans(2).fit([a, b])

    def test_int_widths_disagree(self, X, tmp_path):
        a, b = tmp_path / "a.npy", tmp_path / "b.npy"
        np.save(a, X[:30].astype(np.int32))
        np.save(b, X[30:].astype(np.int64))
        with pytest.raises(ValueError, match="shards disagree on dtype"):
            KMeans(2).fit([a, b])

    def test_missing_shard(self, X, tmp_path):
        a = tmp_path / "a.npy"
        np.save(a, X)
        with pytest.raises(FileNotFoundError, match=_path_re(tmp_path / "b.npy")):
            KMeans(2).fit([a, tmp_path / "b.npy"])

    def test_bad_second_shard(self, X, tmp_path):
        a, b = tmp_path / "a.npy", tmp_path / "b.txt"
        np.save(a, X)
        b.write_text("hello")
        with pytest.raises(ValueError, match=_path_re(b) + r" is not a \.npy file"):
            KMeans(2).fit([a, b])

    @pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
    def test_empty_list_of_shards(self, empty):
        # kmaot has a dedicated message for this ("the list of .npy shards is empty");
        # it must reach the user instead of a misleading "must be 2-D ... reshape(-1, 1)"
        with pytest.raises(ValueError, match="empty"):
            KMeans(2).fit(empty)

    def test_empty_shard_source(self):
        from kmaot._sources import ShardSource
        with pytest.raises(ValueError, match="the list of .npy shards is empty"):
            ShardSource([])


# ---------------------------------------------------------------------- sample_weight
class TestSampleWeight:
    @pytest.mark.parametrize("w, shape", [
        (np.ones(59), "(59,)"), (np.ones(61), "(61,)"), (np.ones((60, 1)), "(60, 1)"),
        (np.ones((1, 60)), "(1, 60)"),
    ])
    def test_wrong_shape(self, X, w, shape):
        with pytest.raises(ValueError,
                           match=re.escape(f"sample_weight must have shape (60,), got {shape}")):
            KMeans(3).fit(X, sample_weight=w)

    def test_wrong_shape_file(self, X, tmp_path):
        np.save(tmp_path / "x.npy", X)
        with pytest.raises(ValueError, match=re.escape("sample_weight must have shape (60,)")):
            KMeans(3).fit(tmp_path / "x.npy", sample_weight=np.ones(10))

    def test_negative(self, X):
        w = np.ones(60)
        w[17] = -0.5
        with pytest.raises(ValueError, match="sample_weight contains negative values"):
            KMeans(3).fit(X, sample_weight=w)

    def test_negative_scalar(self, X):
        with pytest.raises(ValueError, match="sample_weight contains negative values"):
            KMeans(3).fit(X, sample_weight=-1.0)

    @pytest.mark.parametrize("value", [np.nan, np.inf])
    def test_non_finite(self, X, value):
        w = np.ones(60)
        w[3] = value
        with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
            KMeans(3).fit(X, sample_weight=w)

    @pytest.mark.parametrize("w", [np.zeros(60), 0.0], ids=["array", "scalar"])
    def test_all_zero(self, X, w):
        with pytest.raises(ValueError, match="sample_weight sums to 0"):
            KMeans(3).fit(X, sample_weight=w)

    @pytest.mark.parametrize("w", [np.ones(60, bool), np.array(["1"] * 60)], ids=["bool", "str"])
    def test_not_numeric(self, X, w):
        with pytest.raises(TypeError, match="sample_weight must be numeric, got dtype"):
            KMeans(3).fit(X, sample_weight=w)

    def test_huge_uniform_weights(self, X):
        # every weight is finite but their sum overflows: either a clear error naming
        # sample_weight, or the same centers as with unit weights (weights are relative)
        ref = KMeans(3, random_state=SEED).fit(X)
        try:
            km = KMeans(3, random_state=SEED).fit(X, sample_weight=np.full(60, 1e308))
        except ValueError as exc:
            assert "sample_weight" in str(exc), f"unclear error: {exc!r}"
        else:
            np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_)


# -------------------------------------------------- handled inputs give the same result
def _fit(data, **kw):
    kw.setdefault("compute_labels", True)
    # the same init for arrays and files (init='auto' is k-means|| for files)
    kw.setdefault("init", "k-means++")
    return KMeans(3, random_state=SEED, **kw).fit(data)


def _assert_same(km, ref):
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-12)


class TestHandledLayouts:
    @pytest.fixture
    def ref(self, X):
        return _fit(X)

    def test_fortran_array(self, X, ref):
        _assert_same(_fit(np.asfortranarray(X)), ref)

    def test_strided_view(self, ref):
        big = np.repeat(_data(), 2, axis=0)  # rows 0, 2, 4, ... are the data
        view = big[::2]
        assert not view.flags.c_contiguous
        _assert_same(_fit(view), _fit(np.ascontiguousarray(view)))

    def test_column_view(self, X, ref):
        wide = np.hstack([X, np.zeros_like(X)])
        _assert_same(_fit(wide[:, :3]), ref)

    def test_read_only(self, X, ref):
        ro = X.copy()
        ro.setflags(write=False)
        km = _fit(ro)
        _assert_same(km, ref)
        np.testing.assert_array_equal(km.predict(ro), ref.labels_)
        np.testing.assert_array_equal(ro, X)

    def test_big_endian_array(self, X, ref):
        _assert_same(_fit(X.astype(">f8")), ref)

    def test_memmap(self, X, ref, tmp_path):
        np.save(tmp_path / "x.npy", X)
        _assert_same(_fit(np.load(tmp_path / "x.npy", mmap_mode="r"), batch_size=7), ref)

    @pytest.mark.parametrize("batch_size", [None, 7])
    def test_big_endian_npy(self, X, ref, tmp_path, batch_size):
        path = tmp_path / "be.npy"
        np.save(path, X.astype(">f8"))
        assert np.load(path).dtype.byteorder == ">"
        km = _fit(path, batch_size=batch_size)
        _assert_same(km, ref)
        np.testing.assert_array_equal(km.predict(path), ref.labels_)

    @pytest.mark.parametrize("batch_size", [None, 7])
    def test_fortran_npy(self, X, ref, tmp_path, batch_size):
        path = tmp_path / "f.npy"
        np.save(path, np.asfortranarray(X))
        assert np.load(path, mmap_mode="r").flags.f_contiguous
        km = _fit(path, batch_size=batch_size)
        _assert_same(km, ref)
        np.testing.assert_array_equal(km.predict(path), ref.labels_)

    @pytest.mark.parametrize("dtype", [np.int16, np.int64, np.uint8])
    def test_int_npy(self, tmp_path, dtype):
        Xi = np.round(_data() * 4 + 100).astype(dtype)
        path = tmp_path / "i.npy"
        np.save(path, Xi)
        ref = _fit(Xi.astype(np.float64))
        km = _fit(path, batch_size=9)
        assert km.cluster_centers_.dtype == np.float64
        _assert_same(km, ref)
        np.testing.assert_array_equal(km.predict(path), ref.labels_)

    def test_float32_fortran_big_endian_npy(self, X, tmp_path):
        X32 = X.astype(np.float32)
        path = tmp_path / "f32.npy"
        np.save(path, np.asfortranarray(X32.astype(">f4")))
        km = _fit(path, batch_size=5)
        assert km.cluster_centers_.dtype == np.float32
        _assert_same(km, _fit(X32))

    def test_shards_of_mixed_byte_order(self, X, ref, tmp_path):
        a, b = tmp_path / "a.npy", tmp_path / "b.npy"
        np.save(a, X[:25])
        np.save(b, X[25:].astype(">f8"))
        km = _fit([a, b], batch_size=6)
        _assert_same(km, ref)
        np.testing.assert_array_equal(km.predict([a, b]), ref.labels_)

    def test_single_shard_list_and_pathlike(self, X, ref, tmp_path):
        path = tmp_path / "x.npy"
        np.save(path, X)
        _assert_same(_fit([path]), ref)
        _assert_same(_fit(str(path)), ref)

    def test_list_of_lists(self, X, ref):
        _assert_same(_fit(X.tolist()), ref)
