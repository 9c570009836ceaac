"""k-means on Spark DataFrames, with kmaot's compiled kernels in every partition.

Each pass is one Spark job: ``mapInArrow`` hands every partition's rows, in Arrow
batches, to kmaot's kernels, which return one small result per partition
(float64 sums, weights and inertia per center); the driver adds them in partition
order.  Predictions are a column computed by an Arrow UDF.

Install with ``pip install 'kmaot[spark]'`` (pyspark >= 4.1 and pyarrow).  Executors
need kmaot installed (numpy is all it needs there); in local mode set
``PYSPARK_PYTHON`` to the interpreter that has kmaot.
"""
try:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.functions import arrow_udf
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("kmaot.spark needs pyspark >= 4.1 and pyarrow: "
                      "pip install 'kmaot[spark]'") from exc

import functools
import pickle

import numpy as np

from . import _distributed as _dist
from ._scaleout import ScaleOutKMeans

__all__ = ["KMeans"]

F8 = np.dtype(np.float64)
_X = "__kmaot_x"
_W = "__kmaot_w"
_OUT = "pid int, error string, result binary"


def _features_expr(df, features_col):
    """An array<double> column expression from a vector column, an array column, a
    numeric column or a list of numeric columns; and n_features if known."""
    if not isinstance(df, DataFrame):
        raise TypeError(f"X must be a pyspark.sql.DataFrame, got {type(df).__name__}")
    fields = {f.name: f.dataType for f in df.schema.fields}

    def numeric(name):
        if name not in fields:
            raise ValueError(f"column {name!r} is not in the DataFrame; its columns are "
                             f"{list(fields)}")
        t = fields[name]
        return isinstance(t, T.NumericType)

    if isinstance(features_col, str):
        from pyspark.ml.linalg import VectorUDT

        if features_col not in fields:
            numeric(features_col)  # raises
        t = fields[features_col]
        if isinstance(t, VectorUDT):
            from pyspark.ml.functions import vector_to_array

            return vector_to_array(F.col(features_col), "float64"), None
        if isinstance(t, T.ArrayType) and isinstance(t.elementType, T.NumericType):
            return F.col(features_col).cast("array<double>"), None
        if isinstance(t, T.NumericType):
            return F.array(F.col(features_col).cast("double")), 1
        raise TypeError(f"column {features_col!r} has type {t.simpleString()}; kmaot needs "
                        "a vector column, an array of numbers or numeric columns")
    cols = list(features_col)
    if not cols:
        raise ValueError("features_col is an empty list of columns")
    for c in cols:
        if not numeric(c):
            raise TypeError(f"column {c!r} has type {fields[c].simpleString()}; kmaot "
                            "needs numeric columns")
    return F.array(*[F.col(c).cast("double") for c in cols]), len(cols)


def _to_numpy(rb, d, has_w, offset, where):
    """(X (m, d) float64, w (m,) or None) from an Arrow batch of the prepared columns."""
    col = rb.column(0)
    m = len(col)
    if col.null_count:
        i = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise ValueError(f"the features are null at row {offset + i}{where}")
    lens = np.diff(np.asarray(col.offsets))
    if d is None:
        d = int(lens[0]) if m else 0
    bad = np.flatnonzero(lens != d)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"row {offset + i}{where} has {int(lens[i])} features where the "
                         f"first has {d}")
    if m and d == 0:
        raise ValueError("the features are empty arrays; at least 1 feature is required")
    vals = col.flatten()
    if vals.null_count:
        raise ValueError(f"the features contain null values{where}")
    X = vals.to_numpy(zero_copy_only=False).reshape(m, d) if m else np.empty((0, d))
    w = None
    if has_w:
        wc = rb.column(1)
        if wc.null_count:
            raise ValueError(f"the weight column has null values{where}")
        w = wc.to_numpy(zero_copy_only=False).astype(F8)
    return X, w


