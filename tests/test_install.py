"""kmaot runs without numba: not imported at run time, and not installed at all."""
import glob
import os
import subprocess
import sys
import venv

import pytest

CHECK = r"""
import sys
import numpy as np
import kmaot
X = np.random.default_rng(0).standard_normal((2000, 4)).astype(np.float32)
km = kmaot.KMeans(3, random_state=0).fit(X)
km.predict(X[:5]); km.transform(X[:5]); km.score(X)
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite'))
print('LOADED', bad)
assert not bad, bad
"""


def test_numba_never_imported():
    res = subprocess.run(cwd="/", args=[sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "LOADED []" in res.stdout


def _wheel_tag():
    return f"cp{sys.version_info[0]}{sys.version_info[1]}"


@pytest.mark.slow
def test_wheel_in_fresh_venv_without_numba(tmp_path):
    """Build the wheel, install it with numpy alone into a new venv, fit and predict.

    With KMAOT_WHEEL_DIR set, the wheel for this interpreter found there is used; if
    there is none, it is built into that folder (so that wheels/build_wheels.py, run
    after the tests by .ci/run with --reuse, repairs and smoke-tests the same wheel
    instead of compiling the kernels a second time)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tag = _wheel_tag()
    pattern = f"kmaot-*-{tag}-{tag}-*.whl"
    wheels = os.environ.get("KMAOT_WHEEL_DIR")
    out = wheels or str(tmp_path / "w")
    found = glob.glob(os.path.join(out, pattern)) if wheels else []
    if not found:
        # an isolated build: the test environment need not have numba
        res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                              "-w", out, root], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        found = glob.glob(os.path.join(out, pattern))
    assert len(found) == 1, f"expected one {pattern} in {out}, found {found}"
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "numpy", found[0]], check=True,
                   capture_output=True)
    res = subprocess.run([py, "-c", "import importlib.util as u; "
                          "print(u.find_spec('numba'), u.find_spec('llvmlite'))"],
                         capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "None None"
    res = subprocess.run([py, "-c", CHECK], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
