"""Grouped (Yinyang) bounds: algorithm='bounded' with many clusters gives the result of
algorithm='lloyd', bit for bit, while measuring far fewer center distances."""
import numpy as np
import pytest

from kmaot import KMeans, _dispatch, _kernels, _lloyd, _yinyang

from pairs import assert_identical, blob_data as _data, fit_pair as _pair
from reference import accumulate, assign

LEVELS = [lv for lv in _dispatch.supported_levels() if lv in _dispatch.BUILT_LEVELS]


@pytest.fixture(params=["compiled", "blas"])
def grouped(request, monkeypatch):
    """Grouped bounds whatever the shape (the rule would pick Hamerly's for some), the
    scores from the compiled grouped kernel or from BLAS whatever the row length."""
    monkeypatch.setattr(_yinyang, "choose_bounds", lambda *a: "grouped")
    blas = request.param == "blas"
    assert _yinyang._blas_controller() is not None   # threadpoolctl: a test requirement
    monkeypatch.setattr(_yinyang, "scores_by_blas", lambda d, k, share=1.0: blas)
    return request.param


def _assert_identical(a, b):
    assert hasattr(a, "labels_") and hasattr(b, "labels_")
    assert_identical(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,k", [(4000, 16, 128), (3000, 5, 64), (2000, 2, 200),
                                   (1500, 40, 300), (800, 3, 11)])
def test_grouped_equals_lloyd(grouped, dtype, n, d, k):
    X, init = _data(n, d, k, dtype)
    a, b = _pair(X, init, max_iter=30)
    _assert_identical(a, b)
    st = b.iteration_stats_
    assert "n_dist" in st[0]                          # the grouped pass ran
    # first pass: every row measured (but those that the separation of the initial
    # label 0 already settles)
    assert st[0]["n_full"] > 0.9 * n
    # later passes skip rows and, within measured rows, groups of centers
    assert min(s["n_full"] for s in st[1:]) < n
    assert min(s["n_dist"] for s in st[1:]) < 0.5 * n * k


def test_grouped_weighted_far_from_origin_threads_and_batches(grouped):
    X, init = _data(6000, 8, 80, np.float32, seed=3, offset=1e4)
    w = np.random.default_rng(1).uniform(0.1, 5, len(X))
    ref = KMeans(80, init=init, tol=0, algorithm="lloyd", max_iter=25).fit(X, sample_weight=w)
    for n_threads, batch_size in ((1, None), (2, 777), (3, 2048)):
        b = KMeans(80, init=init, tol=0, algorithm="bounded", max_iter=25,
                   n_threads=n_threads, batch_size=batch_size).fit(X, sample_weight=w)
        _assert_identical(ref, b)


@pytest.mark.parametrize("d", range(2, 11))
def test_grouped_equals_lloyd_at_every_short_row_length(grouped, d):
    # rows of 2..8 features are accumulated by generated code (lloyd.ACC_WIDTHS), longer
    # ones by a loop: the same bits from either pass, weighted or not
    X, init = _data(1500, d, 40, np.float32, seed=d, offset=30.0)
    w = np.random.default_rng(d).uniform(0.1, 5, len(X))
    for sample_weight in (None, w):
        a, b = _pair(X, init, sample_weight=sample_weight, max_iter=12)
        _assert_identical(a, b)


