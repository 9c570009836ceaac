"""Property-based tests of the public API: whatever the input, KMeans gives a correct
result or a clear ValueError/TypeError -- never a crash, a hang or silent garbage.

Inputs: every dtype family (floats of 2-16 bytes, signed and unsigned integers, bool,
complex, object), shapes with 0 and 1 included, NaN and infinity, magnitudes from 1e-300
to 1e300 and far from the origin, duplicate and constant rows, n_clusters from -1 to
n_samples + 1, every init, sample weights with zeros, C/Fortran/strided/read-only/
big-endian layouts, and every source (array, list, memmap, .npy file, shards).

"Correct" is checked two ways: invariants on every result (labels are the nearest
centers, inertia is the sum of those distances, centers are the means of their members
after a strict convergence), and equality with tests/reference.py's NumPy Lloyd from
the same initial centers on well-conditioned data.

The number of examples comes from a Hypothesis profile: ``kmaot-ci`` (default, about
half a minute in all) or ``kmaot-dev`` (a few); set KMAOT_HYPOTHESIS_PROFILE.  The long
run (>= 10,000 cases) is benchmarks/fuzz_long.py, which reuses draw_case/check_case.
"""
import os
import sys
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, os.path.dirname(__file__))
from reference import lloyd as ref_lloyd  # noqa: E402
from reference import sq_distances  # noqa: E402

from kmaot import ConvergenceWarning, KMeans  # noqa: E402

