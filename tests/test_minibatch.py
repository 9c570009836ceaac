"""MiniBatchKMeans: the update kernel against the reference, the estimator against the
reference algorithm and scikit-learn, files and shards, weights as repetitions."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kmaot import ConvergenceWarning, MiniBatchKMeans, _dispatch, _kernels

from reference import (assign, minibatch_kmeans, minibatch_update, sq_distances,
                       write_normal_npy)

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.cluster import MiniBatchKMeans as SKMiniBatchKMeans  # noqa: E402
from sklearn.datasets import load_digits, make_blobs  # noqa: E402

LEVELS = [lv for lv in _dispatch.supported_levels() if lv in _dispatch.BUILT_LEVELS]
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def blobs32():
    X, _ = make_blobs(6000, 5, centers=6, cluster_std=1.0, random_state=0)
    return X.astype(np.float32)


# ----------------------------------------------------------------- the kernel
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("m,d,k", [(1, 1, 1), (50, 3, 7), (1024, 16, 20), (300, 2, 300)])
def test_update_kernel_matches_reference(level, dtype, weighted, m, d, k):
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(m + d + k)
    X = rng.standard_normal((m, d)).astype(dtype)
    labels = rng.integers(0, k, m).astype(np.int32)
    centers = rng.standard_normal((k, d))
    ws = rng.integers(0, 5, k).astype(np.float64)  # some centers never seen yet
    w = rng.uniform(0.1, 3, m) if weighted else None
    ref_c, ref_ws, ref_moved = minibatch_update(X, labels, centers, ws, w)
    sums, bw = np.full((k, d), np.nan), np.full(k, np.nan)  # scratch: overwritten
    moved = _kernels.minibatch_update(X, w, labels, centers, ws, sums, bw, module=mod)
    np.testing.assert_allclose(centers, ref_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ws, ref_ws, rtol=1e-13)
    np.testing.assert_allclose(moved, ref_moved, rtol=1e-10, atol=1e-14)


def test_update_kernel_untouched_centers_stay():
    X = np.ones((4, 2))
    labels = np.zeros(4, np.int32)
    centers = np.array([[0.0, 0.0], [7.0, 8.0]])
    ws = np.array([4.0, 3.0])
    moved = _kernels.minibatch_update(X, None, labels, centers, ws, np.empty((2, 2)),
                                      np.empty(2))
    np.testing.assert_array_equal(centers, [[0.5, 0.5], [7.0, 8.0]])
    np.testing.assert_array_equal(ws, [8.0, 3.0])
    assert moved == 0.5


def test_update_wrapper_refuses_what_would_crash():
    X = np.zeros((3, 2), np.float32)
    good = dict(w=None, labels=np.zeros(3, np.int32), centers=np.zeros((2, 2)),
                weight_sums=np.zeros(2), sums=np.zeros((2, 2)), batch_w=np.zeros(2))

    def call(X=X, **kw):
        args = dict(good, **kw)
        _kernels.minibatch_update(X, args["w"], args["labels"], args["centers"],
                                  args["weight_sums"], args["sums"], args["batch_w"])

    call()
    bad = [dict(labels=np.array([0, 2, 1], np.int32)),      # out of range: out of bounds
           dict(labels=np.array([0, -1, 1], np.int32)),
           dict(labels=np.zeros(3, np.int64)),
           dict(centers=np.zeros((2, 2), np.float32)),
           dict(centers=np.zeros((2, 3))),
           dict(w=np.ones(2)),
           dict(weight_sums=np.zeros(2)[::-1].copy()[None, :]),
           dict(sums=np.zeros((4, 2))[::2]),
           dict(X=np.zeros((3, 2), np.float16)),
           dict(X=np.zeros((2, 3), np.float32).T)]
    for kw in bad:
        with pytest.raises(TypeError, match="kmaot internal error"):
            call(**kw)
    ro = np.zeros((2, 2))
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        call(centers=ro)


# ------------------------------------------- the fused step kernel (MinibatchStep)
def _step_state(rng, k, d):
    centers = rng.standard_normal((k, d))
    ws = rng.integers(0, 5, k).astype(np.float64)  # some centers never seen yet
    return centers, ws


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,m,d,k", [(1, 1, 1, 1), (40, 50, 3, 7), (1797, 1024, 64, 10),
                                     (300, 257, 5, 16), (20, 0, 4, 3)])
def test_step_kernel_matches_reference(level, dtype, weighted, n, m, d, k):
    """Assignment to c64 (exact distances) + update of the running means, rows read
    through their indices (repeated, in any order), against the NumPy reference."""
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(n + m + d + k)
    X = rng.standard_normal((n, d)).astype(dtype)
    rows = rng.integers(0, n, m)  # unsorted, with repeats
    centers, ws = _step_state(rng, k, d)
    w = rng.uniform(0.1, 3, m) if weighted else None
    step = _kernels.MinibatchStep(dtype, centers, ws, module=mod)
    c64 = centers + rng.normal(0, 0.1, (k, d))  # assigned to c64, moving centers
    step.c64[...] = c64
    labels, d2 = assign(X[rows], c64)
    ref_c, ref_ws, ref_moved = minibatch_update(X[rows], labels, centers, ws, w)
    inertia, moved = step(X, rows, w)
    np.testing.assert_allclose(centers, ref_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ws, ref_ws, rtol=1e-13)
    np.testing.assert_allclose(moved, ref_moved, rtol=1e-10, atol=1e-14)
    w_ref = np.ones(m) if w is None else w
    np.testing.assert_allclose(inertia, (w_ref * d2).sum(), rtol=1e-12)
    np.testing.assert_array_equal(step.c64, c64)  # an input: untouched


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_kernel_equals_gather_assign_update(level, dtype):
    """The fused kernel gives what gathering the rows, assign_small and
    minibatch_update give (the path it replaces), ties to the lowest index included."""
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(5)
    X = rng.integers(0, 4, (500, 6)).astype(dtype)  # many exact ties
    rows = np.sort(rng.integers(0, 500, 300))
    centers = rng.integers(0, 4, (9, 6)).astype(np.float64)
    centers[3] = centers[1]  # a duplicate center: its rows go to center 1
    ws = np.ones(9)
    c2, ws2 = centers.copy(), ws.copy()
    step = _kernels.MinibatchStep(dtype, centers, ws, module=mod)
    step.c64[...] = centers
    inertia, moved = step(X, rows)
    Xb = X[rows]
    C = _kernels.Centers(c2.astype(dtype), Xb.mean(0), dtype)
    labels, mind = np.empty(300, np.int32), np.empty(300)
    _kernels.assign_small(Xb, C, labels, mind)
    assert 3 not in labels
    moved2 = _kernels.minibatch_update(Xb, None, labels, c2, ws2, np.empty((9, 6)),
                                       np.empty(9), module=mod)
    np.testing.assert_allclose(centers, c2, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(ws, ws2)
    np.testing.assert_allclose(moved, moved2, rtol=1e-12)
    np.testing.assert_allclose(inertia, mind.sum(), rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_step_kernel_nonfinite_leaves_the_state(bad):
    X = np.ones((10, 3))
    X[7, 1] = bad
    centers, ws = np.zeros((2, 3)), np.ones(2)
    step = _kernels.MinibatchStep(np.float64, centers, ws)
    inertia, moved = step(X, np.arange(10))
    assert not np.isfinite(inertia) and moved == 0.0
    np.testing.assert_array_equal(centers, 0.0)
    np.testing.assert_array_equal(ws, 1.0)


def test_step_wrapper_refuses_what_would_crash():
    X = np.zeros((5, 2))
    step = _kernels.MinibatchStep(np.float64, np.zeros((3, 2)), np.zeros(3))
    step(X, np.array([0, 4, 2]))
    step(X, np.array([0, 4, 2]), np.ones(3))
    bad = [dict(rows=np.array([0, 5])),                      # out of range: out of bounds
           dict(rows=np.array([-1, 2])),
           dict(rows=np.array([0, 1], np.int32)),
           dict(rows=np.arange(6)[::2]),
           dict(rows=[0, 1]),
           dict(X=np.zeros((5, 2), np.float32)),
           dict(X=np.zeros((5, 3))),
           dict(X=np.zeros((2, 5)).T),
           dict(X=np.zeros(10)),
           dict(w=np.ones(3)),
           dict(w=np.ones(2, np.float32))]
    for kw in bad:
        args = dict(dict(X=X, rows=np.array([0, 1]), w=None), **kw)
        with pytest.raises(TypeError, match="kmaot internal error"):
            step(args["X"], args["rows"], args["w"])
    ro = np.zeros((3, 2))
    ro.flags.writeable = False
    for args in [(np.float64, ro, np.zeros(3)), (np.float64, np.zeros((3, 2)), np.zeros(2)),
                 (np.float64, np.zeros((3, 2), np.float32), np.zeros(3)),
                 (np.float64, np.zeros(3), np.zeros(3)),
                 (np.float16, np.zeros((3, 2)), np.zeros(3))]:
        with pytest.raises(TypeError, match="kmaot internal error"):
            _kernels.MinibatchStep(*args)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_step_kernel_bounds_give_the_full_search(level, dtype, weighted):
    """With per-row bounds (X given), a sequence of steps (small moves, a center that
    jumps like a reassignment, rows seen again and again) gives what searching every
    row gives; and the bounds do skip rows."""
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(11)
    X = np.vstack([rng.normal(c, 1.0, (200, 5)) for c in (0, 6, 12, 30)]).astype(dtype)
    n, k = len(X), 6
    init = X[rng.integers(0, n, k)].astype(np.float64)
    states = [(init.copy(), np.zeros(k)) for _ in range(2)]
    full = _kernels.MinibatchStep(dtype, *states[0], module=mod)
    bounded = _kernels.MinibatchStep(dtype, *states[1], X=X, module=mod)
    skipped = 0
    for step in range(30):
        rows = rng.integers(0, n, 300)
        w = rng.uniform(0.5, 2, 300) if weighted else None
        if step == 12:  # a reassignment: center 2 jumps to a row
            for centers, _ in states:
                centers[2] = X[rows[0]]
        for st in (full, bounded):
            st.c64[...] = st.centers.astype(dtype)
        a = full(X, rows, w)
        b = bounded(X, rows, w)
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(states[1][0], states[0][0], rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(states[1][1], states[0][1])
        # rows searched this step store the distance to their second center as lower
        # bound; rows skipped keep a smaller, decayed one
        D = np.sqrt(np.sort(sq_distances(X[rows], bounded.c64), axis=1))
        lower = bounded._row_bounds[rows, 1]
        assert (lower <= D[:, 1] * (1 + 1e-9)).all()
        skipped += int((lower < D[:, 1] * (1 - 1e-9)).sum())
    assert skipped > 1000
    assert (bounded._row_label[np.unique(rows)] >= 0).all()


def test_step_bounds_are_bound_to_their_array():
    X = np.zeros((5, 2))
    step = _kernels.MinibatchStep(np.float64, np.zeros((3, 2)), np.zeros(3), X=X)
    step(X, np.arange(5))
    with pytest.raises(TypeError, match="kmaot internal error"):
        step(X.copy(), np.arange(5))
    with pytest.raises(TypeError, match="kmaot internal error"):
        step(X, np.array([5]))
    with pytest.raises(TypeError, match="kmaot internal error"):
        _kernels.MinibatchStep(np.float64, np.zeros((3, 2)), np.zeros(3), X=np.zeros((5, 3)))


# ------------------------------------------- k-means++ on the init sample
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_kpp_kernel_matches_reference(level, dtype, weighted):
    """Every candidate's min(closest, exact squared distances) over a sample of rows
    read through their indices (with repeats), and its potential."""
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 7)).astype(dtype)
    sample = rng.integers(0, 300, 250)
    w = rng.uniform(0.1, 2, 250) if weighted else None
    closest = rng.uniform(0, 20, 250)
    closest[:5] = np.inf
    cand = np.array([3, 249, 3, 0])
    d2, pots = np.full((4, 250), np.nan), np.full(4, np.nan)
    _kernels.kpp_candidates(X, sample, cand, closest, w, d2, pots, module=mod)
    Xs = X[sample]
    ref = np.minimum(closest[None, :], sq_distances(Xs[cand], Xs))
    np.testing.assert_allclose(d2, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pots, ref @ (np.ones(250) if w is None else w), rtol=1e-12)
    assert (d2[[0, 2], [3, 3]] == 0).all()


def test_kpp_wrapper_refuses_what_would_crash():
    X = np.zeros((4, 2))
    good = dict(X=X, sample=np.array([0, 3, 3]), cand=np.array([0, 2]), closest=np.zeros(3),
                w=None, d2=np.zeros((2, 3)), pots=np.zeros(2))
    _kernels.kpp_candidates(**good)
    for kw in [dict(sample=np.array([0, 4, 1])), dict(sample=np.array([0, -1, 1])),
               dict(sample=np.array([0, 1, 2], np.int32)), dict(sample=np.arange(6)[::2]),
               dict(cand=np.array([0, 3])), dict(cand=np.array([-1])),
               dict(cand=np.array([0, 1], np.int32)), dict(closest=np.zeros(4)),
               dict(w=np.ones(4)), dict(d2=np.zeros((3, 2))), dict(pots=np.zeros(3)),
               dict(X=np.zeros((4, 2), np.float16)), dict(X=np.zeros((2, 4)).T)]:
        with pytest.raises(TypeError, match="kmaot internal error"):
            _kernels.kpp_candidates(**dict(good, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_sample_draws_what_the_numpy_one_draws(dtype, weighted):
    """The compiled k-means++ of the init sample, read in place, picks the rows the
    NumPy one (reference.kmeans_plusplus_in_memory) picks on the gathered sample: same
    algorithm, same random draws."""
    from reference import kmeans_plusplus_in_memory
    from kmaot._minibatch import kmeans_plusplus_sample

    X = np.ascontiguousarray(load_digits().data, dtype=dtype)
    rows = np.sort(np.random.default_rng(1).integers(0, len(X), 1500))
    w = np.random.default_rng(0).uniform(0.5, 2, len(rows)) if weighted else None
    for seed, k in [(0, 10), (1, 1), (2, 30)]:
        for sample in (None, rows):
            Xs = X if sample is None else X[sample]
            ws = None if w is None or sample is None else w
            a, ia = kmeans_plusplus_in_memory(Xs, k, np.random.RandomState(seed), ws)
            b, ib = kmeans_plusplus_sample(X, k, np.random.RandomState(seed), sample, ws)
            np.testing.assert_array_equal(ia, ib)
            np.testing.assert_array_equal(a, b)
            assert b.dtype == dtype and b.flags.c_contiguous


# -------------------- the fused step (with and without bounds) and the separate one
def _fit_paths(monkeypatch, make, fit):
    """Fit with the fused step and its bounds (where they apply), with the fused step
    and no bounds, and with the separate gather/assign/update step."""
    from kmaot import _minibatch

    out = [fit(make())]
    monkeypatch.setattr(_minibatch, "_BOUNDS_MAX_BATCHES", 0)
    out.append(fit(make()))
    monkeypatch.setattr(_kernels, "fused_step_applies", lambda m, k: False)
    out.append(fit(make()))
    monkeypatch.undo()
    return out


@pytest.mark.parametrize("case", ["digits", "float32", "weighted", "cosine", "reassign",
                                  "partial_fit"])
def test_fused_and_separate_steps_agree(monkeypatch, case):
    X = np.ascontiguousarray(load_digits().data)
    kw, sw = dict(random_state=3, batch_size=512), None
    if case == "float32":
        X = make_blobs(5000, 3, centers=12, random_state=0)[0].astype(np.float32)
    elif case == "weighted":
        sw = np.random.default_rng(0).uniform(0.5, 2, len(X))
    elif case == "cosine":
        X = X + 1.0
        kw["metric"] = "cosine"
    elif case == "reassign":  # a center far from all data is reassigned
        X = make_blobs(4000, 2, centers=4, random_state=0)[0]
        kw = dict(init=np.vstack([X[:9], [[1e3, 1e3]]]), max_no_improvement=None,
                  max_iter=3, random_state=3)

    def fit(km):
        if case == "partial_fit":
            for s in range(0, len(X), 300):
                Xb = X[s:s + 300]
                km.partial_fit(Xb, sample_weight=np.linspace(0.5, 2, len(Xb)))
            return km
        return km.fit(X, sample_weight=sw)

    a, *others = _fit_paths(monkeypatch, lambda: MiniBatchKMeans(10, **kw), fit)
    for b in others:
        assert a.n_steps_ == b.n_steps_
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(a.counts_, b.counts_, rtol=1e-14)
        np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-12)
    if case == "reassign":
        assert np.abs(a.cluster_centers_).max() < 100


# -------------------------------------------------- estimator vs the reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_partial_fit_sequence_matches_reference(dtype, weighted):
    """partial_fit on given batches, without reassignment, is the reference algorithm."""
    rng = np.random.default_rng(3)
    X, _ = make_blobs(3000, 4, centers=5, random_state=3)
    X = X.astype(dtype)
    init = X[:5].copy()
    batches = [X[i:i + 250] for i in range(0, 3000, 250)]
    weights = [rng.uniform(0.5, 2, 250) for _ in batches] if weighted else None
    km = MiniBatchKMeans(5, init=init, reassignment_ratio=0.0)
    for i, Xb in enumerate(batches):
        km.partial_fit(Xb, sample_weight=None if weights is None else weights[i])
    ref_c, ref_ws = minibatch_kmeans(batches, init, weights)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(km.cluster_centers_, ref_c, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(km.counts_, ref_ws, rtol=1e-12)
    assert km.n_steps_ == len(batches)
    labels, d2 = assign(batches[-1], km.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, labels)
    w_last = np.ones(250) if weights is None else weights[-1]
    np.testing.assert_allclose(km.inertia_, (w_last * d2).sum(), rtol=1e-10)


def test_partial_fit_from_a_generator_and_files(tmp_path, blobs32):
    X = blobs32

    def gen():
        for s in range(0, len(X), 500):
            yield X[s:s + 500]

    a = MiniBatchKMeans(6, random_state=0)
    for Xb in gen():
        a.partial_fit(Xb)
    paths = []
    for i, s in enumerate(range(0, len(X), 500)):
        paths.append(tmp_path / f"b{i}.npy")
        np.save(paths[-1], X[s:s + 500])
    b = MiniBatchKMeans(6, random_state=0)
    for p in paths:
        b.partial_fit(p)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.n_steps_ == b.n_steps_ == 12
    assert a.cluster_centers_.dtype == np.float32
    # a reasonable clustering of well separated blobs
    full = -a.score(X)
    ref = SKMiniBatchKMeans(6, random_state=0, n_init=3).fit(X).inertia_
    assert full < 1.5 * ref


def test_partial_fit_checks_features(blobs32):
    km = MiniBatchKMeans(3, random_state=0).partial_fit(blobs32[:100])
    with pytest.raises(ValueError, match="features"):
        km.partial_fit(blobs32[:100, :3])


# ------------------------------------------------------------ the estimator
def test_api_attributes_and_clone(blobs32):
    X = blobs32
    km = MiniBatchKMeans(6, random_state=0, batch_size=256)
    assert clone(km).get_params() == km.get_params()
    assert km.get_params()["batch_size"] == 256
    assert MiniBatchKMeans().batch_size == 1024
    km.fit(X)
    assert km.cluster_centers_.shape == (6, 5) and km.cluster_centers_.dtype == np.float32
    assert km.labels_.shape == (len(X),) and km.labels_.dtype == np.int32
    labels, d2 = assign(X, km.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, labels)
    np.testing.assert_allclose(km.inertia_, d2.sum(), rtol=1e-10)
    np.testing.assert_array_equal(km.predict(X), labels)
    np.testing.assert_allclose(km.score(X), -d2.sum(), rtol=1e-10)
    T = km.transform(X[:50])
    np.testing.assert_allclose(T ** 2, ((X[:50, None, :].astype(float) - km.cluster_centers_)
                                        ** 2).sum(-1), rtol=1e-4, atol=1e-3)
    assert km.n_steps_ >= 1 and km.n_iter_ == int(np.ceil(km.n_steps_ * 256 / len(X)))
    assert km.counts_.shape == (6,) and (km.counts_ > 0).all()
    np.testing.assert_array_equal(clone(km).fit_predict(X), km.labels_)
    assert "MiniBatchKMeans(batch_size=256" in repr(km)


def test_reproducible_and_seed_dependent(blobs32):
    a = MiniBatchKMeans(6, random_state=1).fit(blobs32)
    b = MiniBatchKMeans(6, random_state=1).fit(blobs32)
    c = MiniBatchKMeans(6, random_state=2, max_no_improvement=None, max_iter=1).fit(blobs32)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_quality_close_to_sklearn():
    """Median final inertia over seeds within 2% of scikit-learn's (same batch size).
    (float32 here; float64 on digits below)"""
    X, _ = make_blobs(10000, 8, centers=10, cluster_std=1.5, random_state=5)
    X = X.astype(np.float32)
    ours = [MiniBatchKMeans(10, random_state=s, n_init=3).fit(X).inertia_ for s in range(5)]
    theirs = [SKMiniBatchKMeans(10, random_state=s, n_init=3, batch_size=1024).fit(X).inertia_
              for s in range(5)]
    assert np.median(ours) <= 1.02 * np.median(theirs)


def test_digits_quality_close_to_sklearn():
    X = load_digits().data
    ours = [MiniBatchKMeans(10, random_state=s, batch_size=256).fit(X).inertia_
            for s in range(5)]
    theirs = [SKMiniBatchKMeans(10, random_state=s, batch_size=256).fit(X).inertia_
              for s in range(5)]
    assert np.median(ours) <= 1.02 * np.median(theirs)


def test_max_iter_bounds_steps_and_tol_stops_early(blobs32):
    km = MiniBatchKMeans(6, random_state=0, max_no_improvement=None, max_iter=2,
                         batch_size=1000).fit(blobs32)
    assert km.n_steps_ == 2 * 6000 // 1000 and km.n_iter_ == 2
    km = MiniBatchKMeans(6, random_state=0, max_no_improvement=None, max_iter=50,
                         tol=1e-2, batch_size=1000).fit(blobs32)
    assert km.n_steps_ < 50 * 6


def test_reassignment_revives_stuck_centers():
    """A center initialised far from all data receives no rows; reassignment moves it."""
    X, _ = make_blobs(4000, 2, centers=4, random_state=0)
    init = np.vstack([X[:3], [[1e3, 1e3]]])
    km = MiniBatchKMeans(4, init=init, random_state=0, max_no_improvement=None,
                         max_iter=3).fit(X)
    assert np.abs(km.cluster_centers_).max() < 100
    assert np.unique(km.labels_).size == 4
    stuck = MiniBatchKMeans(4, init=init, random_state=0, reassignment_ratio=0.0,
                            max_no_improvement=None, max_iter=3)
    with pytest.warns(ConvergenceWarning):
        stuck.fit(X)
    np.testing.assert_array_equal(stuck.cluster_centers_[3], [1e3, 1e3])


def test_compute_labels_false_uses_smoothed_inertia(blobs32):
    km = MiniBatchKMeans(6, random_state=0, compute_labels=False).fit(blobs32)
    assert not hasattr(km, "labels_")
    exact = -km.score(blobs32)
    assert 0.5 * exact < km.inertia_ < 2 * exact


# ------------------------------------------------------ weights = repetitions
def test_sampler_draws_the_rows_of_the_repeated_data():
    from kmaot._minibatch import _Sampler

    rng = np.random.default_rng(0)
    w = rng.integers(0, 5, 1000)
    owner = np.repeat(np.arange(1000), w)  # row of X behind every repeated row
    a = _Sampler(1000, w.astype(float)).draw(np.random.RandomState(3), 5000)
    b = _Sampler(len(owner), None).draw(np.random.RandomState(3), 5000)
    np.testing.assert_array_equal(a, owner[b])
    assert (w[a] > 0).all()


@pytest.mark.parametrize("init", ["k-means++", "random", "k-means||"])
def test_integer_weights_equal_repeated_rows(init):
    """fit(X, w) draws exactly the rows fit(np.repeat(X, w)) draws: same centers.

    The step budget is max_iter * n_samples // batch_size (scikit-learn's rule, in
    rows of X): 800 weighted rows for 3 passes and their 1200 repetitions for 2
    passes both make 24 steps of 100 rows."""
    X, _ = make_blobs(800, 3, centers=4, random_state=2)
    w = np.random.default_rng(0).permutation(np.repeat([0, 1, 2, 3], 200))
    Xr = np.repeat(X, w, axis=0)
    assert len(Xr) == 1200
    kw = dict(random_state=7, batch_size=100, init=init, max_no_improvement=None)
    if init == "k-means||":
        # k-means|| draws every row independently (repeated rows too), so only its
        # distribution matches: start both from the same centers
        kw["init"] = MiniBatchKMeans(4, random_state=0, init="k-means||").fit(
            X, sample_weight=w).cluster_centers_
    a = MiniBatchKMeans(4, max_iter=3, **kw).fit(X, sample_weight=w.astype(float))
    b = MiniBatchKMeans(4, max_iter=2, **kw).fit(Xr)
    assert a.n_steps_ == b.n_steps_ == 24
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.counts_, b.counts_)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-12)
    np.testing.assert_array_equal(a.labels_.repeat(w), b.labels_)


def test_partial_fit_weights_equal_repeated_rows():
    X, _ = make_blobs(600, 3, centers=3, random_state=4)
    w = np.random.default_rng(1).integers(1, 4, 600)
    init = X[:3].copy()
    a = MiniBatchKMeans(3, init=init, reassignment_ratio=0.0)
    b = MiniBatchKMeans(3, init=init, reassignment_ratio=0.0)
    for s in range(0, 600, 150):
        a.partial_fit(X[s:s + 150], sample_weight=w[s:s + 150].astype(float))
        b.partial_fit(np.repeat(X[s:s + 150], w[s:s + 150], axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(a.counts_, b.counts_)


def test_weights_act_as_repetitions_in_distribution():
    """A cluster of heavy rows pulls a center as hard as that many copies would:
    two groups, the small one with weight 9 per row, k=1: the center is the
    weighted mean (scikit-learn's issue #30750 compared weighted and repeated fits)."""
    rng = np.random.default_rng(1)
    A = rng.normal(0, 0.1, (900, 2))
    B = rng.normal(10, 0.1, (100, 2))
    X = np.vstack([A, B])
    w = np.r_[np.ones(900), np.full(100, 9.0)]
    km = MiniBatchKMeans(1, random_state=0, batch_size=100, max_iter=20,
                         max_no_improvement=None).fit(X, sample_weight=w)
    np.testing.assert_allclose(km.cluster_centers_[0], (w @ X) / w.sum(), atol=0.3)


def test_zero_weight_rows_are_never_drawn():
    X = np.vstack([np.zeros((50, 2)), np.full((50, 2), 100.0)])
    w = np.r_[np.ones(50), np.zeros(50)]
    with pytest.warns(ConvergenceWarning):  # all the weight sits on one point
        km = MiniBatchKMeans(2, random_state=0, batch_size=20).fit(X, sample_weight=w)
    assert (km.cluster_centers_ < 1).all()


# ---------------------------------------------------------- files and shards
def test_file_and_shards_equal_in_memory(tmp_path, blobs32):
    X = blobs32
    path = tmp_path / "X.npy"
    np.save(path, X)
    shards = []
    for i, (a, b) in enumerate([(0, 1000), (1000, 1001), (1001, 6000)]):
        shards.append(str(tmp_path / f"s{i}.npy"))
        np.save(shards[-1], X[a:b])
    kw = dict(random_state=3, batch_size=300)
    ref = MiniBatchKMeans(6, **kw).fit(X)
    for src in (str(path), shards, np.load(path, mmap_mode="r")):
        got = MiniBatchKMeans(6, **kw).fit(src)
        np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
        assert got.n_steps_ == ref.n_steps_
        assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)
        if not isinstance(src, np.ndarray):  # files: memory independent of n_samples
            assert not hasattr(got, "labels_")
    got = MiniBatchKMeans(6, compute_labels=True, **kw).fit(str(path))
    np.testing.assert_array_equal(got.labels_, ref.labels_)


