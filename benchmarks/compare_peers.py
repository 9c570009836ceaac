"""Seconds per Lloyd iteration: kmaot against scikit-learn, scikit-learn-intelex and faiss.

Every library starts from the same initial centers (a fixed random sample of rows) and
runs the same number of iterations, in one process, alternating between libraries over
several repeats.  The time of one iteration is measured the same way for all of them:

    (time of fit(max_iter=1 + m) - time of fit(max_iter=1)) / m

which cancels what a fit does once (input checks, kmaot's moments pass, final E-step,
copies).  kmaot's own per-iteration clock (median of ``iteration_stats_`` seconds) is
printed next to it.

The machine's lower bound per iteration is max(2 n k d / sgemm_rate, 4 n d / stream_rate),
both rates measured in this run (float32 matmul of (8192, 256) @ (256, 1024) with all
threads; threaded sum of a large float32 array).

Usage (from the repository root, with kmaot installed)::

    python benchmarks/compare_peers.py --quick
    python benchmarks/compare_peers.py --repeats 3 --out benchmarks/results-latest.md
"""
import argparse
import datetime
import gc
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# name: (n_samples, n_features, n_clusters, iterations timed)
WORKLOADS = {
    "W1": (1_000_000, 32, 64, 10),
    "W2": (200_000, 128, 1024, 4),
    "W3": (2_000_000, 8, 8, 10),
}
QUICK_DIVISOR = 10
LIBRARIES = ("kmaot", "kmaot-lloyd", "sklearn", "sklearnex", "faiss")
EMPTY_NOTES = []


# ---------------------------------------------------------------------- data
def make_blobs32(n, d, k, seed):
    """Overlapping Gaussian blobs in float32, built chunk by chunk (seeded).

    The blobs overlap a lot (std 3 around centers in [-10, 10]^d), so that Lloyd does
    not converge within the few iterations timed here.
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d)).astype(np.float32)
    X = np.empty((n, d), np.float32)
    step = 1 << 18
    for s in range(0, n, step):
        e = min(n, s + step)
        lab = rng.integers(0, k, size=e - s)
        X[s:e] = centers[lab] + 3.0 * rng.standard_normal((e - s, d), dtype=np.float32)
    return X


def initial_centers(X, k, seed):
    rows = np.sort(np.random.default_rng(seed + 1).choice(X.shape[0], k, replace=False))
    return np.ascontiguousarray(X[rows])


def inertia_of(X, centers):
    """Sum of squared distances to the nearest center, in float64 (common judge)."""
    C = centers.astype(np.float64)
    csq = np.einsum("ij,ij->i", C, C)
    total = 0.0
    step = max(1024, (1 << 24) // max(1, C.shape[0]))
    for s in range(0, X.shape[0], step):
        x = X[s:s + step].astype(np.float64)
        d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ C.T) + csq
        total += float(np.maximum(d2.min(axis=1), 0.0).sum())
    return total


# ------------------------------------------------------------- machine rates
def n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sgemm_rate(repeats=7):
    """Best float32 matmul rate (FLOP/s) of (8192, 256) @ (256, 1024), all threads."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8192, 256), dtype=np.float32)
    B = rng.standard_normal((256, 1024), dtype=np.float32)
    A @ B
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t)
    return 2.0 * 8192 * 256 * 1024 / best


