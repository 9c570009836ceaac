"""Grouped (Yinyang) bounds for algorithm='bounded' with many clusters.

Hamerly's single lower bound per row (``_lloyd.Bounds``) drops by the largest
displacement of any other center: with a thousand centers one far-moving center makes
nearly every row fail its test.  Yinyang k-means (Ding et al., ICML 2015) groups the
centers once, at the start of a run, and keeps one lower bound per row and group, which
drops only by the largest displacement within the group; a row whose bounds fail is
measured only against the groups that could hold a nearer center.  The result is that
of ``lloyd_pass``, bit for bit (see ``src/kmaot_kernels/yinyang.py``).

With wide rows and many rows to measure, the rows that fail their bounds are instead
scored against every center by BLAS (``_kernels.ScoredGrouped``), which refreshes every
group bound; ``scores_by_blas`` holds that rule, ``measured_share`` its estimate.

Memory: ``4 * n_groups`` bytes per row (float32 group bounds) plus 12 bytes (label and
upper bound), with ``n_groups = n_clusters // 10``.  ``choose_bounds`` holds the one
rule that picks grouped bounds, Hamerly's bound or none.
"""
import contextlib

import numpy as np

from . import _kernels
from ._engine import block_rows
from ._lloyd import Bounds, PassResult, _raise_nonfinite

F8 = np.float64

#: grouped bounds from this many clusters on; below, Hamerly's single bound.  Measured
#: (benchmarks/bounds_choice.py): W1 (k=64, d=32) Hamerly 51 ms per iteration against
#: 168 grouped; W2 (k=1024, d=128) grouped 2775 against 3329 Hamerly.  No shape in
#: between was measured: 512 is a conservative guess between the two.
MIN_CLUSTERS = 512
#: centers per group (Ding et al.: n_groups = n_clusters / 10)
GROUP_SIZE = 10
#: Lloyd iterations that group the initial centers
GROUP_ITERS = 5


#: from this many features on, the grouped pass scores the rows that fail their bounds
#: against every center with BLAS (numpy's matmul, one BLAS thread per pool thread) and
#: keeps fresh bounds for every group; below, or when BLAS's threads cannot be limited,
#: the compiled kernel scores only the groups that could hold a nearer center
#: (``yinyang_block``).  Measured on W2 (200,000 x 128, k=1024, float32, 2 threads,
#: iterations 1-5, JIT kernels): BLAS 0.50/0.43/0.39/0.33/0.26 s per pass against
#: 1.33/1.10/1.32/0.33/0.28; with BLAS's own two threads on top of the pool's two, the
#: BLAS passes took about twice as long (so the limit is required).
BLAS_MIN_FEATURES = 64

_BLAS = {}


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None when
    threadpoolctl is not installed (it is optional: ``pip install 'kmaot[blas]'``)."""
    if "ctl" not in _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS["ctl"] = None
        else:
            ctl = ThreadpoolController()
            _BLAS["ctl"] = ctl if ctl.select(user_api="blas").lib_controllers else None
    return _BLAS["ctl"]


def single_blas():
    """Context in which BLAS (numpy's matmul) runs on one thread, or does nothing when
    threadpoolctl is not installed.

    ``lloyd`` holds it over every iteration of a bounded run, as scikit-learn's Lloyd
    loop does: a product on BLAS's own threads between passes (the centers'
    separation: 1024 x 1024 x 128 on W2) leaves OpenBLAS's threads spinning for their
    timeout while the pool's threads work.  Measured on W2 (2 threads, iterations 2-5,
    this module's passes): ``blas_thread_server`` took 13.6% of the CPU samples
    (perf), 3.8% with the separation alone under this limit; the separation itself
    took 9.0 ms on one BLAS thread against 8.1 on two.

    OpenBLAS's limit is process-wide and threadpoolctl lets one thread at a time set
    it: a fit running at the same moment in another thread runs under this limit, or
    with BLAS's own threads once this one restores them (slower, never wrong)."""
    ctl = _blas_controller()
    if ctl is None:
        return contextlib.nullcontext()
    return ctl.limit(limits=1, user_api="blas")


