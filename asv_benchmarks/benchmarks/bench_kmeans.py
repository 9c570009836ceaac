"""Benchmarks of kmaot.KMeans: fit in memory and from a .npy file, predict, import."""
import numpy as np

from kmaot import KMeans

from .common import (MAX_ITER, WORKLOADS, initial_centers, make_blobs32,
                     write_workloads)


class KMeansFit:
    """Lloyd fit of MAX_ITER iterations (tol=0) from fixed initial centers."""

    params = (list(WORKLOADS), [None, 1])
    param_names = ["workload", "n_threads"]
    timeout = 300

    def setup_cache(self):
        # runs once; the .npy files it writes in the current directory stay there for
        # every benchmark of this class
        return write_workloads(".")

    def setup(self, paths, workload, n_threads):
        self.path = paths[workload]
        self.X = np.load(self.path)
        k = WORKLOADS[workload][2]
        self.init = initial_centers(self.X, k)
        self.estimator = KMeans(k, init=self.init, n_init=1, max_iter=MAX_ITER, tol=0,
                                n_threads=n_threads)

    def time_fit(self, paths, workload, n_threads):
        self.estimator.fit(self.X)

    def time_fit_file(self, paths, workload, n_threads):
        self.estimator.fit(self.path)

    def peakmem_fit_file(self, paths, workload, n_threads):
        # asv's peakmem is the process's maximum RSS, which counts the pages of the
        # memory-mapped file as they are read; see track_peak_anon_fit_file
        self.estimator.fit(self.path)

    def track_peak_anon_fit_file(self, paths, workload, n_threads):
        """Peak anonymous memory (RssAnon) added by a fit of the .npy file, bytes."""
        from kmaot._memory import PeakAnon
        with PeakAnon() as mem:
            self.estimator.fit(self.path)
        if mem.peak is None:
            raise NotImplementedError("RssAnon is Linux only")
        return mem.peak - mem.start

    track_peak_anon_fit_file.unit = "bytes"

    def track_inertia(self, paths, workload, n_threads):
        return self.estimator.fit(self.X).inertia_

    track_inertia.unit = "inertia"


class KMeansPredict:
    """Latency of predict on a fitted W1 model (d=32, k=64)."""

    def setup(self):
        n, d, k = WORKLOADS["W1"]
        X = make_blobs32(n, d, k)
        self.model = KMeans(k, init=initial_centers(X, k), n_init=1, max_iter=MAX_ITER,
                            tol=0).fit(X)
        self.Q1 = np.ascontiguousarray(X[:1])
        self.Q1000 = np.ascontiguousarray(X[:1000])
        # the first predict prepares the centers for the kernels (kept on the model):
        # with --quick asv times a single call, which would time that preparation
        self.model.predict(self.Q1)
        self.model.predict(self.Q1000)

    def time_predict_1row(self):
        self.model.predict(self.Q1)

    def time_predict_1000rows(self):
        self.model.predict(self.Q1000)


class Import:
    """Time of ``import kmaot`` in a fresh interpreter (no JIT: should stay small)."""

    def timeraw_import_kmaot(self):
        return "import kmaot"
