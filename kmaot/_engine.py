"""Run a kernel over a data source block by block, on a pool of threads.

Determinism: rows are grouped into fixed *reduction blocks* of ``block_rows(d, k)``
rows, aligned to the global row index and independent of ``batch_size`` and
``n_threads``.  Each block accumulates its partial result strictly in row order
(even when a batch boundary cuts it into pieces), and the partial results are folded
into the total in block order.  The result is therefore bit-identical for any batch
size and any number of threads.

Threads: the kernels release the GIL, so a ``ThreadPoolExecutor`` runs pieces of
different blocks at once; at most ``2 * n_threads`` pieces are in flight, which bounds
the memory held by partial results.  File sources are read one batch ahead by a
prefetch thread, so that I/O overlaps computation.  A source of one reduction block
runs in the calling thread (no pool is started: fast cold start for small inputs).
``queue``, ``threading`` and ``concurrent.futures`` are imported when first needed.
"""
import os
from collections import deque

import numpy as np

from ._validation import check_positive_int


def available_cores():
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_n_threads(n_threads):
    if n_threads is None:
        return available_cores()
    return check_positive_int(n_threads, "n_threads")


def block_rows(n_features, n_clusters):
    """Rows per reduction block: a function of the problem shape only.

    About 2**25 multiply-adds of assignment work per block (so that per-block Python
    overhead stays small) and at least 8 rows per cluster (every block allocates and
    folds its own (n_clusters, n_features) float64 sums, in the caller's thread: at
    k=1024, d=128 that is 1 MB per 2,048 rows), a power of two between 2,048 and
    65,536 rows.
    """
    k = max(1, int(n_clusters))
    work = max(1, int(n_features) * k)
    b = 2 ** max(0, (2**25 // work).bit_length() - 1)
    b = max(b, 2 ** max(0, (8 * k - 1).bit_length()))
    return int(min(65536, max(2048, b)))


def _pieces(source, batch_size, B, start=0):
    """(block_id, row_start, X_piece, closes_block) in row order."""
    n = source.n_samples
    for s, Xb in source.batches(batch_size, start=start):
        e = s + Xb.shape[0]
        p0 = s
        while p0 < e:
            blk = p0 // B
            p1 = min(e, (blk + 1) * B)
            yield blk, p0, Xb[p0 - s:p1 - s], (p1 % B == 0) or p1 == n
            p0 = p1


class _Prefetch:
    """Iterate a generator in a background thread, ``depth`` items ahead."""

    _DONE = object()

    def __init__(self, gen, depth=2):
        import queue
        import threading

        self._queue_mod = queue
        self._q = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(gen,), daemon=True)
        self._t.start()

    def _run(self, gen):
        try:
            for item in gen:
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except self._queue_mod.Full:
                        continue
                if self._stop.is_set():
                    return
            self._q.put(self._DONE)
        except BaseException as exc:  # re-raised in the consumer
            self._q.put(exc)

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except self._queue_mod.Empty:
                break
        self._t.join(timeout=5)


class Engine:
    """A pool of ``n_threads`` threads that runs block passes."""

    def __init__(self, n_threads=None):
        self.n_threads = resolve_n_threads(n_threads)
        self._pool = None

    def _executor(self):
        if self._pool is None and self.n_threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.n_threads,
                                            thread_name_prefix="kmaot")
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, source, B, new_state, work, fold=None, batch_size=None, prefetch=None):
        """One pass over ``source``.

        new_state() -> state of a block; work(state, row_start, X_piece) processes a
        piece (called in row order for the pieces of one block, never concurrently on
        one state); fold(state) is called for every block, in block order.
        """
        gen = _pieces(source, batch_size, B)
        pf = None
        if prefetch is None:
            prefetch = not source.in_memory
        if prefetch:
            pf = _Prefetch(gen)
            gen = iter(pf)
        try:
            # one reduction block: its pieces run one after the other anyway
            pool = None if source.n_samples <= B else self._executor()
            if pool is None:
                self._run_serial(gen, new_state, work, fold)
            else:
                self._run_pool(pool, gen, new_state, work, fold)
        finally:
            if pf is not None:
                pf.close()

    @staticmethod
    def _run_serial(gen, new_state, work, fold):
        state, open_blk = None, None
        for blk, r0, Xp, closes in gen:
            if blk != open_blk:
                state, open_blk = new_state(), blk
            work(state, r0, Xp)
            if closes:
                if fold is not None:
                    fold(state)
                state, open_blk = None, None

    def _run_pool(self, pool, gen, new_state, work, fold):
        inflight = deque()  # (future, state, closes) in row order
        last = {}           # block id -> (state, future of its latest piece)
        limit = 2 * self.n_threads

        def retire_one():
            fut, state, closes, blk = inflight.popleft()
            fut.result()
            if closes:
                last.pop(blk, None)
                if fold is not None:
                    fold(state)

        try:
            for blk, r0, Xp, closes in gen:
                if blk in last:  # a block continued from the previous batch
                    state, prev = last[blk]
                    prev.result()  # its earlier piece must finish first
                else:
                    state = new_state()
                fut = pool.submit(work, state, r0, Xp)
                last[blk] = (state, fut)
                inflight.append((fut, state, closes, blk))
                while len(inflight) > limit:
                    retire_one()
            while inflight:
                retire_one()
        except BaseException:
            for fut, *_ in inflight:
                fut.cancel()
            for fut, *_ in inflight:
                try:
                    fut.result()
                except BaseException:
                    pass
            raise


def topk_farthest(mind, rows, k):
    """Indices into mind of its k largest values, ties broken by lower row."""
    k = min(k, mind.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    # sort by (-dist, row): lexsort keys are ordered last-major
    order = np.lexsort((rows, -mind))
    return order[:k]
