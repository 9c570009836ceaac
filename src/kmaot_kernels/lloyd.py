"""Lloyd kernels: nearest-center assignment fused with per-center accumulation.

Plain Python + ``@njit`` helpers, compiled ahead of time by ``src/build_kernels.py``.
Nothing here validates its arguments: the Python layer (``kmaot/_kernels.py``) checks
dtypes, shapes and contiguity before every call.

Numerics
--------
* Assignment first uses the fast expanded form
  ``argmin_j 0.5*||c_j - s||^2 - <x - s, c_j - s>`` in the data dtype, on rows shifted
  by ``shift`` (the data mean), which keeps the cross term accurate far from the
  origin.  When the runner-up's score is within the rounding-error bound of the best
  one, the row is re-measured exactly in float64 against every center.  Labels are
  therefore the float64 argmin of ``sum_f (x_f - c_f)^2`` (ties to the lowest index),
  the same on every CPU target and for float32 and float64 data alike.  That sum is
  one expression wherever an exact distance chooses a label (``_exact_dist``: each
  square rounded, added into 8 partial sums in feature order, a fixed tree, no FMA),
  so that two centers whose distances only rounding sets apart are ordered the same
  way by every kernel and CPU level.
* The distance to the chosen center is computed exactly, in float64; that is what
  ``mind`` and the inertia report.
* Sums, counts (sample weights) and inertia are float64 and are accumulated strictly
  in row order, so splitting a block of rows into several calls gives bit-identical
  results.  fastmath is limited to contraction/reassociation (never nnan/ninf): it may
  change the last bits of a score, which the error bound above covers, so labels stay
  the float64 argmin on every CPU target.
* Cost: the fast scores keep the best and the runner-up per row with min/max (no
  branches), which costs a few percent; the exact recheck runs for a tiny fraction of
  rows.  Accumulating in float64 instead of float32 costs one conversion per element
  of the row added to its center's sum (measured: see README, "Numerics").
"""
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

#: fastmath without nnan/ninf: NaN and infinity must keep their meaning (they are
#: how bad rows are detected); contraction into FMA and reassociation are allowed.
FAST = {"contract", "reassoc", "nsz", "arcp", "afn"}
#: ``_score_loop``'s flags: FAST without reassociation.  With it, LLVM evaluated
#: g - a0*y0 - a1*y1 - a2*y2 - a3*y3 as g + -(a0*y0 + ...): a multiply, three FMAs
#: and an add per center and lane vector, where four FMAs do (JIT A/B of assign_block,
#: 1,000 x 32, k=64, one thread: 0.92x the time; labels identical)
SCORE_FAST = {"contract", "nsz", "arcp", "afn"}


@njit(nogil=True, fastmath=FAST)
def _chunk_rows(d, fused=False, itemsize=4):
    """Rows per transposed chunk: the (d, P) chunk stays within ~16 KB (L1), except
    that wide rows get at least 128 lanes while the chunk fits 128 KB (L2): with only
    32 lanes the per-center overhead dominates (measured, JIT A/B on 2 AVX2 cores:
    d=128 k=1024 -18%, d=384 k=64 -12%, d=256 k=256 -6%, d=768 unchanged); and rows of
    up to 16 features get 64 KB, at most 4,096 rows (below); rows of 17 to 32 features
    in lloyd_block (``fused``) get 256 rows of float32 (32 KB: ``_score_loop``'s
    register tiles) or 512 rows of float64.
    Results do not depend on it: rows are scored independently and accumulated in row
    order."""
    p = 4096 // d
    if p > 512:
        p = 512
    if fused and d <= 32:
        # 512 rows instead of 128 at 17-32 features: JIT A/B of lloyd_block, one thread,
        # same results: 1,000,000 x 32, k=64 0.78x the time, 200,000 x 32 0.90x,
        # d=24 0.89x, d=20 0.92x, d=17 0.88x; at 48 and 64 features it was slower
        # (1.27x, 1.09x); assign_block (no accumulation) gained nothing, and
        # lloyd_bounds_block (W1's third pass) took 1.6x as long.  With the register
        # tiles of _score_loop (chunks of at most 32 KB), float32 rows do better at 256:
        # 1,000,000 x 32 0.94x the time of 128 rows and 0.82x that of 512 rows without
        # tiles, 200,000 x 32 0.93x, d=24 0.92x; float64 rows keep 512 (64 KB, no tiles;
        # 256 without tiles took 1.10x as long at d=32)
        p = 256 if itemsize == 4 else 512
    if d <= 16:
        # short rows: 64 KB (L2); every chunk costs a few dozen calls and reference
        # count updates (atomic), which at 512 rows of 8 features took ~8% of the pass
        # (perf, W3); JIT A/B of lloyd_block against 512 rows (with _worst_sq
        # vectorized): d=8 k=8 0.87x the time, d=3 0.89, d=5 k=16 0.90, d=12 0.93
        p = min(4096, 16384 // d)
    if p < 128:
        p = min(128, 32768 // d)
    p = (p // 32) * 32
    if p < 32:
        p = 32
    return p


@njit(nogil=True, fastmath=FAST)
def _argmin_update(g0, j, best, second, bj, P):
    for p in range(P):
        v = g0[p]
        bv = best[p]
        second[p] = min(second[p], max(bv, v))
        if v < bv:
            bj[p] = j
            best[p] = v


@njit(nogil=True, fastmath=FAST)
def _assign_chunk(X, rows, nb, shift, cs, half_csq, XT, g, best, second, bj, xsq):
    """Fast nearest center (expanded form) of rows X[rows[:nb]].

    Rows are shifted and transposed into XT (d, P) so that the innermost loops run
    over P points and vectorize (``_transpose_rows``), then scored (``_score_chunk``).
    """
    _transpose_rows(X, rows, nb, shift, XT)
    _score_chunk(nb, cs, half_csq, XT, g, best, second, bj, xsq, X, 0, 0)


@njit(nogil=True, fastmath=FAST)
def _assign_span(X, start, nb, shift, cs, half_csq, XT, g, best, second, bj, xsq, rows,
                 prefetch):
    """``_assign_chunk`` of the contiguous rows start..start+nb-1 (``_transpose_span``).

    prefetch: the next nb rows are prefetched while these are scored (rows of more
    than 16 features; ``_score_loop``).  assign_block sets it: its 128-row chunks of
    rows not in cache waited for memory in the transposition (JIT A/B, 1,000 rows of
    32 features from a 100 MB array, k=64: 0.92x the time).  lloyd_block does not:
    at its larger chunks (then 512 rows at d=32, 1,344 at d=12) the prefetched rows
    evicted the chunk in flight (1,000,000 x 32 1.09x the time, d=12 1.11x)."""
    _transpose_span(X, start, nb, shift, XT, rows)
    d = X.shape[1]
    pf0 = (start + nb) * d
    pf1 = min(X.shape[0], start + nb + nb) * d if prefetch and d > 16 else pf0
    _score_chunk(nb, cs, half_csq, XT, g, best, second, bj, xsq, X, pf0, pf1)


@njit(nogil=True, fastmath=FAST)
def _transpose_rows(X, rows, nb, shift, XT):
    """XT[:, p] = X[rows[p]] - shift for p < nb."""
    d = X.shape[1]
    if d <= 16:
        # few features: eight rows per sweep, so that each feature's eight values are
        # stored next to each other (measured: the transposition is ~40% of the
        # assignment at d=8, and this order cuts it by ~a third; for wide rows it is slower)
        nb8 = (nb // 8) * 8
        for p in range(0, nb8, 8):
            r0 = rows[p]
            r1 = rows[p + 1]
            r2 = rows[p + 2]
            r3 = rows[p + 3]
            r4 = rows[p + 4]
            r5 = rows[p + 5]
            r6 = rows[p + 6]
            r7 = rows[p + 7]
            for f in range(d):
                sf = shift[f]
                xf = XT[f]
                xf[p] = X[r0, f] - sf
                xf[p + 1] = X[r1, f] - sf
                xf[p + 2] = X[r2, f] - sf
                xf[p + 3] = X[r3, f] - sf
                xf[p + 4] = X[r4, f] - sf
                xf[p + 5] = X[r5, f] - sf
                xf[p + 6] = X[r6, f] - sf
                xf[p + 7] = X[r7, f] - sf
    else:
        # wide rows: tiles of eight rows by eight features (_tr8_rows), the
        # remaining features one at a time
        P = XT.shape[1]
        nb8 = (nb // 8) * 8
        d8 = (d // 8) * 8
        for p in range(0, nb8, 8):
            for f0 in range(0, d8, 8):
                _tr8_rows(X, rows, p, f0, XT, f0 * P + p, P, shift)
            for f in range(d8, d):
                sf = shift[f]
                for i in range(p, p + 8):
                    XT[f, i] = X[rows[i], f] - sf
    for p in range(nb8, nb):
        r = rows[p]
        for f in range(d):
            XT[f, p] = X[r, f] - shift[f]


def _generated(lines, name, ns, fastmath=FAST, doc=None):
    """njit of the function ``name`` written out in ``lines`` (source generated at
    import, with the names it uses in ``ns``); ``doc`` becomes its docstring."""
    exec(compile("\n".join(lines), f"<kmaot {name}>", "exec"), ns)
    fn = ns[name]
    if doc is not None:
        fn.__doc__ = doc
    return njit(nogil=True, fastmath=fastmath)(fn)


def _dispatch(name, params, d_expr, kernels, fallback, doc):
    """njit ``name(params)``: calls kernels[d] (d = ``d_expr``, the row length) where
    a kernel was generated for that length, else ``fallback``, with the same arguments,
    and returns what it returns."""
    args = ", ".join(params)
    ns = {"_fallback": fallback}
    lines = [f"def {name}({args}):", f"    d = {d_expr}"]
    for D, kernel in kernels.items():
        ns[f"_k{D}"] = kernel
        lines += [f"    if d == {D}:", f"        return _k{D}({args})"]
    lines.append(f"    return _fallback({args})")
    return _generated(lines, name, ns, doc=doc)


#: row lengths whose contiguous rows are transposed by generated code with the length
#: as a constant (``_make_span_transposer``).  JIT A/B against ``_transpose_rows`` on
#: 64 MB of float32 rows, one thread: d=2 0.52x the time, 3 0.46, 4 0.69, 5 0.73,
#: 7 0.81, 8 0.90, 12 1.00, 16 1.02 (hence 9..16 keep the eight-row sweep); a plain
#: loop over features for d > 16 took 0.73x at d=17 (no row-index indirection)
SPAN_WIDTHS = tuple(range(2, 9))


def _make_span_transposer(D):
    """An njit function XT[:, p] = X[start + p] - shift (p < nb) for rows of exactly D
    features, written out feature by feature so that the loop over rows vectorizes
    with wide loads and in-register shuffles (an interleaved access of constant
    stride D); a loop over features in the body would keep it scalar."""
    lines = [f"def _span{D}(X, start, nb, shift, XT, rows):",  # rows: unused
             "    Xf = X.reshape(X.size)",
             "    u0 = np.uint64(start)"]
    for f in range(D):
        lines.append(f"    s{f} = shift[{f}]")
        lines.append(f"    t{f} = XT[{f}]")
    lines.append("    for p in range(nb):")
    # unsigned offsets: numba adds no negative-index wraparound, which would break the
    # interleaved-access pattern
    lines.append(f"        b = (u0 + np.uint64(p)) * np.uint64({D})")
    for f in range(D):
        lines.append(f"        t{f}[p] = Xf[b + np.uint64({f})] - s{f}")
    ns = {"np": np}
    return _generated(lines, f"_span{D}", ns)


# the 8x8 transposition of _tr8: unpack pairs of rows, then pairs of pairs, then the
# 128-bit halves (the AVX sequence; LLVM picks the instructions of each CPU level)
_TR_MASKS = (([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]),
             ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]),
             ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]))


def _ir_args(context, builder, signature, args):
    """An intrinsic's arguments in its codegen: arrays as numba array structures,
    integers cast to int64, other values as they are."""
    out = []
    for ty, v in zip(signature.args, args):
        if isinstance(ty, types.Array):
            out.append(context.make_array(ty)(context, builder, v))
        elif isinstance(ty, types.Integer):
            out.append(context.cast(builder, v, ty, types.int64))
        else:
            out.append(v)
    return out


def _vec_ptr(builder, data, off, ty):
    """Pointer to a value of the vector type ty at element off of data."""
    return builder.bitcast(builder.gep(data, [off]), ty.as_pointer())


def _vec_load(context, builder, data, off, elt, n):
    """(pointer, value) of the n lanes of element type elt at element off of data,
    loaded with the element's alignment."""
    ptr = _vec_ptr(builder, data, off, ir.VectorType(elt, n))
    return ptr, builder.load(ptr, align=context.get_abi_sizeof(elt))


def _splat(builder, x, ty):
    """The scalar x in every lane of the vector type ty."""
    v = builder.insert_element(ir.Constant(ty, None), x, ir.IntType(32)(0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), ty.count),
                                                    [0] * ty.count))


