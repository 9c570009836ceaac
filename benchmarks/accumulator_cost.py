"""Cost of float64 accumulation (kmaot's choice) against float32 accumulation.

The fused Lloyd kernel adds every row to its center's sum.  kmaot accumulates in float64
(reproducible, no drift with n); this script measures what that costs against the same
kernel accumulating in the data's float32, and how far the float32 sums drift.

Both variants are JIT-compiled here from the kernel sources (numba needed: this is a
developer script) and share everything except the dtype of the sums.  Single thread.

    python benchmarks/accumulator_cost.py [--rows 250000] [--repeats 9]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from numba import njit  # noqa: E402

from build_kernels import enable_slp  # noqa: E402

enable_slp()  # as the wheel's build does: before anything is compiled

from kmaot_kernels.lloyd import FAST, _assign_span, _scratch  # noqa: E402


@njit(nogil=True, fastmath=FAST)
def _pass(X, shift, cs, half_csq, c64, labels, sums, counts):
    """Assignment + accumulation; ``sums`` float64 or float32 (the only difference)."""
    m_total, d = X.shape
    xt, g, best, second, bestj, xsq, rows = _scratch(X, d)
    P = xt.shape[1]
    inert = 0.0
    for start in range(0, m_total, P):
        m = min(P, m_total - start)
        _assign_span(X, start, m, shift, cs, half_csq, xt, g, best, second, bestj, xsq,
                     rows, False)
        for i in range(m):
            r = start + i
            j = bestj[i]
            dist = 0.0
            for f in range(d):
                xf = X[r, f]
                diff = np.float64(xf) - c64[j, f]
                dist += diff * diff
                sums[j, f] += xf
            labels[r] = j
            counts[j] += 1.0
            inert += dist
    return inert


WORKLOADS = {"W1": (32, 64), "W3": (8, 8), "W2": (128, 1024)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--workloads", default="W1,W3")
    a = ap.parse_args()
    print(f"{'workload':10} {'rows':>8} {'f64 acc ms':>11} {'f32 acc ms':>11} {'cost':>6} "
          f"{'f32 sums rel err':>17}")
    for name in a.workloads.split(","):
        d, k = WORKLOADS[name]
        rng = np.random.default_rng(0)
        ctr = rng.normal(0, 4, (k, d)) + 100.0
        X = (ctr[rng.integers(0, k, a.rows)] + rng.normal(0, 1.5, (a.rows, d))).astype(np.float32)
        C = X[rng.choice(a.rows, k, replace=False)].astype(np.float64)
        shift = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        cs = (C - shift).astype(np.float32)
        half = (0.5 * np.einsum("ij,ij->i", cs.astype(np.float64), cs.astype(np.float64))).astype(np.float32)
        times = {np.float64: [], np.float32: []}
        sums = {}
        for _ in range(a.repeats + 1):           # the first round compiles
            for dt in (np.float64, np.float32):  # alternate: the machine is noisy
                s = np.zeros((k, d), dt)
                t0 = time.perf_counter()
                _pass(X, shift, cs, half, C, np.empty(a.rows, np.int32), s, np.zeros(k))
                times[dt].append(time.perf_counter() - t0)
                sums[dt] = s
        t64 = 1e3 * np.median(times[np.float64][1:])
        t32 = 1e3 * np.median(times[np.float32][1:])
        err = np.abs(sums[np.float32] - sums[np.float64]).max() / np.abs(sums[np.float64]).max()
        print(f"{name:10} {a.rows:8d} {t64:11.2f} {t32:11.2f} {t64 / t32 - 1:6.1%} {err:17.1e}")


if __name__ == "__main__":
    main()
