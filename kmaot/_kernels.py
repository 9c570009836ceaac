"""Checked calls into the compiled kernels.

pycc exports do not check their arguments: a float64 array where float32 is expected
crashes the interpreter, and a non-contiguous view silently gives wrong results.  Each
wrapper here verifies dtype, shape and contiguity of every argument (cheaply) and raises
TypeError on a mismatch, which can only be a bug in kmaot itself: user input is
validated earlier, in ``_validation`` and ``_sources``.
"""
import numpy as np

from . import _dispatch
from ._validation import check_finite

F8 = np.dtype(np.float64)
F4 = np.dtype(np.float32)
I4 = np.dtype(np.int32)
_SUFFIX = {np.dtype(np.float32): "f32", F8: "f64"}


def _check(a, dtype, shape, name):
    if (type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape
            or not a.flags.c_contiguous):
        raise TypeError(
            f"kmaot internal error: kernel argument {name} must be a C-contiguous "
            f"{dtype} ndarray of shape {shape}, got "
            f"{type(a).__name__} {getattr(a, 'dtype', None)} {getattr(a, 'shape', None)}")


def _check_out(a, dtype, shape, name):
    _check(a, dtype, shape, name)
    if not a.flags.writeable:
        raise TypeError(f"kmaot internal error: kernel output {name} is read-only")


def _fn(name, dtype, module=None):
    module = _dispatch.KERNELS if module is None else module
    return getattr(module, f"{name}_{_SUFFIX[dtype]}")


#: ``nearest_exact`` takes its centers in multiples of this many (kmaot_kernels.lloyd.
#: EXACT_PAD: a whole tile of centers at every CPU level)
_EXACT_PAD = 16