#: ... and while the compiled kernel would measure at least this share of the center
#: distances (``measured_share``'s estimate).  W2, iterations 2-5, 2 threads, two runs
#: each: with 0.35 (estimates 0.99, 0.84, 0.44 -> BLAS, then 0.28 -> compiled) 0.423 and
#: 0.424 s per iteration; with 0.5 (iteration 4 compiled too) 0.447 and 0.485 s; BLAS
#: throughout 0.41-0.48 s
BLAS_MIN_SHARE = 0.35


def scores_by_blas(n_features, n_clusters, share=1.0):
    """Whether the grouped pass takes its scores from BLAS (the one rule): wide rows,
    a BLAS whose threads threadpoolctl can limit (else its threads would compete with
    the pool's), and a large share of the distances to measure anyway."""
    return (n_features >= BLAS_MIN_FEATURES and share >= BLAS_MIN_SHARE
            and _blas_controller() is not None)


def measured_share(state, delta, gdelta, step=None):
    """Estimate, from every step-th row (default max(16, n // 4096): about 4,096 rows
    of a large input; every 16th row, as before, up to 65,536 rows), of the share of
    the center distances that the compiled grouped pass would measure after the
    centers moved by delta (the groups whose decayed bound falls below the row's
    decayed upper bound); 1 for a first pass."""
    if state.c64 is None:
        return 1.0
    if step is None:
        step = max(16, state.labels.shape[0] // 4096)
    labels = state.labels[::step]
    if labels.shape[0] == 0:
        return 1.0
    lower = state.lower[::step].astype(F8) - gdelta[None, :]
    upper = state.upper[::step] + delta[labels]
    need = lower < upper[:, None]
    return float((need @ np.diff(state.gstart)).sum()) / (labels.shape[0] * delta.shape[0])


def n_groups(k):
    return max(1, int(k) // GROUP_SIZE)


def choose_bounds(n_samples, n_clusters, n_features, itemsize):
    """The bounds of algorithm='bounded' for in-memory data: 'grouped' when
    n_clusters >= MIN_CLUSTERS and the group bounds (4 * n_groups bytes per row) take
    at most as much memory as the data itself (n_features * itemsize bytes per row),
    'hamerly' otherwise (12 bytes per row)."""
    G = n_groups(n_clusters)
    if n_clusters >= MIN_CLUSTERS and 4 * G <= n_features * itemsize:
        return "grouped"
    return "hamerly"


def new_bounds(n_samples, centers, itemsize):
    """Per-row state of the bounded passes for a run starting from ``centers``:
    a ``Grouped`` or a ``_lloyd.Bounds`` (Hamerly), by ``choose_bounds``."""
    k, d = centers.shape
    if choose_bounds(n_samples, k, d, itemsize) == "grouped":
        return Grouped(n_samples, centers)
    return Bounds(n_samples)


def group_centers(centers, G, iters=GROUP_ITERS):
    """Group of every center (int32 (k,)): a few Lloyd iterations on the centers in
    float64, starting from G evenly spaced centers (deterministic).  Groups that end up
    empty are dropped and the others renumbered 0..G'-1.  Only speed depends on it."""
    c = np.asarray(centers, dtype=F8)
    k = c.shape[0]
    G = max(1, min(G, k))
    g = c[np.linspace(0, k - 1, G).round().astype(np.intp)]
    csq = np.einsum("ij,ij->i", c, c)
    for it in range(iters + 1):
        d2 = csq[:, None] - 2.0 * (c @ g.T) + np.einsum("ij,ij->i", g, g)[None, :]
        group = np.argmin(d2, axis=1)
        if it == iters:
            break
        cnt = np.bincount(group, minlength=G)
        s = np.zeros_like(g)
        np.add.at(s, group, c)
        nz = cnt > 0
        g[nz] = s[nz] / cnt[nz, None]
    used = np.flatnonzero(np.bincount(group, minlength=G))
    renum = np.full(G, -1, np.intp)
    renum[used] = np.arange(used.size)
    return renum[group].astype(np.int32)


class Grouped:
    """Per-row state of the grouped pass: label, upper bound of the distance to it
    (inf: unknown), float32 lower bounds per group (0: unknown), and the grouping of
    the centers (fixed for the run).  ``4 * G + 12`` bytes per row."""

    def __init__(self, n, centers):
        group_of = group_centers(centers, n_groups(centers.shape[0]))
        G = int(group_of.max()) + 1
        self.group_of = group_of
        self.order = np.argsort(group_of, kind="stable").astype(np.int32)
        self.gstart = np.zeros(G + 1, np.int64)
        np.cumsum(np.bincount(group_of, minlength=G), out=self.gstart[1:])
        self.labels = np.zeros(n, np.int32)
        self.upper = np.full(n, np.inf)
        self.lower = np.zeros((n, G), np.float32)
        self.c64 = None
        self.n_full = 0
        self.n_dist = 0

    @property
    def n_groups(self):
        return self.gstart.shape[0] - 1

    delta = Bounds.delta

    def stats(self):
        return {"n_full": self.n_full, "n_dist": self.n_dist}

    def run_pass(self, engine, source, C, sample_weight=None, batch_size=None):
        return grouped_pass(engine, source, C, self, sample_weight, batch_size)


class SortedCenters:
    """The centers of one pass sorted by group, for the kernel: cg (k, d) shifted
    centers and hg (k,) half their squared norms in the data dtype, plus the grouping
    (order, gstart, group_of) of a ``Grouped``."""

    __slots__ = ("cg", "hg", "order", "gstart", "group_of")

    def __init__(self, C, grouped):
        self.order = grouped.order
        self.gstart = grouped.gstart
        self.group_of = grouped.group_of
        self.cg = np.ascontiguousarray(C.cs[self.order])
        self.hg = np.ascontiguousarray(C.half_csq[self.order])


def grouped_pass(engine, source, C, state, sample_weight=None, batch_size=None):
    """``lloyd_pass`` with the same result, bit for bit, that measures only the centers
    that could be nearer than a row's own center (grouped bounds).  Updates ``state``
    (a ``Grouped``); its labels are the labels of this pass.  Called under
    ``single_blas`` (``_lloyd.lloyd``), so that the BLAS scores of the pool's threads
    run on one BLAS thread each."""
    k, d = C.k, C.d
    B = block_rows(d, k)
    total = PassResult(k, d)
    delta = state.delta(C)
    gdelta = np.maximum.reduceat(delta[state.order], state.gstart[:-1])
    sep = Bounds.separation(C)
    S = SortedCenters(C, state)
    counted = np.zeros(2, np.int64)

    def new_state():
        st = PassResult(k, d)
        st.n_full = np.zeros(2, np.int64)
        return st

    blas = scores_by_blas(d, k, measured_share(state, delta, gdelta))
    if blas:
        SG = _kernels.ScoredGrouped(C, S, delta, gdelta, sep)

        def kernel(Xp, w, r0, r1, st):
            SG.run(Xp, w, state.labels[r0:r1], state.upper[r0:r1], state.lower[r0:r1],
                   st.sums, st.counts, st.inertia, st.n_full)
    else:
        def kernel(Xp, w, r0, r1, st):
            _kernels.yinyang_block(Xp, C, S, w, delta, gdelta, sep, state.labels[r0:r1],
                                   state.upper[r0:r1], state.lower[r0:r1], st.sums,
                                   st.counts, st.inertia, st.n_full)

    def work(st, r0, Xp):
        r1 = r0 + Xp.shape[0]
        w = sample_weight[r0:r1] if sample_weight is not None else None
        kernel(Xp, w, r0, r1, st)
        if not np.isfinite(st.inertia[0]):
            _raise_nonfinite(source, r0, Xp)

    def fold(st):
        total.add(st)
        counted.__iadd__(st.n_full)

    # every pool thread calls BLAS, on one BLAS thread each: ``lloyd`` holds
    # ``single_blas`` over the whole iteration (the separation above included)
    engine.run(source, B, new_state, work, fold, batch_size=batch_size)
    state.c64 = C.c64
    state.n_full = int(counted[0])
    state.n_dist = int(counted[1])
    return total