settings.register_profile(
    "kmaot-ci", max_examples=120, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "kmaot-dev", max_examples=20, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("KMAOT_HYPOTHESIS_PROFILE", "kmaot-ci")

FLOATS = ["<f2", "<f4", ">f4", "<f8", ">f8", "<f16"]
INTS = ["<i1", "<u1", "<i4", ">i8", "<u8"]
BAD = ["?", "<c8", "<c16", "O", "<U3", "<M8[s]"]

#: magnitude above which float64 squared distances may overflow: "too large" is a
#: correct answer there
HUGE = 1e100
#: the same for float32 data, whose kernels score squared norms in float32
HUGE32 = 1e17


# ------------------------------------------------------------------------ strategy
@st.composite
def draw_case(draw):
    """One fit: (X as built, dict of facts used to judge the outcome, params, fit kw)."""
    n = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(0, 40))
    d = draw(st.sampled_from([0, 1, 2]) | st.integers(0, 6))
    kind = draw(st.sampled_from(["float"] * 6 + ["int"] * 2 + ["bad"]))
    dtype = np.dtype(draw(st.sampled_from({"float": FLOATS, "int": INTS, "bad": BAD}[kind])))
    facts = {"n": n, "d": d, "dtype": dtype, "valid": kind != "bad" and n > 0 and d > 0}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    how = draw(st.sampled_from(["normal", "hypothesis", "duplicates", "constant"]))
    if kind == "bad":
        X = rng.standard_normal((n, d)).astype(dtype) if dtype.kind != "M" else \
            np.zeros((n, d), dtype)
    elif how == "hypothesis":
        elems = st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False,
                          width=64) if kind == "float" else None
        X = draw(hnp.arrays(dtype if kind == "int" else np.float64, (n, d), elements=elems))
        if kind == "float":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow
                X = X.astype(dtype)
    else:
        scale = draw(st.sampled_from([1e-300, 1e-30, 1e-5, 1.0, 1e3, 1e30, 1e150, 1e300]))
        offset = draw(st.sampled_from([0.0, 0.0, 1e4, -1e6, 1e20]))
        if kind == "int":
            info = np.iinfo(dtype)
            X = rng.integers(max(info.min, -1000), min(info.max, 1000), (n, d),
                             endpoint=True).astype(dtype)
        else:
            X = rng.standard_normal((n, d)) * scale + offset
            with np.errstate(over="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                X = X.astype(dtype)
        if how == "duplicates" and n > 1:
            X = X[rng.integers(0, max(1, n // 3), n)]
        elif how == "constant" and n > 0:
            X[:] = X[0]
    if kind == "float" and X.size and draw(st.booleans()) and draw(st.booleans()):
        # NaN or infinity somewhere (also what a float16 overflow produced above)
        X.flat[int(rng.integers(X.size))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if kind != "bad" and X.size:
        with np.errstate(all="ignore"):
            X64 = X.astype(np.float64)
        facts["finite"] = bool(np.isfinite(X64).all())
        facts["max_abs"] = float(np.abs(X64).max()) if facts["finite"] else np.inf
    else:
        facts["finite"], facts["max_abs"] = True, 0.0

    k_choice = draw(st.sampled_from(["one", "n", "n+1", "some", "zero", "negative",
                                     "float", "some", "some"]))
    k = {"one": 1, "n": n, "n+1": n + 1, "zero": 0, "negative": -1, "float": 2.5,
         "some": draw(st.integers(1, max(1, n)))}[k_choice]
    facts["k_valid"] = isinstance(k, int) and 1 <= k <= n
    init = draw(st.sampled_from(["k-means++", "random", "rows"]))
    if init == "rows" and facts["k_valid"] and facts["valid"]:
        init = X[rng.choice(n, k, replace=False)].astype(np.float64)
    elif init == "rows":
        init = "k-means++"
    w = None
    if draw(st.booleans()) and n > 0:
        w = rng.uniform(0, 3, n)
        if draw(st.booleans()):
            w[rng.random(n) < 0.5] = 0.0
    facts["weights_ok"] = w is None or (
        w.sum() > 0 and (not isinstance(init, str) or init != "random"
                         or np.count_nonzero(w) >= (k if facts["k_valid"] else 0)))
    params = dict(n_clusters=k, init=init, random_state=seed % 1000, tol=0.0, max_iter=60,
                  n_threads=draw(st.integers(1, 3)),
                  batch_size=draw(st.none() | st.integers(1, max(1, n))))
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly", "list", "memmap",
                                   "npy", "shards", "pathlike"]))
    if layout in ("list", "memmap", "npy", "shards", "pathlike") and (
            kind == "bad" or X.size == 0):
        layout = "C"  # these need a numeric, non-empty array to be written
    return X, facts, params, w, layout


def _materialize(X, layout, tmp):
    """The input as the user would pass it (and the float64 view kmaot computes on)."""
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "strided":
        big = np.repeat(X, 2, axis=0)
        return big[::2]
    if layout == "readonly":
        Y = X.copy()
        Y.setflags(write=False)
        return Y
    if layout == "list":
        return X.tolist()
    path = os.path.join(tmp, "X.npy")
    np.save(path, X)
    if layout == "memmap":
        return np.load(path, mmap_mode="r")
    if layout == "pathlike":
        import pathlib
        return pathlib.Path(path)
    if layout == "shards":
        cuts = sorted({0, X.shape[0], X.shape[0] // 3, X.shape[0] // 2})
        paths = []
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
            p = os.path.join(tmp, f"s{i}.npy")
            np.save(p, X[a:b])
            paths.append(p)
        return paths
    return path


def _compute_view(X, layout):
    """What kmaot clusters: X converted to its compute dtype, as float64."""
    if layout == "list":
        X = np.asarray(X.tolist())
    dt = np.dtype(X.dtype)
    cd = np.float32 if (dt.kind == "f" and dt.itemsize == 4) else np.float64
    with np.errstate(all="ignore"):
        return X.astype(cd).astype(np.float64), np.dtype(cd)


# -------------------------------------------------------------------------- oracle
def check_case(case):
    """Fit; the outcome must be a verified result or a ValueError/TypeError that was
    allowed by the input.  Returns 'ok' or the exception class name."""
    X, facts, params, w, layout = case
    with tempfile.TemporaryDirectory(prefix="kmaot-hyp-") as tmp:
        data = _materialize(X, layout, tmp)
        km = KMeans(**params)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                km.fit(data, sample_weight=w)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            assert msg and "internal error" not in msg, msg
            expected = (not facts["valid"] or not facts["k_valid"] or not facts["finite"]
                        or not facts["weights_ok"] or facts["max_abs"] > HUGE
                        or facts["max_abs"] > HUGE32
                        and _compute_view(X[:0], layout)[1] == np.float32)
            assert expected, f"unexpected {type(exc).__name__}: {msg}"
            if not facts["finite"] and facts["valid"] and facts["k_valid"]:
                assert isinstance(exc, ValueError)
            return type(exc).__name__
        assert facts["valid"] and facts["k_valid"] and facts["finite"] and facts["weights_ok"]
        Xc, cdtype = _compute_view(X, layout)
        _check_result(km, Xc, cdtype, params, w, data, layout)
        return "ok"


def _check_result(km, Xc, cdtype, params, w, data, layout):
    n, d = Xc.shape
    k = params["n_clusters"]
    C = km.cluster_centers_
    assert C.shape == (k, d) and C.dtype == cdtype and np.isfinite(C).all()
    assert 1 <= km.n_iter_ <= params["max_iter"]
    C64 = C.astype(np.float64)
    labels = km.predict(data)
    assert labels.shape == (n,) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < k
    if hasattr(km, "labels_"):
        np.testing.assert_array_equal(km.labels_, labels)
    # labels are nearest centers (up to the rounding of a distance computation)
    with np.errstate(over="ignore"):  # beyond 1e154 the tolerance becomes infinite
        D = sq_distances(Xc, C64)
        scale = (np.abs(Xc).max(axis=1) + np.abs(C64).max()) ** 2 * d
    dmin = D.min(axis=1)
    dlab = D[np.arange(n), labels]
    assert (dlab <= dmin + 1e-9 * dmin + 1e-12 * scale).all(), "a label is not the nearest center"
    # inertia is the (weighted) sum of those distances
    ww = np.ones(n) if w is None else w
    inertia = float(ww @ dlab)
    pos = ww > 0  # (0 * an overflowed scale would be NaN)
    assert abs(km.inertia_ - inertia) <= 1e-7 * inertia + 1e-12 * float(ww[pos] @ scale[pos])
    stats = km.iteration_stats_
    assert len(stats) == km.n_iter_
    # strict convergence: every center is the weighted mean of its members
    if stats[-1]["center_shift"] == 0.0 and stats[-1]["n_empty"] == 0:
        for j in range(k):
            m = labels == j
            if ww[m].sum() > 0:
                mean = (ww[m] @ Xc[m]) / ww[m].sum()
                tol = (1e-6 if cdtype == np.float32 else 1e-12) * (np.abs(Xc[m]).max() + 1e-300)
                assert np.abs(C64[j] - mean).max() <= tol, (j, C64[j], mean)


# --------------------------------------------------------------------------- tests
@settings(settings.get_profile(PROFILE))
@given(draw_case())
def test_any_input_gives_a_verified_result_or_a_clear_error(case):
    check_case(case)


@pytest.mark.parametrize("value", [1e19, 1e20, 1e29, 3e38])
def test_float32_overflow_is_refused_not_garbage(value):
    """Found by benchmarks/fuzz_long.py: float32 rows near 1e29 overflowed the float32
    scores and gave wrong labels and inertia silently.  Now: ValueError (fit, predict,
    score), or the exact float64 path for a few rows."""
    X = np.array([[value], [-value * 0.9], [value * 0.5]], dtype=np.float32)
    with pytest.raises(ValueError, match="float32 data too spread out.*float64"):
        KMeans(2, random_state=0).fit(X)
    km = KMeans(2, random_state=0).fit(X.astype(np.float64))  # the advised conversion
    assert np.isfinite(km.inertia_)
    km32 = KMeans(2, random_state=0).fit(np.array([[-1e17], [-0.9e17], [1e17]], np.float32))
    Q = np.full((5000, 1), value, np.float32)
    for call in (km32.predict, km32.score):
        with pytest.raises(ValueError, match="float32 data too spread out"):
            call(Q)
    # a few rows take the exact float64 path: the float64 argmin, as the reference
    ref = sq_distances(Q[:3], km32.cluster_centers_).argmin(axis=1)
    np.testing.assert_array_equal(km32.predict(Q[:3]), ref)


@st.composite
def well_conditioned(draw):
    n = draw(st.integers(2, 300))
    d = draw(st.integers(1, 6))
    k = draw(st.integers(1, min(8, n)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 1e4, -1e6]))
    centers = rng.uniform(-5, 5, (k, d))
    X = (centers[rng.integers(k, size=n)] + rng.standard_normal((n, d))) * scale + offset
    init = X[rng.choice(n, k, replace=False)].copy()
    w = rng.uniform(0.5, 2, n) if draw(st.booleans()) else None
    source = draw(st.sampled_from(["array", "fortran", "npy", "shards"]))
    return X, init, w, source, draw(st.integers(1, 3)), draw(st.none() | st.integers(1, n))


@settings(settings.get_profile(PROFILE))
@given(well_conditioned())
def test_equals_numpy_reference_lloyd(case):
    """Same initial centers, continuous data: same partition, centers, n_iter and
    inertia as tests/reference.py, from every source, batch size and thread count."""
    X, init, w, source, n_threads, batch_size = case
    try:
        ref_labels, ref_centers, ref_inertia, ref_iter = ref_lloyd(X, init, max_iter=100,
                                                                   tol=0.0, sample_weight=w)
    except AssertionError:  # the reference does not relocate empty clusters
        assume(False)
    with tempfile.TemporaryDirectory(prefix="kmaot-hyp-") as tmp:
        data = X
        if source == "fortran":
            data = np.asfortranarray(X)
        elif source in ("npy", "shards"):
            np.save(os.path.join(tmp, "a.npy"), X[: len(X) // 2])
            np.save(os.path.join(tmp, "b.npy"), X[len(X) // 2:])
            np.save(os.path.join(tmp, "X.npy"), X)
            data = os.path.join(tmp, "X.npy") if source == "npy" else \
                [os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")]
        km = KMeans(len(init), init=init, max_iter=100, tol=0.0, n_threads=n_threads,
                    batch_size=batch_size).fit(data, sample_weight=w)
        labels = km.predict(data)
    assume(km.iteration_stats_[-1]["n_empty"] == 0 or km.n_iter_ == 100)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(km.cluster_centers_, ref_centers, rtol=1e-9,
                               atol=1e-12 * (np.abs(X).max()))
    assert km.n_iter_ == ref_iter
    assert km.inertia_ == pytest.approx(ref_inertia, rel=1e-9, abs=1e-300)


@settings(settings.get_profile(PROFILE),
          max_examples=max(1, settings.get_profile(PROFILE).max_examples // 8))
@given(st.integers(0, 2**32 - 1), st.sampled_from([1e4, -1e4, 2e4]),
       st.sampled_from(["array", "npy"]))
def test_float32_far_from_origin_matches_float64(seed, offset, source):
    """Accuracy (scikit-learn #9354): float32 blobs with mean +-1e4 to 2e4 and spread 1
    get an inertia within 1e-6 relative of the float64 fit from the same initial centers
    on the same values.  (Further out the float32 rounding of the centers themselves
    costs more: about 5e-6 relative at 1e5, whatever the distance computation.)"""
    rng = np.random.default_rng(seed)
    k, d = 5, 8
    blob_centers = offset + rng.uniform(-20, 20, (k, d))
    truth = rng.integers(k, size=3000)
    truth[:k] = np.arange(k)
    X32 = (blob_centers[truth] + rng.standard_normal((3000, d))).astype(np.float32)
    X64 = X32.astype(np.float64)
    init = X64[:k]  # one row of every blob: both fits reach the same partition
    with tempfile.TemporaryDirectory(prefix="kmaot-hyp-") as tmp:
        data = X32
        if source == "npy":
            data = os.path.join(tmp, "X.npy")
            np.save(data, X32)
        km32 = KMeans(k, init=init, max_iter=100, tol=0.0).fit(data)
    assert km32.cluster_centers_.dtype == np.float32
    # the float64 fit equals the NumPy reference (test_equals_numpy_reference_lloyd)
    ref_inertia = KMeans(k, init=init, max_iter=100, tol=0.0).fit(X64).inertia_
    assert abs(km32.inertia_ - ref_inertia) <= 1e-6 * ref_inertia
    # the float64 inertia of the float32 result itself agrees to rounding
    D = sq_distances(X64, km32.cluster_centers_)
    assert abs(km32.inertia_ - D.min(axis=1).sum()) <= 1e-9 * km32.inertia_
    # and the naive float32 expansion ||x||^2 - 2 x.c + ||c||^2 really is inaccurate here,
    # so this test would catch a GEMM-style kernel
    C = km32.cluster_centers_
    naive = ((X32 * X32).sum(1)[:, None] - 2 * X32 @ C.T + (C * C).sum(1)[None]).min(1)
    assert abs(float(naive.astype(np.float64).sum()) - ref_inertia) > 1e-3 * ref_inertia
