"""kmaot.spark on a local Spark session (local[2]), compared with Spark MLlib's KMeans
from the same initial centers, the in-memory kmaot.KMeans and the NumPy reference."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pyspark = pytest.importorskip("pyspark")

import kmaot  # noqa: E402
from kmaot import NotFittedError  # noqa: E402

import reference  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors import the same kmaot
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (SparkSession.builder.master("local[2]").appName("kmaot-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               # several Arrow batches per partition
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def KMeans():
    from kmaot.spark import KMeans

    return KMeans


def _blobs(n=6_000, d=4, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-20, 20, size=(k, d))
    return centers[rng.integers(k, size=n)] + rng.standard_normal((n, d)), centers


def _init(true_centers, seed=1):
    """Initial centers near the true ones: few iterations, so few Spark jobs."""
    rng = np.random.default_rng(seed)
    return true_centers + rng.uniform(-1, 1, size=true_centers.shape)


def _df(spark, X, form="vector", w=None, partitions=3):
    from pyspark.ml.linalg import Vectors

    cols = [f"f{j}" for j in range(X.shape[1])]
    rows = X.tolist()
    if form == "vector":
        data = [(i, Vectors.dense(r)) for i, r in enumerate(rows)]
        names = ["id", "features"]
    elif form == "array":
        data = [(i, r) for i, r in enumerate(rows)]
        names = ["id", "features"]
    else:
        data = [(i, *r) for i, r in enumerate(rows)]
        names = ["id", *cols]
    if w is not None:
        data = [(*t, float(wi)) for t, wi in zip(data, w)]
        names.append("weight")
    return spark.createDataFrame(data, names).repartition(partitions, "id") \
        .sortWithinPartitions("id").cache()


@pytest.mark.slow
def test_matches_mllib_and_in_memory(spark, KMeans):
    from pyspark.mllib.clustering import KMeans as MLlibKMeans
    from pyspark.mllib.clustering import KMeansModel

    X, true = _blobs()
    init = _init(true)
    df = _df(spark, X)
    km = KMeans(5, init=init, tol=0).fit(df)
    rdd = spark.sparkContext.parallelize(X.tolist(), 3).cache()
    ml = MLlibKMeans.train(rdd, 5, maxIterations=100, initialModel=KMeansModel(init),
                           epsilon=0.0)
    ml_centers = np.array([np.asarray(c) for c in ml.clusterCenters])
    np.testing.assert_allclose(km.cluster_centers_, ml_centers, rtol=1e-10, atol=1e-10)
    assert km.inertia_ == pytest.approx(ml.computeCost(rdd), rel=1e-10)
    local = kmaot.KMeans(5, init=init, tol=0).fit(X)
    np.testing.assert_allclose(km.cluster_centers_, local.cluster_centers_, rtol=1e-12)
    assert km.n_iter_ == local.n_iter_
    assert km.inertia_ == pytest.approx(local.inertia_, rel=1e-12)
    pred = km.predict(df).orderBy("id")
    assert pred.columns == ["id", "features", "prediction"]
    labels = np.array([r.prediction for r in pred.select("prediction").collect()])
    np.testing.assert_array_equal(labels, local.labels_)
    np.testing.assert_array_equal(labels, reference.assign(X, km.cluster_centers_)[0])


@pytest.mark.parametrize("form", ["array", "columns"])
def test_feature_forms_and_weights(spark, KMeans, form):
    X, true = _blobs(n=3_000, seed=2)
    w = np.random.default_rng(3).uniform(0, 2, len(X))
    init = _init(true)
    cols = "features" if form == "array" else [f"f{j}" for j in range(4)]
    df = _df(spark, X, form, w=w)
    km = KMeans(5, init=init, features_col=cols, weight_col="weight").fit(df)
    local = kmaot.KMeans(5, init=init).fit(X, sample_weight=w)
    np.testing.assert_allclose(km.cluster_centers_, local.cluster_centers_, rtol=1e-12)
    assert km.inertia_ == pytest.approx(local.inertia_, rel=1e-12)
    assert km.score(df) == pytest.approx(local.score(X, sample_weight=w), rel=1e-12)
    labels = np.array([r.prediction for r in
                       km.predict(df).orderBy("id").select("prediction").collect()])
    np.testing.assert_array_equal(labels, local.predict(X))


@pytest.mark.slow
def test_kmeans_parallel_and_empty_cluster(spark, KMeans):
    X, true = _blobs(n=4_000, d=3, k=6, seed=5)
    df = _df(spark, X, "array")
    km = KMeans(6, random_state=0, init_max_iter=2).fit(df)
    d = np.sqrt(reference.sq_distances(true, km.cluster_centers_)).min(axis=1)
    assert d.max() < 0.2
    init = _init(true)
    init[5] = 1e4  # empty in the first iteration: relocated as the in-memory fit does
    km = KMeans(6, init=init).fit(df)
    local = kmaot.KMeans(6, init=init).fit(X)
    assert km.iteration_stats_[0]["n_empty"] == 1 == local.iteration_stats_[0]["n_empty"]
    np.testing.assert_allclose(km.cluster_centers_, local.cluster_centers_, rtol=1e-12)


def test_bad_input(spark, KMeans):
    X, _ = _blobs(n=500)
    df = _df(spark, X, "array", partitions=2)
    with pytest.raises(TypeError, match="DataFrame"):
        KMeans(3).fit(X)
    with pytest.raises(ValueError, match="'nope' is not in the DataFrame"):
        KMeans(3, features_col="nope").fit(df)
    s = spark.createDataFrame([("a", 1.0), ("b", 2.0)], ["name", "x"])
    with pytest.raises(TypeError, match="column 'name'"):
        KMeans(1, features_col=["name", "x"]).fit(s)
    with pytest.raises(ValueError, match="n_samples=500 should be >= n_clusters=501"):
        KMeans(501).fit(df)
    bad = spark.createDataFrame([(0, [1.0, 2.0]), (1, [1.0, float("nan")])], ["id", "f"])
    with pytest.raises(ValueError, match="NaN or infinity"):
        KMeans(1, features_col="f").fit(bad.coalesce(1))
    ragged = spark.createDataFrame([(0, [1.0, 2.0]), (1, [1.0])], ["id", "f"])
    with pytest.raises(ValueError, match="has 1 features where the first has 2"):
        KMeans(1, features_col="f").fit(ragged.coalesce(1))
    neg = spark.createDataFrame([(1.0, 1.0), (2.0, -1.0)], ["x", "w"])
    with pytest.raises(ValueError, match="negative"):
        KMeans(1, features_col=["x"], weight_col="w").fit(neg)
    with pytest.raises(NotFittedError):
        KMeans(2).predict(df)
    dfc = _df(spark, X, "columns", partitions=2)
    km = KMeans(2, features_col=["f0", "f1"], init=X[:2, :2], max_iter=1).fit(dfc)
    km.set_params(features_col=["f0"])
    with pytest.raises(ValueError, match="1 features, but KMeans is expecting 2"):
        km.predict(dfc)
