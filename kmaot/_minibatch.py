"""MiniBatchKMeans: k-means on random mini-batches (Sculley 2010), scikit-learn's API.

Every step draws ``batch_size`` rows at random (with replacement, with probability
proportional to ``sample_weight``), assigns them with the Lloyd assignment kernel and
moves every center that received rows to the running weighted mean of all the rows it
ever received (the ``minibatch_update`` kernel).  Sources are those of KMeans: arrays,
memmaps, ``.npy`` files and shards; files are never loaded (a step reads its rows
through the memory map), so memory does not grow with n_samples.

Small batches with few centers (``_kernels.fused_step_applies``) take one compiled call
per step (``minibatch_step``): exact assignment and update, the rows read in place
through their indices; on in-memory data of at most ``_BOUNDS_MAX_BATCHES`` batches it
also keeps per-row bounds that skip the search of rows whose nearest center cannot
have changed.  Other steps gather the rows, assign them (``assign_small``) and update
(``minibatch_update``); all paths give the same labels.  k-means++ runs on an
``init_size`` sample, read in place too (``kmeans_plusplus_sample``).
"""
import math
import numbers
import warnings

import numpy as np

from . import _kernels
from ._base import ParamsMixin
from ._engine import Engine
from ._init import _first_row, kmeans_parallel, random_rows
from ._kmeans import CentersModel, ConvergenceWarning
from ._lloyd import lloyd_pass, moments_pass, tolerance
from ._sources import ArraySource, as_source
from ._spherical import check_metric, normalize_centers, unit_source
from ._validation import (check_init_and_n_init, check_init_array, check_n_clusters, check_positive_int,
                          check_random_state, check_sample_weight)

F8 = np.float64


#: passes over at most this many rows run on one thread
_SMALL_PASS = 32768
#: the fused step keeps per-row bounds (36 bytes a row) when n_samples is at most this
#: many batches: rows then come back often enough for their bounds to stay useful
_BOUNDS_MAX_BATCHES = 64


def kmeans_plusplus_sample(X, n_clusters, random_state, sample=None, sample_weight=None):
    """Greedy k-means++ on a small sample of rows of X, read in place: ``X[sample]``
    (sample: int64 row indices, with repeats, or None for all of X).  X (N, d) float32
    or float64, C-contiguous, finite.  Returns (centers (n_clusters, d) of X's dtype,
    their indices in the sample).

    The algorithm and random draws of ``tests/reference.kmeans_plusplus_in_memory`` on
    ``X[sample]`` (scikit-learn's local trials), with one compiled call per round
    (``kpp_candidates``: the trials' exact float64 distances, their minimum with the
    closest and their potentials) instead of a matrix product and several NumPy passes,
    and without gathering the sample.  On digits (1,797 x 64, k=10) the NumPy version
    took ~1.5 ms plus ~0.6 ms to gather the sample inside a fit (page faults of a fresh
    0.9 MB array); this one ~1 ms.
    """
    if sample is None:
        sample = np.arange(X.shape[0], dtype=np.int64)
    n = sample.shape[0]
    n_local_trials = 2 + int(np.log(n_clusters))
    w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=F8)
    first = _first_row(random_state, n, w)
    d2 = np.empty((n_local_trials, n))
    pots = np.empty(n_local_trials)
    _kernels.kpp_candidates(X, sample, np.array([first], np.int64), np.full(n, np.inf), w,
                            d2[:1], pots[:1])
    closest = d2[0].copy()
    pot = float(pots[0])
    indices = [first]
    for _ in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        # _init._weighted_search in one chunk (the same indices up to 2**20 rows)
        cum = np.cumsum(closest if w is None else closest * w)
        cand = np.minimum(np.searchsorted(cum, rand_vals, side="right"), n - 1).astype(
            np.int64, copy=False)
        _kernels.kpp_candidates(X, sample, cand, closest, w, d2, pots)
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest[:] = d2[best]
        indices.append(int(cand[best]))
    idx = np.asarray(indices)
    return np.ascontiguousarray(X[sample[idx]]), idx


