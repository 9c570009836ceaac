"""Every CPU level gives identical labels; the level can be forced and is reported."""
import json
import os
import subprocess
import sys

import pytest

import kmaot
from kmaot import _dispatch

USABLE = [lv for lv in _dispatch.supported_levels() if lv in _dispatch.BUILT_LEVELS]

FIT = r"""
import json, numpy as np, kmaot
rng = np.random.default_rng(0)
C = rng.uniform(-5, 5, (12, 10))
X = (C[rng.integers(12, size=30000)] + rng.standard_normal((30000, 10))).astype(np.float32)
km = kmaot.KMeans(12, random_state=0, max_iter=30).fit(X)
kb = kmaot.KMeans(24, random_state=0, max_iter=30, algorithm="bounded").fit(X)
print(json.dumps({"level": kmaot.config()["cpu_level"], "labels": km.labels_.tolist(),
                  "inertia": km.inertia_, "labels_bounded": kb.labels_.tolist(),
                  "inertia_bounded": kb.inertia_}))
"""


def _run(level):
    env = dict(os.environ, KMAOT_CPU_LEVEL=level)
    res = subprocess.run(cwd="/", args=[sys.executable, "-c", FIT], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_every_level_gives_identical_labels():
    assert "baseline" in USABLE
    results = {lv: _run(lv) for lv in USABLE}
    for lv, r in results.items():
        assert r["level"] == lv
    ref = results["baseline"]
    for lv, r in results.items():
        assert r["labels"] == ref["labels"], f"{lv} labels differ from baseline"
        assert abs(r["inertia"] - ref["inertia"]) <= 1e-9 * ref["inertia"]
        assert r["labels_bounded"] == ref["labels_bounded"], f"{lv} bounded labels differ"
        assert abs(r["inertia_bounded"] - ref["inertia_bounded"]) <= 1e-9 * ref["inertia_bounded"]


def test_all_levels_built_on_x86_64():
    import platform
    if platform.machine() in ("x86_64", "AMD64"):
        assert _dispatch.BUILT_LEVELS == ["baseline", "avx2", "avx512"]


def test_bad_level_is_a_clear_error():
    env = dict(os.environ, KMAOT_CPU_LEVEL="sse9")
    res = subprocess.run(cwd="/", args=[sys.executable, "-c", "import kmaot"], capture_output=True,
                         text=True, env=env)
    assert res.returncode != 0
    assert "KMAOT_CPU_LEVEL='sse9' is not a CPU level" in res.stderr


def test_show_config(capsys):
    kmaot.show_config()
    out = capsys.readouterr().out
    assert f"kmaot {kmaot.__version__}" in out
    assert f"CPU level in use:      {_dispatch.LEVEL}" in out
    assert "threads" in out
    c = kmaot.config()
    assert c["cpu_level"] in c["cpu_levels_built"]


def test_unsupported_level_request_falls_back_with_warning():
    missing = [lv for lv in _dispatch.LEVELS if lv not in USABLE]
    if not missing:
        pytest.skip("this CPU runs every level; nothing to fall back from")
    env = dict(os.environ, KMAOT_CPU_LEVEL=missing[0])
    res = subprocess.run(cwd="/", args=[sys.executable, "-W", "always", "-c",
                          "import kmaot; print(kmaot.config()['cpu_level'])"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0
    assert "is not available on this machine" in res.stderr
    assert res.stdout.strip() == USABLE[-1]
