"""Checkpoints of a running fit: saved atomically, refused when they do not match.

A checkpoint is a ``.npz`` file (read with ``allow_pickle=False``: nothing in it is
ever unpickled) holding

* ``meta``: JSON text (as uint8) with the format name and version, the parameters
  that decide the result, a fingerprint of the data, the progress (initialisation run,
  iteration statistics so far, the best finished run) and the state of the random
  generator, plus a SHA-256 of every array below;
* ``centers``: the centers of the run in progress after its last saved iteration;
* ``best_centers``: the centers of the best finished run, if any;
* ``mean``, ``var``: the per-feature moments of the data (bit for bit), which
  fingerprint every value of the data at no extra cost (the fit computes them anyway).

Writing goes to a temporary file in the same directory, which is flushed, fsynced and
then renamed over the checkpoint (``os.replace``): a fit killed at any moment leaves
either the previous checkpoint or the new one, never a mix.

Kmaot's Lloyd iteration is deterministic, so a fit resumed from a checkpoint ends with
exactly the result of the uninterrupted fit.  Parameters that do not change the result
(``batch_size``, ``n_threads``, ``verbose``) may differ between the two.
"""
import os

# hashlib and json are imported where used: only fits that checkpoint
# need them (cold start of ``import kmaot``)

import numpy as np

from ._validation import check_positive_int

FORMAT = "kmaot-checkpoint"
VERSION = 1
#: rows hashed to fingerprint the data before the moments pass (a cheap early check)
_SAMPLE_ROWS = 16


def _sha(a):
    import hashlib
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def params_fingerprint(est, k, n_init, dtype, sample_weight):
    """The parameters of a fit that decide its result, as JSON-compatible values."""
    init = est.init if isinstance(est.init, str) else "array:" + _sha(
        np.asarray(est.init, dtype=np.float64))
    rs = est.random_state
    seed = int(rs) if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) else None
    return {
        "n_clusters": int(k),
        "init": init,
        "n_init": int(n_init),
        "max_iter": int(est.max_iter),
        "tol": float(est.tol),
        "random_state": seed,
        "dtype": np.dtype(dtype).str,
        "sample_weight": None if sample_weight is None else _sha(sample_weight),
    }


def data_fingerprint(source):
    """Shape, compute dtype and a hash of a few evenly spaced rows of a source."""
    n = source.n_samples
    rows = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE_ROWS)).astype(np.intp))
    return {
        "n_samples": int(n),
        "n_features": int(source.n_features),
        "dtype": np.dtype(source.dtype).str,
        "rows": _sha(source.take(rows)),
    }


class State:
    """What a checkpoint restores (see the module docstring)."""

    def __init__(self, run, centers, stats, best, rng_state, mean, var):
        self.run = run              # index of the initialisation run in progress
        self.centers = centers      # its centers, or None if it has not started
        self.stats = stats          # its iteration statistics so far
        self.best = best            # (centers, inertia, n_iter, stats) or None
        self.rng_state = rng_state  # RandomState.get_state() after its initialisation
        self.mean = mean
        self.var = var


