"""kmaot.dask.KMeans against dask-ml's KMeans on the same LocalCluster, the same
persisted data and the same initial centers.

Both run exactly --iters Lloyd iterations (tol=0 on overlapping blobs, which do not
converge that fast; the script checks it).  Reported: seconds per iteration (fit
time / iterations, best of --repeat), kmaot's median iteration time from
``iteration_stats_``, and the inertia of both sets of centers, recomputed here by
brute force in NumPy (dask-ml's own ``inertia_`` after a fit with tol=0 is a sum of
unsquared distances: its last ``pairwise_distances_argmin_min`` call omits
``squared=True``; it is printed too).

    python benchmarks/dask_vs_daskml.py --n 2000000 --d 16 --k 16 --iters 10

Needs: pip install 'kmaot[dask]' dask-ml
"""
import argparse
import logging
import time

import numpy as np


def make_block(block, seed, k, d, dtype, block_info=None):
    """Rows of overlapping Gaussian blobs, generated on the worker (seeded by block)."""
    i = block_info[0]["chunk-location"][0] if block_info else 0
    m = block.shape[0]
    centers = np.random.default_rng(seed).uniform(-3, 3, size=(k, d))
    rng = np.random.default_rng([seed, i])
    return (centers[rng.integers(k, size=m)] + rng.standard_normal((m, d))).astype(dtype)


def brute_inertia(xb, centers):
    """Sum over rows of the squared distance to the nearest center, directly in float64."""
    x = xb.astype(np.float64)
    d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return np.array([d2.min(axis=1).sum()])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2_000_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--chunk", type=int, default=250_000)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()

    import dask.array as da
    import distributed
    from dask_ml.cluster import KMeans as DaskMLKMeans

    from kmaot.dask import KMeans

    cluster = distributed.LocalCluster(n_workers=args.workers,
                                       threads_per_worker=args.threads, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    dtype = np.dtype(args.dtype)
    X = da.zeros((args.n, args.d), chunks=(args.chunk, args.d), dtype=dtype)
    X = X.map_blocks(make_block, 0, args.k, args.d, dtype, dtype=dtype).persist()
    distributed.wait(X)
    init = X[np.random.default_rng(1).choice(args.n, args.k, replace=False)].compute()
    print(f"n={args.n} d={args.d} k={args.k} {dtype} chunks={args.chunk} "
          f"iterations={args.iters} cluster: {args.workers} worker processes x "
          f"{args.threads} thread(s)")

    def run_kmaot(iters):
        return KMeans(args.k, init=init, max_iter=iters, tol=0).fit(X)

    def run_daskml(iters):
        return DaskMLKMeans(args.k, init=init, max_iter=iters, tol=0, n_init=1).fit(X)

    run_kmaot(1)  # warm up: imports on the workers, dask-ml's numba JIT
    run_daskml(1)
    results = {}
    for name, run in (("kmaot.dask", run_kmaot), ("dask-ml", run_daskml)):
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            est = run(args.iters)
            el = time.perf_counter() - t0
            if best is None or el < best[0]:
                best = (el, est)
        el, est = best
        n_iter = int(est.n_iter_)
        C = np.asarray(est.cluster_centers_, dtype=np.float64)
        inertia = float(X.map_blocks(brute_inertia, C, drop_axis=1, chunks=(1,),
                                     dtype=np.float64).sum().compute())
        results[name] = (el / n_iter, inertia, est)
        extra = ""
        if name == "kmaot.dask":
            med = np.median([s["seconds"] for s in est.iteration_stats_])
            extra = f", median iteration {med * 1e3:.1f} ms"
        print(f"{name:11s} fit {el:7.2f} s, {n_iter} iterations, {el / n_iter * 1e3:8.1f} "
              f"ms/iteration{extra}; inertia (brute force) {inertia:.12g}, its inertia_ "
              f"{float(est.inertia_):.12g}")
    (tk, ik, ek), (tm, im, em) = results["kmaot.dask"], results["dask-ml"]
    assert ek.n_iter_ == args.iters, "kmaot converged early: use more overlapping data"
    print(f"speed-up per iteration: {tm / tk:.2f}x; inertia relative difference "
          f"{abs(ik - im) / im:.2e}; max center difference "
          f"{np.abs(ek.cluster_centers_ - em.cluster_centers_).max():.2e}")
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