class Centers:
    """Centers prepared for the kernels: shifted copy in the data dtype, 0.5*||c||^2,
    and a float64 copy for exact distances (``c64t``: transposed, made when first
    asked for)."""

    __slots__ = ("c64", "cs", "half_csq", "shift", "dtype", "k", "d", "_c64t")

    def __init__(self, centers, shift, dtype):
        dtype = np.dtype(dtype)
        self.dtype = dtype
        self.c64 = np.ascontiguousarray(centers, dtype=F8)
        self.k, self.d = self.c64.shape
        # rows and centers must be shifted by the same point: the shift as rounded to
        # the data dtype (the kernels compute x - shift in that dtype)
        self.shift = np.ascontiguousarray(shift, dtype=dtype)
        cs64 = self.c64 - self.shift.astype(F8)
        self.cs = np.ascontiguousarray(cs64, dtype=dtype)
        cs_rounded = self.cs.astype(F8)
        half_csq = 0.5 * np.einsum("ij,ij->i", cs_rounded, cs_rounded)
        if dtype == F4 and self.k and not 2.0 * half_csq.max() <= F32_SAFE:
            raise_f32_range(2.0 * half_csq.max())
        self.half_csq = np.ascontiguousarray(half_csq, dtype=dtype)
        self._c64t = None

    @property
    def c64t(self):
        """The float64 centers transposed, (d, kp) C-contiguous, kp the number of
        centers rounded up to a multiple of 16 with NaN columns (``nearest_exact``: whole
        vector registers of centers on every CPU level; a NaN distance never wins)."""
        if self._c64t is None:
            kp = -(-self.k // _EXACT_PAD) * _EXACT_PAD
            ct = np.full((self.d, kp), np.nan)
            ct[:, :self.k] = self.c64.T
            self._c64t = ct
        return self._c64t


#: The float32 kernels score rows in float32 (||x - shift||^2 and 0.5*||c||^2 - x.c):
#: squared norms, relative to the shift, must stay far below float32's maximum (3.4e38)
F32_SAFE = 1e37
_INF = float("inf")


def raise_f32_range(sq):
    raise ValueError(
        f"float32 data too spread out for float32 arithmetic: squared distances reach "
        f"{sq:.3g} (float32 overflows at 3.4e38, kmaot allows {F32_SAFE:.0e}); convert "
        "the data to float64, e.g. X.astype(np.float64)")


_EMPTY = np.empty(0, dtype=F8)


def _check_pass_args(X, C, w, labels, sums, counts, inertia):
    """Checks shared by the accumulating kernels; returns w (the empty array for None)."""
    m = X.shape[0]
    _check(X, C.dtype, (m, C.d), "X")
    if w is None:
        w = _EMPTY
    else:
        _check(w, F8, (m,), "w")
    _check_out(labels, I4, (m,), "labels")
    _check_out(sums, F8, (C.k, C.d), "sums")
    _check_out(counts, F8, (C.k,), "counts")
    _check_out(inertia, F8, (1,), "inertia")
    return w


def lloyd_block(X, C, w, labels, mind, sums, counts, inertia, module=None):
    """Assign rows of X to C and accumulate sums/counts/inertia (see the kernel source)."""
    m = X.shape[0]
    dtype = C.dtype
    w = _check_pass_args(X, C, w, labels, sums, counts, inertia)
    if mind is None:
        mind = _EMPTY
    else:
        _check_out(mind, F8, (m,), "mind")
    worst = _fn("lloyd_block", dtype, module)(X, C.shift, C.cs, C.half_csq, C.c64, w,
                                              labels, mind, sums, counts, inertia)
    # float32 scores: rows_ok refuses finite rows beyond the float32 range; a row with
    # NaN or infinity makes the inertia non-finite and is named by the caller, so a
    # not-ok worst with a finite inertia is a finite row whose squared norm overflowed
    if dtype == F4 and not rows_ok(C, worst) and np.isfinite(inertia[0]):
        raise_f32_range(worst)


def lloyd_bounds_block(X, C, w, delta, sep, labels, lower, sums, counts, inertia, n_full,
                       module=None):
    """lloyd_block that skips rows whose label cannot change (see the kernel source):
    labels and lower are the per-row state carried from the previous pass."""
    m = X.shape[0]
    dtype = C.dtype
    w = _check_pass_args(X, C, w, labels, sums, counts, inertia)
    _check(delta, F8, (C.k,), "delta")
    _check(sep, F8, (C.k,), "sep")
    if m and not (0 <= int(labels.min()) and int(labels.max()) < C.k):
        raise TypeError("kmaot internal error: labels out of range for the bounds kernel")
    _check_out(lower, F8, (m,), "lower")
    _check_out(n_full, np.dtype(np.int64), (1,), "n_full")
    _fn("lloyd_bounds_block", dtype, module)(X, C.shift, C.cs, C.half_csq, C.c64, w, delta,
                                             sep, labels, lower, sums, counts, inertia,
                                             n_full)


def assign_block(X, C, labels, mind=None, module=None):
    """Nearest center of each row of X (labels, and squared distances into mind).

    Returns True when every row is finite; False when some row holds NaN or infinity
    or its squared norm overflows (the caller names the row: ``raise_bad_rows``).
    Raises ValueError when float32 rows are too spread out for float32 scores."""
    m = X.shape[0]
    dtype = C.dtype
    _check(X, dtype, (m, C.d), "X")
    _check_out(labels, I4, (m,), "labels")
    if mind is None:
        mind = _EMPTY
    else:
        _check_out(mind, F8, (m,), "mind")
    worst = _fn("assign_block", dtype, module)(X, C.shift, C.cs, C.half_csq, C.c64,
                                               labels, mind)
    return rows_ok(C, worst)


def rows_ok(C, worst):
    """From assign_block's largest ||x - shift||^2: True if all rows are finite and in
    range, False if some row is not finite (or overflows); raises ValueError for
    finite float32 rows beyond the float32 range."""
    if worst < F32_SAFE or (worst < _INF and C.dtype != F4):
        return True
    if worst < _INF:
        raise_f32_range(worst)
    return False


def raise_bad_rows(X, C, describe_row=None):
    """After ``rows_ok`` gave False: raise ValueError naming the first row of X with
    NaN or infinity, or saying that the values are too large for the dtype."""
    if describe_row is None:
        check_finite(X, "X")
    else:
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            raise ValueError(describe_row(int(np.flatnonzero(bad)[0])))
    if C.dtype == F4:
        raise_f32_range(_INF)
    raise ValueError("values too large: their squared distances overflow float64")


def nearest_exact(X, C, labels, module=None):
    """Nearest center of each row of X by exact float64 distances (few rows); returns
    the number of rows with a non-finite distance."""
    m = X.shape[0]
    _check(X, C.dtype, (m, C.d), "X")
    _check_out(labels, I4, (m,), "labels")
    return _fn("nearest_exact", C.dtype, module)(X, C.c64t, labels)


#: small batches (at most this many rows) against at most _EXACT_MAX_K centers are
#: assigned by exact float64 distances: measured 97 us against 188 us for the blocked
#: kernel on 1,024 x 64 float64 rows, k=10 (digits, a MiniBatchKMeans step)
_EXACT_MAX_ROWS = 4096
_EXACT_MAX_K = 16


def assign_small(X, C, labels, mind):
    """Nearest center and squared distance of each row of a batch: the exact kernel for
    small batches with few centers, the blocked kernel otherwise (same labels: both give
    the float64 argmin, ties to the lowest index)."""
    m = X.shape[0]
    if m <= _EXACT_MAX_ROWS and C.k <= _EXACT_MAX_K:
        _check(X, C.dtype, (m, C.d), "X")
        _check_out(labels, I4, (m,), "labels")
        _check_out(mind, F8, (m,), "mind")
        _fn("nearest_exact_dist", C.dtype)(X, C.c64, labels, mind)  # float64 throughout
        return
    assign_block(X, C, labels, mind)


def fused_step_applies(m, k):
    """Whether a mini-batch step of m rows and k centers runs the fused
    ``MinibatchStep`` kernel (exact distances, rows read in place): where assign_small
    takes the exact kernel.  Measured per 1,024-row step (avx2): digits (d=64, k=10,
    float64) 121 us against 180 us for gather + assign_small + minibatch_update;
    d=3, k=16, float32: 46 against 115 us; but 8,192 rows, d=8, k=16: 447 against
    260 us, and 1,024 rows, d=8, k=32: 103 against 78 us (the blocked kernel wins)."""
    return m <= _EXACT_MAX_ROWS and k <= _EXACT_MAX_K


def moments_block(X, ref, s1, s2, module=None):
    """s1 += sum(X - ref), s2 += sum((X - ref)**2) over rows, in row order."""
    m, d = X.shape
    _check(X, X.dtype if X.dtype in _SUFFIX else None, (m, d), "X")
    _check(ref, F8, (d,), "ref")
    _check_out(s1, F8, (d,), "s1")
    _check_out(s2, F8, (d,), "s2")
    _fn("moments_block", X.dtype, module)(X, ref, s1, s2)


def minibatch_update(X, w, labels, centers, weight_sums, sums, batch_w, module=None):
    """Move the centers to the running weighted means after one batch (see the kernel
    source); returns the summed squared move.  centers and weight_sums are float64
    and updated in place; sums (k, d) and batch_w (k,) are float64 scratch."""
    m, d = X.shape
    k = centers.shape[0]
    dtype = X.dtype
    if dtype not in _SUFFIX:
        raise TypeError(f"kmaot internal error: X has dtype {dtype}")
    _check(X, dtype, (m, d), "X")
    if w is None:
        w = _EMPTY
    else:
        _check(w, F8, (m,), "w")
    _check(labels, I4, (m,), "labels")
    if m and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise TypeError("kmaot internal error: labels out of range [0, n_clusters)")
    _check_out(centers, F8, (k, d), "centers")
    _check_out(weight_sums, F8, (k,), "weight_sums")
    _check_out(sums, F8, (k, d), "sums")
    _check_out(batch_w, F8, (k,), "batch_w")
    return _fn("minibatch_update", dtype, module)(X, w, labels, centers, weight_sums,
                                                  sums, batch_w)


# ---------------------------------------------------------------- grouped bounds
_I8 = np.dtype(np.int64)


def yinyang_block(X, C, S, w, delta, gdelta, sep, labels, upper, lower, sums, counts,
                  inertia, n_full, module=None):
    """lloyd_block with grouped (Yinyang) bounds (see src/kmaot_kernels/yinyang.py):
    S holds the centers sorted by group (_yinyang.SortedCenters); labels, upper and
    lower are the per-row state carried from the previous pass."""
    m = X.shape[0]
    k, d = C.k, C.d
    dtype = C.dtype
    w = _check_pass_args(X, C, w, labels, sums, counts, inertia)
    G = _check_grouping(C, S)
    _check(delta, F8, (k,), "delta")
    _check(gdelta, F8, (G,), "gdelta")
    _check(sep, F8, (k,), "sep")
    if m and not (0 <= int(labels.min()) and int(labels.max()) < k):
        raise TypeError("kmaot internal error: labels out of range for the grouped kernel")
    _check_out(upper, F8, (m,), "upper")
    _check_out(lower, F4, (m, G), "lower")
    _check_out(n_full, _I8, (2,), "n_full")
    _fn("yinyang_block", dtype, module)(X, C.shift, S.cg, S.hg, C.c64, S.order, S.gstart,
                                        S.group_of, w, delta, gdelta, sep, labels, upper,
                                        lower, sums, counts, inertia, n_full)


# ------------------------------------------------------------- mini-batch steps
class MinibatchStep:
    """Checked calls of the fused ``minibatch_step`` kernel: assignment by exact float64
    distances and center update in one call, the batch's rows read in place through
    their indices (no gathered copy).

    The running means ``centers`` (k, d) float64 and ``weight_sums`` (k,) float64 are
    checked once, here, and kept: every call updates them in place, so the caller keeps
    using these very arrays.  The object owns the scratch and ``c64`` (k, d) float64,
    the centers the rows are assigned to, which the caller fills before every call.

    With ``X`` (the whole data, in memory), every call must pass that very array, and
    the kernel keeps per-row bounds between calls (n int32 + 4n float64) that let it
    skip the search of rows whose nearest center cannot have changed (same labels).
    Without, any X of the dtype may be passed (a gathered batch), and every row is
    searched.  A call checks only what changes: the batch's row indices (their range:
    an index outside [0, n_samples) would read out of bounds) and weights.
    """

    __slots__ = ("dtype", "centers", "weight_sums", "c64", "_sums", "_batch_w", "_inertia",
                 "_X", "_prev", "_drift", "_row_label", "_row_bounds", "_kernel")

    def __init__(self, dtype, centers, weight_sums, X=None, module=None):
        dtype = np.dtype(dtype)
        if dtype not in _SUFFIX:
            raise TypeError(f"kmaot internal error: no minibatch_step kernel for {dtype}")
        shape = getattr(centers, "shape", None)
        k, d = shape if isinstance(shape, tuple) and len(shape) == 2 else (-1, -1)
        _check_out(centers, F8, (k, d), "centers")
        _check_out(weight_sums, F8, (k,), "weight_sums")
        self.dtype = dtype
        self.centers, self.weight_sums = centers, weight_sums
        self.c64 = np.zeros((k, d))
        self._sums = np.empty((k, d))
        self._batch_w = np.empty(k)
        self._inertia = np.zeros(1)
        self._prev = np.zeros((k, d))
        self._drift = np.zeros(k + 1)
        self._X = X
        n = 0
        if X is not None:
            n = X.shape[0] if type(X) is np.ndarray and X.ndim == 2 else -1
            _check(X, dtype, (n, d), "X")
        self._row_label = np.full(n, -1, dtype=I4)
        self._row_bounds = np.zeros((n, 4))
        self._kernel = _fn("minibatch_step", dtype, module)

    def __call__(self, X, rows, w=None):
        """One step on the rows ``X[rows]``: X (n, d) of the dtype, C-contiguous (the
        array given at construction, if one was); rows (m,) int64; w (m,) float64 or
        None.  Returns (batch inertia with respect to c64, summed squared move of the
        centers).  A non-finite inertia leaves the centers and weight_sums untouched
        (the caller raises)."""
        if self._X is not None:
            if X is not self._X:
                raise TypeError("kmaot internal error: this MinibatchStep keeps bounds for "
                                "the rows of another array")
            n = X.shape[0]
        else:
            n = X.shape[0] if type(X) is np.ndarray and X.ndim == 2 else -1
            _check(X, self.dtype, (n, self.c64.shape[1]), "X")
        if (type(rows) is not np.ndarray or rows.dtype != _I8 or rows.ndim != 1
                or not rows.flags.c_contiguous):
            raise TypeError("kmaot internal error: rows must be a C-contiguous int64 ndarray, "
                            f"got {type(rows).__name__} {getattr(rows, 'dtype', None)}")
        m = rows.shape[0]
        if m and (int(rows.min()) < 0 or int(rows.max()) >= n):
            raise TypeError("kmaot internal error: rows out of range [0, n_samples)")
        if w is None:
            w = _EMPTY
        else:
            _check(w, F8, (m,), "w")
        moved = self._kernel(X, rows, w, self.c64, self.centers, self.weight_sums,
                             self._sums, self._batch_w, self._inertia, self._prev,
                             self._drift, self._row_label, self._row_bounds)
        return float(self._inertia[0]), moved


def kpp_candidates(X, sample, cand, closest, w, d2, pots, module=None):
    """One greedy k-means++ round on a sample of rows of X (see the kernel source):
    d2[t] = min(closest, exact squared distances of the sample rows X[sample] to
    X[sample[cand[t]]]), pots[t] = sum of w * d2[t].  X (N, d) float32/float64;
    sample (n,) int64 in [0, N); cand (c,) int64 in [0, n); closest (n,) float64;
    w (n,) float64 or None; d2 (c, n) and pots (c,) float64 outputs."""
    dtype = getattr(X, "dtype", None)
    if dtype not in _SUFFIX or getattr(X, "ndim", None) != 2:
        raise TypeError(f"kmaot internal error: X must be a 2-D float32 or float64 "
                        f"array, got {type(X).__name__} {dtype}")
    N, d = X.shape
    _check(X, dtype, (N, d), "X")
    n = sample.shape[0] if type(sample) is np.ndarray and sample.ndim == 1 else -1
    for name, idx, top in (("sample", sample, N), ("cand", cand, n)):
        size = idx.shape[0] if type(idx) is np.ndarray and idx.ndim == 1 else -1
        _check(idx, _I8, (size,), name)
        if size and (int(idx.min()) < 0 or int(idx.max()) >= top):
            raise TypeError(f"kmaot internal error: {name} out of range [0, {top})")
    c = cand.shape[0]
    _check(closest, F8, (n,), "closest")
    if w is None:
        w = _EMPTY
    else:
        _check(w, F8, (n,), "w")
    _check_out(d2, F8, (c, n), "d2")
    _check_out(pots, F8, (c,), "pots")
    _fn("kpp_candidates", dtype, module)(X, sample, cand, closest, w, d2, pots)


def _check_grouping(C, S):
    """Checks of the centers sorted by group (_yinyang.SortedCenters); returns G."""
    k, d = C.k, C.d
    _check(S.cg, C.dtype, (k, d), "cg")
    _check(S.hg, C.dtype, (k,), "hg")
    _check(S.order, I4, (k,), "order")
    G = S.gstart.shape[0] - 1
    _check(S.gstart, _I8, (G + 1,), "gstart")
    _check(S.group_of, I4, (k,), "group_of")
    # the kernels index with these: a bad grouping would read out of bounds
    if not (G >= 1 and S.gstart[0] == 0 and S.gstart[-1] == k
            and (np.diff(S.gstart) > 0).all()
            and np.array_equal(np.sort(S.order), np.arange(k))
            and np.array_equal(S.group_of[S.order],
                               np.repeat(np.arange(G, dtype=I4), np.diff(S.gstart)))):
        raise TypeError("kmaot internal error: inconsistent center groups")
    return G


class ScoredGrouped:
    """Checked calls of the grouped pass whose scores come from BLAS (numpy's matmul):
    ``yinyang_filter``, then per span of the rows it lists ``cg @ XS.T`` and
    ``yinyang_scored``, then ``yinyang_accumulate`` (see src/kmaot_kernels/yinyang.py).
    The centers, their grouping, delta, gdelta and sep are checked once, here; ``run``
    checks the arrays of its piece.  Scratch is kept per thread."""

    #: listed rows per matmul: ST (k, SPAN) stays in L2 for k = 1024 (1 MB), and the
    #: matmul stays single-threaded in OpenBLAS, so the pool's threads do not contend
    SPAN = 256

    def __init__(self, C, S, delta, gdelta, sep, module=None):
        import threading

        self.G = G = _check_grouping(C, S)
        _check(delta, F8, (C.k,), "delta")
        _check(gdelta, F8, (G,), "gdelta")
        _check(sep, F8, (C.k,), "sep")
        self.C, self.S = C, S
        self.delta, self.gdelta, self.sep = delta, gdelta, sep
        self._filter = _fn("yinyang_filter", C.dtype, module)
        self._scored = _fn("yinyang_scored", C.dtype, module)
        self._accumulate = _fn("yinyang_accumulate", C.dtype, module)
        self._local = threading.local()

    def _scratch(self, m):
        sc = getattr(self._local, "sc", None)
        if sc is None or sc[0].shape[0] < m:
            C, q = self.C, self.SPAN
            sc = (np.empty((max(m, q), C.d), C.dtype),   # XS
                  np.empty(max(m, q), _I8),              # work
                  np.empty(max(m, q)),                   # xsq
                  np.empty(C.k * q, C.dtype),            # ST, flat
                  np.empty((self.G, q), C.dtype),        # gm
                  np.empty((self.G, q), F4),             # lb
                  np.empty((5, q), C.dtype),             # lanes
                  np.empty((2, q)),                      # flanes
                  np.empty((2, q), I4),                  # ilanes
                  np.empty(C.k))                         # dbuf
            self._local.sc = sc
        return sc

    def run(self, X, w, labels, upper, lower, sums, counts, inertia, n_full):
        """One piece of rows: labels, upper and lower are its rows' state (INOUT);
        sums, counts, inertia accumulate; n_full += (rows listed, distances scored)."""
        C, S, G = self.C, self.S, self.G
        m = X.shape[0]
        w = _check_pass_args(X, C, w, labels, sums, counts, inertia)
        if m and not (0 <= int(labels.min()) and int(labels.max()) < C.k):
            raise TypeError("kmaot internal error: labels out of range for the grouped kernel")
        _check_out(upper, F8, (m,), "upper")
        _check_out(lower, F4, (m, G), "lower")
        _check_out(n_full, _I8, (2,), "n_full")
        XS, work, xsq, stbuf, gm, lb, lanes, flanes, ilanes, dbuf = self._scratch(m)
        nw = self._filter(X, C.shift, C.c64, self.delta, self.gdelta, self.sep, labels,
                          upper, lower, work, XS, xsq)
        for q0 in range(0, nw, self.SPAN):
            nq = min(self.SPAN, nw - q0)
            ST = stbuf[:C.k * nq].reshape(C.k, nq)
            np.matmul(S.cg, XS[q0:q0 + nq].T, out=ST)
            self._scored(X, ST, q0, work, xsq, S.hg, C.c64, S.order, S.gstart, labels,
                         lower, gm, lb, lanes, flanes, ilanes, dbuf)
        self._accumulate(X, w, labels, C.c64, upper, sums, counts, inertia)
        n_full[0] += nw
        n_full[1] += nw * C.k
