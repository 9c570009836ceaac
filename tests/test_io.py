"""Model files (KMeans.save / kmaot.load: versioned .npz, never pickle) and pickling."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import kmaot
from kmaot import KMeans, NotFittedError
from kmaot._io import FORMAT_VERSION


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, size=(6, 5))
    return (centers[rng.integers(6, size=2000)] + rng.standard_normal((2000, 5))).astype(
        np.float32)


def _rewrite(src, dst, **changes):
    """Copy a model file, replacing or adding arrays (values) or dropping them (None)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k, None)
        else:
            arrays[k] = v
    np.savez(dst, **arrays)
    return dst


def _meta(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"][()]))


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(tmp_path, X, standardize, dtype):
    X = X.astype(dtype)
    km = KMeans(6, random_state=3, max_iter=50, tol=1e-5, batch_size=500, n_threads=1,
                standardize=standardize).fit(X)
    path = tmp_path / "model.npz"
    km.save(path)
    loaded = kmaot.load(path)
    assert type(loaded) is KMeans
    assert loaded.get_params() == km.get_params()
    np.testing.assert_array_equal(loaded.cluster_centers_, km.cluster_centers_)
    assert loaded.cluster_centers_.dtype == dtype
    assert loaded.inertia_ == km.inertia_ and loaded.n_iter_ == km.n_iter_
    assert loaded.n_features_in_ == 5
    assert loaded.iteration_stats_ == km.iteration_stats_
    np.testing.assert_array_equal(loaded._shift, km._shift)
    if standardize:
        np.testing.assert_array_equal(loaded.mean_, km.mean_)
        np.testing.assert_array_equal(loaded.scale_, km.scale_)
    else:
        assert not hasattr(loaded, "mean_")
    assert not hasattr(loaded, "labels_")  # one label per training row: not stored
    for rows in (X[:1], X[:50], X):  # direct small path and pooled path
        np.testing.assert_array_equal(loaded.predict(rows), km.predict(rows))
    np.testing.assert_array_equal(loaded.transform(X[:20]), km.transform(X[:20]))
    assert loaded.score(X) == km.score(X)


def test_file_is_plain_npz_without_pickle(tmp_path, X):
    path = tmp_path / "m.npz"
    KMeans(4, random_state=0).fit(X).save(path)
    with np.load(path, allow_pickle=False) as z:  # would raise on any pickled member
        files = set(z.files)
        for k in z.files:
            assert z[k].dtype != object
    assert {"format_version", "meta", "attr__cluster_centers_", "private___shift"} <= files
    meta = _meta(path)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["kmaot_version"] == kmaot.__version__
    assert meta["estimator"] == "KMeans"
    assert meta["params"]["n_clusters"] == 4
    assert meta["attributes"]["n_iter_"] >= 1


def test_array_init_and_unsaveable_random_state(tmp_path, X):
    init = X[:3].copy()
    km = KMeans(3, init=init, random_state=np.random.RandomState(0)).fit(X)
    km.save(tmp_path / "m.npz")
    loaded = kmaot.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.init, init)
    assert loaded.random_state is None  # a RandomState object is not stored
    assert _meta(tmp_path / "m.npz")["unsaved_params"] == ["random_state"]
    np.testing.assert_array_equal(loaded.predict(X), km.labels_)


def test_path_is_written_exactly_and_atomically(tmp_path, X):
    km = KMeans(3, random_state=0).fit(X)
    target = tmp_path / "model.kmaot"  # no .npz suffix added
    target.write_bytes(b"old")
    km.save(str(target))
    assert os.listdir(tmp_path) == ["model.kmaot"]
    np.testing.assert_array_equal(kmaot.load(target).cluster_centers_, km.cluster_centers_)


def test_loaded_model_can_be_refitted_and_cloned(tmp_path, X):
    KMeans(4, random_state=0, standardize=True).fit(X).save(tmp_path / "m.npz")
    loaded = kmaot.load(tmp_path / "m.npz")
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    c = clone(loaded)
    assert c.get_params() == loaded.get_params()
    ref = KMeans(4, random_state=0, standardize=True).fit(X)
    np.testing.assert_array_equal(c.fit(X).cluster_centers_, ref.cluster_centers_)


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(NotFittedError):
        KMeans(3).save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_newer_format_version_is_refused(tmp_path, X):
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    meta = _meta(tmp_path / "m.npz")
    meta.update(format_version=FORMAT_VERSION + 1, kmaot_version="9.0")
    _rewrite(tmp_path / "m.npz", tmp_path / "new.npz",
             format_version=np.array(FORMAT_VERSION + 1), meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match=r"kmaot 9\.0 in model format version "
                       rf"{FORMAT_VERSION + 1}.*upgrade kmaot"):
        kmaot.load(tmp_path / "new.npz")


