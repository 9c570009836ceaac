"""Spherical k-means support (``metric='cosine'``): rows projected on the unit sphere.

For unit rows x and unit centers c, ``||x - c||^2 = 2 (1 - cos(x, c))``: the nearest
center in the Euclidean sense is the one of largest cosine similarity.  kmaot therefore
normalises the rows (batch by batch for files) and runs its Euclidean kernels on them;
the drivers normalise the centers after every update (the mean of unit rows, rescaled
to unit length, is the normalised sum: the spherical k-means center of Dhillon & Modha).
Inertia is reported as ``sum_i w_i (1 - cos(x_i, c_{label_i}))``, i.e. half the
Euclidean inertia of the unit rows.
"""
import numpy as np

from ._sources import ArraySource

METRICS = ("euclidean", "cosine")
F8 = np.float64


def check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} should be 'euclidean' or 'cosine'")
    return metric


def normalize_rows(X, rows, describe, what="X"):
    """Rows of X divided by their Euclidean norm (computed in float64), in X's dtype.

    rows: the dataset row index of every row of X (for messages); describe(row) gives
    the message for a row with NaN or infinity.  A zero row raises ValueError: its
    direction, hence its cosine similarity, is undefined.
    """
    X64 = X.astype(F8, copy=False)
    norms = np.sqrt(np.einsum("ij,ij->i", X64, X64))
    ok = norms > 0
    if not ok.all():
        finite = np.isfinite(X64).all(axis=1)
        if not finite.all():
            raise ValueError(describe(int(rows[np.flatnonzero(~finite)[0]])))
        bad = int(rows[np.flatnonzero(~ok)[0]])
        raise ValueError(
            f"{what} has a row of zeros (first at row {bad}); metric='cosine' needs rows "
            "with a nonzero norm (drop them, or use metric='euclidean')")
    if not np.isfinite(norms).all():
        finite = np.isfinite(X64).all(axis=1)
        if not finite.all():
            raise ValueError(describe(int(rows[np.flatnonzero(~finite)[0]])))
        # finite values whose squared norm overflows: rescale first
        scale = np.abs(X64).max(axis=1, keepdims=True)
        Y = X64 / scale
        norms = np.sqrt(np.einsum("ij,ij->i", Y, Y))
        return np.ascontiguousarray(Y / norms[:, None], dtype=X.dtype)
    return np.ascontiguousarray(X64 / norms[:, None], dtype=X.dtype)


def normalize_centers(centers, dtype, fallback=None):
    """Centers rescaled to unit norm; a zero center keeps ``fallback``'s row (or raises
    when none is given)."""
    c = np.array(centers, dtype=F8)
    norms = np.sqrt(np.einsum("ij,ij->i", c, c))
    zero = ~(norms > 0)
    if zero.any():
        if fallback is None:
            raise ValueError(
                f"init has a row of zeros (row {int(np.flatnonzero(zero)[0])}); "
                "metric='cosine' needs centers with a nonzero norm")
        c[zero] = np.asarray(fallback, dtype=F8)[zero]
        norms[zero] = 1.0
    c[~zero] /= norms[~zero, None]
    return np.ascontiguousarray(c, dtype=dtype)


class UnitRows:
    """A source whose rows are those of another source, normalised to unit length
    batch by batch (nothing is loaded)."""

    def __init__(self, source):
        self._src = source
        self.n_samples = source.n_samples
        self.n_features = source.n_features
        self.dtype = source.dtype
        self.in_memory = source.in_memory
        self.what = getattr(source, "what", getattr(source, "path", "X"))

    def default_batch_size(self):
        return self._src.default_batch_size()

    def batches(self, batch_size=None, start=0):
        for s, Xb in self._src.batches(batch_size, start=start):
            yield s, normalize_rows(Xb, np.arange(s, s + Xb.shape[0]),
                                    self._src.describe_row, self.what)

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.intp)
        return normalize_rows(self._src.take(rows), rows, self._src.describe_row, self.what)

    def describe_row(self, row):
        return self._src.describe_row(row)


def unit_source(source):
    """The source of the normalised rows: an in-memory array is normalised once (one
    copy, like sklearn.preprocessing.normalize); files and memmaps batch by batch."""
    if isinstance(source, ArraySource) and source.in_memory:
        X = source._arr
        Xn = normalize_rows(X, np.arange(X.shape[0]), source.describe_row, source.what)
        return ArraySource(Xn, source.what)
    return UnitRows(source)
