"""The ``kmaot`` command line (also ``python -m kmaot``).

Commands: ``fit``, ``predict``, ``elbow``, ``info``, ``demo``.  User errors (a missing
file, a bad k, NaN in the data, a bad option) print one line and exit with code 2; no
traceback.

The estimator options of ``fit`` and ``elbow`` are declared once, in ``FIT_OPTIONS``:
each entry maps command-line flags to a parameter of the estimator, so that a new
parameter is one entry there.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings

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


# ------------------------------------------------------------------ helpers
def _file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def _init_arg(value):
    """--init: a method name, or a .npy file of initial centers."""
    if value in ("auto", "k-means++", "k-means||", "random"):
        return value
    if value.endswith(".npy") or os.path.exists(value):
        from ._sources import read_npy_header

        read_npy_header(value)  # clear errors for missing or damaged files
        return np.load(value, allow_pickle=False)
    raise UserError(f"--init {value!r}: use 'auto', 'k-means||', 'k-means++', 'random' or a "
                    ".npy file of "
                    "initial centers (n_clusters x n_features)")


def _n_init_arg(value):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--n-init {value!r}: expected 'auto' or a positive integer") from None


#: conversions applied to option values when the estimator is made (they may fail
#: with a UserError, which argparse's ``type=`` would turn into a traceback)
_CONVERT = {"init": _init_arg, "n_init": _n_init_arg}


#: (flags, estimator parameter, argparse keywords), shared by ``fit`` and ``elbow``
FIT_OPTIONS = [
    (("--init",), "init",
     dict(default="auto", metavar="{auto,k-means||,k-means++,random,CENTERS.npy}",
          help="initialisation (default: auto = k-means|| for files, one pass per "
               "round instead of two per center)")),
    (("--n-init",), "n_init",
     dict(default="auto",
          help="initialisations to run, the best is kept (default: auto)")),
    (("--max-iter",), "max_iter",
     dict(default=300, type=int, help="maximum Lloyd iterations per run (default: 300)")),
    (("--tol",), "tol",
     dict(default=1e-4, type=float, help="relative convergence tolerance (default: 1e-4)")),
    (("--batch-size",), "batch_size",
     dict(default=None, type=int, help="rows read per batch (default: about 64 MiB)")),
    (("--threads",), "n_threads",
     dict(default=None, type=int, help="threads (default: every core available)")),
    (("--seed",), "random_state",
     dict(default=0, type=int, help="seed of the initialisation (default: 0)")),
    (("--algorithm",), "algorithm",
     dict(default="auto", choices=["auto", "lloyd", "bounded"],
          help="nearest-center search of each iteration; same result (default: auto)")),
    (("--standardize",), "standardize",
     dict(action="store_true", help="scale every feature to mean 0 and standard deviation "
                                    "1 (one streaming pass; stored in the model)")),
]


def _add_fit_options(parser):
    for flags, param, kwargs in FIT_OPTIONS:
        parser.add_argument(*flags, dest=param, **kwargs)


def _estimator(args, **overrides):
    from . import KMeans

    params = {param: _CONVERT.get(param, lambda v: v)(getattr(args, param))
              for _, param, _ in FIT_OPTIONS}
    params.update(overrides)
    return KMeans(**params)


def _data_arg(paths):
    return paths[0] if len(paths) == 1 else list(paths)


def _say(args, text):
    if not args.quiet:
        print(text, flush=True)


def _check_output(path):
    """Fail before the work, not after it, when an output cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise UserError(f"cannot write {path}: it is a directory")
    if not os.access(directory, os.W_OK):
        raise UserError(f"cannot write {path}: directory {directory} is not writable")