def test_file_with_nan_names_the_row(tmp_path, blobs32):
    X = blobs32.copy()
    X[4321, 2] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="row 4321"):
        MiniBatchKMeans(6, random_state=0).fit(str(path))
    with pytest.raises(ValueError, match="NaN"):
        MiniBatchKMeans(6, random_state=0).partial_fit(X[4000:4500])


MEMORY_SCRIPT = r"""
import json, sys
import numpy as np
from kmaot import MiniBatchKMeans
from kmaot._memory import PeakAnon
np.ones(1)
with PeakAnon(interval=0.002) as mem:
    km = MiniBatchKMeans(8, init=sys.argv[2], random_state=0, max_iter=1, n_threads=2,
                         batch_size=4096).fit(sys.argv[1])
print(json.dumps({"start": mem.start, "peak": mem.peak, "steps": km.n_steps_}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
@pytest.mark.parametrize("init", ["auto", "k-means||"])
def test_file_fit_memory_is_independent_of_file_size(tmp_path, init):
    n, d = 2_000_000, 32  # 244 MiB of float32
    path = tmp_path / "big.npy"
    write_normal_npy(path, n, d)
    res = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path), init], cwd="/",
                         capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    grown = r["peak"] - r["start"]
    assert grown < 80 * 2**20, f"anonymous memory grew by {grown / 2**20:.1f} MiB"
    assert grown < n * d * 4 / 3


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("params,err,msg", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), TypeError, "batch_size"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(reassignment_ratio=-0.1), ValueError, "reassignment_ratio"),
    (dict(reassignment_ratio=float("nan")), ValueError, "reassignment_ratio"),
    (dict(max_no_improvement=-1), ValueError, "max_no_improvement"),
    (dict(init_size=0), ValueError, "init_size"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(init="kmeans++"), ValueError, "init"),
    (dict(compute_labels="yes"), ValueError, "compute_labels"),
    (dict(metric="manhattan"), ValueError, "metric"),
    (dict(n_clusters=7000), ValueError, "n_samples=6000 should be >= n_clusters=7000"),
    (dict(init=np.zeros((6, 4))), ValueError, "init array has shape"),
])
def test_bad_parameters(blobs32, params, err, msg):
    with pytest.raises(err, match=msg):
        MiniBatchKMeans(**dict(dict(n_clusters=6), **params)).fit(blobs32)


def test_bad_sample_weight_and_predict_before_fit(blobs32):
    with pytest.raises(ValueError, match="negative"):
        MiniBatchKMeans(6).fit(blobs32, sample_weight=-np.ones(len(blobs32)))
    with pytest.raises(ValueError, match="shape"):
        MiniBatchKMeans(6).partial_fit(blobs32, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="not fitted"):
        MiniBatchKMeans(6).predict(blobs32)


def test_small_init_size_warns(blobs32):
    with pytest.warns(RuntimeWarning, match="init_size"):
        MiniBatchKMeans(6, init_size=3, random_state=0).fit(blobs32)


@pytest.mark.parametrize("weighted", [False, True])
def test_in_memory_kmeanspp_draws_what_the_streaming_one_draws(weighted):
    """The NumPy k-means++ reference (which MiniBatchKMeans' compiled k-means++ on its
    init sample is tested against) makes the random draws of the streaming k-means++
    of KMeans, so it picks the same rows."""
    from kmaot._engine import Engine
    from kmaot._init import kmeans_plusplus
    from reference import kmeans_plusplus_in_memory
    from kmaot._sources import ArraySource

    X, _ = make_blobs(2000, 5, centers=8, random_state=9)
    w = np.random.default_rng(0).uniform(0.5, 2, len(X)) if weighted else None
    a, ia = kmeans_plusplus_in_memory(X, 8, np.random.RandomState(4), w)
    with Engine(1) as eng:
        b, ib = kmeans_plusplus(eng, ArraySource(X), 8, np.random.RandomState(4), w,
                                X.mean(0), X.dtype)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(a, b)


def test_no_numba_at_run_time():
    """MiniBatchKMeans, k-means|| and metric='cosine' run without importing numba."""
    code = ("import sys, numpy as np\n"
            "from kmaot import KMeans, MiniBatchKMeans\n"
            "X = np.random.default_rng(0).standard_normal((3000, 4)).astype(np.float32)\n"
            "MiniBatchKMeans(5, random_state=0).fit(X).predict(X)\n"
            "MiniBatchKMeans(5, metric='cosine', init='k-means||').partial_fit(X)\n"
            "KMeans(5, init='k-means||', metric='cosine', random_state=0).fit(X).score(X)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))")
    res = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                         text=True, check=True)
    assert res.stdout.strip() == "[]"
