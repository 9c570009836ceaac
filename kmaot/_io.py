"""Model files: ``KMeans.save(path)`` and ``kmaot.load(path)``.

A model file is an uncompressed ``.npz`` archive that ``np.load(path,
allow_pickle=False)`` reads: nothing in it is ever unpickled.  It holds

* ``format_version`` (int) and ``meta`` (a JSON string): the file format, the kmaot
  version that wrote it, the estimator class, its parameters (``get_params()``; an
  array parameter such as ``init`` is stored as an array and referenced by name),
  and the fitted attributes that are plain numbers, strings, lists or dicts
  (``inertia_``, ``n_iter_``, ``n_features_in_``, ``iteration_stats_``, ...);
* one array per fitted array attribute (``cluster_centers_``, ``mean_``,
  ``scale_``, ...) and per private array the estimator lists in ``_saved_private``.

Parameters are restored generically with ``set_params``, so new estimator parameters
need no change here.  A file whose ``format_version`` is newer than this kmaot reads
is refused with a clear error; older ones stay readable.
"""
import numbers
import os

# json, tempfile and zipfile are imported where used (cold start of ``import kmaot``)

import numpy as np

from ._version import __version__

#: the format this kmaot writes; it reads every version up to this one
FORMAT_VERSION = 1
_FORMAT_NAME = "kmaot-model"
#: fitted attributes never stored (one entry per training row)
_NOT_SAVED = ("labels_",)