def _job(df, d, has_w, per_batch, combine):
    """Run per_batch(X, w, offset, pid, batch_index, where) on every Arrow batch, fold
    the results of a partition with combine, and return them in partition order."""

    def run(batches):
        from pyspark import TaskContext

        pid = TaskContext.get().partitionId()
        where = f" of partition {pid}"
        out, err, off = None, "", 0
        try:
            results = []
            for i, rb in enumerate(batches):
                X, w = _to_numpy(rb, d, has_w, off, where)
                if X.shape[0]:
                    results.append(per_batch(X, w, off, pid, i, where))
                off += X.shape[0]
            if results:
                out = combine(*results)
        except ValueError as exc:
            err = str(exc) or "ValueError"
        yield pa.RecordBatch.from_pydict(
            {"pid": [pid], "error": [err], "result": [pickle.dumps(out)]},
            schema=pa.schema([("pid", pa.int32()), ("error", pa.string()),
                              ("result", pa.binary())]))

    rows = sorted(df.mapInArrow(run, _OUT).collect(), key=lambda r: r.pid)
    for r in rows:
        if r.error:
            raise ValueError(r.error)
    results = [pickle.loads(r.result) for r in rows]
    return [r for r in results if r is not None]


def _global_row(pid, off):
    return (int(pid) << 40) + int(off)  # orders rows by partition, then row


class _SparkBackend:
    dtype = F8

    def __init__(self, df, n_features, has_w):
        self.df = df
        self.n_features = n_features
        self.has_w = has_w

    def _run(self, per_batch, combine):
        return _job(self.df, self.n_features, self.has_w, per_batch, combine)

    def moments(self):
        def per_batch(X, w, off, pid, i, where):
            return X.shape[1], _dist.chunk_moments(X, w, F8, off, "the features", where)

        def combine(*parts):
            ds = sorted({p[0] for p in parts})
            if len(ds) > 1:
                raise ValueError(f"rows have different numbers of features: {ds}")
            return ds[0], _dist.combine_moments(*[p[1] for p in parts])

        parts = self._run(per_batch, combine)
        if not parts:
            return 0, None, None, 0.0
        ds = {p[0] for p in parts}
        if len(ds) > 1:
            raise ValueError(f"rows have different numbers of features: {sorted(ds)}")
        self.n_features = ds.pop()
        return _dist.combine_moments(*[p[1] for p in parts])

    def lloyd_pass(self, centers, shift):
        def per_batch(X, w, off, pid, i, where):
            return _dist.chunk_lloyd(X, w, F8, centers, shift, off, "the features", where)

        parts = self._run(per_batch, _dist.combine_sums)
        if not parts:  # no rows at all
            return np.zeros(centers.shape), np.zeros(centers.shape[0]), np.zeros(1)
        return _dist.combine_sums(*parts)

    def farthest(self, centers, shift, n):
        def per_batch(X, w, off, pid, i, where):
            return _dist.chunk_farthest(X, w, F8, centers, shift, n, _global_row(pid, off))

        combine = functools.partial(_dist.combine_farthest, n)
        return combine(*self._run(per_batch, combine))

    def _topk(self, k, seed, purpose):
        def per_batch(X, w, off, pid, i, where):
            return _dist.chunk_topk_keys(X, w, F8, k, [seed, purpose, pid, i],
                                         _global_row(pid, off))

        combine = functools.partial(_dist.combine_topk, k)
        return combine(*self._run(per_batch, combine))

    def random_rows(self, k, seed):
        return self._topk(k, seed, 1)[2]

    def kmeans_parallel(self, k, l, rounds, seed, shift):
        """k-means|| with two jobs per round (the cost, then the sample)."""
        cands = self._topk(1, seed, 2)[2]
        for r in range(rounds):
            def cost(X, w, off, pid, i, where, cands=cands):
                return _dist.chunk_cost(_dist.chunk_nearest(X, F8, cands, shift), w)

            phi = _add(*self._run(cost, _add))

            def sample(X, w, off, pid, i, where, cands=cands, phi=phi, r=r):
                st = _dist.chunk_nearest(X, F8, cands, shift)
                return _dist.chunk_oversample(X, w, F8, st, phi, l, [seed, 3, r, pid, i])

            cands = np.concatenate([cands] + self._run(sample, _concat))

        def weights(X, w, off, pid, i, where, cands=cands):
            st = _dist.chunk_nearest(X, F8, cands, shift)
            return _dist.chunk_candidate_weights(st, w, len(cands))

        return cands, _add(*self._run(weights, _add))