@contextlib.contextmanager
def _atomic_output(path):
    """Yield a temporary path next to ``path``; it becomes ``path`` on success only."""
    path = os.fspath(path)
    _check_output(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".kmaot-", suffix=".tmp", dir=directory)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; outputs follow the umask
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------- commands
def _cmd_fit(args):
    from ._progress import Progress

    _check_output(args.output)
    km = _estimator(args, n_clusters=args.n_clusters, compute_labels=False)
    progress = None if args.quiet else Progress(sys.stderr)
    t0 = time.perf_counter()
    try:
        km.fit(_data_arg(args.data), callback=progress, checkpoint=args.checkpoint,
               checkpoint_every=args.checkpoint_every)
    finally:
        if progress is not None:
            progress.close()
    dt = time.perf_counter() - t0
    km.save(args.output)
    _say(args, f"fitted {km.n_clusters} clusters in {dt:.2f} s: inertia "
               f"{km.inertia_:.6g}, {km.n_iter_} iterations"
               f"{', standardized features' if km.standardize else ''} -> {args.output}")
    return 0


def _cmd_predict(args):
    from . import load

    _check_output(args.output)
    km = load(args.model)
    if args.batch_size is not None:
        km.set_params(batch_size=args.batch_size)
    if args.threads is not None:
        km.set_params(n_threads=args.threads)
    t0 = time.perf_counter()
    source = km._source_for_predict(_data_arg(args.data))
    with _atomic_output(args.output) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int32,
                                        shape=(source.n_samples,))
        try:
            km._assign(source, np.asarray(out))  # labels go straight into the file
            out.flush()
        finally:
            del out
    dt = time.perf_counter() - t0
    _say(args, f"wrote {source.n_samples:,} labels to {args.output} in {dt:.2f} s "
               f"({source.n_samples / max(dt, 1e-9):,.0f} rows/s)")
    return 0


def parse_k_range(text):
    """'2:20' (inclusive), '2:20:2', '3,5,8' or '7' -> sorted list of distinct ints >= 1."""
    try:
        ks = []
        for part in text.split(","):
            bits = [b.strip() for b in part.split(":")]
            if len(bits) == 1:
                ks.append(int(bits[0]))
            elif len(bits) in (2, 3):
                lo, hi = int(bits[0]), int(bits[1])
                step = int(bits[2]) if len(bits) == 3 else 1
                if step < 1:
                    raise ValueError
                ks.extend(range(lo, hi + 1, step))
            else:
                raise ValueError
    except ValueError:
        raise UserError(f"--k {text!r}: expected a range like 2:20 (inclusive), 2:20:2, "
                        "or a list like 3,5,8") from None
    if not ks:
        raise UserError(f"--k {text!r} is empty (a range goes upwards, e.g. 2:20)")
    if min(ks) < 1:
        raise UserError(f"--k {text!r}: every k must be >= 1")
    return sorted(set(ks))


def _sample_rows(source, n, seed):
    """n rows drawn without replacement (all rows if there are fewer), in row order."""
    if source.n_samples <= n:
        rows = np.arange(source.n_samples)
    else:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(source.n_samples, size=n, replace=False))
    return source.take(rows)


def _cmd_elbow(args):
    from ._metrics import silhouette_score
    from ._sources import as_source
    from ._standardize import standardize

    ks = parse_k_range(args.k)
    if args.plot:
        _check_matplotlib()
        _check_output(args.plot)
    if args.sample < 2:
        raise UserError(f"--sample {args.sample}: at least 2 rows are needed")
    data = _data_arg(args.data)
    source = as_source(data)
    if max(ks) > source.n_samples:
        raise UserError(f"k={max(ks)} is larger than the number of rows ({source.n_samples})")
    sample = _sample_rows(source, args.sample, args.random_state)
    rows = []
    _say(args, f"{'k':>4}  {'inertia':>14}  {'silhouette':>10}  {'iterations':>10}  "
               f"{'seconds':>8}")
    for k in ks:
        km = _estimator(args, n_clusters=k, compute_labels=False)
        t0 = time.perf_counter()
        km.fit(data)
        dt = time.perf_counter() - t0
        labels = km.predict(sample)
        space = sample
        if "mean_" in vars(km):  # the silhouette is measured where k-means clustered
            space = standardize(sample, km.mean_, km.scale_, np.float64)
        sil = silhouette_score(space, labels)
        rows.append((k, km.inertia_, sil, km.n_iter_, dt))
        sil_txt = "-" if np.isnan(sil) else f"{sil:.4f}"
        _say(args, f"{k:>4}  {km.inertia_:>14.6g}  {sil_txt:>10}  {km.n_iter_:>10}  "
                   f"{dt:>8.2f}")
    _say(args, f"(silhouette on a sample of {sample.shape[0]:,} rows"
               f"{', standardized features' if args.standardize else ''}; '-': undefined)")
    if args.plot:
        _plot_elbow(rows, args.plot)
        _say(args, f"wrote {args.plot}")
    return 0