def stream_rate(nbytes, repeats=5):
    """Best read rate (bytes/s) summing a float32 array, one slice per core in threads
    (numpy releases the GIL in reductions)."""
    a = np.ones(nbytes // 4, np.float32)
    parts = np.array_split(a, n_cores())
    best = np.inf
    with ThreadPoolExecutor(len(parts)) as ex:
        list(ex.map(np.sum, parts))
        for _ in range(repeats):
            t = time.perf_counter()
            list(ex.map(np.sum, parts))
            best = min(best, time.perf_counter() - t)
    del a, parts
    return nbytes / best


# ----------------------------------------------------------------- libraries
class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def available_libraries(wanted):
    libs = {}
    for name in wanted:
        try:
            if name in ("kmaot", "kmaot-lloyd"):
                import kmaot  # noqa: F401
            elif name == "sklearn":
                import sklearn.cluster  # noqa: F401
            elif name == "sklearnex":
                import sklearnex.cluster  # noqa: F401
            elif name == "faiss":
                import faiss  # noqa: F401
            libs[name] = True
        except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
            print(f"# {name}: not importable ({type(exc).__name__}: {exc}); skipped",
                  file=sys.stderr)
    return list(libs)


def fit_once(lib, X, init, max_iter):
    """Fit with the given initial centers; returns (seconds, model, centers, n_iter,
    kmaot per-iteration seconds or None).  'kmaot' is the default configuration
    (algorithm='auto': bounded for in-memory data with k >= 16); 'kmaot-lloyd' measures
    every row against every center in every iteration (algorithm='lloyd')."""
    k = init.shape[0]
    if lib in ("kmaot", "kmaot-lloyd"):
        from kmaot import KMeans
        km = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0,
                    algorithm="lloyd" if lib == "kmaot-lloyd" else "auto")
        t = time.perf_counter()
        km.fit(X)
        dt = time.perf_counter() - t
        return dt, km, km.cluster_centers_, km.n_iter_, [s["seconds"]
                                                         for s in km.iteration_stats_]
    if lib == "sklearn":
        from sklearn.cluster import KMeans
        km = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0, algorithm="lloyd")
    elif lib == "sklearnex":
        from sklearnex.cluster import KMeans
        km = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0, algorithm="lloyd")
    elif lib == "faiss":
        import faiss
        km = faiss.Kmeans(X.shape[1], k, niter=max_iter, nredo=1, verbose=False,
                          max_points_per_centroid=1 << 30, min_points_per_centroid=1,
                          seed=1234)
        t = time.perf_counter()
        km.train(X, init_centroids=init)
        dt = time.perf_counter() - t
        return dt, km, km.centroids, max_iter, None
    else:
        raise ValueError(lib)
    t = time.perf_counter()
    km.fit(X)
    dt = time.perf_counter() - t
    return dt, km, km.cluster_centers_, km.n_iter_, None


def time_workload(name, X, init, m, libs, repeats, log):
    """Alternate libraries over repeats; per-iteration seconds per repeat."""
    per_iter = {lib: [] for lib in libs}
    own = {lib: [] for lib in libs}
    finals = {}
    for r in range(repeats):
        order = libs[r % len(libs):] + libs[:r % len(libs)]
        for lib in order:
            gc.collect()
            t1, *_ = fit_once(lib, X, init, 1)
            tm, model, centers, n_iter, stats = fit_once(lib, X, init, 1 + m)
            if n_iter != 1 + m:
                print(f"# WARNING {name} {lib}: ran {n_iter} iterations, not {1 + m} "
                      "(converged early); its per-iteration time is not comparable",
                      file=sys.stderr)
            per_iter[lib].append((tm - t1) / m)
            if stats:
                own[lib].extend(stats[1:])
            finals[lib] = (model, np.array(centers, dtype=np.float32), n_iter)
            if r == 0:
                empties = None
                if lib == "faiss":
                    empties = sum(s["nsplit"] for s in model.iteration_stats)
                elif lib.startswith("kmaot"):
                    empties = sum(s["n_empty"] for s in model.iteration_stats_)
                if empties:
                    log(f"# NOTE {name} {lib}: {empties} empty clusters re-seeded")
                    EMPTY_NOTES.append(f"{name}: {lib} re-seeded {empties} empty "
                                       f"clusters over {1 + m} iterations")
            log(f"  {name} repeat {r + 1}/{repeats} {lib:10s} fit(1)={t1:.3f}s "
                f"fit({1 + m})={tm:.3f}s -> {(tm - t1) / m * 1e3:.1f} ms/iter")
    return per_iter, own, finals


def median_ms(v):
    return float(np.median(v)) * 1e3 if len(v) else float("nan")


# -------------------------------------------------------------- predict latency
def predict_latency(models, X, calls_1, calls_1000, rng):
    """Median seconds of one predict call on 1 row and on 1,000 rows, per library."""
    import faiss

    out = {}
    queries1 = [X[i:i + 1] for i in rng.integers(0, X.shape[0], calls_1)]
    starts = rng.integers(0, X.shape[0] - 1000, calls_1000)
    queries1000 = [np.ascontiguousarray(X[s:s + 1000]) for s in starts]
    for lib, (model, centers, _) in models.items():
        if lib == "faiss":
            index = faiss.IndexFlatL2(centers.shape[1])
            index.add(centers)

            def call(q, index=index):
                return index.search(q, 1)[1]
        else:
            call = model.predict
        res = []
        for qs in (queries1, queries1000):
            for q in qs[:5]:
                call(q)
            ts = []
            for q in qs:
                t = time.perf_counter()
                call(q)
                ts.append(time.perf_counter() - t)
            res.append(float(np.median(ts)))
        out[lib] = tuple(res)
    return out


