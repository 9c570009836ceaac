"""A small progress display for fits (no dependency): one bar redrawn in place on a
terminal, one plain line per iteration otherwise.

It is a ``KMeans.fit(..., callback=...)`` callback: every call receives the iteration's
statistics (iteration, inertia, center_shift, seconds) and the run's context (run,
n_init, max_iter, tol, n_samples).
"""
import math
import sys
import time


def _clock(seconds):
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _rate(rows_per_s):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rows_per_s >= scale:
            return f"{rows_per_s / scale:.1f}{unit}"
    return f"{rows_per_s:.0f}"


def iterations_left(info, previous_shift):
    """(estimate, exact_bound): Lloyd iterations still to run in this run.

    The center shift of Lloyd's algorithm shrinks roughly geometrically near
    convergence; the estimate extrapolates its last ratio down to the tolerance, and is
    capped by max_iter.  exact_bound is False when it is only the max_iter cap.
    """
    left_max = info["max_iter"] - info["iteration"]
    shift, tol = info["center_shift"], info["tol"]
    if left_max <= 0 or shift == 0.0 or shift <= tol:
        return 0, True
    if previous_shift and tol > 0 and 0 < shift < previous_shift:
        ratio = shift / previous_shift
        need = math.ceil(math.log(tol / shift) / math.log(ratio))
        return max(1, min(left_max, need)), True
    return left_max, False


class Progress:
    """Callable progress display; ``close()`` ends the bar's line.

    Parameters
    ----------
    stream : file, default sys.stderr
    tty : bool or None
        Draw a bar redrawn in place (True) or print plain lines (False); None asks
        ``stream.isatty()``.
    """

    def __init__(self, stream=None, tty=None, width=20):
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if isatty else False
        self.tty = tty
        self.width = width
        self.t0 = time.perf_counter()
        self._prev_shift = None
        self._run = None
        self._iter_seconds = []
        self._last_len = 0
        self._open = False
        self._frac = 0.0

    def __call__(self, info):
        if info["run"] != self._run:
            self._run = info["run"]
            self._prev_shift = None
            self._frac = 0.0
            self._end_line()
        self._iter_seconds.append(info["seconds"])
        left, exact = iterations_left(info, self._prev_shift)
        self._prev_shift = info["center_shift"]
        per_iter = sum(self._iter_seconds) / len(self._iter_seconds)
        it = info["iteration"]
        runs_after = info["n_init"] - info["run"]
        remaining = (left + runs_after * (it + left)) * per_iter
        rows_s = info["n_samples"] / info["seconds"] if info["seconds"] > 0 else float("inf")
        elapsed = time.perf_counter() - self.t0
        run = f"run {info['run']}/{info['n_init']} " if info["n_init"] > 1 else ""
        left_txt = ("~" if exact else "<=") + _clock(remaining)
        if self.tty:
            # never moves backwards within a run
            self._frac = max(self._frac, it / (it + left) if it + left else 1.0)
            frac = self._frac
            filled = int(round(frac * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            line = (f"{run}iter {it:>3}/{info['max_iter']} [{bar}] "
                    f"inertia {info['inertia']:.6g}  shift {info['center_shift']:.3g}  "
                    f"{_rate(rows_s)} rows/s  {_clock(elapsed)} elapsed, {left_txt} left")
            pad = " " * max(0, self._last_len - len(line))
            self.stream.write("\r" + line + pad)
            self._last_len = len(line)
            self._open = True
        else:
            self.stream.write(
                f"{run}iteration {it}/{info['max_iter']}: inertia={info['inertia']:.6g} "
                f"center_shift={info['center_shift']:.3g} rows/s={rows_s:,.0f} "
                f"elapsed={elapsed:.1f}s remaining{left_txt.replace('~', '~=')}\n")
        self.stream.flush()

    def _end_line(self):
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
            self._last_len = 0

    def close(self):
        self._end_line()
