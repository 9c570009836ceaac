"""Cluster a directory of .npy embedding shards out of core, then label every shard.

    python examples/embedding_shards.py SHARD_DIR -k 64
    python examples/embedding_shards.py --make-demo demo_shards   # writes shards first

The shards (``*.npy``, sorted by name, all with the same number of columns) are read as
one dataset, batch by batch: only one batch is in memory at a time, so the directory can
be much larger than memory.  The model is saved next to the shards (``model.npz``) and
each shard ``x.npy`` gets a ``x.labels.npy`` with one int32 label per row.
"""
import argparse
import glob
import os
import time

import numpy as np

import kmaot
from kmaot import KMeans


def make_demo_shards(directory, n_shards=4, rows=25_000, dim=64, topics=32, seed=0):
    """Synthetic unit-norm 'embeddings' around a few topic directions."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    topic = rng.standard_normal((topics, dim))
    for i in range(n_shards):
        x = topic[rng.integers(topics, size=rows)] + 0.6 * rng.standard_normal((rows, dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        np.save(os.path.join(directory, f"part-{i:03d}.npy"), x.astype(np.float32))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory", nargs="?", default=None)
    p.add_argument("-k", "--n-clusters", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16_384, help="rows per batch")
    p.add_argument("--make-demo", metavar="DIR",
                   help="write synthetic shards into DIR and cluster them")
    p.add_argument("--rows", type=int, default=25_000, help="rows per demo shard")
    args = p.parse_args(argv)

    directory = args.directory
    if args.make_demo:
        directory = args.make_demo
        make_demo_shards(directory, rows=args.rows)
    if directory is None:
        p.error("give a directory of .npy shards, or --make-demo DIR")
    shards = sorted(f for f in glob.glob(os.path.join(directory, "*.npy"))
                    if not f.endswith(".labels.npy"))
    if not shards:
        p.error(f"no .npy shards in {directory}")

    t0 = time.perf_counter()
    km = KMeans(n_clusters=args.n_clusters, batch_size=args.batch_size,
                random_state=0).fit(shards)                 # out of core, all shards
    print(f"fitted {len(shards)} shards ({sum(np.load(s, mmap_mode='r').shape[0] for s in shards):,} rows) "
          f"in {time.perf_counter() - t0:.2f} s: {km.n_iter_} iterations, "
          f"inertia {km.inertia_:.5g}")
    model = os.path.join(directory, "model.npz")
    km.save(model)

    km = kmaot.load(model)                                  # as a later job would
    sizes = np.zeros(args.n_clusters, dtype=np.int64)
    for shard in shards:
        labels = km.predict(shard)                          # streamed from the file
        np.save(shard[:-len(".npy")] + ".labels.npy", labels)
        sizes += np.bincount(labels, minlength=args.n_clusters)
    print(f"saved {model} and {len(shards)} label files; cluster sizes: "
          f"min {sizes.min():,}, median {int(np.median(sizes)):,}, max {sizes.max():,}")


if __name__ == "__main__":
    main()
