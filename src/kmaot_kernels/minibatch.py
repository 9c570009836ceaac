"""Mini-batch k-means kernel: the per-batch center update (Sculley 2010).

Plain Python + ``@njit`` helpers, compiled ahead of time by ``src/build_kernels.py``.
Nothing here validates its arguments: ``kmaot/_kernels.py`` checks dtypes, shapes,
contiguity and the range of the labels before every call.

Every center is the running weighted mean of all the rows ever assigned to it: a
center j that receives the rows B_j of a batch (weights w_i) moves to

    c_j <- (W_j * c_j + sum_{i in B_j} w_i x_i) / (W_j + sum_{i in B_j} w_i),
    W_j <- W_j + sum_{i in B_j} w_i,

i.e. towards the batch mean of its rows with the per-center learning rate
``sum w_i / W_j`` (the same update as scikit-learn's ``_minibatch_update_dense``).
Sums are float64 and accumulated in row order.
"""
import numpy as np
from numba import njit

#: no nnan/ninf (see lloyd.py)
FAST = {"contract", "reassoc", "nsz", "arcp", "afn"}


@njit(nogil=True, fastmath=FAST)
def minibatch_update(X, w, labels, centers, weight_sums, sums, batch_w):
    """Move every center that received rows of this batch to the running mean.

    Parameters
    ----------
    X : (m, d) float32 or float64, C-contiguous     # IN
    w : (m,) float64 sample weights, or (0,) for all ones   # IN
    labels : (m,) int32, every value in [0, k)        # IN
    centers : (k, d) float64, running weighted means  # INOUT
    weight_sums : (k,) float64, W_j: total weight seen per center   # INOUT
    sums : (k, d) float64 scratch                     # OUT (batch sums)
    batch_w : (k,) float64 scratch                    # OUT (batch weights)

    Returns
    -------
    float64 : sum over centers of the squared distance each center moved.
    """
    m, d = X.shape
    k = centers.shape[0]
    has_w = w.shape[0] > 0
    for j in range(k):
        batch_w[j] = 0.0
        for f in range(d):
            sums[j, f] = 0.0
    for i in range(m):
        j = labels[i]
        wi = w[i] if has_w else 1.0
        batch_w[j] += wi
        for f in range(d):
            sums[j, f] += wi * np.float64(X[i, f])
    moved = 0.0
    for j in range(k):
        bw = batch_w[j]
        if bw > 0.0:
            old_w = weight_sums[j]
            new_w = old_w + bw
            alpha = 1.0 / new_w
            for f in range(d):
                c_old = centers[j, f]
                c_new = (c_old * old_w + sums[j, f]) * alpha
                diff = c_new - c_old
                moved += diff * diff
                centers[j, f] = c_new
            weight_sums[j] = new_w
    return moved


_UPDATE = "f8(T[:, ::1], f8[::1], i4[::1], f8[:, ::1], f8[::1], f8[:, ::1], f8[::1])"

#: exported name -> (function, numba signature string)
EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["minibatch_update_" + _suffix] = (minibatch_update, _UPDATE.replace("T", _t))