def test_unknown_parameter_and_class_are_refused(tmp_path, X):
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    meta = _meta(tmp_path / "m.npz")
    meta["params"]["warp_speed"] = 9
    _rewrite(tmp_path / "m.npz", tmp_path / "p.npz", meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="warp_speed.*upgrade kmaot"):
        kmaot.load(tmp_path / "p.npz")
    meta = _meta(tmp_path / "m.npz")
    meta["estimator"] = "SpectralMagic"
    _rewrite(tmp_path / "m.npz", tmp_path / "c.npz", meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="SpectralMagic"):
        kmaot.load(tmp_path / "c.npz")


def test_not_a_model(tmp_path, X):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        kmaot.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        kmaot.load(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="not a kmaot model"):
        kmaot.load(tmp_path / "junk.npz")
    np.save(tmp_path / "arr.npy", X)
    with pytest.raises(ValueError, match=r"\.npy array, not a kmaot model"):
        kmaot.load(tmp_path / "arr.npy")
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="not a kmaot model"):
        kmaot.load(tmp_path / "other.npz")
    pickled = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickled.npz", format_version=np.array(1), meta=pickled)
    with pytest.raises(ValueError):
        kmaot.load(tmp_path / "pickled.npz")
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        kmaot.load(tmp_path / "cut.npz")


@pytest.mark.parametrize("change, match", [
    ({"attr__cluster_centers_": np.array([[np.nan, 1, 2, 3, 4]] * 3)}, "NaN"),
    ({"attr__cluster_centers_": np.ones((3, 5), dtype=np.int64)}, "dtype int64"),
    ({"attr__cluster_centers_": np.ones((3, 4))}, "n_features_in_"),
    ({"attr__cluster_centers_": None}, "no cluster_centers_"),
    ({"private___shift": np.ones(7)}, "centering"),
    ({"attr__mean_": np.zeros(5)}, "together"),
])
def test_damaged_model_is_refused(tmp_path, X, change, match):
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", **change)
    with pytest.raises(ValueError, match=match):
        kmaot.load(tmp_path / "bad.npz")


def test_bad_standardization_is_refused(tmp_path, X):
    KMeans(3, random_state=0, standardize=True).fit(X).save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", attr__scale_=np.zeros(5))
    with pytest.raises(ValueError, match="scale_ > 0"):
        kmaot.load(tmp_path / "bad.npz")


def test_big_endian_centers_load(tmp_path, X):
    km = KMeans(3, random_state=0).fit(X)
    km.save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "be.npz",
             attr__cluster_centers_=km.cluster_centers_.astype(">f4"))
    loaded = kmaot.load(tmp_path / "be.npz")
    assert loaded.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X[:7]), km.predict(X[:7]))
    np.testing.assert_array_equal(loaded.predict(X), km.predict(X))


@pytest.mark.parametrize("standardize", [False, True])
def test_pickle_round_trip(X, standardize):
    km = KMeans(5, random_state=0, standardize=standardize).fit(X)
    km.predict(X[:2])  # builds the cached direct-path predictor, which holds a kernel
    again = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(again.cluster_centers_, km.cluster_centers_)
    np.testing.assert_array_equal(again.labels_, km.labels_)
    for rows in (X[:1], X[:40], X):
        np.testing.assert_array_equal(again.predict(rows), km.predict(rows))
    assert again.get_params() == km.get_params()
    unfitted = pickle.loads(pickle.dumps(KMeans(7, init="random")))
    assert unfitted.get_params() == KMeans(7, init="random").get_params()


LOAD_SCRIPT = r"""
import sys
import numpy as np
import kmaot
km = kmaot.load(sys.argv[1])
km.predict(np.zeros((3, 5), np.float32)); km.predict(np.zeros((9000, 5), np.float32))
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite', 'pickle'))
print('LOADED', [m for m in bad if m != 'pickle'])
"""


def test_load_and_predict_without_numba(tmp_path, X):
    KMeans(4, random_state=0, standardize=True).fit(X).save(tmp_path / "m.npz")
    res = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "m.npz")],
                         capture_output=True, text=True, cwd="/")
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout
