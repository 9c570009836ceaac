"""Where one single-threaded Lloyd pass spends its time, part by part.

Runs the Lloyd kernel's own parts (src/kmaot_kernels/lloyd.py), JIT-compiled by numba
from the same source the wheel's AOT module is built from, on one thread, cumulatively:
transposing rows for the scorer, + scoring against every center, + exact recheck of
near ties, + copying labels out; then the accumulation (sums, counts and exact float64
distances, in row order) alone, and the whole ``lloyd_block``.  Minimum of --repeats
calls each.  Needs numba (a build-time dependency, not a run-time one).

    python benchmarks/pass_breakdown.py                  # W3: 2,000,000 x 8, k=8
    python benchmarks/pass_breakdown.py --shape 1000000,32,64
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)

from numba import njit  # noqa: E402

from build_kernels import enable_slp  # noqa: E402

enable_slp()  # as the wheel's build does: before anything is compiled

from compare_peers import initial_centers, make_blobs32  # noqa: E402
from kmaot_kernels import lloyd as L  # noqa: E402


@njit(nogil=True, fastmath=L.FAST)
def _assign_parts(X, shift, cs, half_csq, c64, labels, level):
    """The assignment of lloyd_block up to part ``level`` (0: transpose only)."""
    m_total, d = X.shape
    xt, g, best, second, bestj, xsq, rows = L._scratch(X, d, True)  # as lloyd_block
    factor, cmax = L._error_scale(X, half_csq)
    P = xt.shape[1]
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        L._transpose_span(X, start, m, shift, xt, rows)
        if level >= 1:
            L._score_chunk(m, cs, half_csq, xt, g, best, second, bestj, xsq, X, 0, 0)
        if level >= 2:
            L._settle_ties(X, start, m, c64, factor, cmax, best, second, bestj, xsq)
        if level >= 3:
            for i in range(m):
                labels[start + i] = bestj[i]


@njit(nogil=True, fastmath=L.FAST)
def _accumulate_all(X, labels, w, c64, mind, sums, counts):
    return L._accumulate(X, 0, X.shape[0], labels, w, c64, mind, sums, counts, 0.0)


def best_ms(fn, *args, repeats):
    fn(*args)  # compile and warm up
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", default="2000000,8,8", help="n,d,k (default: W3)")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    n, d, k = (int(v) for v in args.shape.split(","))
    X = make_blobs32(n, d, k, 0)
    init = initial_centers(X, k, 0)
    shift = X.mean(axis=0, dtype=np.float64).astype(np.float32)
    cs = init - shift
    half = (0.5 * np.einsum("ij,ij->i", cs.astype(np.float64), cs.astype(np.float64))
            ).astype(np.float32)
    c64 = init.astype(np.float64)
    labels = np.empty(n, np.int32)
    none = np.zeros(0)
    print(f"n={n:,} d={d} k={k}, float32, one thread, min of {args.repeats} calls (ms)")
    parts = ["transpose", "+ score", "+ near-tie recheck", "+ labels out"]
    for level, name in enumerate(parts):
        ms = best_ms(_assign_parts, X, shift, cs, half, c64, labels, level,
                     repeats=args.repeats)
        print(f"  {name:<28} {ms:8.2f}")
    sums, counts, inertia = np.zeros((k, d)), np.zeros(k), np.zeros(1)
    ms = best_ms(_accumulate_all, X, labels, none, c64, none, sums, counts,
                 repeats=args.repeats)
    print(f"  {'accumulate (alone)':<28} {ms:8.2f}")
    ms = best_ms(L.lloyd_block, X, shift, cs, half, c64, none, labels, none, sums, counts,
                 inertia, repeats=args.repeats)
    print(f"  {'lloyd_block (whole pass)':<28} {ms:8.2f}")


if __name__ == "__main__":
    main()
