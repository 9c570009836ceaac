"""The estimator shared by ``kmaot.dask.KMeans`` and ``kmaot.spark.KMeans``.

Parameters are checked here, once; the engine-specific subclass provides a *backend*
(see ``_distributed``) that runs kmaot's kernels on every partition and reduces the
results, and this class runs initialisation and the Lloyd driver over it.
"""
import numbers
import warnings

import numpy as np

from . import _distributed
from ._base import ParamsMixin
from ._lloyd import Moments, tolerance
from ._validation import (check_init_array, check_n_clusters, check_positive_int,
                          check_random_state)

_INITS = ("k-means||", "random")


class ScaleOutKMeans(ParamsMixin):
    """Base class: see ``kmaot.dask.KMeans`` for the parameters."""

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, oversampling_factor=2.0,
                 init_max_iter=5):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter

    def _check_params(self):
        k = check_positive_int(self.n_clusters, "n_clusters")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        rounds = check_positive_int(self.init_max_iter, "init_max_iter")
        if (isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real)
                or not self.tol >= 0):
            raise ValueError(f"tol={self.tol!r} should be a real number >= 0")
        l_factor = self.oversampling_factor
        if (isinstance(l_factor, bool) or not isinstance(l_factor, numbers.Real)
                or not 0 < l_factor < np.inf):
            raise ValueError(f"oversampling_factor={l_factor!r} should be a real number > 0")
        is_array = not isinstance(self.init, str)
        if not is_array and self.init not in _INITS:
            raise ValueError(f"init={self.init!r} should be 'k-means||', 'random' or an "
                             "array of shape (n_clusters, n_features)")
        if self.n_init == "auto":
            n_init = 10 if (not is_array and self.init == "random") else 1
        else:
            n_init = check_positive_int(self.n_init, "n_init")
            if is_array and n_init != 1:
                warnings.warn(f"explicit initial centers given: running 1 initialisation "
                              f"instead of n_init={n_init}", RuntimeWarning, stacklevel=4)
                n_init = 1
        return k, max_iter, n_init, rounds, float(l_factor)

    def _fit_backend(self, backend):
        k, max_iter, n_init, rounds, l_factor = self._check_params()
        n, mean, m2, wsum = backend.moments()
        if n == 0:
            raise ValueError("X has 0 samples; at least 1 is required")
        check_n_clusters(k, n)
        if not np.isfinite(wsum):
            raise ValueError("sample_weight sums to infinity; rescale the weights (only "
                             "their ratios matter)")
        if not wsum > 0:
            raise ValueError("sample_weight sums to 0; at least one sample needs a "
                             "positive weight")
        d, dtype = backend.n_features, backend.dtype
        shift = np.asarray(mean, dtype=np.float64)
        tol = tolerance(Moments(n, mean, m2 / n), self.tol)
        init_centers = None
        if not isinstance(self.init, str):
            init_centers = check_init_array(self.init, k, d, dtype)
        rng = check_random_state(self.random_state)
        best = None
        for run in range(n_init):
            seed = int(rng.randint(2**31 - 1))
            if init_centers is not None:
                centers0 = init_centers
            elif self.init == "k-means||":
                cands, weights = backend.kmeans_parallel(k, l_factor * k, rounds, seed,
                                                         shift)
                pad = backend.random_rows(k, seed + 1) if len(cands) < k else None
                centers0 = _distributed.recluster(cands, weights, k, seed, dtype, pad)
            else:
                centers0 = backend.random_rows(k, seed)
                if centers0.shape[0] < k:
                    raise ValueError(
                        f"init='random' needs at least n_clusters={k} samples with a "
                        f"positive weight, got {centers0.shape[0]}")
            if self.verbose:
                print(f"Initialization complete (run {run + 1} of {n_init})")
            out = _distributed.lloyd(backend, centers0, shift, max_iter, tol, dtype,
                                     self.verbose)
            if best is None or out[1] < best[1]:
                best = out
        centers, inertia, n_iter, stats = best
        self.cluster_centers_ = centers
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.iteration_stats_ = stats
        self.n_features_in_ = d
        self._shift = shift
        return self

    def _check_n_features(self, d):
        self._check_fitted()
        if d != self.n_features_in_:
            raise ValueError(f"X has {d} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")

    def to_local(self):
        """The fitted model as an in-memory ``kmaot.KMeans`` (for numpy arrays and
        .npy files: ``predict``, ``transform``, ``score``)."""
        self._check_fitted()
        km = _distributed.local_estimator(self.cluster_centers_, self._shift)
        km.n_threads = None
        km.inertia_, km.n_iter_ = self.inertia_, self.n_iter_
        km.iteration_stats_ = self.iteration_stats_
        return km
