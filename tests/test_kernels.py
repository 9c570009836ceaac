"""Every compiled kernel, at every CPU level this machine runs, against tests/reference.py."""
import numpy as np
import pytest

from kmaot import _dispatch, _kernels

from reference import accumulate, assign

LEVELS = [lv for lv in _dispatch.supported_levels() if lv in _dispatch.BUILT_LEVELS]
DTYPES = [np.float32, np.float64]


def _data(n, d, k, dtype, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 3 + offset).astype(dtype)
    C = X[rng.choice(n, k, replace=False)] + rng.standard_normal((k, d)).astype(dtype) * 0.1
    return X, np.ascontiguousarray(C, dtype=dtype)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (300, 3, 7), (517, 16, 33), (1000, 64, 5),
                                   (256, 2, 256),
                                   (1003, 8, 8), (700, 130, 9),
                                   # every generated span transposer (lloyd.SPAN_WIDTHS),
                                   # over several chunks with a partial last one, and
                                   # the plain loop past 16 features
                                   (1100, 4, 5), (1100, 5, 6), (1100, 6, 3), (1100, 7, 9),
                                   (1100, 17, 4),
                                   # past 16 features: 8x8 tiles (lloyd._tr8), with
                                   # partial row and feature tiles and whole ones
                                   (1100, 24, 6), (1003, 31, 5), (517, 40, 7),
                                   # past the generated accumulators (lloyd.ACC_WIDTHS)
                                   (1100, 9, 4)])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_block_matches_reference(level, dtype, n, d, k, weighted):
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(n, d, k, dtype)
    w = np.random.default_rng(1).uniform(0.1, 3, n) if weighted else None
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    labels = np.empty(n, np.int32)
    mind = np.empty(n)
    sums = np.zeros((k, d))
    counts = np.zeros(k)
    inertia = np.zeros(1)
    _kernels.lloyd_block(X, C, w, labels, mind, sums, counts, inertia, module=mod)

    ref_labels, ref_d2 = assign(X, C0)
    ref_sums, ref_counts = accumulate(X, ref_labels, k, w)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(mind, ref_d2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(counts, ref_counts, rtol=1e-12)
    ww = np.ones(n) if w is None else w
    np.testing.assert_allclose(inertia[0], (ww * ref_d2).sum(), rtol=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_assign_block_matches_reference(level, dtype):
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(777, 9, 13, dtype, seed=3)
    C = _kernels.Centers(C0, np.zeros(9), dtype)
    labels = np.empty(777, np.int32)
    mind = np.empty(777)
    _kernels.assign_block(X, C, labels, mind, module=mod)
    ref_labels, ref_d2 = assign(X, C0)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(mind, ref_d2, rtol=1e-12)
    labels2 = np.empty(777, np.int32)
    assert _kernels.assign_block(X, C, labels2, module=mod) is True  # without distances
    np.testing.assert_array_equal(labels2, labels)
    # the kernel's own result: the largest squared norm of the shifted rows
    worst = _kernels._fn("assign_block", np.dtype(dtype), mod)(
        X, C.shift, C.cs, C.half_csq, C.c64, labels2, np.empty(0))
    xs = X.astype(np.float64) - C.shift.astype(np.float64)
    np.testing.assert_allclose(worst, np.einsum("ij,ij->i", xs, xs).max(), rtol=1e-5)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[500, 4] = bad
        assert _kernels.assign_block(Xb, C, labels2, module=mod) is False


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (1, 32, 64), (5, 9, 13), (40, 3, 300)])
def test_nearest_exact_matches_reference_and_assign_block(level, dtype, n, d, k):
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(max(n, k), d, k, dtype, seed=5, offset=50.0)
    X = np.ascontiguousarray(X[:n])
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    labels = np.empty(n, np.int32)
    assert _kernels.nearest_exact(X, C, labels, module=mod) == 0
    np.testing.assert_array_equal(labels, assign(X, C0)[0])
    fast = np.empty(n, np.int32)
    _kernels.assign_block(X, C, fast, module=mod)
    np.testing.assert_array_equal(labels, fast)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 70])   # centers one by one; vector tiles, then the rest
