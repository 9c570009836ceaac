"""Checks at the public boundary, with messages a user can act on.

The compiled kernels check nothing (a wrong dtype crashes the interpreter); everything
that reaches them has gone through this module or through ``_sources``.
"""
import numbers

import numpy as np

#: dtypes that are computed in natively; every other real dtype becomes float64
COMPUTE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(dtype, what="X"):
    """float32 stays float32, float64 stays float64, other real numbers become float64.

    Raises TypeError for bool, complex, object, string and other non-numeric dtypes.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        if dtype.itemsize == 4:
            return np.dtype(np.float32)
        if dtype.itemsize == 8:
            return np.dtype(np.float64)
        return np.dtype(np.float64)  # float16, longdouble
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    if dtype.kind == "b":
        raise TypeError(
            f"{what} has boolean dtype; k-means needs real numbers. "
            f"Convert it explicitly, e.g. {what}.astype(np.float32)")
    if dtype.kind == "c":
        raise TypeError(
            f"{what} has complex dtype {dtype}; k-means needs real numbers "
            "(split real and imaginary parts into separate features)")
    if dtype.kind == "O":
        raise TypeError(
            f"{what} has object dtype; kmaot needs a numeric array of float32 or float64 "
            "(and never unpickles Python objects)")
    raise TypeError(f"{what} has dtype {dtype}, which is not numeric; kmaot needs real numbers")


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} should be >= {minimum}")
    return int(value)


def check_n_clusters(n_clusters, n_samples):
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}")
    return n_clusters


def check_finite(X, what="X", row_offset=0):
    """Raise ValueError naming the first row that holds NaN or infinity."""
    if X.size and not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))[0]
        raise ValueError(
            f"{what} contains NaN or infinity (first at row {row_offset + int(bad)}); "
            "remove or impute those values before clustering")


def as_2d_float_array(X, what="X"):
    """An in-memory array, 2-D, of a compute dtype, finite (no copy when not needed)."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{what} must be an array or a path to a .npy file, got {X!r}")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what} could not be converted to a numeric array: {exc}") from None
    dtype = compute_dtype(arr.dtype, what)
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(f"{what} must be 2-D (n_samples, n_features), got ndim={arr.ndim}"
                         f" with shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} has 0 samples (shape {arr.shape}); at least 1 is required")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} has 0 features (shape {arr.shape}); at least 1 is required")
    return arr, dtype


def check_sample_weight(sample_weight, n_samples):
    """float64 C-contiguous weights, or None when all ones."""
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        w = np.full(n_samples, float(sample_weight))
    else:
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "fiu":
            raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}")
        if w.ndim != 1 or w.shape[0] != n_samples:
            raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
        w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (w < 0).any():
        raise ValueError("sample_weight contains negative values")
    with np.errstate(over="ignore"):
        total = w.sum()
    if not np.isfinite(total):
        raise ValueError("sample_weight sums to infinity; rescale the weights (only their "
                         "ratios matter)")
    if not total > 0:
        raise ValueError("sample_weight sums to 0; at least one sample needs a positive weight")
    return w


INITS = ("auto", "k-means++", "k-means||", "random")


def check_init_and_n_init(init, n_init, n_init_random):
    """(is_array, n_init) for an estimator's ``init`` and ``n_init``: 'auto' n_init means
    ``n_init_random`` runs for init='random' and 1 otherwise (scikit-learn's rule); an
    array of initial centers runs once (with a warning if more were asked for)."""
    import warnings

    is_array = not isinstance(init, str)
    if not is_array and init not in INITS:
        raise ValueError(f"init={init!r} should be 'k-means++', 'random', 'k-means||', "
                         "'auto' or an array of shape (n_clusters, n_features)")
    if n_init == "auto":
        return is_array, (n_init_random if (not is_array and init == "random") else 1)
    n_init = check_positive_int(n_init, "n_init")
    if is_array and n_init != 1:
        warnings.warn(f"explicit initial centers given: running 1 initialisation "
                      f"instead of n_init={n_init}", RuntimeWarning, stacklevel=4)
        n_init = 1
    return is_array, n_init


def check_init_array(init, n_clusters, n_features, dtype):
    centers, _ = as_2d_float_array(init, "init")
    if centers.shape != (n_clusters, n_features):
        raise ValueError(
            f"init array has shape {centers.shape}, expected (n_clusters, n_features)="
            f"({n_clusters}, {n_features})")
    check_finite(centers, "init")
    return np.array(centers, dtype=dtype, order="C", copy=True)


def check_random_state(seed):
    """numpy RandomState from None, an int or a RandomState (scikit-learn's rules)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state={seed!r} cannot seed a numpy RandomState; "
                     "use None, an int or a numpy.random.RandomState")