def test_grouped_with_ties_duplicates_and_empty_clusters(grouped):
    # duplicate rows and duplicate initial centers: exact ties (the lowest index wins),
    # empty clusters relocated
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (60, 4))
    X = np.repeat(base, 20, axis=0)
    init = np.vstack([base[:30], base[:30], rng.normal(50, 1, (10, 4))])
    a, b = _pair(X, init, max_iter=40)
    _assert_identical(a, b)
    assert a.iteration_stats_[0]["n_empty"] > 0
    # a grid: many rows exactly halfway between two centers
    g = np.arange(12, dtype=np.float64)
    X = np.array([(x, y) for x in g for y in g] * 3)
    init = X[::2][:70].copy() + 0.5
    a, b = _pair(X, init, max_iter=20)
    _assert_identical(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_breaks_rounded_ties_as_lloyd(grouped, dtype):
    """Rows at the same distance from two centers up to rounding (center 1 is center 0
    with two features swapped; the rows have those features equal): the grouped
    passes' exact rechecks (yinyang._exact_groups, _exact_all) order the two centers
    as lloyd_block's does, by the one exact distance that decides labels."""
    rng = np.random.default_rng(11)
    d, k = 13, 40
    C = rng.normal(0, 4, (k, d))
    C[0, 9] = C[0, 2] + 0.3   # rows with x_9 == x_2 still lie near center 0
    C[1] = C[0]
    C[1, [2, 9]] = C[0, [9, 2]]
    X = C[rng.integers(0, k, 3000)] + rng.normal(0, 0.6, (3000, d))
    X[:1500] = C[0] + rng.normal(0, 0.05, (1500, d))
    X[:, 9] = X[:, 2]
    X = X.astype(dtype)
    first = assign(X, C)[0][:1500]
    assert set(first) == {0, 1} and 100 < (first == 1).sum() < 1400  # rounding splits them
    a, b = _pair(X, C.copy(), max_iter=3)
    _assert_identical(a, b)


def test_grouped_matches_scikit_learn(grouped):
    sklearn = pytest.importorskip("sklearn.cluster")
    X, init = _data(3000, 6, 96, np.float64, seed=9)
    ours = KMeans(96, init=init, n_init=1, max_iter=50, tol=0, algorithm="bounded").fit(X)
    theirs = sklearn.KMeans(96, init=init, n_init=1, max_iter=50, tol=0,
                            algorithm="lloyd").fit(X)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-10)


def _uneven(k):
    """A grouping with groups of 1, 2, 3, ... centers, interleaved indices."""
    group_of = np.empty(k, np.int32)
    g, left, size = 0, 0, 1
    order = np.random.default_rng(0).permutation(k)
    while left < k:
        group_of[order[left:left + size]] = g
        left += size
        g, size = g + 1, size + 1
    return group_of


