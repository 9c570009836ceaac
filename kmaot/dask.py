"""k-means on Dask arrays and Dask DataFrames, with kmaot's compiled kernels.

Every block of rows runs kmaot's kernels where it lives (a Dask task) and returns
(sums, counts, inertia); a fixed tree of additions combines the blocks' results:
one round trip to the cluster per Lloyd iteration.  k-means|| (Bahmani et al. 2012)
runs distributed as well, its rounds in a single task graph.

Install with ``pip install 'kmaot[dask]'``.  The workers need kmaot installed (numpy
is all it needs there).
"""
try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("kmaot.dask needs dask: pip install 'kmaot[dask]' "
                      "(or pip install 'dask[distributed]')") from exc

import numpy as np

from . import _distributed as _dist
from ._scaleout import ScaleOutKMeans
from ._validation import check_positive_int, check_sample_weight, compute_dtype

__all__ = ["KMeans"]


def _is_dask_dataframe(X):
    mod = type(X).__module__ or ""
    if not (mod.startswith("dask") and hasattr(X, "to_dask_array")):
        return False
    return hasattr(X, "columns")


def _as_dask_array(X, what="X"):
    """A 2-D dask array with known row chunks and a single column chunk."""
    if _is_dask_dataframe(X):
        for name, dt in X.dtypes.items():
            if not (isinstance(dt, np.dtype) and dt.kind in "fiu"):
                raise TypeError(
                    f"{what}: column {name!r} has dtype {dt}; kmaot needs numeric columns "
                    "(select them, e.g. df[[...]], or convert with astype('float64'))")
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        raise TypeError(
            f"{what} must be a dask.array.Array or a dask DataFrame of numeric columns, "
            f"got {type(X).__name__} (use kmaot.KMeans for in-memory arrays and .npy "
            "files, or wrap them with dask.array.from_array)")
    compute_dtype(X.dtype, what)
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_samples, n_features), got ndim={X.ndim}")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.shape[1] == 0:
        raise ValueError(f"{what} has 0 features; at least 1 is required")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X