def _jsonable(value):
    """value as plain JSON types, or raise TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v) for k, v in value.items()}
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def save(estimator, path):
    """Write a fitted estimator to ``path`` (see the module docstring)."""
    import json
    import tempfile
    estimator._check_fitted()
    arrays = {}
    params, unsaved = {}, []
    for name, value in estimator.get_params().items():
        if isinstance(value, np.ndarray):
            key = f"param__{name}"
            arrays[key] = value
            params[name] = {"__array__": key}
            continue
        try:
            params[name] = _jsonable(value)
        except TypeError:
            # e.g. a numpy RandomState: not restorable without pickle
            unsaved.append(name)
    attributes = {}
    for name, value in vars(estimator).items():
        if not name.endswith("_") or name.startswith("_") or name in _NOT_SAVED:
            continue
        if isinstance(value, np.ndarray):
            arrays[f"attr__{name}"] = value
        else:
            try:
                attributes[name] = _jsonable(value)
            except TypeError:
                pass
    for name in getattr(estimator, "_saved_private", ()):
        if name in vars(estimator):
            arrays[f"private__{name}"] = np.asarray(getattr(estimator, name))
    for key, arr in arrays.items():
        if arr.dtype.hasobject:
            raise TypeError(f"cannot save {key.split('__', 1)[1]}: object arrays would "
                            "need pickle")
    meta = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kmaot_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "unsaved_params": unsaved,
        "attributes": attributes,
    }
    arrays["format_version"] = np.array(FORMAT_VERSION, dtype=np.int64)
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".kmaot-", suffix=".npz.tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; follow the umask
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # never leaves a half-written model behind
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _estimator_class(name, path):
    import kmaot
    from ._base import ParamsMixin

    cls = getattr(kmaot, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, ParamsMixin)):
        raise ValueError(f"{path} holds a model of class {name!r}, which this kmaot "
                         f"({__version__}) does not have; upgrade kmaot")
    return cls


def load(path):
    """Read a model written by ``save`` (``KMeans.save``) and return the estimator.

    Never unpickles.  Raises FileNotFoundError for a missing file and ValueError for a
    file that is not a kmaot model, is damaged, or was written in a newer format.

    Examples
    --------
    >>> import kmaot
    >>> km = kmaot.load("model.npz")   # doctest: +SKIP
    >>> km.predict(X)                   # doctest: +SKIP
    """
    import zipfile
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a kmaot model file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a kmaot model file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is a .npy array, not a kmaot model file (.npz written "
                         "by KMeans.save or 'kmaot fit')")
    with data:
        try:
            return _restore(data, path)
        except (KeyError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ValueError(f"{path} is not a valid kmaot model file ({exc})") from None


def _restore(data, path):
    import json
    files = set(data.files)
    if "format_version" not in files or "meta" not in files:
        raise ValueError(f"{path} is not a kmaot model file (no format_version/meta)")
    try:
        version = int(data["format_version"])
    except (TypeError, ValueError):
        raise ValueError(f"{path}: unreadable format_version") from None
    try:
        meta = json.loads(str(data["meta"][()]))
    except (TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
        raise ValueError(f"{path} is not a kmaot model file (bad meta record)")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by kmaot {meta.get('kmaot_version', '?')} in model "
            f"format version {version}; this kmaot ({__version__}) reads format versions "
            f"up to {FORMAT_VERSION}: upgrade kmaot to load it")
    if version < 1:
        raise ValueError(f"{path}: invalid model format version {version}")
    cls = _estimator_class(meta.get("estimator"), path)
    params = {}
    for name, value in dict(meta.get("params", {})).items():
        if isinstance(value, dict) and set(value) == {"__array__"}:
            value = data[value["__array__"]]
        params[name] = value
    est = cls()
    unknown = sorted(set(params) - set(est.get_params()))
    if unknown:
        raise ValueError(
            f"{path} (written by kmaot {meta.get('kmaot_version', '?')}) sets parameters "
            f"{', '.join(unknown)} that {cls.__name__} of kmaot {__version__} does not "
            "have; upgrade kmaot")
    est.set_params(**params)
    for name, value in dict(meta.get("attributes", {})).items():
        if name.endswith("_") and not name.startswith("_"):
            setattr(est, name, value)
    for key in data.files:
        prefix, _, name = key.partition("__")
        if prefix == "attr" and name.endswith("_") and not name.startswith("_"):
            setattr(est, name, data[key])
        elif prefix == "private" and name in getattr(cls, "_saved_private", ()):
            setattr(est, name, data[key])
    _check_state(est, path)
    return est


def _check_state(est, path):
    """The fitted state of a loaded k-means estimator must be usable by the kernels,
    which check nothing: dtypes, shapes and finiteness are verified here."""
    from ._standardize import check_standardizer

    def bad(msg):
        return ValueError(f"{path}: damaged model: {msg}")

    centers = getattr(est, "cluster_centers_", None)
    if not isinstance(centers, np.ndarray):
        raise bad("no cluster_centers_ array")
    if centers.dtype.kind != "f" or centers.dtype.itemsize not in (4, 8):
        raise bad(f"cluster_centers_ has dtype {centers.dtype}, expected float32 or float64")
    if centers.ndim != 2 or 0 in centers.shape:
        raise bad(f"cluster_centers_ has shape {centers.shape}")
    if not np.isfinite(centers).all():
        raise bad("cluster_centers_ contains NaN or infinity")
    k, d = centers.shape
    est.cluster_centers_ = np.ascontiguousarray(centers, dtype=centers.dtype.newbyteorder("="))
    n_features = getattr(est, "n_features_in_", None)
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) \
            or n_features != d:
        raise bad(f"n_features_in_={n_features!r} does not match cluster_centers_ of "
                  f"shape {centers.shape}")
    shift = np.asarray(getattr(est, "_shift", np.zeros(d)))
    if shift.shape != (d,) or shift.dtype.kind != "f" or not np.isfinite(shift).all():
        raise bad("invalid centering vector")
    est._shift = np.ascontiguousarray(shift, dtype=np.float64)
    has_mean, has_scale = hasattr(est, "mean_"), hasattr(est, "scale_")
    if has_mean != has_scale:
        raise bad("mean_ and scale_ must be stored together")
    if has_mean:
        try:
            est.mean_, est.scale_ = check_standardizer(est.mean_, est.scale_, d)
        except (TypeError, ValueError) as exc:
            raise bad(str(exc)) from None
