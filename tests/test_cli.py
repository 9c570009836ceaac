"""The command line: demo, info, --version, and one-line errors with exit code 2."""
import subprocess
import sys

import numpy as np

import kmaot
from kmaot.cli import main


def test_version():
    res = subprocess.run([sys.executable, "-m", "kmaot", "--version"], capture_output=True,
                         text=True, cwd="/")
    assert res.returncode == 0 and res.stdout.strip() == f"kmaot {kmaot.__version__}"


def test_info(capsys):
    assert main(["info"]) == 0
    assert "CPU level in use" in capsys.readouterr().out


def test_demo_small(capsys):
    assert main(["demo", "--n-samples", "20000", "--n-features", "4", "-k", "5",
                 "--batch-size", "1000"]) == 0
    out = capsys.readouterr().out
    for word in ("inertia:", "iterations:", "rows/s", "peak anonymous memory"):
        assert word in out


def test_demo_on_user_file(tmp_path, capsys):
    X = np.random.default_rng(0).standard_normal((3000, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["demo", "--data", str(tmp_path / "x.npy"), "-k", "4"]) == 0
    assert "inertia:" in capsys.readouterr().out


def test_user_errors_are_one_line_exit_2(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]))
    for args in (["demo", "--data", str(tmp_path / "missing.npy")],
                 ["demo", "--data", str(tmp_path / "nan.npy"), "-k", "2"],
                 ["demo", "--data", str(tmp_path / "nan.npy"), "-k", "0"]):
        res = subprocess.run([sys.executable, "-m", "kmaot", *args], capture_output=True,
                             text=True, cwd="/")
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kmaot: error:"), res.stderr
        assert "Traceback" not in res.stderr