def test_nearest_exact_counts_nonfinite_rows(level, dtype, k):
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(100, 4, k, dtype)
    X = X[:6].copy()
    X[1, 2] = np.nan
    X[4, 0] = np.inf
    X[5, 3] = -np.inf
    C = _kernels.Centers(C0, np.zeros(4), dtype)
    labels = np.empty(6, np.int32)
    assert _kernels.nearest_exact(X, C, labels, module=mod) == 3
    np.testing.assert_array_equal(labels[[0, 2, 3]], assign(X[[0, 2, 3]], C0)[0])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [7, 13, 64, 131])
def test_nearest_exact_ties_go_to_the_lowest_index(level, dtype, k):
    """Copies of one center at indices in different vector lanes, registers, tiles and
    the one-by-one rest: every row nearest to them takes the lowest of those indices,
    as does every row equidistant (exactly) from two centers."""
    mod = _dispatch.kernel_module(level)
    rng = np.random.default_rng(k)
    d = 5
    C0 = (rng.integers(-20, 20, (k, d)) * 4.0).astype(dtype)
    copies = sorted({k - 1, k // 2, k // 3, 2})
    C0[copies] = 1000.0
    # rows at integer points (exact float64 distances) around the copies and elsewhere
    X = np.concatenate([1000.0 + rng.integers(-3, 4, (40, d)),
                        rng.integers(-80, 80, (200, d))]).astype(dtype)
    # exactly halfway between two centers (on the bisector, for every order of sums)
    mid = (C0[0].astype(np.float64) + C0[k - 1].astype(np.float64)) / 2
    X = np.concatenate([X, mid[None].astype(dtype)])
    X = np.ascontiguousarray(X)
    C = _kernels.Centers(C0, np.zeros(d), dtype)
    labels = np.empty(len(X), np.int32)
    assert _kernels.nearest_exact(X, C, labels, module=mod) == 0
    ref = assign(X, C0)[0]
    np.testing.assert_array_equal(labels, ref)
    assert (labels[:40] == min(copies)).all()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", range(2, 11))
def test_accumulation_cases_agree_bit_for_bit(level, dtype, d):
    """The accumulation has four loops (weighted or not, distances kept or not), and for
    short rows they are generated code (lloyd.ACC_WIDTHS): all must do the same
    arithmetic.  Weights of 1 give the unweighted bits, keeping the distances changes
    nothing, and the kept distances add up, in row order, to the inertia."""
    mod = _dispatch.kernel_module(level)
    # odd: unweighted rows of 8 features go two at a time (lloyd.PAIR_WIDTHS at
    # AVX-512), then the last one alone
    n, k = 1501, 6
    X, C0 = _data(n, d, k, dtype, seed=d, offset=2.0)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    fn = getattr(mod, "lloyd_block_" + ("f32" if dtype == np.float32 else "f64"))

    def run(w, keep):
        labels, mind = np.empty(n, np.int32), (np.empty(n) if keep else np.empty(0))
        sums, counts, inertia = np.zeros((k, d)), np.zeros(k), np.zeros(1)
        # raw kernel call, arguments checked above: the Python layer always asks for the
        # distances of float32 rows, and this test needs the loop that does not keep them
        fn(X, C.shift, C.cs, C.half_csq, C.c64, np.empty(0) if w is None else w, labels,
           mind, sums, counts, inertia)
        return labels, mind, sums, counts, inertia[0]

    plain = run(None, False)
    for other in (run(None, True), run(np.ones(n), False), run(np.ones(n), True)):
        assert np.array_equal(other[0], plain[0])
        assert np.array_equal(other[2], plain[2]) and np.array_equal(other[3], plain[3])
        assert other[4] == plain[4]
    mind = run(None, True)[1]
    total = 0.0
    for v in mind:
        total += v
    assert total == plain[4]
    w = np.random.default_rng(d).uniform(0.1, 3, n)
    weighted, weighted_kept = run(w, False), run(w, True)
    assert weighted[4] == weighted_kept[4]
    assert np.array_equal(weighted[2], weighted_kept[2])
    assert np.array_equal(weighted_kept[1], mind)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", range(2, 10))
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 8, 11])
def test_scorers_give_exact_labels_with_near_ties(level, dtype, d, k):
    """The fast scores of short rows are generated code (lloyd.SCORE_WIDTHS: four
    centers per sweep, then one at a time for k % 4): every row length around them and
    every remainder of k.  A third of the rows lie within 1e-7 (relative) of the
    bisector of two centers, where the fast scores cannot decide: the best and
    runner-up scores must flag them for the exact recheck, or their labels would not
    be the float64 argmin."""
    _check_near_ties(level, dtype, d, k)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d,k", [(17, 4), (24, 5), (32, 64), (40, 7), (64, 9), (130, 6)])
