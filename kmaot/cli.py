"""The ``kmaot`` command line (also ``python -m kmaot``).

User errors (a missing file, a bad k, NaN in the data) print one line and exit with
code 2; no traceback.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

from ._version import __version__


class UserError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def write_blobs(path, n_samples, n_features, n_centers, seed=0, chunk=262144):
    """Write a synthetic float32 dataset of Gaussian blobs to a .npy file, chunk by chunk
    (never the whole array in memory). Returns the true centers."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(n_centers, n_features)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(n_samples, n_features))
    for s in range(0, n_samples, chunk):
        e = min(n_samples, s + chunk)
        lab = rng.integers(n_centers, size=e - s)
        out[s:e] = centers[lab] + rng.standard_normal((e - s, n_features), dtype=np.float32)
    out.flush()
    del out
    return centers


def _cmd_demo(args):
    from . import KMeans, show_config
    from ._memory import PeakAnon

    tmp = None
    if args.data:
        path = args.data
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kmaot-demo-")
        path = os.path.join(tmp.name, "blobs.npy")
        print(f"writing a synthetic dataset: {args.n_samples:,} x {args.n_features} float32 "
              f"({args.n_samples * args.n_features * 4 / 2**20:.0f} MiB), "
              f"{args.n_clusters} blobs -> {path}")
        write_blobs(path, args.n_samples, args.n_features, args.n_clusters, seed=args.seed)
    try:
        show_config()
        km = KMeans(n_clusters=args.n_clusters, batch_size=args.batch_size,
                    random_state=args.seed, n_threads=args.threads)
        with PeakAnon() as mem:
            t0 = time.perf_counter()
            km.fit(path)
            dt = time.perf_counter() - t0
        n = int(np.load(path, mmap_mode="r").shape[0])
        print(f"fitted {path} out of core (batch_size={args.batch_size:,} rows)")
        print(f"inertia:      {km.inertia_:.6g}")
        print(f"iterations:   {km.n_iter_}")
        print(f"time:         {dt:.2f} s ({n * km.n_iter_ / sum(s['seconds'] for s in km.iteration_stats_):,.0f} rows/s per Lloyd iteration)")
        if mem.peak is not None:
            print(f"peak anonymous memory: {mem.peak / 2**20:.1f} MiB "
                  f"(at start {mem.start / 2**20:.1f} MiB; data file "
                  f"{os.path.getsize(path) / 2**20:.0f} MiB)")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def _cmd_info(args):
    from . import show_config
    show_config()
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="kmaot", description="Out-of-core k-means with "
                                "ahead-of-time compiled kernels.")
    p.add_argument("--version", action="version", version=f"kmaot {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="cluster a built-in synthetic dataset (or DATA.npy) "
                       "out of core and print inertia, iterations, rows/s and peak memory")
    d.add_argument("--data", help="a .npy file to use instead of the synthetic dataset")
    d.add_argument("--n-samples", type=int, default=2_000_000)
    d.add_argument("--n-features", type=int, default=16)
    d.add_argument("-k", "--n-clusters", type=int, default=16)
    d.add_argument("--batch-size", type=int, default=65536)
    d.add_argument("--threads", type=int, default=None)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    i = sub.add_parser("info", help="version, CPU level in use, threads, numpy and BLAS")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UserError, ValueError, TypeError, FileNotFoundError, IsADirectoryError,
            PermissionError) as exc:
        print(f"kmaot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kmaot: interrupted", file=sys.stderr)
        return 130