def _check_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'kmaot[plot]' "
                        "(or pip install matplotlib)") from None


def _plot_elbow(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ks = [r[0] for r in rows]
    fig = Figure(figsize=(8, 3.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ks, [r[1] for r in rows], "o-")
    ax1.set(xlabel="k", ylabel="inertia", title="inertia (elbow)")
    ax2.plot(ks, [r[2] for r in rows], "o-", color="C1")
    ax2.set(xlabel="k", ylabel="silhouette", title="silhouette (sampled)")
    fig.tight_layout()
    with _atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=100)


# ------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, exit code 2."""

    def error(self, message):
        self.exit(2, f"kmaot: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    p = _Parser(prog="kmaot", description="Out-of-core k-means with ahead-of-time "
                "compiled kernels.")
    p.add_argument("--version", action="version", version=f"kmaot {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    f = sub.add_parser("fit", help="fit k-means to .npy files (out of core), save the model",
                       description="Fit k-means to a .npy file, or to several read in "
                       "order as one dataset, and save the model (.npz). Progress goes "
                       "to stderr: a bar on a terminal, one line per iteration otherwise.")
    f.add_argument("data", nargs="+", metavar="DATA.npy")
    f.add_argument("-k", "--n-clusters", type=int, required=True, help="number of clusters")
    f.add_argument("-o", "--output", required=True, metavar="MODEL.npz",
                   help="where to write the model")
    _add_fit_options(f)
    f.add_argument("--checkpoint", default=None, metavar="CKPT.npz",
                   help="save the fit's state here every few iterations (atomically); "
                   "run the same command again to resume a fit that was interrupted")
    f.add_argument("--checkpoint-every", type=int, default=5, metavar="N",
                   help="iterations between checkpoints (default: 5)")
    f.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    f.set_defaults(func=_cmd_fit)

    pr = sub.add_parser("predict", help="label the rows of .npy files with a saved model",
                        description="Nearest center of every row, streamed batch by batch "
                        "into an int32 .npy file (memory independent of the number of rows).")
    pr.add_argument("model", metavar="MODEL.npz")
    pr.add_argument("data", nargs="+", metavar="DATA.npy")
    pr.add_argument("-o", "--output", required=True, metavar="LABELS.npy",
                    help="where to write the labels")
    pr.add_argument("--batch-size", type=int, default=None, help="rows per batch")
    pr.add_argument("--threads", type=int, default=None, help="threads")
    pr.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    pr.set_defaults(func=_cmd_predict)

    e = sub.add_parser("elbow", help="inertia and a sampled silhouette score for a range of k",
                       description="Fit k-means for every k of a range; print inertia and "
                       "the silhouette score of a sample of rows as a table.")
    e.add_argument("data", nargs="+", metavar="DATA.npy")
    e.add_argument("--k", required=True, metavar="2:20",
                   help="k values: 2:20 (inclusive), 2:20:2 or 3,5,8")
    e.add_argument("--plot", metavar="ELBOW.png",
                   help="also draw both curves into a PNG (needs matplotlib: "
                        "pip install 'kmaot[plot]')")
    e.add_argument("--sample", type=int, default=2000,
                   help="rows drawn for the silhouette score (default: 2000)")
    _add_fit_options(e)
    e.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    e.set_defaults(func=_cmd_elbow)

    i = sub.add_parser("info", help="version, CPU level in use, threads, numpy and BLAS")
    i.set_defaults(func=_cmd_info)

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
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"kmaot: warning: {message}", file=sys.stderr if file is None else file)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except (UserError, ValueError, TypeError, OSError) as exc:
        print(f"kmaot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kmaot: interrupted", file=sys.stderr)
        return 130