def test_register_tiles_give_exact_labels_with_near_ties(level, dtype, d, k):
    """Past 16 features, chunks of up to 32 KB are scored in register tiles
    (lloyd._score_tile4: four centers at a time, the k % 4 others by the lane loops),
    larger ones (float64 in lloyd_block, d=130) by the lane loops alone: both must
    flag the near ties for the exact recheck, in lloyd_block (256- or 512-row chunks)
    and in assign_block (128 rows), at every CPU level (tile widths differ)."""
    _check_near_ties(level, dtype, d, k)


def _check_near_ties(level, dtype, d, k):
    mod = _dispatch.kernel_module(level)
    n = 1100  # several chunks, a partial last one
    X, C0 = _data(n, d, k, dtype, seed=10 * d + k, offset=1.0)
    if k > 1:
        rng = np.random.default_rng(d * k)
        rows = rng.choice(n, n // 3, replace=False)
        a = rng.integers(0, k, rows.size)
        b = (a + rng.integers(1, k, rows.size)) % k
        ca, cb = C0[a].astype(np.float64), C0[b].astype(np.float64)
        t = 0.5 + rng.uniform(-1e-7, 1e-7, rows.size)[:, None]
        X[rows] = (ca + t * (cb - ca)).astype(dtype)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    ref_labels, ref_d2 = assign(X, C0)
    labels, mind = np.empty(n, np.int32), np.empty(n)
    sums, counts, inertia = np.zeros((k, d)), np.zeros(k), np.zeros(1)
    _kernels.lloyd_block(X, C, None, labels, mind, sums, counts, inertia, module=mod)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(mind, ref_d2, rtol=1e-12, atol=1e-300)
    assigned = np.empty(n, np.int32)
    _kernels.assign_block(X, C, assigned, module=mod)
    np.testing.assert_array_equal(assigned, ref_labels)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("value", [2e18, 3e38])
def test_lloyd_block_refuses_float32_rows_beyond_range(level, value):
    """lloyd_block returns the largest squared norm of the shifted rows (no distances
    are written for the check): finite float32 rows whose scores could overflow are
    refused, also when that squared norm itself overflowed (3e38); a NaN row is not
    refused here but leaves a NaN inertia, which the callers turn into an error naming
    the row."""
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(50, 3, 4, np.float32)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), np.float32)

    def run(Q):
        out = (np.empty(len(Q), np.int32), np.zeros((4, 3)), np.zeros(4), np.zeros(1))
        _kernels.lloyd_block(Q, C, None, out[0], None, out[1], out[2], out[3], module=mod)
        return out

    labels, sums, counts, inertia = run(X)
    np.testing.assert_array_equal(labels, assign(X, C0)[0])
    Q = X.copy()
    Q[7] = value
    with pytest.raises(ValueError, match="float32 data too spread out"):
        run(Q)
    Q[7] = np.nan
    assert np.isnan(run(Q)[3][0])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [3, 20])
