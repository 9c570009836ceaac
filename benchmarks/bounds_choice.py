"""Seconds per Lloyd iteration of kmaot's three passes on one workload: plain Lloyd,
Hamerly's bound and grouped (Yinyang) bounds (``_yinyang.choose_bounds`` forced).

Same method and data as compare_peers.py: (fit(1 + m) - fit(1)) / m from the same
initial centers, alternating the variants over the repeats; also prints the fraction
of center distances the grouped pass measured per iteration.

Usage (kmaot installed)::

    python benchmarks/bounds_choice.py --workload W2 --repeats 2
"""
import argparse
import gc
import time

import numpy as np

from compare_peers import WORKLOADS, initial_centers, make_blobs32


def fit(X, init, max_iter, variant):
    from kmaot import KMeans, _yinyang
    rule = _yinyang.choose_bounds
    if variant != "lloyd":
        _yinyang.choose_bounds = lambda *a: variant
    try:
        km = KMeans(init.shape[0], init=init, n_init=1, max_iter=max_iter, tol=0,
                    algorithm="lloyd" if variant == "lloyd" else "bounded")
        t = time.perf_counter()
        km.fit(X)
        return time.perf_counter() - t, km
    finally:
        _yinyang.choose_bounds = rule


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="W2", choices=sorted(WORKLOADS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--iters", type=int, default=None)
    args = p.parse_args()
    n, d, k, m = WORKLOADS[args.workload]
    m = args.iters or m
    X = make_blobs32(n, d, k, 0)
    init = initial_centers(X, k, 0)
    variants = ["lloyd", "hamerly", "grouped"]
    res = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants[r % 3:] + variants[:r % 3]:
            gc.collect()
            t1, _ = fit(X, init, 1, v)
            tm, km = fit(X, init, 1 + m, v)
            res[v].append((tm - t1) / m)
            extra = ""
            if v == "grouped":
                extra = " n_dist/(n k): " + " ".join(
                    f"{s['n_dist'] / (n * k):.3f}" for s in km.iteration_stats_)
            print(f"{args.workload} repeat {r + 1} {v:8s} {(tm - t1) / m * 1e3:7.1f} ms/it"
                  + extra, flush=True)
    print(f"{args.workload} n={n} d={d} k={k}, median ms per iteration 2..{1 + m}: " + ", ".join(
        f"{v} {np.median(res[v]) * 1e3:.1f}" for v in variants))


if __name__ == "__main__":
    main()
