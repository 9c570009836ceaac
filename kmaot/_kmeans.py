"""KMeans: the scikit-learn-compatible estimator over every kmaot data source."""
import numbers
import warnings

import numpy as np

from . import _kernels
from ._base import ParamsMixin
from ._checkpoint import Checkpoint, data_fingerprint, params_fingerprint
from ._engine import Engine
from ._init import kmeans_parallel, kmeans_plusplus, random_rows
from ._lloyd import _raise_nonfinite, assign_pass, lloyd, lloyd_pass, moments_pass, tolerance
from ._sources import as_source
from ._spherical import check_metric, normalize_centers, unit_source
from ._standardize import fit_standardizer, standardize, standardized
from ._validation import (check_init_and_n_init, check_init_array, check_n_clusters,
                          check_positive_int, check_random_state, check_sample_weight)


def _saver(ckpt, run, best, rng_state, moments):
    """lloyd's save hook: the run in progress every ckpt.every iterations."""
    def save(centers, stats):
        if len(stats) % ckpt.every == 0:
            ckpt.save(run, centers, stats, None if best is None else best[:4], rng_state,
                      moments)
    return save


class ConvergenceWarning(UserWarning):
    """Fewer distinct clusters than requested, or a similar sign of a poor fit."""


_ALGORITHMS = ("auto", "lloyd", "bounded")
#: predict() on at most this many rows of an array takes the direct path
_SMALL = 4096
#: predict's direct path looks these up as module globals: np.empty and np.ndarray as
#: attributes of np cost ~30 ns more per call (one row takes ~1.5 us in all)
_empty = np.empty
_ndarray = np.ndarray
_I4 = _kernels.I4
#: predict measures every center exactly (lowest latency) on as many rows as the
#: exact kernel's estimated time stays below the blocked kernel's (``_exact_rows``):
#: per row 0.05 us + 0.22 ns * k * d against 4.5 us + 30 ns * k per call, from kernel
#: calls on rows of fitted models (medians of 200, 2026-12-06; first row count where the
#: exact kernel took longer, and what the rule gives): d=32, k=64 16 (rule 12); d=64,
#: k=64 12 (6); d=16, k=256 20 (12); d=32, k=512 8 (5); d=128, k=1024 6 (4: 147 against
#: 174 us at 4 rows, 282 against 168 at 8); d=100, k=10 24 (17); d=16, k=32 64 (34);
#: d=8, k=8 64 (64); d=3, k=16 beyond 64 (64).  In a faster phase of the host minutes
#: earlier: d=32, k=64 3.6 against 3.7 us at 10 rows, 4.1 against 3.5 at 12
_EXACT_MIN_ROWS = 4
_EXACT_MAX_ROWS = 64


def _exact_rows(k, d):
    """The largest number of rows that predict measures exactly (see _EXACT_MIN_ROWS)."""
    n = int((4500.0 + 30.0 * k) / (50.0 + 0.22 * k * d))
    return max(_EXACT_MIN_ROWS, min(_EXACT_MAX_ROWS, n))