class _Sampler:
    """Draws row indices with replacement, with probability proportional to the
    sample weights (uniformly without them), sorted (so that a memory-mapped file is
    read in order), as int64 (what the step kernel takes).

    With integer weights, fitting (X, w) draws exactly the rows that fitting
    ``np.repeat(X, w, axis=0)`` draws (mapped back to X), from the same random
    numbers: u * sum(w) falls in row i's interval [cumsum(w)[i-1], cumsum(w)[i])
    exactly when floor(u * sum(w)) is one of row i's copies.
    """

    def __init__(self, n, sample_weight):
        self.n = n
        self._cum = None if sample_weight is None else np.cumsum(sample_weight)

    def draw(self, rng, size):
        u = rng.random_sample(size)
        # sorted as int32 when the rows fit (measured 3.7 us against 9.8 us for 1,024
        # int64 indices), returned as int64
        itype = np.int32 if self.n < 2**31 else np.int64
        if self._cum is None:
            idx = (u * self.n).astype(itype)
        else:
            idx = np.searchsorted(self._cum, u * self._cum[-1], side="right").astype(itype)
        np.minimum(idx, self.n - 1, out=idx)
        idx.sort()
        return idx.astype(np.int64, copy=False)


class MiniBatchKMeans(CentersModel, ParamsMixin):
    """Mini-batch k-means on arrays, .npy files and .npy shards (scikit-learn's API).

    Parameters
    ----------
    n_clusters : int, default=8
    init : {'auto', 'k-means++', 'k-means||', 'random'} or array, default='auto'
        'k-means++' and 'random' run on ``init_size`` rows drawn at random (in memory);
        'k-means||' makes its few passes over all the data; 'auto' is 'k-means++'
        (on the sample: it needs no pass over the data, whatever the source).  An
        array of shape (n_clusters, n_features) gives the centers.
    max_iter : int, default=100
        Maximum number of passes over the data: at most
        ``max_iter * n_samples // batch_size`` steps.
    batch_size : int, default=1024
        Rows per mini-batch.
    verbose : int, default=0
    compute_labels : 'auto' or bool, default='auto'
        True: after fitting, one pass over the data computes ``labels_`` and the exact
        ``inertia_``.  'auto': the same for in-memory data; for files the pass computes
        the exact ``inertia_`` without storing a label per row.  False: no pass;
        ``inertia_`` is then the smoothed mini-batch estimate (scikit-learn's rule).
    random_state : None, int or numpy.random.RandomState
    tol : float, default=0.0
        Stop when the squared move of the centers in a step, summed over centers, is
        <= tol times the mean per-feature variance (0 disables; the variance comes
        from the streaming pass ``fit`` always makes first, which also checks that
        every value is finite).
    max_no_improvement : int or None, default=10
        Stop after this many steps without improvement of the smoothed batch inertia
        (None disables).
    init_size : int or None, default=None
        Rows drawn for 'k-means++' and 'random' initialisation, and for the validation
        set that compares the ``n_init`` initialisations.  None: 3 * batch_size (at
        least 3 * n_clusters), at most n_samples.
    n_init : 'auto' or int, default='auto'
        Initialisations compared on the validation set; 'auto': 3 for 'random', 1
        otherwise (scikit-learn's rule).
    reassignment_ratio : float, default=0.01
        Centers whose count is below this fraction of the largest count are moved to
        random rows of the batch (every ``10 * n_clusters`` rows seen, or at once when
        a center has none).
    metric : {'euclidean', 'cosine'}, default='euclidean'
        'cosine': spherical mini-batch k-means; rows are normalised to unit length,
        every center is the normalised running mean of its rows and inertia is
        ``sum_i w_i (1 - cos)`` (see KMeans).
    n_threads : int or None, default=None
        Threads for the passes over the whole data (validation, labels, inertia).

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), the data dtype
    labels_ : ndarray (n_samples,), int32 (see ``compute_labels``)
    inertia_ : float
    n_iter_ : int
        Passes over the data: ceil(n_steps_ * batch_size / n_samples).
    n_steps_ : int
        Mini-batch steps run.
    counts_ : ndarray (n_clusters,), float64
        Weight received by every center over all steps (the learning rate of center j
        in a step is the weight it receives divided by ``counts_[j]``).  In ``fit``
        rows are drawn in proportion to their weight and count 1 each; in
        ``partial_fit`` a row counts its weight.
    n_features_in_ : int

    Notes
    -----
    Weighted rows behave as repeated rows: with integer weights and the same
    ``random_state``, ``fit(X, sample_weight=w)`` gives exactly the centers of
    ``fit(np.repeat(X, w, axis=0))`` (scikit-learn's issue #30750).
    """

    def __init__(self, n_clusters=8, *, init="auto", max_iter=100, batch_size=1024,
                 verbose=0, compute_labels="auto", random_state=None, tol=0.0,
                 max_no_improvement=10, init_size=None, n_init="auto",
                 reassignment_ratio=0.01, metric="euclidean", n_threads=None):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.metric = metric
        self.n_threads = n_threads

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_samples):
        k = check_n_clusters(self.n_clusters, n_samples)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        batch = min(check_positive_int(self.batch_size, "batch_size"), n_samples)
        _check_real(self.tol, "tol")
        _check_real(self.reassignment_ratio, "reassignment_ratio")
        if self.max_no_improvement is not None:
            check_positive_int(self.max_no_improvement, "max_no_improvement", minimum=0)
        _, n_init = check_init_and_n_init(self.init, self.n_init, 3)
        if self.init_size is None:
            init_size = 3 * batch
            if init_size < k:
                init_size = 3 * k
        else:
            init_size = check_positive_int(self.init_size, "init_size")
            if init_size < k:
                warnings.warn(f"init_size={init_size} should be larger than "
                              f"n_clusters={k}; using 3 * n_clusters", RuntimeWarning,
                              stacklevel=3)
                init_size = 3 * k
        init_size = min(init_size, n_samples)
        if self.compute_labels not in ("auto", True, False):
            raise ValueError(f"compute_labels={self.compute_labels!r} should be 'auto', "
                             "True or False")
        check_metric(self.metric)
        return k, max_iter, batch, n_init, init_size

    # ------------------------------------------------------------ the pieces
    def _initial_centers(self, engine, source, X_init, k, rng, w, shift, dtype, init_array,
                         spherical, batch_size=None, init_rows=None):
        """One initialisation: centers of dtype, unit rows for metric='cosine'.  The
        init sample is X_init[init_rows] (init_rows None: all of X_init)."""
        if init_array is not None:
            return init_array
        init = "k-means++" if self.init == "auto" else self.init
        if init == "k-means||":
            centers, _ = kmeans_parallel(engine, source, k, rng, w, shift, dtype,
                                         batch_size=batch_size, spherical=spherical)
        elif init == "k-means++":
            centers, _ = kmeans_plusplus_sample(X_init, k, rng, init_rows)
        else:
            if init_rows is not None:
                X_init = X_init[init_rows]
            centers, _ = random_rows(ArraySource(X_init), k, rng, None, dtype)
        return centers

    def _reset_state(self, centers, k, d):
        self._means = np.array(centers, dtype=F8)  # running means (unnormalised)
        self.counts_ = np.zeros(k)
        self._sums = np.zeros((k, d))
        self._batch_w = np.zeros(k)
        self._n_since_last_reassign = 0

    def _assign_centers(self):
        """Centers as the assignment kernel sees them (unit length for cosine)."""
        if self._metric == "cosine":
            return normalize_centers(self._means, self._dtype, fallback=self._prev_centers)
        return np.ascontiguousarray(self._means, dtype=self._dtype)

    def _fill_assign_centers(self, c64):
        """c64 (k, d) float64 <- _assign_centers() (rounded to the data dtype, like the
        centers the other kernels get), without the intermediate copies when possible."""
        if self._metric == "cosine":
            centers = self._assign_centers()
            self._prev_centers = centers
            np.copyto(c64, centers)
        elif self._dtype == F8:
            np.copyto(c64, self._means)
        else:
            np.copyto(c64, self._means.astype(self._dtype))

    def _random_reassign(self, batch_rows):
        """scikit-learn's schedule: every 10 * n_clusters rows seen, or when a center
        has received nothing yet."""
        self._n_since_last_reassign += batch_rows
        if (self._n_since_last_reassign >= 10 * self.counts_.shape[0]
                or (self.counts_ == 0).any()):
            self._n_since_last_reassign = 0
            return True
        return False

    def _step(self, X, rows, w, rng, fused=None, buf=None):
        """One mini-batch step on the rows X[rows] (rows: int64 indices, or None for all
        rows of X in order; weights w or None): returns (the batch inertia with respect
        to the centers before the step, squared center move).

        fused: a ``_kernels.MinibatchStep`` on this model's state (small batches, few
        centers: one kernel call reads the rows in place), or None: the rows are
        gathered (into buf when given) and assigned by ``assign_small``, then
        ``minibatch_update``.
        """
        if fused is not None:
            idx = np.arange(X.shape[0], dtype=np.int64) if rows is None else rows
            self._fill_assign_centers(fused.c64)
            inertia, moved = fused(X, idx, w)
            if not math.isfinite(inertia):  # centers left untouched
                raise ValueError(_nonfinite_message(X[idx]))
            m = idx.shape[0]
        else:
            if rows is None:
                Xb = X
            elif buf is not None:
                Xb = np.take(X, rows, axis=0, out=buf, mode="clip")  # rows are in range
            else:
                Xb = X[rows]
            m = Xb.shape[0]
            centers = self._assign_centers()
            self._prev_centers = centers
            C = _kernels.Centers(centers, self._shift, self._dtype)
            labels = np.empty(m, np.int32)
            mind = np.empty(m)
            _kernels.assign_small(Xb, C, labels, mind)
            inertia = float(mind.sum() if w is None else mind @ w)
            if not math.isfinite(inertia):
                raise ValueError(_nonfinite_message(Xb))
            moved = _kernels.minibatch_update(Xb, w, labels, self._means, self.counts_,
                                              self._sums, self._batch_w)
        if self._random_reassign(m) and self.reassignment_ratio > 0:
            self._reassign(X, rows, w, rng)
        if self._metric == "cosine":
            inertia *= 0.5
        return inertia, moved

    def _reassign(self, X, rows, w, rng):
        counts = self.counts_
        threshold = self.reassignment_ratio * counts.max()
        if not counts.min() < threshold:  # the common case: nothing to do, no random draw
            return
        to_reassign = counts < threshold
        m = X.shape[0] if rows is None else rows.shape[0]
        if to_reassign.sum() > 0.5 * m:  # at most half a batch of new centers
            to_reassign[np.argsort(counts, kind="stable")[int(0.5 * m):]] = False
        n_re = int(to_reassign.sum())
        if w is not None:
            n_re = min(n_re, int(np.count_nonzero(w)))
            to_reassign[np.flatnonzero(to_reassign)[n_re:]] = False
        if n_re == 0 or to_reassign.all():
            return
        p = None if w is None else w / w.sum()
        picked = rng.choice(m, size=n_re, replace=False, p=p)
        self._means[to_reassign] = X[picked if rows is None else rows[picked]]
        # not reset to 0: that would make them reassigned again at once (sklearn)
        counts[to_reassign] = counts[~to_reassign].min()
        if self.verbose:
            print(f"[MiniBatchKMeans] Reassigning {n_re} cluster centers.")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering from random mini-batches of X.

        Parameters
        ----------
        X : array (n_samples, n_features), np.memmap, path to a .npy file, or list of
            paths to .npy shards.  Files are read through a memory map, never loaded.
        y : ignored
        sample_weight : array of shape (n_samples,), optional
            Rows are drawn with probability proportional to their weight, so that a
            weight w acts as w repeated rows.

        Returns
        -------
        self
        """
        source = as_source(X)
        n, d = source.n_samples, source.n_features
        k, max_iter, batch, n_init, init_size = self._check_params(n)
        w = check_sample_weight(sample_weight, n)
        dtype = source.dtype
        spherical = self.metric == "cosine"
        init_array = None
        if not isinstance(self.init, str):
            init_array = check_init_array(self.init, k, d, dtype)
            if spherical:
                init_array = normalize_centers(init_array, dtype)
        if spherical:
            source = unit_source(source)
        rng = check_random_state(self.random_state)
        keep_labels = (self.compute_labels is True
                       or (self.compute_labels == "auto" and source.in_memory))
        exact_inertia = self.compute_labels is True or self.compute_labels == "auto"
        self._metric = self.metric
        self._dtype = dtype

        # a few thousand rows: a thread pool costs more than it saves (same results)
        n_threads = 1 if n <= _SMALL_PASS else self.n_threads
        with Engine(n_threads) as engine:
            # one streaming pass: every value finite, the shift of the fast kernels,
            # the scale of tol
            moments = moments_pass(engine, source)
            self._shift = np.asarray(moments.mean, dtype=F8)
            tol = tolerance(moments, self.tol)
            sampler = _Sampler(n, w)
            valid_rows = sampler.draw(rng, init_size)  # drawn even when unused: same stream
            # one initialisation and nothing to print: no validation set to compare on
            X_valid = source.take(valid_rows) if n_init > 1 or self.verbose else None
            # in-memory rows are read in place (init sample, fused step) or gathered into
            # one buffer reused by every step; other sources are read batch by batch
            X_all = source._arr if isinstance(source, ArraySource) and source.in_memory else None
            best = None
            for run in range(n_init):
                X_init = init_rows = None
                if init_array is None and self.init != "k-means||":
                    init_rows = sampler.draw(rng, init_size)
                    if X_all is not None:
                        X_init = X_all
                    else:
                        X_init, init_rows = source.take(init_rows), None
                centers = self._initial_centers(engine, source, X_init, k, rng, w,
                                                self._shift, dtype, init_array, spherical,
                                                init_rows=init_rows)
                if X_valid is None:
                    best = (centers, None)
                    continue
                C = _kernels.Centers(centers, self._shift, dtype)
                mind = np.empty(init_size)
                _kernels.assign_small(X_valid, C, np.empty(init_size, np.int32), mind)
                inertia = float(mind.sum())
                if self.verbose:
                    print(f"Inertia for init {run + 1}/{n_init}: {inertia}")
                if best is None or inertia < best[1]:
                    best = (centers, inertia)

            self._reset_state(best[0], k, d)
            fused = None
            if _kernels.fused_step_applies(batch, k):
                keep_bounds = X_all is not None and n <= _BOUNDS_MAX_BATCHES * batch
                fused = _kernels.MinibatchStep(dtype, self._means, self.counts_,
                                               X=X_all if keep_bounds else None)
            buf = (np.empty((batch, d), dtype=dtype)
                   if X_all is not None and fused is None else None)
            self._prev_centers = np.ascontiguousarray(best[0], dtype=dtype)
            ewa = ewa_min = None
            no_improvement = 0
            n_steps = max(1, (max_iter * n) // batch)
            alpha = min(1.0, batch * 2.0 / (n + 1))
            step = 0
            for step in range(1, n_steps + 1):
                rows = sampler.draw(rng, batch)
                if X_all is not None:
                    batch_inertia, moved = self._step(X_all, rows, None, rng, fused, buf)
                else:
                    batch_inertia, moved = self._step(source.take(rows), None, None, rng,
                                                      fused)
                batch_inertia /= batch
                if step == 1:  # the inertia of the initialisation: not smoothed
                    if self.verbose:
                        print(f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                              f"{batch_inertia}")
                    continue
                ewa = batch_inertia if ewa is None else ewa * (1 - alpha) + batch_inertia * alpha
                if self.verbose:
                    print(f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                          f"{batch_inertia}, ewa inertia: {ewa}")
                if tol > 0.0 and moved <= tol:
                    if self.verbose:
                        print(f"Converged (small centers change) at step {step}/{n_steps}")
                    break
                if ewa_min is None or ewa < ewa_min:
                    no_improvement, ewa_min = 0, ewa
                else:
                    no_improvement += 1
                if (self.max_no_improvement is not None
                        and no_improvement >= self.max_no_improvement):
                    if self.verbose:
                        print("Converged (lack of improvement in inertia) at step "
                              f"{step}/{n_steps}")
                    break

            self.cluster_centers_ = self._assign_centers()
            self.n_steps_ = step
            self.n_iter_ = int(math.ceil(step * batch / n))
            self.n_features_in_ = d
            self.__dict__.pop("_fast", None)
            self.__dict__.pop("labels_", None)
            if exact_inertia:
                labels = np.empty(n, np.int32) if keep_labels else None
                C = _kernels.Centers(self.cluster_centers_, self._shift, dtype)
                res = lloyd_pass(engine, source, C, w, labels_out=labels)
                self.inertia_ = (0.5 if spherical else 1.0) * float(res.inertia[0])
                if labels is not None:
                    self.labels_ = labels
            else:
                w_total = float(n if w is None else w.sum())
                self.inertia_ = (ewa if ewa is not None else batch_inertia) * w_total
        self._warn_if_degenerate(k)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch step on X (all of its rows, weighted by sample_weight).

        X may be any batch: an array, a .npy path or shards (read into memory as one
        batch).  The first call initialises the centers from this batch; feed batches
        from a generator with ``for Xb in gen: model.partial_fit(Xb)``.

        Returns
        -------
        self
        """
        source = as_source(X)
        has_centers = "cluster_centers_" in self.__dict__
        m, d = source.n_samples, source.n_features
        if has_centers and d != self.n_features_in_:
            raise ValueError(f"X has {d} features, but MiniBatchKMeans is expecting "
                             f"{self.n_features_in_} features as input")
        w = check_sample_weight(sample_weight, m)
        if not has_centers:
            k, _, _, _, init_size = self._check_params(m)
            self._metric = self.metric
            self._dtype = source.dtype
        dtype = self._dtype
        if self._metric == "cosine":
            source = unit_source(source)
        Xb = np.ascontiguousarray(source.take(np.arange(m)), dtype=dtype)
        if not np.isfinite(Xb).all():
            raise ValueError(_nonfinite_message(Xb))
        if not has_centers:
            self._random_state = check_random_state(self.random_state)
            init_array = None
            if not isinstance(self.init, str):
                init_array = check_init_array(self.init, k, d, dtype)
                if self._metric == "cosine":
                    init_array = normalize_centers(init_array, dtype)
            self._shift = Xb.astype(F8).mean(axis=0)
            sampler = _Sampler(m, w)
            init_rows = sampler.draw(self._random_state, init_size)
            with Engine(1) as one:
                centers = self._initial_centers(
                    one, ArraySource(Xb), Xb, k, self._random_state, w, self._shift,
                    dtype, init_array, self._metric == "cosine", init_rows=init_rows)
            self._reset_state(centers, k, d)
            self._prev_centers = np.ascontiguousarray(centers, dtype=dtype)
            self.n_steps_ = 0
            self.n_features_in_ = d
        fused = (_kernels.MinibatchStep(dtype, self._means, self.counts_)
                 if _kernels.fused_step_applies(m, self._means.shape[0]) else None)
        self._step(Xb, None, w, self._random_state, fused)
        self.cluster_centers_ = self._assign_centers()
        self.__dict__.pop("_fast", None)
        self.n_steps_ += 1
        if self.compute_labels is not False:
            C = _kernels.Centers(self.cluster_centers_, self._shift, dtype)
            labels = np.empty(m, np.int32)
            mind = np.empty(m)
            _kernels.assign_small(Xb, C, labels, mind)
            self.labels_ = labels
            self.inertia_ = ((0.5 if self._metric == "cosine" else 1.0)
                             * float(mind.sum() if w is None else mind @ w))
        return self

    def _warn_if_degenerate(self, k):
        labels = self.__dict__.get("labels_")
        if labels is not None:
            n_distinct = np.unique(labels).size
            if n_distinct < k:
                warnings.warn(
                    f"Number of distinct clusters ({n_distinct}) found smaller than "
                    f"n_clusters ({k}). Possibly due to duplicate points in X.",
                    ConvergenceWarning, stacklevel=3)


def _check_real(value, name):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not value >= 0 or not math.isfinite(value)):
        raise ValueError(f"{name}={value!r} should be a finite real number >= 0")


def _nonfinite_message(Xb):
    bad = np.flatnonzero(~np.isfinite(Xb).all(axis=1))
    if bad.size == 0:
        return "values of X are too large: their squared distances overflow float64"
    return (f"X contains NaN or infinity (first at row {int(bad[0])} of the batch); "
            "remove or impute those values before clustering")
