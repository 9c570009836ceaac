"""Per-feature standardization, computed in one streaming pass and applied batch by batch.

``fit_standardizer`` reads the data once (the ``moments`` kernel, in float64) and returns
the per-feature mean and standard deviation; a feature whose standard deviation is 0
gets scale 1 (as scikit-learn's ``StandardScaler``), so that it becomes all zeros
instead of NaN.  ``StandardizedSource`` wraps any source and serves
``((X - mean) / scale)`` batch by batch, computed in float64 and rounded to the compute
dtype of the data: nothing but one batch is ever standardized at a time, so fitting a
file stays memory bounded.
"""
import numpy as np

from ._lloyd import moments_pass

F8 = np.float64


def fit_standardizer(engine, source, batch_size=None):
    """(mean, scale): float64 arrays of shape (n_features,), from one pass over source.

    The mean and the (population) standard deviation are not weighted by sample
    weights: they describe the rows as stored.
    """
    moments = moments_pass(engine, source, batch_size)
    mean = np.ascontiguousarray(moments.mean, dtype=F8)
    scale = np.sqrt(moments.var)
    scale = np.where(scale > 0, scale, 1.0)
    return mean, np.ascontiguousarray(scale, dtype=F8)


def check_standardizer(mean, scale, n_features):
    """Validate a stored (mean, scale) pair; returns float64 C-contiguous copies."""
    mean = np.array(mean, dtype=F8, order="C", copy=True)
    scale = np.array(scale, dtype=F8, order="C", copy=True)
    if mean.shape != (n_features,) or scale.shape != (n_features,):
        raise ValueError(f"mean_ and scale_ must have shape ({n_features},), got "
                         f"{mean.shape} and {scale.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("mean_ and scale_ must be finite, and scale_ > 0")
    return mean, scale


def standardize(X, mean, scale, dtype):
    """((X - mean) / scale) computed in float64, as a C-contiguous array of dtype."""
    out = np.subtract(X, mean, dtype=F8)
    out /= scale
    return np.ascontiguousarray(out, dtype=dtype)


class StandardizedSource:
    """A source whose batches are standardized on the fly (see the module docstring).

    Same protocol as the sources of ``_sources``: ``n_samples``, ``n_features``,
    ``dtype``, ``in_memory``, ``default_batch_size()``, ``batches()``, ``take()`` and
    ``describe_row()``.  Non-finite values stay non-finite, so the passes still report
    the file and row that hold them.
    """

    def __init__(self, source, mean, scale):
        self.source = source
        self.mean = mean
        self.scale = scale
        self.n_samples = source.n_samples
        self.n_features = source.n_features
        self.dtype = source.dtype
        self.in_memory = source.in_memory

    def default_batch_size(self):
        return self.source.default_batch_size()

    def batches(self, batch_size=None, start=0):
        for s, X in self.source.batches(batch_size, start=start):
            yield s, standardize(X, self.mean, self.scale, self.dtype)

    def take(self, rows):
        return standardize(self.source.take(rows), self.mean, self.scale, self.dtype)

    def describe_row(self, row):
        return self.source.describe_row(row)


def standardized(source, mean, scale):
    """The standardized view of source: for an in-memory array, one standardized copy
    (computed once, reused by every pass); for files, a batch-by-batch wrapper."""
    from ._sources import ArraySource

    if source.in_memory and isinstance(source, ArraySource):
        with np.errstate(invalid="ignore", over="ignore"):
            arr = standardize(source._arr, mean, scale, source.dtype)
        out = ArraySource(arr, source.what)
        out.describe_row = source.describe_row
        return out
    return StandardizedSource(source, mean, scale)