def test_lloyd_block_returns_largest_shifted_norm(level, dtype, d):
    """The kernel's own result, for the float32 range check: the largest squared norm
    of the shifted rows (eight rows at a time and a scalar remainder: every position of
    a partial last chunk), or infinity as soon as one row holds NaN or infinity."""
    mod = _dispatch.kernel_module(level)
    n, k = 1101, 5
    X, C0 = _data(n, d, k, dtype, seed=d)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    fn = _kernels._fn("lloyd_block", np.dtype(dtype), mod)

    def worst(Q):
        return fn(Q, C.shift, C.cs, C.half_csq, C.c64, np.empty(0), np.empty(n, np.int32),
                  np.empty(0), np.zeros((k, d)), np.zeros(k), np.zeros(1))

    def largest(Q):
        xs = Q.astype(np.float64) - C.shift.astype(np.float64)
        return np.einsum("ij,ij->i", xs, xs).max()

    np.testing.assert_allclose(worst(X), largest(X), rtol=1e-5)
    for r in (0, 5, 7, 8, 600, n - 6, n - 5, n - 1):
        Q = X.copy()
        Q[r] *= 1000  # the largest row, wherever it is
        np.testing.assert_allclose(worst(Q), largest(Q), rtol=1e-5)
        for bad in (np.nan, np.inf, -np.inf):
            Q = X.copy()
            Q[r, d - 1] = bad
            assert worst(Q) == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_calls_are_bit_identical(dtype):
    """Accumulating a block in several calls gives exactly the one-call result."""
    X, C0 = _data(1000, 7, 9, dtype, seed=5)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    w = np.random.default_rng(2).uniform(0, 2, 1000)

    def run(splits):
        sums, counts, inertia = np.zeros((9, 7)), np.zeros(9), np.zeros(1)
        labels = np.empty(1000, np.int32)
        bounds = [0] + splits + [1000]
        for a, b in zip(bounds[:-1], bounds[1:]):
            _kernels.lloyd_block(X[a:b], C, w[a:b], labels[a:b], None, sums, counts, inertia)
        return sums, counts, inertia, labels

    one = run([])
    for splits in ([1], [255, 256, 257], [13, 500, 999], list(range(1, 1000, 37))):
        other = run(splits)
        for a, b in zip(one, other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_go_to_lowest_index(dtype):
    X = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=dtype)
    C0 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=dtype)  # x0 equidistant
    C = _kernels.Centers(C0, np.zeros(2), dtype)
    labels = np.empty(2, np.int32)
    _kernels.assign_block(X, C, labels)
    assert labels.tolist() == [0, 0]


