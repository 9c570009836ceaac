"""algorithm='bounded' (Hamerly's bound: rows whose label cannot change are not
re-measured against every center) gives the result of algorithm='lloyd', bit for bit."""
import numpy as np
import pytest

from kmaot import KMeans, _dispatch, _kernels, _lloyd

from pairs import assert_identical, blob_data as _data, fit_pair as _pair
from reference import accumulate, assign

LEVELS = [lv for lv in _dispatch.supported_levels() if lv in _dispatch.BUILT_LEVELS]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,k", [(3000, 5, 20), (5000, 32, 64), (2000, 2, 100),
                                   (1500, 128, 16), (500, 3, 1)])
def test_bounded_equals_lloyd(dtype, n, d, k):
    X, init = _data(n, d, k, dtype)
    a, b = _pair(X, init, max_iter=40)
    assert_identical(a, b)
    # the bound did skip work once the centers settled
    if k > 1 and a.n_iter_ > 4:
        assert b.iteration_stats_[-1]["n_full"] < n


def test_bounded_equals_lloyd_weighted_far_from_origin_with_threads():
    X, init = _data(6000, 8, 24, np.float32, seed=3, offset=1e4)
    w = np.random.default_rng(1).uniform(0.1, 5, len(X))
    a, b = _pair(X, init, sample_weight=w, max_iter=30, n_threads=3, batch_size=777)
    assert_identical(a, b)


@pytest.mark.parametrize("d", range(2, 11))
def test_bounded_equals_lloyd_at_every_short_row_length(d):
    # rows of 2..8 features are accumulated by generated code (lloyd.ACC_WIDTHS), longer
    # ones by a loop: the same bits from either pass, weighted or not
    X, init = _data(1500, d, 12, np.float32, seed=d, offset=30.0)
    w = np.random.default_rng(d).uniform(0.1, 5, len(X))
    for sample_weight in (None, w):
        a, b = _pair(X, init, sample_weight=sample_weight, max_iter=12)
        assert_identical(a, b)


def test_bounded_with_empty_clusters_and_duplicates():
    # duplicate rows and duplicate initial centers: exact ties, empty clusters relocated
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (40, 4))
    X = np.repeat(base, 25, axis=0)
    init = np.vstack([base[:10], base[:10], rng.normal(50, 1, (5, 4))])
    a, b = _pair(X, init, max_iter=50)
    assert_identical(a, b)
    assert a.iteration_stats_[0]["n_empty"] > 0


def test_bounded_on_a_file_and_auto_choice(tmp_path):
    X, init = _data(4000, 6, 32, np.float32, seed=7)
    path = tmp_path / "X.npy"
    np.save(path, X)
    ref = KMeans(32, init=init, tol=0, algorithm="lloyd").fit(X)
    f = KMeans(32, init=init, tol=0, algorithm="bounded", batch_size=333).fit(str(path))
    assert_identical(ref, f)  # no labels_ for files: centers, inertia, n_iter
    auto = KMeans(32, init=init, tol=0).fit(X)
    assert_identical(ref, auto)
    assert "n_full" in auto.iteration_stats_[0]        # in memory, k >= 16: bounded
    auto_file = KMeans(32, init=init, tol=0).fit(str(path))
    assert "n_full" not in auto_file.iteration_stats_[0]  # files: plain, O(batch) memory
    few = KMeans(8, init=init[:8], tol=0).fit(X)
    assert "n_full" not in few.iteration_stats_[0]


def test_bad_algorithm():
    with pytest.raises(ValueError, match="algorithm='elkan' should be one of"):
        KMeans(2, algorithm="elkan").fit(np.zeros((4, 2)))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [7, 37])  # 37: gathered rows in 8x8 tiles plus 5 features
def test_bounds_kernel_matches_reference_from_any_valid_state(level, dtype, d):
    """Start from a stale state (labels and bounds of other centers): the kernel must
    produce the reference labels and sums, and bounds that are true lower bounds."""
    mod = _dispatch.kernel_module(level)
    X, _ = _data(3000, d, 30, dtype, seed=11)
    n, d = X.shape
    rng = np.random.default_rng(2)
    C_old = X[rng.choice(n, 30, replace=False)].astype(np.float64)
    C_new = C_old + rng.normal(0, 0.3, C_old.shape)
    shift = X.astype(np.float64).mean(0)
    Ca = _kernels.Centers(C_old, shift, dtype)
    Cb = _kernels.Centers(C_new, shift, dtype)
    b = _lloyd.Bounds(n)

    def run(C):
        sums, counts, inertia = np.zeros((30, d)), np.zeros(30), np.zeros(1)
        _kernels.lloyd_bounds_block(X, C, None, b.delta(C), _lloyd.Bounds.separation(C),
                                    b.labels, b.lower, sums,
                                    counts, inertia, np.zeros(1, np.int64), module=mod)
        b.c64 = C.c64
        return sums, counts, inertia

    run(Ca)
    sums, counts, inertia = run(Cb)
    ref_labels, ref_d2 = assign(X, Cb.c64)
    np.testing.assert_array_equal(b.labels, ref_labels)
    ref_sums, ref_counts = accumulate(X, ref_labels, 30)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(inertia[0], ref_d2.sum(), rtol=1e-12)
    D = np.sqrt(((X.astype(np.float64)[:, None, :] - Cb.c64[None]) ** 2).sum(2))
    D[np.arange(n), ref_labels] = np.inf
    assert (b.lower <= D.min(1)).all()
    assert (b.lower > 0).mean() > 0.9   # and they are informative


def test_separation_is_a_lower_bound_of_half_the_nearest_center_distance():
    rng = np.random.default_rng(4)
    for offset in (0.0, 1e4):
        C0 = rng.normal(offset, 1.0, (50, 9))
        C0[7] = C0[3]                      # coinciding centers: separation 0
        C0[11] = C0[10] + 1e-9             # nearly coinciding
        C = _kernels.Centers(C0, C0.mean(0), np.float64)
        sep = _lloyd.Bounds.separation(C)
        D = np.sqrt(((C0[:, None, :] - C0[None]) ** 2).sum(2))
        np.fill_diagonal(D, np.inf)
        exact = 0.5 * D.min(1)
        assert (sep <= exact).all()
        assert sep[3] == sep[7] == 0.0
        far = exact > 1e-3
        np.testing.assert_allclose(sep[far], exact[far], rtol=1e-6)
    one = _kernels.Centers(np.ones((1, 3)), np.zeros(3), np.float64)
    assert _lloyd.Bounds.separation(one)[0] == np.inf