def _lanes(builder, v, lo, n):
    """Lanes lo..lo+n-1 of the vector v, as a vector of n lanes."""
    return builder.shuffle_vector(
        v, v, ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(lo, lo + n))))


def _vec_fma(builder, ty):
    """llvm.fma for the vector type ty (float or double lanes), declared by name:
    llvmlite's declare_intrinsic cannot mangle vector types."""
    name = f"llvm.fma.v{ty.count}{'f64' if isinstance(ty.element, ir.DoubleType) else 'f32'}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)


def _emit_tr8(context, builder, elt, rows, dst, do, dl, sh):
    """LLVM IR of the 8x8 transposition: rows (eight pointers to eight elements of
    type elt) minus the vector sh, transposed, stored at dst[do + j * dl], j < 8."""
    i64 = ir.IntType(64)
    align = context.get_abi_sizeof(elt)
    vec = ir.VectorType(elt, 8)

    def shuffle(x, y, mask):
        return builder.shuffle_vector(x, y,
                                      ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))

    v = [builder.fsub(builder.load(builder.bitcast(r, vec.as_pointer()), align=align), sh)
         for r in rows]
    m1, m2, m3 = _TR_MASKS
    t = []
    for i in range(0, 8, 2):
        t += [shuffle(v[i], v[i + 1], m) for m in m1]
    tt = []
    for x, y in ((0, 2), (1, 3), (4, 6), (5, 7)):
        tt += [shuffle(t[x], t[y], m) for m in m2]
    out = [shuffle(tt[j], tt[j + 4], m3[0]) for j in range(4)]
    out += [shuffle(tt[j], tt[j + 4], m3[1]) for j in range(4)]
    for j in range(8):
        ptr = builder.gep(dst, [builder.add(do, builder.mul(dl, i64(j)))])
        builder.store(out[j], builder.bitcast(ptr, vec.as_pointer()), align=align)


def _shift_vector(context, builder, elt, shift, sh_off):
    return builder.load(_vec_ptr(builder, shift, sh_off, ir.VectorType(elt, 8)),
                        align=context.get_abi_sizeof(elt))


