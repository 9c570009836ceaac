"""Kernel sources of kmaot, compiled ahead of time by ``src/build_kernels.py``.

Each module declares what it exports in an ``EXPORTS`` dict:
``exported_name -> (function, numba signature string)``.
"""
from . import lloyd, minibatch, stats, yinyang

EXPORTS = {}
for _module in (lloyd, minibatch, stats, yinyang):
    EXPORTS.update(_module.EXPORTS)
