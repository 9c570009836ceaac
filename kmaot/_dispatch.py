"""Choose the compiled kernel module for this CPU, once, at import.

kmaot ships one extension module per CPU level (``kmaot._kernels_<level>``), all
compiled from the same sources by ``src/build_kernels.py``.  The best level that the
running CPU supports is loaded; the environment variable ``KMAOT_CPU_LEVEL`` caps it
(``baseline``, ``avx2`` or ``avx512``), like numpy's ``NPY_DISABLE_CPU_FEATURES``.
Only the chosen module is loaded at import; the others are found on disk, not loaded.
"""
import importlib
import importlib.util
import os
import warnings

#: from lowest to highest; each with the CPU features it needs (numpy's names)
LEVELS = ("baseline", "avx2", "avx512")
_REQUIRED = {
    "baseline": (),
    "avx2": ("AVX", "AVX2", "FMA3", "F16C"),
    "avx512": ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL"),
}
ENV_VAR = "KMAOT_CPU_LEVEL"


def cpu_features():
    """The running CPU's features as numpy detected them ({} when unknown)."""
    try:  # numpy >= 2
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:  # numpy 1.x
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:  # private API gone: fall back to the baseline
            return {}
    return dict(__cpu_features__)


def supported_levels(features=None):
    """Levels whose features the CPU has, lowest first (baseline always)."""
    features = cpu_features() if features is None else features
    out = []
    for level in LEVELS:
        if all(features.get(f, False) for f in _REQUIRED[level]):
            out.append(level)
        else:
            break
    return out


def built_levels():
    """Levels whose compiled module is present in the installed package (found on
    disk, not loaded)."""
    return [level for level in LEVELS
            if importlib.util.find_spec("kmaot._kernels_" + level) is not None]


def _choose():
    built = built_levels()
    if "baseline" not in built:
        raise ImportError(
            "kmaot's compiled kernels are missing (no kmaot._kernels_baseline module). "
            "Install kmaot with 'pip install .' (or from a wheel) rather than importing "
            "it from a source checkout.")
    usable = [lv for lv in supported_levels() if lv in built]
    cap = os.environ.get(ENV_VAR, "").strip().lower()
    if cap:
        if cap not in LEVELS:
            raise ValueError(
                f"{ENV_VAR}={cap!r} is not a CPU level; use one of {', '.join(LEVELS)}")
        allowed = LEVELS[: LEVELS.index(cap) + 1]
        if cap not in usable:
            warnings.warn(
                f"{ENV_VAR}={cap!r} is not available on this machine (usable: "
                f"{', '.join(usable)}); using the best usable level below it",
                RuntimeWarning, stacklevel=3)
        usable = [lv for lv in usable if lv in allowed]
    for level in reversed(usable):
        try:
            return level, importlib.import_module("kmaot._kernels_" + level), built
        except ImportError as exc:
            if level == "baseline":
                raise
            warnings.warn(f"kmaot's {level} kernels failed to load ({exc}); "
                          "using a lower CPU level", RuntimeWarning, stacklevel=3)


LEVEL, KERNELS, BUILT_LEVELS = _choose()


def kernel_module(level=None):
    """The compiled module for ``level`` (default: the one chosen at import)."""
    if level is None:
        return KERNELS
    if level not in LEVELS:
        raise ValueError(f"unknown CPU level {level!r}; use one of {', '.join(LEVELS)}")
    if level not in supported_levels():
        raise ValueError(f"CPU level {level!r} is not supported by this CPU")
    return importlib.import_module("kmaot._kernels_" + level)
