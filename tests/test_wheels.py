"""Packaging: metadata, version, the C compiler check of the build, the wheel tooling,
and what a cold ``import kmaot`` loads."""
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kmaot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_SCRIPT = os.path.join(ROOT, "src", "build_kernels.py")


def _checkout_version():
    with open(os.path.join(ROOT, "kmaot", "_version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


# ---------------------------------------------------------------- metadata, version
def test_version_single_source():
    assert kmaot.__version__ == _checkout_version()
    assert importlib.metadata.version("kmaot") == kmaot.__version__


def test_python_m_kmaot_version():
    res = subprocess.run([sys.executable, "-m", "kmaot", "--version"], capture_output=True,
                         text=True, cwd="/")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"kmaot {_checkout_version()}"


def test_metadata():
    md = importlib.metadata.metadata("kmaot")
    assert md["Name"] == "kmaot"
    assert (md.get("License-Expression") or md.get("License")) == "BSD-3-Clause"
    assert md["Requires-Python"] == ">=3.10"
    classifiers = md.get_all("Classifier")
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    # the core needs numpy only; everything else sits behind an extra
    core = [r for r in md.get_all("Requires-Dist") if "extra ==" not in r]
    assert [re.split(r"[ <>=!;\[]", r)[0] for r in core] == ["numpy"]
    assert "numba" not in " ".join(md.get_all("Requires-Dist"))
    assert md["Summary"]


# ---------------------------------------------------------------- C compiler check
def _run_build_script(args, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, BUILD_SCRIPT, *args], capture_output=True,
                          text=True, env=e, cwd="/", timeout=120)


def test_missing_compiler_fails_early_with_clear_message(tmp_path):
    out = tmp_path / "kernels"
    res = _run_build_script(["--target", "baseline", "--output-dir", str(out)],
                            CC="/nonexistent/bin/cc")
    assert res.returncode == 1
    assert "C compiler not found" in res.stderr
    assert "/nonexistent/bin/cc" in res.stderr and "$CC" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()  # failed before anything was built (and before numba)


def test_broken_compiler_is_reported(tmp_path):
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\necho 'fakecc: cannot compile' >&2\nexit 3\n")
    fake.chmod(0o755)
    res = _run_build_script(["--check-compiler"], CC=str(fake))
    assert res.returncode == 1
    assert "failed to compile a trivial C file (exit code 3)" in res.stderr
    assert "fakecc: cannot compile" in res.stderr


def test_compiler_without_cxx_front_end_is_reported(tmp_path):
    """numba.pycc's own check also compiles a .cxx file with the C compiler."""
    fake = tmp_path / "ccnocxx"
    fake.write_text('#!/bin/sh\ncase "$*" in *.cxx*) echo "cc1plus: not found" >&2; '
                    'exit 1;; esac\nexit 0\n')
    fake.chmod(0o755)
    res = _run_build_script(["--check-compiler"], CC=str(fake))
    assert res.returncode == 1
    assert "failed to compile a trivial C++ file" in res.stderr and "g++" in res.stderr
    assert "cc1plus: not found" in res.stderr


def test_compiler_from_python_config_when_cc_unset():
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    res = subprocess.run([sys.executable, BUILD_SCRIPT, "--check-compiler"],
                         capture_output=True, text=True, env=env, cwd="/", timeout=120)
    import sysconfig
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        # this machine really has no compiler: the message must say so
        assert res.returncode == 1 and "C compiler not found" in res.stderr
    else:
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("C compiler OK: ")


def test_cmake_runs_the_compiler_check_at_configure_time():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        text = f.read()
    configure = text[:text.index("add_custom_command")]
    assert "--check-compiler" in configure and "FATAL_ERROR" in configure


# ---------------------------------------------------------------- wheel tooling
def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "kmaot_build_wheels", os.path.join(ROOT, "wheels", "build_wheels.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_wheel_tool_finds_this_interpreter():
    tool = _load_tool()
    ((path, v),) = tool.find_pythons([sys.executable])
    assert v[:2] == sys.version_info[:2]
    assert tool.cp_tag(v) == f"cp{sys.version_info[0]}{sys.version_info[1]}"


def test_wheel_tool_refuses_old_or_missing_python(tmp_path):
    tool = _load_tool()
    with pytest.raises(tool.StepError, match="not a working Python"):
        tool.find_pythons([str(tmp_path / "python-nope")])
    old = tmp_path / "python-old"
    old.write_text("#!/bin/sh\necho 3.9.18\n")
    old.chmod(0o755)
    with pytest.raises(tool.StepError, match="needs >= 3.10"):
        tool.find_pythons([str(old)])


def test_cibuildwheel_config():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        cfg = tomllib.load(f)
    cbw = cfg["tool"]["cibuildwheel"]
    assert cbw["build"] == ["cp310-*", "cp311-*", "cp312-*", "cp313-*"]
    assert "wheels/smoke_test.py" in cbw["test-command"]
    assert cbw["linux"]["archs"] == ["x86_64", "aarch64"]
    assert cbw["macos"]["archs"] == ["arm64"]
    # numba 0.68.1 publishes macOS arm64 wheels for macOS >= 12 only
    assert cbw["macos"]["environment"]["MACOSX_DEPLOYMENT_TARGET"] == "12.0"
    assert "numba==0.68.1" in cfg["build-system"]["requires"]


# ---------------------------------------------------------------- cold start
COLD = r"""
import sys, json
import numpy as np
before = set(sys.modules)
import kmaot
at_import = sorted(set(sys.modules) - before)
X = np.random.default_rng(0).standard_normal((5000, 8)).astype(np.float32)
km = kmaot.KMeans(4, random_state=0, n_threads=4).fit(X)
km.predict(X)
after_fit = sorted(set(sys.modules) - before)
print(json.dumps({"import": at_import, "fit": after_fit,
                  "level": kmaot.config()["cpu_level"]}))
"""


def test_cold_import_loads_one_kernel_module_and_no_thread_pool():
    res = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                         cwd="/")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    kernels = [m for m in info["import"] if m.startswith("kmaot._kernels_")]
    assert kernels == [f"kmaot._kernels_{info['level']}"]
    for heavy in ("concurrent.futures", "numpy.ma", "tempfile", "queue", "numba",
                  "json", "hashlib", "zipfile"):
        assert heavy not in info["import"], heavy
    # a small fit (one reduction block) runs in the calling thread: no pool, and
    # nothing heavy imported on the way
    for heavy in ("concurrent.futures", "numpy.ma", "numba", "llvmlite"):
        assert heavy not in info["fit"], heavy


def test_late_nan_with_several_blocks_and_threads():
    """The thread-pool path (several reduction blocks) still reports the first bad row
    (small inputs now take the serial path, so the pool needs its own test)."""
    X = np.random.default_rng(0).standard_normal((150_000, 2)).astype(np.float32)
    X[140_001, 1] = np.nan
    with pytest.raises(ValueError, match=r"first at row 140001\)"):
        kmaot.KMeans(3, random_state=0, n_threads=4, batch_size=10_000).fit(X)