_add, _concat = _dist.add_parts, _dist.concat_parts


class KMeans(ScaleOutKMeans):
    """K-means (Lloyd) on a Spark DataFrame, kmaot's kernels in every partition.

    Parameters are those of ``kmaot.dask.KMeans`` (``init='k-means||'`` by default,
    'random' or an array; ``tol`` relative to the mean per-feature variance, as in
    scikit-learn), plus:

    features_col : str or list of str, default='features'
        A vector column (``pyspark.ml.linalg``), an array-of-numbers column, or a list
        of numeric columns.  Computed in float64.
    weight_col : str or None, default=None
        A numeric column of sample weights.
    prediction_col : str, default='prediction'
        Name of the int column ``predict`` adds.

    Every pass (one per Lloyd iteration) is one Spark job; cache the DataFrame
    (``df.cache()``) when it fits in the executors' memory.

    Examples
    --------
    >>> km = KMeans(n_clusters=3, features_col=["x", "y"], random_state=0).fit(df)  # doctest: +SKIP
    >>> km.predict(df).select("prediction")  # doctest: +SKIP
    """

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, oversampling_factor=2.0,
                 init_max_iter=5, features_col="features", weight_col=None,
                 prediction_col="prediction"):
        super().__init__(n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
                         verbose=verbose, random_state=random_state,
                         oversampling_factor=oversampling_factor,
                         init_max_iter=init_max_iter)
        self.features_col = features_col
        self.weight_col = weight_col
        self.prediction_col = prediction_col

    def _prepared(self, df, weighted):
        x, d = _features_expr(df, self.features_col)
        cols = [x.alias(_X)]
        if weighted and self.weight_col is not None:
            t = {f.name: f.dataType for f in df.schema.fields}.get(self.weight_col)
            if not isinstance(t, T.NumericType):
                raise TypeError(f"weight_col={self.weight_col!r} must name a numeric column")
            cols.append(F.col(self.weight_col).cast("double").alias(_W))
        return df.select(*cols), d

    def fit(self, X, y=None):
        """Compute the clustering of the DataFrame X (see ``features_col``)."""
        self._check_params()
        prepared, d = self._prepared(X, True)
        return self._fit_backend(_SparkBackend(prepared, d, self.weight_col is not None))

    def predict(self, X):
        """X with an int column ``prediction_col``: the nearest center of every row."""
        self._check_fitted()
        x, d = _features_expr(X, self.features_col)
        if d is not None:
            self._check_n_features(d)
        centers, shift, n_features = self.cluster_centers_, self._shift, self.n_features_in_

        @arrow_udf(T.IntegerType())
        def nearest(col):
            m = len(col)
            Xb, _ = _to_numpy(pa.RecordBatch.from_arrays([col], [_X]), n_features, False,
                              0, " of a batch")
            return pa.array(_dist.chunk_predict(Xb, F8, centers, shift), pa.int32()) \
                if m else pa.array([], pa.int32())

        return X.withColumn(self.prediction_col, nearest(x))

    def score(self, X, y=None):
        """Opposite of the (weighted) inertia of X with respect to the centers."""
        self._check_fitted()
        prepared, d = self._prepared(X, True)
        if d is not None:
            self._check_n_features(d)
        backend = _SparkBackend(prepared, self.n_features_in_, self.weight_col is not None)
        return -float(backend.lloyd_pass(self.cluster_centers_, self._shift)[2][0])