@intrinsic
def _tr8(typingctx, src, s_off, s_ld, dst, d_off, d_ld, shift, sh_off):
    """dst[d_off + j * d_ld + i] = src[s_off + i * s_ld + j] - shift[sh_off + j] for
    i, j < 8 (offsets in elements from the start of C-contiguous arrays of one dtype):
    eight vector loads, one vector subtraction each (the same IEEE operation as the
    scalar one), an in-register transposition and eight vector stores.  Written as
    LLVM shufflevectors: numba's loops over an 8x8 tile stay scalar."""
    sig = types.void(src, s_off, s_ld, dst, d_off, d_ld, shift, sh_off)

    def codegen(context, builder, signature, args):
        S, so, sl, D, do, dl, H, ho = _ir_args(context, builder, signature, args)
        elt = context.get_data_type(signature.args[0].dtype)
        rows = [builder.gep(S.data, [builder.add(so, builder.mul(sl, ir.IntType(64)(i)))])
                for i in range(8)]
        _emit_tr8(context, builder, elt, rows, D.data, do, dl,
                  _shift_vector(context, builder, elt, H.data, ho))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _tr8_rows(typingctx, src, rows, p0, f0, dst, d_off, d_ld, shift):
    """``_tr8`` of the rows rows[p0:p0 + 8] of the C-contiguous 2-D src, features
    f0:f0 + 8: dst[d_off + j * d_ld + i] = src[rows[p0 + i], f0 + j] - shift[f0 + j]."""
    sig = types.void(src, rows, p0, f0, dst, d_off, d_ld, shift)

    def codegen(context, builder, signature, args):
        a = signature.args
        S, R, p, f, D, do, dl, H = _ir_args(context, builder, signature, args)
        d = builder.extract_value(S.shape, 1)
        elt = context.get_data_type(a[0].dtype)
        ptrs = []
        for i in range(8):
            r = builder.load(builder.gep(R.data, [builder.add(p, ir.IntType(64)(i))]))
            r = context.cast(builder, r, a[1].dtype, types.int64)
            ptrs.append(builder.gep(S.data, [builder.add(builder.mul(r, d), f)]))
        _emit_tr8(context, builder, elt, ptrs, D.data, do, dl,
                  _shift_vector(context, builder, elt, H.data, f))
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, fastmath=FAST)
def _transpose_span_loop(X, start, nb, shift, XT, rows):
    """``_transpose_span`` for lengths without a generated transposer:
    ``_transpose_rows`` (eight rows at a time) up to 16 features; beyond, tiles of
    eight rows by eight features (``_tr8``), the remainders one element at a time.
    JIT, 1,024 rows in cache, one thread, against the element loop it replaces:
    float32 d=17 0.60x the time, 24 0.52, 32 0.50, 64 0.44, 128 0.17; float64 d=32
    0.58, 128 0.20."""
    d = X.shape[1]
    if d <= 16:
        for i in range(nb):
            rows[i] = start + i
        _transpose_rows(X, rows, nb, shift, XT)
        return
    P = XT.shape[1]
    nb8 = (nb // 8) * 8
    d8 = (d // 8) * 8
    for p0 in range(0, nb8, 8):
        for f0 in range(0, d8, 8):
            _tr8(X, (start + p0) * d + f0, d, XT, f0 * P + p0, P, shift, f0)
        for f in range(d8, d):
            for p in range(p0, p0 + 8):
                XT[f, p] = X[start + p, f] - shift[f]
    for p in range(nb8, nb):
        r = start + p
        for f in range(d):
            XT[f, p] = X[r, f] - shift[f]


_transpose_span = _dispatch(
    "_transpose_span", ("X", "start", "nb", "shift", "XT", "rows"), "X.shape[1]",
    {D: _make_span_transposer(D) for D in SPAN_WIDTHS}, _transpose_span_loop,
    "XT[:, p] = X[start + p] - shift for p < nb: contiguous rows, transposed by "
    "generated code for the lengths in SPAN_WIDTHS, by _transpose_span_loop for the "
    "others (rows: (P,) int64 scratch).")


@njit(nogil=True, fastmath=FAST, inline="always")
def _take(v, j, bv, bi, s):
    """One center's score v (index j) into a lane's best bv (index bi) and runner-up
    s; centers come in increasing index, so strict < keeps the lowest on equal
    scores.  Scalars only: inlining it adds no reference counting."""
    s = min(s, max(bv, v))
    if v < bv:
        return v, j, s
    return bv, bi, s


@njit(nogil=True, fastmath=FAST, inline="always")
def _argmin_update4(g, j, best, second, bj, P):
    """best, second and bj[:P] updated with the scores g[0..3, :P] of centers j..j+3,
    in one sweep over the lanes (the values stay in registers).  Inlined into
    _score_loop: as a call (k/4 per chunk) its five array arguments cost atomic
    reference count updates (JIT A/B of assign_block, 1,000 x 32, k=64: 0.91x)."""
    g0 = g[0]
    g1 = g[1]
    g2 = g[2]
    g3 = g[3]
    for p in range(P):
        bv, bi, s = _take(g0[p], j, best[p], bj[p], second[p])
        bv, bi, s = _take(g1[p], j + 1, bv, bi, s)
        bv, bi, s = _take(g2[p], j + 2, bv, bi, s)
        bv, bi, s = _take(g3[p], j + 3, bv, bi, s)
        best[p] = bv
        bj[p] = bi
        second[p] = s


#: bytes per vector register of the CPU level being built (src/build_kernels.py sets
#: NUMBA_CPU_NAME): a scoring tile (``_score_tile4``) is two registers of lanes
_VBYTES = {"skylake-avx512": 64, "haswell": 32, "generic": 16}.get(
    os.environ.get("NUMBA_CPU_NAME", ""), 32)
#: lanes of a scoring tile for float32 and float64 rows
TILE_F4 = 2 * _VBYTES // 4
TILE_F8 = 2 * _VBYTES // 8


@intrinsic
def _score_tile4(typingctx, XT, p0, cs, j0, half_csq, best, second, bj):
    """Scores of the lanes p0..p0+T-1 of the transposed chunk XT (d, P) against the
    centers j0..j0+3 (T = TILE_F4 or TILE_F8 by dtype), folded into the lanes' best,
    second and bj as ``_argmin_update4`` does.  The 4 x T scores stay in registers
    over the whole loop over features: g = half_csq[j] - sum_f cs[j, f] * XT[f, p],
    one fused multiply-subtract per feature in feature order (a multiply and a
    subtraction at the baseline level, which has no FMA) (the operations of
    ``_score_loop``'s lane loops, which keep the scores in memory between groups of
    four features)."""
    sig = types.void(XT, p0, cs, j0, half_csq, best, second, bj)

    def codegen(context, builder, signature, args):
        xt, p, C, j, H, B, S, J = _ir_args(context, builder, signature, args)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        elt = context.get_data_type(signature.args[0].dtype)
        esz = context.get_abi_sizeof(elt)
        L = 2 * _VBYTES // esz
        vt = ir.VectorType(elt, L)
        it = ir.VectorType(i32, L)
        d = builder.extract_value(xt.shape, 0)
        P = builder.extract_value(xt.shape, 1)

        def splat(x, ty=vt):
            return _splat(builder, x, ty)

        def vptr(data, off, ty=vt):
            return _vec_ptr(builder, data, off, ty)

        if USE_FMA:
            fma = _vec_fma(builder, vt)
        accs = [cgutils.alloca_once(builder, vt) for _ in range(4)]
        rows = [builder.mul(builder.add(j, i64(c)), d) for c in range(4)]
        # the accumulators hold -g: acc + coef * x rounds to exactly -(g - coef * x),
        # and the fused multiply-add then takes its coefficient as a broadcast load
        # (a negated coefficient cost a load, a sign flip and a broadcast)
        for c in range(4):
            h = builder.load(builder.gep(H.data, [builder.add(j, i64(c))]))
            builder.store(builder.fneg(splat(h)), accs[c])
        with cgutils.for_range(builder, d) as loop:
            f = loop.index
            x = builder.load(vptr(xt.data, builder.add(builder.mul(f, P), p)), align=esz)
            for c in range(4):
                coef = builder.load(builder.gep(C.data, [builder.add(rows[c], f)]))
                acc = builder.load(accs[c])
                if USE_FMA:
                    acc = builder.call(fma, [splat(coef), x, acc])
                else:
                    acc = builder.fadd(acc, builder.fmul(splat(coef), x))
                builder.store(acc, accs[c])
        bp, sp, jp = vptr(B.data, p), vptr(S.data, p), vptr(J.data, p, it)
        bv = builder.load(bp, align=esz)
        sv = builder.load(sp, align=esz)
        bi = builder.load(jp, align=4)
        for c in range(4):
            v = builder.fneg(builder.load(accs[c]))
            # second = min(second, max(best, v)); best, index = v, j + c where v < best
            mx = builder.select(builder.fcmp_ordered(">", v, bv), v, bv)
            sv = builder.select(builder.fcmp_ordered("<", mx, sv), mx, sv)
            lt = builder.fcmp_ordered("<", v, bv)
            bv = builder.select(lt, v, bv)
            jc = builder.trunc(builder.add(j, i64(c)), i32)
            bi = builder.select(lt, splat(jc, it), bi)
        builder.store(bv, bp, align=esz)
        builder.store(sv, sp, align=esz)
        builder.store(bi, jp, align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, fastmath=SCORE_FAST)
def _score_loop(nb, cs, half_csq, XT, g, best, second, bj, xsq, X, pf0, pf1):
    """Scores of the nb transposed rows in XT against every center (``_score_chunk``
    for row lengths without a generated scorer).

    Four centers and four features are processed per sweep over the lanes, which
    keeps sixteen coefficients in registers and loads each lane's features once per
    four centers (two centers before: JIT A/B, one thread, same results: assign_block
    of 1,000 x 32, k=64 0.93x the time; lloyd_block 200,000 x 32, k=64 0.85x;
    1,000,000 x 32 0.91x; 20,000 x 128, k=1024 0.84x; 300,000 x 12, k=16 0.87x; k=5
    and k=7, one sweep of four, unchanged).  Fills bj[:nb] (index of the smallest
    score, ties to the lowest), best[:nb] and second[:nb] (smallest and second smallest
    score 0.5*||c_j||^2 - <x, c_j> on shifted data) and xsq[:nb] (||x - shift||^2);
    the latter three bound the rounding error of the scores.  g (4, P) is scratch.
    The cache lines of X's flat elements pf0..pf1-1 are prefetched (``_assign_span``;
    pf0 == pf1: none).

    Chunks of at most 32 KB (d * P elements: L1) are scored in register tiles
    (``_score_tile4``: four centers by two vector registers of lanes, the scores kept
    in registers over all features), larger ones by the lane loops below, which
    stream the chunk feature by feature (tiles over a 64 KB chunk, d=128, took 1.16x
    as long).  The same operations in the same order either way.  JIT
    A/B against the lane loops alone, one thread, same results: assign_block of 1,000
    rows, k=64: d=32 0.80x the time, d=64 0.76x, d=16 (64 KB chunks) unchanged;
    lloyd_bounds_block 1,000,000 x 32 0.86x; lloyd_block 200,000 x 64 0.84x, d=40
    0.87x (d <= 32: see _chunk_rows).
    """
    d = XT.shape[0]
    k = cs.shape[0]
    # lanes computed: nb rounded up to a multiple of 32 (lanes past nb hold stale,
    # finite values and are ignored): the vectorized loops handle 32 lanes per
    # iteration, a remainder would run scalar (measured 8x slower per lane)
    P = min(XT.shape[1], ((nb + 31) // 32) * 32)
    for p in range(P):
        xsq[p] = 0
        best[p] = np.inf
        second[p] = np.inf
        bj[p] = 0
    for f in range(d):
        xf = XT[f]
        for p in range(P):
            xsq[p] += xf[p] * xf[p]
    k4 = (k // 4) * 4
    dd = (d // 4) * 4
    g0 = g[0]
    g1 = g[1]
    g2 = g[2]
    g3 = g[3]
    # the cache lines of X's flat elements pf0..pf1-1 (the next chunk's rows, or
    # none) are prefetched, an equal share per group of four centers: spread over
    # the scoring, not issued at once (which would stall on the line fill buffers)
    step = max(1, 64 // X.itemsize)
    n_groups = max(1, k4 // 4)
    per = ((pf1 - pf0 + step - 1) // step + n_groups - 1) // n_groups * step
    pf = pf0
    T = TILE_F4 if XT.itemsize == 4 else TILE_F8
    tiles = XT.shape[0] * XT.shape[1] * XT.itemsize <= 32768
    for j0 in range(0, k4, 4):
        pe = min(pf + per, pf1)
        for q in range(pf, pe, step):
            _prefetch(X, q)
        pf = pe
        if tiles:
            for p0 in range(0, P, T):
                _score_tile4(XT, p0, cs, j0, half_csq, best, second, bj)
            continue
        h0 = half_csq[j0]
        h1 = half_csq[j0 + 1]
        h2 = half_csq[j0 + 2]
        h3 = half_csq[j0 + 3]
        for p in range(P):
            g0[p] = h0
            g1[p] = h1
            g2[p] = h2
            g3[p] = h3
        for f0 in range(0, dd, 4):
            x0 = XT[f0]
            x1 = XT[f0 + 1]
            x2 = XT[f0 + 2]
            x3 = XT[f0 + 3]
            a0 = cs[j0, f0]
            a1 = cs[j0, f0 + 1]
            a2 = cs[j0, f0 + 2]
            a3 = cs[j0, f0 + 3]
            b0 = cs[j0 + 1, f0]
            b1 = cs[j0 + 1, f0 + 1]
            b2 = cs[j0 + 1, f0 + 2]
            b3 = cs[j0 + 1, f0 + 3]
            c0 = cs[j0 + 2, f0]
            c1 = cs[j0 + 2, f0 + 1]
            c2 = cs[j0 + 2, f0 + 2]
            c3 = cs[j0 + 2, f0 + 3]
            e0 = cs[j0 + 3, f0]
            e1 = cs[j0 + 3, f0 + 1]
            e2 = cs[j0 + 3, f0 + 2]
            e3 = cs[j0 + 3, f0 + 3]
            for p in range(P):
                y0 = x0[p]
                y1 = x1[p]
                y2 = x2[p]
                y3 = x3[p]
                g0[p] = g0[p] - a0 * y0 - a1 * y1 - a2 * y2 - a3 * y3
                g1[p] = g1[p] - b0 * y0 - b1 * y1 - b2 * y2 - b3 * y3
                g2[p] = g2[p] - c0 * y0 - c1 * y1 - c2 * y2 - c3 * y3
                g3[p] = g3[p] - e0 * y0 - e1 * y1 - e2 * y2 - e3 * y3
        for f in range(dd, d):
            x0 = XT[f]
            a0 = cs[j0, f]
            b0 = cs[j0 + 1, f]
            c0 = cs[j0 + 2, f]
            e0 = cs[j0 + 3, f]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p]
                g1[p] = g1[p] - b0 * x0[p]
                g2[p] = g2[p] - c0 * x0[p]
                g3[p] = g3[p] - e0 * x0[p]
        _argmin_update4(g, j0, best, second, bj, P)
    for j in range(k4, k):
        h0 = half_csq[j]
        for p in range(P):
            g0[p] = h0
        for f0 in range(0, dd, 4):
            x0 = XT[f0]
            x1 = XT[f0 + 1]
            x2 = XT[f0 + 2]
            x3 = XT[f0 + 3]
            a0 = cs[j, f0]
            a1 = cs[j, f0 + 1]
            a2 = cs[j, f0 + 2]
            a3 = cs[j, f0 + 3]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p] - a1 * x1[p] - a2 * x2[p] - a3 * x3[p]
        for f in range(dd, d):
            x0 = XT[f]
            a0 = cs[j, f]
            for p in range(P):
                g0[p] = g0[p] - a0 * x0[p]
        _argmin_update(g0, j, best, second, bj, P)


#: row lengths scored by generated code with the length as a constant
#: (``_make_scorer``); other lengths go through ``_score_loop``.
SCORE_WIDTHS = tuple(range(2, 9))
#: from this row length on, the generated scorers take eight centers per sweep and
#: their first sweep initializes the lanes (``_make_scorer``)
FUSED_INIT_WIDTH = 6


def _make_scorer(D):
    """An njit ``_score_chunk`` for rows of exactly D features, written out: each sweep
    over the lanes takes four centers and all D features at once (the D values of a
    lane are loaded once per four centers and stay in registers, with the 4*D
    coefficients), and updates the best and runner-up scores in the same sweep, where
    ``_score_loop`` writes every center's scores into g and reads them back.  The
    remaining k % 4 centers take one sweep each.  Same results as ``_score_loop`` up
    to the rounding of the scores (covered by the error bound of ``_settle_ties``).

    From FUSED_INIT_WIDTH features on, sweeps take eight centers while eight remain,
    and the first sweep starts each lane from infinity and computes its xsq (below
    that, a sweep of its own initializes best, second, bj and xsq in memory).  The
    centers still come in index order in every lane: the same labels, scores and
    bits.  JIT A/B of single-thread lloyd_block (32,768 rows in cache, repeated,
    interleaved, 41 repeats): d=8, k=8 8.63 against 9.64 ns per row (min), 8.90
    against 9.78 (median); 2,000,000 rows, min of 7-9 alternated calls: d=8, k=8
    0.88-1.01x the time over four runs (the host's noise); d=6, k=8 0.88x; d=8, k=16
    0.92x; d=8, k=64 0.92-0.98x.  At d=3 (k=8) it took 1.25-1.29x
    as long, at d=4 1.24x, at d=5 (k=16) 1.09-1.14x, with sweeps of four centers as
    well: hence the threshold."""
    def center(c):
        # i{c}: the center's index as an int32 constant of the sweep (an int64 index
        # made the loop widen every lane's bj to 64 bits: JIT A/B 3-8% slower)
        terms = " - ".join(f"a{c}_{f} * y{f}" for f in range(D))
        return [f"            v = h{c} - {terms}",
                "            s = min(s, max(bv, v))",
                "            if v < bv:",
                "                bv = v",
                f"                bi = i{c}"]

    lines = [f"def _score{D}(nb, cs, half_csq, XT, g, best, second, bj, xsq, X, pf0, pf1):",
             "    k = cs.shape[0]",
             # lanes computed: nb rounded up to a multiple of 32, as in _score_loop
             "    P = min(XT.shape[1], ((nb + 31) // 32) * 32)"]
    lines += [f"    x{f} = XT[{f}]" for f in range(D)]

    def sweep(centers, first):
        """One pass over the lanes for the centers j + c, c in range(centers); the
        first pass (j = 0) starts every lane from infinity and computes its xsq."""
        out = []
        for c in range(centers):
            out.append(f"        i{c} = np.int32(j + {c})")
            out.append(f"        h{c} = half_csq[j + {c}]")
            out += [f"        a{c}_{f} = cs[j + {c}, {f}]" for f in range(D)]
        out.append("        for p in range(P):")
        out += [f"            y{f} = x{f}[p]" for f in range(D)]
        if first:
            out.append("            xsq[p] = " + " + ".join(f"y{f} * y{f}" for f in range(D)))
            out += ["            bv = binf", "            bi = np.int32(0)",
                    "            s = binf"]
        else:
            out += ["            bv = best[p]", "            bi = bj[p]", "            s = second[p]"]
        for c in range(centers):
            out += center(c)
        out += ["            best[p] = bv", "            bj[p] = bi", "            second[p] = s"]
        return out

    # then sweeps of the widest W in widths while W centers remain
    if D >= FUSED_INIT_WIDTH:
        # the first sweep (8 centers, or 4, or 1, as k allows) starts from infinity and
        # computes xsq; binf: infinity in XT's dtype
        lines += ["    best[0] = np.inf", "    binf = best[0]", "    j = 0"]
        for W in (8, 4, 1):
            lines += [f"    if j == 0 and k >= {W}:"] + sweep(W, True) + [f"        j = {W}"]
        widths = (8, 4, 1)
    else:
        # a sweep of its own initializes the lanes and computes xsq
        lines.append("    for p in range(P):")
        lines += [f"        y{f} = x{f}[p]" for f in range(D)]
        lines.append("        xsq[p] = " + " + ".join(f"y{f} * y{f}" for f in range(D)))
        lines += ["        best[p] = np.inf", "        second[p] = np.inf", "        bj[p] = 0",
                  "    j = 0"]
        widths = (4, 1)
    for W in widths:
        lines += [f"    while j + {W} <= k:"] + sweep(W, False) + [f"        j += {W}"]
    ns = {"np": np}
    return _generated(lines, f"_score{D}", ns)


_score_chunk = _dispatch(
    "_score_chunk",
    ("nb", "cs", "half_csq", "XT", "g", "best", "second", "bj", "xsq", "X", "pf0", "pf1"),
    "XT.shape[0]", {D: _make_scorer(D) for D in SCORE_WIDTHS}, _score_loop, (
        "Scores of the nb transposed rows in XT (d, P) against every center: fills "
        "bj[:nb] (index of the smallest score 0.5*||c_j||^2 - <x, c_j>, ties to the "
        "lowest), best[:nb], second[:nb] (smallest and second smallest score) and "
        "xsq[:nb] (||x - shift||^2). Generated code for the lengths in SCORE_WIDTHS "
        "(_make_scorer), _score_loop for the others; g (4, P) is scratch. _score_loop "
        "also prefetches X's flat elements pf0..pf1-1 (the generated scorers ignore "
        "them)."))


#: partial sums of the exact distance that decides labels (``_exact_dist``)
EXACT_PARTS = 8


def _exact_fold(builder, parts):
    """The fixed tree that adds the EXACT_PARTS partial sums of ``_exact_dist``:
    p_q + p_(q+4), then (q) + (q+2), then the two: halves of a vector of 8 lanes, in
    scalars or in vectors of lanes (one partial sum per list entry)."""
    t = [builder.fadd(parts[q], parts[q + 4]) for q in range(4)]
    u = [builder.fadd(t[q], t[q + 2]) for q in range(2)]
    return builder.fadd(u[0], u[1])


@intrinsic
def _exact_dist(typingctx, X, r, c64, j):
    """The exact squared distance ||X[r] - c64[j]||^2 that decides labels (X (m, d),
    c64 (k, d) float64, both C-contiguous): float64, each feature's difference squared
    and rounded, added into EXACT_PARTS partial sums (feature f into sum f mod 8, in
    feature order), which ``_exact_fold`` adds in a fixed tree.  No FMA, nothing
    reordered: IEEE operations on lanes of a vector of 8 float64, which every CPU level
    executes with the same results (two registers on AVX2, four on the baseline).

    Every kernel that compares exact distances to choose a label uses this expression
    (``nearest_exact`` the same operations with one center per lane), so a label is the
    same whichever kernel, batch size or CPU level produced it, also when two centers
    are at the same distance up to rounding (with FMA in one kernel and partial sums
    by vector width in another, measured on constructed ties: 25-35% of those rows got
    another label from predict on a few rows than on many, or on avx2/avx512 than on
    the baseline level).

    Call it only from functions compiled without fastmath (``fastmath=False``, set
    explicitly: a callee compiled for a fastmath caller inherits its flags unless it
    sets its own), and never from an exported kernel's own body (pycc compiles those
    with fastmath: src/build_kernels.py): numba puts a function's fastmath flags on
    every floating-point instruction of its code, an intrinsic's included, and LLVM
    then fused the multiply and the add into an FMA."""
    sig = types.float64(X, r, c64, j)

    def codegen(context, builder, signature, args):
        x, row, C, jj = _ir_args(context, builder, signature, args)
        f64 = ir.DoubleType()
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        P = EXACT_PARTS
        vt = ir.VectorType(f64, P)
        elt = context.get_data_type(signature.args[0].dtype)
        d = builder.extract_value(x.shape, 1)
        xrow = builder.gep(x.data, [builder.mul(row, d)])
        crow = builder.gep(C.data, [builder.mul(jj, d)])
        acc = cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * P))
        n8 = builder.udiv(d, i64(P))
        with cgutils.for_range(builder, n8) as loop:  # 8 features at a time
            off = builder.mul(loop.index, i64(P))
            xv = builder.load(_vec_ptr(builder, xrow, off, ir.VectorType(elt, P)),
                              align=context.get_abi_sizeof(elt))
            if elt != f64:
                xv = builder.fpext(xv, vt)
            e = builder.fsub(xv, builder.load(_vec_ptr(builder, crow, off, vt), align=8))
            builder.store(builder.fadd(builder.load(acc), builder.fmul(e, e)), acc)
        # the last d mod 8 features, feature f0 + q into partial sum q: lanes past
        # them hold 0 - 0, whose square adds +0.0 to a sum of squares (unchanged)
        f0 = builder.mul(n8, i64(P))
        rem = builder.sub(d, f0)
        with builder.if_then(builder.icmp_unsigned(">", rem, i64(0)), likely=False):
            xt = ir.VectorType(elt, P)
            xs = cgutils.alloca_once_value(builder, ir.Constant(xt, [0.0] * P))
            cs = cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * P))
            for q in range(P - 1):
                with builder.if_then(builder.icmp_unsigned(">", rem, i64(q))):
                    src = builder.add(f0, i64(q))
                    for slot, row_ptr in ((xs, xrow), (cs, crow)):
                        val = builder.load(builder.gep(row_ptr, [src]))
                        builder.store(builder.insert_element(builder.load(slot), val, i32(q)),
                                      slot)
            xv = builder.load(xs)
            if elt != f64:
                xv = builder.fpext(xv, vt)
            e = builder.fsub(xv, builder.load(cs))
            builder.store(builder.fadd(builder.load(acc), builder.fmul(e, e)), acc)
        # _exact_fold's tree as halves of the vector
        v = builder.load(acc)
        t = builder.fadd(_lanes(builder, v, 0, 4), _lanes(builder, v, 4, 4))
        u = builder.fadd(_lanes(builder, t, 0, 2), _lanes(builder, t, 2, 2))
        return builder.fadd(builder.extract_element(u, i32(0)),
                            builder.extract_element(u, i32(1)))

    return sig, codegen


# fastmath off: _exact_dist's operations must stay as written
@njit(nogil=True, fastmath=False)
def _exact_nearest2(X, r, c64):
    """(best_j, best_d, second_d): the nearest center to row r by ``_exact_dist`` (ties
    to the lowest index), its distance and the runner-up's."""
    best_j = 0
    best_d = np.inf
    second_d = np.inf
    for j in range(c64.shape[0]):
        dist = _exact_dist(X, r, c64, j)
        second_d = min(second_d, max(best_d, dist))  # branch-free: measured faster
        if dist < best_d:
            best_d = dist
            best_j = j
    return best_j, best_d, second_d


# fastmath off: _exact_dist's operations must stay as written
@njit(nogil=True, fastmath=False)
def _exact_row(X, r, c64, j_fast, gap, bound):
    """The nearest center of row r and its squared distance, exactly in float64.

    The fast scores are trusted when the runner-up is further than ``bound`` (an upper
    bound of their rounding error); otherwise every center is measured exactly
    (``_exact_dist``), so the label is the float64 argmin (ties to the lowest index)
    whatever the CPU target.
    """
    if gap > bound:
        return j_fast, _exact_dist(X, r, c64, j_fast)
    best_j, best_d, _ = _exact_nearest2(X, r, c64)
    return best_j, best_d


@njit(nogil=True, fastmath=FAST)
def _settle_ties(X, start, m, c64, factor, cmax, best, second, bestj, xsq):
    """Re-measure exactly (``_exact_row``) the rows start..start+m-1 of a contiguous
    chunk whose runner-up score is within the rounding-error bound of the best one,
    and correct bestj[:m].  Near ties are rare: they are counted first in one sweep
    over the lanes, which vectorizes, instead of a test in every row's scalar work."""
    n_tie = 0
    for i in range(m):
        gap = np.float64(second[i]) - np.float64(best[i])
        bound = factor * (np.float64(xsq[i]) + cmax)
        n_tie += 1 if gap <= bound else 0
    if n_tie == 0:
        return
    for i in range(m):
        gap = np.float64(second[i]) - np.float64(best[i])
        bound = factor * (np.float64(xsq[i]) + cmax)
        if gap <= bound:
            j, dj = _exact_row(X, start + i, c64, bestj[i], gap, bound)
            bestj[i] = j


@njit(nogil=True, fastmath=FAST)
def _scratch(X, d, fused=False):
    P = _chunk_rows(d, fused, X.itemsize)
    xt = np.zeros((d, P), dtype=X.dtype)
    g = np.empty((4, P), dtype=X.dtype)
    best = np.empty(P, dtype=X.dtype)
    second = np.empty(P, dtype=X.dtype)
    xsq = np.empty(P, dtype=X.dtype)
    bestj = np.empty(P, dtype=np.int32)
    rows = np.empty(P, dtype=np.int64)
    return xt, g, best, second, bestj, xsq, rows


@njit(nogil=True, fastmath=FAST)
def _error_scale(X, half_csq):
    """(factor, max ||c_j||^2): the rounding-error bound of a score is
    factor * (||x||^2 + max ||c_j||^2), with factor = (d + 8) * machine epsilon."""
    eps = np.finfo(X.dtype).eps
    cmax = 0.0
    for j in range(half_csq.shape[0]):
        cmax = max(cmax, 2.0 * np.float64(half_csq[j]))
    return (X.shape[1] + 8) * np.float64(eps), cmax


@njit(nogil=True, fastmath=FAST)
def _worst_sq(xsq, m, worst):
    """max(worst, xsq[:m]) in float64, or infinity once some xsq is NaN or infinite.

    Branch-free and eight lanes at a time, so that it vectorizes (a single running
    maximum with NaN semantics stays scalar): a NaN or an infinity is caught by
    ``v * 0.0``, which is NaN for both (fastmath here has no nnan: not folded to 0)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = worst
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = 0.0
    m8 = (m // 8) * 8
    for i in range(0, m8, 8):
        v0, v1 = np.float64(xsq[i]), np.float64(xsq[i + 1])
        v2, v3 = np.float64(xsq[i + 2]), np.float64(xsq[i + 3])
        v4, v5 = np.float64(xsq[i + 4]), np.float64(xsq[i + 5])
        v6, v7 = np.float64(xsq[i + 6]), np.float64(xsq[i + 7])
        b0, b1, b2, b3 = b0 + v0 * 0.0, b1 + v1 * 0.0, b2 + v2 * 0.0, b3 + v3 * 0.0
        b4, b5, b6, b7 = b4 + v4 * 0.0, b5 + v5 * 0.0, b6 + v6 * 0.0, b7 + v7 * 0.0
        m0, m1 = (v0 if v0 > m0 else m0), (v1 if v1 > m1 else m1)
        m2, m3 = (v2 if v2 > m2 else m2), (v3 if v3 > m3 else m3)
        m4, m5 = (v4 if v4 > m4 else m4), (v5 if v5 > m5 else m5)
        m6, m7 = (v6 if v6 > m6 else m6), (v7 if v7 > m7 else m7)
    mx = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    bad = ((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7))
    for i in range(m8, m):
        v = np.float64(xsq[i])
        bad += v * 0.0
        mx = v if v > mx else mx
    if bad != 0.0:  # NaN
        return np.inf
    return mx


@njit(nogil=True, fastmath=FAST)
def _labels_out(bestj, m, labels, start):
    """labels[start:start + m] = bestj[:m] (unsigned indices: no negative-index
    wraparound, so the copy vectorizes)."""
    u0 = np.uint64(start)
    for i in range(m):
        labels[u0 + np.uint64(i)] = bestj[i]


@njit(nogil=True, fastmath=FAST)
def lloyd_block(X, shift, cs, half_csq, c64, w, labels, mind, sums, counts, inertia):
    """One Lloyd pass over a block of rows.

    Parameters
    ----------
    X : (m, d) float32 or float64, C-contiguous          # IN
    shift : (d,) same dtype as X                          # IN
    cs : (k, d) same dtype as X, centers minus shift      # IN
    half_csq : (k,) same dtype, 0.5*||cs_j||^2            # IN
    c64 : (k, d) float64, the centers                     # IN
    w : (m,) float64 sample weights, or (0,) for all ones # IN
    labels : (m,) int32                                   # OUT
    mind : (m,) float64 squared distance to the nearest center, or (0,) to skip  # OUT
    sums : (k, d) float64 weighted sums of rows per center   # INOUT
    counts : (k,) float64 sum of weights per center           # INOUT
    inertia : (1,) float64 weighted sum of squared distances  # INOUT

    Returns the largest ||x - shift||^2 as computed for the scores (see
    ``assign_block``): the caller's check of the float32 range, without distances.
    """
    m_total, d = X.shape
    xt, g, best, second, bestj, xsq, rows = _scratch(X, d, True)
    factor, cmax = _error_scale(X, half_csq)
    P = xt.shape[1]
    inert = inertia[0]
    worst = 0.0
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        _assign_span(X, start, m, shift, cs, half_csq, xt, g, best, second, bestj, xsq, rows,
                     False)
        _settle_ties(X, start, m, c64, factor, cmax, best, second, bestj, xsq)
        _labels_out(bestj, m, labels, start)
        worst = _worst_sq(xsq, m, worst)
        inert = _accumulate(X, start, m, bestj, w, c64, mind, sums, counts, inert)
    inertia[0] = inert
    return worst


#: row lengths accumulated by generated code with the length as a constant
#: (``_make_accumulator``); longer rows go through the loop of ``_accumulate_loop``.
#: Built with LLVM's SLP vectorizer on (src/build_kernels.py).  JIT A/B of the whole
#: single-thread lloyd_block, 2,000,000 rows (min of 9, same bits): d=8, k=8 33.9
#: against 41.7 ms; d=5, k=16 27.1 against 33.3; d=3, k=8 16.7 against 20.0.  Each
#: length costs build time, mostly in numba's front end (the avx2 module: 73 s without
#: them, 105 s with lengths 2-8; 2-16 would have been ~200 s), hence no more than 8
ACC_WIDTHS = tuple(range(2, 9))

#: fused multiply-add in the generated distances: on for the AVX2 and AVX-512 builds,
#: off for the baseline build (x86-64 without FMA, where llvm.fma would be a libm call);
#: src/build_kernels.py sets KMAOT_KERNEL_FMA per CPU level before importing the kernels
USE_FMA = os.environ.get("KMAOT_KERNEL_FMA", "1") != "0"


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma): one result, whatever the optimizer does."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], ir.FunctionType(f64, [f64] * 3))
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Prefetch the cache line of element idx of the C-contiguous array arr, counted
    in elements from its start (llvm.prefetch: a hint that never faults, so idx may lie
    past the end)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return sig, codegen


#: row lengths whose accumulation step is one ``_make_row_acc`` intrinsic: vector
#: IR for the whole row (powers of two, where the distance's tree of halves is one
#: vector operation per level)
ROW_ACC_WIDTHS = (2, 4, 8)


def _make_row_acc(D, weighted):
    """An intrinsic ``dist = f(X, r, c64, j, sums, wi)`` for rows of exactly D features
    (D in ROW_ACC_WIDTHS): sums[j] += X[r] (wi * X[r] if weighted; sums and c64
    C-contiguous float64 (k, D), X C-contiguous (m, D)) and returns the squared distance
    ||X[r] - c64[j]||^2 by the fixed tree of ``_make_accumulator``: feature f's square
    fused with feature f + D/2's, then sums of halves.  The same IEEE operations in the
    same order as the generated scalar code, as whole-row vector operations: the SLP
    vectorizer had split that code into two-element pieces (at D=8, 40 instructions
    per row against 24 now).  Unweighted (``weighted`` False), wi is ignored."""
    @intrinsic
    def row_acc(typingctx, X, r, c64, j, sums, wi):
        sig = types.float64(X, r, c64, j, sums, wi)

        def codegen(context, builder, signature, args):
            xa, rr, ca, jj, sa, wi = _ir_args(context, builder, signature, args)
            i64 = ir.IntType(64)
            f64 = ir.DoubleType()
            elt = context.get_data_type(signature.args[0].dtype)

            _, x = _vec_load(context, builder, xa.data, builder.mul(rr, i64(D)), elt, D)
            if elt != f64:
                x = builder.fpext(x, ir.VectorType(f64, D))
            _, c = _vec_load(context, builder, ca.data, builder.mul(jj, i64(D)), f64, D)
            e = builder.fsub(x, c)
            h = D // 2
            lo, hi = _lanes(builder, e, 0, h), _lanes(builder, e, h, h)
            if USE_FMA:
                t = builder.call(_vec_fma(builder, ir.VectorType(f64, h)),
                                 [hi, hi, builder.fmul(lo, lo)])
            else:
                t = builder.fadd(builder.fmul(lo, lo), builder.fmul(hi, hi))
            while h > 1:
                h //= 2
                t = builder.fadd(_lanes(builder, t, 0, h), _lanes(builder, t, h, h))
            dist = builder.extract_element(t, ir.IntType(32)(0))
            sp, s = _vec_load(context, builder, sa.data, builder.mul(jj, i64(D)), f64, D)
            if weighted:
                x = builder.fmul(_splat(builder, wi, ir.VectorType(f64, D)), x)
            builder.store(builder.fadd(s, x), sp, align=8)
            return dist

        return sig, codegen

    return row_acc


def _make_row_acc_pair(D):
    """An intrinsic ``(dist_a, dist_b) = f(X, r, c64, ja, jb, sums)`` for two
    consecutive unweighted rows r and r + 1 of exactly D = 8 features: sums[ja] +=
    X[r], then sums[jb] += X[r + 1], and their squared distances to c64[ja] and
    c64[jb] by the tree of ``_make_row_acc``, the same operations in the same order
    for each row (IEEE addition is commutative), with both rows in the lanes of one
    vector: the halves of the two rows are gathered into two vectors, so the squares,
    the fused multiply-add and each level of the tree are one operation for both rows."""
    @intrinsic
    def row_acc_pair(typingctx, X, r, c64, ja, jb, sums):
        sig = types.UniTuple(types.float64, 2)(X, r, c64, ja, jb, sums)

        def codegen(context, builder, signature, args):
            xa, rr, ca, j0, j1, sa = _ir_args(context, builder, signature, args)
            i32 = ir.IntType(32)
            i64 = ir.IntType(64)
            f64 = ir.DoubleType()
            elt = context.get_data_type(signature.args[0].dtype)
            v8 = ir.VectorType(f64, D)

            def shuffle(a, b, idx):
                return builder.shuffle_vector(a, b, ir.Constant(
                    ir.VectorType(i32, len(idx)), list(idx)))

            xs, es = [], []
            for q, jj in enumerate((j0, j1)):
                _, x = _vec_load(context, builder, xa.data,
                                 builder.mul(builder.add(rr, i64(q)), i64(D)), elt, D)
                if elt != f64:
                    x = builder.fpext(x, v8)
                _, c = _vec_load(context, builder, ca.data, builder.mul(jj, i64(D)), f64, D)
                xs.append(x)
                es.append(builder.fsub(x, c))
            h = D // 2
            lo = shuffle(es[0], es[1], list(range(h)) + list(range(D, D + h)))
            hi = shuffle(es[0], es[1], list(range(h, D)) + list(range(D + h, 2 * D)))
            if USE_FMA:
                t = builder.call(_vec_fma(builder, v8), [hi, hi, builder.fmul(lo, lo)])
            else:
                t = builder.fadd(builder.fmul(lo, lo), builder.fmul(hi, hi))
            # each row's half of t: lanes q and q + w added, then the halves of that
            w = h // 2
            while w >= 1:
                idx = []
                for base in range(0, D, 2 * w):
                    idx += list(range(base + w, base + 2 * w)) + list(range(base, base + w))
                t = builder.fadd(t, shuffle(t, t, idx))
                w //= 2
            dists = [builder.extract_element(t, i32(0)), builder.extract_element(t, i32(h))]
            for x, jj in zip(xs, (j0, j1)):
                sp, sv = _vec_load(context, builder, sa.data, builder.mul(jj, i64(D)),
                                   f64, D)
                builder.store(builder.fadd(sv, x), sp, align=8)
            return context.make_tuple(builder, signature.return_type, dists)

        return sig, codegen

    return row_acc_pair


#: accumulate unweighted rows of this many features two at a time
#: (``_make_row_acc_pair``), where vector registers hold two rows of float64
PAIR_WIDTHS = (8,) if _VBYTES == 64 else ()


def _make_accumulator(D):
    """An njit ``_accumulate`` for rows of exactly D features, written out feature by
    feature: every load of a row comes before the stores to its center's sums, so that
    the SLP vectorizer turns the row into a few vector operations (the loop over
    features in ``_add_row_dist`` is vectorized with a remainder and runtime alias
    checks, which cost more than the work at small D).

    The squared distance is a fixed expression: the squares of features f and
    f + ceil(D/2) summed by one fused multiply-add (``fma(e4, e4, e0 * e0)`` at D=8; a
    plain sum on the baseline build), then those sums added by halves in the same way,
    a tree; then the distance is added to the inertia in row order.  Compiled without
    fastmath, and explicitly so: a callee compiled for a fastmath caller inherits its
    flags unless it sets its own, and with reassociation and contraction allowed, LLVM
    evaluated the distance differently in the four loops below (their inertias
    differed in the last bits).

    For the lengths in ROW_ACC_WIDTHS the row's loads, distance and sums are one
    ``_make_row_acc`` intrinsic (the same operations in the same order, written as
    vector IR): JIT A/B of single-thread lloyd_block, 2,000,000 rows, k=8, same bits:
    float32 d=8 0.90x the time, weighted 0.87x, d=4 0.97x, d=2 0.87x; 1,000,000 x 8,
    k=64 0.97x; float64 and keeping the distances unchanged (0.99-1.01x).  For the
    lengths in PAIR_WIDTHS, unweighted rows go two at a time (``_make_row_acc_pair``),
    then the last one alone."""
    def row(weighted, keep):
        # the same row of the next chunk (m rows on) is prefetched: the chunk's rows
        # are scored and accumulated from cache, so without it the memory bus idles
        # then, and the next transposition waits for memory (JIT A/B of lloyd_block,
        # 2M rows, d=8 k=8: one thread 19.7 vs 23.3 ms, two threads 13.3 vs 16.0; d=5
        # k=16 19.2 vs 21.5; d=3 12.7 vs 13.5; no gain measured for d = 12, 16, 32 in
        # _accumulate_loop, where the scores dominate)
        out = ["            r = u0 + np.uint64(i)",
               "            j = np.uint64(lab[i])",
               f"            _prefetch(X, (r + um) * np.uint64({D}))"]
        if D in ROW_ACC_WIDTHS:
            if weighted:
                out += ["            wi = w[r]",
                        "            dist = _row_acc_w(X, r, c64, j, sums, wi)",
                        "            counts[j] += wi", "            inert += wi * dist"]
            else:
                out += ["            dist = _row_acc(X, r, c64, j, sums, 1.0)",
                        "            counts[j] += 1.0", "            inert += dist"]
            if keep:
                out.append("            mind[r] = dist")
            return out
        # * 1.0: float64 for float32 rows (exact; folded away for float64)
        out += [f"            x{f} = X[r, {f}] * 1.0" for f in range(D)]
        out += [f"            e{f} = x{f} - c64[j, {f}]" for f in range(D)]
        out += [f"            s{f} = sums[j, {f}]" for f in range(D)]
        # feature f pairs with feature f + ceil(D/2), and so on at every level of the
        # tree: each level is the sum of two contiguous halves, i.e. vector operations
        # (pairing neighbours, f with f + 1, needed shuffles: JIT A/B at d=8, 34 against
        # 39 ms per single-thread lloyd_block)
        c = (D + 1) // 2
        if USE_FMA:
            terms = [f"_fma(e{f + c}, e{f + c}, e{f} * e{f})" for f in range(D // 2)]
        else:
            terms = [f"(e{f} * e{f} + e{f + c} * e{f + c})" for f in range(D // 2)]
        terms += [f"e{D // 2} * e{D // 2}"] if D % 2 else []
        while len(terms) > 1:
            n, c = len(terms), (len(terms) + 1) // 2
            terms = ([f"({terms[a]} + {terms[a + c]})" for a in range(n // 2)]
                     + ([terms[n // 2]] if n % 2 else []))
        out.append(f"            dist = {terms[0]}")
        if weighted:
            out.append("            wi = w[r]")
            out += [f"            sums[j, {f}] = s{f} + wi * x{f}" for f in range(D)]
            out += ["            counts[j] += wi", "            inert += wi * dist"]
        else:
            out += [f"            sums[j, {f}] = s{f} + x{f}" for f in range(D)]
            out += ["            counts[j] += 1.0", "            inert += dist"]
        if keep:
            out.append("            mind[r] = dist")
        return out

    def pair(keep):
        # rows i and i + 1; the same operations as two calls of row(False, keep)
        out = ["            r = u0 + np.uint64(i)",
               "            ja = np.uint64(lab[i])",
               "            jb = np.uint64(lab[i + 1])",
               # as row(): the next chunk's rows, one prefetch per two rows (64 bytes
               # of float32)
               f"            _prefetch(X, (r + um) * np.uint64({D}))",
               "            da, db = _row_acc_pair(X, r, c64, ja, jb, sums)",
               "            counts[ja] += 1.0", "            inert += da",
               "            counts[jb] += 1.0", "            inert += db"]
        if keep:
            out += ["            mind[r] = da", "            mind[r + np.uint64(1)] = db"]
        return out

    lines = [f"def _acc{D}(X, start, m, lab, w, c64, mind, sums, counts, inert):",
             "    u0 = np.uint64(start)",
             "    um = np.uint64(m)"]
    for weighted in (False, True):
        for keep in (False, True):
            lines.append(f"    if w.shape[0] {'>' if weighted else '=='} 0 and "
                         f"mind.shape[0] {'>' if keep else '=='} 0:")
            if D in PAIR_WIDTHS and not weighted:
                lines.append("        m2 = (m // 2) * 2")
                lines.append("        for i in range(0, m2, 2):")
                lines += pair(keep)
                lines.append("        for i in range(m2, m):")
            else:
                lines.append("        for i in range(m):")
            lines += row(weighted, keep)
    lines.append("    return inert")
    ns = {"np": np, "_fma": _fma, "_prefetch": _prefetch}
    if D in PAIR_WIDTHS:
        ns["_row_acc_pair"] = _make_row_acc_pair(D)
    if D in ROW_ACC_WIDTHS:
        ns["_row_acc"] = _make_row_acc(D, False)
        ns["_row_acc_w"] = _make_row_acc(D, True)
    return _generated(lines, f"_acc{D}", ns, fastmath=False)


@njit(nogil=True, fastmath=FAST)
def _accumulate_loop(X, start, m, lab, w, c64, mind, sums, counts, inert):
    """Add the rows start..start+m-1 of X, in row order, to their centers lab[:m]:
    sums += w * x, counts += w, and returns inert + sum of w * exact distance (w: (m_total,)
    or (0,) for ones); writes the distances into mind[start:start+m] unless mind is (0,).

    Every accumulation of a Lloyd pass goes through ``_accumulate`` (lloyd_block,
    lloyd_bounds_block, yinyang_block, yinyang_accumulate), so they agree bit for bit;
    weights 1 give the same bits as no weights (x * 1.0 == x).  The four cases are
    separate loops and the indices unsigned (no negative-index wraparound): the per-row
    bookkeeping was ~30% of the accumulation (JIT A/B, 2M rows of 8 features, 8
    centers: 15.4 -> 10.9 ms)."""
    u0 = np.uint64(start)
    if w.shape[0] == 0:
        if mind.shape[0] == 0:
            for i in range(m):
                r = u0 + np.uint64(i)
                j = np.uint64(lab[i])
                inert += _add_row_dist(X, r, j, 1.0, c64, sums)
                counts[j] += 1.0
        else:
            for i in range(m):
                r = u0 + np.uint64(i)
                j = np.uint64(lab[i])
                dist = _add_row_dist(X, r, j, 1.0, c64, sums)
                counts[j] += 1.0
                inert += dist
                mind[r] = dist
    else:
        for i in range(m):
            r = u0 + np.uint64(i)
            j = np.uint64(lab[i])
            wi = w[r]
            dist = _add_row_dist(X, r, j, wi, c64, sums)
            counts[j] += wi
            inert += wi * dist
            if mind.shape[0] > 0:
                mind[r] = dist
    return inert


@njit(nogil=True, fastmath=FAST, inline="always")
def _row_dist(X, r, j, c64):
    """The float64 ||X[r] - c64[j]||^2, summed as fastmath allows (partial sums in
    vector lanes; inlined: see _add_row_dist): for distances that bound or report, not
    for those that choose a label (``_exact_dist``)."""
    dist = 0.0
    for f in range(X.shape[1]):
        diff = np.float64(X[r, f]) - c64[j, f]
        dist += diff * diff
    return dist


# inline="always": as a call, LLVM vectorised the caller's row loop differently and the
# fused pass ran up to 2x slower (measured on W3, d=8)
@njit(nogil=True, fastmath=FAST, inline="always")
def _add_row_dist(X, r, j, wi, c64, sums):
    """sums[j] += wi * X[r]; returns the exact float64 ||X[r] - c64[j]||^2."""
    dist = 0.0
    for f in range(X.shape[1]):
        xf = np.float64(X[r, f])
        diff = xf - c64[j, f]
        dist += diff * diff
        sums[j, f] += wi * xf
    return dist


#: ``_accumulate``: the generated accumulators for the lengths in ACC_WIDTHS,
#: ``_accumulate_loop`` (a loop over features, ``_add_row_dist``) for the others
_accumulate = _dispatch(
    "_accumulate", ("X", "start", "m", "lab", "w", "c64", "mind", "sums", "counts", "inert"),
    "X.shape[1]", {D: _make_accumulator(D) for D in ACC_WIDTHS}, _accumulate_loop,
    _accumulate_loop.__doc__)


@njit(nogil=True, fastmath=FAST)
def lloyd_bounds_block(X, shift, cs, half_csq, c64, w, delta, sep, labels, lower,
                       sums, counts, inertia, n_full):
    """``lloyd_block`` that skips rows whose label provably cannot change.

    The same labels, sums, counts and inertia as ``lloyd_block``, bit for bit
    (Hamerly's bound): every row keeps ``labels[r]`` from the previous pass and
    ``lower[r]``, a lower bound of its distance to every *other* center.  After the
    centers moved by ``delta`` (k,) (their Euclidean displacement since that pass), the
    bound drops by the largest displacement of another center; the row's exact float64
    distance to its own center is measured, and if it is below the bound (with a
    margin far above float64 rounding) the label stands.  Otherwise the row is
    assigned as in ``lloyd_block`` and gets a new bound from its runner-up's score
    (minus the score's rounding-error bound), or 0 after an exact recheck.
    Rows are accumulated in row order with the same arithmetic as ``lloyd_block``.

    X (m, d) IN; shift, cs, half_csq, c64 as lloyd_block; w (m,) or (0,) IN;
    delta (k,) float64 IN; labels (m,) int32 INOUT; lower (m,) float64 INOUT (0 means
    "unknown": the row is assigned in full); sep (k,) float64 IN: a lower bound of half
    the distance from each center to its nearest other center (a row closer than that to
    its own center keeps it: Hamerly's second test); sums, counts, inertia INOUT as
    lloyd_block;
    n_full (1,) int64 INOUT: rows assigned in full are added to it.
    """
    m_total, d = X.shape
    k = c64.shape[0]
    xt, g, best, second, bestj, xsq, chunk_rows = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    P = xt.shape[1]
    # largest and second largest displacement: a row in cluster a decays by the
    # largest displacement among the other centers
    d1 = 0.0
    d2 = 0.0
    a1 = -1
    for j in range(k):
        dj = delta[j]
        if dj > d1:
            d2 = d1
            d1 = dj
            a1 = j
        elif dj > d2:
            d2 = dj
    eps = 4.0 * np.finfo(np.float64).eps
    # rows are screened in spans of S rows (a few hundred KB, cache resident); the rows
    # that need a full assignment are gathered and assigned P at a time, then the span
    # is accumulated in row order
    S = 8 * P
    rec = np.empty(S, dtype=np.int64)
    inert = inertia[0]
    full = 0
    for start in range(0, m_total, S):
        m = min(S, m_total - start)
        nb = 0
        for i in range(m):
            r = start + i
            a = labels[r]
            dec = d2 if a == a1 else d1
            lo = lower[r]
            lo = lo - dec - eps * (lo + dec)
            lower[r] = lo
            sa = sep[a]
            if sa > lo:
                lo = sa
            keep = False
            if lo > 0.0:
                da = 0.0
                for f in range(d):
                    diff = np.float64(X[r, f]) - c64[a, f]
                    da += diff * diff
                # da*(1+1e-9) < lo^2*(1-1e-9): float64 rounding of both sides is ~1e-15
                keep = da * (1.0 + 1e-9) < lo * lo * (1.0 - 1e-9)
            if not keep:
                rec[nb] = r
                nb += 1
        full += nb
        for q0 in range(0, nb, P):
            nq = min(P, nb - q0)
            rows = rec[q0:q0 + nq]
            _assign_chunk(X, rows, nq, shift, cs, half_csq, xt, g, best, second, bestj, xsq)
            for q in range(nq):
                r = rows[q]
                gap = np.float64(second[q]) - np.float64(best[q])
                bound = factor * (np.float64(xsq[q]) + cmax)
                if gap > bound:
                    labels[r] = bestj[q]
                    # every other center's score is >= second - bound; distance^2 =
                    # ||x - shift||^2 + 2 * score, with both terms' errors covered
                    lo2 = np.float64(xsq[q]) + 2.0 * np.float64(second[q]) - 8.0 * bound
                    lower[r] = np.sqrt(lo2) * (1.0 - 1e-7) if lo2 > 0.0 else 0.0
                else:
                    j, dj = _exact_row(X, r, c64, bestj[q], gap, bound)
                    labels[r] = j
                    lower[r] = 0.0
        inert = _accumulate(X, start, m, labels[start:start + m], w, c64, w[:0], sums,
                            counts, inert)
    inertia[0] = inert
    n_full[0] += full


@njit(nogil=True, fastmath=FAST)
def assign_block(X, shift, cs, half_csq, c64, labels, mind):
    """Nearest center of each row, without accumulation.

    X (m, d) IN; shift (d,) IN; cs (k, d) IN; half_csq (k,) IN; c64 (k, d) float64 IN;
    labels (m,) int32 OUT; mind (m,) float64 OUT, or (0,) to skip.
    Returns the largest ||x - shift||^2 as computed for the scores (in the data dtype),
    or infinity when a row's is not finite (NaN or infinity in the row, or overflow):
    the caller's check of the rows and of the float32 range, with no distances needed.
    """
    m_total, d = X.shape
    has_mind = mind.shape[0] > 0
    xt, g, best, second, bestj, xsq, rows = _scratch(X, d)
    factor, cmax = _error_scale(X, half_csq)
    P = xt.shape[1]
    worst = 0.0
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        _assign_span(X, start, m, shift, cs, half_csq, xt, g, best, second, bestj, xsq, rows,
                     True)
        _settle_ties(X, start, m, c64, factor, cmax, best, second, bestj, xsq)
        _labels_out(bestj, m, labels, start)
        worst = _worst_sq(xsq, m, worst)
        if has_mind:
            for i in range(m):
                mind[start + i] = _row_dist(X, start + i, bestj[i], c64)
    return worst


@intrinsic
def _exact_tiles(typingctx, X, r, ct, bd, bj):
    """(X, r, ct, bd, bj) -> (bd, bj): the nearest center to row r of X, exactly in
    float64 (ties to the lowest index), from the centers transposed: ct (d, kp)
    float64, kp a multiple of EXACT_TILE; (bd, bj) are returned when no center is
    nearer (inf, 0 for a row whose distances are all NaN or infinity).

    A tile of centers lies in the lanes of vector registers (one center per lane):
    EXACT_PARTS registers hold its partial sums, feature f going into register
    f mod 8, each a subtraction, a multiply and an add per feature, which
    ``_exact_fold`` adds in the same tree as ``_exact_dist``: every lane computes
    ``_exact_dist`` bit for bit.  Each lane keeps its best distance and index (a later
    center only on a strictly smaller distance); the lanes are folded at the end, the
    lower index winning on equal distances."""
    sig = types.Tuple((types.float64, types.int64))(X, r, ct, bd, bj)

    def codegen(context, builder, signature, args):
        x, row, C, bd, bj = _ir_args(context, builder, signature, args)
        f64 = ir.DoubleType()
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        P = EXACT_PARTS
        L = _VBYTES // 8
        NV = EXACT_TILE // L  # registers of centers per tile
        vt = ir.VectorType(f64, L)
        it = ir.VectorType(i64, L)
        xelt = context.get_data_type(signature.args[0].dtype)
        d = builder.extract_value(C.shape, 0)
        k = builder.extract_value(C.shape, 1)
        xrow = builder.gep(x.data, [builder.mul(row, d)])
        accs = [[cgutils.alloca_once(builder, vt) for _ in range(P)] for _ in range(NV)]
        bestv = cgutils.alloca_once_value(builder, ir.Constant(vt, [float("inf")] * L))
        besti = cgutils.alloca_once_value(builder, ir.Constant(it, [0] * L))
        lane = ir.Constant(it, list(range(L)))

        def feature(f, j, q):
            xf = builder.load(builder.gep(xrow, [f]))
            if xelt != f64:
                xf = builder.fpext(xf, f64)
            xv = _splat(builder, xf, vt)
            base = builder.add(builder.mul(f, k), j)
            for v in range(NV):
                c = builder.load(_vec_ptr(builder, C.data, builder.add(base, i64(v * L)), vt),
                                 align=8)
                e = builder.fsub(xv, c)
                acc = accs[v][q]
                builder.store(builder.fadd(builder.load(acc), builder.fmul(e, e)), acc)

        n8 = builder.udiv(d, i64(P))
        f0 = builder.mul(n8, i64(P))
        rem = builder.sub(d, f0)
        with cgutils.for_range(builder, builder.udiv(k, i64(NV * L))) as tiles:
            j = builder.mul(tiles.index, i64(NV * L))
            for acc in sum(accs, []):
                builder.store(ir.Constant(vt, [0.0] * L), acc)
            with cgutils.for_range(builder, n8) as loop:
                fb = builder.mul(loop.index, i64(P))
                for q in range(P):
                    feature(builder.add(fb, i64(q)), j, q)
            for q in range(P - 1):  # the last d mod 8 features (absent ones add nothing)
                with builder.if_then(builder.icmp_unsigned(">", rem, i64(q)), likely=False):
                    feature(builder.add(f0, i64(q)), j, q)
            for v in range(NV):
                dist = _exact_fold(builder, [builder.load(acc) for acc in accs[v]])
                bv = builder.load(bestv)
                lt = builder.fcmp_ordered("<", dist, bv)
                builder.store(builder.select(lt, dist, bv), bestv)
                idx = builder.add(_splat(builder, builder.add(j, i64(v * L)), it), lane)
                builder.store(builder.select(lt, idx, builder.load(besti)), besti)
        bv = builder.load(bestv)
        bi = builder.load(besti)
        for q in range(L):
            vq = builder.extract_element(bv, i32(q))
            iq = builder.extract_element(bi, i32(q))
            better = builder.or_(builder.fcmp_ordered("<", vq, bd),
                                 builder.and_(builder.fcmp_ordered("==", vq, bd),
                                              builder.icmp_signed("<", iq, bj)))
            bd = builder.select(better, vq, bd)
            bj = builder.select(better, iq, bj)
        return context.make_tuple(builder, signature.return_type, [bd, bj])

    return sig, codegen


#: centers per tile of ``_exact_tiles``: two registers of float64 lanes at AVX-512
#: (16 registers of partial sums), one below
EXACT_TILE = 16 if _VBYTES == 64 else _VBYTES // 8
#: ``nearest_exact``'s centers come in multiples of this many columns (``Centers.c64t``
#: pads them with NaN): a multiple of every CPU level's EXACT_TILE
EXACT_PAD = 16


# fastmath off: _exact_tiles's operations must stay as written (see _exact_dist); a
# function of its own, since pycc compiles the exported kernels' bodies with fastmath
# (src/build_kernels.py)
@njit(nogil=True, fastmath=False)
def _nearest_tiles(X, r, ct):
    """(distance, index) of the nearest center to row r (``_exact_tiles``)."""
    return _exact_tiles(X, r, ct, np.inf, 0)


@njit(nogil=True, fastmath=FAST)
def nearest_exact(X, ct, labels):
    """Nearest center of each row by exact float64 distances, for a handful of rows.

    X (m, d) IN; ct (d, kp) float64 IN: the centers transposed (``Centers.c64t``), kp
    a multiple of EXACT_PAD, the columns past the k centers NaN (a NaN distance never
    wins); labels (m,) int32 OUT.  Returns the number of rows whose distances are not
    finite (NaN or infinity in the row): the caller raises.  The argmin of
    ``_exact_dist`` (ties to the lowest index), as every other kernel's, with three
    arguments and no scratch: the latency path of ``predict`` on a few rows.  The
    centers are measured a tile of vector registers at a time (``_exact_tiles``)."""
    bad = 0
    for r in range(X.shape[0]):
        best_d, best_j = _nearest_tiles(X, r, ct)
        labels[r] = best_j
        if not best_d < np.inf:
            bad += 1
    return bad


@njit(nogil=True, fastmath=FAST)
def nearest_exact_dist(X, c64, labels, mind):
    """``nearest_exact`` that also writes the squared distance of every row to its
    center into ``mind`` (m,) float64 OUT: the assignment of small batches with few
    centers, where it beats the blocked kernel (MiniBatchKMeans steps)."""
    bad = 0
    for r in range(X.shape[0]):
        j, dist = _exact_row(X, r, c64, 0, -1.0, 0.0)
        labels[r] = j
        mind[r] = dist
        if not dist < np.inf:
            bad += 1
    return bad


def _sig(template, t):
    return template.replace("T", t)


_LLOYD = "f8(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], f8[::1], i4[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1])"
_ASSIGN = "f8(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], i4[::1], f8[::1])"
_NEAREST = "i8(T[:, ::1], f8[:, ::1], i4[::1])"
_NEAREST_DIST = "i8(T[:, ::1], f8[:, ::1], i4[::1], f8[::1])"
_BOUNDS = "void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], f8[::1], f8[::1], f8[::1], i4[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1], i8[::1])"

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["lloyd_block_" + _suffix] = (lloyd_block, _sig(_LLOYD, _t))
    EXPORTS["assign_block_" + _suffix] = (assign_block, _sig(_ASSIGN, _t))
    EXPORTS["nearest_exact_" + _suffix] = (nearest_exact, _sig(_NEAREST, _t))
    EXPORTS["nearest_exact_dist_" + _suffix] = (nearest_exact_dist, _sig(_NEAREST_DIST, _t))
    EXPORTS["lloyd_bounds_block_" + _suffix] = (lloyd_bounds_block, _sig(_BOUNDS, _t))