@pytest.mark.parametrize("level", LEVELS)
def test_far_from_origin_float32_is_exact(level):
    """float32 data with mean 1e4 and spread 1: labels are the float64 argmin and
    distances are exact (a GEMM-style expansion loses both, scikit-learn #9354)."""
    mod = _dispatch.kernel_module(level)
    X, C0 = _data(2000, 8, 10, np.float32, seed=7, offset=1e4)
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), np.float32)
    labels = np.empty(2000, np.int32)
    mind = np.empty(2000)
    _kernels.assign_block(X, C, labels, mind, module=mod)
    ref_labels, ref_d2 = assign(X, C0)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(mind, ref_d2, rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_near_ties_resolved_exactly(dtype):
    """Rows almost equidistant from two centers get the float64 argmin."""
    rng = np.random.default_rng(11)
    C0 = np.array([[5.0, 5.0, 5.0], [5.0, 5.0, 5.001]], dtype=dtype)
    X = np.empty((500, 3), dtype=dtype)
    X[:, :2] = rng.uniform(0, 10, (500, 2))
    X[:, 2] = np.float64(5.0005) + rng.uniform(-1e-4, 1e-4, 500)
    C = _kernels.Centers(C0, np.zeros(3), dtype)
    labels = np.empty(500, np.int32)
    _kernels.assign_block(X, C, labels)
    np.testing.assert_array_equal(labels, assign(X, C0)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_moments_block(dtype):
    X, _ = _data(1001, 6, 1, dtype, offset=1e3)
    ref = X[0].astype(np.float64)
    s1, s2 = np.zeros(6), np.zeros(6)
    _kernels.moments_block(X[:400], ref, s1, s2)
    _kernels.moments_block(X[400:], ref, s1, s2)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(ref + s1 / 1001, X64.mean(0), rtol=1e-13)
    np.testing.assert_allclose(s2 / 1001 - (s1 / 1001) ** 2, X64.var(0), rtol=1e-9)


def test_wrong_arguments_raise_instead_of_crashing():
    """The checked wrappers refuse what would crash the compiled kernels."""
    X = np.zeros((10, 3), np.float32)
    C = _kernels.Centers(np.zeros((2, 3)), np.zeros(3), np.float32)
    with pytest.raises(TypeError, match="internal error"):
        _kernels.assign_block(X.astype(np.float64), C, np.empty(10, np.int32))
    with pytest.raises(TypeError, match="internal error"):
        _kernels.assign_block(np.asfortranarray(np.zeros((10, 3), np.float32)), C,
                              np.empty(10, np.int32))
    with pytest.raises(TypeError, match="internal error"):
        _kernels.assign_block(X, C, np.empty(9, np.int32))
    with pytest.raises(TypeError, match="internal error"):
        _kernels.assign_block(X, C, np.empty(10, np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,k", [(1024, 64, 10), (300, 3, 16), (5000, 8, 8), (700, 5, 17)])
def test_assign_small_matches_reference_and_assign_block(dtype, n, d, k):
    """Both branches of the small-batch rule (exact kernel, blocked kernel)."""
    X, C0 = _data(n, d, k, dtype, seed=9, offset=30.0)
    X = np.round(X)  # integer-valued data (as digits): exact ties
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    labels, mind = np.empty(n, np.int32), np.empty(n)
    _kernels.assign_small(X, C, labels, mind)
    ref_labels, ref_d2 = assign(X, C0)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(mind, ref_d2, rtol=1e-12)
    blk = np.empty(n, np.int32)
    _kernels.assign_block(X, C, blk)
    np.testing.assert_array_equal(labels, blk)


def _rounded_ties(d, k, dtype, seed):
    """Rows at the same distance from two centers in exact arithmetic, which rounding
    sets apart: center 1 is center 0 with features a and b swapped, and every row has
    x_a == x_b.  The squared terms are the same, added at other positions of the sum,
    so how the float64 distance is summed (feature order, partial sums, FMA) decides
    which of the two is nearer, for about half of the rows."""
    rng = np.random.default_rng(seed)
    C0 = rng.standard_normal((k, d)) * rng.uniform(0.5, 5)
    a, b = rng.choice(d, 2, replace=False)
    C0[1] = C0[0]
    C0[1, [a, b]] = C0[0, [b, a]]
    X = (rng.standard_normal((300, d)) * 0.05 + C0[0]).astype(dtype)
    X[:, b] = X[:, a]
    return np.ascontiguousarray(X), C0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d,k", [(13, 21), (16, 5), (32, 64), (67, 9)])
def test_rounded_ties_get_one_label_in_every_kernel_and_level(dtype, d, k):
    """Labels come from one exact expression (lloyd._exact_dist: 8 partial sums in
    feature order, a fixed tree, no FMA) in every kernel that decides them by exact
    distances: the blocked assignment and the fused pass (their near-tie recheck),
    predict's exact kernel and the small-batch kernel, at every CPU level, equal the
    reference's sum in that order.  With FMA in one kernel and partial sums by vector
    width in another, a third of these rows got another label from predict on a few
    rows than on many, and a quarter another label on avx2/avx512 than on the
    baseline level.  (Below 9 features every partial sum holds one square, and the
    swapped squares round alike: no split to test.)"""
    X, C0 = _rounded_ties(d, k, dtype, seed=d * 100 + k)
    n = len(X)
    ref = assign(X, C0)[0]
    assert 0.1 * n < (ref == 1).sum() < 0.9 * n  # the rounding does split the tied rows
    C = _kernels.Centers(C0, X.astype(np.float64).mean(0), dtype)
    for level in LEVELS:
        mod = _dispatch.kernel_module(level)
        got = {}
        got["assign_block"] = np.empty(n, np.int32)
        _kernels.assign_block(X, C, got["assign_block"], module=mod)
        got["nearest_exact"] = np.empty(n, np.int32)
        assert _kernels.nearest_exact(X, C, got["nearest_exact"], module=mod) == 0
        got["lloyd_block"] = np.empty(n, np.int32)
        _kernels.lloyd_block(X, C, None, got["lloyd_block"], None, np.zeros((k, d)),
                             np.zeros(k), np.zeros(1), module=mod)
        for name, labels in got.items():
            np.testing.assert_array_equal(labels, ref, err_msg=f"{name} at {level}")
        # the fused mini-batch step: its labels show in the weights its centers got
        step = _kernels.MinibatchStep(dtype, C0.copy(), np.zeros(k), module=mod)
        step.c64[:] = C0
        step(X, np.arange(n, dtype=np.int64))
        np.testing.assert_array_equal(step.weight_sums, np.bincount(ref, minlength=k),
                                      err_msg=f"minibatch_step at {level}")
    small = np.empty(n, np.int32)
    _kernels.assign_small(X, C, small, np.empty(n))
    np.testing.assert_array_equal(small, ref)