def _sorted_centers(C, state, how, rng):
    """SortedCenters with the centers of each group in the grouping's order or shuffled
    within each group (the kernel's result must not depend on it)."""
    S = _yinyang.SortedCenters(C, state)
    if how == "shuffled":
        S.order = np.lexsort((rng.permutation(C.k), state.group_of)).astype(np.int32)
        S.cg = np.ascontiguousarray(C.cs[S.order])
        S.hg = np.ascontiguousarray(C.half_csq[S.order])
    return S


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["grouping", "shuffled"])
@pytest.mark.parametrize("via", ["compiled", "blas"])
def test_grouped_kernel_from_a_stale_state_with_uneven_groups(level, dtype, how, via,
                                                              monkeypatch):
    """Passes from stale states (labels and bounds of other centers) with groups of
    unequal sizes, a third of the centers moving (some far) and the others not at all,
    whatever the order of the centers within a group, over several spans of rows: the
    kernel must give the reference labels and sums, and bounds that are true bounds."""
    mod = _dispatch.kernel_module(level)
    k = 45
    monkeypatch.setattr(_yinyang, "group_centers", lambda c, G: _uneven(c.shape[0]))
    X, _ = _data(3000, 7, k, dtype, seed=11)
    n, d = X.shape
    rng = np.random.default_rng(2)
    C_old = X[rng.choice(n, k, replace=False)].astype(np.float64)
    shift = X.astype(np.float64).mean(0)
    state = _yinyang.Grouped(n, C_old)
    G = state.n_groups
    assert sorted(np.bincount(state.group_of).tolist()) == list(range(1, G)) + [k - G * (G - 1) // 2]

    def run(C):
        sums, counts, inertia = np.zeros((k, d)), np.zeros(k), np.zeros(1)
        delta = state.delta(C)
        gdelta = np.maximum.reduceat(delta[state.order], state.gstart[:-1])
        S = _sorted_centers(C, state, how, rng)
        sep = _lloyd.Bounds.separation(C)
        n_full = np.zeros(2, np.int64)
        if via == "compiled":
            _kernels.yinyang_block(X, C, S, None, delta, gdelta, sep, state.labels,
                                   state.upper, state.lower, sums, counts, inertia,
                                   n_full, module=mod)
        else:
            # in pieces of uneven length, with spans of 64 listed rows
            SG = _kernels.ScoredGrouped(C, S, delta, gdelta, sep, module=mod)
            SG.SPAN = 64
            for a, b in ((0, 1), (1, 700), (700, 701), (701, n)):
                SG.run(X[a:b], None, state.labels[a:b], state.upper[a:b],
                       state.lower[a:b], sums, counts, inertia, n_full)
        state.c64 = C.c64
        return sums, counts, inertia

    C = C_old
    for step in range(4):
        Cp = _kernels.Centers(C, shift, dtype)
        sums, counts, inertia = run(Cp)
        ref_labels, ref_d2 = assign(X, Cp.c64)
        np.testing.assert_array_equal(state.labels, ref_labels)
        ref_sums, ref_counts = accumulate(X, ref_labels, k)
        np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_allclose(inertia[0], ref_d2.sum(), rtol=1e-12)
        D = np.sqrt(((X.astype(np.float64)[:, None, :] - Cp.c64[None]) ** 2).sum(2))
        assert (state.upper >= np.sqrt(ref_d2)).all()
        D[np.arange(n), ref_labels] = np.inf
        for g in range(G):
            members = np.flatnonzero(state.group_of == g)
            assert (state.lower[:, g] <= D[:, members].min(1)).all()
        if step:
            assert (state.lower > 0).mean() > 0.5   # and they are informative
        move = rng.random(k) < 0.35
        C = C + move[:, None] * rng.normal(0, 0.3, C.shape) * (step + 1)


def test_choice_of_bounds_and_memory_rule():
    # one rule: grouped from MIN_CLUSTERS on while the group bounds (4 bytes per group
    # and row) take no more memory than the data row itself
    assert _yinyang.MIN_CLUSTERS == 512
    assert _yinyang.choose_bounds(1000, 511, 128, 4) == "hamerly"
    assert _yinyang.choose_bounds(1000, 64, 32, 4) == "hamerly"        # W1
    assert _yinyang.choose_bounds(1000, 512, 128, 4) == "grouped"
    assert _yinyang.choose_bounds(1000, 1024, 128, 4) == "grouped"     # W2: 408 <= 512
    assert _yinyang.choose_bounds(1000, 1024, 64, 4) == "hamerly"      # 408 > 256
    assert _yinyang.choose_bounds(1000, 1024, 64, 8) == "grouped"
    X, init = _data(3000, 64, 512, np.float32, seed=4)
    km = KMeans(512, init=init, tol=0, max_iter=3).fit(X)            # auto: bounded
    assert "n_dist" in km.iteration_stats_[0]
    X, init = _data(3000, 2, 512, np.float32, seed=4)
    km = KMeans(512, init=init, tol=0, max_iter=3).fit(X)
    assert "n_full" in km.iteration_stats_[0] and "n_dist" not in km.iteration_stats_[0]


def test_group_centers_is_a_deterministic_partition():
    rng = np.random.default_rng(8)
    c = np.vstack([rng.normal(0, 1, (50, 3)), np.repeat(rng.normal(9, 1, (1, 3)), 50, 0)])
    g1 = _yinyang.group_centers(c, 10)
    g2 = _yinyang.group_centers(c.copy(), 10)
    np.testing.assert_array_equal(g1, g2)
    assert g1.dtype == np.int32 and g1.shape == (100,)
    G = g1.max() + 1
    assert (np.bincount(g1, minlength=G) > 0).all()     # numbered 0..G-1, none empty
    assert 1 < G <= 10
    assert np.unique(g1[50:]).size == 1                 # coinciding centers: one group
    assert _yinyang.group_centers(np.ones((1, 2)), 5).tolist() == [0]


def test_grouped_kernel_rejects_a_bad_grouping():
    X, init = _data(500, 4, 70, np.float64)
    state = _yinyang.Grouped(500, init)
    C = _kernels.Centers(init, X.mean(0), np.float64)
    S = _yinyang.SortedCenters(C, state)
    S.order = S.order.copy()
    S.order[0] = S.order[1]                           # not a permutation
    G = state.n_groups
    with pytest.raises(TypeError, match="inconsistent center groups"):
        _kernels.yinyang_block(X, C, S, None, np.zeros(70), np.zeros(G), np.zeros(70),
                               state.labels, state.upper, state.lower, np.zeros((70, 4)),
                               np.zeros(70), np.zeros(1), np.zeros(2, np.int64))
    S = _yinyang.SortedCenters(C, state)
    with pytest.raises(TypeError, match="lower"):
        _kernels.yinyang_block(X, C, S, None, np.zeros(70), np.zeros(G), np.zeros(70),
                               state.labels, state.upper, state.lower.astype(np.float64),
                               np.zeros((70, 4)), np.zeros(70), np.zeros(1),
                               np.zeros(2, np.int64))


def test_blas_scores_need_threadpoolctl(monkeypatch):
    # the rule: wide rows, and BLAS threads that threadpoolctl can limit
    assert _yinyang.scores_by_blas(128, 1024)
    assert not _yinyang.scores_by_blas(_yinyang.BLAS_MIN_FEATURES - 1, 1024)
    monkeypatch.setitem(_yinyang._BLAS, "ctl", None)     # as without threadpoolctl
    assert not _yinyang.scores_by_blas(128, 1024)
    X, init = _data(3000, 64, 512, np.float32, seed=4)
    a = KMeans(512, init=init, tol=0, max_iter=6, n_threads=2).fit(X)
    monkeypatch.undo()
    monkeypatch.setattr(_yinyang, "BLAS_MIN_SHARE", 0.0)       # BLAS in every pass
    b = KMeans(512, init=init, tol=0, max_iter=6, n_threads=2).fit(X)
    monkeypatch.undo()
    c = KMeans(512, init=init, tol=0, max_iter=6, n_threads=2).fit(X)   # the rule
    _assert_identical(a, b)
    _assert_identical(a, c)
    k = 512
    # BLAS scores every center of a listed row; the compiled pass only some groups
    assert all(s["n_dist"] == s["n_full"] * k for s in b.iteration_stats_)
    assert all(s["n_dist"] < s["n_full"] * k for s in a.iteration_stats_[1:])
    # the rule: BLAS for the first pass, the compiled kernel once few groups need it
    share = [s["n_dist"] == s["n_full"] * k for s in c.iteration_stats_]
    assert share[0] and not share[-1]


def test_measured_share_estimates_the_compiled_pass():
    X, init = _data(4000, 16, 200, np.float64, seed=2)
    state = _yinyang.Grouped(len(X), init)
    C = _kernels.Centers(init, X.mean(0), np.float64)
    delta = state.delta(C)
    gdelta = np.maximum.reduceat(delta[state.order], state.gstart[:-1])
    assert _yinyang.measured_share(state, delta, gdelta) == 1.0      # no bounds yet
    from kmaot._engine import Engine
    from kmaot._sources import ArraySource

    src = ArraySource(X)
    state.run_pass(Engine(1), src, C)
    zero = np.zeros(C.k)
    still = _yinyang.measured_share(state, zero, np.zeros(state.n_groups), step=1)
    moved = _yinyang.measured_share(state, zero + 1.0, np.ones(state.n_groups), step=1)
    assert 0.0 <= still < moved <= 1.0
    # centers that did not move: the compiled pass measures at most that share
    state.run_pass(Engine(1), src, C)
    assert state.n_dist <= still * len(X) * C.k


def _blas_threads():
    ctl = _yinyang._blas_controller()
    return max(lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers)


def _spy_blas_threads(monkeypatch):
    """The BLAS thread count at every matmul of the kernels layer, from now on."""
    seen = []
    real = np.matmul

    def spy(*a, **kw):
        seen.append(_blas_threads())
        return real(*a, **kw)

    monkeypatch.setattr(_kernels.np, "matmul", spy)
    return seen


def test_blas_pass_limits_blas_to_one_thread(monkeypatch):
    """While the pool's threads call BLAS, BLAS runs one thread each."""
    seen = _spy_blas_threads(monkeypatch)
    X, init = _data(3000, 64, 512, np.float32, seed=4)
    KMeans(512, init=init, tol=0, max_iter=2, n_threads=2).fit(X)
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("k", [512, 40])   # grouped bounds, Hamerly's
def test_bounded_run_holds_blas_to_one_thread_between_passes(monkeypatch, k):
    """The products of a bounded run outside its passes (the centers' separation, the
    grouping) run on one BLAS thread too: on BLAS's own threads they left them spinning
    against the pool's threads.  The callback (user code) gets BLAS's threads back."""
    assert _yinyang._blas_controller() is not None   # threadpoolctl: a test requirement
    before = _blas_threads()
    seen = {"separation": [], "grouping": [], "callback": []}
    real_sep, real_group = _lloyd.Bounds.separation, _yinyang.group_centers

    def separation(C):
        seen["separation"].append(_blas_threads())
        return real_sep(C)

    def grouping(*a, **kw):
        seen["grouping"].append(_blas_threads())
        return real_group(*a, **kw)

    monkeypatch.setattr(_lloyd.Bounds, "separation", staticmethod(separation))
    monkeypatch.setattr(_yinyang, "group_centers", grouping)
    X, init = _data(3000, 64, k, np.float32, seed=4)
    KMeans(k, init=init, tol=0, max_iter=3, n_threads=2, algorithm="bounded").fit(
        X, callback=lambda st: seen["callback"].append(_blas_threads()))
    assert len(seen["separation"]) >= 3 and set(seen["separation"]) == {1}
    if k >= _yinyang.MIN_CLUSTERS:
        assert seen["grouping"] == [1]
    else:
        assert seen["grouping"] == []
    assert seen["callback"] == [before] * 3
    assert _blas_threads() == before


def test_fit_in_a_worker_thread_limits_blas_to_one_thread(monkeypatch):
    """A fit started from a thread other than the main one (a web server's worker, say)
    also runs its BLAS-scored passes with one BLAS thread per pool thread, and BLAS
    gets its threads back afterwards (threadpoolctl lets only one thread at a time set
    OpenBLAS's process-wide limit: the fit's thread takes that role for its pass)."""
    import threading

    before = _blas_threads()
    seen = _spy_blas_threads(monkeypatch)
    X, init = _data(3000, 64, 512, np.float32, seed=4)
    km = KMeans(512, init=init, tol=0, max_iter=2, n_threads=2)
    t = threading.Thread(target=km.fit, args=(X,))
    t.start()
    t.join(120)
    assert hasattr(km, "cluster_centers_")
    assert seen and set(seen) == {1}
    assert _blas_threads() == before


def test_grouped_blas_pass_names_a_bad_row(grouped):
    X, init = _data(3000, 8, 40, np.float64, seed=6)
    state = _yinyang.Grouped(len(X), init)
    C = _kernels.Centers(init, X.mean(0), np.float64)
    S = _yinyang.SortedCenters(C, state)
    G = state.n_groups
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[1234, 3] = bad
        SG = _kernels.ScoredGrouped(C, S, np.zeros(40), np.zeros(G), np.zeros(40))
        inertia = np.zeros(1)
        SG.run(Xb, None, state.labels.copy(), state.upper.copy(), state.lower.copy(),
               np.zeros((40, 8)), np.zeros(40), inertia, np.zeros(2, np.int64))
        assert not np.isfinite(inertia[0])     # what the pass turns into a ValueError


def test_relocation_from_bounds_equals_a_pass(grouped):
    """Empty clusters take the farthest rows: found from the grouped pass's upper
    bounds (no extra pass), the same rows, labels and distances as with a pass, ties
    included (duplicate rows)."""
    from kmaot._engine import Engine
    from kmaot._sources import ArraySource

    rng = np.random.default_rng(4)
    X = np.repeat(rng.normal(0, 1, (300, 5)), 3, axis=0)
    X[::7] *= 4.0
    init = X[rng.choice(len(X), 60, replace=False)]
    state = _yinyang.Grouped(len(X), init)
    C = _kernels.Centers(init, X.mean(0), np.float64)
    src = ArraySource(X)
    state.run_pass(Engine(2), src, C)
    for n in (1, 3, 10, 37):
        a = _lloyd.farthest_rows(Engine(1), src, C, n)
        b = _lloyd.farthest_by_bound(src, C, state.upper, n)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