class Checkpoint:
    """Reads, checks, writes and removes the checkpoint file of one fit."""

    def __init__(self, path, params, data, every=5):
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (str or os.PathLike), got {path!r}")
        self.path = os.fspath(path)
        self.every = check_positive_int(every, "checkpoint_every")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"checkpoint {self.path}: directory {directory} does not exist")
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"checkpoint {self.path} is a directory")
        self.params = params
        self.data = data

    # ---------------------------------------------------------------- reading
    def _corrupt(self, why):
        return ValueError(
            f"checkpoint {self.path} is corrupt or not a kmaot checkpoint ({why}); delete "
            "it to start the fit over")

    def load(self):
        """The saved State, or None when there is no checkpoint yet.

        Raises ValueError when the file is corrupt or was written by a fit of other
        data or other parameters (checked here, except for the moments: see
        check_moments)."""
        import json
        if not os.path.exists(self.path):
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except Exception as exc:  # BadZipFile, OSError, ValueError, EOFError, ...
            raise self._corrupt(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(arrays, dict) or "meta" not in arrays:
            raise self._corrupt("no metadata")
        try:
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
            fmt, version = meta["format"], meta["version"]
        except Exception as exc:
            raise self._corrupt(f"unreadable metadata: {type(exc).__name__}") from None
        if fmt != FORMAT:
            raise self._corrupt(f"format {fmt!r}")
        if version != VERSION:
            raise ValueError(f"checkpoint {self.path} has format version {version}; this "
                             f"kmaot reads version {VERSION}. Delete it to start over")
        try:
            sums = meta["sha256"]
            if sorted(sums) != sorted(arrays):
                raise KeyError("arrays")
            for name, a in arrays.items():
                if _sha(a) != sums[name]:
                    raise self._corrupt(f"checksum mismatch in {name!r}")
            self._check_same("parameters", meta["params"], self.params)
            self._check_same("data", meta["data"], self.data)
            prog = meta["progress"]
            rng = prog["rng"]
            rng_state = None if rng is None else (
                rng[0], arrays["rng_keys"], int(rng[1]), int(rng[2]), float(rng[3]))
            best = None
            if prog["best"] is not None:
                b = prog["best"]
                best = (arrays["best_centers"], float(b["inertia"]), int(b["n_iter"]),
                        list(b["stats"]))
            state = State(int(prog["run"]), arrays.get("centers"), list(prog["stats"]),
                          best, rng_state, arrays["mean"], arrays["var"])
        except (KeyError, TypeError, IndexError) as exc:
            raise self._corrupt(f"incomplete metadata ({type(exc).__name__}: {exc})") from None
        k, d = self.params["n_clusters"], self.data["n_features"]
        for c in (state.centers, None if best is None else best[0]):
            if c is not None and (c.shape != (k, d) or c.dtype.str != self.params["dtype"]
                                  or not np.isfinite(c).all()):
                raise self._corrupt("centers of the wrong shape, dtype or not finite")
        if not 0 <= state.run < self.params["n_init"] or (best is None) != (state.run == 0) \
                or len(state.stats) > self.params["max_iter"]:
            raise self._corrupt("inconsistent progress")
        return state

    def _check_same(self, what, saved, now):
        if saved == now:
            return
        diffs = [f"{key}={saved.get(key)!r} in the checkpoint, {now.get(key)!r} now"
                 for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]
        raise ValueError(
            f"checkpoint {self.path} was written by a fit of other {what} "
            f"({'; '.join(diffs)}); give another checkpoint path or delete this one")

    def check_moments(self, state, moments):
        if not (np.array_equal(state.mean, moments.mean)
                and np.array_equal(state.var, moments.var)):
            raise ValueError(
                f"checkpoint {self.path} was written by a fit of other data (same shape "
                "and sampled rows, but different values); give another checkpoint path or "
                "delete this one")

    # ---------------------------------------------------------------- writing
    def save(self, run, centers, stats, best, rng_state, moments):
        """Write the state atomically (temporary file, fsync, os.replace)."""
        import json
        arrays = {"mean": np.asarray(moments.mean, dtype=np.float64),
                  "var": np.asarray(moments.var, dtype=np.float64)}
        if centers is not None:
            arrays["centers"] = np.ascontiguousarray(centers)
        rng = None
        if rng_state is not None:
            name, keys, pos, has_gauss, cached = rng_state
            arrays["rng_keys"] = np.asarray(keys, dtype=np.uint32)
            rng = [str(name), int(pos), int(has_gauss), float(cached)]
        best_meta = None
        if best is not None:
            arrays["best_centers"] = np.ascontiguousarray(best[0])
            best_meta = {"inertia": float(best[1]), "n_iter": int(best[2]),
                         "stats": best[3]}
        meta = {"format": FORMAT, "version": VERSION, "params": self.params,
                "data": self.data,
                "progress": {"run": int(run), "stats": stats, "best": best_meta, "rng": rng},
                "sha256": {name: _sha(a) for name, a in arrays.items()}}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        atomic_savez(self.path, arrays)

    def remove(self):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def atomic_savez(path, arrays):
    """np.savez to a temporary file next to path, fsync, then os.replace: readers and
    a later resume see the old file or the new one, never a partial one.  The
    temporary file is removed if anything (including KeyboardInterrupt) stops the
    write; only a SIGKILL during the write can leave it behind (the checkpoint itself
    stays intact)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # the name is chosen before the file exists and the file is created inside the
    # try block: a KeyboardInterrupt can no longer land between the creation of the
    # file and the handler that removes it (tempfile.mkstemp left that window open)
    tmp = f"{path}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fp:
            np.savez(fp, **arrays)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