class CentersModel:
    """predict / transform / score of a fitted center model (KMeans, MiniBatchKMeans).

    Needs ``cluster_centers_``, ``n_features_in_``, ``_shift`` (float64 (d,): the
    point rows are shifted by in the fast kernels) and ``_metric`` set by ``fit``.
    """

    def _pass_batch_size(self):
        """Rows per batch of a pass over the data (None: the source's default)."""
        return None

    def _source_for_predict(self, X):
        """The source of X as the fitted model sees it (unit rows for metric='cosine')."""
        self._check_fitted()
        source = as_source(X)
        if source.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {source.n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input")
        if "mean_" in self.__dict__:
            source = standardized(source, self.mean_, self.scale_)
        if self._fitted_metric() == "cosine":
            source = unit_source(source)
        return source

    def _fitted_metric(self):
        """The metric of the fit (a loaded model has only its parameters)."""
        return self.__dict__.get("_metric", getattr(self, "metric", "euclidean"))

    def _prepared(self, dtype):
        return _kernels.Centers(self.cluster_centers_, self._shift, dtype)

    def _fast_predictor(self):
        """The direct path of ``predict`` for the fitted model: (cluster_centers_,
        mean_ and scale_ it was made for, then the fit dtype, d, the largest number of
        rows measured exactly, the exact kernel, the fast kernel, the prepared centers,
        their float64 copy transposed, as the exact kernel takes them).  The kernels
        are None where there is no direct path (metric='cosine').  Rebuilt by
        ``predict`` when cluster_centers_ or mean_ is replaced (fit and partial_fit
        also drop it); not stored while the model is not fitted."""
        attrs = self.__dict__
        centers = attrs.get("cluster_centers_")  # read once: another thread may replace it
        mean = attrs.get("mean_")
        scale = attrs.get("scale_")
        if centers is None:
            return (None, mean, scale, None, -1, 0, None, None, None, None)
        if self._fitted_metric() != "euclidean":
            fast = (centers, mean, scale, None, -1, 0, None, None, None, None)
        else:
            C = _kernels.Centers(centers, self._shift, centers.dtype)
            fast = (centers, mean, scale, C.dtype, C.d,
                    _exact_rows(C.k, C.d), _kernels._fn("nearest_exact", C.dtype),
                    _kernels._fn("assign_block", C.dtype), C, C.c64t)
        self._fast = fast
        return fast

    def predict(self, X):
        """Index of the nearest center of every row of X (array, memmap, path or paths).

        Returns ndarray of shape (n_samples,), int32.

        Small C-contiguous arrays of the fit dtype take a direct path into the compiled
        kernels (no thread pool, no copies): about 1.5-2.5 microseconds for one row
        (metric='euclidean'; with 'cosine' rows are normalised first).
        """
        attrs = self.__dict__
        fast = attrs.get("_fast")
        if (fast is None or fast[0] is not attrs.get("cluster_centers_")
                or fast[1] is not attrs.get("mean_")):
            fast = self._fast_predictor()
        if type(X) is _ndarray and X.ndim == 2:
            _, mean, scale, dtype, d, exact_rows, exact, fn, C, c64t = fast
            n, dx = X.shape
            if (dx == d and 0 < n <= _SMALL and (X.dtype is dtype or X.dtype == dtype)
                    and X.flags.c_contiguous):
                if mean is not None:
                    X = standardize(X, mean, scale, dtype)
                labels = _empty(n, _I4)  # a dtype object: 30 ns less than np.int32
                if n <= exact_rows:
                    # a few rows (_exact_rows): exact float64 distances, three kernel
                    # arguments
                    if exact(X, c64t, labels):  # rows with a non-finite distance
                        _kernels.raise_bad_rows(X, C)
                    return labels
                # no distances: the kernel's largest squared norm checks the rows
                if not _kernels.rows_ok(C, fn(X, C.shift, C.cs, C.half_csq, C.c64, labels,
                                              _kernels._EMPTY)):
                    _kernels.raise_bad_rows(X, C)
                return labels
        source = self._source_for_predict(X)
        labels = np.empty(source.n_samples, np.int32)
        self._assign(source, labels)
        return labels

    def _assign(self, source, labels):
        """Fill labels (an int32 ndarray of shape (n_samples,), possibly a view of a
        memory-mapped file) with the nearest center of every row of a source returned
        by ``_source_for_predict``."""
        n_threads = 1 if source.n_samples <= 8 * _SMALL else self.n_threads
        with Engine(n_threads) as engine:
            assign_pass(engine, source, self._prepared(source.dtype), labels,
                        batch_size=self._pass_batch_size())

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the labels of X (computed even for file inputs)."""
        self.fit(X, sample_weight=sample_weight)
        if hasattr(self, "labels_"):
            return self.labels_
        return self.predict(X)

    def transform(self, X):
        """Euclidean distance of every row to every center: (n_samples, n_clusters).

        metric='cosine': the cosine distance ``1 - cos`` of every row to every center.
        """
        source = self._source_for_predict(X)
        if self._fitted_metric() == "cosine":
            c = self.cluster_centers_.astype(np.float64)
            out = np.empty((source.n_samples, c.shape[0]), dtype=source.dtype)
            for s, Xb in source.batches(self._pass_batch_size()):
                np.subtract(1.0, Xb.astype(np.float64) @ c.T, out=out[s:s + Xb.shape[0]],
                            casting="unsafe")
            return out
        c = self.cluster_centers_.astype(np.float64) - self._shift
        csq = np.einsum("ij,ij->i", c, c)
        out = np.empty((source.n_samples, c.shape[0]), dtype=source.dtype)
        for s, Xb in source.batches(self._pass_batch_size()):
            xs = Xb.astype(np.float64) - self._shift
            d2 = np.einsum("ij,ij->i", xs, xs)[:, None] - 2.0 * (xs @ c.T) + csq
            if not np.isfinite(d2).all():
                _raise_nonfinite(source, s, Xb)
            np.sqrt(np.maximum(d2, 0.0), out=out[s:s + Xb.shape[0]], casting="unsafe")
        return out

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the inertia of X with respect to the fitted centers (for
        metric='cosine': of the sum of weighted cosine distances)."""
        source = self._source_for_predict(X)
        w = check_sample_weight(sample_weight, source.n_samples)
        with Engine(self.n_threads) as engine:
            res = lloyd_pass(engine, source, self._prepared(source.dtype), w,
                             batch_size=self._pass_batch_size())
        scale = 0.5 if self._fitted_metric() == "cosine" else 1.0
        return -scale * float(res.inertia[0])

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_fast", None)  # holds a compiled kernel: rebuilt on first predict
        return state


class KMeans(CentersModel, ParamsMixin):
    """K-means clustering (Lloyd's algorithm) on arrays, .npy files and .npy shards.

    The data is read batch by batch: sums and counts per center are accumulated over
    all batches and divided at the end, which is exactly the Lloyd iteration, so a fit
    of a file larger than memory gives the same result as a fit of the same array in
    memory, for every ``batch_size``.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {'auto', 'k-means++', 'k-means||', 'random'} or array, default='auto'
        Initial centers: greedy k-means++ (as scikit-learn), k-means|| (Bahmani et al.
        2012: a few passes over the data, each oversampling about 2 * n_clusters
        candidates, then the weighted candidates reclustered), ``n_clusters`` random
        rows, or an array of shape (n_clusters, n_features).  'auto' is k-means++ for
        in-memory arrays and k-means|| for .npy files and shards (paths): k-means++ makes
        two passes over the data per center, k-means|| six passes in all.
    n_init : 'auto' or int, default='auto'
        Number of initialisations; the run with the lowest inertia is kept.  'auto'
        means 10 for init='random' and 1 otherwise (scikit-learn's rule).
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Convergence tolerance on the squared center shift summed over clusters,
        relative to the mean per-feature variance of the data (scikit-learn's meaning).
        Iterations also stop when the centers do not move at all.
    verbose : int, default=0
        Print the inertia of every iteration.
    random_state : None, int or numpy.random.RandomState
        Seed for the initialisation.
    batch_size : int or None, default=None
        Rows read per batch.  None: the whole array for in-memory data, about 64 MiB of
        rows for files.  Results do not depend on it.
    n_threads : int or None, default=None
        Threads that run the kernels; None uses every core this process may run on.
        Results do not depend on it.
    compute_labels : 'auto' or bool, default='auto'
        Whether ``fit`` stores ``labels_`` (an int32 per row).  'auto' stores them for
        in-memory data and not for files, so that fitting a file needs memory
        independent of its number of rows; call ``predict`` on the file instead.
    metric : {'euclidean', 'cosine'}, default='euclidean'
        'cosine' is spherical k-means: rows and centers are normalised to unit length,
        rows go to the center of largest cosine similarity and every center is the
        normalised sum of its rows.  Rows of zeros are refused.  ``inertia_`` is then
        ``sum_i w_i (1 - cos(x_i, c_{label_i}))`` and ``transform`` returns cosine
        distances ``1 - cos``.
    algorithm : {'auto', 'lloyd', 'bounded'}, default='auto'
        How each Lloyd iteration finds the nearest centers; all three give the same
        result, bit for bit.  'lloyd' measures every row against every center.
        'bounded' keeps, per row, its label and lower bounds of the distance to the
        other centers and skips what provably cannot be the nearest center: far fewer
        distance computations once the centers settle.  Below 512 clusters it keeps
        Hamerly's single bound (12 bytes per row) and skips rows; from 512 clusters on,
        Yinyang's grouped bounds (Ding et al. 2015: the initial centers are split once
        into ``n_clusters // 10`` groups, one float32 bound per row and group,
        ``12 + 4 * (n_clusters // 10)`` bytes per row) and skips rows and groups of
        centers, unless those bounds would take more memory than the data itself
        (``4 * (n_clusters // 10) > n_features * itemsize``: Hamerly's then).
        'auto' is 'bounded' for in-memory arrays with at least 16 clusters, 'lloyd'
        otherwise: for files and memmaps memory must not grow with the number of rows,
        and with few clusters a full assignment costs about as much as the check.
    standardize : bool, default=False
        Scale every feature to mean 0 and standard deviation 1 before clustering (a
        feature with standard deviation 0 is only centered).  The mean and standard
        deviation are computed in one streaming pass over the data (unweighted) and
        applied batch by batch, so fitting a file stays memory bounded; ``predict``,
        ``transform`` and ``score`` apply the same scaling to their input.  Centers,
        inertia, distances and an ``init`` array are in the standardized space (as in a
        ``StandardScaler`` + ``KMeans`` pipeline): ``cluster_centers_ * scale_ +
        mean_`` gives the centers in the original units.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centers, in the dtype of the data (float32 or float64).
    labels_ : ndarray of shape (n_samples,), int32
        Index of the nearest center of every training row (see ``compute_labels``).
    inertia_ : float
        Weighted sum of squared distances of rows to their nearest center
        (metric='cosine': weighted sum of cosine distances ``1 - cos``).
    n_iter_ : int
        Lloyd iterations run (of the best initialisation).
    n_features_in_ : int
        Number of features seen in fit.
    iteration_stats_ : list of dict
        Per iteration of the best run: iteration, inertia (with respect to the centers
        at the start of the iteration), center_shift, n_empty, seconds.
    mean_, scale_ : ndarray of shape (n_features,), float64
        Only with ``standardize=True``: the per-feature mean and scale (standard
        deviation, or 1 where it is 0) of the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from kmaot import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=np.float32)
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_[:, 0].tolist())
    [1.0, 10.0]
    >>> km.predict(np.array([[0, 0], [12, 3]], dtype=np.float32)).tolist() == [
    ...     km.predict(X[:1])[0], km.predict(X[3:4])[0]]
    True
    """

    def __init__(self, n_clusters=8, *, init="auto", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, batch_size=None, n_threads=None,
                 compute_labels="auto", metric="euclidean", algorithm="auto",
                 standardize=False):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.compute_labels = compute_labels
        self.metric = metric
        self.algorithm = algorithm
        self.standardize = standardize

    def _pass_batch_size(self):
        return self.batch_size

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_samples):
        k = check_n_clusters(self.n_clusters, n_samples)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        if (isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real)
                or not self.tol >= 0):
            raise ValueError(f"tol={self.tol!r} should be a real number >= 0")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        _, n_init = check_init_and_n_init(self.init, self.n_init, 10)
        if self.compute_labels not in ("auto", True, False):
            raise ValueError(f"compute_labels={self.compute_labels!r} should be 'auto', "
                             "True or False")
        check_metric(self.metric)
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"algorithm={self.algorithm!r} should be one of "
                             + ", ".join(repr(a) for a in _ALGORITHMS))
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize={self.standardize!r} should be True or False")
        return k, max_iter, n_init

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None, *, callback=None, checkpoint=None,
            checkpoint_every=5):
        """Compute the clustering.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), np.memmap, path to a .npy file, or
            list of paths to .npy shards (read in order as one dataset).
            float32 data is computed in float32, float64 in float64, other real dtypes
            are converted to float64 (batch by batch for files).
        y : ignored
        sample_weight : array of shape (n_samples,), optional
            Weight of every row (a weight w counts as w repeated rows).
        callback : callable, optional
            Called after every Lloyd iteration with a dict: the entry of
            ``iteration_stats_`` plus ``run``, ``n_init``, ``max_iter``, ``tol``
            (absolute) and ``n_samples`` (the command line draws its progress bar
            with it).
        checkpoint : str or os.PathLike, optional
            A ``.npz`` file where the state of the fit is saved every
            ``checkpoint_every`` iterations and after every initialisation run, written
            atomically (temporary file, then rename).  If the file exists when ``fit``
            starts, the fit resumes from it and ends with exactly the result of an
            uninterrupted fit; a corrupt checkpoint, or one written for other data or
            other parameters, is refused with ValueError.  The file is removed when the
            fit completes.  ``batch_size``, ``n_threads``, ``algorithm`` and ``verbose``
            may differ between the interrupted and the resumed fit.
        checkpoint_every : int, default=5
            Lloyd iterations between two saves of the checkpoint.

        Returns
        -------
        self
        """
        source = as_source(X)
        n, d = source.n_samples, source.n_features
        k, max_iter, n_init = self._check_params(n)
        w = check_sample_weight(sample_weight, n)
        dtype = source.dtype
        spherical = self.metric == "cosine"
        init_centers = None
        if not isinstance(self.init, str):
            init_centers = check_init_array(self.init, k, d, dtype)
            if spherical:
                init_centers = normalize_centers(init_centers, dtype)
        init = self.init
        if isinstance(init, str) and init == "auto":
            init = "k-means++" if source.in_memory else "k-means||"
        if init_centers is None or checkpoint is not None or self.random_state is not None:
            rng = check_random_state(self.random_state)
        else:  # nothing random to do: numpy.random is not even imported (cold start)
            rng = None
        keep_labels = (self.compute_labels is True
                       or (self.compute_labels == "auto" and source.in_memory))
        ckpt, resume = None, None
        if checkpoint is not None:
            fingerprint = params_fingerprint(self, k, n_init, dtype, w)
            if isinstance(init, str):  # what decides the result: 'auto' resolved
                fingerprint["init"] = init
            fingerprint["metric"] = self.metric
            ckpt = Checkpoint(checkpoint, fingerprint, data_fingerprint(source),
                              checkpoint_every)
            resume = ckpt.load()

        use_bounds = (self.algorithm == "bounded"
                      or (self.algorithm == "auto" and source.in_memory and k >= 16))

        with Engine(self.n_threads) as engine:
            if self.standardize:
                mean, scale = fit_standardizer(engine, source, self.batch_size)
                source = standardized(source, mean, scale)
            if spherical:  # after standardizing, as in predict
                source = unit_source(source)
            moments = moments_pass(engine, source, self.batch_size)
            shift = moments.mean
            tol = tolerance(moments, self.tol)
            best, first_run = None, 0
            if resume is not None:
                ckpt.check_moments(resume, moments)
                if rng is np.random.mtrand._rand:  # random_state=None: leave the global
                    rng = np.random.RandomState()  # generator alone
                rng.set_state(resume.rng_state)
                first_run = resume.run
                if resume.best is not None:
                    best = resume.best + (None,)  # labels recomputed below if needed
            for run in range(first_run, n_init):
                prior_stats = None
                if resume is not None and run == resume.run and resume.centers is not None:
                    centers0, prior_stats = resume.centers, resume.stats
                elif init_centers is not None:
                    centers0 = init_centers
                elif init == "k-means++":
                    centers0, _ = kmeans_plusplus(engine, source, k, rng, w, shift, dtype,
                                                  batch_size=self.batch_size)
                elif init == "k-means||":
                    centers0, _ = kmeans_parallel(engine, source, k, rng, w, shift, dtype,
                                                  batch_size=self.batch_size,
                                                  spherical=spherical)
                else:
                    centers0, _ = random_rows(source, k, rng, w, dtype)
                if self.verbose:
                    print(f"Initialization complete ({init if isinstance(init, str) else 'array'}, "
                          f"run {run + 1} of {n_init})")
                save = None
                if ckpt is not None:
                    save = _saver(ckpt, run, best, rng.get_state(), moments)
                labels = np.empty(n, np.int32) if keep_labels else None
                cb = None
                if callback is not None:
                    extra = {"run": run + 1, "n_init": n_init, "max_iter": max_iter,
                             "tol": tol, "n_samples": n}
                    cb = lambda st, extra=extra: callback({**st, **extra})  # noqa: E731
                centers, inertia, n_iter, stats = lloyd(
                    engine, source, centers0, w, shift, max_iter, tol, dtype,
                    labels_out=labels, batch_size=self.batch_size, verbose=self.verbose,
                    use_bounds=use_bounds, callback=cb, stats=prior_stats, save=save,
                    spherical=spherical)
                if best is None or inertia < best[1]:
                    best = (centers, inertia, n_iter, stats, labels)
                if ckpt is not None and run + 1 < n_init:
                    ckpt.save(run + 1, None, [], best[:4], rng.get_state(), moments)
            if keep_labels and best[4] is None:  # the best run finished before a resume
                labels = np.empty(n, np.int32)
                assign_pass(engine, source, _kernels.Centers(best[0], shift, dtype), labels,
                            batch_size=self.batch_size)
                best = best[:4] + (labels,)

        centers, inertia, n_iter, stats, labels = best
        self.cluster_centers_ = centers
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.iteration_stats_ = stats
        self.n_features_in_ = d
        self._shift = np.asarray(shift, dtype=np.float64)
        self._metric = self.metric
        self.__dict__.pop("_fast", None)
        if self.standardize:
            self.mean_, self.scale_ = mean, scale
        else:
            self.__dict__.pop("mean_", None)
            self.__dict__.pop("scale_", None)
        if labels is not None:
            self.labels_ = labels
            # bincount, not np.unique: np.unique imports numpy.ma (~30 ms at cold start)
            n_distinct = int(np.count_nonzero(np.bincount(labels, minlength=k)))
        else:
            self.__dict__.pop("labels_", None)
            n_distinct = k
        if n_distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({k}). Possibly due to duplicate points in X.",
                ConvergenceWarning, stacklevel=2)
        if ckpt is not None:
            ckpt.remove()
        return self

    # ------------------------------------------------------------ persistence
    #: private fitted state that ``save`` stores besides the public attributes
    _saved_private = ("_shift",)

    def save(self, path):
        """Write the fitted model to ``path``: a versioned ``.npz`` (centers, parameters,
        standardization, fit statistics, kmaot version) that ``kmaot.load`` reads back
        without pickle.  ``labels_`` is not stored.

        Examples
        --------
        >>> km.save("model.npz")                        # doctest: +SKIP
        >>> kmaot.load("model.npz").predict(X)          # doctest: +SKIP
        """
        from ._io import save

        save(self, path)
