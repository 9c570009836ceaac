"""kmaot: out-of-core k-means whose kernels are compiled ahead of time.

No JIT and no numba at run time: the compiled kernels ship inside the package.
"""
from ._base import NotFittedError
from ._config import config, show_config
from ._io import load
from ._kmeans import ConvergenceWarning, KMeans
from ._version import __version__

__all__ = ["KMeans", "ConvergenceWarning", "NotFittedError", "load", "show_config",
           "config", "__version__"]
