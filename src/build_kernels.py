"""Compile kmaot's kernels ahead of time with numba.pycc.

This is the only file of kmaot that imports ``numba.pycc``: a later switch to another
AOT compiler touches this file alone.  Run once per CPU target, e.g.::

    python src/build_kernels.py --target avx2 --output-dir build/

produces ``_kernels_avx2.<ext-suffix>``.  The kernels are compiled with the GIL
released (``release_gil``) so that the Python layer can run them on several threads.
"""
import argparse
import os
import sys
import time

#: kmaot CPU level -> LLVM target cpu ("" = generic baseline of the architecture)
TARGETS = {
    "baseline": "",
    "avx2": "haswell",
    "avx512": "skylake-avx512",
}


def _patch_flags():
    """Make pycc compile every export with the GIL released."""
    import numba.pycc.compiler as pycc_compiler

    base = pycc_compiler.Flags

    class KmaotFlags(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True
            self.error_model = "numpy"  # no ZeroDivisionError machinery
            # contraction and reassociation; never nnan/ninf (NaN marks bad rows)
            self.fastmath = {"contract", "reassoc", "nsz", "arcp", "afn"}

    pycc_compiler.Flags = KmaotFlags


def build(target, output_dir):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    _patch_flags()
    from numba.pycc import CC

    from kmaot_kernels import EXPORTS

    cc = CC("_kernels_" + target)
    cc.output_dir = output_dir
    cc.target_cpu = TARGETS[target]
    cc.verbose = False
    for name, (func, sig) in EXPORTS.items():
        cc.export(name, sig)(func)
    t0 = time.perf_counter()
    cc.compile()
    print(f"built _kernels_{target} ({cc.target_cpu or 'generic'}) with "
          f"{len(EXPORTS)} exports in {time.perf_counter() - t0:.1f} s -> {output_dir}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=sorted(TARGETS), required=True)
    p.add_argument("--output-dir", required=True)
    args = p.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    build(args.target, args.output_dir)


if __name__ == "__main__":
    main()
