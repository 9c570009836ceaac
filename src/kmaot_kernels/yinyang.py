"""Grouped (Yinyang) bounds: a Lloyd pass that skips most center distances.

Yinyang k-means (Ding et al., ICML 2015) with the exactness rules of
``lloyd.lloyd_bounds_block``.  The centers are split once into G groups; every row
keeps its label, an upper bound ``upper`` of its distance to its own center and, per
group, a lower bound ``lower[:, g]`` of its distance to every center of the group other
than its own.  After the centers moved by ``delta`` (k,), a group's bound drops by the
largest displacement in the group (``gdelta``); the upper bound grows by the own
center's displacement.

* global filter: the smallest group bound (or Hamerly's ``sep``) above the upper bound
  (tightened to the exact float64 distance when needed): the label stands, nothing is
  measured;
* group filter: otherwise only the groups whose bound is below the distance to the own
  center are measured (fast float32/float64 expanded scores, as ``_assign_chunk``, one
  row at a time with the inner loop over features); the other groups' centers are
  provably farther than the own center, so the nearest center is among the measured
  ones (and the own center);
* ties and near ties: when the runner-up's score is within the rounding-error bound of
  the best one, every measured center is measured again exactly in float64, ties to
  the lowest index: the label is the float64 argmin over all centers, as in
  ``lloyd_block``.

All comparisons between bounds keep margins far above float64 rounding (and the group
bounds, stored in float32, are rounded down), so a row is skipped only when its label
provably cannot change.  Rows are accumulated in row order by ``_accumulate``, the
arithmetic of ``lloyd_block``: sums, counts and inertia are bit-identical to it.
"""
import numpy as np
from numba import njit

from .lloyd import FAST, _accumulate, _error_scale, _exact_dist, _row_dist

#: relative margins: float64 distances are exact to ~1e-14, float32 scores are covered
#: by their error bound; these keep every comparison strict whatever the rounding
_UP = 1.0 + 1e-9
_DOWN = 1.0 - 1e-9
#: rows per span: the entry lists of a span (about 40 bytes per row and group) stay
#: in cache; JIT A/B on W2's first 16384 rows, iterations 2..5 chained, 1 thread:
#: 1024 rows 368 ms, 256 371, 128 328, 64 330 (shared machine, min of 5)
_SPAN = 128


@njit(nogil=True, fastmath=FAST, inline="always")
def _lower_from_score(xsq, score, bound):
    """A lower bound of the distance of every center whose fast score is >= score
    (the rule of lloyd_bounds_block: squared distance = ||x - shift||^2 + 2 * score,
    both terms' rounding errors covered by 8 * bound), rounded down."""
    lo2 = xsq + 2.0 * score - 8.0 * bound
    if lo2 > 0.0:
        return np.sqrt(lo2) * (1.0 - 1e-7)
    return 0.0


@njit(nogil=True, fastmath=FAST, inline="always")
def _store_down(v):
    """float32 value <= v (v >= 0 a float64): the relative rounding of float32 is
    below 6e-8, so shrinking by 1e-6 first keeps it a lower bound."""
    if v > 0.0:
        return np.float32(v * (1.0 - 1e-6))
    return np.float32(0.0)


@njit(nogil=True, fastmath=FAST)
def _min8(a, r):
    """Smallest element of row r of a (float32, no NaN, at least one column), eight
    lanes at a time so that it vectorizes (a single running minimum stays scalar:
    fastmath here has no nnan)."""
    v = a[r]
    n = v.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = v[0]
    n8 = (n // 8) * 8
    for i in range(0, n8, 8):
        m0, m1 = (v[i] if v[i] < m0 else m0), (v[i + 1] if v[i + 1] < m1 else m1)
        m2, m3 = (v[i + 2] if v[i + 2] < m2 else m2), (v[i + 3] if v[i + 3] < m3 else m3)
        m4, m5 = (v[i + 4] if v[i + 4] < m4 else m4), (v[i + 5] if v[i + 5] < m5 else m5)
        m6, m7 = (v[i + 6] if v[i + 6] < m6 else m6), (v[i + 7] if v[i + 7] < m7 else m7)
    mn = min(min(min(m0, m1), min(m2, m3)), min(min(m4, m5), min(m6, m7)))
    for i in range(n8, n):
        mn = v[i] if v[i] < mn else mn
    return mn


@njit(nogil=True, fastmath=FAST)
def _decay_row(lower, r, gdelta, sep_a):
    """Decays the group bounds of row r of lower (m, G) float32 INOUT by the groups'
    largest displacements gdelta (rounded down, stored as float32 lower bounds:
    _store_down as a select) and returns the row's bound on the distance to every other
    center: the smallest decayed group bound, or sep_a (Hamerly's second test) when
    that is larger.
    Step (1) of both ``yinyang_block`` and ``yinyang_filter``.  The decay and the
    minimum are separate loops (with the minimum inside, neither vectorized), and the
    row is addressed through (lower, r), not a view: JIT, one 2,048-row piece of W2's
    third pass, one thread, same results: yinyang_filter 0.31 ms against 0.53-0.81."""
    eps = 4.0 * np.finfo(np.float64).eps
    for g in range(lower.shape[1]):
        gd = gdelta[g]
        lo = np.float64(lower[r, g]) - gd
        lo = lo - eps * (lo + gd)
        lower[r, g] = np.float32(lo * (1.0 - 1e-6)) if lo > 0.0 else np.float32(0.0)
    lmin = np.float64(_min8(lower, r))
    return sep_a if sep_a > lmin else lmin


# Helpers that take arrays are plain calls, never inline="always": numba's inlining
# wraps every array argument in NRT incref/decref calls, which cost more than the
# arithmetic of a small group (measured: 9 against 40 GFLOP/s per core)
@njit(nogil=True, fastmath=FAST)
def _measure_group(XS, i0, i1, i2, i3, q, p0, p1, cg, hg, o_m1, o_m2, o_arg):
    """Fast scores hg[p] - <XS[i], cg[p]> of four span rows i0..i3 (rows of XS)
    against the sorted centers p0:p1 of one group: the best, second best and position
    of the best of each row go to o_m1, o_m2, o_arg at q..q+3.  Two centers and four
    rows per sweep share their loads; the loop over features vectorizes."""
    zero = hg[p0] - hg[p0]  # 0 in the data dtype (hg is finite)
    b0 = np.inf
    b1 = np.inf
    b2 = np.inf
    b3 = np.inf
    t0 = np.inf
    t1 = np.inf
    t2 = np.inf
    t3 = np.inf
    a0 = p0
    a1 = p0
    a2 = p0
    a3 = p0
    d = XS.shape[1]
    p = p0
    while p < p1:
        two = p + 1 < p1
        p2 = p + 1 if two else p
        s00 = zero
        s01 = zero
        s10 = zero
        s11 = zero
        s20 = zero
        s21 = zero
        s30 = zero
        s31 = zero
        for f in range(d):
            c0 = cg[p, f]
            c1 = cg[p2, f]
            x0 = XS[i0, f]
            x1 = XS[i1, f]
            x2 = XS[i2, f]
            x3 = XS[i3, f]
            s00 += x0 * c0
            s01 += x0 * c1
            s10 += x1 * c0
            s11 += x1 * c1
            s20 += x2 * c0
            s21 += x2 * c1
            s30 += x3 * c0
            s31 += x3 * c1
        # centers in increasing p: strict < keeps the lowest on equal scores
        for c in range(2 if two else 1):
            h = hg[p + c]
            v0 = h - (s00 if c == 0 else s01)
            v1 = h - (s10 if c == 0 else s11)
            v2 = h - (s20 if c == 0 else s21)
            v3 = h - (s30 if c == 0 else s31)
            if v0 < b0:
                t0 = b0
                b0 = v0
                a0 = p + c
            elif v0 < t0:
                t0 = v0
            if v1 < b1:
                t1 = b1
                b1 = v1
                a1 = p + c
            elif v1 < t1:
                t1 = v1
            if v2 < b2:
                t2 = b2
                b2 = v2
                a2 = p + c
            elif v2 < t2:
                t2 = v2
            if v3 < b3:
                t3 = b3
                b3 = v3
                a3 = p + c
            elif v3 < t3:
                t3 = v3
        p += 2
    o_m1[q] = b0
    o_m1[q + 1] = b1
    o_m1[q + 2] = b2
    o_m1[q + 3] = b3
    o_m2[q] = t0
    o_m2[q + 1] = t1
    o_m2[q + 2] = t2
    o_m2[q + 3] = t3
    o_arg[q] = a0
    o_arg[q + 1] = a1
    o_arg[q + 2] = a2
    o_arg[q + 3] = a3


@njit(nogil=True, fastmath=FAST)
def _own_score(XS, i, cg, hg, pa, zero):
    """Fast score of one center (sorted position pa) for span row i (the arithmetic of
    _assign_chunk in another order: the same rounding-error bound)."""
    s = zero
    for f in range(XS.shape[1]):
        s += XS[i, f] * cg[pa, f]
    return np.float64(hg[pa] - s)


# fastmath off: lloyd._exact_dist's operations must stay as written
@njit(nogil=True, fastmath=False)
def _exact_groups(X, r, a, own_in, e0, e1, e_group, order, gstart, c64, lower_r, dbuf):
    """Near tie: the exact float64 distance of row r to every center of its measured
    groups (entries e0:e1) and to its own center a; the nearest (ties to the lowest
    index, as lloyd_block's _exact_row over all centers, by the same ``_exact_dist``),
    and exact group bounds."""
    best_d = np.inf
    b = a  # kept only by a row of NaN (the driver raises)
    for e in range(e0, e1):
        g = e_group[e]
        for p in range(gstart[g], gstart[g + 1]):
            j = order[p]
            dist = _exact_dist(X, r, c64, j)
            dbuf[p] = dist
            if dist < best_d or (dist == best_d and j < b):
                best_d = dist
                b = j
    if not own_in:
        dist = _exact_dist(X, r, c64, a)
        if dist < best_d or (dist == best_d and a < b):
            best_d = dist
            b = a
    for e in range(e0, e1):
        g = e_group[e]
        m = np.inf
        for p in range(gstart[g], gstart[g + 1]):
            if order[p] != b:
                m = min(m, dbuf[p])
        lower_r[g] = _store_down(np.sqrt(m) * _DOWN)
    return b


@njit(nogil=True, fastmath=FAST)
def yinyang_block(X, shift, cg, hg, c64, order, gstart, group_of, w, delta, gdelta,
                  sep, labels, upper, lower, sums, counts, inertia, n_full):
    """``lloyd_block`` with grouped bounds (see the module docstring): the same labels,
    sums, counts and inertia, bit for bit, skipping centers that provably are not the
    nearest.

    X (m, d) float32/float64 IN; shift (d,) IN;
    cg (k, d) the shifted centers (cs of lloyd_block) sorted by group IN;
    hg (k,) their 0.5*||cg||^2 IN; c64 (k, d) float64 centers, original order IN;
    order (k,) int32: original index of each sorted center IN;
    gstart (G+1,) int64: group g holds sorted centers gstart[g]:gstart[g+1] IN;
    group_of (k,) int32: group of each center (original index) IN;
    w (m,) float64 or (0,) IN; delta (k,) float64 displacement of each center since the
    previous pass IN; gdelta (G,) float64 largest delta in each group IN;
    sep (k,) float64 Hamerly's half distance to the nearest other center IN;
    labels (m,) int32 INOUT; upper (m,) float64 INOUT (upper bound of the distance to
    the own center; inf: unknown); lower (m, G) float32 INOUT (0: unknown);
    sums, counts, inertia INOUT as lloyd_block;
    n_full (2,) int64 INOUT: += rows measured against some group, centers measured.

    Rows go in spans of S: (1) bounds decay, filters, and a list of (row, group)
    entries to measure; (2) per group, its rows are measured against its centers P at
    a time by ``_assign_chunk`` (lloyd_block's vectorized scorer on a slice of the
    sorted centers); (3) per row, in order: the best of its groups (and of its own
    center), new bounds, then accumulation.
    """
    m_total, d = X.shape
    k = c64.shape[0]
    G = gstart.shape[0] - 1
    factor, cmax = _error_scale(X, hg)
    S = _SPAN
    zero = np.zeros(1, dtype=X.dtype)[0]
    dbuf = np.empty(k, dtype=np.float64)
    # per span: rows to measure (shifted copies XS), their entries (row-major), then
    # the entries by group
    XS = np.empty((S, d), dtype=X.dtype)
    xsq = np.empty(S, dtype=np.float64)
    work = np.empty(S, dtype=np.int64)
    rstart = np.empty(S + 1, dtype=np.int64)
    dsq = np.empty(S, dtype=np.float64)      # exact squared distance to the own center
    own_in = np.empty(S, dtype=np.bool_)
    cap = S * G
    e_group = np.empty(cap, dtype=np.int32)  # row-major entries: their group
    e_pos = np.empty(cap, dtype=np.int64)    # and their position in group-major order
    # group-major: the row (index into work / XS), best score in the group, second
    # best, sorted position of the best; 3 positions past the end for the lanes past
    # the last entry (past a group's last entry, the next group's slots: overwritten)
    g_row = np.empty(cap + 3, dtype=np.int64)
    o_m1 = np.empty(cap + 3, dtype=X.dtype)
    o_m2 = np.empty(cap + 3, dtype=X.dtype)
    o_arg = np.empty(cap + 3, dtype=np.int64)
    gcount = np.empty(G + 1, dtype=np.int64)
    rows_full = 0
    measured = 0
    inert = inertia[0]
    for start in range(0, m_total, S):
        m = min(S, m_total - start)
        # (1) decay, filters, entries
        nw = 0
        ne = 0
        for i in range(m):
            r = start + i
            a = labels[r]
            lmin = _decay_row(lower, r, gdelta, sep[a])
            lower_r = lower[r]
            if lmin * _DOWN > (upper[r] + delta[a]) * _UP:
                continue
            # tighten the upper bound to the exact distance
            da = _row_dist(X, r, a, c64)
            lim = np.sqrt(da) * _UP
            if lmin * _DOWN > lim:
                continue
            ga = group_of[a]
            work[nw] = r
            dsq[nw] = da
            rstart[nw] = ne
            ssq = zero
            for f in range(d):
                v = X[r, f] - shift[f]
                XS[nw, f] = v
                ssq += v * v
            xsq[nw] = np.float64(ssq)
            oi = False
            for g in range(G):
                # a group is skipped only if its bound is provably above the own distance
                if not (np.float64(lower_r[g]) * _DOWN > lim):
                    e_group[ne] = g
                    ne += 1
                    if g == ga:
                        oi = True
            own_in[nw] = oi
            nw += 1
        rstart[nw] = ne
        rows_full += nw
        # (2) entries grouped by group (counting sort), measured four rows at a time
        for g in range(G + 1):
            gcount[g] = 0
        for e in range(ne):
            gcount[e_group[e] + 1] += 1
        for g in range(G):
            gcount[g + 1] += gcount[g]
        for i in range(nw):
            for e in range(rstart[i], rstart[i + 1]):
                g = e_group[e]
                q = gcount[g]
                g_row[q] = i
                e_pos[e] = q
                gcount[g] = q + 1
        e0 = 0
        for g in range(G):
            e1 = gcount[g]
            p0 = gstart[g]
            p1 = gstart[g + 1]
            measured += (e1 - e0) * (p1 - p0)
            for q in range(e0, e1, 4):
                i0 = g_row[q]
                i1 = g_row[q + 1] if q + 1 < e1 else i0
                i2 = g_row[q + 2] if q + 2 < e1 else i0
                i3 = g_row[q + 3] if q + 3 < e1 else i0
                _measure_group(XS, i0, i1, i2, i3, q, p0, p1, cg, hg, o_m1, o_m2, o_arg)
            e0 = e1
        # (3) per measured row: its nearest center and new group bounds
        for i in range(nw):
            r = work[i]
            a = labels[r]
            ga = group_of[a]
            bv = np.inf
            sv = np.inf
            bp = -1
            eb = -1
            for e in range(rstart[i], rstart[i + 1]):
                q = e_pos[e]
                v1 = np.float64(o_m1[q])
                if v1 < bv:
                    sv = min(bv, np.float64(o_m2[q]))
                    bv = v1
                    bp = o_arg[q]
                    eb = e
                else:
                    sv = min(sv, v1)
            if not own_in[i]:
                # the own center alone (its group is provably farther)
                pa = gstart[ga]
                while order[pa] != a:
                    pa += 1
                va = _own_score(XS, i, cg, hg, pa, zero)
                measured += 1
                if va < bv:
                    sv = bv
                    bv = va
                    bp = pa
                    eb = -1
                else:
                    sv = min(sv, va)
            xq = xsq[i]
            bound = factor * (xq + cmax)
            lower_r = lower[r]
            if sv - bv > bound:
                b = order[bp]
                for e in range(rstart[i], rstart[i + 1]):
                    # every other center of the group scores at least this
                    q = e_pos[e]
                    v = o_m2[q] if e == eb else o_m1[q]
                    lower_r[e_group[e]] = _store_down(
                        _lower_from_score(xq, np.float64(v), bound))
            else:
                b = _exact_groups(X, r, a, own_in[i], rstart[i], rstart[i + 1], e_group,
                                  order, gstart, c64, lower_r, dbuf)
            if not own_in[i] and b != a:
                # the old own center joins its group's "other centers"
                lower_r[ga] = min(lower_r[ga], _store_down(np.sqrt(dsq[i]) * _DOWN))
            labels[r] = b
        # accumulated in row order with lloyd_block's arithmetic; the exact distances
        # land in upper, which then becomes their square root, rounded up
        inert = _accumulate(X, start, m, labels[start:start + m], w, c64, upper, sums,
                            counts, inert)
        for i in range(m):
            upper[start + i] = np.sqrt(upper[start + i]) * _UP
    inertia[0] = inert
    n_full[0] += rows_full
    n_full[1] += measured




# ----------------------------------------------------------------------------------
# Grouped pass with scores from BLAS.  The Python layer runs, per piece of rows:
# (1) ``yinyang_filter``: bounds decay and filters (as step (1) of yinyang_block); the
#     rows that fail them are listed and copied, shifted, into XS;
# (2) per span of listed rows, ST = cg @ XS[span].T by numpy's matmul (sgemm/dgemm),
#     then ``yinyang_scored``: every center's fast score hg[p] - ST[p, i], the nearest
#     center, near ties settled exactly in float64, and fresh bounds for every group;
# (3) ``yinyang_accumulate``: all rows of the piece in row order (yinyang_block's
#     arithmetic).
# The error bound of the fast scores, factor * (||x||^2 + max ||c||^2), bounds the
# rounding of a dot product of d terms summed in any order (gamma_d * sum |x_f c_f|), so
# it holds for BLAS whatever its blocking and FMA use: labels are the float64 argmin,
# and sums, counts and inertia are those of lloyd_block, bit for bit.
# ----------------------------------------------------------------------------------


@njit(nogil=True, fastmath=FAST)
def yinyang_filter(X, shift, c64, delta, gdelta, sep, labels, upper, lower, work, XS,
                   xsq):
    """Step (1): decays the group bounds of every row of X (lower (m, G) INOUT) and
    lists the rows whose label could change: their indices in work (m,) int64 OUT, the
    rows minus shift in XS (m, d) OUT (data dtype) and ||x - shift||^2 in xsq (m,)
    float64 OUT.  labels (m,) int32 IN, upper (m,) float64 IN (inf: unknown); delta,
    gdelta and sep as yinyang_block.  Returns the number of rows listed."""
    m, d = X.shape
    zero = np.zeros(1, dtype=X.dtype)[0]
    nw = 0
    for r in range(m):
        a = labels[r]
        lmin = _decay_row(lower, r, gdelta, sep[a])
        if lmin * _DOWN > (upper[r] + delta[a]) * _UP:
            continue
        # tighten the upper bound to the exact distance
        if lmin * _DOWN > np.sqrt(_row_dist(X, r, a, c64)) * _UP:
            continue
        work[nw] = r
        ssq = zero
        for f in range(d):
            v = X[r, f] - shift[f]
            XS[nw, f] = v
            ssq += v * v
        xsq[nw] = np.float64(ssq)
        nw += 1
    return nw


# fastmath off: lloyd._exact_dist's operations must stay as written
@njit(nogil=True, fastmath=False)
def _exact_all(X, r, c64, order, gstart, lower_r, dbuf):
    """Near tie: the exact float64 nearest center of row r over all centers (ties to
    the lowest index, as lloyd_block's _exact_row, by the same ``_exact_dist``) and exact
    bounds for every group."""
    best_d = np.inf
    b = 0  # kept only by a row of NaN (the driver raises)
    for j in range(c64.shape[0]):
        dist = _exact_dist(X, r, c64, j)
        dbuf[j] = dist
        if dist < best_d:
            best_d = dist
            b = j
    for g in range(gstart.shape[0] - 1):
        m = np.inf
        for p in range(gstart[g], gstart[g + 1]):
            j = order[p]
            if j != b:
                m = min(m, dbuf[j])
        lower_r[g] = _store_down(np.sqrt(m) * _DOWN)
    return b


# The loops over lanes (listed rows) write "new if better else the old value" as a
# select stored to another array than the one read (ping-pong between two rows): LLVM
# turns a conditional store into a masked store (vmaskmovps), which AMD cores execute
# slowly (measured: those loops ran 2-3x slower).  They all live in one function that
# indexes 2-D scratch arrays: one call per group with array views as arguments cost
# an atomic reference count update per view (13% of yinyang_scored in perf).
@njit(nogil=True, fastmath=FAST)
def _lanes_by_group(ST, hg, gstart, gm, lb, lanes, ilanes, xl, bl, nq):
    """For every group g and lane i < nq (a listed row): gm[g, i], the best score
    hg[p] - ST[p, i] over the group's sorted centers p (two centers per sweep; a NaN
    score never wins, so a row of NaN keeps its first score); lb[g, i] (float32) a
    lower bound of the distance of every center scoring >= gm[g, i]
    (_lower_from_score then _store_down, as selects); and, over all groups, the best
    score, its group and the best score of the other groups.  Returns the row of
    lanes (0 or 1) holding the best scores: the other groups' best is two rows below
    it in lanes, the group in the same row of ilanes.  lanes (5, q): rows 0-1 best
    (ping-pong), 2-3 second, 4 scratch of the group minimum; ilanes (2, q)."""
    G = gstart.shape[0] - 1
    shrink = (1.0 - 1e-7) * (1.0 - 1e-6)
    inf = hg[0] - hg[0] + np.inf  # infinity in the data dtype
    for i in range(nq):
        lanes[0, i] = inf
        lanes[2, i] = inf
        ilanes[0, i] = 0
    cur = 0
    for g in range(G):
        p0 = gstart[g]
        p1 = gstart[g + 1]
        # the group minimum alternates between gm[g] and lanes[4]; it starts where an
        # even number of sweeps ends in gm[g]
        in_gm = ((p1 - p0) // 2) % 2 == 0
        h = hg[p0]
        if in_gm:
            for i in range(nq):
                gm[g, i] = h - ST[p0, i]
        else:
            for i in range(nq):
                lanes[4, i] = h - ST[p0, i]
        p = p0 + 1
        while p < p1:
            # a lone last center is taken twice
            p2 = p + 1 if p + 1 < p1 else p
            h0 = hg[p]
            h1 = hg[p2]
            if in_gm:
                for i in range(nq):
                    v0 = h0 - ST[p, i]
                    v1 = h1 - ST[p2, i]
                    v = v1 if v1 < v0 else v0
                    o = gm[g, i]
                    lanes[4, i] = v if v < o else o
            else:
                for i in range(nq):
                    v0 = h0 - ST[p, i]
                    v1 = h1 - ST[p2, i]
                    v = v1 if v1 < v0 else v0
                    o = lanes[4, i]
                    gm[g, i] = v if v < o else o
            in_gm = not in_gm
            p += 2
        nxt = 1 - cur
        gg = np.int32(g)
        for i in range(nq):
            v1 = gm[g, i]
            b = lanes[cur, i]
            s = lanes[cur + 2, i]
            gi = ilanes[cur, i]  # loaded unconditionally: a load in a branch is masked
            lt = v1 < b
            mn = v1 if v1 < s else s
            lanes[nxt + 2, i] = b if lt else mn
            lanes[nxt, i] = v1 if lt else b
            ilanes[nxt, i] = gg if lt else gi
            lo2 = xl[i] + 2.0 * np.float64(v1) - 8.0 * bl[i]
            lo2 = lo2 if lo2 > 0.0 else 0.0
            lb[g, i] = np.float32(np.sqrt(lo2) * shrink)
        cur = nxt
    return cur


@njit(nogil=True, fastmath=FAST)
def yinyang_scored(X, ST, q0, work, xsq, hg, c64, order, gstart, labels, lower, gm, lb,
                   lanes, flanes, ilanes, dbuf):
    """Step (2) for the listed rows q0..q0+nq-1 (work[q0 + i] is a row of X).

    ST (k, nq) data dtype IN: <XS[q0 + i], cg[p]> for every sorted center p;
    xsq, hg, c64, order, gstart as above; labels (m,) int32 OUT and lower (m, G)
    float32 OUT for the listed rows; scratch (q >= nq columns): gm (G, q) data dtype,
    lb (G, q) float32, lanes (5, q) data dtype, flanes (2, q) float64, ilanes (2, q)
    int32, dbuf (k,) float64.

    Per group, the best score of every lane (listed row) and its bound, in loops over
    lanes that vectorize (``_lanes_by_group``); the bounds go to the rows eight at a
    time; then per row, its best group again for the position of the best center and
    the group's second best.  A row gets the nearest center by its fast score unless
    the runner-up is within the error bound (then _exact_all, which rewrites all of
    its bounds), and for every group the bound of its nearest center other than the
    row's own.
    """
    k, nq = ST.shape
    G = gstart.shape[0] - 1
    factor, cmax = _error_scale(X, hg)
    inf = hg[0] - hg[0] + np.inf  # infinity in the data dtype
    for i in range(nq):
        xq = xsq[q0 + i]
        flanes[0, i] = xq
        flanes[1, i] = factor * (xq + cmax)
    cur = _lanes_by_group(ST, hg, gstart, gm, lb, lanes, ilanes, flanes[0], flanes[1],
                          nq)
    # every group's bound to its row, eight rows per sweep over the groups (reading lb
    # down a column touched a new cache line per group)
    nq8 = (nq // 8) * 8
    for i0 in range(0, nq8, 8):
        r0 = work[q0 + i0]
        r1 = work[q0 + i0 + 1]
        r2 = work[q0 + i0 + 2]
        r3 = work[q0 + i0 + 3]
        r4 = work[q0 + i0 + 4]
        r5 = work[q0 + i0 + 5]
        r6 = work[q0 + i0 + 6]
        r7 = work[q0 + i0 + 7]
        for g in range(G):
            lower[r0, g] = lb[g, i0]
            lower[r1, g] = lb[g, i0 + 1]
            lower[r2, g] = lb[g, i0 + 2]
            lower[r3, g] = lb[g, i0 + 3]
            lower[r4, g] = lb[g, i0 + 4]
            lower[r5, g] = lb[g, i0 + 5]
            lower[r6, g] = lb[g, i0 + 6]
            lower[r7, g] = lb[g, i0 + 7]
    for i in range(nq8, nq):
        r = work[q0 + i]
        for g in range(G):
            lower[r, g] = lb[g, i]
    for i in range(nq):
        r = work[q0 + i]
        # the best group again: the position of its best and its second best
        g = ilanes[cur, i]
        m = inf
        m2 = inf
        pos = gstart[g]
        for p in range(gstart[g], gstart[g + 1]):
            v = hg[p] - ST[p, i]
            if v < m:
                m2 = m
                m = v
                pos = p
            elif v < m2:
                m2 = v
        bl = flanes[1, i]
        if np.float64(min(lanes[cur + 2, i], m2)) - np.float64(m) > bl:
            labels[r] = order[pos]
            lower[r, g] = _store_down(_lower_from_score(flanes[0, i], np.float64(m2), bl))
        else:
            labels[r] = _exact_all(X, r, c64, order, gstart, lower[r], dbuf)


@njit(nogil=True, fastmath=FAST)
def yinyang_accumulate(X, w, labels, c64, upper, sums, counts, inertia):
    """Step (3): every row of X in row order, with yinyang_block's arithmetic (so
    lloyd_block's): sums, counts, inertia INOUT; upper (m,) float64 OUT."""
    m = X.shape[0]
    # np.int64(0), not 0: a literal start would compile _accumulate (and every
    # generated accumulator) once more, for the type Literal[int](0)
    inertia[0] = _accumulate(X, np.int64(0), m, labels, w, c64, upper, sums, counts,
                             inertia[0])
    for r in range(m):
        upper[r] = np.sqrt(upper[r]) * _UP


_YINYANG = ("void(T[:, ::1], T[::1], T[:, ::1], T[::1], f8[:, ::1], i4[::1], i8[::1], "
            "i4[::1], f8[::1], f8[::1], f8[::1], f8[::1], i4[::1], f8[::1], f4[:, ::1], "
            "f8[:, ::1], f8[::1], f8[::1], i8[::1])")
_FILTER = ("i8(T[:, ::1], T[::1], f8[:, ::1], f8[::1], f8[::1], f8[::1], i4[::1], "
           "f8[::1], f4[:, ::1], i8[::1], T[:, ::1], f8[::1])")
_SCORED = ("void(T[:, ::1], T[:, ::1], i8, i8[::1], f8[::1], T[::1], f8[:, ::1], i4[::1], "
           "i8[::1], i4[::1], f4[:, ::1], T[:, ::1], f4[:, ::1], T[:, ::1], f8[:, ::1], "
           "i4[:, ::1], f8[::1])")
_ACCUMULATE = ("void(T[:, ::1], f8[::1], i4[::1], f8[:, ::1], f8[::1], f8[:, ::1], "
               "f8[::1], f8[::1])")

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    for _name, _fn, _sig in (("yinyang_block", yinyang_block, _YINYANG),
                             ("yinyang_filter", yinyang_filter, _FILTER),
                             ("yinyang_scored", yinyang_scored, _SCORED),
                             ("yinyang_accumulate", yinyang_accumulate, _ACCUMULATE)):
        EXPORTS[_name + "_" + _suffix] = (_fn, _sig.replace("T", _t))
