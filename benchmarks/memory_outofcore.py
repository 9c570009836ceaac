"""Peak anonymous memory of a kmaot fit on a .npy file larger than the batches it reads.

Writes a float32 .npy file of ``--size-gb`` GB chunk by chunk (the whole array is never
in memory), then fits ``KMeans(k=16, batch_size=65536)`` on the path in this process
while sampling RssAnon from /proc/self/status (file pages read through the page cache
or a memmap are not anonymous memory, so RssAnon is what the fit itself holds).

Usage::

    python benchmarks/memory_outofcore.py --size-gb 4
    python benchmarks/memory_outofcore.py --size-gb 4 --path /big/disk/x.npy --keep
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np


def write_npy(path, n_rows, n_features, seed=0, chunk_rows=1 << 18):
    """Seeded float32 blobs written chunk by chunk into a .npy file."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(16, n_features)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(n_rows, n_features))
    for s in range(0, n_rows, chunk_rows):
        e = min(n_rows, s + chunk_rows)
        lab = rng.integers(0, 16, size=e - s)
        out[s:e] = centers[lab] + rng.standard_normal((e - s, n_features),
                                                      dtype=np.float32)
        if (s // chunk_rows) % 64 == 63:
            out.flush()  # keep the dirty pages bounded
    out.flush()
    del out


def fmt_bytes(b):
    return "n/a" if b is None else f"{b / 2**20:,.1f} MiB"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gb", type=float, default=4.0, help="file size in GB (2**30)")
    p.add_argument("--n-features", type=int, default=32)
    p.add_argument("--n-clusters", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=65536)
    p.add_argument("--max-iter", type=int, default=5)
    p.add_argument("--path", default=None,
                   help="where to write the .npy (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = p.parse_args(argv)

    from kmaot import KMeans
    from kmaot._memory import PeakAnon, rss_anon_bytes

    d = args.n_features
    n = int(args.size_gb * 2**30) // (4 * d)
    tmpdir = None
    if args.path:
        path = args.path
    else:
        tmpdir = tempfile.mkdtemp(prefix="kmaot-mem-")
        path = os.path.join(tmpdir, "data.npy")
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
        if free < n * d * 4 * 1.1:
            sys.exit(f"not enough disk space for {n * d * 4 / 2**30:.1f} GB in "
                     f"{os.path.dirname(path)} ({free / 2**30:.1f} GB free)")
        t = time.perf_counter()
        write_npy(path, n, d)
        t_write = time.perf_counter() - t
        size = os.path.getsize(path)
        anon_before = rss_anon_bytes()

        km = KMeans(args.n_clusters, init="random", n_init=1, max_iter=args.max_iter,
                    tol=0, random_state=0, batch_size=args.batch_size)
        t = time.perf_counter()
        with PeakAnon() as mem:
            km.fit(path)
        t_fit = time.perf_counter() - t

        batch_bytes = args.batch_size * d * 4
        print(f"file:                {path}")
        print(f"file size:           {size / 2**30:.2f} GiB ({n:,} x {d} float32), "
              f"written in {t_write:.1f} s")
        print(f"fit:                 KMeans(n_clusters={args.n_clusters}, "
              f"batch_size={args.batch_size}, max_iter={args.max_iter}) on the path, "
              f"{km.n_iter_} iterations")
        print(f"fit time:            {t_fit:.1f} s "
              f"({size / 2**30 * (km.n_iter_ + 2) / t_fit:.2f} GiB/s over "
              f"{km.n_iter_ + 2} passes incl. moments and final E-step)")
        print(f"RssAnon at start:    {fmt_bytes(mem.start)} (before fit: "
              f"{fmt_bytes(anon_before)})")
        print(f"RssAnon peak:        {fmt_bytes(mem.peak)}")
        if mem.peak is not None and mem.start is not None:
            print(f"peak - start:        {fmt_bytes(mem.peak - mem.start)} "
                  f"= {(mem.peak - mem.start) / size:.2%} of the file "
                  f"({(mem.peak - mem.start) / batch_bytes:.1f} x one batch of "
                  f"{fmt_bytes(batch_bytes)})")
        print(f"inertia:             {km.inertia_:.6g}")
    finally:
        if not args.keep:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    main()
