"""What kmaot runs with: version, CPU level, threads, numpy and BLAS."""
import sys

import numpy as np

from . import _dispatch
from ._engine import available_cores
from ._version import __version__


def config():
    """A dict describing this kmaot installation (see ``show_config``)."""
    supported = _dispatch.supported_levels()
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "cpu_level": _dispatch.LEVEL,
        "cpu_levels_built": list(_dispatch.BUILT_LEVELS),
        "cpu_levels_supported": [lv for lv in supported if lv in _dispatch.BUILT_LEVELS],
        "cpu_level_env": f"{_dispatch.ENV_VAR}={_dispatch.os.environ.get(_dispatch.ENV_VAR, '')}",
        "threads": available_cores(),
        "blas": _blas_info(),
    }


def _blas_info():
    try:
        info = np.show_config(mode="dicts")
        blas = info.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown"


def show_config(file=None):
    """Print the kmaot version, the CPU level in use, the levels available and the
    number of threads used by default.

    Examples
    --------
    >>> import kmaot
    >>> kmaot.show_config()  # doctest: +SKIP
    kmaot 0.1.0
    ...
    """
    c = config()
    lines = [
        f"kmaot {c['version']} (Python {c['python']}, numpy {c['numpy']}, BLAS {c['blas']})",
        f"CPU level in use:      {c['cpu_level']}",
        f"CPU levels built:      {', '.join(c['cpu_levels_built'])}",
        f"CPU levels usable here: {', '.join(c['cpu_levels_supported'])}",
        f"override:              {c['cpu_level_env']} (baseline, avx2 or avx512)",
        f"threads (default):     {c['threads']}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
