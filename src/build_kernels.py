"""Compile kmaot's kernels ahead of time with numba.pycc.

This is the only file of kmaot that imports ``numba.pycc``: a later switch to another
AOT compiler touches this file alone.  Run once per CPU target, e.g.::

    python src/build_kernels.py --target avx2 --output-dir build/

produces ``_kernels_avx2.<ext-suffix>``.  The kernels are compiled with the GIL
released (``release_gil``) so that the Python layer can run them on several threads.

numba.pycc drives the platform's C compiler (the one Python was built with, or ``$CC``).
``python src/build_kernels.py --check-compiler`` checks that it exists and compiles a
trivial C file, and fails with a message naming the compiler otherwise; CMake runs it at
configure time and every build runs it first, before numba is imported.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

#: kmaot CPU level -> LLVM target cpu ("" = generic baseline of the architecture)
TARGETS = {
    "baseline": "",
    "avx2": "haswell",
    "avx512": "skylake-avx512",
}

#: kmaot CPU level -> LLVM target features on top of the cpu's own.  LLVM tunes
#: skylake-avx512 to prefer 256-bit vectors; "-prefer-256-bit" lets the vectorizers
#: use the 512-bit registers (measured in the avx512 module, see _tune_for)
FEATURES = {
    "avx512": "-prefer-256-bit",
}


def _tune_for(target):
    """Make numba optimize for the CPU level being built, not for the build machine.

    pycc compiles the exported functions with a code generator for ``target_cpu``, but
    every ``@njit`` helper they call (all the hot loops) is compiled and optimized by
    numba's JIT code generator, which targets the host CPU, and only then linked into
    the module: the vector widths and the cost model were the build machine's (the
    instructions are the target's, as the final code generation is).  numba reads
    NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when it is imported, so this runs first.
    Measured on an AVX-512 build machine (Emerald Rapids), the avx512 module, one
    thread, same results: lloyd_block 300,000 x 32, k=64 24.9 and 26.8 ms against 48.0
    and 31.2 before; 50,000 x 128, k=1024 153.4 and 168.1 against 244.0 and 240.0;
    assign_block of 1,000 rows (d=32, k=64; predict's path) 70 and 77 us against 147
    and 85; 2,000,000 x 8, k=8 unchanged (18.1-20.0 ms)."""
    if "numba" in sys.modules:
        raise RuntimeError("build_kernels: numba was imported before the CPU level was set")
    os.environ["NUMBA_CPU_NAME"] = TARGETS[target] or "generic"
    os.environ["NUMBA_CPU_FEATURES"] = FEATURES.get(target, "")


class CompilerError(RuntimeError):
    """No working C compiler: the kernels cannot be built."""


def _compiler_hint():
    return ("kmaot's kernels are compiled by numba.pycc, which needs a C compiler: install "
            "one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: "
            "xcode-select --install) or point CC at it, or install a prebuilt kmaot wheel "
            "instead of building from source")


def c_compiler():
    """The C compiler command that numba.pycc will use (as distutils chooses it): $CC if
    set, else the compiler Python was built with.  A list of arguments."""
    cmd = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cmd)


def check_compiler():
    """Raise CompilerError unless the C compiler exists and compiles a trivial file.
    Returns the compiler command otherwise."""
    if sys.platform == "win32" and not os.environ.get("CC"):
        # distutils finds MSVC through the registry / vswhere, not PATH: numba.pycc's
        # own check (external_compiler_works) is the reliable one there
        return ["msvc (located by distutils)"]
    cmd = c_compiler()
    origin = "$CC" if os.environ.get("CC") else "Python's build configuration (sysconfig CC)"
    if not cmd:
        raise CompilerError(f"no C compiler: $CC is empty. {_compiler_hint()}")
    exe = shutil.which(cmd[0])
    if exe is None:
        raise CompilerError(f"C compiler not found: {cmd[0]!r} (from {origin}) is not an "
                            f"executable file or a command on PATH. {_compiler_hint()}")
    # numba.pycc's own check (platform.external_compiler_works) compiles a .c and a
    # .cxx file with this compiler; so do we, to fail here with a clear message
    probes = ((".c", "a trivial C file"),
              (".cxx", "a trivial C++ file (numba.pycc requires the compiler to handle "
                       ".cxx too: install the C++ front end, e.g. g++)"))
    with tempfile.TemporaryDirectory(prefix="kmaot-cc-") as tmp:
        for suffix, what in probes:
            src = os.path.join(tmp, "probe" + suffix)
            with open(src, "w") as f:
                f.write("int kmaot_probe(int x) { return x + 1; }\n")
            try:
                res = subprocess.run(cmd + ["-c", src, "-o", os.path.join(tmp, "probe.o")],
                                     capture_output=True, text=True, timeout=120)
            except OSError as exc:
                raise CompilerError(f"C compiler {' '.join(cmd)!r} (from {origin}) could not "
                                    f"be run: {exc}. {_compiler_hint()}") from None
            if res.returncode != 0:
                out = (res.stderr or res.stdout).strip() or "(no output)"
                raise CompilerError(
                    f"C compiler {' '.join(cmd)!r} (from {origin}) failed to compile {what} "
                    f"(exit code {res.returncode}):\n{out}\n{_compiler_hint()}")
    return cmd


def _patch_features(features):
    """Give pycc's own code generator (the exported functions' bodies) the same extra
    features: it asks the cpu name alone."""
    from numba.core import codegen

    codegen.AOTCPUCodegen._customize_tm_features = lambda self: features


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


def enable_slp():
    """Turn on LLVM's SLP (straight-line code) vectorizer, which numba leaves off by
    default: the generated per-row accumulators (kmaot_kernels.lloyd.ACC_WIDTHS) rely on
    it to become vector code (the other kernels ran at the same speed with it on).
    Read when the compiler's pass managers are created, so it must be set before
    compiling; the JIT tools under benchmarks/ call it too, so that they time the code
    the wheel ships."""
    from numba.core import config

    config.SLP_VECTORIZE = 1


def build(target, output_dir):
    _tune_for(target)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    _patch_flags()
    _patch_features(FEATURES.get(target, ""))
    enable_slp()
    # the generated distances use fused multiply-add where the CPU level has it
    # (kmaot_kernels.lloyd.USE_FMA): the baseline x86-64 level has not
    os.environ["KMAOT_KERNEL_FMA"] = "0" if target == "baseline" else "1"
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
    p.add_argument("--target", choices=sorted(TARGETS))
    p.add_argument("--output-dir")
    p.add_argument("--check-compiler", action="store_true",
                   help="only check that a working C compiler is available")
    args = p.parse_args(argv)
    if not args.check_compiler and (args.target is None or args.output_dir is None):
        p.error("--target and --output-dir are required (or --check-compiler)")
    try:
        cmd = check_compiler()
    except CompilerError as exc:
        print(f"kmaot build error: {exc}", file=sys.stderr)
        return 1
    if args.check_compiler:
        print(f"C compiler OK: {' '.join(cmd)}")
        return 0
    os.makedirs(args.output_dir, exist_ok=True)
    build(args.target, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
