"""Every script of examples/ runs (small inputs) and does what it says."""
import os
import subprocess
import sys

import numpy as np
import pytest

import kmaot

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")


def run_example(name, *args, cwd, stdin=None):
    # cwd outside the checkout, so that the installed kmaot is imported
    res = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *map(str, args)],
                         capture_output=True, text=True, cwd=cwd, input=stdin)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_every_example_is_tested():
    tested = {"color_quantization.py", "embedding_shards.py", "service_loop.py"}
    assert {f for f in os.listdir(EXAMPLES) if f.endswith(".py")} == tested


def test_color_quantization(tmp_path):
    pytest.importorskip("sklearn")
    Image = pytest.importorskip("PIL.Image")
    res = run_example("color_quantization.py", "--colors", 16, "--sample", 5000, "--out",
                      tmp_path / "q.png", cwd=tmp_path)
    assert "-> 16" in res.stdout and "mean absolute error" in res.stdout
    err = float(res.stdout.split("mean absolute error: ")[1].split()[0])
    assert 0 < err < 15  # 16 colours reproduce the photo to within a few levels
    with Image.open(tmp_path / "q.png") as im:
        assert im.size == (640, 427)
        colours = np.unique(np.asarray(im).reshape(-1, 3), axis=0)
    assert 2 <= len(colours) <= 16


def test_embedding_shards(tmp_path):
    d = tmp_path / "shards"
    res = run_example("embedding_shards.py", "--make-demo", d, "-k", 8, "--rows", 3000,
                      "--batch-size", 1000, cwd=tmp_path)
    assert "fitted 4 shards (12,000 rows)" in res.stdout
    shards = sorted(str(p) for p in d.glob("part-???.npy"))
    km = kmaot.load(d / "model.npz")
    ref = kmaot.KMeans(8, random_state=0).fit(np.concatenate([np.load(s) for s in shards]))
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    labels = np.concatenate([np.load(s[:-4] + ".labels.npy") for s in shards])
    np.testing.assert_array_equal(labels, ref.labels_)
    # a second run on the same directory ignores the label files and the model
    res = run_example("embedding_shards.py", d, "-k", 8, cwd=tmp_path)
    assert "fitted 4 shards (12,000 rows)" in res.stdout


def test_service_loop(tmp_path):
    X = np.random.default_rng(0).standard_normal((500, 3)).astype(np.float32)
    km = kmaot.KMeans(4, random_state=0).fit(X)
    km.save(tmp_path / "m.npz")
    rows = "\n".join(",".join(repr(float(v)) for v in r) for r in X[:20])
    res = run_example("service_loop.py", tmp_path / "m.npz", cwd=tmp_path,
                      stdin=rows + "\n1,2\n\n" + " ".join(map(str, X[20])) + "\n")
    out = res.stdout.splitlines()
    assert [int(v) for v in out[:20]] == km.predict(X[:20]).tolist()
    assert out[20] == "error: expected 3 numbers, got 2"
    assert int(out[21]) == km.predict(X[20:21])[0]
    res = run_example("service_loop.py", "--benchmark", 200, cwd=tmp_path)
    assert "200 single-row requests" in res.stdout and "p99" in res.stdout
