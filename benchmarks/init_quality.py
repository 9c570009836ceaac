"""k-means|| against k-means++: inertia after Lloyd converges, and the cost of the init.

For every dataset and seed, KMeans is fitted with init='k-means++' and with
init='k-means||' (same seed, n_init=1, tol=1e-4, max_iter=300).  Reported: median final
inertia of each, their ratio (issue target: k-means|| within 1%, ratio <= 1.01), the
worst per-seed ratio, median seconds of the initialisation alone (the init functions
called directly, in memory, 3 seeds) and the passes over the data each makes
(k-means++: 2 * k - 2; k-means||: n_rounds + 1 = 6).

Usage (from the repository root, with kmaot installed)::

    python benchmarks/init_quality.py              # a few minutes on 2 cores
    python benchmarks/init_quality.py --seeds 3 --quick
"""
import argparse
import time

import numpy as np


def datasets(quick):
    from sklearn.datasets import load_digits, load_sample_image, make_blobs

    n = 50_000 if quick else 200_000
    X, _ = make_blobs(n, 16, centers=32, cluster_std=2.5, random_state=0)
    yield "blobs", X.astype(np.float32), 32
    rng = np.random.default_rng(1)
    yield "gaussian (no clusters)", rng.standard_normal((n // 2, 8)).astype(np.float32), 20
    yield "digits", load_digits().data, 10
    pix = load_sample_image("china.jpg").reshape(-1, 3).astype(np.float32) / 255.0
    yield "china.jpg pixels", pix, 16


def time_init(kind, X, k, seed):
    from kmaot._engine import Engine
    from kmaot._init import kmeans_parallel, kmeans_plusplus
    from kmaot._sources import as_source

    src = as_source(X)
    shift = X.astype(np.float64).mean(axis=0)
    fn = kmeans_parallel if kind == "k-means||" else kmeans_plusplus
    with Engine() as eng:
        t0 = time.perf_counter()
        fn(eng, src, k, np.random.RandomState(seed), None, shift, src.dtype)
        return time.perf_counter() - t0


def main(argv=None):
    import kmaot
    from kmaot import KMeans

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=7)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    print(f"kmaot {kmaot.__version__} (CPU level {kmaot.config()['cpu_level']}), "
          f"{args.seeds} seeds, median over seeds")
    print()
    print("| dataset | n | d | k | k-means++ inertia | k-means|| inertia | ratio | "
          "worst seed ratio | k-means++ init s | k-means|| init s | passes ++ / || |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, X, k in datasets(args.quick):
        pp, par, tpp, tpar = [], [], [], []
        for seed in range(args.seeds):
            pp.append(KMeans(k, init="k-means++", random_state=seed).fit(X).inertia_)
            par.append(KMeans(k, init="k-means||", random_state=seed).fit(X).inertia_)
            if seed < 3:
                tpp.append(time_init("k-means++", X, k, seed))
                tpar.append(time_init("k-means||", X, k, seed))
        pp, par = np.array(pp), np.array(par)
        print(f"| {name} | {X.shape[0]:,} | {X.shape[1]} | {k} | {np.median(pp):.6g} | "
              f"{np.median(par):.6g} | {np.median(par) / np.median(pp):.4f} | "
              f"{(par / pp).max():.4f} | {np.median(tpp):.3f} | {np.median(tpar):.3f} | "
              f"{2 * k - 2} / 6 |", flush=True)


if __name__ == "__main__":
    main()
