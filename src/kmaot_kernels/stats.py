"""Per-feature moments of a block of rows, accumulated in row order (float64)."""
import numpy as np
from numba import njit


@njit(nogil=True, fastmath={"contract", "reassoc", "nsz", "arcp", "afn"})
def moments_block(X, ref, s1, s2):
    """Accumulate shifted first and second moments of the rows of X.

    X : (m, d) float32 or float64, C-contiguous   # IN
    ref : (d,) float64, a reference point (e.g. the first row) that keeps the
          sums accurate for data far from the origin             # IN
    s1 : (d,) float64, += sum_i (x_i - ref)                      # INOUT
    s2 : (d,) float64, += sum_i (x_i - ref)**2                   # INOUT

    mean = ref + s1/n and var = s2/n - (s1/n)**2 follow.  Rows are added strictly in
    order, so any split of the rows into calls gives bit-identical sums.
    """
    m, d = X.shape
    for i in range(m):
        for f in range(d):
            v = np.float64(X[i, f]) - ref[f]
            s1[f] += v
            s2[f] += v * v


_MOMENTS = "void(T[:, ::1], f8[::1], f8[::1], f8[::1])"

EXPORTS = {}
for _t, _suffix in (("f4", "f32"), ("f8", "f64")):
    EXPORTS["moments_block_" + _suffix] = (moments_block, _MOMENTS.replace("T", _t))
