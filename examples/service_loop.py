"""A latency-sensitive service loop: load a model once, then label one row at a time.

    python examples/service_loop.py model.npz < rows.csv     # one row per line -> label
    python examples/service_loop.py --benchmark 20000         # latency percentiles

kmaot's kernels are compiled ahead of time: there is no JIT warm-up, the first request
only prepares the centers once (a fraction of a millisecond), and ``predict`` on a
single row of the model's dtype goes straight into the compiled kernel.  Without a
model file, the benchmark fits a small one first.
"""
import argparse
import sys
import time

import numpy as np

import kmaot


def serve(km, lines, out):
    """Read rows (comma- or space-separated numbers), write one label per row."""
    d = km.n_features_in_
    dtype = km.cluster_centers_.dtype
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            values = line.replace(",", " ").split()
            if len(values) != d:
                raise ValueError(f"expected {d} numbers, got {len(values)}")
            label = km.predict(np.array(values, dtype=dtype).reshape(1, d))[0]
        except ValueError as exc:  # a bad request: say so and keep serving
            out.write(f"error: {exc}\n")
        else:
            out.write(f"{label}\n")
        out.flush()


def benchmark(km, n_requests):
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((n_requests, km.n_features_in_)).astype(
        km.cluster_centers_.dtype)
    latency = np.empty(n_requests)
    for i in range(n_requests):
        row = rows[i:i + 1]
        t0 = time.perf_counter()
        km.predict(row)
        latency[i] = time.perf_counter() - t0
    us = latency * 1e6
    print(f"{n_requests:,} single-row requests: first {us[0]:.1f} us, "
          f"p50 {np.percentile(us, 50):.1f} us, p99 {np.percentile(us, 99):.1f} us, "
          f"max {us.max():.1f} us")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="a model saved by KMeans.save / kmaot fit")
    p.add_argument("--benchmark", type=int, metavar="N",
                   help="time N single-row predictions instead of serving stdin")
    args = p.parse_args(argv)
    if not args.model and not args.benchmark:
        p.error("serving stdin needs a model file")

    if args.model:
        t0 = time.perf_counter()
        km = kmaot.load(args.model)
        print(f"loaded {args.model} in {(time.perf_counter() - t0) * 1000:.1f} ms",
              file=sys.stderr)
    else:
        X = np.random.default_rng(0).standard_normal((20_000, 16)).astype(np.float32)
        km = kmaot.KMeans(n_clusters=32, random_state=0).fit(X)
    if args.benchmark:
        benchmark(km, args.benchmark)
    else:
        serve(km, sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