def _tree(parts, combine, split_every, *extra):
    """Combine delayed results in a fixed tree (fan-in split_every), in order."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [dask.delayed(combine, pure=True)(*extra, *parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _third(t):
    return t[2]


class _DaskBackend:
    """Runs the chunk functions of ``_distributed`` on every block; one compute each."""

    def __init__(self, X, sample_weight, split_every):
        self.X = X
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        self.dtype = compute_dtype(X.dtype)
        self.split_every = split_every
        self.blocks = X.to_delayed().ravel().tolist()
        self.offsets = [int(o) for o in np.cumsum((0,) + X.chunks[0])[:-1]]
        self.w_blocks = [None] * len(self.blocks)
        if sample_weight is not None:
            self.w_blocks = _weight_blocks(sample_weight, X)

    def _each(self, fn, *args, with_offset=True):
        return [dask.delayed(fn, pure=True)(b, w, self.dtype, *args,
                                            *((off,) if with_offset else ()))
                for b, w, off in zip(self.blocks, self.w_blocks, self.offsets)]

    def moments(self):
        return dask.compute(_tree(self._each(_dist.chunk_moments), _dist.combine_moments,
                                  self.split_every))[0]

    def lloyd_pass(self, centers, shift):
        c = dask.delayed(np.asarray(centers), pure=True)
        s = dask.delayed(np.asarray(shift), pure=True)
        root = _tree(self._each(_dist.chunk_lloyd, c, s), _dist.combine_sums,
                     self.split_every)
        return dask.compute(root)[0]

    def farthest(self, centers, shift, n):
        c = dask.delayed(np.asarray(centers), pure=True)
        s = dask.delayed(np.asarray(shift), pure=True)
        root = _tree(self._each(_dist.chunk_farthest, c, s, n), _dist.combine_farthest,
                     self.split_every, n)
        return dask.compute(root)[0]

    def _topk(self, k, seed, purpose):
        parts = [dask.delayed(_dist.chunk_topk_keys, pure=True)(
                     b, w, self.dtype, k, [seed, purpose, i], off)
                 for i, (b, w, off) in enumerate(zip(self.blocks, self.w_blocks,
                                                     self.offsets))]
        return _tree(parts, _dist.combine_topk, self.split_every, k)

    def random_rows(self, k, seed):
        return dask.compute(self._topk(k, seed, 1))[0][2]

    def kmeans_parallel(self, k, l, rounds, seed, shift):
        """Candidates and their weights, all rounds in one graph (one round trip)."""
        dl = dask.delayed
        dt = self.dtype
        s = dl(np.asarray(shift), pure=True)
        new = dl(_third, pure=True)(self._topk(1, seed, 2))
        cands = new
        states = [dl(_dist.chunk_nearest, pure=True)(b, dt, new, s) for b in self.blocks]
        for r in range(rounds):
            costs = [dl(_dist.chunk_cost, pure=True)(st, w)
                     for st, w in zip(states, self.w_blocks)]
            phi = _tree(costs, _add, self.split_every)
            samples = [dl(_dist.chunk_oversample, pure=True)(b, w, dt, st, phi, l,
                                                              [seed, 3, r, i])
                       for i, (b, w, st) in enumerate(zip(self.blocks, self.w_blocks,
                                                          states))]
            new = _tree(samples, _concat, self.split_every)
            base = dl(len, pure=True)(cands)
            cands = dl(_concat, pure=True)(cands, new)
            states = [dl(_dist.chunk_nearest, pure=True)(b, dt, new, s, st, base)
                      for b, st in zip(self.blocks, states)]
        n_c = dl(len, pure=True)(cands)
        weights = _tree([dl(_dist.chunk_candidate_weights, pure=True)(st, w, n_c)
                         for st, w in zip(states, self.w_blocks)], _add, self.split_every)
        return dask.compute(cands, weights)


_add, _concat = _dist.add_parts, _dist.concat_parts


def _weight_blocks(sample_weight, X):
    """Delayed weight blocks aligned with the row blocks of X."""
    n = X.shape[0]
    if _is_dask_dataframe(sample_weight) or (
            hasattr(sample_weight, "to_dask_array") and not isinstance(sample_weight,
                                                                      da.Array)):
        sample_weight = sample_weight.to_dask_array(lengths=True)
    if isinstance(sample_weight, da.Array):
        w = sample_weight
        if w.dtype.kind not in "fiu":
            raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}")
        if w.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D, got ndim={w.ndim}")
        if any(np.isnan(c) for c in w.chunks[0]):
            w = w.compute_chunk_sizes()
        if w.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
        if w.chunks[0] != X.chunks[0]:
            w = w.rechunk((X.chunks[0],))
    else:
        w = da.from_array(check_sample_weight(sample_weight, n), chunks=(X.chunks[0],))
    return w.to_delayed().ravel().tolist()


def _block_offset(block_info):
    return block_info[0]["array-location"][0][0] if block_info else 0


def _predict_block(xb, dtype, centers, shift, block_info=None):
    return _dist.chunk_predict(xb, dtype, centers, shift, _block_offset(block_info))


def _transform_block(xb, dtype, centers, shift, block_info=None):
    return _dist.chunk_transform(xb, dtype, centers, shift, _block_offset(block_info))


class KMeans(ScaleOutKMeans):
    """K-means (Lloyd) on a Dask array or a Dask DataFrame of numeric columns.

    Each block of rows is processed by kmaot's compiled kernels inside a Dask task,
    which returns float64 per-center sums, weights and inertia; a fixed tree of
    additions (fan-in ``split_every``) combines them, so every iteration is one
    round trip to the cluster.  Given the same initial centers the result is the
    in-memory ``kmaot.KMeans`` fit: the same labels, centers equal within float64
    rounding (the sums are added in another order), and the same bits on every run
    for the same chunking.  Persist ``X`` first (``X = X.persist()``) if it fits in
    the cluster's memory; otherwise every iteration reads it again.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {'k-means||', 'random'} or array of shape (n_clusters, n_features)
        'k-means||': scalable k-means++ (Bahmani et al.), ``init_max_iter`` rounds of
        sampling about ``oversampling_factor * n_clusters`` rows each, with per-block
        seeds derived from ``random_state``; the candidates, weighted by the weight of
        the rows nearest to them, are reduced to ``n_clusters`` centers by weighted
        k-means++ and Lloyd on the client.  'random': rows drawn with probability
        proportional to their weight, without replacement.
    n_init : 'auto' or int, default='auto'
        Initialisations (the best inertia is kept); 'auto' is 10 for 'random', else 1.
    max_iter : int, default=300
    tol : float, default=1e-4
        As ``kmaot.KMeans``: relative to the mean per-feature variance.
    verbose : int, default=0
    random_state : None, int or numpy.random.RandomState
    oversampling_factor : float, default=2.0
    init_max_iter : int, default=5
        Rounds of k-means||.
    split_every : int, default=8
        Fan-in of the reduction tree.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), float32 or float64
    inertia_ : float
    n_iter_ : int
    iteration_stats_ : list of dict (as ``kmaot.KMeans``)
    labels_ : dask array (n_samples,), int32, lazy (``predict`` of the training data)
    n_features_in_ : int

    Examples
    --------
    >>> import dask.array as da
    >>> from kmaot.dask import KMeans
    >>> X = da.random.default_rng(0).standard_normal((10_000, 4), chunks=(2_500, 4))
    >>> km = KMeans(n_clusters=3, random_state=0).fit(X)
    >>> km.cluster_centers_.shape
    (3, 4)
    >>> km.predict(X).compute().shape
    (10000,)
    """

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, oversampling_factor=2.0,
                 init_max_iter=5, split_every=8):
        super().__init__(n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
                         verbose=verbose, random_state=random_state,
                         oversampling_factor=oversampling_factor,
                         init_max_iter=init_max_iter)
        self.split_every = split_every

    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering.

        Parameters
        ----------
        X : dask array (n_samples, n_features) or dask DataFrame of numeric columns.
            float32 stays float32, other real dtypes are computed in float64.
        y : ignored
        sample_weight : dask array or dask Series (n_samples,) or numpy array, optional

        Returns
        -------
        self
        """
        split_every = check_positive_int(self.split_every, "split_every", minimum=2)
        self._check_params()
        X = _as_dask_array(X)
        self._fit_backend(_DaskBackend(X, sample_weight, split_every))
        self.labels_ = self.predict(X)
        return self

    def _blocks_of(self, X):
        X = _as_dask_array(X)
        self._check_n_features(X.shape[1])
        dtype = compute_dtype(X.dtype)
        return X, dtype, np.ascontiguousarray(self.cluster_centers_)

    def predict(self, X):
        """Index of the nearest center of every row: a lazy int32 dask array."""
        X, dtype, c = self._blocks_of(X)
        return X.map_blocks(_predict_block, dtype, c, self._shift, dtype=np.int32,
                            drop_axis=1, meta=np.empty((0,), np.int32))

    def transform(self, X):
        """Distances to every center: a lazy dask array (n_samples, n_clusters)."""
        X, dtype, c = self._blocks_of(X)
        k = c.shape[0]
        return X.map_blocks(_transform_block, dtype, c, self._shift, dtype=dtype,
                            chunks=(X.chunks[0], (k,)), meta=np.empty((0, k), dtype))

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of X with respect to the centers (computed)."""
        X, dtype, c = self._blocks_of(X)
        backend = _DaskBackend(X, sample_weight, check_positive_int(
            self.split_every, "split_every", minimum=2))
        return -float(backend.lloyd_pass(c, self._shift)[2][0])