# --------------------------------------------------------------------- report
def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def versions(libs):
    v = []
    import numpy
    v.append(f"numpy {numpy.__version__}")
    for lib in libs:
        try:
            if lib == "kmaot":
                import kmaot
                level = kmaot.config().get("cpu_level")
                v.append(f"kmaot {kmaot.__version__} (CPU level {level})")
            elif lib == "sklearn":
                import sklearn
                v.append(f"scikit-learn {sklearn.__version__}")
            elif lib == "sklearnex":
                from importlib.metadata import version
                v.append(f"scikit-learn-intelex {version('scikit-learn-intelex')}")
            elif lib == "faiss":
                import faiss
                opt = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else ""
                v.append(f"faiss {faiss.__version__} ({opt.strip() or 'generic'})")
        except Exception:  # noqa: BLE001
            v.append(f"{lib} ?")
    return ", ".join(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"n_samples / {QUICK_DIVISOR}, smaller stream array, fewer calls")
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--libs", default=",".join(LIBRARIES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iters", type=int, default=None,
                   help="iterations timed per fit (default: per workload)")
    p.add_argument("--stream-gb", type=float, default=None,
                   help="size of the array summed for the stream rate (default 2, "
                        "0.25 with --quick)")
    p.add_argument("--no-outofcore", action="store_true")
    p.add_argument("--no-predict", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--omp-wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY to set if unset ('' to leave it alone)")
    p.add_argument("--out", default=None, help="also write the markdown report here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    if args.omp_wait_policy:
        # Must be set before libgomp is loaded (faiss, scikit-learn).  With libgomp's
        # default (active spinning) faiss's OpenMP threads and its OpenMP OpenBLAS fight
        # over the cores: on a 2-core machine faiss's search became 20x slower.
        os.environ.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)
    logging.getLogger("faiss").setLevel(logging.WARNING)
    libs = available_libraries(args.libs.split(","))
    # sklearnex says on its logger whether each call ran on oneDAL or fell back
    skx_log = _Capture()
    skx_logger = logging.getLogger("sklearnex")
    for h in list(skx_logger.handlers):
        skx_logger.removeHandler(h)
    skx_logger.addHandler(skx_log)
    skx_logger.setLevel(logging.INFO)
    skx_logger.propagate = False
    if "kmaot" not in libs:
        p.error("kmaot is not importable (install it; do not run from a checkout dir)")
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in names:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; choose among {', '.join(WORKLOADS)}")

    stream_gb = args.stream_gb if args.stream_gb else (0.25 if args.quick else 2.0)
    log("# measuring sgemm and stream rates")
    sg = sgemm_rate()
    st = stream_rate(int(stream_gb * 2**30))
    log(f"# sgemm {sg / 1e9:.1f} GFLOP/s, stream {st / 1e9:.1f} GB/s")

    lines = []
    rows = []
    notes = []
    w1_data = None
    for w in names:
        n, d, k, m = WORKLOADS[w]
        if args.quick:
            n //= QUICK_DIVISOR
        if args.iters:
            m = args.iters
        log(f"# {w}: n={n} d={d} k={k}, timing {m} iterations, {args.repeats} repeats")
        X = make_blobs32(n, d, k, args.seed)
        init = initial_centers(X, k, args.seed)
        skx_log.messages.clear()
        per_iter, own, finals = time_workload(w, X, init, m, libs, args.repeats, log)
        if "sklearnex" in libs and not any("accelerated" in s and "fit" in s
                                           for s in skx_log.messages):
            notes.append(f"{w}: sklearnex fell back to stock scikit-learn "
                         f"({skx_log.messages[-1:] or 'no log'})")
        inert = {lib: inertia_of(X, c) for lib, (_, c, _) in finals.items()}
        vals = np.array(list(inert.values()))
        disagree = float((vals.max() - vals.min()) / vals.min())
        med = {lib: median_ms(per_iter[lib]) for lib in libs}
        peers = [lib for lib in libs if not lib.startswith("kmaot")]
        best_peer = min(peers, key=lambda lib: med[lib]) if peers else None
        bound = max(2.0 * n * k * d / sg, 4.0 * n * d / st) * 1e3
        rows.append((w, n, d, k, m, med, median_ms(own["kmaot"]), best_peer, bound,
                     inert, disagree))
        if w == "W1":
            w1_data = (X, init, m, finals)
        else:
            del X
        gc.collect()

    # ---------------------------------------------------------------- tables
    today = datetime.date.today().isoformat()
    lines.append(f"# kmaot vs peers, {today}")
    lines.append("")
    lines.append(f"- CPU: {cpu_model()}, {n_cores()} cores usable "
                 f"(all libraries use all of them)")
    lines.append(f"- command: {' '.join(['compare_peers.py'] + (argv or sys.argv[1:]))}")
    lines.append(f"- {versions(libs)}; Python {platform.python_version()}")
    lines.append(f"- measured here: sgemm {sg / 1e9:.1f} GFLOP/s "
                 f"(float32 (8192,256)@(256,1024)), stream {st / 1e9:.1f} GB/s "
                 f"(threaded sum of {stream_gb:g} GB float32)")
    lines.append(f"- repeats {args.repeats} (libraries alternated), "
                 f"{'--quick (n / 10)' if args.quick else 'full sizes'}; ms per Lloyd "
                 "iteration = median over repeats of (fit(1+m) - fit(1)) / m")
    lines.append("")
    head = ["workload", "n", "d", "k", "m"] + [f"{lib} ms/it" for lib in libs]
    head += ["kmaot own clock", "best peer / kmaot", "lower bound ms/it",
             "kmaot / bound", "max rel. inertia disagreement"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for (w, n, d, k, m, med, own_ms, best_peer, bound, inert, disagree) in rows:
        cells = [w, f"{n:,}", str(d), str(k), str(m)]
        cells += [f"{med[lib]:.1f}" for lib in libs]
        cells.append(f"{own_ms:.1f}")
        cells.append(f"{med[best_peer] / med['kmaot']:.2f} ({best_peer})"
                     if best_peer else "-")
        cells.append(f"{bound:.1f}")
        cells.append(f"{med['kmaot'] / bound:.2f}")
        cells.append(f"{disagree:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Final inertia (float64, of each library's final centers, same judge; "
                 "in brackets the relative difference to kmaot's; libraries that "
                 "re-seed empty clusters differently, e.g. faiss's splitting, diverge "
                 "after the first empty cluster):")
    lines.append("")
    lines.append("| workload | " + " | ".join(libs) + " |")
    lines.append("|---|" + "---|" * len(libs))
    for r in rows:
        lines.append(f"| {r[0]} | " + " | ".join(
            f"{r[9][lib]:.7g}" + ("" if lib == "kmaot" else
                                  f" ({(r[9][lib] - r[9]['kmaot']) / r[9]['kmaot']:+.1e})")
            for lib in libs) + " |")

    if w1_data is not None and not args.no_outofcore:
        X, init, m, _ = w1_data
        log("# W1 out of core: .npy in the page cache vs in memory")
        with tempfile.TemporaryDirectory(prefix="kmaot-bench-") as tmp:
            path = os.path.join(tmp, "w1.npy")
            np.save(path, X)
            with open(path, "rb") as f:  # into the page cache
                while f.read(1 << 24):
                    pass
            res = {"memory": [], "file": []}
            # at least 5 alternated pairs: the two medians are compared, and the host's
            # speed drifts within a run (run M, 3 pairs: 1.25; W1 alone, 5 pairs: 1.02,
            # pairs 0.94-1.20 as the host slowed from 28 to 57 ms per iteration)
            for r in range(max(args.repeats, 5)):
                for where in (("memory", "file") if r % 2 == 0 else ("file", "memory")):
                    src = X if where == "memory" else path
                    # the same algorithm for both: files use 'lloyd' (O(batch) memory)
                    t1 = fit_once("kmaot-lloyd", src, init, 1)[0]
                    tm = fit_once("kmaot-lloyd", src, init, 1 + m)[0]
                    res[where].append((tm - t1) / m)
                    log(f"  W1 {where:6s} {(tm - t1) / m * 1e3:.1f} ms/iter")
        mem_ms, file_ms = median_ms(res["memory"]), median_ms(res["file"])
        lines.append("")
        lines.append("Out of core (kmaot algorithm='lloyd', W1 as a .npy file in the "
                     "page cache, default batch size):")
        lines.append("")
        lines.append("| W1 | in memory ms/it | .npy file ms/it | file / memory |")
        lines.append("|---|---|---|---|")
        lines.append(f"| n={X.shape[0]:,} | {mem_ms:.1f} | {file_ms:.1f} | "
                     f"{file_ms / mem_ms:.2f} |")

    if w1_data is not None and not args.no_predict:
        X, init, m, finals = w1_data
        log("# predict latency on the W1 models")
        c1, c1000 = (300, 30) if args.quick else (2000, 200)
        lat = predict_latency(finals, X, c1, c1000, np.random.default_rng(args.seed + 2))
        lines.append("")
        lines.append(f"Predict latency on the W1 model (d=32, k=64), median of {c1} / "
                     f"{c1000} calls (faiss: IndexFlatL2.search(x, 1)):")
        lines.append("")
        lines.append("| library | 1 row (us) | 1,000 rows (us) |")
        lines.append("|---|---|---|")
        for lib, (a, b) in lat.items():
            lines.append(f"| {lib} | {a * 1e6:.1f} | {b * 1e6:.0f} |")

    notes += EMPTY_NOTES
    lines.append("")
    lines.append(f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    if notes:
        lines.extend(f"- note: {s}" for s in notes)
    lines.append("")
    lines.append(f"Total run time of this script: {time.perf_counter() - t_start:.0f} s.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
