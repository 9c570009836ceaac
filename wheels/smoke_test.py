"""Smoke test of an installed kmaot wheel (run with the interpreter of a fresh venv that
holds numpy and kmaot only, from a directory outside the source checkout).

Checks: numba and llvmlite are not installed and never imported; ``python -m kmaot
--version``; a fit on a .npy file (out of core) equals the fit on the same array in
memory; predict on the file equals predict on the array; every CPU level usable here,
forced in turn with KMAOT_CPU_LEVEL in a fresh process, gives identical labels.
Prints one JSON line (``SMOKE {...}``) and exits non-zero on any failure.

    python wheels/smoke_test.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time

N, D, K = 20_000, 8, 6


def _fail(msg):
    print(f"SMOKE FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def _blobs(path):
    import numpy as np

    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, size=(K, D))
    X = (centers[rng.integers(K, size=N)] + rng.standard_normal((N, D))).astype(np.float32)
    np.save(path, X)
    return X


def level_run(data, out):
    """Child: fit + predict with the level chosen from KMAOT_CPU_LEVEL; save results."""
    import numpy as np

    import kmaot

    km = kmaot.KMeans(K, random_state=0, n_init=1).fit(data)
    labels = km.predict(data)
    np.savez(out, labels=labels, centers=km.cluster_centers_, inertia=km.inertia_,
             level=kmaot.config()["cpu_level"])


def main():
    import importlib.util

    for mod in ("numba", "llvmlite"):
        if importlib.util.find_spec(mod) is not None:
            _fail(f"{mod} is installed in the smoke-test environment")

    t0 = time.perf_counter()
    import kmaot
    import_ms = 1e3 * (time.perf_counter() - t0)
    import numpy as np

    here = os.path.dirname(os.path.abspath(__file__))
    pkg_dir = os.path.dirname(os.path.abspath(kmaot.__file__))
    if pkg_dir == os.path.join(os.path.dirname(here), "kmaot") or "site-packages" not in pkg_dir:
        _fail(f"kmaot imported from the source checkout ({kmaot.__file__}), not the wheel")

    res = subprocess.run([sys.executable, "-m", "kmaot", "--version"], capture_output=True,
                         text=True)
    if res.returncode != 0 or res.stdout.strip() != f"kmaot {kmaot.__version__}":
        _fail(f"python -m kmaot --version gave {res.stdout!r} {res.stderr!r}")

    cfg = kmaot.config()
    with tempfile.TemporaryDirectory(prefix="kmaot-smoke-") as tmp:
        data = os.path.join(tmp, "blobs.npy")
        X = _blobs(data)
        # the same init for both (init='auto' means k-means++ for arrays, k-means|| for
        # files): k-means|| is the same for every source and batch size
        km_file = kmaot.KMeans(K, init="k-means||", random_state=0, n_init=1,
                               batch_size=3000).fit(data)
        km_mem = kmaot.KMeans(K, init="k-means||", random_state=0, n_init=1).fit(X)
        if not np.array_equal(km_file.cluster_centers_, km_mem.cluster_centers_):
            _fail("fit on the .npy file differs from the fit on the array")
        if km_file.inertia_ != km_mem.inertia_ or km_file.n_iter_ != km_mem.n_iter_:
            _fail("inertia/n_iter of file and array fits differ")
        lab_file = km_file.predict(data)
        if not np.array_equal(lab_file, km_mem.labels_):
            _fail("predict on the file differs from the labels of the in-memory fit")
        if len(np.unique(lab_file)) != K:
            _fail(f"expected {K} clusters, got {len(np.unique(lab_file))}")

        levels = cfg["cpu_levels_supported"]
        results = {}
        for level in levels:
            out = os.path.join(tmp, f"{level}.npz")
            env = dict(os.environ, KMAOT_CPU_LEVEL=level)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--level-run",
                                data, out], env=env, capture_output=True, text=True,
                               cwd=tmp)
            if r.returncode != 0:
                _fail(f"level {level}: {r.stdout}{r.stderr}")
            with np.load(out) as z:
                results[level] = {k: z[k] for k in z.files}
            if str(results[level]["level"]) != level:
                _fail(f"KMAOT_CPU_LEVEL={level} ran level {results[level]['level']}")
        ref = results[levels[0]]
        for level in levels[1:]:
            if not np.array_equal(results[level]["labels"], ref["labels"]):
                _fail(f"labels of level {level} differ from those of {levels[0]}")
            if not np.allclose(results[level]["centers"], ref["centers"], rtol=1e-6,
                               atol=1e-6):
                _fail(f"centers of level {level} differ from those of {levels[0]}")
        if not np.array_equal(ref["labels"], lab_file):
            _fail("labels of the forced-level runs differ from the default run")

    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite"))
    if loaded:
        _fail(f"numba/llvmlite imported: {loaded}")
    print("SMOKE " + json.dumps({
        "version": kmaot.__version__, "python": sys.version.split()[0],
        "numpy": np.__version__, "kmaot_file": kmaot.__file__,
        "levels_built": cfg["cpu_levels_built"], "levels_checked": levels,
        "import_ms_in_process": round(import_ms, 1)}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--level-run":
        level_run(sys.argv[2], sys.argv[3])
    else:
        main()
