"""Seeded data shared by the benchmarks.

Workloads are reduced versions of benchmarks/compare_peers.py's W1, W2 and W3 so that
``asv run --quick`` takes minutes (W2 keeps its 1,024 clusters and 128 features, so that
the fit takes the grouped bounds and, with threadpoolctl installed, BLAS scores).  Only ever append workloads or change a seed in a
new name: results already published were measured on this data.
"""
import numpy as np

# name: (n_samples, n_features, n_clusters)
WORKLOADS = {
    "W1": (100_000, 32, 64),
    "W3": (400_000, 8, 8),
    "W2": (20_000, 128, 1024),
}
MAX_ITER = 5
SEED = 0


def make_blobs32(n, d, k, seed=SEED):
    """Overlapping float32 Gaussian blobs (std 3 around centers in [-10, 10]^d)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d)).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    X = centers[labels]
    X += 3.0 * rng.standard_normal((n, d), dtype=np.float32)
    return X


def initial_centers(X, k, seed=SEED):
    """A fixed random sample of k rows: every run starts from the same centers."""
    rows = np.sort(np.random.default_rng(seed + 1).choice(X.shape[0], k, replace=False))
    return np.ascontiguousarray(X[rows])


def write_workloads(directory="."):
    """Write every workload as <name>.npy in directory; return {name: path}."""
    import os
    paths = {}
    for name, (n, d, k) in WORKLOADS.items():
        path = os.path.abspath(os.path.join(directory, f"{name}.npy"))
        np.save(path, make_blobs32(n, d, k))
        paths[name] = path
    return paths
